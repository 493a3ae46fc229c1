"""Store: writes, audit rows, reads and timestamps, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from metrics import store
from metrics.db import head_revision, safe_url, schema_revision, session_scope
from metrics.models import Measurement, MeasurementRevision, Pilot, PilotCreate, StageEvent
from tests.factories import add_weeks, make_pilot, metric_id, metric_in

W1 = date(2012, 1, 2)


def count(session: Session, model) -> int:
    return session.execute(sa.select(sa.func.count()).select_from(model)).scalar_one()


def test_schema_is_at_head(engine):
    assert schema_revision(engine) == head_revision() == "0005"


def test_pilot_and_metrics_round_trip(session):
    pid = make_pilot(
        session,
        metrics=[
            metric_in(),
            metric_in(
                "error_rate",
                unit="%",
                target=3.0,
                role="guardrail",
                baseline=4.0,
                min_value=0.0,
                max_value=100.0,
            ),
        ],
        cost=12500.0,
    )
    session.commit()
    p = store.pilots_frame(session)
    assert p[["pilot", "vendor", "stage", "cost"]].to_dict("records") == [
        {
            "pilot": "Helpdesk triage assistant",
            "vendor": "Acme AI",
            "stage": "pilot",
            "cost": 12500.0,
        }
    ]
    assert p["start_date"].iloc[0] == pd.Timestamp("2012-01-02")
    m = store.metrics_frame(session, pilot_id=pid)
    assert list(m["key"]) == ["error_rate", "resolution_time"]
    guard = m.iloc[0]
    assert (guard["role"], guard["baseline"], guard["target"], guard["margin"]) == (
        "guardrail",
        4.0,
        3.0,
        0.0,  # a guardrail without a margin gets 0
    )
    assert pd.isna(m.iloc[1]["baseline"])
    # a stage event records the creation
    assert count(session, StageEvent) == 1


def test_save_pilot_updates_by_name_and_records_stage_change(session):
    # discovery -> pilot: a move without a stage gate (production needs a go decision)
    make_pilot(session, stage="discovery")
    session.commit()
    res = store.save_pilot(
        session=session,
        actor="ana",
        pilot_in=PilotCreate(
            name="Helpdesk triage assistant",
            vendor="Other",
            stage="pilot",
            start_date=W1,
            decision_date=date(2012, 7, 1),
        ),
        metrics_in=[metric_in(target=70.0), metric_in("cycle_time")],
    )
    session.commit()
    assert (res.created, res.metrics_created, res.metrics_updated) == (False, 1, 1)
    assert count(session, Pilot) == 1
    m = store.metrics_frame(session)
    assert m.set_index("key").at["resolution_time", "target"] == 70.0
    ev = store.stage_events_frame(session, pilot_id=res.pilot_id)
    assert list(ev["to_stage"]) == ["discovery", "pilot"]
    assert ev["by"].iloc[1] == "ana"


def test_write_measurements_counts_versions_and_revisions(session):
    make_pilot(session)
    mid = metric_id(session, "Helpdesk triage assistant", "resolution_time")
    assert add_weeks(session, mid, W1, [100.0, 90.5, None, 80.25]) == store.WriteCounts(3, 0, 0)
    session.commit()
    # same values again: unchanged; one changed value: updated, version 2
    again = add_weeks(session, mid, W1, [100.0, 91.0, None, 80.25], actor="bo")
    session.commit()
    assert again == store.WriteCounts(created=0, updated=1, unchanged=2)
    m = store.measurements_frame(session)
    assert list(m["value"]) == [100.0, 91.0, 80.25]
    assert list(m["version"]) == [1, 2, 1]
    assert list(m["entered_by"]) == ["tester", "bo", "tester"]
    assert list(m["week"]) == [
        pd.Timestamp("2012-01-02"),
        pd.Timestamp("2012-01-09"),
        pd.Timestamp("2012-01-23"),
    ]
    r = store.revisions_frame(session)
    assert list(r["action"]) == ["create", "create", "create", "update"]
    last = r.iloc[-1]
    assert (last["old_value"], last["new_value"], last["actor"]) == (90.5, 91.0, "bo")


@pytest.mark.parametrize(
    ("value", "week", "message"),
    [
        (float("nan"), W1, "not a finite number"),
        (float("inf"), W1, "not a finite number"),
        (-1.0, W1, "below the minimum 0"),
        (50.0, date(2012, 1, 4), "not the Monday"),
        (1e308, W1, "value 1e\\+308 is too large"),
        (50.0, date(1, 1, 1), "week 0001-01-01 is not the Monday of an ISO week in 1900"),
        (50.0, date(1899, 12, 25), "week 1899-12-25 is not the Monday"),
    ],
)
def test_record_measurement_refuses_bad_values_and_writes_nothing(session, value, week, message):
    make_pilot(session)
    session.commit()
    mid = metric_id(session, "Helpdesk triage assistant", "resolution_time")
    with pytest.raises(store.StoreError, match=message):
        store.record_measurement(session=session, actor="t", metric_id=mid, week=week, value=value)
    session.rollback()
    assert count(session, Measurement) == 0
    assert count(session, MeasurementRevision) == 0


def test_note_with_nul_is_refused(session):
    # PostgreSQL cannot store NUL in text; SQLite could: refuse it everywhere, up front.
    make_pilot(session)
    mid = metric_id(session, "Helpdesk triage assistant", "resolution_time")
    with pytest.raises(store.StoreError, match="note contains control characters"):
        store.record_measurement(
            session=session, actor="t", metric_id=mid, week=W1, value=1.0, note="a\x00b"
        )


def test_bulk_write_with_one_bad_row_writes_nothing(engine):
    with session_scope(engine) as s:
        make_pilot(s)
    with Session(engine) as s:
        mid = metric_id(s, "Helpdesk triage assistant", "resolution_time")
    rows = pd.DataFrame(
        {
            "metric_id": [mid] * 3,
            "week": [W1, date(2012, 1, 9), date(2012, 1, 16)],
            "value": [10.0, 20.0, -5.0],
            "note": ["", "", ""],
        }
    )
    with (
        pytest.raises(store.StoreError, match="row 3: Resolution time: value -5 is below"),
        session_scope(engine) as s,
    ):
        store.write_measurements(session=s, actor="t", rows=rows)
    with Session(engine) as s:
        assert count(s, Measurement) == 0


def test_duplicate_week_in_one_write_is_refused(session):
    make_pilot(session)
    mid = metric_id(session, "Helpdesk triage assistant", "resolution_time")
    rows = pd.DataFrame({"metric_id": [mid, mid], "week": [W1, W1], "value": [1.0, 2.0]})
    with pytest.raises(store.StoreError, match="listed more than once"):
        store.write_measurements(session=session, actor="t", rows=rows)


def test_unique_constraint_on_metric_and_week(session):
    make_pilot(session)
    mid = metric_id(session, "Helpdesk triage assistant", "resolution_time")
    session.add(Measurement(metric_id=mid, week=W1, value=1.0))
    session.add(Measurement(metric_id=mid, week=W1, value=2.0))
    with pytest.raises(sa.exc.IntegrityError):
        session.flush()


def test_delete_keeps_a_revision(session):
    make_pilot(session)
    mid = metric_id(session, "Helpdesk triage assistant", "resolution_time")
    add_weeks(session, mid, W1, [42.0])
    assert store.delete_measurement(
        session=session, actor="t", metric_id=mid, week=W1, reason="typo"
    )
    session.commit()
    assert count(session, Measurement) == 0
    last = store.revisions_frame(session).iloc[-1]
    assert (last["action"], last["old_value"], last["reason"]) == ("delete", 42.0, "typo")
    assert not store.delete_measurement(session=session, actor="t", metric_id=mid, week=W1)


def test_timestamps_are_timezone_aware_utc(session):
    make_pilot(session)
    session.commit()
    session.expire_all()
    p = session.exec(select(Pilot)).one()
    assert p.created_at.tzinfo is not None
    assert p.created_at.utcoffset().total_seconds() == 0
    assert abs((datetime.now(UTC) - p.created_at).total_seconds()) < 120


def test_naive_timestamps_are_refused(session):
    make_pilot(session)
    session.commit()
    p = session.exec(select(Pilot)).one()
    p.updated_at = datetime(2026, 1, 1, 12, 0)  # naive
    with pytest.raises(sa.exc.StatementError, match="naive datetime refused"):
        session.flush()


def test_data_version_changes_on_every_write(session):
    v0 = store.data_version(session)
    make_pilot(session)
    session.commit()
    v1 = store.data_version(session)
    mid = metric_id(session, "Helpdesk triage assistant", "resolution_time")
    add_weeks(session, mid, W1, [42.0])
    session.commit()
    v2 = store.data_version(session)
    assert len({v0, v1, v2}) == 3


def test_set_stage_validates(session):
    pid = make_pilot(session, stage="discovery")
    with pytest.raises(store.StoreError, match="unknown stage 'live'"):
        store.set_stage(session=session, actor="t", pilot_id=pid, stage="live")
    store.set_stage(session=session, actor="t", pilot_id=pid, stage="pilot", note="kick-off")
    session.commit()
    assert store.pilots_frame(session)["stage"].iloc[0] == "pilot"
    assert store.stage_events_frame(session, pilot_id=pid)["note"].iloc[-1] == "kick-off"


def test_sqlite_runs_in_wal_mode_with_busy_timeout(sqlite_engine):
    with sqlite_engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_safe_url_hides_password():
    assert safe_url("postgresql+psycopg://u:s3cret@h:5432/db") == (
        "postgresql+psycopg://u:***@h:5432/db"
    )


def test_narrowing_the_allowed_range_below_stored_values_is_refused(session):
    """QA: a range that stored values violate was accepted; those values kept counting
    and the measurements export was no longer re-importable."""
    make_pilot(session, metrics=[metric_in(max_value=1000.0)])
    mid = metric_id(session, "Helpdesk triage assistant", "resolution_time")
    add_weeks(session, mid, date(2012, 1, 2), [100.0, 90.0, 20.0, 95.5, 99.0, 101.0, 98.0])
    session.commit()
    with pytest.raises(store.StoreError) as exc:
        make_pilot(session, metrics=[metric_in(min_value=0.0, max_value=95.0)])
    assert str(exc.value) == (
        "Helpdesk triage assistant resolution_time: allowed range 0..95 would leave 5 stored "
        "value(s) outside it (2012-W01 = 100, 2012-W04 = 95.5, 2012-W05 = 99, 2012-W06 = 101, "
        "2012-W07 = 98); correct those values first or choose a wider range"
    )
    session.rollback()
    assert store.metrics_frame(session)["max_value"].tolist() == [1000.0]
    # a range that every stored value fits is fine
    make_pilot(session, metrics=[metric_in(min_value=20.0, max_value=101.0)])
    session.commit()
    assert store.metrics_frame(session)["max_value"].tolist() == [101.0]
