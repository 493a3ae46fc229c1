"""Corrections with history: revisions, optimistic concurrency, restore, the audit
export, and the Enter/Pilot page controls for them (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import io
import re
import sys
from datetime import date

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlmodel import Session
from streamlit.testing.v1 import AppTest

from metrics import store
from metrics.cli import main as cli_main
from metrics.db import session_scope
from metrics.models import AppUser, Measurement, MeasurementRevision
from metrics.settings import get_settings
from tests.apptest_helpers import APP
from tests.apptest_helpers import clear_caches as _clear_caches
from tests.factories import make_pilot, metric_id, metric_in

PILOT = "Helpdesk triage assistant"
W1 = date(2012, 1, 2)
W3 = date(2012, 1, 16)  # 2012-W03


def count(session: Session, model) -> int:
    return session.execute(sa.select(sa.func.count()).select_from(model)).scalar_one()


def hhmm(at) -> str:
    """How a message names the time of a change: ``10:04 UTC``."""
    return f"{pd.Timestamp(at):%H:%M} UTC"


def stored(session: Session, mid: int, week: date) -> dict | None:
    m = store.measurements_frame(session)
    row = m[(m["metric_id"] == mid) & (m["week"] == pd.Timestamp(week))]
    return None if row.empty else row.iloc[0].to_dict()


def history(session: Session, mid: int, week: date) -> list[tuple]:
    r = store.revisions_frame(session, metric_id=mid)
    r = r[r["week"] == pd.Timestamp(week)]
    return [
        (
            a,
            None if pd.isna(o) else o,
            None if pd.isna(n) else n,
            on,
            nn,
            who,
            why,
        )
        for a, o, n, on, nn, who, why in zip(
            r["action"],
            r["old_value"],
            r["new_value"],
            r["old_note"],
            r["new_note"],
            r["actor"],
            r["reason"],
            strict=True,
        )
    ]


@pytest.fixture
def mid(session) -> int:
    make_pilot(session)
    session.commit()
    return metric_id(session, PILOT, "resolution_time")


def record(session, mid, value, *, actor="alice", week=W3, **kw) -> store.WriteCounts:
    out = store.record_measurement(
        session=session, actor=actor, metric_id=mid, week=week, value=value, **kw
    )
    session.commit()
    return out


# =========================================================================== store


def test_every_change_writes_one_revision_with_who_what_and_why(session, mid):
    assert record(session, mid, 70.0, note="first", reason="weekly entry") == store.WriteCounts(
        created=1
    )
    assert record(
        session, mid, 61.2, actor="bo", note="recount", reason="typo", expected_version=1
    ) == store.WriteCounts(updated=1)
    assert store.delete_measurement(
        session=session, actor="cy", metric_id=mid, week=W3, reason="wrong week", expected_version=2
    )
    session.commit()
    assert stored(session, mid, W3) is None
    assert store.restore_measurement(
        session=session, actor="di", metric_id=mid, week=W3, reason="deleted by mistake"
    ) == pytest.approx(61.2)
    session.commit()
    assert history(session, mid, W3) == [
        ("create", None, 70.0, None, "first", "alice", "weekly entry"),
        ("update", 70.0, 61.2, "first", "recount", "bo", "typo"),
        ("delete", 61.2, None, "recount", None, "cy", "wrong week"),
        ("restore", None, 61.2, None, "recount", "di", "deleted by mistake"),
    ]
    now = stored(session, mid, W3)
    # version = number of revisions of the week, so it names exactly one value
    assert (now["value"], now["note"], now["version"], now["entered_by"]) == (
        61.2,
        "recount",
        4,
        "di",
    )
    at = store.revisions_frame(session)["at"]
    assert str(at.dt.tz) == "UTC"


def test_value_and_revision_are_one_transaction(engine):
    with session_scope(engine) as s:
        make_pilot(s)
    with Session(engine) as s:
        mid = metric_id(s, PILOT, "resolution_time")
    with pytest.raises(RuntimeError), session_scope(engine) as s:
        store.record_measurement(session=s, actor="a", metric_id=mid, week=W1, value=5.0)
        assert count(s, Measurement) == 1 and count(s, MeasurementRevision) == 1
        raise RuntimeError("the action fails after the write")
    with Session(engine) as s:
        assert (count(s, Measurement), count(s, MeasurementRevision)) == (0, 0)


def test_stale_form_is_refused_with_the_value_someone_else_saved(session, mid):
    record(session, mid, 70.0, actor="alice")  # version 1: both forms show this
    record(session, mid, 61.2, actor="alice", expected_version=1, reason="recount")
    at = stored(session, mid, W3)["entered_at"]
    with pytest.raises(store.StoreError) as err:
        record(session, mid, 60.0, actor="bob", expected_version=1, reason="typo")
    session.rollback()
    assert str(err.value) == (
        f"Resolution time 2012-W03 was changed by alice to 61.2 h at {hhmm(at)} while you "
        "were editing; your value 60.0 was not saved. Reload to see it."
    )
    assert stored(session, mid, W3)["value"] == 61.2
    assert len(history(session, mid, W3)) == 2
    # with the version now shown, bob's correction goes through
    assert record(session, mid, 60.0, actor="bob", expected_version=2, reason="typo") == (
        store.WriteCounts(updated=1)
    )
    assert (stored(session, mid, W3)["value"], stored(session, mid, W3)["version"]) == (60.0, 3)


def test_a_form_that_showed_no_value_does_not_overwrite_a_new_one(session, mid):
    record(session, mid, 61.2, actor="alice")
    with pytest.raises(store.StoreError, match=r"was changed by alice to 61\.2 h at .* your value"):
        record(session, mid, 60.0, actor="bob", expected_version=None)
    session.rollback()
    assert stored(session, mid, W3)["value"] == 61.2
    assert len(history(session, mid, W3)) == 1


def test_identical_second_submit_is_unchanged_without_a_revision(session, mid):
    record(session, mid, 70.0)
    first = record(session, mid, 60.0, actor="bob", expected_version=1, reason="typo")
    second = record(session, mid, 60.0, actor="bob", expected_version=1, reason="typo")
    assert (first, second) == (store.WriteCounts(updated=1), store.WriteCounts(unchanged=1))
    assert len(history(session, mid, W3)) == 2
    assert stored(session, mid, W3)["version"] == 2
    # the same for a first entry submitted twice from a form that showed no value
    assert record(session, mid, 5.0, week=W1, expected_version=None) == store.WriteCounts(created=1)
    assert record(session, mid, 5.0, week=W1, expected_version=None) == store.WriteCounts(
        unchanged=1
    )
    assert len(history(session, mid, W1)) == 1


def test_saving_over_a_value_deleted_meanwhile_is_refused(session, mid):
    record(session, mid, 70.0, actor="alice")
    assert store.delete_measurement(session=session, actor="bob", metric_id=mid, week=W3)
    session.commit()
    at = store.revisions_frame(session)["at"].iloc[-1]
    with pytest.raises(store.StoreError) as err:
        record(session, mid, 50.0, actor="carol", expected_version=1)
    session.rollback()
    assert str(err.value) == (
        f"Resolution time 2012-W03 was deleted by bob at {hhmm(at)} while you were editing; "
        "your value 50.0 was not saved. Reload to see it."
    )
    assert stored(session, mid, W3) is None


def test_delete_checks_the_version_and_a_second_delete_is_a_no_op(session, mid):
    record(session, mid, 70.0, actor="alice")
    record(session, mid, 61.2, actor="alice", expected_version=1)
    with pytest.raises(store.StoreError, match="your deletion was not saved"):
        store.delete_measurement(
            session=session, actor="bob", metric_id=mid, week=W3, expected_version=1
        )
    session.rollback()
    assert stored(session, mid, W3)["value"] == 61.2
    with pytest.raises(store.StoreError, match=r"changed by alice to 61\.2 h"):
        store.delete_measurement(
            session=session, actor="bob", metric_id=mid, week=W3, expected_version=None
        )
    session.rollback()
    kw = dict(session=session, actor="bob", metric_id=mid, week=W3, expected_version=2)
    assert store.delete_measurement(**kw, reason="duplicate") is True
    session.commit()
    assert store.delete_measurement(**kw, reason="duplicate") is False  # double click
    session.commit()
    assert [h[0] for h in history(session, mid, W3)] == ["create", "update", "delete"]


def test_a_week_entered_again_after_a_delete_continues_its_version(session, mid):
    record(session, mid, 70.0)
    assert store.delete_measurement(session=session, actor="bob", metric_id=mid, week=W3)
    rows = pd.DataFrame({"metric_id": [mid], "week": [W3], "value": [65.0], "note": [""]})
    store.write_measurements(session=session, actor="import", rows=rows, reason="import a.csv")
    session.commit()
    assert stored(session, mid, W3)["version"] == 3
    # a form still showing the first value (version 1) cannot overwrite the new one
    with pytest.raises(store.StoreError, match=r"changed by import to 65\.0 h"):
        record(session, mid, 60.0, actor="carol", expected_version=1)
    session.rollback()
    assert stored(session, mid, W3)["value"] == 65.0


def test_restore_refuses_a_week_with_a_value_or_without_history(session, mid):
    record(session, mid, 61.2, actor="alice")
    with pytest.raises(store.StoreError) as err:
        store.restore_measurement(session=session, actor="a", metric_id=mid, week=W3)
    assert str(err.value) == (
        "Resolution time 2012-W03 has a value (61.2 h, entered by alice): only a deleted "
        "value can be restored; correct it on the Enter page instead"
    )
    with pytest.raises(store.StoreError) as err:
        store.restore_measurement(session=session, actor="a", metric_id=mid, week=W1)
    assert str(err.value) == (
        "Resolution time 2012-W01 never had a value: there is nothing to restore"
    )
    session.rollback()
    assert count(session, MeasurementRevision) == 1


def test_restore_refuses_a_value_outside_the_current_range(session, mid):
    record(session, mid, 120.5)
    store.delete_measurement(session=session, actor="a", metric_id=mid, week=W3)
    make_pilot(session, metrics=[metric_in(max_value=100.0)])
    session.commit()
    with pytest.raises(store.StoreError) as err:
        store.restore_measurement(session=session, actor="a", metric_id=mid, week=W3)
    assert str(err.value) == (
        "Resolution time 2012-W03: the deleted value cannot be restored: Resolution time: "
        "value 120.5 is above the maximum 100"
    )
    session.rollback()
    assert stored(session, mid, W3) is None


def test_writes_need_the_editor_role(session, mid):
    record(session, mid, 61.2)
    store.delete_measurement(session=session, actor="alice", metric_id=mid, week=W3)
    session.add(AppUser(name="vera", role="viewer"))
    session.commit()
    with pytest.raises(
        store.PermissionDenied,
        match="vera is a viewer: restoring a measurement needs the editor role",
    ):
        store.restore_measurement(session=session, actor="vera", metric_id=mid, week=W3)
    with pytest.raises(store.PermissionDenied, match="writing measurements needs the editor"):
        store.record_measurement(session=session, actor="vera", metric_id=mid, week=W1, value=1)
    with pytest.raises(store.PermissionDenied, match="deleting a measurement needs the editor"):
        store.delete_measurement(session=session, actor="vera", metric_id=mid, week=W3)
    session.rollback()
    assert count(session, MeasurementRevision) == 2


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        ("x" * 1001, "the reason is 1001 characters long; shorten it to at most 1000"),
        ("typo\x00", "the reason contains control characters"),
    ],
)
def test_bad_reasons_are_refused(session, mid, reason, message):
    with pytest.raises(store.StoreError, match=re.escape(message)):
        store.record_measurement(
            session=session, actor="a", metric_id=mid, week=W1, value=1.0, reason=reason
        )
    session.rollback()
    assert count(session, Measurement) == 0


def test_unknown_metric_is_a_clear_error(session, mid):
    with pytest.raises(store.StoreError, match="unknown metric id 999"):
        store.record_measurement(session=session, actor="a", metric_id=999, week=W1, value=1.0)


def test_revisions_frame_of_one_pilot(session, mid):
    make_pilot(session, "Invoice copilot", metrics=[metric_in("cycle_time")])
    other = metric_id(session, "Invoice copilot", "cycle_time")
    record(session, mid, 1.0)
    record(session, other, 2.0)
    pid = int(store.pilots_frame(session).set_index("pilot").loc[PILOT, "pilot_id"])
    r = store.revisions_frame(session, pilot_id=pid)
    assert list(r["metric_id"]) == [mid]
    assert list(r["new_value"]) == [1.0]
    assert r["old_value"].dtype == "float64" and r["revision_id"].dtype == "int64"


# =========================================================================== export


def test_export_revisions_cli_writes_the_audit_trail(engine, tmp_path, monkeypatch, capsys):
    with session_scope(engine) as s:
        make_pilot(s)
        mid = metric_id(s, PILOT, "resolution_time")
    with session_scope(engine) as s:
        store.record_measurement(
            session=s, actor="alice", metric_id=mid, week=W3, value=70.0, note="=1+1"
        )
    with session_scope(engine) as s:
        store.record_measurement(
            session=s,
            actor="bob",
            metric_id=mid,
            week=W3,
            value=61.25,
            note="recount",
            reason='=HYPERLINK("http://x")',
            expected_version=1,
        )
    with session_scope(engine) as s:
        store.delete_measurement(session=s, actor="cy", metric_id=mid, week=W3, reason="dup")
    out = tmp_path / "revisions.csv"
    url = engine.url.render_as_string(hide_password=False)
    monkeypatch.setattr(
        sys, "argv", ["pilotgate", "--database-url", url, "export", "revisions", "-o", str(out)]
    )
    try:
        cli_main()
        code = 0
    except SystemExit as exc:
        code = exc.code
    _, err = capsys.readouterr()
    assert code in (0, None), err
    raw = out.read_bytes()
    assert raw.startswith("\ufeff".encode())
    text = raw.decode("utf-8").removeprefix("\ufeff")
    assert text.splitlines()[0] == (
        "pilot,metric,week,action,field,old_value,new_value,old_note,new_note,actor,at,reason"
    )
    everything = list(csv.DictReader(io.StringIO(text)))
    # the pilot's creation comes first (definition rows: tests/test_trust_data.py)
    assert everything[0]["action"] == "pilot_create"
    rows = [r for r in everything if r["field"] == "value"]
    assert [
        (r["week"], r["action"], r["old_value"], r["new_value"], r["old_note"], r["new_note"])
        for r in rows
    ] == [
        ("2012-W03", "create", "", "70.0", "", "'=1+1"),
        ("2012-W03", "update", "70.0", "61.25", "'=1+1", "recount"),
        ("2012-W03", "delete", "61.25", "", "recount", ""),
    ]
    assert {(r["pilot"], r["metric"]) for r in rows} == {(PILOT, "resolution_time")}
    assert [r["actor"] for r in rows] == ["alice", "bob", "cy"]
    assert [r["reason"] for r in rows] == ["", '\'=HYPERLINK("http://x")', "dup"]
    with Session(engine) as s:
        ats = store.revisions_frame(s)["at"]
    assert [r["at"] for r in rows] == [f"{a:%Y-%m-%dT%H:%M:%SZ}" for a in ats]


def test_export_revisions_frame_when_empty(session):
    df = store.revisions_export_frame(session)
    assert list(df.columns) == store.REVISION_EXPORT_COLUMNS
    assert df.empty


# =========================================================================== pages

START = date(2012, 1, 2)
AS_OF = date(2012, 2, 20)  # last complete week 2012-W07
W6 = date(2012, 2, 6)


def _as(monkeypatch, actor: str) -> None:
    monkeypatch.setenv("PILOTGATE_ACTOR", actor)
    get_settings.cache_clear()


@pytest.fixture
def app_db(engine, monkeypatch):
    """The helpdesk pilot with six weeks of resolution time and error rate, on the
    ``engine`` backend, used by the dashboard (actor "page-tester")."""
    with session_scope(engine) as s:
        pid = make_pilot(
            s,
            metrics=[
                metric_in("resolution_time", baseline=118.0, target=80.0, max_value=1000.0),
                metric_in("error_rate", label="Error rate", unit="%", target=4.0, baseline=5.0),
            ],
        )
        ids = {k: metric_id(s, PILOT, k) for k in ("resolution_time", "error_rate")}
        rows = pd.DataFrame(
            {
                "metric_id": [ids["resolution_time"]] * 6 + [ids["error_rate"]] * 6,
                "week": [START + pd.Timedelta(weeks=i) for i in range(6)] * 2,
                "value": [100.0, 90.0, 80.0, 76.0, 72.0, 72.0, 4.8, 5.0, 4.9, 4.7, 4.6, 4.8],
            }
        )
        store.write_measurements(session=s, actor="seed", rows=rows)
    monkeypatch.setenv("PILOTGATE_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    _as(monkeypatch, "page-tester")
    _clear_caches()
    yield {"engine": engine, "pilot": pid, **ids}
    _clear_caches()


def open_page(page: str, pilot_id: int, *, check: bool = True) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30)
    at.session_state["as_of"] = AS_OF
    at.session_state["pilot_id"] = pilot_id
    at.run(timeout=30)
    at.switch_page(page).run(timeout=30)
    if check:
        assert not at.exception, [e.value for e in at.exception]
    return at


def unescape(md: str) -> str:
    return re.sub(r"\\(.)", r"\1", str(md)).replace("\u200b", "")


def enter_week(db, week: date = W6) -> AppTest:
    at = open_page("dashboard/pages/enter.py", db["pilot"])
    at.selectbox(key="enter_week").set_value(week).run(timeout=30)
    return at


def value_key(db, metric: str, week: date = W6, gen: str = "") -> str:
    return f"enter-value-{db['pilot']}-{db[metric]}-{week.isoformat()}{gen}"


def click(at: AppTest, db, what: str, week: date = W6) -> AppTest:
    at.button(key=f"enter-{what}-{db['pilot']}-{week.isoformat()}").click().run(timeout=30)
    assert not at.exception, [e.value for e in at.exception]
    return at


def history_frame(at: AppTest) -> pd.DataFrame:
    """The Pilot page's history table (the one dataframe with Action and Reason)."""
    found = [d.value for d in at.dataframe if {"Action", "Reason"} <= set(d.value.columns)]
    assert len(found) == 1
    return found[0]


def week_state(engine, mid: int, week: date = W6) -> tuple:
    with Session(engine) as s:
        now = stored(s, mid, week)
        revs = history(s, mid, week)
    return (None if now is None else now["value"]), revs


def test_enter_correction_needs_a_reason(app_db):
    at = enter_week(app_db)
    at.text_input(key=value_key(app_db, "resolution_time")).input("60.0")
    click(at, app_db, "preview")
    assert any("A reason for the correction is required" in w.value for w in at.warning)
    click(at, app_db, "save")
    errors = [unescape(e.value) for e in at.error]
    assert errors == [
        "Not saved. A reason for the correction is required: Resolution time already has a "
        "value for 2012-W06. Type it in **Reason for the correction**, then save."
    ]
    assert week_state(app_db["engine"], app_db["resolution_time"])[0] == 72.0

    at.text_input(key=f"enter-reason-{app_db['pilot']}-{W6.isoformat()}").set_value("typo")
    click(at, app_db, "save")
    assert [s.value for s in at.success] == [
        f"Saved 2012-W06 for {PILOT}: 0 created, 1 updated, 0 unchanged."
    ]
    value, revs = week_state(app_db["engine"], app_db["resolution_time"])
    assert value == 60.0
    assert revs[-1] == ("update", 72.0, 60.0, "", "", "page-tester", "typo")


def test_enter_new_week_needs_no_reason_field(app_db):
    at = enter_week(app_db, date(2012, 2, 13))
    labels = [t.label for t in at.text_input if not t.key.startswith("enter-value-")]
    assert labels == ["Note (optional)"]
    at.text_input(key=value_key(app_db, "resolution_time", date(2012, 2, 13))).input("70.0")
    click(at, app_db, "save", date(2012, 2, 13))
    assert "1 created" in at.success[0].value
    _, revs = week_state(app_db["engine"], app_db["resolution_time"], date(2012, 2, 13))
    assert revs == [("create", None, 70.0, None, "", "page-tester", "entered on the Enter page")]


def test_enter_delete_a_value_with_a_reason(app_db):
    at = enter_week(app_db)
    box = f"enter-delete-{app_db['pilot']}-{app_db['error_rate']}-{W6.isoformat()}"
    at.checkbox(key=box).check()
    click(at, app_db, "save")
    assert "A reason for the correction is required: Error rate" in unescape(at.error[0].value)
    assert week_state(app_db["engine"], app_db["error_rate"])[0] == 4.8

    at.text_input(key=f"enter-reason-{app_db['pilot']}-{W6.isoformat()}").set_value("wrong week")
    click(at, app_db, "preview")
    changes = at.dataframe[-1].value.set_index("Metric")
    assert changes.loc["Error rate (%)", "Action"] == "deleted"
    assert changes.loc["Error rate (%)", "Existing"] == 4.8
    click(at, app_db, "save")
    assert [s.value for s in at.success] == [
        f"Saved 2012-W06 for {PILOT}: 0 created, 0 updated, 0 unchanged, 1 deleted."
    ]
    value, revs = week_state(app_db["engine"], app_db["error_rate"])
    assert value is None
    assert revs[-1] == ("delete", 4.8, None, "", None, "page-tester", "wrong week")
    # the form is emptied and the deleted week offers no Delete box any more
    keys = {c.key for c in at.checkbox}
    gone = f"enter-delete-{app_db['pilot']}-{app_db['error_rate']}-{W6.isoformat()}-v1"
    kept = f"enter-delete-{app_db['pilot']}-{app_db['resolution_time']}-{W6.isoformat()}-v1"
    assert (gone in keys, kept in keys) == (False, True)


def test_enter_typed_value_and_delete_together_is_refused(app_db):
    at = enter_week(app_db)
    at.text_input(key=value_key(app_db, "error_rate")).input("4.0")
    at.checkbox(
        key=f"enter-delete-{app_db['pilot']}-{app_db['error_rate']}-{W6.isoformat()}"
    ).check()
    at.text_input(key=f"enter-reason-{app_db['pilot']}-{W6.isoformat()}").set_value("x")
    click(at, app_db, "save")
    assert "Error rate: either type a new value or tick Delete this value, not both." in unescape(
        at.error[0].value
    )
    assert week_state(app_db["engine"], app_db["error_rate"])[0] == 4.8


def test_enter_second_identical_submit_writes_once(app_db):
    """A double-clicked Save: the second submit carries the version the first one saw."""
    at = enter_week(app_db)
    at.text_input(key=value_key(app_db, "resolution_time")).input("60.0")
    at.text_input(key=f"enter-reason-{app_db['pilot']}-{W6.isoformat()}").set_value("typo")
    click(at, app_db, "save")
    assert "1 updated" in at.success[0].value
    # the second click of the double click: same values, same (old) form version
    seen = f"enter-seen-{app_db['pilot']}-{W6.isoformat()}"
    at.session_state[seen] = {app_db["resolution_time"]: 1, app_db["error_rate"]: 1}
    at.text_input(key=value_key(app_db, "resolution_time", gen="-v1")).input("60.0")
    at.text_input(key=f"enter-reason-{app_db['pilot']}-{W6.isoformat()}-v1").set_value("typo")
    click(at, app_db, "save")
    assert [s.value for s in at.success] == [
        f"Saved 2012-W06 for {PILOT}: 0 created, 0 updated, 1 unchanged."
    ]
    value, revs = week_state(app_db["engine"], app_db["resolution_time"])
    assert value == 60.0
    assert [r[0] for r in revs] == ["create", "update"]


def test_pilot_page_history_and_restore(app_db, monkeypatch):
    with session_scope(app_db["engine"]) as s:
        store.record_measurement(
            session=s,
            actor="alice",
            metric_id=app_db["resolution_time"],
            week=W6,
            value=61.2,
            note="recount",
            reason="typo",
            expected_version=1,
        )
    with session_scope(app_db["engine"]) as s:
        store.delete_measurement(
            session=s, actor="bob", metric_id=app_db["resolution_time"], week=W6, reason="dup"
        )
    at = open_page("dashboard/pages/pilot.py", app_db["pilot"])
    table = history_frame(at)
    top = table.iloc[:2]
    assert list(top["Action"]) == ["deleted", "corrected"]
    assert list(top["Week"]) == ["2012-W06", "2012-W06"]
    assert list(top["Metric"]) == ["Resolution time (h)"] * 2
    assert list(top["Old value"]) == [61.2, 72.0]
    assert pd.isna(top["New value"].iloc[0]) and top["New value"].iloc[1] == 61.2
    assert list(top["By"]) == ["bob", "alice"]
    assert list(top["Reason"]) == ["dup", "typo"]
    assert list(top["Note"]) == ["recount", "recount"]
    assert len(table) == 14

    # filter by metric and week
    at.selectbox(key=f"history-metric-{app_db['pilot']}").set_value(app_db["resolution_time"])
    at.run(timeout=30)
    at.selectbox(key=f"history-week-{app_db['pilot']}").set_value("2012-02-06").run(timeout=30)
    table = history_frame(at)
    assert list(table["Action"]) == ["deleted", "corrected", "entered"]

    # restore needs a reason, then brings the value back
    choice = at.selectbox(key=f"history-restore-choice-{app_db['pilot']}")
    assert choice.value == f"{app_db['resolution_time']}:2012-02-06"
    assert choice.options[0].startswith("Resolution time 2012-W06: 61.2 h (deleted by bob ")
    at.button(key=f"history-restore-{app_db['pilot']}").click().run(timeout=30)
    assert [e.value for e in at.error] == [
        "Not restored: type a reason for restoring, then press Restore again."
    ]
    at.text_input(key=f"history-restore-reason-{app_db['pilot']}").set_value("deleted by mistake")
    at.button(key=f"history-restore-{app_db['pilot']}").click().run(timeout=30)
    assert not at.exception
    assert [unescape(s.value) for s in at.success] == ["Restored Resolution time 2012-W06: 61.2 h."]
    value, revs = week_state(app_db["engine"], app_db["resolution_time"])
    assert value == 61.2
    assert revs[-1] == ("restore", None, 61.2, None, "recount", "page-tester", "deleted by mistake")
    table = history_frame(at)
    assert table["Action"].iloc[0] == "↩ restored"
    assert not [s for s in at.selectbox if s.key == f"history-restore-choice-{app_db['pilot']}"]


def test_viewers_see_history_but_no_restore(app_db, monkeypatch):
    with session_scope(app_db["engine"]) as s:
        store.delete_measurement(
            session=s, actor="bob", metric_id=app_db["error_rate"], week=W6, reason="dup"
        )
        s.add(AppUser(name="vera", role="viewer"))
    _as(monkeypatch, "vera")
    # check=False: for a viewer the page's closing link to the (hidden) Enter page raises
    # StreamlitPageNotFoundError after this section has rendered (not this section's code)
    at = open_page("dashboard/pages/pilot.py", app_db["pilot"], check=False)
    table = history_frame(at)
    assert table["Action"].iloc[0] == "deleted"
    assert not [b for b in at.button if b.key == f"history-restore-{app_db['pilot']}"]
    assert "1 deleted value(s) can be restored by an editor or admin." in [
        c.value for c in at.caption
    ]


def test_bulk_write_values_and_revisions_are_one_transaction(engine):
    with session_scope(engine) as s:
        make_pilot(s)
    with Session(engine) as s:
        mid = metric_id(s, PILOT, "resolution_time")
    rows = pd.DataFrame({"metric_id": [mid, mid], "week": [W1, W3], "value": [5.0, 6.0]})
    with pytest.raises(RuntimeError), session_scope(engine) as s:
        assert store.write_measurements(session=s, actor="a", rows=rows) == store.WriteCounts(2)
        raise RuntimeError("the import fails after writing")
    with Session(engine) as s:
        assert (count(s, Measurement), count(s, MeasurementRevision)) == (0, 0)
