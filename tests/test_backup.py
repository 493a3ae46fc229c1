"""Backups (docs/operations.md): ``scripts/backup.py`` copies the database, ``restore.py``
puts it into a fresh database, ``check_backup.py`` restores and compares every table's
row count. SQLite always; PostgreSQL when ``PILOTGATE_TEST_POSTGRES_URL`` is set
(restored into a freshly created database, same schema name).

The scripts run as a user runs them (a subprocess), so their output, exit codes and
what they leave on disk are what is tested.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, SQLModel

from metrics.db import make_engine, schema_revision
from tests.conftest import PG_SCHEMA, PG_URL, REPO, _pg_url, fresh_engine
from tests.factories import add_weeks, make_pilot, metric_id, metric_in

#: Tables a backup copies: the models' tables and alembic_version.
TABLES = len(SQLModel.metadata.tables) + 1

SCRIPTS = REPO / "scripts"
PILOT = "Résolution 工单 pilot 🚀"
PASSWORD = "pw-Sekr3t-never-print"
needs_postgres = pytest.mark.skipif(not PG_URL, reason="PILOTGATE_TEST_POSTGRES_URL is not set")


def _script(name: str, *args: str | Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPTS / name), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env=env,
    )


def _fill(engine: sa.Engine) -> dict[str, int]:
    """Two pilots, 8 weekly values (one subnormal), their revisions and stage events."""
    with Session(engine) as s:
        make_pilot(
            s,
            PILOT,
            owner="Zoë",
            metrics=[
                metric_in("resolution_time", baseline=118.0, target=80.0),
                metric_in("error_rate", unit="%", role="guardrail", target=4.0, margin=1.0),
            ],
        )
        make_pilot(s, "Second pilot")
        add_weeks(s, metric_id(s, PILOT, "resolution_time"), date(2012, 1, 2), [100.5, 90, 80.25])
        add_weeks(s, metric_id(s, PILOT, "error_rate"), date(2012, 1, 2), [5e-324, 4.9, 4.7])
        add_weeks(s, metric_id(s, "Second pilot", "resolution_time"), date(2012, 1, 2), [1, 2])
        s.commit()
    return _counts(engine)


def _counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        names = sorted(sa.inspect(conn).get_table_names())
        return {n: conn.execute(sa.text(f'SELECT count(*) FROM "{n}"')).scalar() for n in names}


def _rows(engine: sa.Engine) -> dict[str, list[tuple]]:
    """Every row of every table, ordered by id: for comparing two databases exactly."""
    with engine.connect() as conn:
        return {
            name: [tuple(r) for r in conn.execute(sa.select(t).order_by(*t.primary_key))]
            for name, t in SQLModel.metadata.tables.items()
        }


def _lines(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.splitlines()]


# =========================================================================== SQLite


@pytest.fixture
def sqlite_db(tmp_path):
    """A filled SQLite database, its engine still open (as a running dashboard's is)."""
    engine = fresh_engine("sqlite", tmp_path)
    counts = _fill(engine)
    yield {"engine": engine, "url": f"sqlite:///{tmp_path / 'test.db'}", "counts": counts}
    engine.dispose()


def test_sqlite_backup_while_a_writer_is_busy_then_restore(sqlite_db, tmp_path):
    engine = sqlite_db["engine"]
    source = Path(engine.url.database)
    assert os.path.getsize(f"{source}-wal") > 0  # committed rows still sit in the WAL
    # another process holds a write transaction open while the backup runs
    writer = sqlite3.connect(source)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE measurement SET value = -1 WHERE value = 100.5")
    try:
        run = _script("backup.py", "--database-url", sqlite_db["url"], tmp_path / "b.db")
    finally:
        writer.rollback()
        writer.close()
    assert run.returncode == 0, run.stderr
    out = _lines(run.stdout)
    assert out[0] == (
        f"backed up {sqlite_db['url']} (schema revision 0005, {TABLES} tables, "
        f"{sum(sqlite_db['counts'].values())} rows) to {tmp_path / 'b.db'}"
    )
    assert "measurement 8 rows" in out
    assert "pilot 2 rows" in out
    assert out[-1] == f"manifest {tmp_path / 'b.db.json'}"
    manifest = json.loads((tmp_path / "b.db.json").read_text())
    assert manifest["tables"] == sqlite_db["counts"]
    assert manifest["tables"]["measurement"] == 8
    assert manifest["schema_revision"] == "0005"
    assert manifest["backend"] == "sqlite"
    assert manifest["bytes"] == os.path.getsize(tmp_path / "b.db")
    # one self-contained file: not in WAL mode, nothing beside it, intact
    with sqlite3.connect(tmp_path / "b.db") as copy:
        assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        # the uncommitted update is not in the backup
        assert copy.execute("SELECT count(*) FROM measurement WHERE value = 100.5").fetchone() == (
            1,
        )
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("b.")) == [
        "b.db",
        "b.db.json",
    ]

    restored_url = f"sqlite:///{tmp_path / 'restored.db'}"
    run = _script("restore.py", tmp_path / "b.db", "--database-url", restored_url)
    assert run.returncode == 0, run.stderr
    out = _lines(run.stdout)
    assert out[0].startswith(f"restored {tmp_path / 'b.db'} (schema revision 0005, taken ")
    assert out[1] == f"restored into a fresh database {restored_url}"
    assert "measurement 8 rows (backup 8)" in out
    assert out[-1] == (
        f"backup OK: {TABLES} tables, {sum(sqlite_db['counts'].values())} rows, "
        "every row count matches"
    )
    restored = make_engine(restored_url)
    try:
        assert schema_revision(restored) == "0005"
        assert _rows(restored) == _rows(engine)
        with restored.connect() as conn:
            tiny = conn.execute(sa.text("SELECT min(value) FROM measurement")).scalar()
            name = conn.execute(sa.text("SELECT name FROM pilot ORDER BY id")).scalars().first()
        assert tiny == 5e-324
        assert name == PILOT
    finally:
        restored.dispose()


def test_backup_into_a_folder_and_check(sqlite_db, tmp_path):
    folder = tmp_path / "backups"
    folder.mkdir()
    run = _script("backup.py", "--database-url", sqlite_db["url"], "--check", folder)
    assert run.returncode == 0, run.stderr
    (backup,) = folder.glob("pilotgate-*.db")
    assert backup.name.endswith("Z.db") and len(backup.name) == len("pilotgate-20260101T000000Z.db")
    assert (folder / f"{backup.name}.json").is_file()
    out = _lines(run.stdout)
    assert "measurementrevision 8 rows (backup 8)" in out
    assert out[-1].startswith(f"backup OK: {TABLES} tables")
    # the drill's temporary database is gone again
    restored_line = next(x for x in out if x.startswith("restored into a fresh database"))
    assert not Path(sa.make_url(restored_line.split()[-1]).database).exists()


def test_check_backup_fails_when_a_row_count_differs(sqlite_db, tmp_path):
    assert (
        _script("backup.py", "--database-url", sqlite_db["url"], tmp_path / "b.db").returncode == 0
    )
    manifest_file = tmp_path / "b.db.json"
    manifest = json.loads(manifest_file.read_text())
    manifest["tables"]["measurement"] = 9  # the backup claims a row it does not hold
    manifest_file.write_text(json.dumps(manifest))
    run = _script("check_backup.py", tmp_path / "b.db")
    assert run.returncode == 1
    assert run.stderr.splitlines() == [
        "error: table measurement: the backup has 9 rows, restored 8",
        "error: the backup check FAILED (1 problems)",
    ]
    assert "measurement 8 rows (backup 9)" in _lines(run.stdout)


def test_a_damaged_backup_is_refused_and_nothing_is_restored(sqlite_db, tmp_path):
    assert (
        _script("backup.py", "--database-url", sqlite_db["url"], tmp_path / "b.db").returncode == 0
    )
    data = bytearray((tmp_path / "b.db").read_bytes())
    data[5000] ^= 0xFF
    (tmp_path / "b.db").write_bytes(bytes(data))
    target = tmp_path / "restored.db"
    run = _script("restore.py", tmp_path / "b.db", "--database-url", f"sqlite:///{target}")
    assert run.returncode == 1
    assert run.stderr.startswith(
        f"error: {tmp_path / 'b.db'}: the file does not match its manifest"
    )
    assert "it is damaged or was replaced; use another backup" in run.stderr
    assert "Traceback" not in run.stderr
    assert not target.exists()


def test_restore_never_overwrites_a_database_with_tables(sqlite_db, tmp_path):
    assert (
        _script("backup.py", "--database-url", sqlite_db["url"], tmp_path / "b.db").returncode == 0
    )
    with Session(sqlite_db["engine"]) as s:
        add_weeks(s, metric_id(s, "Second pilot", "resolution_time"), date(2012, 1, 16), [3])
        s.commit()
    run = _script("restore.py", tmp_path / "b.db", "--database-url", sqlite_db["url"])
    assert run.returncode == 1
    first = ", ".join(sorted([*SQLModel.metadata.tables, "alembic_version"])[:4])
    assert run.stderr == (
        f"error: {sqlite_db['url']} already has tables ({first}…): restore only into a "
        "fresh database; move that file away or name a new one\n"
    )
    assert _counts(sqlite_db["engine"])["measurement"] == 9  # the newer row is still there


def test_backup_refuses_a_missing_database_and_an_existing_file(sqlite_db, tmp_path):
    missing = f"sqlite:///{tmp_path / 'nope.db'}"
    run = _script("backup.py", "--database-url", missing, tmp_path / "b.db")
    assert run.returncode == 1
    assert run.stderr == f"error: {missing}: database file {tmp_path / 'nope.db'} does not exist\n"
    assert not (tmp_path / "nope.db").exists()
    assert not (tmp_path / "b.db").exists()

    (tmp_path / "b.db").write_text("keep me")
    run = _script("backup.py", "--database-url", sqlite_db["url"], tmp_path / "b.db")
    assert run.returncode == 1
    assert (
        run.stderr
        == f"error: {tmp_path / 'b.db'}: already exists; backups never overwrite a file\n"
    )
    assert (tmp_path / "b.db").read_text() == "keep me"

    run = _script("backup.py", "--database-url", sqlite_db["url"], tmp_path / "no" / "b.db")
    assert (
        run.stderr
        == f"error: {tmp_path / 'no' / 'b.db'}: folder {tmp_path / 'no'} does not exist\n"
    )


def test_a_sqlite_backup_does_not_restore_into_postgres(sqlite_db, tmp_path):
    assert (
        _script("backup.py", "--database-url", sqlite_db["url"], tmp_path / "b.db").returncode == 0
    )
    url = f"postgresql+psycopg://u:{PASSWORD}@127.0.0.1:1/x"
    run = _script("restore.py", tmp_path / "b.db", "--database-url", url)
    assert run.returncode == 1
    assert PASSWORD not in run.stdout + run.stderr
    assert run.stderr == (
        f"error: {tmp_path / 'b.db'} is a sqlite backup; it cannot be restored into postgresql "
        "(postgresql+psycopg://u:***@127.0.0.1:1/x); to move data between backends use "
        "`pilotgate export measurements` and `pilotgate import`\n"
    )


# =========================================================================== PostgreSQL


def _with_password(url: str, password: str = PASSWORD) -> str:
    """``url`` with a password (the test server trusts local connections and ignores it)."""
    return sa.make_url(url).set(password=password).render_as_string(hide_password=False)


@pytest.fixture
def pg_db(tmp_path):
    """The process's PostgreSQL test schema, filled; and a fresh database to restore
    into (created here, dropped afterwards)."""
    engine = fresh_engine("postgres", tmp_path)
    counts = _fill(engine)
    fresh = f"pilotgate_restore_{os.getpid()}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {fresh} WITH (FORCE)"))
        conn.execute(sa.text(f"CREATE DATABASE {fresh}"))
    target = sa.make_url(_pg_url()).set(database=fresh)
    yield {
        "engine": engine,
        "url": _with_password(_pg_url()),
        "counts": counts,
        "target": _with_password(target.render_as_string(hide_password=False)),
        "target_db": fresh,
    }
    engine.dispose()
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {fresh} WITH (FORCE)"))
    admin.dispose()


@needs_postgres
def test_postgres_backup_restore_into_a_fresh_database(pg_db, tmp_path):
    run = _script("backup.py", "--database-url", pg_db["url"], tmp_path / "b.dump")
    assert run.returncode == 0, run.stderr
    assert PASSWORD not in run.stdout + run.stderr
    masked = sa.make_url(pg_db["url"]).render_as_string(hide_password=True)
    assert ":***@" in masked
    total = sum(pg_db["counts"].values())
    assert _lines(run.stdout)[0] == (
        f"backed up {masked} (schema revision 0005, {TABLES} tables, {total} rows) to "
        f"{tmp_path / 'b.dump'}"
    )
    manifest_text = (tmp_path / "b.dump.json").read_text()
    assert PASSWORD not in manifest_text
    manifest = json.loads(manifest_text)
    assert manifest["schema"] == PG_SCHEMA
    assert manifest["tables"] == pg_db["counts"]
    assert manifest["tables"]["measurement"] == 8
    assert (tmp_path / "b.dump").read_bytes()[:5] == b"PGDMP"  # pg_dump's custom format

    run = _script("restore.py", tmp_path / "b.dump", "--database-url", pg_db["target"])
    assert run.returncode == 0, run.stderr
    assert PASSWORD not in run.stdout + run.stderr
    out = _lines(run.stdout)
    assert "measurement 8 rows (backup 8)" in out
    assert out[-1] == f"backup OK: {TABLES} tables, {total} rows, every row count matches"
    restored = make_engine(pg_db["target"])
    try:
        assert schema_revision(restored) == "0005"
        assert _rows(restored) == _rows(pg_db["engine"])
        with restored.connect() as conn:
            tiny = conn.execute(sa.text("SELECT min(value) FROM measurement")).scalar()
            where = conn.execute(sa.text("SELECT current_schema()")).scalar()
        assert (tiny, where) == (5e-324, PG_SCHEMA)
        # a second restore into the same database is refused: it has tables now
        run = _script("restore.py", tmp_path / "b.dump", "--database-url", pg_db["target"])
        assert run.returncode == 1
        assert f"already has tables in schema {PG_SCHEMA}" in run.stderr
        assert _counts(restored)["measurement"] == 8
    finally:
        restored.dispose()


@needs_postgres
def test_postgres_check_backup_creates_and_drops_its_database(pg_db, tmp_path):
    assert _script("backup.py", "--database-url", pg_db["url"], tmp_path / "b.dump").returncode == 0
    drill = f"pilotgate_drill_{os.getpid()}"
    into = sa.make_url(pg_db["target"]).set(database=drill).render_as_string(hide_password=False)
    run = _script("check_backup.py", tmp_path / "b.dump", "--into", into, "--create-database")
    assert run.returncode == 0, run.stderr
    assert PASSWORD not in run.stdout + run.stderr
    assert _lines(run.stdout)[-1].startswith(f"backup OK: {TABLES} tables")
    admin = sa.create_engine(PG_URL, poolclass=sa.NullPool)
    with admin.connect() as conn:
        left = conn.execute(
            sa.text("SELECT count(*) FROM pg_database WHERE datname = :d"), {"d": drill}
        ).scalar()
    admin.dispose()
    assert left == 0


@needs_postgres
def test_postgres_restore_refuses_a_url_reading_another_schema(pg_db, tmp_path):
    assert _script("backup.py", "--database-url", pg_db["url"], tmp_path / "b.dump").returncode == 0
    plain = sa.make_url(pg_db["target"]).set(query={})  # default search_path: public
    run = _script(
        "restore.py", tmp_path / "b.dump", "--database-url", plain.render_as_string(False)
    )
    assert run.returncode == 1
    assert PASSWORD not in run.stderr
    assert run.stderr == (
        f"error: the backup holds schema '{PG_SCHEMA}', but "
        f"{plain.render_as_string(hide_password=True)} reads tables from schema 'public': "
        f"restore into a database URL whose search_path starts with {PG_SCHEMA} "
        f"(e.g. add ?options=-csearch_path%3D{PG_SCHEMA})\n"
    )


@needs_postgres
def test_postgres_errors_never_show_the_password(pg_db, tmp_path):
    # an unreachable server: the message names the URL, password masked
    url = sa.make_url(pg_db["url"]).set(port=1)
    run = _script("backup.py", "--database-url", url.render_as_string(False), tmp_path / "b.dump")
    assert run.returncode == 1
    assert run.stderr.startswith(
        f"error: cannot use database {url.render_as_string(hide_password=True)}: "
    )
    assert PASSWORD not in run.stdout + run.stderr
    assert not (tmp_path / "b.dump").exists()


@needs_postgres
def test_pg_dump_gets_the_password_only_through_its_environment(pg_db, tmp_path):
    """A stand-in pg_dump records its command line and echoes its environment's password
    in a failure message: the password is never on the command line, and the script's
    error message has it masked."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "pg_dump").write_text(
        "#!/bin/sh\n"
        f'echo "$@" > {tmp_path / "argv.txt"}\n'
        'echo "pg_dump: error: auth failed for password $PGPASSWORD" >&2\n'
        "exit 1\n"
    )
    (fake / "pg_dump").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}"}
    run = _script("backup.py", "--database-url", pg_db["url"], tmp_path / "b.dump", env=env)
    assert run.returncode == 1
    assert run.stderr == "error: pg_dump failed: pg_dump: error: auth failed for password ***\n"
    argv = (tmp_path / "argv.txt").read_text()
    assert PASSWORD not in argv
    assert f'--schema="{PG_SCHEMA}"' in argv
    assert "--format=custom" in argv
    assert not (tmp_path / "b.dump").exists()
    assert list(tmp_path.glob(".b.dump*")) == []
