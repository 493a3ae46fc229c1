"""Two writers at once: each ends written or with a clear "try again", never half."""

from __future__ import annotations

import threading
from datetime import date, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlmodel import Session

from metrics import csvio, store
from metrics.db import make_engine, session_scope
from metrics.models import Measurement
from tests.factories import make_pilot, metric_in

PILOT = "Helpdesk triage assistant"

#: The pilot's decision date for these tests: their files span 300 weeks from 2010, and
#: weeks more than 52 weeks after the decision date would be refused as distant.
WIDE_DECISION = date(2016, 6, 24)


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
                    update=True, session=s, actor=f"user{i}", data=files[i], source=f"f{i}.csv"
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
        make_pilot(s, decision_date=WIDE_DECISION, metrics=[metric_in(), metric_in("cycle_time")])
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
        make_pilot(s, decision_date=WIDE_DECISION, metrics=[metric_in(), metric_in("cycle_time")])
        csvio.import_measurements(update=True, session=s, actor="seed", data=weekly_csv(300, 40.0))
    reports = import_at_once(engine, [weekly_csv(300, 30.0), weekly_csv(300, 35.0)])
    assert any(r.ok for r in reports)
    for r in reports:
        if not r.ok:
            assert "try again" in r.errors[0].reason.lower()
    assert_revision_chains_unbroken(engine)


def test_sqlite_busy_database_gives_try_again(sqlite_engine):
    with session_scope(sqlite_engine) as s:
        make_pilot(s, decision_date=WIDE_DECISION)
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
                update=True, session=s, actor="t", data=one_metric, source="busy.csv"
            )
    finally:
        lock.rollback()
        lock.close()
        impatient.dispose()
    assert [e.line for e in report.errors] == [None]
    assert report.errors[0].reason == (
        "nothing written: the database is busy (another write holds the lock): try again "
        "in a moment (database is locked)"
    )
    with Session(sqlite_engine) as s:
        assert s.execute(sa.select(sa.func.count()).select_from(Measurement)).scalar_one() == 0
    # once the other writer is gone, the same import goes through
    with session_scope(sqlite_engine) as s:
        ok = csvio.import_measurements(update=True, session=s, actor="t", data=one_metric)
    assert (ok.ok, ok.created) == (True, 3)
    with Session(sqlite_engine) as s:
        assert list(store.measurements_frame(s)["value"]) == [5.0, 5.0, 5.0]


# =========================================================================== single values
# Two people (threads) saving the same weekly value at the same moment, on SQLite and
# PostgreSQL: each save ends written, "unchanged", or refused with the other's value;
# never a traceback, never a lost update, never a duplicate revision.

W3 = date(2012, 1, 16)  # 2012-W03


def at_once(engine, *jobs) -> list:
    """Run each ``job(session)`` in its own thread and session, all starting together.

    Returns each job's result, or the StoreError it raised (then its transaction was
    rolled back). Any other exception fails the test.
    """
    results: list = [None] * len(jobs)
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(jobs))

    def run(i: int) -> None:
        try:
            barrier.wait()
            with session_scope(engine) as s:
                results[i] = jobs[i](s)
        except store.StoreError as exc:
            results[i] = exc
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    return results


def saver(mid: int, actor: str, value: float, expected, week: date = W3, reason: str = ""):
    def job(s):
        return store.record_measurement(
            session=s,
            actor=actor,
            metric_id=mid,
            week=week,
            value=value,
            reason=reason,
            expected_version=expected,
        )

    return job


def deleter(mid: int, actor: str, expected, week: date = W3):
    def job(s):
        return store.delete_measurement(
            session=s,
            actor=actor,
            metric_id=mid,
            week=week,
            reason="dup",
            expected_version=expected,
        )

    return job


def one_metric(engine, *, first: float | None = 70.0) -> int:
    """A pilot with resolution_time; ``first`` saved for 2012-W03 by "seed" (version 1)."""
    with session_scope(engine) as s:
        make_pilot(s, decision_date=WIDE_DECISION)
        mid = int(store.metrics_frame(s)["metric_id"].iloc[0])
        if first is not None:
            store.record_measurement(session=s, actor="seed", metric_id=mid, week=W3, value=first)
    return mid


def week_now(engine, mid: int, week: date = W3) -> tuple:
    """(value or None, version or None, [revision actions]) of one week, read fresh."""
    with Session(engine) as s:
        m = store.measurements_frame(s)
        r = store.revisions_frame(s, metric_id=mid)
    m = m[(m["metric_id"] == mid) & (m["week"] == pd.Timestamp(week))]
    r = r[r["week"] == pd.Timestamp(week)]
    if m.empty:
        return None, None, list(r["action"])
    return float(m["value"].iloc[0]), int(m["version"].iloc[0]), list(r["action"])


def refusal(engine, mid: int, winner: str, value_text: str, yours: str) -> str:
    with Session(engine) as s:
        m = store.measurements_frame(s)
    at = m[(m["metric_id"] == mid) & (m["week"] == pd.Timestamp(W3))]["entered_at"].iloc[0]
    return (
        f"Resolution time 2012-W03 was changed by {winner} to {value_text} at {at:%H:%M} UTC "
        f"while you were editing; your {yours} was not saved. Reload to see it."
    )


def test_two_people_correct_the_same_value_at_once(engine):
    mid = one_metric(engine)
    results = at_once(
        engine,
        saver(mid, "alice", 61.2, 1, reason="recount"),
        saver(mid, "bob", 60.0, 1, reason="typo"),
    )
    won = [i for i, r in enumerate(results) if r == store.WriteCounts(updated=1)]
    lost = [i for i, r in enumerate(results) if isinstance(r, store.StoreError)]
    assert (len(won), len(lost)) == (1, 1)
    (winner, value), (_, loser_value) = (
        [("alice", 61.2), ("bob", 60.0)][won[0]],
        [("alice", 61.2), ("bob", 60.0)][lost[0]],
    )
    assert str(results[lost[0]]) == refusal(
        engine, mid, winner, f"{value!r} h", f"value {loser_value!r}"
    )
    assert week_now(engine, mid) == (value, 2, ["create", "update"])
    assert_revision_chains_unbroken(engine)


def test_double_clicked_save_writes_once(engine):
    mid = one_metric(engine)
    results = at_once(
        engine, saver(mid, "bob", 60.0, 1, reason="typo"), saver(mid, "bob", 60.0, 1, reason="typo")
    )
    assert sorted(results, key=lambda c: c.updated) == [
        store.WriteCounts(unchanged=1),
        store.WriteCounts(updated=1),
    ]
    assert week_now(engine, mid) == (60.0, 2, ["create", "update"])
    assert_revision_chains_unbroken(engine)


def test_two_first_entries_of_the_same_week_at_once(engine):
    mid = one_metric(engine, first=None)
    results = at_once(engine, saver(mid, "alice", 61.2, None), saver(mid, "bob", 60.0, None))
    won = [i for i, r in enumerate(results) if r == store.WriteCounts(created=1)]
    lost = [i for i, r in enumerate(results) if isinstance(r, store.StoreError)]
    assert (len(won), len(lost)) == (1, 1)
    winner, value = [("alice", 61.2), ("bob", 60.0)][won[0]]
    loser_value = [61.2, 60.0][lost[0]]
    assert str(results[lost[0]]) == refusal(
        engine, mid, winner, f"{value!r} h", f"value {loser_value!r}"
    )
    assert week_now(engine, mid) == (value, 1, ["create"])


def test_delete_and_correction_of_the_same_value_at_once(engine):
    mid = one_metric(engine)
    deleted, corrected = at_once(engine, deleter(mid, "alice", 1), saver(mid, "bob", 60.0, 1))
    if deleted is True:
        assert isinstance(corrected, store.StoreError)
        assert "was deleted by alice at " in str(corrected)
        assert "your value 60.0 was not saved. Reload to see it." in str(corrected)
        assert week_now(engine, mid) == (None, None, ["create", "delete"])
    else:
        assert corrected == store.WriteCounts(updated=1)
        assert str(deleted) == refusal(engine, mid, "bob", "60.0 h", "deletion")
        assert week_now(engine, mid) == (60.0, 2, ["create", "update"])


def test_two_deletes_of_the_same_value_at_once(engine):
    mid = one_metric(engine)
    results = at_once(engine, deleter(mid, "alice", 1), deleter(mid, "bob", 1))
    assert sorted(results) == [False, True]
    assert week_now(engine, mid) == (None, None, ["create", "delete"])


def test_an_import_while_someone_saves_one_value(engine):
    """A 600-row import (updating every value) and a single correction of 2012-W03 at
    the same moment: one of the outcomes below, each complete, never half an import."""
    with session_scope(engine) as s:
        make_pilot(s, decision_date=WIDE_DECISION, metrics=[metric_in(), metric_in("cycle_time")])
        csvio.import_measurements(update=True, session=s, actor="seed", data=weekly_csv(300, 40.0))
        mid = int(store.metrics_frame(s).set_index("key").loc["resolution_time", "metric_id"])
    week = date(2010, 1, 4) + timedelta(weeks=100)

    def importer(s):
        report = csvio.import_measurements(
            update=True, session=s, actor="importer", data=weekly_csv(300, 30.0), source="new.csv"
        )
        if not report.ok:
            s.rollback()
        return report

    report, single = at_once(engine, importer, saver(mid, "alice", 55.5, 1, week=week))
    value, version, actions = week_now(engine, mid, week)
    with Session(engine) as s:
        m = store.measurements_frame(s).merge(store.metrics_frame(s), on="metric_id")
    others = m[~((m["metric_id"] == mid) & (m["week"] == pd.Timestamp(week)))]
    per_key = others.groupby("key")["value"].agg(lambda v: sorted(set(v)))
    if report.ok and isinstance(single, store.StoreError):
        # the import committed first; alice's form (version 1) is refused, naming it
        assert "was changed by importer to 30.0 h" in str(single)
        assert (value, version, actions) == (30.0, 2, ["create", "update"])
        assert (per_key["resolution_time"], per_key["cycle_time"]) == ([30.0], [31.0])
    elif report.ok:
        # alice saved first and the import read after her commit: it updates her value too
        assert single == store.WriteCounts(updated=1)
        assert (report.updated, report.unchanged) == (600, 0)
        assert (value, version, actions) == (30.0, 3, ["create", "update", "update"])
        assert (per_key["resolution_time"], per_key["cycle_time"]) == ([30.0], [31.0])
    else:
        # alice saved between the import's read and its write: the whole import is
        # refused with "try again" and nothing of it is written
        assert single == store.WriteCounts(updated=1)
        assert [e.line for e in report.errors] == [None]
        assert "try again" in report.errors[0].reason.lower()
        assert (value, version, actions) == (55.5, 2, ["create", "update"])
        assert (per_key["resolution_time"], per_key["cycle_time"]) == ([40.0], [41.0])
    assert len(m) == 600
    assert_revision_chains_unbroken(engine)


def test_sqlite_save_while_the_database_is_locked_writes_nothing(sqlite_engine):
    """SQLite: a single save that cannot get the write lock ends in OperationalError
    (the Enter page shows "busy … try again") and writes nothing."""
    mid = one_metric(sqlite_engine)
    impatient = make_engine(str(sqlite_engine.url), busy_timeout_ms=50)
    lock = sqlite_engine.raw_connection()
    try:
        lock.cursor().execute("BEGIN IMMEDIATE")  # an import holds the write lock
        with (
            pytest.raises(sa.exc.OperationalError, match="database is locked"),
            session_scope(impatient) as s,
        ):
            saver(mid, "alice", 60.0, 1)(s)
    finally:
        lock.rollback()
        lock.close()
        impatient.dispose()
    assert week_now(sqlite_engine, mid) == (70.0, 1, ["create"])
    with session_scope(sqlite_engine) as s:  # once the lock is gone it goes through
        assert saver(mid, "alice", 60.0, 1)(s) == store.WriteCounts(updated=1)
    assert week_now(sqlite_engine, mid) == (60.0, 2, ["create", "update"])


class Pause:
    """Stop the thread named ``thread`` at its first SQL statement starting with
    ``prefix`` (before or after it runs) until :meth:`go`; :attr:`reached` is set there.

    Makes one interleaving of two real threads happen every time, without sleeping.
    """

    def __init__(self, engine, *, thread: str, prefix: str, when: str = "before") -> None:
        self.engine, self.thread, self.prefix = engine, thread, prefix.lower()
        self.event = f"{when}_cursor_execute"
        self.reached, self.released = threading.Event(), threading.Event()
        self.done = False

    def _hook(self, conn, cursor, statement, *args) -> None:
        if self.done or threading.current_thread().name != self.thread:
            return
        if statement.lstrip().lower().startswith(self.prefix):
            self.done = True
            self.reached.set()
            assert self.released.wait(60)

    def __enter__(self) -> Pause:
        sa.event.listen(self.engine, self.event, self._hook)
        return self

    def __exit__(self, *exc) -> None:
        self.released.set()
        sa.event.remove(self.engine, self.event, self._hook)

    def go(self) -> None:
        self.released.set()


def seeded_import_case(engine) -> tuple[int, date]:
    with session_scope(engine) as s:
        make_pilot(s, decision_date=WIDE_DECISION, metrics=[metric_in(), metric_in("cycle_time")])
        csvio.import_measurements(update=True, session=s, actor="seed", data=weekly_csv(300, 40.0))
        mid = int(store.metrics_frame(s).set_index("key").loc["resolution_time", "metric_id"])
    return mid, date(2010, 1, 4) + timedelta(weeks=100)


def start_import(engine, out: dict) -> threading.Thread:
    def run() -> None:
        try:
            with session_scope(engine) as s:
                out["report"] = csvio.import_measurements(
                    update=True,
                    session=s,
                    actor="importer",
                    data=weekly_csv(300, 30.0),
                    source="new.csv",
                )
                if not out["report"].ok:
                    s.rollback()
        except BaseException as exc:
            out["error"] = exc

    t = threading.Thread(target=run, name="import")
    t.start()
    return t


def values_by_key(engine, skip: tuple[int, date]) -> dict[str, list[float]]:
    with Session(engine) as s:
        m = store.measurements_frame(s).merge(store.metrics_frame(s), on="metric_id")
    assert len(m) == 600
    m = m[~((m["metric_id"] == skip[0]) & (m["week"] == pd.Timestamp(skip[1])))]
    return {k: sorted(set(v)) for k, v in m.groupby("key")["value"]}


def test_a_save_between_an_imports_read_and_write_refuses_the_whole_import(engine):
    """Alice saves 2011-W49 after the import read the stored versions and before it
    writes: the import is refused whole ("try again"), her value stays."""
    mid, week = seeded_import_case(engine)
    out: dict = {}
    with Pause(engine, thread="import", prefix="UPDATE measurement") as pause:
        t = start_import(engine, out)
        assert pause.reached.wait(60)
        results = at_once(engine, saver(mid, "alice", 55.5, 1, week=week, reason="typo"))
        pause.go()
        t.join(60)
    assert "error" not in out, out.get("error")
    assert results == [store.WriteCounts(updated=1)]
    report = out["report"]
    assert (report.ok, [e.line for e in report.errors]) == (False, [None])
    assert "changed by someone else" in report.errors[0].reason
    assert "try again" in report.errors[0].reason.lower()
    assert week_now(engine, mid, week) == (55.5, 2, ["create", "update"])
    assert values_by_key(engine, (mid, week)) == {"cycle_time": [41.0], "resolution_time": [40.0]}
    assert_revision_chains_unbroken(engine)


def test_a_save_while_an_import_is_writing_is_refused_with_the_imported_value(engine):
    """The import has written (not committed) when alice saves from her form (version 1):
    her save waits for it, then is refused naming the imported value; all 600 imported."""
    mid, week = seeded_import_case(engine)
    out: dict = {}
    # The measurements and revisions go in through the driver's bulk path (no
    # SQLAlchemy statement event); the pilot's updated_at is the statement after them.
    with Pause(engine, thread="import", prefix="UPDATE pilot", when="before") as pause:
        t = start_import(engine, out)
        assert pause.reached.wait(60)
        single: dict = {}

        def save() -> None:
            try:
                with session_scope(engine) as s:
                    single["result"] = saver(mid, "alice", 55.5, 1, week=week)(s)
            except store.StoreError as exc:
                single["result"] = exc

        s_thread = threading.Thread(target=save)
        s_thread.start()
        pause.go()
        t.join(60)
        s_thread.join(60)
    assert "error" not in out, out.get("error")
    assert (out["report"].ok, out["report"].updated) == (True, 600)
    assert isinstance(single["result"], store.StoreError)
    assert str(single["result"]).startswith(
        "Resolution time 2011-W49 was changed by importer to 30.0 h at "
    )
    assert str(single["result"]).endswith(
        "while you were editing; your value 55.5 was not saved. Reload to see it."
    )
    assert week_now(engine, mid, week) == (30.0, 2, ["create", "update"])
    assert values_by_key(engine, (mid, week)) == {"cycle_time": [31.0], "resolution_time": [30.0]}
    assert_revision_chains_unbroken(engine)
