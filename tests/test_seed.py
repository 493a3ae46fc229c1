"""Seeds: the real help-desk pilot's numbers and the demo portfolio's coverage."""

from __future__ import annotations

import statistics
from datetime import date, datetime, timedelta

import pandas as pd
import pytest
from sqlmodel import Session

from metrics import computations as C
from metrics import service, store
from metrics.db import session_scope
from seed.demo import seed_demo
from seed.helpdesk import PILOT_NAME, seed_helpdesk

AS_OF = date(2012, 6, 30)


def independent_weekly_medians(path) -> dict[date, float]:
    """Weekly median ticket duration in hours, written without pandas groupby: each
    ticket's first and last event, the ISO week of the first event, then medians."""
    first: dict[str, datetime] = {}
    last: dict[str, datetime] = {}
    with open(path, encoding="utf-8") as fh:
        next(fh)
        for line in fh:
            case, _activity, ts = line.rstrip("\n").split(",")
            t = datetime.strptime(ts, "%Y-%m-%d %H:%M:%S")
            first[case] = min(first.get(case, t), t)
            last[case] = max(last.get(case, t), t)
    by_week: dict[date, list[float]] = {}
    for case, t0 in first.items():
        monday = t0.date() - timedelta(days=t0.weekday())
        by_week.setdefault(monday, []).append((last[case] - t0).total_seconds() / 3600)
    return {w: statistics.median(v) for w, v in by_week.items()}


@pytest.fixture
def helpdesk_engine(engine, shared_data):
    with session_scope(engine) as s:
        seed_helpdesk(session=s, actor="seed", path=shared_data / "helpdesk.csv")
    return engine


def test_helpdesk_weeks_match_an_independent_computation(helpdesk_engine, shared_data):
    expected = independent_weekly_medians(shared_data / "helpdesk.csv")
    with Session(helpdesk_engine) as s:
        m = store.measurements_frame(s)
    got = dict(zip(m["week"].dt.date, m["value"], strict=True))
    assert len(got) == 50  # 25 baseline weeks + 25 pilot weeks, no others
    assert min(got) == date(2011, 1, 3)
    assert max(got) == date(2012, 6, 18)
    assert not [w for w in got if date(2011, 6, 27) <= w < date(2012, 1, 2)]
    for week in got:
        assert got[week] == pytest.approx(expected[week], rel=1e-12), week
    assert got[date(2012, 1, 9)] == pytest.approx(73.262083, abs=1e-6)


def test_helpdesk_summary_as_of_decision(helpdesk_engine, shared_data):
    expected = independent_weekly_medians(shared_data / "helpdesk.csv")
    base_weeks = [w for w in expected if date(2011, 1, 3) <= w <= date(2011, 6, 20)]
    pilot_weeks = sorted(w for w in expected if date(2012, 1, 2) <= w <= date(2012, 6, 18))
    baseline = statistics.mean(expected[w] for w in base_weeks)
    current = statistics.mean(expected[w] for w in pilot_weeks[-4:])
    with Session(helpdesk_engine) as s:
        out = service.summary_export_frame(s, as_of=AS_OF)
    row = out[out["pilot"] == PILOT_NAME].iloc[0]
    assert row["baseline"] == pytest.approx(baseline)
    assert row["baseline"] == pytest.approx(121.626894, abs=1e-6)
    assert row["current"] == pytest.approx(current)
    assert row["current"] == pytest.approx(56.762187, abs=1e-6)
    assert row["weeks_reported"] == 25
    assert row["improvement_pct"] == pytest.approx((baseline - current) / baseline * 100)
    assert row["status"] == "met"
    assert row["recommendation"] == "go"
    assert row["reasons"] == (
        "Resolution time 56.8 h vs target 80 h: met, 53.3% better than baseline 121.6 h"
        " (95% CI 23.4% to 83.2% better)"
    )


def test_seed_helpdesk_is_idempotent(helpdesk_engine, shared_data):
    with session_scope(helpdesk_engine) as s:
        again = seed_helpdesk(session=s, actor="seed", path=shared_data / "helpdesk.csv")
    assert again == store.WriteCounts(created=0, updated=0, unchanged=50)


TODAY = date(2026, 11, 30)


def test_demo_shows_every_status_and_recommendation(engine):
    with session_scope(engine) as s:
        seed_demo(session=s, actor="seed", today=TODAY)
    with Session(engine) as s:
        ev = service.evaluate(s, as_of=TODAY)
    # every primary status, and the guardrails both held and breached
    assert set(ev.metrics[C.STATUS]) == set(C.STATUSES) | {C.HELD, C.BREACHED}
    assert set(ev.pilots[C.RECOMMENDATION]) == set(C.RECOMMENDATIONS)
    recs = dict(zip(ev.pilots["pilot"], ev.pilots[C.RECOMMENDATION], strict=True))
    assert recs == {
        "Claims triage agent": "extend",
        "Contract review assistant": "no_go",
        "Fraud analyst copilot": "insufficient_data",
        "Invoice extraction copilot": "go",
        "Sales email assistant": "no_go",
    }
    stale = dict(zip(ev.pilots["pilot"], ev.pilots[C.STALE], strict=True))
    assert stale["Contract review assistant"] is True
    assert stale["Claims triage agent"] is False


def test_demo_is_deterministic_and_idempotent(engine):
    with session_scope(engine) as s:
        first = seed_demo(session=s, actor="seed", today=TODAY)
    with session_scope(engine) as s:
        second = seed_demo(session=s, actor="seed", today=TODAY)
    assert second == store.WriteCounts(created=0, updated=0, unchanged=first.created)
    with Session(engine) as s:
        m = store.measurements_frame(s).merge(store.metrics_frame(s), on="metric_id")
    assert len(m) == 135
    invoice = m[(m["pilot"] == "Invoice extraction copilot") & (m["key"] == "cycle_time")]
    first = invoice.sort_values("week").iloc[:2]
    # fixed by the seed: 8 baseline weeks before the start 14 weeks ago
    assert list(first["week"].dt.date) == [date(2026, 6, 29), date(2026, 7, 6)]
    assert list(first["value"]) == [30.6, 29.74]
    assert m["week"].max() == pd.Timestamp("2026-11-23")  # the last complete week
