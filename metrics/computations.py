"""PilotGate's numbers: pure functions, pandas in -> pandas out (DESIGN §4 and §5).

Nothing here touches the database or Streamlit. Column names are module constants so
pages, exports and tests agree on them. Written by hand (not a library) because these
definitions *are* the product: each follows DESIGN.md §4 to the letter, vectorised
over whole portfolios with groupby so a page never loops per metric. The statistics
(Student t and Welch t quantiles) come from SciPy (``scipy.special.stdtrit``, the
function ``scipy.stats.t.ppf`` evaluates; imported when first needed, as it costs a
third of a second of start-up); the decision rules,
guardrail statuses and economics formulas are written out in ``docs/decision-rules.md``.

Inputs
------
``metrics`` (one row per metric, pilot fields joined), columns::

    pilot_id int64, pilot object, metric_id int64, key object, label object,
    unit object, direction object ("lower_is_better"|"higher_is_better"),
    role object ("primary"|"guardrail"), baseline float64 (NaN = from baseline weeks),
    target float64, margin float64 (NaN = none), start_date datetime64[ns],
    decision_date datetime64[ns], trailing_window int64, min_weeks int64,
    value_per_unit float64 (optional column; NaN = no value model)

``measurements`` (one row per metric and ISO week), columns::

    metric_id int64, week datetime64[ns] (the Monday), value float64
"""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pandas as pd

# ---- input columns
PILOT_ID = "pilot_id"
PILOT = "pilot"
METRIC_ID = "metric_id"
KEY = "key"
LABEL = "label"
UNIT = "unit"
DIRECTION = "direction"
ROLE = "role"
BASELINE = "baseline"
TARGET = "target"
MARGIN = "margin"
START_DATE = "start_date"
DECISION_DATE = "decision_date"
WINDOW = "trailing_window"
MIN_WEEKS = "min_weeks"
WEEK = "week"
VALUE = "value"
VALUE_PER_UNIT = "value_per_unit"  # money per week per unit of improvement; NaN = no model
COST = "cost"  # the pilot's cost (pilots frame), NaN = not set

# ---- output columns of metric_summary
BASELINE_SOURCE = "baseline_source"  # "explicit" | "baseline_weeks" | None
BASELINE_WEEKS = "baseline_weeks"  # number of baseline-period weeks reported
BASELINE_VAR = "baseline_var"  # sample variance (ddof 1) of the baseline-period weeks
CURRENT = "current"
CURRENT_WEEKS = "current_weeks"  # weeks averaged into current: min(window, reported)
CURRENT_VAR = "current_var"  # sample variance (ddof 1) of those weeks
WEEKS_REPORTED = "weeks_reported"  # pilot-period weeks with a value
WEEKS_EXPECTED = "weeks_expected"  # complete pilot-period weeks up to as_of
COMPLETENESS_PCT = "completeness_pct"
LAST_WEEK = "last_week"
STALE = "stale"
POST_DECISION_WEEKS = "post_decision_weeks"  # weeks reported after the decision week
CHANGE_PCT = "change_pct"
IMPROVEMENT_PCT = "improvement_pct"
CI_LOW_PCT = "ci_low_pct"
CI_HIGH_PCT = "ci_high_pct"
CI_METHOD = "ci_method"  # "student_t" | "welch_t" | None (no interval)
CI_DF = "ci_df"  # degrees of freedom of the t quantile used
CURRENT_CI_LOW = "current_ci_low"  # the interval on the current value's scale (metric unit)
CURRENT_CI_HIGH = "current_ci_high"
SIGNIFICANT = "significant"  # the improvement interval excludes 0
PROGRESS_PCT = "progress_pct"
TARGET_MET = "target_met"
TREND_SLOPE = "trend_slope"  # metric units per week
TREND_INTERCEPT = "trend_intercept"  # value at x = 0 (the start week)
PROJECTED_TARGET_WEEK = "projected_target_week"  # datetime64 Monday or NaT
GUARDRAIL_BREACHED = "guardrail_breached"
STATUS = "status"
ESTIMATED_WEEKLY_VALUE = "estimated_weekly_value"  # money per week (metric or pilot)

# ---- per-pilot outputs
PAYBACK_WEEK = "payback_week"  # datetime64 Monday or NaT
ROI_PCT = "roi_pct"
HAS_VALUE_MODEL = "has_value_model"
PRIMARY_MET = "primary_met"
PRIMARY_TOTAL = "primary_total"
METRICS_MET = "metrics_met"
METRICS_TOTAL = "metrics_total"

# ---- statuses and recommendations
MET, ON_TRACK, AT_RISK, OFF_TRACK, INSUFFICIENT = (
    "met",
    "on_track",
    "at_risk",
    "off_track",
    "insufficient_data",
)
STATUSES = (MET, ON_TRACK, AT_RISK, OFF_TRACK, INSUFFICIENT)
#: Guardrail metric statuses (DESIGN §4): judged by the non-inferiority margin, never
#: by a target; ``not_judged`` below ``min_weeks`` pilot weeks (or without a baseline).
HELD, BREACHED, NOT_JUDGED = "held", "breached", "not_judged"
GUARDRAIL_STATUSES = (HELD, BREACHED, NOT_JUDGED)
GO, EXTEND, NO_GO = "go", "extend", "no_go"
RECOMMENDATIONS = (GO, EXTEND, NO_GO, INSUFFICIENT)
RECOMMENDATION = "recommendation"
REASONS = "reasons"

#: Confidence level of every interval (DESIGN §4: 95%).
CONFIDENCE_LEVEL = 0.95
#: Horizon of the return on investment, in weeks.
ROI_WEEKS = 52
#: Projections (and paybacks) further out than this (about 20 years) are reported as none.
MAX_PROJECTION_WEEKS = 1040

LOWER = "lower_is_better"
HIGHER = "higher_is_better"
PRIMARY = "primary"
GUARDRAIL = "guardrail"
STUDENT_T = "student_t"
WELCH_T = "welch_t"


#: Significant digits at which every threshold is compared (DESIGN §4): the precision
#: numbers are exported at (``metrics.service.SUMMARY_SIGNIFICANT``).
COMPARE_DIGITS = 12


def at_precision(x) -> np.ndarray:
    """``x`` rounded to :data:`COMPARE_DIGITS` significant digits, vectorised.

    A value that equals another in decimal arithmetic lands on the same float whatever
    its binary noise: ``mean([0.1, 0.2, 0.3, 0.4, 0.5]) = 0.30000000000000004`` and
    ``0.3`` both give ``0.3``. NaN and ±inf pass through; 0 stays 0. Written with numpy
    (no library rounds an array to significant digits): ``round(x / 10**e) * 10**e``
    with ``e = floor(log10|x|) - 11``, the scale applied as a multiplication by an
    exact power of ten where it fits, so the result is the float nearest the decimal.

    Args:
        x: scalar or array-like of float.

    Returns:
        float64 ndarray (0-d for a scalar).
    """
    x = np.asarray(x, dtype="float64")
    out = x.copy()
    finite = np.isfinite(x) & (x != 0)
    if not finite.any():
        return out
    v = x[finite]
    exp = np.floor(np.log10(np.abs(v))).astype("int64") - (COMPARE_DIGITS - 1)
    # 10**k is exact for 0 <= k <= 22: divide by it (or multiply by 10**-e) so the
    # rounded integer maps to the nearest float of the decimal number.
    up = exp < 0
    r = np.empty_like(v)
    with np.errstate(over="ignore", invalid="ignore"):
        r[up] = np.round(v[up] * 10.0 ** (-exp[up])) / 10.0 ** (-exp[up])
        r[~up] = np.round(v[~up] / 10.0 ** exp[~up]) * 10.0 ** exp[~up]
    # far outside any metric's range (|x| < 1e-290): keep the value as it is
    r = np.where(np.isfinite(r), r, v)
    out[finite] = r
    return out


def compare_at_precision(a, b) -> np.ndarray:
    """The one threshold comparison of DESIGN §4: ``sign(a - b)`` after rounding both
    to :data:`COMPARE_DIGITS` significant digits (:func:`at_precision`).

    Used for a target met (``current`` vs ``target``), a guardrail's non-inferiority
    limit (``current`` vs ``baseline ± margin``), an interval excluding zero
    (``improvement`` vs the half-width), and a trend's crossing week (before it is
    rounded up to a whole week), so a tie in decimal is a tie, never a flip on the
    17th digit.

    Returns:
        float64 ndarray of -1.0, 0.0, 1.0; NaN where either side is NaN.
    """
    pa, pb = at_precision(a), at_precision(b)
    with np.errstate(invalid="ignore"):
        return np.sign(pa - pb)


def _monday(ts: pd.Timestamp | date) -> pd.Timestamp:
    ts = pd.Timestamp(ts).normalize()
    return ts - pd.Timedelta(days=ts.weekday())


BASELINE_PERIOD, PILOT_PERIOD, POST_DECISION_PERIOD = (
    "baseline period",
    "pilot period",
    "post-decision period",
)


def week_period(week, start_date, decision_date) -> str:
    """Which period an ISO week belongs to (DESIGN §4): ``baseline period`` (before the
    start week), ``pilot period`` (start week up to and including the decision date's
    week) or ``post-decision period`` (after it: stored and drawn, never judged)."""
    monday = _monday(week)
    if monday < _monday(start_date):
        return BASELINE_PERIOD
    return PILOT_PERIOD if monday <= _monday(decision_date) else POST_DECISION_PERIOD


def last_complete_week(as_of: date) -> pd.Timestamp:
    """Monday of the last ISO week that has ended by ``as_of`` (a Sunday ends its week)."""
    ts = pd.Timestamp(as_of)
    monday = _monday(ts)
    return monday if ts.weekday() == 6 else monday - pd.Timedelta(days=7)


def baseline_and_current(
    metrics: pd.DataFrame, measurements: pd.DataFrame, *, as_of: date
) -> pd.DataFrame:
    """Baseline, current value and reporting counts per metric (DESIGN §4).

    Weeks whose Monday is after ``as_of`` are ignored. A week is in the baseline period
    when its Monday is before the Monday of the pilot's start week, in the pilot period
    from the start week up to and including the decision date's week, and
    *post-decision* after it: post-decision weeks count nowhere here (not in current,
    weeks_reported, completeness, staleness or the trend), only in
    ``post_decision_weeks``. Expected weeks are the complete weeks from the start week
    up to the earlier of ``as_of`` and the decision date (the pilot period ends
    there); staleness (no value in the last 2 of those weeks) is judged at the same
    point.

    Baseline = the explicit baseline if set, else the mean of the baseline-period
    weeks when there are at least 3 of them (else NaN). Current = mean of the last
    ``trailing_window`` *reported* pilot weeks; missing weeks are skipped, never zero.

    Returns:
        ``metrics`` plus columns baseline (float64, replaced by the effective baseline),
        baseline_source (object), baseline_weeks (int64), baseline_var (float64, sample
        variance of the baseline-period weeks, NaN below 2), current (float64),
        current_weeks (int64, weeks averaged into current), current_var (float64, their
        sample variance, NaN below 2), weeks_reported (int64), weeks_expected (int64),
        completeness_pct (float64), last_week (datetime64[ns]), stale (bool),
        post_decision_weeks (int64, weeks reported after the decision date's week),
        trend_slope, trend_intercept (float64). Index: as in ``metrics``.
    """
    out = metrics.copy()
    as_of_ts = pd.Timestamp(as_of)
    m = measurements[[METRIC_ID, WEEK, VALUE]].copy()
    m[METRIC_ID] = m[METRIC_ID].astype("int64")
    m[WEEK] = pd.to_datetime(m[WEEK]).astype("datetime64[ns]")
    m[VALUE] = m[VALUE].astype("float64")
    # Sorted first, so every sum and variance adds in the same order whatever the
    # input's row order (bit-for-bit the same numbers).
    m = m[m[WEEK] <= as_of_ts].dropna(subset=[VALUE]).sort_values([METRIC_ID, WEEK], kind="stable")
    start_week = _monday_series(out[START_DATE])
    start_by_metric = pd.Series(start_week.to_numpy(), index=out[METRIC_ID].to_numpy())
    m["_start"] = m[METRIC_ID].map(start_by_metric).astype("datetime64[ns]")
    m = m[m["_start"].notna()]
    decision_week = _monday_series(out[DECISION_DATE])
    decision_by_metric = pd.Series(decision_week.to_numpy(), index=out[METRIC_ID].to_numpy())
    m["_decision"] = m[METRIC_ID].map(decision_by_metric).astype("datetime64[ns]")
    is_pilot = m[WEEK] >= m["_start"]
    # The pilot period ends with the decision date's week (DESIGN §4): later weeks are
    # post-decision, kept for the chart but never part of the go/no-go evidence.
    post_decision = is_pilot & (m[WEEK] > m["_decision"])
    base = m[~is_pilot]
    pilot = m[is_pilot & ~post_decision].sort_values([METRIC_ID, WEEK], kind="stable")

    base_by = base.groupby(METRIC_ID)[VALUE]
    base_mean, base_n, base_var = base_by.mean(), base_by.size(), base_by.var(ddof=1)
    ids = out[METRIC_ID]
    explicit = out[BASELINE].astype("float64")
    n_base = ids.map(base_n).fillna(0).astype("int64")
    derived = ids.map(base_mean).where(n_base >= 3)
    out[BASELINE] = explicit.where(explicit.notna(), derived).astype("float64")
    out[BASELINE_SOURCE] = np.where(
        explicit.notna(), "explicit", np.where(derived.notna(), "baseline_weeks", None)
    )
    out[BASELINE_WEEKS] = n_base.to_numpy()
    out[BASELINE_VAR] = ids.map(base_var).astype("float64")

    window_by_metric = pd.Series(out[WINDOW].to_numpy(), index=ids.to_numpy())
    pilot["_w"] = pilot[METRIC_ID].map(window_by_metric)
    pilot["_rank_from_end"] = pilot.groupby(METRIC_ID).cumcount(ascending=False)
    trailing = pilot[pilot["_rank_from_end"] < pilot["_w"]]
    trail_by = trailing.groupby(METRIC_ID)[VALUE]
    out[CURRENT] = ids.map(trail_by.mean()).astype("float64")
    out[CURRENT_WEEKS] = ids.map(trail_by.size()).fillna(0).astype("int64")
    out[CURRENT_VAR] = ids.map(trail_by.var(ddof=1)).astype("float64")
    out[WEEKS_REPORTED] = ids.map(pilot.groupby(METRIC_ID).size()).fillna(0).astype("int64")
    post = m[post_decision].groupby(METRIC_ID).size()
    out[POST_DECISION_WEEKS] = ids.map(post).fillna(0).astype("int64")
    last_week = pilot.groupby(METRIC_ID)[WEEK].max().reindex(ids.to_numpy())
    out[LAST_WEEK] = last_week.to_numpy()

    # The pilot period ends at the decision date: weeks after it are not expected, and
    # staleness is judged at the earlier of as_of and the decision date.
    decision_complete = _monday_series(out[DECISION_DATE]) - pd.to_timedelta(
        np.where(pd.to_datetime(out[DECISION_DATE]).dt.day_of_week == 6, 0, 7), unit="D"
    )
    last_complete = decision_complete.clip(upper=last_complete_week(as_of))
    expected = ((last_complete - start_week).dt.days // 7 + 1).clip(lower=0)
    out[WEEKS_EXPECTED] = expected.astype("int64").to_numpy()
    # Completeness counts only complete weeks on both sides, so a value already
    # entered for the week in progress never pushes it above 100%.
    cap_by_metric = pd.Series(last_complete.to_numpy(), index=ids.to_numpy())
    done = pilot[pilot[WEEK] <= pilot[METRIC_ID].map(cap_by_metric)]
    reported_done = ids.map(done.groupby(METRIC_ID).size()).fillna(0).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        out[COMPLETENESS_PCT] = np.where(
            out[WEEKS_EXPECTED] > 0,
            100.0 * reported_done / out[WEEKS_EXPECTED].where(out[WEEKS_EXPECTED] > 0),
            np.nan,
        )
    started = start_week <= as_of_ts
    stale_cut = last_complete - pd.Timedelta(days=7)
    out[STALE] = (started & (out[LAST_WEEK].isna() | (out[LAST_WEEK] < stale_cut))).to_numpy()

    # Least-squares line through all pilot weeks, x = weeks since the start week.
    # Centred sums per metric (no Python loop): slope = S_xy / S_xx. Centring keeps a
    # constant series at slope exactly 0 instead of float noise like 1e-16, which would
    # otherwise "project" a target crossing millions of weeks away.
    pilot["_x"] = (pilot[WEEK] - pilot["_start"]).dt.days / 7.0
    by = pilot.groupby(METRIC_ID)
    dx = pilot["_x"] - by["_x"].transform("mean")
    dy = pilot[VALUE] - by[VALUE].transform("mean")
    sums = pd.DataFrame({METRIC_ID: pilot[METRIC_ID], "sxx": dx * dx, "sxy": dx * dy})
    g = sums.groupby(METRIC_ID)[["sxx", "sxy"]].sum()
    x_mean, y_mean = by["_x"].mean(), by[VALUE].mean()
    y_span = by[VALUE].max() - by[VALUE].min()
    slope = g["sxy"] / g["sxx"].where(g["sxx"] > 0)
    slope = slope.where(y_span > 0, 0.0).where(g["sxx"] > 0)
    intercept = y_mean - slope * x_mean
    out[TREND_SLOPE] = ids.map(slope).astype("float64")
    out[TREND_INTERCEPT] = ids.map(intercept).astype("float64")
    return out


def _monday_series(dates: pd.Series) -> pd.Series:
    d = pd.to_datetime(dates).dt.normalize()
    return d - pd.to_timedelta(d.dt.day_of_week, unit="D")


def change_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """change_pct, improvement_pct, progress_pct and target_met from b, c and t.

    DESIGN §4: ``change_pct = (c - b) / |b| * 100`` (b = 0: undefined, except c = 0
    gives 0); ``improvement_pct`` is change_pct signed so that positive is better;
    ``progress_pct = (c - b) / (t - b) * 100`` (undefined when t = b); target met when
    c <= t (lower is better) or c >= t (higher is better), compared at 12 significant
    digits (:func:`compare_at_precision`). Undefined -> NaN / <NA> (also without a
    target: a guardrail needs none).

    Args:
        frame: columns baseline, current, target (float64), direction (object).

    Returns:
        A copy with change_pct, improvement_pct, progress_pct (float64) and
        target_met (boolean, <NA> when current or target is missing).
    """
    out = frame.copy()
    b = out[BASELINE].astype("float64")
    c = out[CURRENT].astype("float64")
    t = out[TARGET].astype("float64")
    lower = out[DIRECTION] == LOWER
    with np.errstate(divide="ignore", invalid="ignore"):
        change = (c - b) / b.abs() * 100.0
    change = change.where(b != 0, np.where((b == 0) & (c == 0), 0.0, np.nan))
    change = change.where(b.notna() & c.notna())
    out[CHANGE_PCT] = change.astype("float64")
    out[IMPROVEMENT_PCT] = change.where(~lower, -change).astype("float64") + 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        progress = (c - b) / (t - b) * 100.0
    out[PROGRESS_PCT] = progress.where((t != b) & b.notna() & c.notna()).astype("float64")
    # Compared at COMPARE_DIGITS significant digits: a current value equal to the
    # target in decimal is met, whatever its binary noise (DESIGN §4).
    cmp = compare_at_precision(c, t)
    with np.errstate(invalid="ignore"):
        met = pd.Series(np.where(lower, cmp <= 0, cmp >= 0), index=out.index).astype("boolean")
    out[TARGET_MET] = met.where(c.notna() & t.notna(), pd.NA)
    return out


# ------------------------------------------------------------------ uncertainty


def _as_float(x) -> np.ndarray:
    return np.asarray(x, dtype="float64")


def _t_quantile(df: np.ndarray, level: float) -> np.ndarray:
    """Two-sided Student t quantile ``t_{(1+level)/2, df}``; NaN where df is not > 0."""
    df = _as_float(df)
    q = np.full(df.shape, np.nan)
    ok = np.isfinite(df) & (df > 0)
    # scipy.stats.t.ppf(p, df) is scipy.special.stdtrit(df, p) after argument checks;
    # the special function alone imports in a fraction of scipy.stats's time.
    from scipy.special import stdtrit

    q[ok] = stdtrit(df[ok], 0.5 + level / 2.0)
    return q


def student_t_interval(
    mean, var, n, *, level: float = CONFIDENCE_LEVEL
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Confidence interval of a mean by Student's t (one sample), vectorised.

    ``mean ± t_{(1+level)/2, n-1} * sqrt(var / n)`` with ``var`` the sample variance
    (ddof 1). The same interval as ``scipy.stats.ttest_1samp(x, popmean)
    .confidence_interval(level)``. Student's t because the weekly values' spread is
    estimated from the few weeks themselves (typically 4), where the normal quantile
    would give too narrow an interval.

    Args:
        mean, var, n: array-likes of equal length (float, float, int); n = number of
            values, var = their sample variance.
        level: confidence level (0.95 = 95%).

    Returns:
        (low, high, df): float64 arrays; NaN where n < 2 or an input is NaN. A zero
        variance gives the point interval [mean, mean].
    """
    mean, var, n = _as_float(mean), _as_float(var), _as_float(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        ok = (n >= 2) & np.isfinite(mean) & np.isfinite(var)
        se = np.sqrt(np.where(ok, var, np.nan) / n)
        df = np.where(ok, n - 1, np.nan)
        half = np.where(se == 0, 0.0, _t_quantile(df, level) * se)
    return mean - half, mean + half, df


def welch_t_interval(
    mean1, var1, n1, mean2, var2, n2, *, level: float = CONFIDENCE_LEVEL
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Confidence interval of ``mean1 - mean2`` by Welch's t, vectorised.

    ``(mean1 - mean2) ± t_{(1+level)/2, df} * se`` with ``se = sqrt(v1/n1 + v2/n2)`` and
    the Welch–Satterthwaite degrees of freedom
    ``df = se^4 / ((v1/n1)^2 / (n1-1) + (v2/n2)^2 / (n2-1))``. The same interval as
    ``scipy.stats.ttest_ind(a, b, equal_var=False).confidence_interval(level)``. Welch
    rather than the pooled two-sample t because the baseline period (months of weeks
    before the pilot) and the trailing window (the last few pilot weeks) need not share
    a variance: a pilot usually changes the spread as well as the level.

    Args:
        mean1, var1, n1: sample 1 (the baseline-period weeks): mean, sample variance
            (ddof 1), count.
        mean2, var2, n2: sample 2 (the trailing-window weeks).
        level: confidence level.

    Returns:
        (low, high, df): float64 arrays; NaN where n1 < 2 or n2 < 2 or an input is
        NaN. Both variances 0: the point interval [d, d] (df NaN).
    """
    m1, v1, n1 = _as_float(mean1), _as_float(var1), _as_float(n1)
    m2, v2, n2 = _as_float(mean2), _as_float(var2), _as_float(n2)
    with np.errstate(divide="ignore", invalid="ignore"):
        ok = (n1 >= 2) & (n2 >= 2) & np.isfinite(v1) & np.isfinite(v2)
        a, b = np.where(ok, v1 / n1, np.nan), np.where(ok, v2 / n2, np.nan)
        se2 = a + b
        df = np.where(se2 > 0, se2 * se2 / (a * a / (n1 - 1) + b * b / (n2 - 1)), np.nan)
        half = np.where(se2 == 0, 0.0, _t_quantile(df, level) * np.sqrt(se2))
    d = m1 - m2
    return d - half, d + half, df


def confidence_columns(frame: pd.DataFrame, *, level: float = CONFIDENCE_LEVEL) -> pd.DataFrame:
    """The 95% interval of each metric's improvement (DESIGN §4 "Uncertainty").

    Which test:

    * explicit baseline (a number, not data): the interval of the current value, i.e.
      the mean of the trailing-window weeks, by Student's t (:func:`student_t_interval`);
      the baseline is a fixed number, so only the current value is uncertain.
    * baseline from baseline-period weeks: the interval of the difference between the
      baseline-week mean and the trailing-window mean by Welch's t
      (:func:`welch_t_interval`); both means are estimates from data, with possibly
      different variances.

    Either is reported as an interval of improvement_pct: with the half-width ``h``
    (metric units), ``ci_low_pct = improvement_pct - h / |b| * 100`` and
    ``ci_high_pct = improvement_pct + h / |b| * 100`` (positive = better, so
    low <= high for both directions). The same interval on the current value's own
    scale is ``current ± h`` (``current_ci_low``/``current_ci_high``: the chart's band).
    Undefined (NaN) with fewer than 2 values on a side; the percentage interval also
    when b = 0 or b is undefined. *Significant* = the percentage interval excludes 0.

    Args:
        frame: columns baseline, baseline_source, baseline_weeks, baseline_var, current,
            current_weeks, current_var, improvement_pct.
        level: confidence level.

    Returns:
        A copy with ci_low_pct, ci_high_pct, current_ci_low, current_ci_high, ci_df
        (float64), ci_method (object: "student_t" | "welch_t" | None) and significant
        (bool; False where the interval is undefined).
    """
    out = frame.copy()
    b = out[BASELINE].astype("float64").to_numpy()
    c = out[CURRENT].astype("float64").to_numpy()
    source = out[BASELINE_SOURCE].to_numpy()
    welch = source == "baseline_weeks"
    explicit = source == "explicit"
    s_low, s_high, s_df = student_t_interval(c, out[CURRENT_VAR], out[CURRENT_WEEKS], level=level)
    w_low, w_high, w_df = welch_t_interval(
        b,
        out[BASELINE_VAR],
        out[BASELINE_WEEKS],
        c,
        out[CURRENT_VAR],
        out[CURRENT_WEEKS],
        level=level,
    )
    half = np.where(
        welch, (w_high - w_low) / 2.0, np.where(explicit, (s_high - s_low) / 2.0, np.nan)
    )
    half = np.where(np.isfinite(c), half, np.nan)
    defined = np.isfinite(half)
    out[CI_METHOD] = np.where(defined, np.where(welch, WELCH_T, STUDENT_T), None)
    out[CI_DF] = np.where(defined, np.where(welch, w_df, s_df), np.nan)
    out[CURRENT_CI_LOW] = c - half
    out[CURRENT_CI_HIGH] = c + half
    with np.errstate(divide="ignore", invalid="ignore"):
        half_pct = np.where(np.isfinite(b) & (b != 0), half / np.abs(b) * 100.0, np.nan)
    imp = out[IMPROVEMENT_PCT].astype("float64").to_numpy()
    low, high = imp - half_pct, imp + half_pct
    out[CI_LOW_PCT] = low
    out[CI_HIGH_PCT] = high
    # Excludes zero, compared at 12 significant digits on the operands: low > 0 is
    # improvement > half-width, high < 0 is -improvement > half-width, so a bound that
    # is 0 in decimal (e.g. 10% +- 10%) never reads as 1e-15 > 0.
    defined_pct = np.isfinite(low) & np.isfinite(high)
    with np.errstate(invalid="ignore"):
        above = compare_at_precision(imp, half_pct) > 0
        below = compare_at_precision(-imp, half_pct) > 0
    out[SIGNIFICANT] = defined_pct & (above | below)
    return out


# ------------------------------------------------------------------ trend, status


def projection(frame: pd.DataFrame) -> pd.Series:
    """Projected target week per metric from the trend line (DESIGN §4).

    The line ``value = intercept + slope * x`` (x in weeks since the start week) reaches
    the target at ``x* = (target - intercept) / slope``; the projected week is the first
    whole week at or after x*: ``start week + ceil(x*) weeks``. None (NaT) when the line
    is flat, undefined, moves away from the target (slope not in the better
    direction), or would reach it more than ``MAX_PROJECTION_WEEKS`` after the start.

    Args:
        frame: columns start_date, target, direction, trend_slope, trend_intercept.

    Returns:
        datetime64[ns] Series of Mondays (NaT where none), same index as ``frame``.
    """
    slope = frame[TREND_SLOPE].astype("float64")
    intercept = frame[TREND_INTERCEPT].astype("float64")
    target = frame[TARGET].astype("float64")
    lower = frame[DIRECTION] == LOWER
    toward = np.where(lower, slope < 0, slope > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_star = (target - intercept) / slope
    # A crossing more than MAX_PROJECTION_WEEKS away is no projection at all.
    x_star = x_star.where(
        toward & slope.notna() & np.isfinite(x_star) & (x_star <= MAX_PROJECTION_WEEKS)
    )
    # The crossing point is rounded at 12 significant digits before rounding up to a
    # whole week, so ceil(2.0000000000000004) is week 2, not 3 (DESIGN §4).
    weeks = pd.Series(np.ceil(at_precision(x_star)), index=x_star.index).clip(lower=0)
    start_week = _monday_series(frame[START_DATE])
    return start_week + pd.to_timedelta(weeks * 7, unit="D")


def guardrail_limit(frame: pd.DataFrame) -> pd.Series:
    """A guardrail's non-inferiority limit in its unit: ``baseline + margin`` (lower is
    better) or ``baseline - margin`` (higher is better); missing margin = 0. NaN without
    a baseline. float64 Series, same index."""
    b = frame[BASELINE].astype("float64")
    margin = frame[MARGIN].astype("float64").fillna(0.0)
    return pd.Series(
        np.where(frame[DIRECTION] == LOWER, b + margin, b - margin), index=frame.index
    ).astype("float64")


def guardrail_breached(frame: pd.DataFrame) -> pd.Series:
    """True where a guardrail metric is worse than its baseline by more than its
    non-inferiority margin (DESIGN §4).

    Breached when the current value lies beyond the non-inferiority limit
    (:func:`guardrail_limit`): ``c > b + margin`` (lower is better) or ``c < b - margin``
    (higher is better), compared at 12 significant digits
    (:func:`compare_at_precision`), so a value exactly at the limit in decimal is held;
    missing margin = 0 (any worsening breaches). Judged only with at least
    ``min_weeks`` pilot weeks (fewer: the guardrail is ``not_judged``, not breached).
    Primary metrics and metrics without baseline or current are never breached. No
    target is needed or used.

    Args:
        frame: columns role, direction, baseline, current, margin, weeks_reported,
            min_weeks.

    Returns:
        bool Series, same index as ``frame``.
    """
    b, c = frame[BASELINE], frame[CURRENT]
    cmp = compare_at_precision(c, guardrail_limit(frame))
    with np.errstate(invalid="ignore"):
        beyond = np.where(frame[DIRECTION] == LOWER, cmp > 0, cmp < 0)
    enough = frame[WEEKS_REPORTED] >= frame[MIN_WEEKS]
    breached = (frame[ROLE] == GUARDRAIL) & enough & b.notna() & c.notna() & beyond
    return breached.astype(bool)


def metric_status(frame: pd.DataFrame, *, as_of: date | None = None) -> pd.Series:
    """Metric status (DESIGN §4), first match wins.

    Guardrail metrics (judged by their non-inferiority margin, never by a target):

    * ``not_judged``: fewer than ``min_weeks`` pilot weeks, or no baseline;
    * ``breached``: worse than the non-inferiority limit (:func:`guardrail_breached`);
    * ``held``: otherwise.

    Primary metrics:

    1. ``insufficient_data``: fewer than ``min_weeks`` pilot weeks, or no baseline.
    2. ``met``: target met (at 12 significant digits, :func:`change_columns`).
    3. ``off_track``: no improvement over baseline (current not better than baseline,
       compared at 12 significant digits).
    4. ``at_risk`` when the data is stale (no value in the last 2 expected weeks): a
       forecast from old data is no forecast.
    5. ``on_track``: the trend line reaches the target on or before the decision date
       (projected target week's Monday <= decision date). A crossing that already lies
       behind the last report counts: the trend is past the target while the trailing
       mean is still short of it.
    6. ``at_risk``: improving but projected to miss the decision date (or no
       projection: the trend moves away from the target).

    Args:
        frame: columns role, weeks_reported, min_weeks, baseline, current, direction,
            target_met, projected_target_week, decision_date, stale,
            guardrail_breached.
        as_of: unused (kept for callers); staleness is already judged as of that day.

    Returns:
        object Series of status strings, same index.
    """
    insufficient = (frame[WEEKS_REPORTED] < frame[MIN_WEEKS]) | frame[BASELINE].isna()
    guard = (frame[ROLE] == GUARDRAIL).to_numpy()
    breached = frame[GUARDRAIL_BREACHED].astype(bool).to_numpy()
    met = frame[TARGET_MET].fillna(False).astype(bool)
    stale = frame[STALE].astype(bool) if STALE in frame else False
    # Improvement judged on the raw difference, so a baseline of 0 (change_pct
    # undefined) still counts: better = c < b (lower is better) or c > b.
    b, c = frame[BASELINE], frame[CURRENT]
    cmp = compare_at_precision(c, b)
    with np.errstate(invalid="ignore"):
        improving = (
            pd.Series(np.where(frame[DIRECTION] == LOWER, cmp < 0, cmp > 0), index=frame.index)
            & c.notna()
        )
    proj = pd.to_datetime(frame[PROJECTED_TARGET_WEEK])
    in_time = proj.notna() & (proj <= pd.to_datetime(frame[DECISION_DATE]))
    status = np.select(
        [
            guard & insufficient,
            guard & breached,
            guard,
            insufficient,
            met,
            ~improving,
            stale,
            in_time,
        ],
        [NOT_JUDGED, BREACHED, HELD, INSUFFICIENT, MET, OFF_TRACK, AT_RISK, ON_TRACK],
        default=AT_RISK,
    )
    return pd.Series(status, index=frame.index, dtype="object")


# ------------------------------------------------------------------ economics


def metric_weekly_value(frame: pd.DataFrame) -> pd.Series:
    """Estimated weekly value of each metric's improvement (money per week).

    ``(b - c) * value_per_unit`` for lower-is-better metrics, ``(c - b) *
    value_per_unit`` for higher-is-better ones: the improvement in the metric's own
    unit times the value model (money per week per unit of improvement); negative
    when the metric got worse. NaN when the metric has no value model or b or c is
    undefined (never 0).

    Args:
        frame: columns baseline, current, direction, and optionally value_per_unit
            (absent = no metric has a value model).

    Returns:
        float64 Series, same index.
    """
    if VALUE_PER_UNIT not in frame:
        return pd.Series(np.nan, index=frame.index, dtype="float64")
    b = frame[BASELINE].astype("float64")
    c = frame[CURRENT].astype("float64")
    gain = pd.Series(np.where(frame[DIRECTION] == LOWER, b - c, c - b), index=frame.index)
    return (gain * frame[VALUE_PER_UNIT].astype("float64") + 0.0).astype("float64")


def pilot_economics(summary: pd.DataFrame, pilots: pd.DataFrame) -> pd.DataFrame:
    """Weekly value, payback week and 52-week ROI per pilot (docs/decision-rules.md).

    * weekly value ``V`` = the sum of :func:`metric_weekly_value` over the pilot's
      metrics that have a value model; undefined (NaN) when none has one, or when any
      of them has no value yet (a partial sum would understate or overstate).
    * payback week = ``start week + ceil(cost / V)`` weeks: the first week that begins
      with the cumulative value since the start covering the cost. None (NaT) when V
      <= 0 or undefined, the cost is not set or 0, or it lies more than
      ``MAX_PROJECTION_WEEKS`` after the start.
    * ``roi_pct = (52 * V - cost) / cost * 100``; NaN when V is undefined or the cost
      is not set or 0.

    Args:
        summary: :func:`metric_summary` output (pilot_id, estimated_weekly_value,
            value_per_unit).
        pilots: one row per pilot: pilot_id (int64), start_date (datetime64), cost
            (float64, NaN = not set).

    Returns:
        One row per pilot of ``pilots``, same order: pilot_id (int64), has_value_model
        (bool), estimated_weekly_value (float64), payback_week (datetime64[ns]),
        roi_pct (float64).
    """
    ids = pilots[PILOT_ID].astype("int64")
    if summary.empty or VALUE_PER_UNIT not in summary:
        modelled = pd.DataFrame({PILOT_ID: [], "n_model": [], "n_valued": [], "total": []})
    else:
        has_model = summary[VALUE_PER_UNIT].notna()
        flags = pd.DataFrame(
            {
                PILOT_ID: summary[PILOT_ID].astype("int64"),
                "n_model": has_model.astype("int64"),
                "n_valued": (has_model & summary[ESTIMATED_WEEKLY_VALUE].notna()).astype("int64"),
                "total": summary[ESTIMATED_WEEKLY_VALUE].where(has_model, 0.0).fillna(0.0),
            }
        )
        modelled = flags.groupby(PILOT_ID)[["n_model", "n_valued", "total"]].sum().reset_index()
    per = modelled.set_index(PILOT_ID).reindex(ids.to_numpy())
    n_model = per["n_model"].fillna(0).to_numpy()
    weekly = np.where(
        (n_model > 0) & (per["n_valued"].fillna(0).to_numpy() == n_model),
        per["total"].to_numpy(dtype="float64"),
        np.nan,
    )
    cost = (
        pilots[COST].astype("float64").to_numpy() if COST in pilots else np.full(len(ids), np.nan)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        has_cost = np.isfinite(cost) & (cost > 0)
        roi = np.where(
            has_cost & np.isfinite(weekly), (ROI_WEEKS * weekly - cost) / cost * 100.0, np.nan
        )
        weeks = np.where(has_cost & (weekly > 0), np.ceil(cost / weekly), np.nan)
    weeks = np.where(weeks <= MAX_PROJECTION_WEEKS, weeks, np.nan)
    start_week = _monday_series(pilots[START_DATE]).to_numpy()
    payback = pd.Series(start_week) + pd.to_timedelta(weeks * 7, unit="D")
    return pd.DataFrame(
        {
            PILOT_ID: ids.to_numpy(),
            HAS_VALUE_MODEL: n_model > 0,
            ESTIMATED_WEEKLY_VALUE: (weekly + 0.0).astype("float64"),
            PAYBACK_WEEK: payback.astype("datetime64[ns]").to_numpy(),
            ROI_PCT: roi.astype("float64") + 0.0,
        }
    )


# ------------------------------------------------------------------ summary


def metric_summary(
    metrics: pd.DataFrame, measurements: pd.DataFrame, *, as_of: date
) -> pd.DataFrame:
    """Every number of DESIGN §4 per metric, as of ``as_of``.

    Args:
        metrics: the module's ``metrics`` input frame (see module docstring).
        measurements: the module's ``measurements`` input frame; row order is irrelevant.
        as_of: weeks whose Monday is after this date are ignored; staleness and the
            expected-week count are judged at this date.

    Returns:
        One row per metric, sorted by pilot then metric key: the input columns
        (value_per_unit added as NaN when absent) plus those of
        :func:`baseline_and_current`, :func:`change_columns` and
        :func:`confidence_columns`, projected_target_week (datetime64[ns]),
        guardrail_breached (bool), status (object) and estimated_weekly_value
        (float64, :func:`metric_weekly_value`).
    """
    if metrics.empty:
        return _empty_summary(metrics)
    metrics = metrics.copy()
    if VALUE_PER_UNIT not in metrics:
        metrics[VALUE_PER_UNIT] = np.nan
    metrics[VALUE_PER_UNIT] = metrics[VALUE_PER_UNIT].astype("float64")
    out = baseline_and_current(metrics, measurements, as_of=as_of)
    out = change_columns(out)
    out = confidence_columns(out)
    out[PROJECTED_TARGET_WEEK] = projection(out)
    out[GUARDRAIL_BREACHED] = guardrail_breached(out)
    out[STATUS] = metric_status(out, as_of=as_of)
    # Too few pilot weeks to judge: too few to project either (a line through two
    # weeks promised a target week the data cannot support).
    # A guardrail's target (if any) is shown, never judged: no projection either.
    no_projection = (out[STATUS] == INSUFFICIENT) | (out[ROLE] == GUARDRAIL)
    out.loc[no_projection, PROJECTED_TARGET_WEEK] = pd.NaT
    out[ESTIMATED_WEEKLY_VALUE] = metric_weekly_value(out)
    return out.sort_values([PILOT, KEY], kind="stable").reset_index(drop=True)


SUMMARY_EXTRA_COLUMNS = [
    BASELINE_SOURCE,
    BASELINE_WEEKS,
    BASELINE_VAR,
    CURRENT,
    CURRENT_WEEKS,
    CURRENT_VAR,
    WEEKS_REPORTED,
    WEEKS_EXPECTED,
    COMPLETENESS_PCT,
    LAST_WEEK,
    STALE,
    POST_DECISION_WEEKS,
    TREND_SLOPE,
    TREND_INTERCEPT,
    CHANGE_PCT,
    IMPROVEMENT_PCT,
    PROGRESS_PCT,
    TARGET_MET,
    CI_LOW_PCT,
    CI_HIGH_PCT,
    CI_METHOD,
    CI_DF,
    CURRENT_CI_LOW,
    CURRENT_CI_HIGH,
    SIGNIFICANT,
    PROJECTED_TARGET_WEEK,
    GUARDRAIL_BREACHED,
    STATUS,
    ESTIMATED_WEEKLY_VALUE,
]


def _empty_summary(metrics: pd.DataFrame) -> pd.DataFrame:
    out = metrics.copy()
    if VALUE_PER_UNIT not in out:
        out[VALUE_PER_UNIT] = pd.Series(dtype="float64")
    for col in SUMMARY_EXTRA_COLUMNS:
        out[col] = pd.Series(dtype="object")
    return out


# ------------------------------------------------------------------ words


def fmt_number(x: float | None) -> str:
    """A number for reasons and labels: at most 1 decimal from 10 up, 3 significant
    digits below; no trailing zeros; "n/a" when undefined."""
    if x is None or (isinstance(x, float) and math.isnan(x)) or pd.isna(x):
        return "n/a"
    x = float(x)
    text = f"{x:.1f}" if abs(x) >= 10 else f"{x:.3g}"
    if "e" in text:  # very small or large: 3 significant digits, never exponent form
        text = np.format_float_positional(x, precision=3, unique=False, fractional=False)
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _with_unit(x: float, unit: str) -> str:
    n = fmt_number(x)
    if not unit or n == "n/a":
        return n
    return f"{n}{unit}" if unit == "%" else f"{n} {unit}"


def margin_unit(unit: str | None) -> str:
    """The unit a non-inferiority margin is written in: percentage points (``pp``) for
    a metric in ``%`` (a margin of 0.5 on a rate of 2% is 0.5 points, not 0.5% of 2%),
    else the metric's own unit."""
    return "pp" if unit == "%" else (unit or "")


def ci_text(low: float, high: float, *, worse: bool = False) -> str:
    """An improvement interval in words, in the same sense as the amount it qualifies.

    ``worse=False`` (the amount is an improvement, or none): ``95% CI 23.4% to 83.2%
    better``; ``worse=True`` (the amount is a worsening): the bounds turned into
    worsening, ``95% CI 100.1% to 148.2% worse`` for improvement bounds -148.2..-100.1.
    A bound on the other side of zero is named with its own word (``95% CI 5.25% worse
    to 0.5% better``), so no number ever carries a minus sign against its word. A point
    interval at 0 reads ``95% CI 0% to 0%``; "" when undefined.

    Args:
        low, high: the improvement interval (``ci_low_pct``, ``ci_high_pct``; positive =
            better).
        worse: True when the amount next to it reads "worse".
    """
    if pd.isna(low) or pd.isna(high):
        return ""
    level = f"{fmt_number(CONFIDENCE_LEVEL * 100)}% CI"
    a, b = (-float(high), -float(low)) if worse else (float(low), float(high))
    this, other = ("worse", "better") if worse else ("better", "worse")
    if a == 0 and b == 0:
        return f"{level} 0% to 0%"
    if a >= 0:
        return f"{level} {fmt_number(a)}% to {fmt_number(b)}% {this}"
    if b <= 0:  # both on the other side (cannot happen around a point estimate)
        return f"{level} {fmt_number(-b)}% to {fmt_number(-a)}% {other}"
    return f"{level} {fmt_number(-a)}% {other} to {fmt_number(b)}% {this}"


def _relation(imp: float, baseline: str | None) -> str:
    """``12.5% worse than baseline 4%`` / ``same as baseline`` / ``baseline 0 pp``
    (improvement undefined); without ``baseline`` text the comparison ends early."""
    if pd.isna(imp):
        return f"baseline {baseline}" if baseline else ""
    than = f" than baseline {baseline}" if baseline else ""
    if imp == 0:
        return f"same as baseline {baseline}" if baseline else "same as baseline"
    return f"{fmt_number(abs(imp))}% {'better' if imp > 0 else 'worse'}{than}"


def metric_reason(row: pd.Series | dict) -> str:
    """One plain-words line for a metric, with its numbers.

    Primary metric: ``Resolution time 56.8 h vs target 80 h: met, 53.3% better than
    baseline 121.6 h (95% CI 23.4% to 83.2% better)``; a significantly worse one ends
    ``(95% CI 5.94% to 14.1% worse: significantly worse)``. Guardrail metric:
    ``Complaint rate 2.3% vs baseline 2% (non-inferiority margin 0.5 pp): held, 15%
    worse (95% CI 0.1% better to 30% worse)``; with too few weeks ``Complaint rate:
    guardrail not judged, 3 pilot weeks reported, 4 needed``. The interval reads in
    the same sense as the amount (:func:`ci_text`) and is left out where undefined.

    Args:
        row: one row of :func:`metric_summary` (Series or dict).
    """
    label, unit = row[LABEL], row[UNIT] or ""
    status = row[STATUS]
    if pd.isna(row[BASELINE]):
        return f"{label}: no baseline (set one, or report at least 3 baseline weeks)"
    if status in (INSUFFICIENT, NOT_JUDGED):
        n, need = int(row[WEEKS_REPORTED]), int(row[MIN_WEEKS])
        judged = ": guardrail not judged," if status == NOT_JUDGED else ":"
        return f"{label}{judged} {n} pilot week{'s' if n != 1 else ''} reported, {need} needed"
    imp = row[IMPROVEMENT_PCT]
    worse = pd.notna(imp) and imp < 0
    ci = ci_text(row.get(CI_LOW_PCT, np.nan), row.get(CI_HIGH_PCT, np.nan), worse=worse)
    if ci and row[ROLE] == PRIMARY and worse and bool(row.get(SIGNIFICANT, False)):
        ci += ": significantly worse"
    ci = f" ({ci})" if ci else ""
    current, baseline = _with_unit(row[CURRENT], unit), _with_unit(row[BASELINE], unit)
    if row[ROLE] == GUARDRAIL:
        margin = 0.0 if pd.isna(row[MARGIN]) else row[MARGIN]
        head = (
            f"{label} {current} vs baseline {baseline} "
            f"(non-inferiority margin {_with_unit(margin, margin_unit(unit))}): {status}"
        )
        relation = _relation(imp, None)
        return f"{head}, {relation}{ci}" if relation else head
    words = status.replace("_", " ")
    proj = row[PROJECTED_TARGET_WEEK]
    last = row.get(LAST_WEEK)
    if status in (ON_TRACK, AT_RISK) and pd.notna(proj):
        if pd.notna(last) and proj <= last:
            words += f", trend already past the target (since {iso_label(proj)})"
        else:
            words += f", projected to reach target in {iso_label(proj)}"
    head = f"{label} {current} vs target {_with_unit(row[TARGET], unit)}"
    return f"{head}: {words}, {_relation(imp, baseline)}{ci}"


# ------------------------------------------------------------------ recommendation


def recommend(summary: pd.DataFrame, *, as_of: date) -> pd.DataFrame:
    """Recommendation per pilot by the ordered rules of DESIGN §5 (first match wins).

    1. ``insufficient_data``: no primary metric, or a primary metric has fewer than
       ``min_weeks`` pilot weeks (or no baseline).
    2. ``no_go``: a guardrail is breached (worse than baseline by more than its
       non-inferiority margin); or a primary metric is significantly worse than
       baseline (its 95% improvement interval lies below zero, judged at 12
       significant digits: ``significant`` and worse; no interval = not significant);
       or ``as_of`` is past the decision date and no primary metric met its target.
    3. ``go``: every primary metric met its target and every guardrail has been judged
       and held (a guardrail ``not_judged``, fewer than ``min_weeks`` pilot weeks, keeps
       the pilot at ``extend`` with that reason).
    4. ``extend``: otherwise.

    Reasons: one line per metric the first matching rule looked at
    (:func:`metric_reason`): the short primary metrics for rule 1, the breached
    guardrails and significantly worse primary metrics (or, for the deadline, every
    primary metric) for rule 2, every metric for rules 3 and 4.

    Vectorised over the whole portfolio (per-pilot counts with one groupby), so a
    portfolio of hundreds of pilots is judged without a Python loop per pilot.

    Args:
        summary: output of :func:`metric_summary`.
        as_of: the day the rules are judged at (decision-date check).

    Returns:
        One row per pilot, sorted by pilot name: pilot_id (int64), pilot (object),
        recommendation (object), reasons (object: the deciding metrics' lines joined by
        "; "), primary_met, primary_total (int64: primary metrics that met their target
        / all primary metrics), metrics_met, metrics_total (int64: every metric with
        status met, guardrails counting as met when held / all metrics), stale (bool:
        every metric stale).
    """
    cols = [
        PILOT_ID,
        PILOT,
        RECOMMENDATION,
        REASONS,
        PRIMARY_MET,
        PRIMARY_TOTAL,
        METRICS_MET,
        METRICS_TOTAL,
        STALE,
    ]
    if summary.empty:
        return pd.DataFrame(columns=cols)
    s = summary.sort_values([PILOT, KEY], kind="stable").reset_index(drop=True)
    primary = s[ROLE] == PRIMARY
    flags = pd.DataFrame(
        {
            PILOT_ID: s[PILOT_ID],
            "primary": primary,
            "insufficient": primary & (s[STATUS] == INSUFFICIENT),
            "breached": (s[ROLE] == GUARDRAIL) & (s[STATUS] == BREACHED),
            "not_judged": (s[ROLE] == GUARDRAIL) & (s[STATUS] == NOT_JUDGED),
            # significant (interval excludes 0, at 12 significant digits) and worse
            "sig_worse": primary
            & s[SIGNIFICANT].astype(bool)
            & (s[IMPROVEMENT_PCT].astype("float64") < 0),
            "primary_met": primary & (s[STATUS] == MET),
            "met": s[STATUS].isin([MET, HELD]),
            "stale": s[STALE].astype(bool),
            "one": 1,
        }
    )
    g = flags.groupby(PILOT_ID, sort=False)
    counted = ["primary", "insufficient", "breached", "not_judged", "sig_worse", "primary_met"]
    per = g[[*counted, "met", "one"]].sum()
    per["all_stale"] = g["stale"].all()
    first = s.drop_duplicates(PILOT_ID).set_index(PILOT_ID)
    per[PILOT] = first[PILOT]
    per[DECISION_DATE] = pd.to_datetime(first[DECISION_DATE])
    past = per[DECISION_DATE] < pd.Timestamp(as_of)
    no_primary = per["primary"] == 0
    rule_breach = (per["breached"] > 0) | (per["sig_worse"] > 0)
    rule_deadline = past & (per["primary_met"] == 0)
    per[RECOMMENDATION] = np.select(
        [
            no_primary | (per["insufficient"] > 0),
            rule_breach,
            rule_deadline,
            (per["primary_met"] == per["primary"]) & (per["not_judged"] == 0),
        ],
        [INSUFFICIENT, NO_GO, NO_GO, GO],
        default=EXTEND,
    )
    # Which metrics decided it: the ones the first matching rule looked at.
    rec = s[PILOT_ID].map(per[RECOMMENDATION])
    breach_rule = s[PILOT_ID].map(rule_breach)
    deciding = np.select(
        [rec == INSUFFICIENT, (rec == NO_GO) & breach_rule, rec == NO_GO],
        [flags["insufficient"], flags["breached"] | flags["sig_worse"], primary],
        default=True,
    ).astype(bool)
    lines = pd.Series(
        [metric_reason(r) for r in s[deciding].to_dict("records")],
        index=s.index[deciding],
        dtype="object",
    )
    joined = lines.groupby(s.loc[deciding, PILOT_ID], sort=False).agg("; ".join)
    reasons = per.index.to_series().map(joined).astype("object")
    reasons = reasons.where(reasons.notna(), "")
    extra = pd.Series("", index=per.index, dtype="object")
    extra[no_primary] = "no primary metric defined"
    deadline_only = (per[RECOMMENDATION] == NO_GO) & ~rule_breach & rule_deadline
    extra[deadline_only] = [
        f"decision date {d.date()} passed" for d in per.loc[deadline_only, DECISION_DATE]
    ]
    per[REASONS] = ["; ".join(x for x in (e, r) if x) for e, r in zip(extra, reasons, strict=True)]
    out = pd.DataFrame(
        {
            PILOT_ID: per.index.astype("int64"),
            PILOT: per[PILOT].to_numpy(),
            RECOMMENDATION: per[RECOMMENDATION].to_numpy(),
            REASONS: per[REASONS].to_numpy(),
            PRIMARY_MET: per["primary_met"].astype("int64").to_numpy(),
            PRIMARY_TOTAL: per["primary"].astype("int64").to_numpy(),
            METRICS_MET: per["met"].astype("int64").to_numpy(),
            METRICS_TOTAL: per["one"].astype("int64").to_numpy(),
            STALE: per["all_stale"].astype(bool).to_numpy(),
        }
    )
    return out.sort_values([PILOT, PILOT_ID], kind="stable").reset_index(drop=True)[cols]


def iso_label(ts) -> str | None:
    """ISO week label of a timestamp/date, None when missing."""
    if ts is None or pd.isna(ts):
        return None
    iso = pd.Timestamp(ts).isocalendar()
    return f"{iso.year}-W{iso.week:02d}"


def week_offset(start: date, weeks: int) -> date:
    """The Monday ``weeks`` whole weeks after the Monday of ``start``'s week."""
    return _monday(start).date() + timedelta(weeks=weeks)
