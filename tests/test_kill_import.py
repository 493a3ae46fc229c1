"""An import killed half-way (SIGKILL while it writes) leaves the database exactly as it
was before it, on SQLite and PostgreSQL (issue 13: bad input at scale).

The import runs as a real `pilotgate import` process; the test waits until the write is
under way (PostgreSQL: the backend is running the bulk ``COPY``; SQLite: the write-ahead
log grows while the transaction is open), kills the process with SIGKILL, and checks
that no measurement or revision of it is visible, the database is intact, and the same
import then succeeds.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from metrics import store
from tests.conftest import BACKENDS, fresh_engine
from tests.factories import make_pilot, metric_in

FIRST_WEEK = date(2010, 1, 4)
#: The PostgreSQL application_name of the import this test kills (one per process).
APP_NAME = f"pilotgate-kill-test-{os.getpid()}"
PILOTS, KEYS, WEEKS = 40, ("resolution_time", "cycle_time"), 150


def _portfolio(engine) -> None:
    """PILOTS pilots of two metrics each, each with one stored value (week 0)."""
    with Session(engine) as s:
        for i in range(PILOTS):
            make_pilot(
                s,
                f"Pilot {i:02d}",
                metrics=[metric_in(k) for k in KEYS],
                start_date=FIRST_WEEK + timedelta(weeks=100),
                decision_date=FIRST_WEEK + timedelta(weeks=200),
            )
        s.commit()


def _csv(path: Path) -> int:
    """Every pilot, metric and week 1..WEEKS-1 (12,000 rows; long notes make
    the rows wide enough that the write spills to disk mid-transaction)."""
    lines = ["pilot,metric,week,value,note"]
    note = "n" * 400
    for i in range(PILOTS):
        for k in KEYS:
            for w in range(WEEKS):
                week = (FIRST_WEEK + timedelta(weeks=w)).isoformat()
                lines.append(f"Pilot {i:02d},{k},{week},{10 + (w % 7)},{note}")
    path.write_text("\n".join(lines) + "\n")
    return len(lines) - 1


def _counts(engine) -> tuple[int, int]:
    with engine.connect() as conn:
        m = conn.execute(sa.text("SELECT count(*) FROM measurement")).scalar_one()
        r = conn.execute(sa.text("SELECT count(*) FROM measurementrevision")).scalar_one()
    return int(m), int(r)


def _writing(engine, db_file: Path | None, wal_start: int) -> bool:
    """True once the import's write transaction has started writing rows."""
    if db_file is not None:
        wal = Path(f"{db_file}-wal")
        return wal.exists() and wal.stat().st_size > wal_start + 64 * 1024
    with engine.connect() as conn:
        n = conn.execute(
            sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                "AND query LIKE 'COPY%' AND application_name = :app"
            ),
            {"app": APP_NAME},
        ).scalar_one()
    return n > 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_import_killed_while_it_writes_leaves_the_database_as_it_was(backend, tmp_path, request):
    engine = fresh_engine(backend, tmp_path)
    request.addfinalizer(engine.dispose)
    _portfolio(engine)
    url = engine.url.render_as_string(hide_password=False)
    if backend == "postgres":  # tell this import's connection from other test processes'
        url = engine.url.update_query_dict({"application_name": APP_NAME}).render_as_string(
            hide_password=False
        )
    db_file = Path(engine.url.database) if backend == "sqlite" else None
    before = _counts(engine)
    assert before == (0, 0)
    rows = _csv(tmp_path / "weekly.csv")
    wal_start = Path(f"{db_file}-wal").stat().st_size if db_file else 0
    code = "from metrics.cli import main; main()"
    cmd = [sys.executable, "-c", code, "--database-url", url, "import"]
    proc = subprocess.Popen(
        [*cmd, str(tmp_path / "weekly.csv")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while not _writing(engine, db_file, wal_start):
        assert proc.poll() is None, "the import ended before the test could kill it"
        assert time.monotonic() < deadline, "the import never started writing"
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    assert proc.returncode == -signal.SIGKILL

    if backend == "postgres":  # the server rolls the dead client's transaction back
        with engine.connect() as conn:
            for _ in range(200):
                busy = conn.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY%' "
                        "AND application_name = :app AND pid <> pg_backend_pid()"
                    ),
                    {"app": APP_NAME},
                ).scalar_one()
                if not busy:
                    break
                time.sleep(0.05)
    else:
        with sqlite3.connect(db_file) as raw:
            assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert _counts(engine) == before

    # nothing is left locked or half-written: the same import now succeeds whole
    run = subprocess.run([*cmd, str(tmp_path / "weekly.csv")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert _counts(engine) == (rows, rows)
    with Session(engine) as s:
        m = store.measurements_frame(s)
    assert len(m) == rows and m["value"].between(10, 16).all()
