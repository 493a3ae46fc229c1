"""Invariants of the numbers (DESIGN §4/§5), checked with hypothesis.

Generated portfolios use whole-number weekly values (1 .. 10,000) and place targets,
explicit baselines and margins off the grid of possible trailing means (``+ 0.37``,
``+ 0.13``, ``+ 0.29``; a mean of at most 5 whole numbers is a multiple of 1/60), so a
comparison such as "current <= target" is never a float tie that mirroring or scaling
could tip either way. Floats are compared with a tolerance.
"""

from __future__ import annotations

import math
import random
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy import stats

from dashboard.charts import weekly_series
from metrics import computations as C

START = date(2026, 1, 5)  # a Monday
BASE_FIRST = START - timedelta(weeks=8)
#: Whole portfolios are judged twice per example (~0.2 s each on a loaded machine): 50
#: examples keep each property under half a minute; the cheap ones run 100.
SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FAST_SETTINGS = settings(max_examples=100, deadline=None)
PCT_COLUMNS = (C.CHANGE_PCT, C.IMPROVEMENT_PCT, C.PROGRESS_PCT, C.CI_LOW_PCT, C.CI_HIGH_PCT)

values_st = st.integers(min_value=1, max_value=10_000)


@st.composite
def metric_case(draw, pilot_id: int, metric_id: int) -> dict:
    """One metric: its definition, baseline-period and pilot-period values."""
    explicit = draw(st.booleans())
    center = draw(st.integers(min_value=100, max_value=5000))
    if explicit:
        baseline, base_values = center + 0.13, []
    else:  # baseline weeks whose mean is exactly `center`
        devs = draw(st.lists(st.integers(-center // 6, center // 6), min_size=2, max_size=5))
        base_values = [center + d for d in devs] + [center - sum(devs)]
        baseline = np.nan
    margin = draw(st.one_of(st.none(), st.integers(0, 500)))
    # pilot weeks: either any values, or a noisy line from the baseline (so trends,
    # projections and every status come up), with some weeks missing
    n_weeks = draw(st.integers(1, 12))
    target = min(10_000, max(1, center + draw(st.integers(-3000, 3000))))
    if draw(st.booleans()):
        pilot = draw(st.lists(st.one_of(st.none(), values_st), min_size=n_weeks, max_size=n_weeks))
    else:
        step = draw(st.integers(-300, 300))
        if draw(st.booleans()):  # heading for the target
            step = abs(step) if target > center else -abs(step)
        noise = draw(st.lists(st.integers(-40, 40), min_size=n_weeks, max_size=n_weeks))
        gaps = draw(st.lists(st.booleans(), min_size=n_weeks, max_size=n_weeks))
        pilot = [
            None if gap and i % 3 == 1 else min(10_000, max(1, center + step * i + e))
            for i, (e, gap) in enumerate(zip(noise, gaps, strict=True))
        ]
    return {
        "row": {
            C.PILOT_ID: pilot_id,
            C.PILOT: f"Pilot {pilot_id}",
            C.METRIC_ID: metric_id,
            C.KEY: f"m{metric_id}",
            C.LABEL: f"Metric {metric_id}",
            C.UNIT: "h",
            C.DIRECTION: draw(st.sampled_from([C.LOWER, C.HIGHER])),
            C.ROLE: draw(st.sampled_from([C.PRIMARY, C.PRIMARY, C.GUARDRAIL])),
            C.BASELINE: baseline,
            C.TARGET: target + 0.37,
            C.MARGIN: np.nan if margin is None else margin + 0.29,
        },
        "center": float(center) + (0.13 if explicit else 0.0),
        "base": base_values,
        "pilot": pilot,
    }


@st.composite
def portfolio_case(draw, max_pilots: int = 1) -> dict:
    """1..max_pilots pilots of 1..3 metrics, judged at a Sunday as_of."""
    n_pilots = draw(st.integers(1, max_pilots))
    cases, pilots, mid = [], {}, 0
    for pid in range(1, n_pilots + 1):
        pilots[pid] = {
            C.START_DATE: pd.Timestamp(START),
            C.DECISION_DATE: pd.Timestamp(
                START + timedelta(weeks=draw(st.integers(1, 30)), days=4)
            ),
            C.WINDOW: draw(st.integers(1, 5)),
            C.MIN_WEEKS: draw(st.integers(1, 4)),
        }
        for _ in range(draw(st.integers(1, 3))):
            mid += 1
            case = draw(metric_case(pid, mid))
            case["row"].update(pilots[pid])
            cases.append(case)
    as_of = START + timedelta(weeks=draw(st.integers(2, 16)), days=6)
    return {"cases": cases, "as_of": as_of}


def frames(cases: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    metrics = pd.DataFrame([c["row"] for c in cases])
    rows = []
    for c in cases:
        mid = c["row"][C.METRIC_ID]
        for i, v in enumerate(c["base"]):
            rows.append((mid, pd.Timestamp(BASE_FIRST + timedelta(weeks=i)), float(v)))
        for i, v in enumerate(c["pilot"]):
            if v is not None:
                rows.append((mid, pd.Timestamp(START + timedelta(weeks=i)), float(v)))
    measurements = pd.DataFrame(rows, columns=[C.METRIC_ID, C.WEEK, C.VALUE])
    return metrics, measurements


def judge(cases: list[dict], as_of: date) -> tuple[pd.DataFrame, pd.DataFrame]:
    metrics, measurements = frames(cases)
    summary = C.metric_summary(metrics, measurements, as_of=as_of)
    return summary.set_index(C.METRIC_ID), C.recommend(summary, as_of=as_of).set_index(C.PILOT)


def close(a: float, b: float) -> bool:
    if pd.isna(a) or pd.isna(b):
        return pd.isna(a) and pd.isna(b)
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def assert_same_judgement(a, b, columns=PCT_COLUMNS) -> None:
    (sa, ra), (sb, rb) = a, b
    for mid in sa.index:
        for col in columns:
            assert close(sa.loc[mid, col], sb.loc[mid, col]), (mid, col)
        assert sa.loc[mid, C.STATUS] == sb.loc[mid, C.STATUS], mid
        assert bool(sa.loc[mid, C.SIGNIFICANT]) == bool(sb.loc[mid, C.SIGNIFICANT]), mid
    assert ra[C.RECOMMENDATION].to_dict() == rb[C.RECOMMENDATION].to_dict()


# ------------------------------------------------------------------ mirroring


def mirrored(case: dict) -> dict:
    """Values and target mirrored around the baseline, direction flipped."""
    b = case["center"]
    row = dict(case["row"])
    row[C.TARGET] = 2 * b - row[C.TARGET]
    row[C.DIRECTION] = C.HIGHER if row[C.DIRECTION] == C.LOWER else C.LOWER
    return {
        **case,
        "row": row,
        "base": [2 * b - v for v in case["base"]],
        "pilot": [None if v is None else 2 * b - v for v in case["pilot"]],
    }


@SETTINGS
@given(portfolio_case())
def test_mirroring_a_metric_changes_nothing(p):
    original = judge(p["cases"], p["as_of"])
    flipped = judge([mirrored(c) for c in p["cases"]], p["as_of"])
    # change_pct turns sign with the direction; improvement and its interval do not
    assert_same_judgement(original, flipped, [c for c in PCT_COLUMNS if c != C.CHANGE_PCT])
    for c in p["cases"]:
        mid = c["row"][C.METRIC_ID]
        assert close(original[0].loc[mid, C.CHANGE_PCT], -flipped[0].loc[mid, C.CHANGE_PCT])
    # the baseline itself stays where it was (the mirror's centre)
    for c in p["cases"]:
        b = original[0].loc[c["row"][C.METRIC_ID], C.BASELINE]
        assert close(b, flipped[0].loc[c["row"][C.METRIC_ID], C.BASELINE])


# ------------------------------------------------------------------ scaling


def scaled(case: dict, k: float) -> dict:
    row = dict(case["row"])
    for col in (C.BASELINE, C.TARGET, C.MARGIN):
        row[col] = row[col] * k
    return {
        **case,
        "row": row,
        "base": [v * k for v in case["base"]],
        "pilot": [None if v is None else v * k for v in case["pilot"]],
    }


@SETTINGS
@given(portfolio_case(), st.floats(min_value=0.01, max_value=100.0))
def test_scaling_every_number_changes_nothing(p, k):
    original = judge(p["cases"], p["as_of"])
    # a current exactly at a baseline from weeks is a tie that scaling may round apart
    s = original[0]
    assume(not ((s[C.CURRENT] - s[C.BASELINE]).abs() < 1e-9 * s[C.BASELINE].abs()).any())
    assert_same_judgement(original, judge([scaled(c, k) for c in p["cases"]], p["as_of"]))


# ------------------------------------------------------------------ row order


@SETTINGS
@given(portfolio_case(max_pilots=3), st.randoms(use_true_random=False))
def test_reordering_input_rows_changes_nothing(p, rnd: random.Random):
    metrics, measurements = frames(p["cases"])
    as_of = p["as_of"]
    a = C.metric_summary(metrics, measurements, as_of=as_of)
    m_order = list(range(len(metrics)))
    v_order = list(range(len(measurements)))
    rnd.shuffle(m_order)
    rnd.shuffle(v_order)
    b = C.metric_summary(
        metrics.iloc[m_order].reset_index(drop=True),
        measurements.iloc[v_order].reset_index(drop=True),
        as_of=as_of,
    )
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    pd.testing.assert_frame_equal(
        C.recommend(a, as_of=as_of), C.recommend(b, as_of=as_of), check_exact=True
    )


# ------------------------------------------------------------------ missing weeks


@SETTINGS
@given(
    st.lists(values_st, min_size=2, max_size=12),
    st.data(),
)
def test_a_missing_week_never_changes_another_weeks_value(values, data):
    drop = data.draw(st.integers(0, len(values) - 1))
    window = data.draw(st.integers(1, 5))
    weeks = [pd.Timestamp(START + timedelta(weeks=i)) for i in range(len(values))]
    full = pd.DataFrame({C.WEEK: weeks, C.VALUE: [float(v) for v in values]})
    gap = full.drop(index=drop)
    # the chart's weekly grid: every other week keeps its value, the gap is NaN
    a = weekly_series(full).set_index(C.WEEK)[C.VALUE]
    b = weekly_series(gap).set_index(C.WEEK)[C.VALUE]
    for week, value in b.items():
        if week == weeks[drop]:
            assert math.isnan(value)
        else:
            assert value == a[week]
    # the numbers: the current value is the mean of the last reported weeks, never a 0
    row = {
        C.PILOT_ID: 1,
        C.PILOT: "P",
        C.METRIC_ID: 1,
        C.KEY: "m",
        C.LABEL: "M",
        C.UNIT: "h",
        C.DIRECTION: C.LOWER,
        C.ROLE: C.PRIMARY,
        C.BASELINE: 5000.13,
        C.TARGET: 100.37,
        C.MARGIN: np.nan,
        C.START_DATE: pd.Timestamp(START),
        C.DECISION_DATE: pd.Timestamp(START + timedelta(weeks=30)),
        C.WINDOW: window,
        C.MIN_WEEKS: 1,
    }
    as_of = START + timedelta(weeks=len(values), days=6)
    s = C.metric_summary(pd.DataFrame([row]), gap.assign(**{C.METRIC_ID: 1}), as_of=as_of)
    kept = [float(v) for i, v in enumerate(values) if i != drop]
    assert s[C.WEEKS_REPORTED].iloc[0] == len(kept)
    assert s[C.CURRENT].iloc[0] == pytest.approx(float(np.mean(kept[-window:])), rel=1e-12)


# ------------------------------------------------------------------ intervals


@SETTINGS
@given(portfolio_case(max_pilots=2))
def test_interval_contains_the_improvement(p):
    summary, _ = judge(p["cases"], p["as_of"])
    for mid, r in summary.iterrows():
        explicit = r[C.BASELINE_SOURCE] == "explicit"
        enough = r[C.CURRENT_WEEKS] >= 2 and (explicit or r[C.BASELINE_WEEKS] >= 2)
        defined = enough and pd.notna(r[C.BASELINE]) and r[C.BASELINE] != 0
        assert pd.notna(r[C.CI_LOW_PCT]) is bool(defined), mid
        assert pd.notna(r[C.CI_HIGH_PCT]) is bool(defined), mid
        if defined:
            assert r[C.CI_LOW_PCT] <= r[C.IMPROVEMENT_PCT] <= r[C.CI_HIGH_PCT]
            assert r[C.CURRENT_CI_LOW] <= r[C.CURRENT] <= r[C.CURRENT_CI_HIGH]
            assert bool(r[C.SIGNIFICANT]) is bool(r[C.CI_LOW_PCT] > 0 or r[C.CI_HIGH_PCT] < 0)
        else:
            assert not r[C.SIGNIFICANT]


sample_st = st.lists(
    st.floats(min_value=0.1, max_value=1e4, allow_nan=False, allow_infinity=False),
    min_size=2,
    max_size=8,
)


@FAST_SETTINGS
@given(sample_st, sample_st)
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # scipy on nearly equal values
def test_vectorised_intervals_agree_with_scipy(a, b):
    x, y = np.array(a), np.array(b)
    assume(x.std() > 1e-6 * x.mean() and y.std() > 1e-6 * y.mean())
    low, high, _ = C.student_t_interval([y.mean()], [y.var(ddof=1)], [len(y)])
    ci = stats.ttest_1samp(y, popmean=0.0).confidence_interval(0.95)
    assert low[0] == pytest.approx(ci.low, rel=1e-9, abs=1e-9)
    assert high[0] == pytest.approx(ci.high, rel=1e-9, abs=1e-9)
    low, high, _ = C.welch_t_interval(
        [x.mean()], [x.var(ddof=1)], [len(x)], [y.mean()], [y.var(ddof=1)], [len(y)]
    )
    ci = stats.ttest_ind(x, y, equal_var=False).confidence_interval(0.95)
    assert low[0] == pytest.approx(ci.low, rel=1e-9, abs=1e-7)
    assert high[0] == pytest.approx(ci.high, rel=1e-9, abs=1e-7)
