"""PilotGate's numbers: pure functions, pandas in -> pandas out (DESIGN §4 and §5).

Nothing here touches the database or Streamlit. Column names are module constants so
pages, exports and tests agree on them. Written by hand (not a library) because these
definitions *are* the product: each follows DESIGN.md §4 to the letter, vectorised
over whole portfolios with groupby so a page never loops per metric.

Inputs
------
``metrics`` (one row per metric, pilot fields joined), columns::

    pilot_id int64, pilot object, metric_id int64, key object, label object,
    unit object, direction object ("lower_is_better"|"higher_is_better"),
    role object ("primary"|"guardrail"), baseline float64 (NaN = from baseline weeks),
    target float64, margin float64 (NaN = none), start_date datetime64[ns],
    decision_date datetime64[ns], trailing_window int64, min_weeks int64

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

# ---- output columns of metric_summary
BASELINE_SOURCE = "baseline_source"  # "explicit" | "baseline_weeks" | None
BASELINE_WEEKS = "baseline_weeks"  # number of baseline-period weeks reported
CURRENT = "current"
WEEKS_REPORTED = "weeks_reported"  # pilot-period weeks with a value
WEEKS_EXPECTED = "weeks_expected"  # complete pilot-period weeks up to as_of
COMPLETENESS_PCT = "completeness_pct"
LAST_WEEK = "last_week"
STALE = "stale"
CHANGE_PCT = "change_pct"
IMPROVEMENT_PCT = "improvement_pct"
CI_LOW_PCT = "ci_low_pct"
CI_HIGH_PCT = "ci_high_pct"
PROGRESS_PCT = "progress_pct"
TARGET_MET = "target_met"
TREND_SLOPE = "trend_slope"  # metric units per week
TREND_INTERCEPT = "trend_intercept"  # value at x = 0 (the start week)
PROJECTED_TARGET_WEEK = "projected_target_week"  # datetime64 Monday or NaT
GUARDRAIL_BREACHED = "guardrail_breached"
STATUS = "status"

# ---- statuses and recommendations
MET, ON_TRACK, AT_RISK, OFF_TRACK, INSUFFICIENT = (
    "met",
    "on_track",
    "at_risk",
    "off_track",
    "insufficient_data",
)
STATUSES = (MET, ON_TRACK, AT_RISK, OFF_TRACK, INSUFFICIENT)
GO, EXTEND, NO_GO = "go", "extend", "no_go"
RECOMMENDATIONS = (GO, EXTEND, NO_GO, INSUFFICIENT)
RECOMMENDATION = "recommendation"
REASONS = "reasons"

#: Projections further out than this (about 20 years) are reported as none.
MAX_PROJECTION_WEEKS = 1040

LOWER = "lower_is_better"
HIGHER = "higher_is_better"
PRIMARY = "primary"
GUARDRAIL = "guardrail"


def _monday(ts: pd.Timestamp | date) -> pd.Timestamp:
    ts = pd.Timestamp(ts).normalize()
    return ts - pd.Timedelta(days=ts.weekday())


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
    when its Monday is before the Monday of the pilot's start week, else in the pilot
    period. Expected weeks are the complete weeks from the start week up to the earlier
    of ``as_of`` and the decision date (the pilot period ends there); staleness (no
    value in the last 2 of those weeks) is judged at the same point.

    Baseline = the explicit baseline if set, else the mean of the baseline-period
    weeks when there are at least 3 of them (else NaN). Current = mean of the last
    ``trailing_window`` *reported* pilot weeks; missing weeks are skipped, never zero.

    Returns:
        ``metrics`` plus columns baseline (float64, replaced by the effective baseline),
        baseline_source (object), baseline_weeks (int64), current (float64),
        weeks_reported (int64), weeks_expected (int64), completeness_pct (float64),
        last_week (datetime64[ns]), stale (bool), trend_slope, trend_intercept (float64).
        Index: as in ``metrics``.
    """
    out = metrics.copy()
    as_of_ts = pd.Timestamp(as_of)
    m = measurements[[METRIC_ID, WEEK, VALUE]].copy()
    m[METRIC_ID] = m[METRIC_ID].astype("int64")
    m[WEEK] = pd.to_datetime(m[WEEK]).astype("datetime64[ns]")
    m[VALUE] = m[VALUE].astype("float64")
    m = m[m[WEEK] <= as_of_ts].dropna(subset=[VALUE])
    start_week = _monday_series(out[START_DATE])
    start_by_metric = pd.Series(start_week.to_numpy(), index=out[METRIC_ID].to_numpy())
    m["_start"] = m[METRIC_ID].map(start_by_metric).astype("datetime64[ns]")
    m = m[m["_start"].notna()]
    is_pilot = m[WEEK] >= m["_start"]
    base = m[~is_pilot]
    pilot = m[is_pilot].sort_values([METRIC_ID, WEEK], kind="stable")

    base_mean = base.groupby(METRIC_ID)[VALUE].mean()
    base_n = base.groupby(METRIC_ID)[VALUE].size()
    ids = out[METRIC_ID]
    explicit = out[BASELINE].astype("float64")
    n_base = ids.map(base_n).fillna(0).astype("int64")
    derived = ids.map(base_mean).where(n_base >= 3)
    out[BASELINE] = explicit.where(explicit.notna(), derived).astype("float64")
    out[BASELINE_SOURCE] = np.where(
        explicit.notna(), "explicit", np.where(derived.notna(), "baseline_weeks", None)
    )
    out[BASELINE_WEEKS] = n_base.to_numpy()

    window_by_metric = pd.Series(out[WINDOW].to_numpy(), index=ids.to_numpy())
    pilot["_w"] = pilot[METRIC_ID].map(window_by_metric)
    pilot["_rank_from_end"] = pilot.groupby(METRIC_ID).cumcount(ascending=False)
    trailing = pilot[pilot["_rank_from_end"] < pilot["_w"]]
    out[CURRENT] = ids.map(trailing.groupby(METRIC_ID)[VALUE].mean()).astype("float64")
    out[WEEKS_REPORTED] = ids.map(pilot.groupby(METRIC_ID).size()).fillna(0).astype("int64")
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
    c <= t (lower is better) or c >= t (higher is better). Undefined -> NaN / <NA>.

    Args:
        frame: columns baseline, current, target (float64), direction (object).

    Returns:
        A copy with change_pct, improvement_pct, progress_pct (float64) and
        target_met (boolean, <NA> when current is missing).
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
    met = pd.Series(np.where(lower, c <= t, c >= t), index=out.index).astype("boolean")
    out[TARGET_MET] = met.where(c.notna(), pd.NA)
    return out


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
    # Tiny epsilon guards against ceil(2.0000000001) from float noise in the sums.
    weeks = np.ceil(x_star - 1e-9).clip(lower=0)
    start_week = _monday_series(frame[START_DATE])
    return start_week + pd.to_timedelta(weeks * 7, unit="D")


def metric_status(frame: pd.DataFrame, *, as_of: date | None = None) -> pd.Series:
    """Metric status (DESIGN §4), first match wins.

    1. ``insufficient_data``: fewer than ``min_weeks`` pilot weeks, or no baseline.
    2. ``met``: target met.
    3. ``off_track``: no improvement over baseline (current not better than baseline).
    4. ``on_track``: projected to reach the target by the decision date, in a week after
       the last reported week and (given ``as_of``) not yet over.
    5. ``at_risk``: improving but projected to miss the decision date.

    Args:
        frame: columns weeks_reported, min_weeks, baseline, current, direction,
            target_met, projected_target_week, last_week, decision_date.

    Returns:
        object Series of status strings, same index.
    """
    insufficient = (frame[WEEKS_REPORTED] < frame[MIN_WEEKS]) | frame[BASELINE].isna()
    met = frame[TARGET_MET].fillna(False).astype(bool)
    # Improvement judged on the raw difference, so a baseline of 0 (change_pct
    # undefined) still counts: better = c < b (lower is better) or c > b.
    b, c = frame[BASELINE], frame[CURRENT]
    improving = (
        pd.Series(np.where(frame[DIRECTION] == LOWER, c < b, c > b), index=frame.index) & c.notna()
    )
    proj = pd.to_datetime(frame[PROJECTED_TARGET_WEEK])
    # A crossing at or before the last reported week is not a forecast: the data
    # already says the target is not met, so it cannot make the metric on track.
    in_time = (
        proj.notna()
        & (proj <= pd.to_datetime(frame[DECISION_DATE]))
        & (proj > pd.to_datetime(frame[LAST_WEEK]))
    )
    if as_of is not None:  # a projected week that has already ended is no forecast
        in_time &= proj > last_complete_week(as_of)
    status = np.select(
        [insufficient, met, ~improving, in_time],
        [INSUFFICIENT, MET, OFF_TRACK, ON_TRACK],
        default=AT_RISK,
    )
    return pd.Series(status, index=frame.index, dtype="object")


def guardrail_breached(frame: pd.DataFrame) -> pd.Series:
    """True where a guardrail metric is worse than its baseline by more than its margin.

    Worsening in metric units: ``c - b`` (lower is better) or ``b - c`` (higher is
    better); breached when it exceeds ``margin`` (missing margin = 0). Primary metrics
    and metrics without baseline or current are never breached.

    Returns:
        bool Series, same index as ``frame``.
    """
    b, c = frame[BASELINE], frame[CURRENT]
    worsening = np.where(frame[DIRECTION] == LOWER, c - b, b - c)
    margin = frame[MARGIN].astype("float64").fillna(0.0)
    breached = (frame[ROLE] == GUARDRAIL) & b.notna() & c.notna() & (worsening > margin)
    return breached.astype(bool)


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
        One row per metric, sorted by pilot then metric key: the input columns plus
        those of :func:`baseline_and_current` and :func:`change_columns`, and
        ci_low_pct, ci_high_pct (float64, NaN until the statistics land),
        projected_target_week (datetime64[ns]), guardrail_breached (bool), status.
    """
    if metrics.empty:
        return _empty_summary(metrics)
    out = baseline_and_current(metrics, measurements, as_of=as_of)
    out = change_columns(out)
    out[CI_LOW_PCT] = np.nan
    out[CI_HIGH_PCT] = np.nan
    out[PROJECTED_TARGET_WEEK] = projection(out)
    out[GUARDRAIL_BREACHED] = guardrail_breached(out)
    out[STATUS] = metric_status(out, as_of=as_of)
    return out.sort_values([PILOT, KEY], kind="stable").reset_index(drop=True)


SUMMARY_EXTRA_COLUMNS = [
    BASELINE_SOURCE,
    BASELINE_WEEKS,
    CURRENT,
    WEEKS_REPORTED,
    WEEKS_EXPECTED,
    COMPLETENESS_PCT,
    LAST_WEEK,
    STALE,
    TREND_SLOPE,
    TREND_INTERCEPT,
    CHANGE_PCT,
    IMPROVEMENT_PCT,
    PROGRESS_PCT,
    TARGET_MET,
    CI_LOW_PCT,
    CI_HIGH_PCT,
    PROJECTED_TARGET_WEEK,
    GUARDRAIL_BREACHED,
    STATUS,
]


def _empty_summary(metrics: pd.DataFrame) -> pd.DataFrame:
    out = metrics.copy()
    for col in SUMMARY_EXTRA_COLUMNS:
        out[col] = pd.Series(dtype="object")
    return out


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


def metric_reason(row: pd.Series) -> str:
    """One plain-words line for a metric, e.g.
    ``Resolution time 56.8 h vs target 80 h: met, 52% better than baseline 118 h``."""
    label, unit = row[LABEL], row[UNIT] or ""
    status = row[STATUS]
    if pd.isna(row[BASELINE]):
        return f"{label}: no baseline (set one, or report at least 3 baseline weeks)"
    if status == INSUFFICIENT:
        n, need = int(row[WEEKS_REPORTED]), int(row[MIN_WEEKS])
        return f"{label}: {n} pilot week{'s' if n != 1 else ''} reported, {need} needed"
    head = f"{label} {_with_unit(row[CURRENT], unit)} vs target {_with_unit(row[TARGET], unit)}"
    imp = row[IMPROVEMENT_PCT]
    if pd.isna(imp):
        vs = f"baseline {_with_unit(row[BASELINE], unit)}"
    elif imp >= 0:
        vs = f"{fmt_number(abs(imp))}% better than baseline {_with_unit(row[BASELINE], unit)}"
    else:
        vs = f"{fmt_number(abs(imp))}% worse than baseline {_with_unit(row[BASELINE], unit)}"
    if row[ROLE] == GUARDRAIL:
        margin = 0.0 if pd.isna(row[MARGIN]) else row[MARGIN]
        verdict = "guardrail breached" if row[GUARDRAIL_BREACHED] else "guardrail held"
        return f"{head}: {verdict} (margin {_with_unit(margin, unit)}), {vs}"
    words = status.replace("_", " ")
    proj = row[PROJECTED_TARGET_WEEK]
    if status in (ON_TRACK, AT_RISK) and pd.notna(proj):
        iso = pd.Timestamp(proj).isocalendar()
        words += f", projected to reach target in {iso.year}-W{iso.week:02d}"
    return f"{head}: {words}, {vs}"


def recommend(summary: pd.DataFrame, *, as_of: date) -> pd.DataFrame:
    """Recommendation per pilot by the ordered rules of DESIGN §5 (first match wins).

    1. ``insufficient_data``: no primary metric, or a primary metric has fewer than
       ``min_weeks`` pilot weeks (or no baseline).
    2. ``no_go``: a guardrail is breached; or a primary metric is significantly worse than
       baseline (its improvement interval lies below zero; no interval yet = not
       significant); or ``as_of`` is past the decision date and no primary metric met
       its target.
    3. ``go``: every primary metric met its target and no guardrail is breached.
    4. ``extend``: otherwise.

    Vectorised over the whole portfolio (per-pilot counts with one groupby), so a
    portfolio of hundreds of pilots is judged without a Python loop per pilot.

    Args:
        summary: output of :func:`metric_summary`.
        as_of: the day the rules are judged at (decision-date check).

    Returns:
        One row per pilot, sorted by pilot name: pilot_id (int64), pilot (object),
        recommendation (object), reasons (object: the deciding metrics' lines joined by
        "; "), metrics_met (int64), metrics_total (int64), stale (bool: every metric
        stale).
    """
    cols = [PILOT_ID, PILOT, RECOMMENDATION, REASONS, "metrics_met", "metrics_total", STALE]
    if summary.empty:
        return pd.DataFrame(columns=cols)
    s = summary.sort_values([PILOT, KEY], kind="stable").reset_index(drop=True)
    primary = s[ROLE] == PRIMARY
    flags = pd.DataFrame(
        {
            PILOT_ID: s[PILOT_ID],
            "primary": primary,
            "insufficient": primary & (s[STATUS] == INSUFFICIENT),
            "breached": (s[ROLE] == GUARDRAIL) & s[GUARDRAIL_BREACHED].astype(bool),
            "sig_worse": primary & (s[CI_HIGH_PCT] < 0),
            "primary_met": primary & (s[STATUS] == MET),
            "met": s[STATUS] == MET,
            "stale": s[STALE].astype(bool),
            "one": 1,
        }
    )
    g = flags.groupby(PILOT_ID, sort=False)
    per = g[["primary", "insufficient", "breached", "sig_worse", "primary_met", "met", "one"]].sum()
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
            per["primary_met"] == per["primary"],
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
            "metrics_met": per["met"].astype("int64").to_numpy(),
            "metrics_total": per["one"].astype("int64").to_numpy(),
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
