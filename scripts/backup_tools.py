"""Back up a PilotGate database, restore it into a fresh one, and check the restore.

Used by the three commands beside this file (see docs/operations.md):

    python scripts/backup.py [--database-url URL] [--check] OUTPUT
    python scripts/restore.py BACKUP [--database-url URL]
    python scripts/check_backup.py BACKUP [--into URL] [--create-database]

Both backends, no extra dependency:

- **SQLite**: Python's ``sqlite3.Connection.backup`` (SQLite's online backup API) copies
  the whole database in one step from one read snapshot. It is safe while the
  dashboard runs and writes (WAL): it never copies the file under a writer, uncommitted
  writes are not in the copy, and the copy is one self-contained file
  (``journal_mode=DELETE``) checked with ``PRAGMA integrity_check``.
- **PostgreSQL**: ``pg_dump --format=custom`` of the schema the URL points at (the one
  ``current_schema()`` names: ``public`` unless the URL sets ``search_path``), taken
  from a snapshot that is exported by the same REPEATABLE READ transaction that counts
  the rows, so the counts describe exactly what is in the dump. ``pg_restore`` puts it
  back (``--no-owner --no-acl --single-transaction --exit-on-error``).

Every backup ``X`` gets a manifest ``X.json``: backend, schema revision, the row count
of every table, file size and SHA-256. Restoring verifies the checksum first and the
row counts after. Restores go only into a *fresh* database: a target that already has
tables is refused, never overwritten.

Passwords never appear in output: URLs are shown with the password masked, the
PostgreSQL tools get the password through ``PGPASSWORD`` in their environment (not on
their command line), and their messages are scrubbed of it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa

from metrics import atomic
from metrics.db import DatabaseError, parse_url, safe_url, scrub
from metrics.settings import get_settings

MANIFEST_FORMAT = "pilotgate-backup 1"
#: URL query parameters passed on to pg_dump/pg_restore, as libpq environment variables.
PG_QUERY_ENV = {
    "host": "PGHOST",
    "port": "PGPORT",
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "options": "PGOPTIONS",
    "application_name": "PGAPPNAME",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "service": "PGSERVICE",
    "passfile": "PGPASSFILE",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
}


class BackupError(Exception):
    """A backup, restore or check cannot be done; the message says what to change and
    never contains a password."""


@dataclass(frozen=True)
class Manifest:
    """What a backup holds: written beside it as ``<backup>.json``.

    Attributes:
        backend: ``sqlite`` or ``postgresql``.
        source: the database URL backed up, password masked.
        schema: PostgreSQL schema dumped (``None`` for SQLite).
        schema_revision: Alembic revision of the database (``None`` if never migrated).
        tables: row count of every table, by table name (``alembic_version`` included).
        created_at: UTC time of the backup, ISO 8601.
        file: the backup's file name; ``bytes`` and ``sha256`` its size and checksum.
    """

    backend: str
    source: str
    schema: str | None
    schema_revision: str | None
    tables: dict[str, int]
    created_at: str
    file: str
    bytes: int
    sha256: str

    @property
    def rows(self) -> int:
        """Rows in all tables together."""
        return sum(self.tables.values())

    def to_json(self) -> str:
        data = {"format": MANIFEST_FORMAT, **self.__dict__}
        return json.dumps(data, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def manifest_path(backup: Path) -> Path:
    """Where the manifest of ``backup`` lives: the same name plus ``.json``."""
    return backup.with_name(backup.name + ".json")


def read_manifest(backup: Path) -> Manifest:
    """The manifest of ``backup``, after checking the backup's size and SHA-256.

    Raises:
        BackupError: the backup or its manifest is missing or unreadable, or the file
            does not match its checksum (damaged or replaced).
    """
    if not backup.is_file():
        raise BackupError(f"{backup}: no such backup file")
    path = manifest_path(backup)
    if not path.is_file():
        raise BackupError(f"{path}: manifest not found (every backup X comes with X.json)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BackupError(f"{path}: cannot read the manifest: {exc}") from None
    if data.pop("format", None) != MANIFEST_FORMAT:
        raise BackupError(f"{path}: not a PilotGate backup manifest ({MANIFEST_FORMAT!r})")
    try:
        manifest = Manifest(**data)
    except TypeError as exc:
        raise BackupError(f"{path}: manifest fields do not match: {exc}") from None
    size, digest = _file_digest(backup)
    if (size, digest) != (manifest.bytes, manifest.sha256):
        raise BackupError(
            f"{backup}: the file does not match its manifest ({size} bytes, sha256 "
            f"{digest[:12]}… instead of {manifest.bytes} bytes, {manifest.sha256[:12]}…): "
            "it is damaged or was replaced; use another backup"
        )
    return manifest


def _file_digest(path: Path) -> tuple[int, str]:
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
            size += len(chunk)
    return size, h.hexdigest()


def _url(url: str | None) -> sa.URL:
    text = url or get_settings().database_url
    try:
        return parse_url(text)
    except DatabaseError as exc:  # unparseable, a bad port, an unencoded @ in the password
        raise BackupError(str(exc)) from None


def _backend(url: sa.URL) -> str:
    name = url.get_backend_name()
    if name not in ("sqlite", "postgresql"):
        raise BackupError(f"{safe_url(url)}: only SQLite and PostgreSQL databases are supported")
    return name


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _check_output(output: Path) -> None:
    for path in (output, manifest_path(output)):
        if path.exists():
            raise BackupError(f"{path}: already exists; backups never overwrite a file")
    if not output.parent.is_dir():
        raise BackupError(f"{output}: folder {output.parent} does not exist")


def default_name(url: sa.URL) -> str:
    """``pilotgate-YYYYmmddTHHMMSSZ.db`` (SQLite) or ``.dump`` (PostgreSQL), in UTC."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"pilotgate-{stamp}.{'db' if _backend(url) == 'sqlite' else 'dump'}"


def _partial(output: Path):
    """A temporary file beside ``output``, renamed to it only when the block succeeds,
    so a half-written backup never carries the final name; partial files left by a
    killed backup or restore in that folder are removed first (``metrics.atomic``)."""
    return atomic.partial_file(output)


# =========================================================================== counting


def _quote(conn: sa.Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote_identifier(name)


def table_counts(conn: sa.Connection, schema: str | None = None) -> dict[str, int]:
    """Row count of every table (of ``schema`` on PostgreSQL), sorted by table name."""
    names = sorted(sa.inspect(conn).get_table_names(schema=schema))
    prefix = f"{_quote(conn, schema)}." if schema else ""
    return {
        name: int(
            conn.execute(sa.text(f"SELECT count(*) FROM {prefix}{_quote(conn, name)}")).scalar()
        )
        for name in names
    }


def _revision(conn: sa.Connection, tables: dict[str, int], schema: str | None = None) -> str | None:
    if "alembic_version" not in tables:
        return None
    prefix = f"{_quote(conn, schema)}." if schema else ""
    return conn.execute(sa.text(f"SELECT version_num FROM {prefix}alembic_version")).scalar()


def compare_counts(expected: dict[str, int], actual: dict[str, int]) -> list[str]:
    """Differences between two {table: rows} maps, one readable line each (empty: equal)."""
    problems = []
    for name in sorted(set(expected) | set(actual)):
        if name not in actual:
            problems.append(f"table {name}: in the backup ({expected[name]} rows), not restored")
        elif name not in expected:
            problems.append(f"table {name}: restored ({actual[name]} rows), not in the backup")
        elif expected[name] != actual[name]:
            problems.append(
                f"table {name}: the backup has {expected[name]} rows, restored {actual[name]}"
            )
    return problems


# =========================================================================== SQLite


def _sqlite_path(url: sa.URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise BackupError(f"{safe_url(url)}: an in-memory database cannot be backed up or restored")
    return Path(url.database).expanduser()


def _sqlite_connect(path: Path, mode: str) -> sqlite3.Connection:
    """Open ``path`` with ``mode`` ``ro``, ``rw`` (must exist) or ``rwc``."""
    uri = f"file:{quote(str(path.resolve()))}?mode={mode}"
    conn = sqlite3.connect(uri, uri=True, timeout=get_settings().sqlite_busy_timeout_ms / 1000)
    return conn


def _sqlite_counts(path: Path) -> tuple[dict[str, int], str | None]:
    engine = sa.create_engine(
        "sqlite://", creator=lambda: _sqlite_connect(path, "ro"), poolclass=sa.NullPool
    )
    try:
        with engine.connect() as conn:
            counts = table_counts(conn)
            return counts, _revision(conn, counts)
    except sa.exc.DBAPIError as exc:
        raise BackupError(f"{path}: cannot read it as a SQLite database: {exc.orig}") from None
    finally:
        engine.dispose()


def _sqlite_copy(src: Path, dst: Path, *, src_mode: str, journal_mode: str) -> None:
    """Copy database ``src`` to the new file ``dst`` with SQLite's online backup API, in
    one step (one read snapshot), then check it."""
    source = _sqlite_connect(src, src_mode)
    target = sqlite3.connect(dst)
    try:
        source.backup(target, pages=-1)
        target.execute(f"PRAGMA journal_mode={journal_mode}")
        check = target.execute("PRAGMA integrity_check").fetchall()
        if check != [("ok",)]:
            raise BackupError(f"{src}: the copy fails SQLite's integrity check: {check[:3]}")
        target.commit()
    except sqlite3.Error as exc:
        raise BackupError(f"{src}: cannot copy the database: {exc}") from None
    finally:
        target.close()
        source.close()


def _sqlite_backup(url: sa.URL, output: Path) -> Manifest:
    path = _sqlite_path(url)
    if not path.is_file():
        raise BackupError(f"{safe_url(url)}: database file {path} does not exist")
    with _partial(output) as tmp:
        _sqlite_copy(path, tmp, src_mode="rw", journal_mode="DELETE")
        counts, revision = _sqlite_counts(tmp)  # the copy's own snapshot, not the live file
    size, digest = _file_digest(output)
    return Manifest(
        backend="sqlite",
        source=safe_url(url),
        schema=None,
        schema_revision=revision,
        tables=counts,
        created_at=_now(),
        file=output.name,
        bytes=size,
        sha256=digest,
    )


def _sqlite_restore(backup: Path, manifest: Manifest, url: sa.URL) -> dict[str, int]:
    path = _sqlite_path(url)
    if not path.parent.is_dir():
        raise BackupError(f"{safe_url(url)}: folder {path.parent} does not exist")
    if path.exists():
        tables, _ = _sqlite_counts(path)
        if tables:
            raise BackupError(
                f"{safe_url(url)} already has tables ({', '.join(sorted(tables)[:4])}…): restore "
                "only into a fresh database; move that file away or name a new one"
            )
    for extra in (Path(f"{path}-wal"), Path(f"{path}-journal")):
        if extra.exists() and extra.stat().st_size:
            raise BackupError(f"{path}: {extra.name} exists: the database is in use; stop it first")
    with _partial(path) as tmp:
        _sqlite_copy(backup, tmp, src_mode="ro", journal_mode="WAL")
    counts, _ = _sqlite_counts(path)
    return counts


# =========================================================================== PostgreSQL


def _pg_env(url: sa.URL) -> dict[str, str]:
    """libpq environment for pg_dump/pg_restore: the password never goes on a command line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    for key in ("PGPASSFILE", "PGSERVICEFILE", "PGSYSCONFDIR"):  # keep where to look
        if key in os.environ:
            env[key] = os.environ[key]
    if url.password is None and "PGPASSWORD" in os.environ:
        env["PGPASSWORD"] = os.environ["PGPASSWORD"]
    for attr, var in (
        ("host", "PGHOST"),
        ("port", "PGPORT"),
        ("username", "PGUSER"),
        ("password", "PGPASSWORD"),
        ("database", "PGDATABASE"),
    ):
        value = getattr(url, attr)
        if value not in (None, ""):
            env[var] = str(value)
    for key, value in url.query.items():
        if key not in PG_QUERY_ENV:
            raise BackupError(
                f"{safe_url(url)}: URL parameter {key!r} is not passed to pg_dump/pg_restore "
                f"(supported: {', '.join(sorted(PG_QUERY_ENV))})"
            )
        env[PG_QUERY_ENV[key]] = value if isinstance(value, str) else value[-1]
    return env


def _scrub(text: str, url: sa.URL) -> str:
    return scrub(text, url)


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(
            f"{name} not found on PATH: install the PostgreSQL client tools (the same major "
            "version as the server, or newer), e.g. apt-get install postgresql-client"
        )
    return path


def _run_tool(cmd: list[str], url: sa.URL, what: str) -> str:
    proc = subprocess.run(cmd, env=_pg_env(url), capture_output=True, text=True)
    if proc.returncode != 0:
        message = " ".join(_scrub(proc.stderr, url).split()) or f"exit code {proc.returncode}"
        raise BackupError(f"{what} failed: {message}")
    return proc.stdout


def _pg_connect_args(url: sa.URL) -> dict:
    """libpq's connect_timeout from ``Settings.connect_timeout_s`` (a host that accepts
    and never answers must not hang a backup), unless the URL names its own."""
    if "connect_timeout" in url.query:
        return {}
    return {"connect_timeout": max(2, math.ceil(get_settings().connect_timeout_s))}


def _pg_engine(url: sa.URL) -> sa.Engine:
    return sa.create_engine(url, poolclass=sa.NullPool, connect_args=_pg_connect_args(url))


def _pg_error(url: sa.URL, exc: sa.exc.DBAPIError) -> BackupError:
    reason = " ".join(_scrub(str(exc.orig), url).split())
    return BackupError(f"cannot use database {safe_url(url)}: {reason}")


def _pattern(schema: str) -> str:
    """A pg_dump ``--schema`` pattern naming exactly ``schema``."""
    return '"' + schema.replace('"', '""') + '"'


def _pg_backup(url: sa.URL, output: Path) -> Manifest:
    pg_dump = _tool("pg_dump")
    engine = _pg_engine(url)
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                conn.execute(sa.text("SET TRANSACTION READ ONLY"))
                schema = conn.execute(sa.text("SELECT current_schema()")).scalar()
                if schema is None:
                    raise BackupError(
                        f"{safe_url(url)}: no schema of its search_path exists: nothing to back up"
                    )
                snapshot = conn.execute(sa.text("SELECT pg_export_snapshot()")).scalar()
                counts = table_counts(conn, schema)
                revision = _revision(conn, counts, schema)
                with _partial(output) as tmp:
                    _run_tool(
                        [
                            pg_dump,
                            "--format=custom",
                            "--no-password",
                            f"--snapshot={snapshot}",
                            f"--schema={_pattern(schema)}",
                            f"--file={tmp}",
                        ],
                        url,
                        "pg_dump",
                    )
    except sa.exc.DBAPIError as exc:
        raise _pg_error(url, exc) from None
    finally:
        engine.dispose()
    size, digest = _file_digest(output)
    return Manifest(
        backend="postgresql",
        source=safe_url(url),
        schema=schema,
        schema_revision=revision,
        tables=counts,
        created_at=_now(),
        file=output.name,
        bytes=size,
        sha256=digest,
    )


def _resolved_schema(conn: sa.Connection, wanted: str) -> str | None:
    """The schema unqualified table names will resolve to once ``wanted`` exists: the
    first entry of the search_path that exists already or is ``wanted``."""
    path, user = conn.execute(sa.text("SELECT current_setting('search_path'), current_user")).one()
    existing = set(conn.execute(sa.text("SELECT nspname FROM pg_namespace")).scalars())
    for entry in path.split(","):
        name = entry.strip()
        name = name[1:-1].replace('""', '"') if name.startswith('"') else name
        name = user if name == "$user" else name
        if name == wanted or name in existing:
            return name
    return None


def _pg_restore(backup: Path, manifest: Manifest, url: sa.URL) -> dict[str, int]:
    pg_restore = _tool("pg_restore")
    schema = str(manifest.schema)
    engine = _pg_engine(url)
    try:
        with engine.connect() as conn:
            resolved = _resolved_schema(conn, schema)
            if resolved != schema:
                raise BackupError(
                    f"the backup holds schema {schema!r}, but {safe_url(url)} reads tables from "
                    f"schema {resolved!r}: restore into a database URL whose search_path starts "
                    f"with {schema} (e.g. add ?options=-csearch_path%3D{schema})"
                )
            exists = conn.execute(
                sa.text("SELECT count(*) FROM pg_namespace WHERE nspname = :s"), {"s": schema}
            ).scalar()
            tables = sa.inspect(conn).get_table_names(schema=schema) if exists else []
        if tables:
            raise BackupError(
                f"{safe_url(url)} already has tables in schema {schema} "
                f"({', '.join(sorted(tables)[:4])}…): restore only into a fresh database; "
                "create a new one (createdb) or drop that schema first"
            )
        listing = _run_tool([pg_restore, "--list", str(backup)], url, "pg_restore --list")
        if exists:  # an empty schema (e.g. public of a new database): do not create it again
            entry = re.compile(rf"^\d+; \d+ \d+ (SCHEMA - |COMMENT - SCHEMA ){re.escape(schema)} ")
            listing = "\n".join(
                ";" + line if entry.match(line) else line for line in listing.splitlines()
            )
        with tempfile.NamedTemporaryFile("w", suffix=".list", delete=False) as fh:
            fh.write(listing)
        try:
            _run_tool(
                [
                    pg_restore,
                    "--no-password",
                    "--no-owner",
                    "--no-acl",
                    "--exit-on-error",
                    "--single-transaction",
                    f"--use-list={fh.name}",
                    f"--dbname={url.database}",
                    str(backup),
                ],
                url,
                "pg_restore",
            )
        finally:
            os.unlink(fh.name)
        with engine.connect() as conn:
            return table_counts(conn, schema)
    except sa.exc.DBAPIError as exc:
        raise _pg_error(url, exc) from None
    finally:
        engine.dispose()


def _maintenance_url(url: sa.URL) -> sa.URL:
    """The same server and credentials, database ``postgres``, no search_path option."""
    query = {k: v for k, v in url.query.items() if k != "options"}
    return url.set(database="postgres", query=query)


def _create_database(url: sa.URL) -> None:
    admin = url if url.database == "postgres" else _maintenance_url(url)
    engine = sa.create_engine(
        admin,
        poolclass=sa.NullPool,
        isolation_level="AUTOCOMMIT",
        connect_args=_pg_connect_args(admin),
    )
    try:
        with engine.connect() as conn:
            name = conn.dialect.identifier_preparer.quote_identifier(str(url.database))
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
    except sa.exc.DBAPIError as exc:
        raise _pg_error(admin, exc) from None
    finally:
        engine.dispose()


def _drop_database(url: sa.URL) -> None:
    engine = sa.create_engine(
        _maintenance_url(url),
        poolclass=sa.NullPool,
        isolation_level="AUTOCOMMIT",
        connect_args=_pg_connect_args(url),
    )
    try:
        with engine.connect() as conn:
            name = conn.dialect.identifier_preparer.quote_identifier(str(url.database))
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    finally:
        engine.dispose()


# =========================================================================== public API


def backup(url: str | None, output: Path) -> tuple[Path, Manifest]:
    """Back up the database at ``url`` (default ``Settings.database_url``) to ``output``
    (a file name, or an existing folder: then :func:`default_name` inside it) and write
    its manifest beside it.

    Returns:
        (the backup file, its manifest).

    Raises:
        BackupError: the database cannot be read, ``output`` exists already or its folder
            does not, or pg_dump is missing or fails. No file is left behind on error.
    """
    parsed = _url(url)
    backend = _backend(parsed)
    if output.is_dir():
        output = output / default_name(parsed)
    _check_output(output)
    manifest = _sqlite_backup(parsed, output) if backend == "sqlite" else _pg_backup(parsed, output)
    try:
        with _partial(manifest_path(output)) as tmp:
            tmp.write_text(manifest.to_json(), encoding="utf-8")
    except BaseException:
        output.unlink(missing_ok=True)
        raise
    return output, manifest


def restore(backup_file: Path, url: str | None) -> tuple[Manifest, dict[str, int]]:
    """Restore ``backup_file`` into the fresh (empty) database at ``url``.

    Returns:
        (the backup's manifest, {table: rows} counted in the restored database).

    Raises:
        BackupError: the backup fails its checksum, belongs to the other backend, the
            target already has tables (it is never overwritten), or the restore fails.
    """
    manifest = read_manifest(backup_file)
    parsed = _url(url)
    backend = _backend(parsed)
    if backend != manifest.backend:
        raise BackupError(
            f"{backup_file} is a {manifest.backend} backup; it cannot be restored into "
            f"{backend} ({safe_url(parsed)}); to move data between backends use "
            "`pilotgate export measurements` and `pilotgate import`"
        )
    if backend == "sqlite":
        counts = _sqlite_restore(backup_file, manifest, parsed)
    else:
        counts = _pg_restore(backup_file, manifest, parsed)
    return manifest, counts


@dataclass(frozen=True)
class CheckResult:
    """Outcome of :func:`check`: the manifest, the restored counts, the problems found
    (empty: every table's row count matches) and where it was restored (masked URL)."""

    manifest: Manifest
    counts: dict[str, int]
    problems: list[str]
    restored_into: str


def check(
    backup_file: Path, into: str | None = None, *, create_database: bool = False
) -> CheckResult:
    """Restore ``backup_file`` into a fresh database and compare every table's row count
    with the manifest.

    SQLite: ``into`` defaults to a temporary file, removed afterwards. PostgreSQL:
    ``into`` names an empty database; with ``create_database`` the database is created
    first and dropped afterwards (needs the CREATEDB privilege).

    Raises:
        BackupError: the backup is damaged, ``into`` is missing for PostgreSQL, or the
            restore fails.
    """
    manifest = read_manifest(backup_file)
    if manifest.backend == "sqlite" and into is None:
        with tempfile.TemporaryDirectory(prefix="pilotgate-check-") as folder:
            target = f"sqlite:///{Path(folder) / 'restored.db'}"
            _, counts = restore(backup_file, target)
            return CheckResult(manifest, counts, compare_counts(manifest.tables, counts), target)
    if into is None:
        raise BackupError(
            "checking a PostgreSQL backup needs --into URL: a fresh database to restore into "
            "(add --create-database to create it now and drop it afterwards)"
        )
    parsed = _url(into)
    created = False
    if create_database:
        if _backend(parsed) != "postgresql":
            raise BackupError("--create-database is for PostgreSQL URLs")
        _create_database(parsed)
        created = True
    try:
        _, counts = restore(backup_file, into)
    finally:
        if created:
            _drop_database(parsed)
    return CheckResult(manifest, counts, compare_counts(manifest.tables, counts), safe_url(parsed))


def scratch_url(url: str | None) -> str:
    """A URL for a new, uniquely named database beside the one at ``url`` (same server,
    credentials and search_path), for checking a PostgreSQL backup."""
    parsed = _url(url)
    name = f"{parsed.database or 'pilotgate'}_check_{uuid.uuid4().hex[:8]}"
    return parsed.set(database=name).render_as_string(hide_password=False)


# =========================================================================== commands


def _print_counts(counts: dict[str, int], expected: dict[str, int] | None = None) -> None:
    width = max((len(n) for n in counts), default=0)
    for name, rows in counts.items():
        note = "" if expected is None else f" (backup {expected.get(name, 'n/a')})"
        print(f"  {name:<{width}} {rows:>9} rows{note}")


def _guard(fn) -> int:
    try:
        return fn()
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def main_backup(argv: list[str] | None = None) -> int:
    """``scripts/backup.py``: back up, write the manifest, optionally check the backup."""
    parser = argparse.ArgumentParser(
        prog="backup.py",
        description="Back up the PilotGate database (SQLite online backup or pg_dump -Fc) "
        "and write OUTPUT.json with every table's row count.",
    )
    parser.add_argument("output", type=Path, help="backup file, or a folder for a dated name")
    parser.add_argument("--database-url", help="default: PILOTGATE_DATABASE_URL")
    parser.add_argument(
        "--check",
        action="store_true",
        help="then restore it into a fresh database and compare row counts (PostgreSQL: "
        "a temporary database on the same server, needs CREATEDB)",
    )
    args = parser.parse_args(argv)

    def run() -> int:
        path, manifest = backup(args.database_url, args.output)
        print(
            f"backed up {manifest.source} (schema revision {manifest.schema_revision}, "
            f"{len(manifest.tables)} tables, {manifest.rows} rows) to {path}"
        )
        _print_counts(manifest.tables)
        print(f"manifest {manifest_path(path)}")
        if not args.check:
            return 0
        into = None if manifest.backend == "sqlite" else scratch_url(args.database_url)
        return _report_check(check(path, into, create_database=into is not None))

    return _guard(run)


def _report_check(result: CheckResult) -> int:
    print(f"restored into a fresh database {result.restored_into}")
    _print_counts(result.counts, result.manifest.tables)
    if result.problems:
        for problem in result.problems:
            print(f"error: {problem}", file=sys.stderr)
        print(f"error: the backup check FAILED ({len(result.problems)} problems)", file=sys.stderr)
        return 1
    print(
        f"backup OK: {len(result.counts)} tables, {sum(result.counts.values())} rows, "
        "every row count matches"
    )
    return 0


def main_restore(argv: list[str] | None = None) -> int:
    """``scripts/restore.py``: restore into a fresh database, compare the row counts."""
    parser = argparse.ArgumentParser(
        prog="restore.py",
        description="Restore a PilotGate backup into a fresh (empty) database and check "
        "every table's row count against the backup's manifest.",
    )
    parser.add_argument("backup", type=Path, help="the backup file (its .json beside it)")
    parser.add_argument("--database-url", help="the fresh database; default PILOTGATE_DATABASE_URL")
    args = parser.parse_args(argv)

    def run() -> int:
        manifest, counts = restore(args.backup, args.database_url)
        print(
            f"restored {args.backup} (schema revision {manifest.schema_revision}, taken "
            f"{manifest.created_at} from {manifest.source})"
        )
        target = safe_url(_url(args.database_url))
        problems = compare_counts(manifest.tables, counts)
        return _report_check(CheckResult(manifest, counts, problems, target))

    return _guard(run)


def main_check(argv: list[str] | None = None) -> int:
    """``scripts/check_backup.py``: a restore drill; exit 0 only when every count matches."""
    parser = argparse.ArgumentParser(
        prog="check_backup.py",
        description="Restore a PilotGate backup into a fresh database and compare every "
        "table's row count with its manifest (exit 1 on any difference).",
    )
    parser.add_argument("backup", type=Path, help="the backup file (its .json beside it)")
    parser.add_argument(
        "--into", help="fresh database URL to restore into (SQLite default: a temporary file)"
    )
    parser.add_argument(
        "--create-database",
        action="store_true",
        help="PostgreSQL: create the --into database first and drop it afterwards",
    )
    args = parser.parse_args(argv)
    return _guard(
        lambda: _report_check(check(args.backup, args.into, create_database=args.create_database))
    )
