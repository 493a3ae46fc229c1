"""Engine, sessions and schema migrations.

One engine per process (the dashboard caches it with ``st.cache_resource``; the CLI
makes one per command). SQLite runs in WAL mode with a busy timeout and foreign keys
on; PostgreSQL uses a small connection pool with pre-ping. The schema is owned by
Alembic (``alembic/`` at the repository root): :func:`init_db` upgrades any database
to the newest revision.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from metrics import models  # noqa: F401  (registers the tables on SQLModel.metadata)
from metrics.settings import REPO_ROOT, get_settings

ALEMBIC_DIR = REPO_ROOT / "alembic"
#: PostgreSQL advisory lock key that serialises schema migrations across processes.
MIGRATION_LOCK_KEY = 7_461_027


class DatabaseError(RuntimeError):
    """The database cannot be reached or opened; the message names the URL without password."""


def safe_url(url: str | sa.URL) -> str:
    """The URL as text with any password masked (for messages and logs)."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable database URL>"


def make_engine(url: str | None = None, *, busy_timeout_ms: int | None = None) -> Engine:
    """Create an engine for ``url`` (default: ``Settings.database_url``).

    SQLite: WAL journal, ``busy_timeout`` (ms), ``foreign_keys=ON``, usable from several
    threads (Streamlit runs each session in its own thread). PostgreSQL: a pool of
    ``Settings.pool_size`` (5) plus ``max_overflow`` (10), waiting at most
    ``pool_timeout_s`` (30 s) for a connection, pre-ping, recycled after 30 minutes.

    Raises:
        DatabaseError: the URL cannot be parsed, names an unknown driver, or (SQLite)
            names a file in a folder that does not exist.
    """
    settings = get_settings()
    url = url or settings.database_url
    timeout = settings.sqlite_busy_timeout_ms if busy_timeout_ms is None else busy_timeout_ms
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise DatabaseError(f"cannot parse database URL {safe_url(url)}: {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            folder = Path(parsed.database).expanduser().parent
            if not folder.is_dir():
                # A typo in the URL must not silently create an empty database elsewhere.
                raise DatabaseError(
                    f"cannot open database {safe_url(url)}: folder {folder} does not exist"
                )
        engine = sa.create_engine(
            parsed,
            connect_args={"check_same_thread": False, "timeout": timeout / 1000},
        )

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # pragma: no cover - exercised by every test
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA busy_timeout={int(timeout)}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    # Named in pg_stat_activity (docs/operations.md counts connections by it), unless
    # the URL names itself (?application_name=...).
    connect_args = {} if "application_name" in parsed.query else {"application_name": "pilotgate"}
    try:
        return sa.create_engine(
            parsed,
            pool_size=settings.pool_size,
            max_overflow=settings.max_overflow,
            pool_timeout=settings.pool_timeout_s,
            pool_pre_ping=True,
            pool_recycle=1800,
            connect_args=connect_args,
        )
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
        raise DatabaseError(f"cannot use database URL {safe_url(url)}: {exc}") from None


def alembic_config(engine: Engine | None):
    """An Alembic ``Config`` pointing at the repository's migrations and ``engine``."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(ALEMBIC_DIR))
    cfg.attributes["engine"] = engine
    return cfg


_REVISION_RE = re.compile(r"^(down_revision|revision)\b[^=]*=\s*(?:['\"]([^'\"]+)['\"]|None)", re.M)


def head_revision_fast() -> str | None:
    """The newest migration's id, read from the files in ``alembic/versions`` (the one
    revision no other names as its ``down_revision``); None when that is not one
    clear answer (then Alembic decides). Reading a few lines instead of importing
    Alembic keeps every command's start-up short (issue 13)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (ALEMBIC_DIR / "versions").glob("*.py"):
        found = dict((k, v) for k, v in _REVISION_RE.findall(path.read_text(encoding="utf-8")))
        if not found.get("revision"):
            return None
        revisions.add(found["revision"])
        if found.get("down_revision"):
            parents.add(found["down_revision"])
    heads = revisions - parents
    return next(iter(heads)) if len(heads) == 1 else None


def _at_head(engine: Engine) -> bool:
    """True when the database's schema is already the newest (one cheap query)."""
    head = head_revision_fast()
    if head is None:
        return False
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                return False
            stored = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
    except sa.exc.SQLAlchemyError:
        return False  # let the migration path report it
    return [r[0] for r in stored] == [head]


def init_db(engine: Engine, *, revision: str = "head") -> None:
    """Create or upgrade the schema to ``revision`` (default the newest).

    A database already at the newest revision is left as it is without loading
    Alembic (:func:`head_revision_fast`).

    Raises:
        DatabaseError: the database cannot be reached.
    """
    if revision == "head" and _at_head(engine):
        return
    from alembic import command

    try:
        with _sqlite_migration_lock(engine), engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                # Several processes may start at once (dashboards, CLI): one migrates,
                # the others wait here, then find the schema current.
                conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
                conn.commit()
            try:
                cfg = alembic_config(engine)
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)
                conn.commit()
            finally:
                if conn.dialect.name == "postgresql":
                    conn.execute(
                        sa.text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY}
                    )
                    conn.commit()
    except (sa.exc.OperationalError, sa.exc.DatabaseError) as exc:
        reason = " ".join(str(exc.orig).split())
        raise DatabaseError(f"cannot open database {safe_url(engine.url)}: {reason}") from None


@contextmanager
def _sqlite_migration_lock(engine: Engine) -> Iterator[None]:
    """An exclusive lock on ``<database>.migrate-lock`` while migrating a SQLite file,
    so processes starting together migrate one after the other (PostgreSQL uses an
    advisory lock instead)."""
    path = engine.url.database if engine.dialect.name == "sqlite" else None
    if not path or path == ":memory:":
        yield
        return
    import fcntl

    with open(f"{path}.migrate-lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def head_revision() -> str:
    """The newest Alembic revision in ``alembic/versions`` (what ``init_db`` upgrades to)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(None)).get_current_head()


def schema_revision(engine: Engine) -> str | None:
    """The Alembic revision the database is at, or ``None`` for an empty database."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One session for one action: commits on success, rolls back on any error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
