"""Engine, sessions and schema migrations.

One engine per process (the dashboard caches it with ``st.cache_resource``; the CLI
makes one per command). SQLite runs in WAL mode with a busy timeout and foreign keys
on; PostgreSQL uses a small connection pool with pre-ping. The schema is owned by
Alembic (``alembic/`` at the repository root): :func:`init_db` upgrades any database
to the newest revision.
"""

from __future__ import annotations

import errno
import math
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


#: URL query parameters whose values are secrets (libpq and common drivers); their
#: values are masked wherever a URL is shown.
SECRET_PARAMS = frozenset(
    {"password", "passwd", "pwd", "sslpassword", "passfile", "sslkey", "secret", "token"}
)
_SECRET_PARAM_RE = re.compile(
    r"(?P<key>(?:^|[?&;])(?:" + "|".join(sorted(SECRET_PARAMS)) + r")=)"
    r"(?P<value>[^&]*(?:&(?![A-Za-z_][A-Za-z0-9_]*=)[^&]*)*)",
    re.IGNORECASE,
)


def _mask_params(text: str) -> str:
    """``text`` with the value of every secret query parameter replaced by ``***``
    (up to the next ``&name=``, so an unencoded ``&`` in the value is masked too)."""
    return _SECRET_PARAM_RE.sub(lambda m: m.group("key") + "***", text)


def _mask_userinfo(text: str) -> str:
    """Mask everything between the user name and the *last* ``@``: a password with an
    unencoded ``@`` (``user:p@ss@host``) is hidden whole, never in part."""
    scheme, sep, rest = text.partition("://")
    if not sep:
        return "<unparseable database URL>"
    at = rest.rfind("@")
    if at < 0:
        return text
    user, colon, _ = rest[:at].partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}@{rest[at + 1 :]}"


def safe_url(url: str | sa.URL) -> str:
    """The one way a database URL is shown to people (messages, logs, manifests).

    SQLAlchemy's ``URL.render_as_string(hide_password=True)``, plus: the values of
    query parameters that carry secrets (:data:`SECRET_PARAMS`: ``?password=``,
    ``sslpassword``, ``passfile``, ...) become ``***``, and a URL SQLAlchemy would read
    wrongly (a password with an unencoded ``@``, a port that is not a number) is masked
    from the user name up to the last ``@`` instead of being parsed, so no part of a
    password is ever shown.
    """
    text = url.render_as_string(hide_password=False) if isinstance(url, sa.URL) else str(url)
    text = _mask_params(text)
    if text.partition("://")[2].count("@") <= 1:
        try:
            return _mask_params(sa.make_url(text).render_as_string(hide_password=True))
        except Exception:  # unparseable (e.g. a port that is no number): mask by hand
            pass
    return _mask_userinfo(text)


def scrub(text: str, url: str | sa.URL | None) -> str:
    """``text`` (e.g. a driver's error message) with the password and the secret query
    parameter values of ``url`` replaced by ``***``."""
    if url is None:
        return text
    try:
        parsed = url if isinstance(url, sa.URL) else sa.make_url(url)
    except Exception:
        return text
    secrets = [parsed.password] + [
        v
        for k, vs in parsed.query.items()
        if k.lower() in SECRET_PARAMS
        for v in ([vs] if isinstance(vs, str) else vs)
    ]
    for secret in secrets:
        if secret:
            text = text.replace(str(secret), "***")
    return text


def failure_reason(exc: BaseException, url: str | sa.URL | None = None) -> str:
    """The real cause of a failed database operation, in words for a person.

    A read-only database (SQLite ``attempt to write a readonly database``, PostgreSQL
    ``read-only transaction``, ``EROFS``/``EACCES``), a full disk (``database or disk is
    full``, ``No space left on device``, ``ENOSPC``, SQLSTATE 53100) and a lock held by
    another writer (``database is locked``) each get their own words; anything else is
    "cannot be reached or refused the operation". The driver's message follows in
    parentheses, with the secrets of ``url`` (default ``Settings.database_url``)
    scrubbed. Used by every door instead of a bare "busy, try again".
    """
    if url is None:
        url = get_settings().database_url
    orig = getattr(exc, "orig", None) or exc
    detail = scrub(" ".join(str(orig).split()), url)
    low = detail.lower()
    code = getattr(orig, "errno", None)
    sqlstate = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if (
        "readonly database" in low
        or "read-only" in low
        or "read only" in low
        or code in (errno.EROFS, errno.EACCES, errno.EPERM)
        or sqlstate == "25006"
    ):
        cause = "the database is read-only: make its file and folder writable"
    elif (
        "disk is full" in low
        or "no space left" in low
        or code == errno.ENOSPC
        or sqlstate in ("53100", "53000")
    ):
        cause = "the disk holding the database is full: free space, then try again"
    elif "locked" in low or "busy" in low or sqlstate in ("40001", "40P01", "55P03"):
        cause = "the database is busy (another write holds the lock): try again in a moment"
    elif "unable to open database file" in low:
        cause = "the database file cannot be opened: check that its folder exists and is writable"
    else:
        cause = "the database cannot be reached or refused the operation"
    return f"{cause} ({detail})" if detail else cause


def parse_url(url: str | sa.URL) -> sa.URL:
    """``url`` parsed by SQLAlchemy, refusing what it would read wrongly.

    Raises:
        DatabaseError: the URL does not parse, its port is not a number from 1 to 65535,
            or its host holds ``@``, ``/`` or ``?`` (a password with an unencoded ``@``:
            ``user:p@ss@host`` reads as password ``p`` and host ``ss@host``, and the
            driver's messages would then show part of the password). The message shows
            the URL only through :func:`safe_url`.
    """
    try:
        parsed = url if isinstance(url, sa.URL) else sa.make_url(url)
    except sa.exc.ArgumentError:
        raise DatabaseError(
            f"cannot parse database URL {safe_url(url)}: expected "
            "dialect+driver://user:password@host:port/database or sqlite:///FILE"
        ) from None
    except ValueError:  # SQLAlchemy reads the port with int(); its message may hold secrets
        raise DatabaseError(
            f"cannot parse database URL {safe_url(url)}: the port is not a number (a "
            "password with @, :, / or ? must be percent-encoded, e.g. @ as %40)"
        ) from None
    if parsed.host and any(c in parsed.host for c in "@/?"):
        # user:p@ss@host is read as password "p", host "ss@host": the driver's
        # messages would then show part of the password.
        raise DatabaseError(
            f"cannot parse database URL {safe_url(url)}: the password seems to contain an "
            "unencoded @; percent-encode it (@ as %40)"
        )
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise DatabaseError(
            f"cannot use database URL {safe_url(url)}: port {parsed.port} is not from 1 to 65535"
        )
    return parsed


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
    parsed = parse_url(url)
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
    connect_args: dict = (
        {} if "application_name" in parsed.query else {"application_name": "pilotgate"}
    )
    if parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
        # A host that accepts and never answers must not hang init or the dashboard.
        # libpq takes whole seconds, at least 2 (it treats 1 as 2).
        connect_args["connect_timeout"] = max(2, math.ceil(settings.connect_timeout_s))
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
        reason = scrub(str(exc), url)
        raise DatabaseError(f"cannot use database URL {safe_url(url)}: {reason}") from None


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
            sqlite = conn.dialect.name == "sqlite"
            if sqlite:
                # A batch migration re-creates a table (SQLite cannot alter a column):
                # with foreign keys on, dropping the old table would cascade-delete
                # every row that points to it. Alembic's documented remedy: keys off
                # while migrating (first statement: no transaction is open yet).
                conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            try:
                cfg = alembic_config(engine)
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)
                conn.commit()
            finally:
                if sqlite:
                    conn.rollback()
                    conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                    conn.commit()
                if conn.dialect.name == "postgresql":
                    conn.execute(
                        sa.text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY}
                    )
                    conn.commit()
    except (sa.exc.OperationalError, sa.exc.DatabaseError) as exc:
        reason = scrub(" ".join(str(exc.orig).split()), engine.url)
        if "timeout expired" in reason:
            seconds = max(2, math.ceil(get_settings().connect_timeout_s))
            reason += f" (no answer within {seconds} s; PILOTGATE_CONNECT_TIMEOUT_S)"
        raise DatabaseError(f"cannot open database {safe_url(engine.url)}: {reason}") from None
    except OSError as exc:  # e.g. the migrate lock file in a read-only folder
        where = f" {exc.filename}" if exc.filename else ""
        raise DatabaseError(
            f"cannot open database {safe_url(engine.url)}: cannot write{where}: "
            f"{exc.strerror or exc} (the database's folder must be writable)"
        ) from None


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


def lock_for_write(session: Session) -> None:
    """Take the database's write lock now, before the reads that decide a write.

    SQLite ignores ``SELECT ... FOR UPDATE`` and Python's sqlite3 starts its
    transaction only at the first write, so a check read before it can be stale by
    the time the write lands (two admins demoting each other would both pass the
    "not the last admin" check). Here: ``BEGIN IMMEDIATE`` when no transaction is open,
    else a write that changes nothing (which takes the same lock inside the open
    transaction); other writers wait up to ``sqlite_busy_timeout_ms``. PostgreSQL: no-op;
    callers lock the rows they read with ``FOR UPDATE``.
    """
    conn = session.connection()
    if conn.dialect.name != "sqlite":
        return
    dbapi = conn.connection.dbapi_connection
    if not dbapi.in_transaction:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("UPDATE app_user SET role = role WHERE 0")


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
