"""Two writers at once: each ends written or with a clear "try again", never half."""

from __future__ import annotations

import threading
from datetime import date, timedelta

import sqlalchemy as sa
from sqlmodel import Session

from metrics import csvio, store
from metrics.db import make_engine, session_scope
from metrics.models import Measurement
from tests.factories import make_pilot, metric_in

PILOT = "Helpdesk triage assistant"


def weekly_csv(weeks: int, value: float) -> str:
    first = date(2010, 1, 4)
    lines = ["pilot,metric,week,value"]
    for i in range(weeks):
        w = first + timedelta(weeks=i)
        lines += [f"{PILOT},resolution_time,{w.isoformat()},{value}"]
        lines += [f"{PILOT},cycle_time,{w.isoformat()},{value + 1}"]
    return "\n".join(lines) + "\n"


def import_at_once(engine, files: list[str]) -> list:
    """Run one import per file, all starting together in threads; returns the reports.
    Any exception escaping an import fails the test."""
    reports: list = [None] * len(files)
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(files))

    def run(i: int) -> None:
        try:
            barrier.wait()
            with session_scope(engine) as s:
                reports[i] = csvio.import_measurements(
                    session=s, actor=f"user{i}", data=files[i], source=f"f{i}.csv"
                )
                if not reports[i].ok:
                    s.rollback()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(files))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    return reports


def test_two_imports_of_the_same_weeks_at_once(engine):
    with session_scope(engine) as s:
        make_pilot(s, metrics=[metric_in(), metric_in("cycle_time")])
    reports = import_at_once(engine, [weekly_csv(300, 10.0), weekly_csv(300, 20.0)])
    written = [r for r in reports if r.ok]
    refused = [r for r in reports if not r.ok]
    # at least one import wins; a loser gets one file-level "try again" and wrote nothing
    assert written
    for r in refused:
        assert len(r.errors) == 1 and r.errors[0].line is None
        assert "try again" in r.errors[0].reason
    with Session(engine) as s:
        m = store.measurements_frame(s).merge(store.metrics_frame(s), on="metric_id")
    assert len(m) == 600
    # every row of each metric comes from one file: never a mix of two half imports
    per_metric = m.groupby("key")["value"].agg(lambda v: sorted(set(v)))
    assert per_metric["resolution_time"] in ([10.0], [20.0])
    assert per_metric["cycle_time"] in ([11.0], [21.0])
    if len(written) == 2:  # serialised: the second one updated all rows
        assert sorted(r.created for r in written) == [0, 600]
    assert_revision_chains_unbroken(engine)


def assert_revision_chains_unbroken(engine) -> None:
    """Every update's old value is the previous revision's new value, and the stored
    value and version match the last revision and the number of revisions."""
    with Session(engine) as s:
        r = store.revisions_frame(s)
        m = store.measurements_frame(s)
    for (_mid, _week), g in r.groupby(["metric_id", "week"]):
        assert list(g["old_value"].iloc[1:]) == list(g["new_value"].iloc[:-1])
    last = r.groupby(["metric_id", "week"]).agg(value=("new_value", "last"), n=("action", "size"))
    stored = m.set_index(["metric_id", "week"])
    assert (stored["value"] == last["value"].reindex(stored.index)).all()
    assert (stored["version"] == last["n"].reindex(stored.index)).all()


def test_concurrent_updates_never_lose_one(engine):
    """Two imports update the same 600 existing values at once (the lost-update case)."""
    with session_scope(engine) as s:
        make_pilot(s, metrics=[metric_in(), metric_in("cycle_time")])
        csvio.import_measurements(session=s, actor="seed", data=weekly_csv(300, 40.0))
    reports = import_at_once(engine, [weekly_csv(300, 30.0), weekly_csv(300, 35.0)])
    assert any(r.ok for r in reports)
    for r in reports:
        if not r.ok:
            assert "try again" in r.errors[0].reason.lower()
    assert_revision_chains_unbroken(engine)


def test_sqlite_busy_database_gives_try_again(sqlite_engine):
    with session_scope(sqlite_engine) as s:
        make_pilot(s)
    one_metric = "pilot,metric,week,value\n" + "".join(
        f"{PILOT},resolution_time,{(date(2010, 1, 4) + timedelta(weeks=i)).isoformat()},5\n"
        for i in range(3)
    )
    impatient = make_engine(str(sqlite_engine.url), busy_timeout_ms=50)
    lock = sqlite_engine.raw_connection()
    try:
        lock.cursor().execute("BEGIN IMMEDIATE")  # another writer holds the lock
        with session_scope(impatient) as s:
            report = csvio.import_measurements(
                session=s, actor="t", data=one_metric, source="busy.csv"
            )
    finally:
        lock.rollback()
        lock.close()
        impatient.dispose()
    assert [e.line for e in report.errors] == [None]
    assert "the database is busy, nothing written; try again" in report.errors[0].reason
    with Session(sqlite_engine) as s:
        assert s.execute(sa.select(sa.func.count()).select_from(Measurement)).scalar_one() == 0
    # once the other writer is gone, the same import goes through
    with session_scope(sqlite_engine) as s:
        ok = csvio.import_measurements(session=s, actor="t", data=one_metric)
    assert (ok.ok, ok.created) == (True, 3)
    with Session(sqlite_engine) as s:
        assert list(store.measurements_frame(s)["value"]) == [5.0, 5.0, 5.0]
