"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel

from metrics.db import head_revision, init_db, schema_revision
from tests.conftest import PG_SCHEMA


def test_migrated_schema_matches_the_models(engine):
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, SQLModel.metadata)
    assert diff == []


def test_init_db_is_idempotent(engine):
    init_db(engine)
    init_db(engine)
    assert schema_revision(engine) == head_revision() == "0002"


def test_processes_starting_at_once_migrate_once(engine, tmp_path):
    """Several dashboards or CLI commands may start together on an empty database:
    three processes run `pilotgate init` at once; all succeed, the schema is at head."""
    import subprocess
    import sys

    from sqlalchemy import text

    if engine.dialect.name == "sqlite":
        url = f"sqlite:///{tmp_path / 'empty.db'}"
    else:
        url = engine.url.render_as_string(hide_password=False)
        with engine.begin() as conn:  # empty the schema again
            conn.execute(text(f"DROP SCHEMA {PG_SCHEMA} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {PG_SCHEMA}"))
    engine.dispose()
    code = "from metrics.cli import main; main()"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, "--database-url", url, "init"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err for _, err in outs]
    assert all("at schema revision 0002" in out for out, _ in outs)
