"""The numbers of DESIGN §4/§5 on hand-built tables with known answers."""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from metrics import computations as C

START = date(2026, 1, 5)  # a Monday, ISO 2026-W02
DECISION = date(2026, 6, 26)


def metric_row(**kw) -> dict:
    row = {
        C.PILOT_ID: 1,
        C.PILOT: "P",
        C.METRIC_ID: 1,
        C.KEY: "cycle_time",
        C.LABEL: "Cycle time",
        C.UNIT: "h",
        C.DIRECTION: C.LOWER,
        C.ROLE: C.PRIMARY,
        C.BASELINE: np.nan,
        C.TARGET: 80.0,
        C.MARGIN: np.nan,
        C.START_DATE: pd.Timestamp(START),
        C.DECISION_DATE: pd.Timestamp(DECISION),
        C.WINDOW: 4,
        C.MIN_WEEKS: 4,
    }
    row.update(kw)
    return row


def weeks(values: list[float | None], *, first: date = START, metric_id: int = 1) -> pd.DataFrame:
    """Consecutive weekly values from ``first``; None = a missing week (no row)."""
    rows = [
        {C.METRIC_ID: metric_id, C.WEEK: pd.Timestamp(first + timedelta(weeks=i)), C.VALUE: v}
        for i, v in enumerate(values)
        if v is not None
    ]
    return pd.DataFrame(rows, columns=[C.METRIC_ID, C.WEEK, C.VALUE])


def summarize(metrics: list[dict], measurements: pd.DataFrame, as_of=date(2026, 3, 1)):
    return C.metric_summary(pd.DataFrame(metrics), measurements, as_of=as_of)


BASE3 = date(2025, 12, 15)  # three baseline weeks: Dec 15, 22, 29 2025


# ------------------------------------------------------------- baseline and current


@pytest.mark.parametrize(
    ("explicit", "baseline_values", "expected", "source"),
    [
        (None, [100.0, 110.0, 120.0], 110.0, "baseline_weeks"),
        (90.0, [100.0, 110.0, 120.0], 90.0, "explicit"),
        (None, [100.0, 110.0], None, None),  # fewer than 3 baseline weeks: undefined
        (None, [100.0, None, 120.0], None, None),  # a gap is missing, not a third value
        (None, [], None, None),
    ],
)
def test_baseline(explicit, baseline_values, expected, source):
    m = weeks(baseline_values, first=BASE3)
    m = pd.concat([m, weeks([70.0] * 4)])
    s = summarize([metric_row(**{C.BASELINE: explicit if explicit is not None else np.nan})], m)
    got = s[C.BASELINE].iloc[0]
    if expected is None:
        assert math.isnan(got)
        assert s[C.BASELINE_SOURCE].iloc[0] is None
        assert s[C.STATUS].iloc[0] == C.INSUFFICIENT
    else:
        assert got == pytest.approx(expected)
        assert s[C.BASELINE_SOURCE].iloc[0] == source


@pytest.mark.parametrize(
    ("pilot_values", "window", "current", "reported"),
    [
        ([90.0, 80.0, 70.0, 60.0, 50.0], 4, 65.0, 5),  # mean of the last 4
        ([90.0, 80.0, None, None, 50.0], 4, 220 / 3, 3),  # gaps are skipped, never 0
        ([90.0, None, 70.0, None, 50.0, 40.0], 2, 45.0, 4),
        ([42.0], 4, 42.0, 1),  # a single week
        ([], 4, None, 0),
    ],
)
def test_current_is_trailing_mean_of_reported_weeks(pilot_values, window, current, reported):
    m = weeks(pilot_values)
    s = summarize([metric_row(**{C.BASELINE: 100.0, C.WINDOW: window})], m)
    assert s[C.WEEKS_REPORTED].iloc[0] == reported
    if current is None:
        assert math.isnan(s[C.CURRENT].iloc[0])
    else:
        assert s[C.CURRENT].iloc[0] == pytest.approx(current)


def test_unsorted_input_gives_the_same_numbers():
    m = pd.concat([weeks([100.0, 110.0, 120.0], first=BASE3), weeks([90, 80, 75, 70, 60])])
    shuffled = m.sample(frac=1.0, random_state=3)
    a = summarize([metric_row()], m)
    b = summarize([metric_row()], shuffled)
    pd.testing.assert_frame_equal(a, b)


def test_as_of_ignores_later_weeks_and_judges_staleness_then():
    m = pd.concat([weeks([100.0, 110.0, 120.0], first=BASE3), weeks([90, 80, 70, 60, 50, 40])])
    # as of Sun 2026-02-01: weeks Jan 5..Jan 26 count (4 pilot weeks), Feb 2 and 9 ignored.
    s = summarize([metric_row()], m, as_of=date(2026, 2, 1))
    assert s[C.WEEKS_REPORTED].iloc[0] == 4
    assert s[C.CURRENT].iloc[0] == pytest.approx(75.0)
    assert s[C.WEEKS_EXPECTED].iloc[0] == 4
    assert s[C.COMPLETENESS_PCT].iloc[0] == pytest.approx(100.0)
    assert not s[C.STALE].iloc[0]
    # as of 2026-03-01 (Sunday): 8 complete weeks expected, 6 reported, last Feb 9:
    # no value in the weeks of Feb 16 and Feb 23 -> stale.
    s = summarize([metric_row()], m, as_of=date(2026, 3, 1))
    assert s[C.WEEKS_EXPECTED].iloc[0] == 8
    assert s[C.COMPLETENESS_PCT].iloc[0] == pytest.approx(75.0)
    assert s[C.STALE].iloc[0]
    assert s[C.LAST_WEEK].iloc[0] == pd.Timestamp("2026-02-09")


def test_expected_weeks_stop_at_the_decision_date():
    # decision Fri 2026-01-30: complete pilot weeks Jan 5, 12, 19 (the week of Jan 26
    # is not over by then). Judged years later it is neither stale nor incomplete.
    row = metric_row(**{C.BASELINE: 110.0, C.DECISION_DATE: pd.Timestamp("2026-01-30")})
    s = summarize([row], weeks([90, 80, 70]), as_of=date(2030, 6, 1))
    assert s[C.WEEKS_EXPECTED].iloc[0] == 3
    assert s[C.COMPLETENESS_PCT].iloc[0] == pytest.approx(100.0)
    assert not s[C.STALE].iloc[0]
    # a decision on a Sunday completes that week
    row = metric_row(**{C.BASELINE: 110.0, C.DECISION_DATE: pd.Timestamp("2026-02-01")})
    s = summarize([row], weeks([90, 80, 70]), as_of=date(2030, 6, 1))
    assert s[C.WEEKS_EXPECTED].iloc[0] == 4
    assert s[C.COMPLETENESS_PCT].iloc[0] == pytest.approx(75.0)
    assert not s[C.STALE].iloc[0]  # Jan 19 is within the last 2 expected weeks


def test_completeness_ignores_the_week_in_progress():
    # as of Wed 2026-02-04: complete weeks Jan 5..Jan 26 (4); the week of Feb 2 is in
    # progress. A value for it counts as reported but not towards completeness.
    m = pd.concat([weeks([100.0, 110.0, 120.0], first=BASE3), weeks([90, 80, 70, 60, 50])])
    s = summarize([metric_row()], m, as_of=date(2026, 2, 4))
    assert s[C.WEEKS_REPORTED].iloc[0] == 5
    assert s[C.WEEKS_EXPECTED].iloc[0] == 4
    assert s[C.COMPLETENESS_PCT].iloc[0] == pytest.approx(100.0)
    s = summarize([metric_row()], weeks([90, None, 70, 60, 50]), as_of=date(2026, 2, 4))
    assert s[C.COMPLETENESS_PCT].iloc[0] == pytest.approx(75.0)


# ------------------------------------------------------------- change, improvement, progress


@pytest.mark.parametrize(
    ("direction", "b", "c", "t", "change", "improvement", "progress", "met"),
    [
        (C.LOWER, 100.0, 75.0, 50.0, -25.0, 25.0, 50.0, False),
        (C.LOWER, 100.0, 40.0, 50.0, -60.0, 60.0, 120.0, True),
        (C.LOWER, 100.0, 50.0, 50.0, -50.0, 50.0, 100.0, True),  # exactly at target: met
        (C.LOWER, 100.0, 110.0, 50.0, 10.0, -10.0, -20.0, False),  # worse: negative progress
        (C.HIGHER, 10.0, 12.0, 14.0, 20.0, 20.0, 50.0, False),
        (C.HIGHER, 10.0, 15.0, 14.0, 50.0, 50.0, 125.0, True),
        (C.HIGHER, -10.0, -5.0, 0.0, 50.0, 50.0, 50.0, False),  # |b| in the denominator
        (C.HIGHER, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, False),  # b = 0 and c = 0: change 0
        (C.HIGHER, 0.0, 1.5, 2.0, None, None, 75.0, False),  # b = 0: change undefined
        (C.LOWER, 100.0, 90.0, 100.0, -10.0, 10.0, None, True),  # t = b: progress undefined
    ],
)
def test_change_improvement_progress(direction, b, c, t, change, improvement, progress, met):
    frame = pd.DataFrame({C.BASELINE: [b], C.CURRENT: [c], C.TARGET: [t], C.DIRECTION: [direction]})
    out = C.change_columns(frame).iloc[0]
    for col, want in [
        (C.CHANGE_PCT, change),
        (C.IMPROVEMENT_PCT, improvement),
        (C.PROGRESS_PCT, progress),
    ]:
        if want is None:
            assert math.isnan(out[col]), col
        else:
            assert out[col] == pytest.approx(want), col
    assert bool(out[C.TARGET_MET]) is met


def test_target_met_is_missing_without_current():
    frame = pd.DataFrame(
        {C.BASELINE: [100.0], C.CURRENT: [np.nan], C.TARGET: [50.0], C.DIRECTION: [C.LOWER]}
    )
    assert C.change_columns(frame)[C.TARGET_MET].isna().iloc[0]


# ------------------------------------------------------------- trend and projection


def test_projection_golden():
    # values 100, 95, 90, 85 at x = 0..3: slope -5/week, intercept 100; target 72
    # reached at x* = 5.6 -> first whole week at or after: week 6 = 2026-02-16.
    s = summarize([metric_row(**{C.BASELINE: 110.0, C.TARGET: 72.0})], weeks([100, 95, 90, 85]))
    row = s.iloc[0]
    assert row[C.TREND_SLOPE] == pytest.approx(-5.0)
    assert row[C.TREND_INTERCEPT] == pytest.approx(100.0)
    assert row[C.PROJECTED_TARGET_WEEK] == pd.Timestamp("2026-02-16")
    assert C.iso_label(row[C.PROJECTED_TARGET_WEEK]) == "2026-W08"


def test_projection_exact_crossing_is_that_week():
    # target 80 reached exactly at x = 4 -> week 4 = 2026-02-02
    s = summarize([metric_row(**{C.BASELINE: 110.0, C.TARGET: 80.0})], weeks([100, 95, 90, 85]))
    assert s[C.PROJECTED_TARGET_WEEK].iloc[0] == pd.Timestamp("2026-02-02")


@pytest.mark.parametrize("values", [[85, 90, 95, 100], [90, 90, 90, 90], [90]])
def test_no_projection_when_moving_away_flat_or_single(values):
    s = summarize([metric_row(**{C.BASELINE: 110.0, C.TARGET: 72.0})], weeks(values))
    assert pd.isna(s[C.PROJECTED_TARGET_WEEK].iloc[0])


@pytest.mark.parametrize("value", [33.7, 41.17, 0.1, 40.3, 1e-9])
def test_constant_series_is_flat_never_projected(value):
    # Regression: float noise in the sums made the slope ~1e-16 instead of 0 and the
    # "projected" week overflowed pandas' timedelta (a crash on every page).
    row = metric_row(**{C.BASELINE: 50.0, C.TARGET: 20.0, C.MIN_WEEKS: 4})
    s = summarize([row], weeks([value] * 29), as_of=date(2026, 12, 1))
    assert s[C.TREND_SLOPE].iloc[0] == 0.0
    assert pd.isna(s[C.PROJECTED_TARGET_WEEK].iloc[0])
    assert s[C.STATUS].iloc[0] in (C.AT_RISK, C.MET)


def test_projection_beyond_the_horizon_is_none():
    # improving by 0.001 h a week: the 80 h target is ~10,000 weeks away -> none
    s = summarize(
        [metric_row(**{C.BASELINE: 110.0, C.TARGET: 80.0})], weeks([90, 89.999, 89.998, 89.997])
    )
    assert s[C.TREND_SLOPE].iloc[0] == pytest.approx(-0.001)
    assert pd.isna(s[C.PROJECTED_TARGET_WEEK].iloc[0])
    assert s[C.STATUS].iloc[0] == C.AT_RISK


def test_projection_counts_gaps_in_x():
    # weeks 0 and 2 reported (week 1 missing): 100 then 90 -> slope -5/week
    s = summarize([metric_row(**{C.BASELINE: 110.0, C.TARGET: 72.0})], weeks([100, None, 90]))
    assert s[C.TREND_SLOPE].iloc[0] == pytest.approx(-5.0)


# ------------------------------------------------------------- status


@pytest.mark.parametrize(
    ("values", "target", "decision", "status"),
    [
        ([100, 90, 80, 70], 80.0, DECISION, C.MET),  # current 85 > 80... see below
        ([70, 70, 70, 70], 80.0, DECISION, C.MET),
        ([100, 95, 90, 85], 72.0, DECISION, C.ON_TRACK),  # projected 2026-W08 < decision
        ([100, 95, 90, 85], 72.0, date(2026, 2, 6), C.AT_RISK),  # decision before W08
        ([100, 99, 99, 98], 50.0, date(2026, 2, 6), C.AT_RISK),  # improving, too slowly
        ([105, 110, 115, 120], 72.0, DECISION, C.OFF_TRACK),  # worse than baseline 110
        ([110, 110, 110, 110], 72.0, DECISION, C.OFF_TRACK),  # no improvement
        ([100, 95, 90], 72.0, DECISION, C.INSUFFICIENT),  # 3 of 4 weeks
    ],
)
def test_metric_status(values, target, decision, status):
    if values == [100, 90, 80, 70]:
        target, status = 85.0, C.MET  # current = 85 -> exactly met
    row = metric_row(**{C.BASELINE: 110.0, C.TARGET: target, C.DECISION_DATE: decision})
    s = summarize([row], weeks(values), as_of=date(2026, 2, 1))
    assert s[C.STATUS].iloc[0] == status


def test_projection_in_the_past_is_not_on_track():
    # 50, 46 .. 30 in weeks 0..5 reach target 20 at week 7.5 -> 2026-03-02.
    row = metric_row(**{C.BASELINE: 50.0, C.TARGET: 20.0, C.DECISION_DATE: date(2026, 12, 18)})
    s = summarize([row], weeks([50, 46, 42, 38, 34, 30]), as_of=date(2026, 2, 15))
    assert s[C.PROJECTED_TARGET_WEEK].iloc[0] == pd.Timestamp("2026-03-02")
    assert s[C.STATUS].iloc[0] == C.ON_TRACK
    # judged in November with no newer data: 2026-W10 is long over and unmet -> at risk
    s = summarize([row], weeks([50, 46, 42, 38, 34, 30]), as_of=date(2026, 11, 30))
    assert s[C.STATUS].iloc[0] == C.AT_RISK
    # 50, 40, 30, 20, 25, 26: the line (slope -5, intercept 44.3) crosses 20 at x = 4.87
    # -> week 5 = 2026-02-09, which is the last reported week itself; current 25.25 is
    # not met, so the crossing is history, not a forecast: at risk.
    s = summarize([row], weeks([50, 40, 30, 20, 25, 26]), as_of=date(2026, 11, 30))
    assert s[C.PROJECTED_TARGET_WEEK].iloc[0] == pd.Timestamp("2026-02-09")
    assert s[C.LAST_WEEK].iloc[0] == pd.Timestamp("2026-02-09")
    assert s[C.STATUS].iloc[0] == C.AT_RISK


def test_status_with_zero_baseline_uses_raw_difference():
    row = metric_row(**{C.DIRECTION: C.HIGHER, C.BASELINE: 0.0, C.TARGET: 2.0, C.UNIT: "pp"})
    s = summarize([row], weeks([0.5, 1.0, 1.5, 1.8]), as_of=date(2026, 2, 1))
    assert math.isnan(s[C.IMPROVEMENT_PCT].iloc[0])
    assert s[C.STATUS].iloc[0] == C.ON_TRACK


# ------------------------------------------------------------- guardrails and recommendation


@pytest.mark.parametrize(
    ("direction", "baseline", "values", "margin", "breached"),
    [
        (C.LOWER, 4.0, [4.5] * 4, 1.0, False),  # 0.5 worse, margin 1
        (C.LOWER, 4.0, [5.5] * 4, 1.0, True),  # 1.5 worse
        (C.LOWER, 4.0, [5.0] * 4, 1.0, False),  # exactly at the margin: held
        (C.LOWER, 4.0, [4.1] * 4, np.nan, True),  # no margin = 0
        (C.HIGHER, 10.0, [9.5] * 4, 1.0, False),
        (C.HIGHER, 10.0, [8.5] * 4, 1.0, True),
        (C.HIGHER, 10.0, [12.0] * 4, 0.0, False),  # better is never a breach
    ],
)
def test_guardrail_breached(direction, baseline, values, margin, breached):
    target = baseline - 1 if direction == C.LOWER else baseline + 1
    row = metric_row(
        **{
            C.ROLE: C.GUARDRAIL,
            C.DIRECTION: direction,
            C.BASELINE: baseline,
            C.TARGET: target,
            C.MARGIN: margin,
        }
    )
    s = summarize([row], weeks(values))
    assert bool(s[C.GUARDRAIL_BREACHED].iloc[0]) is breached


def _two_metric_pilot(primary_values, guard_values, *, decision=DECISION, as_of=date(2026, 2, 1)):
    prim = metric_row(**{C.BASELINE: 110.0, C.TARGET: 80.0, C.DECISION_DATE: decision})
    guard = metric_row(
        **{
            C.METRIC_ID: 2,
            C.KEY: "error_rate",
            C.LABEL: "Error rate",
            C.UNIT: "%",
            C.ROLE: C.GUARDRAIL,
            C.BASELINE: 4.0,
            C.TARGET: 3.0,
            C.MARGIN: 1.0,
            C.DECISION_DATE: decision,
        }
    )
    m = pd.concat([weeks(primary_values), weeks(guard_values, metric_id=2)])
    s = C.metric_summary(pd.DataFrame([prim, guard]), m, as_of=as_of)
    return C.recommend(s, as_of=as_of).iloc[0]


@pytest.mark.parametrize(
    ("primary", "guard", "decision", "recommendation", "reason_part"),
    [
        # rule 1 fires first even though the guardrail is breached
        ([70, 70, 70], [9, 9, 9, 9], DECISION, C.INSUFFICIENT, "Cycle time: 3 pilot weeks"),
        (
            [70, 70, 70, 70],
            [6, 6, 6, 6],
            DECISION,
            C.NO_GO,
            "(non-inferiority margin 1 pp): breached",
        ),
        ([100, 100, 100, 100], [4, 4, 4, 4], date(2026, 1, 30), C.NO_GO, "decision date"),
        ([70, 70, 70, 70], [4.5] * 4, DECISION, C.GO, "Cycle time 70 h vs target 80 h: met"),
        ([100, 95, 90, 85], [4, 4, 4, 4], DECISION, C.EXTEND, "on track"),
    ],
)
def test_recommendation_rules_in_order(primary, guard, decision, recommendation, reason_part):
    rec = _two_metric_pilot(primary, guard, decision=decision)
    assert rec[C.RECOMMENDATION] == recommendation
    assert reason_part in rec[C.REASONS]


def test_go_reason_text_golden():
    rec = _two_metric_pilot([69, 71, 69, 71], [4.4, 4.6, 4.4, 4.6])
    # 69, 71, 69, 71: sd 1.1547, se 0.57735, t(0.975, 3) = 3.18245 -> +-1.83739 h
    assert rec[C.REASONS] == (
        "Cycle time 70 h vs target 80 h: met, 36.4% better than baseline 110 h "
        "(95% CI 34.7% to 38% better); "
        "Error rate 4.5% vs baseline 4% (non-inferiority margin 1 pp): held, "
        "12.5% worse (95% CI 7.91% to 17.1% worse)"
    )
    assert (rec[C.PRIMARY_MET], rec[C.PRIMARY_TOTAL]) == (1, 1)
    assert (rec[C.METRICS_MET], rec[C.METRICS_TOTAL]) == (2, 2)


def test_pilot_without_primary_metric_is_insufficient():
    row = metric_row(**{C.ROLE: C.GUARDRAIL, C.BASELINE: 4.0, C.TARGET: 3.0, C.MARGIN: 1.0})
    s = summarize([row], weeks([4, 4, 4, 4]))
    rec = C.recommend(s, as_of=date(2026, 3, 1)).iloc[0]
    assert rec[C.RECOMMENDATION] == C.INSUFFICIENT
    assert rec[C.REASONS] == "no primary metric defined"


@pytest.mark.parametrize(
    ("x", "text"),
    [
        (56.762, "56.8"),
        (80.0, "80"),
        (4.357, "4.36"),
        (0.0, "0"),
        (-12.345, "-12.3"),
        (0.000123, "0.000123"),
        (0.0000012, "0.0000012"),
        (1.23456e20, "123456000000000000000"),
        (np.nan, "n/a"),
        (None, "n/a"),
        (1234567.0, "1234567"),
    ],
)
def test_fmt_number(x, text):
    assert C.fmt_number(x) == text


# ------------------------------------------------------------- uncertainty


@pytest.mark.parametrize(
    "sample",
    [
        [70.0, 72.0, 74.0, 76.0],
        [1.5, 2.5],
        [100.0, 98.5, 97.25, 101.0, 99.0],
        [0.001, 0.003, 0.002],
    ],
)
def test_student_t_interval_matches_scipy(sample):
    x = np.array(sample)
    low, high, df = C.student_t_interval([x.mean()], [x.var(ddof=1)], [len(x)])
    ci = stats.ttest_1samp(x, popmean=0.0).confidence_interval(0.95)
    assert (low[0], high[0]) == pytest.approx((ci.low, ci.high), rel=1e-12)
    assert df[0] == len(x) - 1


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ([108.0, 110.0, 112.0], [118.0, 120.0, 122.0, 124.0]),
        ([120.0, 95.5, 130.25, 101.0, 140.0, 88.0], [60.0, 55.0]),
        ([5.0, 5.0, 5.0], [4.0, 4.5, 5.5]),  # one side without variance: df = n2 - 1
        ([0.2, 0.4, 0.9, 0.3], [0.25, 0.26, 0.24]),
    ],
)
@pytest.mark.filterwarnings("ignore:Precision loss:RuntimeWarning")  # scipy on [5, 5, 5]
def test_welch_t_interval_matches_scipy(a, b):
    x, y = np.array(a), np.array(b)
    low, high, df = C.welch_t_interval(
        [x.mean()], [x.var(ddof=1)], [len(x)], [y.mean()], [y.var(ddof=1)], [len(y)]
    )
    res = stats.ttest_ind(x, y, equal_var=False)
    ci = res.confidence_interval(0.95)
    assert (low[0], high[0]) == pytest.approx((ci.low, ci.high), rel=1e-12)
    assert df[0] == pytest.approx(res.df, rel=1e-12)


def test_intervals_are_vectorised_and_undefined_below_two_values():
    low, high, _ = C.student_t_interval(
        [5.0, 5.0, 5.0, np.nan], [1.0, np.nan, 0.0, 1.0], [4, 1, 3, 4]
    )
    assert low[0] < 5.0 < high[0]
    assert math.isnan(low[1]) and math.isnan(high[1])  # one value: undefined
    assert (low[2], high[2]) == (5.0, 5.0)  # no spread: a point
    assert math.isnan(low[3])
    low, high, df = C.welch_t_interval(
        [10, 10, 10], [1, 1, 0], [1, 3, 3], [8, 8, 8], [1, 1, 0], [3, 1, 3]
    )
    assert math.isnan(low[0]) and math.isnan(low[1])  # 1 baseline value / 1 pilot value
    assert (low[2], high[2]) == (2.0, 2.0) and math.isnan(df[2])


@pytest.mark.parametrize(
    ("explicit", "baseline_values", "pilot_values", "window", "defined"),
    [
        (110.0, None, [70, 72, 74, 76], 4, True),
        (110.0, None, [70], 4, False),  # one trailing value
        (110.0, None, [70, 72, 74, 76], 1, False),  # a trailing window of 1 week
        (0.0, None, [1.0, 1.5, 2.0, 2.5], 4, False),  # b = 0: no percentage interval
        (None, [100.0, 110.0, 120.0], [70, 72, 74, 76], 4, True),  # Welch
        (None, [100.0, 110.0], [70, 72, 74, 76], 4, False),  # no baseline at all
        (None, [100.0, 110.0, 120.0], [70], 4, False),  # one pilot value
    ],
)
def test_interval_defined_only_with_two_values_a_side(
    explicit, baseline_values, pilot_values, window, defined
):
    m = weeks(pilot_values)
    if baseline_values:
        m = pd.concat([weeks(baseline_values, first=BASE3), m])
    row = metric_row(
        **{C.BASELINE: np.nan if explicit is None else explicit, C.WINDOW: window, C.MIN_WEEKS: 1}
    )
    s = summarize([row], m).iloc[0]
    assert (not math.isnan(s[C.CI_LOW_PCT])) is defined
    assert (not math.isnan(s[C.CI_HIGH_PCT])) is defined
    if not defined:
        assert not s[C.SIGNIFICANT]
    else:
        assert s[C.CI_METHOD] == (C.STUDENT_T if explicit is not None else C.WELCH_T)


def test_zero_baseline_keeps_the_interval_of_the_current_value():
    row = metric_row(**{C.DIRECTION: C.HIGHER, C.BASELINE: 0.0, C.TARGET: 2.0, C.UNIT: "pp"})
    s = summarize([row], weeks([1.0, 1.5, 2.0, 2.5])).iloc[0]
    assert math.isnan(s[C.CI_LOW_PCT]) and not s[C.SIGNIFICANT]
    ci = stats.ttest_1samp([1.0, 1.5, 2.0, 2.5], 0.0).confidence_interval()
    assert (s[C.CURRENT_CI_LOW], s[C.CURRENT_CI_HIGH]) == pytest.approx((ci.low, ci.high))


def test_higher_is_better_interval_is_ordered_low_to_high():
    row = metric_row(**{C.DIRECTION: C.HIGHER, C.BASELINE: 10.0, C.TARGET: 14.0, C.UNIT: "items/h"})
    s = summarize([row], weeks([11.0, 12.0, 13.0, 12.0])).iloc[0]
    ci = stats.ttest_1samp([11.0, 12.0, 13.0, 12.0], 0.0).confidence_interval()
    assert s[C.CI_LOW_PCT] == pytest.approx((ci.low - 10) / 10 * 100)
    assert s[C.CI_HIGH_PCT] == pytest.approx((ci.high - 10) / 10 * 100)
    assert s[C.IMPROVEMENT_PCT] == pytest.approx(20.0)
    assert s[C.CI_LOW_PCT] < s[C.IMPROVEMENT_PCT] < s[C.CI_HIGH_PCT]
    assert s[C.SIGNIFICANT]


def test_significantly_worse_primary_is_no_go_and_noisy_worse_is_not():
    # 112, 118, 114, 120 vs explicit 110: worse, interval below 0 -> no-go by rule 2
    rec = _two_metric_pilot([112, 118, 114, 120], [4, 4, 4, 4])
    assert rec[C.RECOMMENDATION] == C.NO_GO
    assert rec[C.REASONS].startswith("Cycle time 116 h vs target 80 h: off track, 5.45% worse")
    assert rec[C.REASONS].endswith(": significantly worse)")
    # 100, 130, 95, 135 (mean 115): worse, but the interval includes 0 -> extend
    rec = _two_metric_pilot([100, 130, 95, 135], [4, 4, 4, 4])
    assert rec[C.RECOMMENDATION] == C.EXTEND
    assert "significantly" not in rec[C.REASONS]


def test_guardrail_with_too_few_weeks_is_not_judged():
    row = metric_row(
        **{C.ROLE: C.GUARDRAIL, C.BASELINE: 4.0, C.TARGET: 3.0, C.MARGIN: 1.0, C.UNIT: "%"}
    )
    s = summarize([row], weeks([9.0, 9.0, 9.0])).iloc[0]
    assert (s[C.STATUS], bool(s[C.GUARDRAIL_BREACHED])) == (C.NOT_JUDGED, False)
    assert C.metric_reason(s) == (
        "Cycle time: guardrail not judged, 3 pilot weeks reported, 4 needed"
    )


def test_guardrail_reason_in_the_issue_words():
    row = metric_row(
        **{
            C.LABEL: "Complaint rate",
            C.UNIT: "%",
            C.ROLE: C.GUARDRAIL,
            C.BASELINE: 2.0,
            C.TARGET: 1.5,
            C.MARGIN: 0.5,
            C.WINDOW: 1,
        }
    )
    s = summarize([row], weeks([2.3, 2.3, 2.3, 2.3])).iloc[0]
    assert C.metric_reason(s) == (
        "Complaint rate 2.3% vs baseline 2% (non-inferiority margin 0.5 pp): held, 15% worse"
    )
    assert s[C.STATUS] == C.HELD


@pytest.mark.parametrize(
    ("low", "high", "worse", "text"),
    [
        (22.04, 60.0, False, "95% CI 22% to 60% better"),
        (-5.25, 0.5, False, "95% CI 5.25% worse to 0.5% better"),
        (-148.2, -100.1, True, "95% CI 100.1% to 148.2% worse"),
        (-30.0, 0.1, True, "95% CI 0.1% better to 30% worse"),
        (0.0, 0.0, False, "95% CI 0% to 0%"),
        (np.nan, 1.0, False, ""),
    ],
)
def test_ci_text(low, high, worse, text):
    assert C.ci_text(low, high, worse=worse) == text


def test_margin_unit():
    assert (C.margin_unit("%"), C.margin_unit("h"), C.margin_unit(None)) == ("pp", "h", "")


# ------------------------------------------------------------- economics


@pytest.mark.parametrize(
    ("direction", "b", "c", "vpu", "value"),
    [
        (C.LOWER, 110.0, 73.0, 25.0, 925.0),  # 37 h better x 25
        (C.LOWER, 110.0, 120.0, 25.0, -250.0),  # worse: negative
        (C.HIGHER, 10.0, 12.5, 400.0, 1000.0),
        (C.HIGHER, 10.0, 12.5, np.nan, None),  # no value model
        (C.LOWER, np.nan, 73.0, 25.0, None),  # no baseline
        (C.LOWER, 110.0, np.nan, 25.0, None),  # no current value: never 0
    ],
)
def test_metric_weekly_value(direction, b, c, vpu, value):
    frame = pd.DataFrame(
        {C.BASELINE: [b], C.CURRENT: [c], C.DIRECTION: [direction], C.VALUE_PER_UNIT: [vpu]}
    )
    got = C.metric_weekly_value(frame).iloc[0]
    assert math.isnan(got) if value is None else got == pytest.approx(value)


def _econ(values: list[float | None], vpus: list[float | None], cost: float | None):
    summary = pd.DataFrame(
        {
            C.PILOT_ID: [1] * len(values),
            C.VALUE_PER_UNIT: [np.nan if v is None else v for v in vpus],
            C.ESTIMATED_WEEKLY_VALUE: [np.nan if v is None else v for v in values],
        }
    )
    pilots = pd.DataFrame(
        {
            C.PILOT_ID: [1],
            C.START_DATE: [pd.Timestamp("2026-01-07")],  # a Wednesday of 2026-W02
            C.COST: [np.nan if cost is None else cost],
        }
    )
    return C.pilot_economics(summary, pilots).iloc[0]


@pytest.mark.parametrize(
    ("values", "vpus", "cost", "weekly", "payback", "roi"),
    [
        # 925 + 75 = 1000 a week; 20,000 / 1000 = 20 weeks after 2026-W02 -> 2026-W22
        ([925.0, 75.0], [25.0, 3.0], 20000.0, 1000.0, "2026-W22", 160.0),
        ([925.0, None], [25.0, None], 20000.0, 925.0, "2026-W24", 140.5),  # 1 model only
        ([925.0, None], [25.0, 3.0], 20000.0, None, None, None),  # a model without value
        ([None], [None], 20000.0, None, None, None),  # no value model at all
        ([-250.0], [25.0], 20000.0, -250.0, None, -165.0),  # worse: no payback, ROI < 0
        ([925.0], [25.0], None, 925.0, None, None),  # no cost
        ([925.0], [25.0], 0.0, 925.0, None, None),  # cost 0: nothing to pay back
        ([0.5], [1.0], 1e6, 0.5, None, (26 - 1e6) / 1e6 * 100),  # beyond the horizon
    ],
)
def test_pilot_economics(values, vpus, cost, weekly, payback, roi):
    row = _econ(values, vpus, cost)
    assert bool(row[C.HAS_VALUE_MODEL]) is any(v is not None for v in vpus)
    for col, want in ((C.ESTIMATED_WEEKLY_VALUE, weekly), (C.ROI_PCT, roi)):
        assert math.isnan(row[col]) if want is None else row[col] == pytest.approx(want), col
    assert C.iso_label(row[C.PAYBACK_WEEK]) == payback


def test_economics_in_the_summary_and_without_the_column():
    row = metric_row(**{C.BASELINE: 110.0, C.VALUE_PER_UNIT: 25.0})
    s = summarize([row], weeks([70, 72, 74, 76]))
    assert s[C.ESTIMATED_WEEKLY_VALUE].iloc[0] == pytest.approx(925.0)
    plain = summarize([metric_row(**{C.BASELINE: 110.0})], weeks([70, 72, 74, 76]))
    assert math.isnan(plain[C.ESTIMATED_WEEKLY_VALUE].iloc[0])
    pilots = pd.DataFrame({C.PILOT_ID: [1, 2], C.START_DATE: pd.to_datetime(["2026-01-05"] * 2)})
    econ = C.pilot_economics(plain, pilots)  # no cost column, a pilot without metrics
    assert list(econ[C.HAS_VALUE_MODEL]) == [False, False]
    assert econ[C.ROI_PCT].isna().all() and econ[C.PAYBACK_WEEK].isna().all()


def test_no_projection_while_data_is_insufficient():
    """QA: a pilot with 2 of 4 needed weeks showed 'Projected target week 2027-W03'."""
    row = metric_row(**{C.BASELINE: 110.0, C.TARGET: 72.0, C.MIN_WEEKS: 4})
    s = summarize([row], weeks([100, 95]))
    assert s[C.STATUS].iloc[0] == C.INSUFFICIENT
    assert s[C.TREND_SLOPE].iloc[0] == pytest.approx(-5.0)  # the trend is still there
    assert pd.isna(s[C.PROJECTED_TARGET_WEEK].iloc[0])
    # with the fourth week the projection appears (2026-02-16, as in the golden case)
    s = summarize([row], weeks([100, 95, 90, 85]))
    assert s[C.PROJECTED_TARGET_WEEK].iloc[0] == pd.Timestamp("2026-02-16")
