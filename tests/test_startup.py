"""Start-up (issue 13 item 3): each command imports only what it uses. Checked as the
set of modules a fresh interpreter has loaded (``sys.modules``), never as a time;
``benchmarks/bench_scale.py`` measures the seconds."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("scipy", "scipy.stats", "plotly", "streamlit", "pandas", "sqlalchemy", "pyarrow")

PROBE = """
import json, sys
sys.argv = ["pilotgate", *json.loads(sys.argv[1])]
from metrics.cli import main
try:
    main()
except SystemExit:
    pass
print("\\n@@" + json.dumps(sorted(m for m in sys.modules)), file=sys.stderr)
"""


def _loaded(*args: str, env_db: str | None = None) -> set[str]:
    env = None
    if env_db:
        import os

        env = dict(os.environ, PILOTGATE_DATABASE_URL=env_db)
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(list(args))],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    tail = proc.stderr.rsplit("\n@@", 1)[-1]
    return set(json.loads(tail))


def test_help_imports_none_of_the_heavy_libraries():
    loaded = _loaded("--help")
    assert not [m for m in HEAVY if m in loaded]
    assert "metrics.models" not in loaded and "pydantic_settings" not in loaded


@pytest.fixture
def demo_db(tmp_path):
    from datetime import date

    from sqlmodel import Session

    from metrics.db import init_db, make_engine
    from seed.demo import seed_demo

    url = f"sqlite:///{tmp_path / 'demo.db'}"
    engine = make_engine(url)
    init_db(engine)
    with Session(engine) as s:
        seed_demo(session=s, actor="tester", today=date(2026, 11, 30))
        s.commit()
    engine.dispose()
    return url


def test_export_summary_needs_no_scipy_stats_plotly_or_streamlit(demo_db, tmp_path):
    out = tmp_path / "summary.csv"
    loaded = _loaded("export", "summary", "--as-of", "2026-11-30", "-o", str(out), env_db=demo_db)
    assert out.read_text(encoding="utf-8").startswith("\ufeffpilot,vendor,stage,metric")
    assert "scipy.special" in loaded  # the t quantile
    assert not [m for m in ("scipy.stats", "plotly", "streamlit") if m in loaded]


def test_import_dry_run_needs_no_scipy_plotly_or_streamlit(demo_db, tmp_path):
    csv = tmp_path / "weekly.csv"
    csv.write_text("pilot,metric,week,value\nClaims triage agent,error_rate,2026-W40,3.1\n")
    loaded = _loaded("import", "--dry-run", str(csv), env_db=demo_db)
    assert "pandas" in loaded  # it did read the file
    assert not [m for m in ("scipy", "plotly", "streamlit") if m in loaded]


def test_the_fast_head_revision_is_alembics():
    from metrics.db import head_revision, head_revision_fast

    assert head_revision_fast() == head_revision()


def test_a_current_database_starts_without_alembic(demo_db):
    loaded = _loaded("users", "list", env_db=demo_db)
    assert "alembic" not in loaded
    assert "metrics.db" in loaded
