"""The dashboard's link to the core: one engine per process, cached reads, the actor.

Reads are cached with ``st.cache_data`` keyed by the database's data version
(:func:`metrics.store.data_version`, one cheap query read fresh on every run), so a
write from any session or process is seen on the next run; :func:`after_write` also
clears the cache at once for the session that wrote. Every action opens one session
(``session_scope``); pages receive DataFrames and dicts, never live ORM objects.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import streamlit as st
from pydantic import ValidationError
from sqlalchemy.engine import Engine

from dashboard import auth
from metrics import service, store
from metrics.access import allowed, role_of
from metrics.db import DatabaseError, init_db, make_engine, safe_url, scrub, session_scope
from metrics.models import Role
from metrics.settings import get_settings

#: How long a cached read may live even when nothing changed (seconds).
CACHE_TTL = 600


@st.cache_resource(show_spinner="Opening the database…", on_release=lambda e: e.dispose())
def _engine_for(database_url: str) -> Engine:
    engine = make_engine(database_url)
    init_db(engine)
    return engine


def get_engine() -> Engine:
    """The process-wide engine for ``Settings.database_url`` (created and migrated once).

    Shows an error and stops the page when the database cannot be opened.
    """
    url = get_settings().database_url
    try:
        return _engine_for(url)
    except DatabaseError as exc:
        st.error(f"The database cannot be opened: {exc}")
        st.stop()
    except Exception as exc:  # a broken URL or an unreachable server: never a traceback
        reason = " ".join(scrub(str(exc), url).split())
        st.error(f"The database {safe_url(url)} cannot be opened: {reason}")
        st.stop()


def current_identity() -> auth.Identity:
    """Who uses this session (:func:`dashboard.auth.current_identity`).

    Shows an error and stops the page when the ``PILOTGATE_*`` settings are invalid
    (e.g. auth mode proxy without its header): never a traceback, never a guessed user.
    """
    try:
        settings = get_settings()
    except ValidationError as exc:
        st.error(f"PilotGate is misconfigured: {store.validation_message(exc)}. See docs/auth.md.")
        st.stop()
    return auth.current_identity(settings)


def current_actor() -> str:
    """The name recorded on writes: the signed-in user (docs/auth.md), ``Settings.actor``
    in auth mode none; "" when nobody is signed in (every write is then refused)."""
    return current_identity().name or ""


def current_role() -> Role | None:
    """The current user's role, read fresh (``metrics.access.role_of``); None = no rights
    (nobody signed in, or an unknown user with ``default_role=none``).

    Pages use it only to hide what the role cannot do; the store checks again on write.
    """
    actor = current_actor()
    if not actor:
        return None
    with session_scope(get_engine()) as s:
        return role_of(s, actor)


def can(needed: Role) -> bool:
    """True when the current user's role includes ``needed`` (for hiding controls)."""
    return allowed(current_role(), needed)


def data_version() -> tuple:
    """The cache key of every read: database URL plus its data version (fresh each run)."""
    engine = get_engine()
    with session_scope(engine) as s:
        return (safe_url(engine.url), *store.data_version(s))


def after_write() -> None:
    """Call after any write: drop cached reads so this session sees the change now."""
    st.cache_data.clear()


# --------------------------------------------------------------------------- cached reads
# Every function takes the data version as its first argument: it is only a cache key.


@st.cache_data(ttl=CACHE_TTL, show_spinner=False)
def evaluation(version: tuple, as_of: date) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(pilots, metrics) of :func:`metrics.service.evaluate` for the whole portfolio."""
    with session_scope(get_engine()) as s:
        ev = service.evaluate(s, as_of=as_of)
    return ev.pilots, ev.metrics


@st.cache_data(ttl=CACHE_TTL, show_spinner=False)
def pilot_detail(version: tuple, as_of: date, pilot_id: int) -> service.PilotDetail | None:
    """:func:`metrics.service.pilot_detail`, or None for an unknown pilot id."""
    with session_scope(get_engine()) as s:
        return service.pilot_detail(s, pilot_id=pilot_id, as_of=as_of)


@st.cache_data(ttl=CACHE_TTL, show_spinner=False)
def pilots(version: tuple) -> pd.DataFrame:
    """Every pilot (store.pilots_frame), sorted by name."""
    with session_scope(get_engine()) as s:
        return store.pilots_frame(s)


@st.cache_data(ttl=CACHE_TTL, show_spinner=False)
def metrics(
    version: tuple, pilot_id: int | None = None, include_archived: bool = False
) -> pd.DataFrame:
    """Metric definitions (store.metrics_frame), optionally of one pilot; archived
    metrics only with ``include_archived`` (the Admin page)."""
    with session_scope(get_engine()) as s:
        return store.metrics_frame(s, pilot_id=pilot_id, include_archived=include_archived)


@st.cache_data(ttl=CACHE_TTL, show_spinner=False)
def measurements(version: tuple, pilot_id: int) -> pd.DataFrame:
    """All of one pilot's weekly values (no as-of cut: the Enter page needs them all)."""
    with session_scope(get_engine()) as s:
        return store.measurements_frame(s, pilot_id=pilot_id)


def _evaluation(version: tuple, as_of: date) -> service.Evaluation:
    """The cached :func:`evaluation` as a :class:`metrics.service.Evaluation` (so a page
    that shows the portfolio and its summary evaluates it once)."""
    pilots, metrics = evaluation(version, as_of)
    return service.Evaluation(metrics=metrics, pilots=pilots, as_of=as_of)


@st.cache_data(ttl=CACHE_TTL, show_spinner="Building the summary…")
def summary(version: tuple, as_of: date) -> pd.DataFrame:
    """The go/no-go summary export frame (DESIGN §6), from the cached evaluation."""
    ev = _evaluation(version, as_of)
    with session_scope(get_engine()) as s:
        return service.summary_export_frame(s, as_of=as_of, evaluation=ev)


@st.cache_data(ttl=CACHE_TTL, show_spinner="Reading measurements…")
def measurements_export(version: tuple) -> pd.DataFrame:
    """Every measurement in the long form that ``pilotgate import`` reads."""
    from metrics import csvio

    with session_scope(get_engine()) as s:
        return csvio.export_measurements_frame(s)


def import_preview(
    version: tuple,
    data: bytes,
    source: str,
    *,
    decimal: str | None = None,
    date_format: str | None = None,
    progress=None,
    allow_distant_weeks: bool = False,
):
    """A dry run of :func:`metrics.csvio.import_measurements` with updates allowed (the
    page asks for the confirmation): the validation report and the values it would change.

    Kept for this browser session in ``st.session_state`` (the last preview only), keyed
    by the data version, the file's hash and the reading choices -- not ``st.cache_data``,
    whose cached functions replay every element they touched: ``progress(fraction, text)``
    must report to this run's page, and only while a file is really being checked.
    """
    import hashlib

    from metrics import csvio

    key = (
        version,
        hashlib.sha256(data).hexdigest(),
        source,
        decimal,
        date_format,
        allow_distant_weeks,
    )
    held = st.session_state.get("_import_preview")
    if held is not None and held[0] == key:
        return held[1]
    with session_scope(get_engine()) as s:
        report = csvio.import_measurements(
            session=s,
            actor=current_actor(),
            data=data,
            dry_run=True,
            source=source,
            update=True,
            decimal=decimal,
            date_format=date_format,
            progress=progress,
            allow_distant_weeks=allow_distant_weeks,
        )
    st.session_state["_import_preview"] = (key, report)
    return report


@st.cache_data(ttl=CACHE_TTL, show_spinner=False)
def measurement_count(version: tuple) -> int:
    """How many weekly values are stored (:func:`metrics.store.count_measurements`)."""
    with session_scope(get_engine()) as s:
        return store.count_measurements(s)


@st.cache_data(ttl=CACHE_TTL, show_spinner="Comparing vendors…")
def vendors(version: tuple, as_of: date) -> pd.DataFrame:
    """:func:`metrics.service.vendors_frame`: one row per vendor as of ``as_of``."""
    ev = _evaluation(version, as_of)
    with session_scope(get_engine()) as s:
        return service.vendors_frame(s, as_of=as_of, evaluation=ev)
