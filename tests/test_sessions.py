"""Two browser sessions on one database: two ``AppTest`` instances of the dashboard,
sharing one database (a SQLite file, and PostgreSQL when its URL is set) as two people
with the app open at once do. Per-user state lives in each session's own
``st.session_state``; what one saves, the other sees on its next rerun; two edits of
the same value end with the second refused, naming the first one's value."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from sqlmodel import Session
from streamlit.testing.v1 import AppTest

from metrics import store
from metrics.db import make_engine, session_scope
from metrics.settings import get_settings
from tests.apptest_helpers import APP
from tests.apptest_helpers import clear_caches as _clear_caches
from tests.factories import add_weeks, make_pilot, metric_id, metric_in

ENTER = "dashboard/pages/enter.py"
PILOT = "Helpdesk triage assistant"
START = date(2012, 1, 2)
AS_OF = date(2012, 2, 20)  # last complete week: 2012-W07
W6 = date(2012, 2, 6)  # 2012-W06: resolution time 72 h (version 1)


def _shared_db(engine, monkeypatch):
    with session_scope(engine) as s:
        pid = make_pilot(
            s, metrics=[metric_in("resolution_time", baseline=118.0, max_value=1000.0)]
        )
        mid = metric_id(s, PILOT, "resolution_time")
        add_weeks(s, mid, START, [100.0, 90.0, 80.0, 76.0, 72.0, 72.0], actor="seed")
    monkeypatch.setenv("PILOTGATE_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    _clear_caches()
    return {"engine": engine, "pilot": pid, "metric": mid, "monkeypatch": monkeypatch}


@pytest.fixture
def shared(engine, monkeypatch):
    """One database both sessions use: the helpdesk pilot, six weeks of resolution time."""
    yield _shared_db(engine, monkeypatch)
    _clear_caches()


@pytest.fixture
def sqlite_shared(sqlite_engine, monkeypatch):
    """As ``shared``, on SQLite only (for its file lock)."""
    yield _shared_db(sqlite_engine, monkeypatch)
    _clear_caches()


def as_user(db, name: str) -> None:
    """Make the next run of a session act as ``name`` (auth mode none: the actor setting)."""
    db["monkeypatch"].setenv("PILOTGATE_ACTOR", name)
    get_settings.cache_clear()


def run(at: AppTest, db, name: str) -> AppTest:
    """Run ``at`` as user ``name``; no exception allowed."""
    as_user(db, name)
    at.run(timeout=30)
    assert not at.exception, [e.value for e in at.exception]
    return at


def open_enter(db, name: str, week: date = W6) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30)
    at.session_state["as_of"] = AS_OF
    at.session_state["pilot_id"] = db["pilot"]
    run(at, db, name)
    at.switch_page(ENTER)
    run(at, db, name)
    at.selectbox(key="enter_week").set_value(week)
    return run(at, db, name)


def value_field(at: AppTest, db, week: date = W6):
    """The value field of the metric for ``week``, whatever its generation suffix."""
    prefix = f"enter-value-{db['pilot']}-{db['metric']}-{week.isoformat()}"
    found = [n for n in at.text_input if n.key == prefix or n.key.startswith(prefix + "-v")]
    assert len(found) == 1, [n.key for n in at.text_input]
    return found[0]


def reason_field(at: AppTest, db, week: date = W6):
    prefix = f"enter-reason-{db['pilot']}-{week.isoformat()}"
    found = [t for t in at.text_input if t.key == prefix or t.key.startswith(prefix + "-v")]
    assert len(found) == 1, [t.key for t in at.text_input]
    return found[0]


def save(at: AppTest, db, name: str, week: date = W6) -> AppTest:
    at.button(key=f"enter-save-{db['pilot']}-{week.isoformat()}").click()
    return run(at, db, name)


def texts(at: AppTest) -> str:
    import re

    parts = [c.value for c in at.caption] + [m.value for m in at.markdown]
    parts += [x.value for x in at.error] + [x.value for x in at.success]
    return re.sub(r"\\(.)", r"\1", "\n".join(parts)).replace("\u200b", "")


def stored(db, week: date = W6) -> tuple[float, int, str]:
    with Session(db["engine"]) as s:
        m = store.measurements_frame(s).set_index("week")
    row = m.loc[pd.Timestamp(week)]
    return float(row["value"]), int(row["version"]), row["entered_by"]


def revisions(db, week: date = W6) -> list[tuple]:
    with Session(db["engine"]) as s:
        r = store.revisions_frame(s)
    r = r[r["week"] == pd.Timestamp(week)]
    return list(zip(r["action"], r["new_value"], r["actor"], strict=True))


def test_a_save_in_one_session_shows_in_the_other_on_its_next_rerun(shared):
    a = open_enter(shared, "alice")
    b = open_enter(shared, "bob")
    assert "Now: **72 h** (by seed, version 1)" in texts(b)

    value_field(a, shared).set_value("61.2")
    reason_field(a, shared).set_value("recount")
    save(a, shared, "alice")
    assert [s.value for s in a.success] == [
        f"Saved 2012-W06 for {PILOT}: 0 created, 1 updated, 0 unchanged."
    ]
    assert stored(shared) == (61.2, 2, "alice")

    run(b, shared, "bob")  # any rerun of B, e.g. a click elsewhere
    assert "Now: **61.2 h** (by alice, version 2)" in texts(b)
    # each session kept its own state: B's week choice, A's emptied form
    assert b.selectbox(key="enter_week").value == W6
    assert value_field(a, shared).value == ""


def test_two_sessions_edit_the_same_value_the_second_is_refused(shared):
    a = open_enter(shared, "alice")
    b = open_enter(shared, "bob")  # both forms show 72 h, version 1

    value_field(a, shared).set_value("61.2")
    reason_field(a, shared).set_value("recount")
    save(a, shared, "alice")
    assert "1 updated" in a.success[0].value

    value_field(b, shared).set_value("60.0")
    reason_field(b, shared).set_value("typo")
    save(b, shared, "bob")
    assert not b.success
    with Session(shared["engine"]) as s:
        at = store.measurements_frame(s).set_index("week").loc[pd.Timestamp(W6), "entered_at"]
    errors = [e.value for e in b.error]
    assert len(errors) == 1
    assert (
        texts(b).count(
            f"Not saved: Resolution time 2012-W06 was changed by alice to 61.2 h at {at:%H:%M} UTC "
            "while you were editing; your value 60.0 was not saved. Reload to see it."
        )
        == 1
    )
    assert stored(shared) == (61.2, 2, "alice")
    assert revisions(shared) == [("create", 72.0, "seed"), ("update", 61.2, "alice")]
    # B now sees alice's value next to its field (its typed 60.0 is kept to retry)
    assert "Now: **61.2 h** (by alice, version 2)" in texts(b)
    assert value_field(b, shared).value == "60.0"

    # having seen it, B may still correct it: now from version 2
    save(b, shared, "bob")
    assert [s.value for s in b.success] == [
        f"Saved 2012-W06 for {PILOT}: 0 created, 1 updated, 0 unchanged."
    ]
    assert stored(shared) == (60.0, 3, "bob")
    assert revisions(shared)[-1] == ("update", 60.0, "bob")


def test_two_sessions_enter_the_first_value_of_a_week(shared):
    week = date(2012, 2, 13)  # no value yet in either form
    a = open_enter(shared, "alice", week)
    b = open_enter(shared, "bob", week)
    value_field(a, shared, week).set_value("70.0")
    save(a, shared, "alice", week)
    value_field(b, shared, week).set_value("71.0")
    save(b, shared, "bob", week)
    assert "was changed by alice to 70.0 h at " in texts(b)
    assert "your value 71.0 was not saved. Reload to see it." in texts(b)
    assert stored(shared, week) == (70.0, 1, "alice")
    assert revisions(shared, week) == [("create", 70.0, "alice")]


def test_a_save_while_the_database_is_busy_says_try_again(sqlite_shared, monkeypatch):
    """SQLite: another writer holds the lock longer than the busy timeout."""
    shared = sqlite_shared
    monkeypatch.setenv("PILOTGATE_SQLITE_BUSY_TIMEOUT_MS", "50")
    _clear_caches()
    a = open_enter(shared, "alice")
    value_field(a, shared).set_value("61.2")
    reason_field(a, shared).set_value("recount")
    other = make_engine(str(shared["engine"].url))
    lock = other.raw_connection()
    try:
        lock.cursor().execute("BEGIN IMMEDIATE")  # e.g. a long import in another process
        save(a, shared, "alice")
    finally:
        lock.rollback()
        lock.close()
        other.dispose()
    assert [e.value for e in a.error] == [
        "Not saved: the database is busy (another write holds the lock): try again in a "
        "moment (database is locked)."
    ]
    assert stored(shared) == (72.0, 1, "seed")
    save(a, shared, "alice")  # the lock is gone: the same form saves
    assert "1 updated" in a.success[0].value
    assert stored(shared) == (61.2, 2, "alice")


def test_the_refusal_comes_before_the_reason_check(shared):
    """B typed no reason: B first learns that alice changed the value (not "type a
    reason"); saving again, now knowingly, asks for the reason; nothing written by B."""
    a = open_enter(shared, "alice")
    b = open_enter(shared, "bob")
    value_field(a, shared).set_value("61.2")
    reason_field(a, shared).set_value("recount")
    save(a, shared, "alice")

    value_field(b, shared).set_value("60.0")
    save(b, shared, "bob")
    assert [e.value for e in b.error] and "was changed by alice to 61.2 h" in texts(b)
    assert "A reason for the correction is required" not in texts(b)
    save(b, shared, "bob")
    assert "Not saved. A reason for the correction is required: Resolution time" in texts(b)
    assert stored(shared) == (61.2, 2, "alice")
    assert revisions(shared) == [("create", 72.0, "seed"), ("update", 61.2, "alice")]


def test_a_save_on_a_read_only_database_names_the_cause(sqlite_shared):
    """Issue 9: a read-only database is not "busy, try again"."""
    import sqlalchemy as sa

    shared = sqlite_shared
    a = open_enter(shared, "alice")
    value_field(a, shared).set_value("61.2")
    reason_field(a, shared).set_value("recount")

    def _read_only(dbapi_conn, record, proxy):
        dbapi_conn.execute("PRAGMA query_only = ON")

    sa.event.listen(sa.pool.Pool, "checkout", _read_only)
    try:
        save(a, shared, "alice")
    finally:
        sa.event.remove(sa.pool.Pool, "checkout", _read_only)
    assert [e.value for e in a.error] == [
        "Not saved: the database is read-only: make its file and folder writable "
        "(attempt to write a readonly database)."
    ]
    assert stored(shared) == (72.0, 1, "seed")


def test_a_save_on_a_full_disk_names_the_cause(sqlite_shared, monkeypatch):
    """Issue 9: SQLite's "database or disk is full" is not "busy, try again"."""
    import sqlite3

    import sqlalchemy as sa

    shared = sqlite_shared
    a = open_enter(shared, "alice")
    value_field(a, shared).set_value("61.2")
    reason_field(a, shared).set_value("recount")

    def _full(**kw):
        raise sa.exc.OperationalError(
            "UPDATE measurement ...", {}, sqlite3.OperationalError("database or disk is full")
        )

    monkeypatch.setattr(store, "record_measurement", _full)
    save(a, shared, "alice")
    assert [e.value for e in a.error] == [
        "Not saved: the disk holding the database is full: free space, then try again "
        "(database or disk is full)."
    ]
