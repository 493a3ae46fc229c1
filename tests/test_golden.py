"""Golden tables: every metric status and every branch of DESIGN §5's recommendation.

One hand-built portfolio judged as of Sun 2026-02-01 (pilot weeks 2026-W02..W05 are
complete). Each pilot makes one rule fire first; the expected numbers were worked out
by hand (formulas in the comments) and the Welch intervals are also checked against
``scipy.stats.ttest_ind(..., equal_var=False)``. Then the same numbers end to end
through the store and the go/no-go export (SQLite and PostgreSQL), with economics,
and the real help-desk pilot's interval against a direct scipy call.
"""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sqlmodel import Session

from metrics import computations as C
from metrics import service, store
from metrics.db import session_scope
from seed.helpdesk import PILOT_NAME, seed_helpdesk
from tests.factories import add_weeks, make_pilot, metric_id, metric_in

START = date(2026, 1, 5)  # Monday of 2026-W02
DECISION = date(2026, 6, 26)
LATE = date(2026, 1, 30)  # a decision date before AS_OF
AS_OF = date(2026, 2, 1)  # Sunday: weeks Jan 5, 12, 19, 26 are complete
BASE_WEEKS = date(2025, 12, 15)  # three baseline weeks: Dec 15, 22, 29

T3 = stats.t.ppf(0.975, 3)  # 3.182446305284263: 4 trailing weeks, explicit baseline


def _metric(pid: int, pilot: str, mid: int, key: str = "cycle_time", **kw) -> dict:
    row = {
        C.PILOT_ID: pid,
        C.PILOT: pilot,
        C.METRIC_ID: mid,
        C.KEY: key,
        C.LABEL: key.replace("_", " ").capitalize(),
        C.UNIT: "h",
        C.DIRECTION: C.LOWER,
        C.ROLE: C.PRIMARY,
        C.BASELINE: 110.0,
        C.TARGET: 80.0,
        C.MARGIN: np.nan,
        C.START_DATE: pd.Timestamp(START),
        C.DECISION_DATE: pd.Timestamp(DECISION),
        C.WINDOW: 4,
        C.MIN_WEEKS: 4,
    }
    row.update(kw)
    return row


def _guard(pid: int, pilot: str, mid: int, **kw) -> dict:
    fields = {C.UNIT: "%", C.ROLE: C.GUARDRAIL, C.BASELINE: 4.0, C.TARGET: 3.0, C.MARGIN: 1.0}
    fields.update(kw)
    return _metric(pid, pilot, mid, "error_rate", **fields)


def _weeks(mid: int, values: list[float | None], first: date = START) -> list[tuple]:
    return [
        (mid, pd.Timestamp(first + timedelta(weeks=i)), float(v))
        for i, v in enumerate(values)
        if v is not None
    ]


# (metric row, baseline-period values or None, pilot-period values)
PORTFOLIO = [
    # rule 3 go: the primary met; the guardrail 0.5 pp worse than baseline, margin 1 pp
    (_metric(1, "A go", 11), None, [70, 72, 74, 76]),
    (_guard(1, "A go", 12), None, [4.2, 4.4, 4.6, 4.8]),
    # rule 4 extend, on track: -5 h a week reaches 72 h in x = 5.6 -> 2026-W08
    (_metric(2, "B on track", 21, **{C.TARGET: 72.0}), None, [100, 95, 90, 85]),
    # rule 4 extend, at risk: improving 0.6 h a week, 50 h only in 2027
    (_metric(3, "C at risk", 31, **{C.TARGET: 50.0}), None, [100, 99, 99, 98]),
    # rule 2 no-go by a breached guardrail although the primary met its target
    (_metric(4, "D breached", 41), None, [70, 72, 74, 76]),
    (_guard(4, "D breached", 42), None, [5.6, 5.8, 6.0, 6.2]),
    # rule 2 no-go: significantly worse than a baseline from weeks (Welch)
    (_metric(5, "E worse", 51, **{C.BASELINE: np.nan}), [108, 110, 112], [118, 120, 122, 124]),
    # rule 2 no-go: decision date passed and no primary met
    (_metric(6, "F late", 61, **{C.DECISION_DATE: pd.Timestamp(LATE)}), None, [100, 101, 99, 100]),
    # rule 1 fires before rule 2: 3 of 4 primary weeks, guardrail breached
    (_metric(7, "G short", 71), None, [70, 72, 74]),
    (_guard(7, "G short", 72), None, [9, 9, 9, 9]),
    # rule 1: no baseline (2 baseline weeks are not enough)
    (_metric(8, "H no baseline", 81, **{C.BASELINE: np.nan}), [100, 110, None], [70, 72, 74, 76]),
    # rule 1: no primary metric (its only guardrail also short of weeks)
    (_guard(9, "I guardrail only", 91), None, [4, 4]),
    # rule 3 beats the deadline: decision passed, but the primary met
    (
        _metric(10, "J late but met", 101, **{C.DECISION_DATE: pd.Timestamp(LATE)}),
        None,
        [78, 76, 74, 72],
    ),
    # rule 4 extend: flat at baseline is off track (no improvement), not significantly worse
    (_metric(11, "K flat", 111), None, [110, 110, 110, 110]),
]


def portfolio() -> tuple[pd.DataFrame, pd.DataFrame]:
    metrics = pd.DataFrame([m for m, _, _ in PORTFOLIO])
    rows = []
    for m, base, pilot in PORTFOLIO:
        if base is not None:
            rows += _weeks(m[C.METRIC_ID], base, BASE_WEEKS)
        rows += _weeks(m[C.METRIC_ID], pilot)
    return metrics, pd.DataFrame(rows, columns=[C.METRIC_ID, C.WEEK, C.VALUE])


@pytest.fixture(scope="module")
def judged() -> tuple[pd.DataFrame, pd.DataFrame]:
    metrics, measurements = portfolio()
    summary = C.metric_summary(metrics, measurements, as_of=AS_OF)
    return summary.set_index(C.METRIC_ID), C.recommend(summary, as_of=AS_OF).set_index(C.PILOT)


# Half-widths worked out by hand: values 70, 72, 74, 76 (or 100, 95, 90, 85 etc.) have
# sample variance 20/3 (41.67; 0.0667 for 4.2 .. 4.8), standard error sqrt(var / 4),
# and the 95% Student t quantile with 3 df is 3.1824463.
H_SPREAD_2 = T3 * math.sqrt(20 / 3 / 4)  # 4.10848 h for 70, 72, 74, 76
H_SPREAD_5 = T3 * math.sqrt(125 / 3 / 4)  # 10.2712 h for 100, 95, 90, 85
H_GUARD = T3 * math.sqrt(0.2 / 3 / 4)  # 0.410848 pp for 4.2 .. 4.8
H_ONE = T3 * math.sqrt(2 / 3 / 4)  # 1.29923 h for 100, 99, 99, 98 and 100, 101, 99, 100

# fmt: off
# metric id: current, improvement_pct, ci_low_pct, ci_high_pct, significant, status
# (None: undefined improvement / interval not asserted here)
METRIC_GOLDEN = {
    11: (73.0, 100 * 37 / 110, 100 * (37 - H_SPREAD_2) / 110, 100 * (37 + H_SPREAD_2) / 110,
         True, C.MET),
    12: (4.5, -12.5, -12.5 - 100 * H_GUARD / 4, -12.5 + 100 * H_GUARD / 4, True, C.HELD),
    21: (92.5, 100 * 17.5 / 110, 100 * (17.5 - H_SPREAD_5) / 110,
         100 * (17.5 + H_SPREAD_5) / 110, True, C.ON_TRACK),
    31: (99.0, 10.0, 10.0 - 100 * H_ONE / 110, 10.0 + 100 * H_ONE / 110, True, C.AT_RISK),
    41: (73.0, 100 * 37 / 110, 100 * (37 - H_SPREAD_2) / 110, 100 * (37 + H_SPREAD_2) / 110,
         True, C.MET),
    42: (5.9, -47.5, -47.5 - 100 * H_GUARD / 4, -47.5 + 100 * H_GUARD / 4, True, C.BREACHED),
    # Welch: baseline 108, 110, 112 (mean 110, var 4, n 3) vs 118 .. 124 (121, 20/3, 4):
    # se = sqrt(4/3 + 5/3) = sqrt(3), df = 9 / ((4/3)^2/2 + (5/3)^2/3) = 4.95918
    51: (121.0, -10.0, None, None, True, C.OFF_TRACK),
    61: (100.0, 100 / 11, 100 * (10 - H_ONE) / 110, 100 * (10 + H_ONE) / 110, True, C.AT_RISK),
    71: (72.0, 100 * 38 / 110, None, None, True, C.INSUFFICIENT),
    72: (9.0, -125.0, -125.0, -125.0, True, C.BREACHED),  # constant: a point interval
    81: (73.0, None, None, None, False, C.INSUFFICIENT),
    91: (4.0, 0.0, 0.0, 0.0, False, C.NOT_JUDGED),
    101: (75.0, 100 * 35 / 110, 100 * (35 - H_SPREAD_2) / 110,
          100 * (35 + H_SPREAD_2) / 110, True, C.MET),
    111: (110.0, 0.0, 0.0, 0.0, False, C.OFF_TRACK),
}
# fmt: on


@pytest.mark.parametrize("mid", sorted(METRIC_GOLDEN))
def test_metric_golden(judged, mid):
    summary, _ = judged
    row = summary.loc[mid]
    current, imp, low, high, significant, status = METRIC_GOLDEN[mid]
    assert row[C.CURRENT] == pytest.approx(current, rel=1e-12)
    for col, want in ((C.IMPROVEMENT_PCT, imp), (C.CI_LOW_PCT, low), (C.CI_HIGH_PCT, high)):
        if want is None and col == C.IMPROVEMENT_PCT:
            assert math.isnan(row[col]), col
        elif want is not None:
            assert row[col] == pytest.approx(want, rel=1e-9), col
    if significant is not None:
        assert bool(row[C.SIGNIFICANT]) is significant
    assert row[C.STATUS] == status
    assert row[C.CI_LOW_PCT] <= row[C.IMPROVEMENT_PCT] <= row[C.CI_HIGH_PCT] or math.isnan(
        row[C.CI_LOW_PCT]
    )


def test_welch_interval_golden_and_scipy(judged):
    summary, _ = judged
    row = summary.loc[51]
    se = math.sqrt(3.0)
    df = 9 / ((4 / 3) ** 2 / 2 + (5 / 3) ** 2 / 3)
    assert df == pytest.approx(4.959183673469388)
    half = stats.t.ppf(0.975, df) * se
    assert half == pytest.approx(4.46342, abs=1e-5)  # t(0.975, 4.959) = 2.57696
    assert row[C.CI_METHOD] == C.WELCH_T
    assert row[C.CI_DF] == pytest.approx(df, rel=1e-12)
    assert row[C.BASELINE] == pytest.approx(110.0)
    assert row[C.CI_LOW_PCT] == pytest.approx(100 * (-11 - half) / 110, rel=1e-9)
    assert row[C.CI_HIGH_PCT] == pytest.approx(100 * (-11 + half) / 110, rel=1e-9)
    ci = stats.ttest_ind([108, 110, 112], [118, 120, 122, 124], equal_var=False)
    ci = ci.confidence_interval(0.95)
    assert row[C.CI_LOW_PCT] == pytest.approx(ci.low / 110 * 100, rel=1e-9)
    assert row[C.CI_HIGH_PCT] == pytest.approx(ci.high / 110 * 100, rel=1e-9)
    assert row[C.CURRENT_CI_LOW] == pytest.approx(121 - half, rel=1e-12)
    assert row[C.CURRENT_CI_HIGH] == pytest.approx(121 + half, rel=1e-12)


def test_student_interval_matches_scipy(judged):
    summary, _ = judged
    row = summary.loc[11]
    ci = stats.ttest_1samp([70, 72, 74, 76], popmean=110).confidence_interval(0.95)
    assert row[C.CI_METHOD] == C.STUDENT_T
    assert row[C.CI_DF] == 3
    assert (row[C.CURRENT_CI_LOW], row[C.CURRENT_CI_HIGH]) == pytest.approx((ci.low, ci.high))
    # lower is better: the high end of the current value is the low end of improvement
    assert row[C.CI_LOW_PCT] == pytest.approx((110 - ci.high) / 110 * 100, rel=1e-12)
    assert row[C.CI_HIGH_PCT] == pytest.approx((110 - ci.low) / 110 * 100, rel=1e-12)


def test_projection_golden(judged):
    summary, _ = judged
    assert C.iso_label(summary.loc[21, C.PROJECTED_TARGET_WEEK]) == "2026-W08"
    # 100, 99, 99, 98: slope -0.6, intercept 99.9 -> x* = 83.17 -> week 84 = 2027-08-16
    assert summary.loc[31, C.TREND_SLOPE] == pytest.approx(-0.6)
    assert summary.loc[31, C.PROJECTED_TARGET_WEEK] == pd.Timestamp("2027-08-16")
    # 100, 101, 99, 100: slope -0.2, intercept 100.3 -> x* = 101.5 -> week 102
    assert summary.loc[61, C.PROJECTED_TARGET_WEEK] == pd.Timestamp("2027-12-20")
    assert pd.isna(summary.loc[111, C.PROJECTED_TARGET_WEEK])  # flat


def test_guardrail_status_follows_held_or_breached(judged):
    """Regression: a held guardrail a little worse than baseline was off_track while
    its reason said "held". Guardrail statuses are held / breached / not_judged."""
    summary, _ = judged
    held, breached, short = summary.loc[12], summary.loc[42], summary.loc[72]
    assert (bool(held[C.GUARDRAIL_BREACHED]), held[C.STATUS]) == (False, C.HELD)
    assert held[C.IMPROVEMENT_PCT] < 0  # worse than baseline, within the margin
    assert (bool(breached[C.GUARDRAIL_BREACHED]), breached[C.STATUS]) == (True, C.BREACHED)
    # 9% vs 4% is far beyond the margin, but with 4 weeks needed and 4 reported it
    # counts; a guardrail with too few weeks is not_judged, never breached
    assert (short[C.WEEKS_REPORTED], bool(short[C.GUARDRAIL_BREACHED])) == (4, True)
    insufficient = summary.loc[91]
    assert (insufficient[C.WEEKS_REPORTED], insufficient[C.STATUS]) == (2, C.NOT_JUDGED)
    assert not insufficient[C.GUARDRAIL_BREACHED]


RECOMMENDATION_GOLDEN = {
    "A go": (
        C.GO,
        "Cycle time 73 h vs target 80 h: met, 33.6% better than baseline 110 h "
        "(95% CI 29.9% to 37.4% better); "
        "Error rate 4.5% vs baseline 4% (non-inferiority margin 1 pp): held, 12.5% worse "
        "(95% CI 2.23% to 22.8% worse)",
    ),
    "B on track": (
        C.EXTEND,
        "Cycle time 92.5 h vs target 72 h: on track, projected to reach target in "
        "2026-W08, 15.9% better than baseline 110 h (95% CI 6.57% to 25.2% better)",
    ),
    "C at risk": (
        C.EXTEND,
        "Cycle time 99 h vs target 50 h: at risk, projected to reach target in 2027-W33, "
        "10% better than baseline 110 h (95% CI 8.82% to 11.2% better)",
    ),
    "D breached": (
        C.NO_GO,
        "Error rate 5.9% vs baseline 4% (non-inferiority margin 1 pp): breached, "
        "47.5% worse (95% CI 37.2% to 57.8% worse)",
    ),
    "E worse": (
        C.NO_GO,
        "Cycle time 121 h vs target 80 h: off track, 10% worse than baseline 110 h "
        "(95% CI 5.94% to 14.1% worse: significantly worse)",
    ),
    "F late": (
        C.NO_GO,
        "decision date 2026-01-30 passed; Cycle time 100 h vs target 80 h: at risk, "
        "projected to reach target in 2027-W51, 9.09% better than baseline 110 h "
        "(95% CI 7.91% to 10.3% better)",
    ),
    "G short": (C.INSUFFICIENT, "Cycle time: 3 pilot weeks reported, 4 needed"),
    "H no baseline": (
        C.INSUFFICIENT,
        "Cycle time: no baseline (set one, or report at least 3 baseline weeks)",
    ),
    "I guardrail only": (C.INSUFFICIENT, "no primary metric defined"),
    "J late but met": (
        C.GO,
        "Cycle time 75 h vs target 80 h: met, 31.8% better than baseline 110 h "
        "(95% CI 28.1% to 35.6% better)",
    ),
    "K flat": (
        C.EXTEND,
        "Cycle time 110 h vs target 80 h: off track, same as baseline 110 h (95% CI 0% to 0%)",
    ),
}


@pytest.mark.parametrize("pilot", sorted(RECOMMENDATION_GOLDEN))
def test_recommendation_golden(judged, pilot):
    _, recs = judged
    recommendation, reasons = RECOMMENDATION_GOLDEN[pilot]
    assert recs.loc[pilot, C.RECOMMENDATION] == recommendation
    assert recs.loc[pilot, C.REASONS] == reasons


def test_every_status_and_recommendation_branch_is_covered(judged):
    summary, recs = judged
    assert set(summary[C.STATUS]) == set(C.STATUSES) | set(C.GUARDRAIL_STATUSES)
    assert set(recs[C.RECOMMENDATION]) == set(C.RECOMMENDATIONS)


def test_primary_met_counts_primary_metrics_only(judged):
    _, recs = judged
    a = recs.loc["A go"]
    assert (a[C.PRIMARY_MET], a[C.PRIMARY_TOTAL]) == (1, 1)
    assert (a[C.METRICS_MET], a[C.METRICS_TOTAL]) == (2, 2)  # the held guardrail is met
    d = recs.loc["D breached"]
    assert (d[C.PRIMARY_MET], d[C.PRIMARY_TOTAL], d[C.METRICS_MET]) == (1, 1, 1)
    i = recs.loc["I guardrail only"]
    assert (i[C.PRIMARY_MET], i[C.PRIMARY_TOTAL], i[C.METRICS_TOTAL]) == (0, 0, 1)


# ------------------------------------------------------------------ end to end


def _export(engine, as_of: date) -> pd.DataFrame:
    with Session(engine) as s:
        return service.summary_export_frame(s, as_of=as_of).set_index(["pilot", "metric"])


def test_export_golden_with_economics(engine):
    """The "A go" pilot through the store and the export, with a cost and a value model."""
    with session_scope(engine) as s:
        make_pilot(
            s,
            "A go",
            start_date=START,
            decision_date=DECISION,
            cost=20000.0,
            metrics=[
                metric_in("cycle_time", label="Cycle time", baseline=110.0, value_per_unit=25.0),
                metric_in(
                    "error_rate",
                    label="Error rate",
                    unit="%",
                    role="guardrail",
                    baseline=4.0,
                    target=3.0,
                    margin=1.0,
                    max_value=100.0,
                ),
            ],
        )
        make_pilot(s, "No model", start_date=START, decision_date=DECISION, cost=5000.0)
    with session_scope(engine) as s:
        add_weeks(s, metric_id(s, "A go", "cycle_time"), START, [70, 72, 74, 76])
        add_weeks(s, metric_id(s, "A go", "error_rate"), START, [4.2, 4.4, 4.6, 4.8])
        add_weeks(s, metric_id(s, "No model", "resolution_time"), START, [70, 72, 74, 76])
    out = _export(engine, AS_OF)
    assert list(out.reset_index().columns[-8:]) == [
        "estimated_weekly_value",
        "payback_week",
        "roi_pct",
        "decision_date",
        "owner",
        "cost",
        "completeness_pct",
        "stale",
    ]
    # the pilot's deadline, owner and cost; the metric's completeness and staleness:
    # as of 2026-02-01 the complete pilot weeks are Jan 5 .. Jan 26 (4), all reported
    row = out.loc[("A go", "cycle_time")]
    assert (row["decision_date"], row["cost"]) == (DECISION.isoformat(), 20000.0)
    assert (row["completeness_pct"], row["stale"]) == (100.0, "false")
    primary, guard = out.loc[("A go", "cycle_time")], out.loc[("A go", "error_rate")]
    assert primary["status"] == C.MET and guard["status"] == C.HELD
    assert primary["recommendation"] == C.GO
    assert primary["ci_low_pct"] == pytest.approx(100 * (37 - H_SPREAD_2) / 110, rel=1e-11)
    assert primary["ci_high_pct"] == pytest.approx(100 * (37 + H_SPREAD_2) / 110, rel=1e-11)
    assert primary["reasons"] == RECOMMENDATION_GOLDEN["A go"][1]
    # value: (110 - 73) h x 25 a week = 925 a week; payback: ceil(20000 / 925) = 22 weeks
    # after the start week 2026-W02 -> 2026-W24; ROI (52 x 925 - 20000) / 20000 = 140.5%
    assert primary["estimated_weekly_value"] == pytest.approx(925.0)
    assert (primary["payback_week"], primary["roi_pct"]) == ("2026-W24", pytest.approx(140.5))
    # the guardrail has no value model: its own value is empty, the pilot's are repeated
    assert math.isnan(guard["estimated_weekly_value"])
    assert (guard["payback_week"], guard["roi_pct"]) == ("2026-W24", pytest.approx(140.5))
    none = out.loc[("No model", "resolution_time")]
    assert math.isnan(none["estimated_weekly_value"]) and math.isnan(none["roi_pct"])
    assert pd.isna(none["payback_week"])
    with Session(engine) as s:
        pilots = service.evaluate(s, as_of=AS_OF).pilots.set_index(C.PILOT)
    assert pilots.loc["A go", C.HAS_VALUE_MODEL]
    assert not pilots.loc["No model", C.HAS_VALUE_MODEL]
    assert (pilots.loc["A go", C.PRIMARY_MET], pilots.loc["A go", C.PRIMARY_TOTAL]) == (1, 1)


def test_helpdesk_interval_matches_scipy_on_the_real_weeks(engine, shared_data):
    """The real pilot as of 2012-06-30: Welch interval of the 25 baseline weeks minus the
    last 4 pilot weeks, against a direct scipy call on the stored weekly medians."""
    with session_scope(engine) as s:
        seed_helpdesk(session=s, actor="seed", path=shared_data / "helpdesk.csv")
    with Session(engine) as s:
        weekly = store.measurements_frame(s).sort_values("week")
    base = weekly[weekly["week"] < pd.Timestamp("2012-01-02")]["value"].to_numpy()
    pilot = weekly[weekly["week"] >= pd.Timestamp("2012-01-02")]["value"].to_numpy()
    assert (len(base), len(pilot)) == (25, 25)
    ci = stats.ttest_ind(base, pilot[-4:], equal_var=False).confidence_interval(0.95)
    b = base.mean()
    row = _export(engine, date(2012, 6, 30)).loc[(PILOT_NAME, "resolution_time")]
    assert row["ci_low_pct"] == pytest.approx(ci.low / b * 100, rel=1e-10)
    assert row["ci_high_pct"] == pytest.approx(ci.high / b * 100, rel=1e-10)
    assert (row["ci_low_pct"], row["ci_high_pct"]) == (23.4477439513, 83.2140387748)
    assert row["status"] == C.MET and row["recommendation"] == C.GO
    assert row["reasons"] == (
        "Resolution time 56.8 h vs target 80 h: met, 53.3% better than baseline 121.6 h "
        "(95% CI 23.4% to 83.2% better)"
    )
