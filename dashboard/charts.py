"""Chart builders: pure ``DataFrame -> plotly Figure`` functions (no ``st.*`` inside).

Pages pass frames from :mod:`metrics.service`; tests assert on the figures' content.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from metrics import computations as C
from metrics.computations import fmt_number

#: One colour per recommendation, used by every chart and badge.
RECOMMENDATION_COLORS = {
    C.GO: "#2e7d32",  # green
    C.EXTEND: "#f0a202",  # amber
    C.NO_GO: "#c62828",  # red
    C.INSUFFICIENT: "#9e9e9e",  # grey
}
RECOMMENDATION_LABELS = {
    C.GO: "go",
    C.EXTEND: "extend",
    C.NO_GO: "no-go",
    C.INSUFFICIENT: "insufficient data",
}

VALUE_COLOR = "#1f5fbf"
BASELINE_COLOR = "#6b7280"
TARGET_COLOR = "#2e7d32"
LIMIT_COLOR = "#c62828"
CURRENT_COLOR = "#f0a202"
PROJECTION_COLOR = "#7c3aed"
CI_FILL = "rgba(240, 162, 2, 0.22)"
ZONE_COLOR = "rgba(46, 125, 50, 0.10)"
#: Opaque, so a line crossing a label (the decision line, a grid line) passes behind
#: it instead of striking it through.
LABEL_BG = "#ffffff"
POST_DECISION_COLOR = "#9ca3af"  # weeks after the decision date: drawn, never judged
#: Vertical offset (px) of the second row of labels above the plot (decision, after
#: decision), so they never overlap the first row (baseline period, pilot period).
LABEL_ROW_PX = 16


def with_unit(x: float | None, unit: str | None) -> str:
    """``56.8 h``, ``12%``, or ``n/a`` when undefined (never 0)."""
    n = fmt_number(x)
    if not unit or n == "n/a":
        return n
    return f"{n}{unit}" if unit == "%" else f"{n} {unit}"


def fmt_money(x: float | None) -> str:
    """An amount of money for tiles: ``48,000``, ``-1,250.5``, ``n/a`` when undefined.

    Thousands separators, whole units from 100 up, at most 2 decimals below; no
    currency symbol (a pilot's cost and value models share one currency, not stored).
    """
    if x is None or pd.isna(x):
        return "n/a"
    x = float(x)
    text = f"{x:,.0f}" if abs(x) >= 100 else f"{x:,.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def fmt_pct(x: float | None, *, signed: bool = False) -> str:
    """A percentage (change, improvement, progress, their intervals) for tiles and
    captions: always 1 decimal, so an interval's bounds read alike (``-14.5% to +0.7%``);
    ``+`` on positive values with ``signed``; ``n/a`` when undefined (never 0)."""
    if x is None or pd.isna(x):
        return "n/a"
    v = round(float(x), 1) + 0.0  # + 0.0: no "-0.0"
    text = f"{v:.1f}"
    if signed and v > 0:
        text = "+" + text
    return f"{text}%"


def _decimals(x: float) -> int:
    """Decimals :func:`metrics.computations.fmt_number` gives ``x``: 1 from 10 up, else
    3 significant digits."""
    ax = abs(x)
    if ax >= 10:
        return 1
    if ax == 0:
        return 2
    return max(0, 2 - math.floor(math.log10(ax)))


def fmt_bounds(low: float, high: float) -> tuple[str, str]:
    """The two bounds of an interval in metric units, written with the same number of
    decimals (fmt_number's rule for the larger bound): ``(4.05, 4.67)``,
    ``(8.5, 11.3)``; zeros both end with are dropped (``(1, 2)``, not ``(1.00, 2.00)``)."""
    d = _decimals(max(abs(float(low)), abs(float(high))))
    lo, hi = (f"{float(v):.{d}f}" for v in (low, high))
    while "." in lo and "." in hi and lo.endswith("0") and hi.endswith("0"):
        lo, hi = lo[:-1], hi[:-1]
    lo, hi = (t.rstrip(".") for t in (lo, hi))
    return tuple("0" if t == "-0" else t for t in (lo, hi))


def ci_range(
    low: float | None, high: float | None, unit: str | None = "", *, signed: bool = False
) -> str:
    """A 95% interval for tiles: ``95% CI 47.1 to 66.5 h``, ``95% CI 4.05 to 4.67%``
    (both bounds with the same decimals, :func:`fmt_bounds`); with ``signed`` (an
    improvement interval in %) ``95% CI +23.4% to +83.2%``, ``95% CI -14.5% to +0.7%``
    (1 decimal, :func:`fmt_pct`); "" when the interval is undefined."""
    if low is None or high is None or pd.isna(low) or pd.isna(high):
        return ""
    if signed:
        return f"95% CI {fmt_pct(low, signed=True)} to {fmt_pct(high, signed=True)}"
    lo, hi = fmt_bounds(low, high)
    return f"95% CI {lo} to {_unit_after(hi, unit)}"


def _unit_after(number_text: str, unit: str | None) -> str:
    if not unit:
        return number_text
    return f"{number_text}{unit}" if unit == "%" else f"{number_text} {unit}"


def guardrail_limit(metric: Mapping | pd.Series) -> float:
    """The non-inferiority limit of a guardrail metric, in its unit: baseline + margin
    (lower is better) or baseline − margin (higher is better); a missing margin is 0
    (docs/decision-rules.md §4). NaN when the baseline is undefined."""
    baseline = _num(metric, C.BASELINE)
    if not math.isfinite(baseline):
        return math.nan
    margin = _num(metric, C.MARGIN)
    margin = margin if math.isfinite(margin) else 0.0
    return baseline + margin if _get(metric, C.DIRECTION, C.LOWER) == C.LOWER else baseline - margin


def is_guardrail(metric: Mapping | pd.Series) -> bool:
    """True for a guardrail metric (judged by its non-inferiority margin, not its target)."""
    return _get(metric, C.ROLE) == C.GUARDRAIL


def current_weeks(window: int | float | None, weeks_reported: int | float | None) -> int:
    """How many pilot weeks the current value averages: ``min(window, weeks_reported)``."""
    try:
        w, n = int(window), int(weeks_reported)
    except (TypeError, ValueError):
        return 0
    return max(0, min(w, n))


def current_label(window: int | float | None, weeks_reported: int | float | None) -> str:
    """``Current (mean of last 2 wk)``, naming the weeks actually averaged; ``Current``
    when no pilot week is reported. The Pilot page's tile and the chart legend use it."""
    n = current_weeks(window, weeks_reported)
    return f"Current (mean of last {n} wk)" if n else "Current"


def _get(metric: Mapping | pd.Series, key: str, default=None):
    try:
        value = metric[key]
    except (KeyError, IndexError):
        return default
    return default if value is None else value


def _num(metric: Mapping | pd.Series, key: str) -> float:
    value = _get(metric, key)
    try:
        value = float(value)
    except (TypeError, ValueError):
        return math.nan
    return value


def _ts(value) -> pd.Timestamp | None:
    if value is None:
        return None
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        return None
    if pd.isna(ts):
        return None
    if ts.tzinfo is not None:
        ts = ts.tz_localize(None)
    return ts.normalize()


def _monday(ts: pd.Timestamp) -> pd.Timestamp:
    return ts - pd.Timedelta(days=ts.weekday())


def _iso(ts: pd.Timestamp) -> str:
    iso = ts.isocalendar()
    return f"{iso[0]}-W{iso[1]:02d}"


def weekly_series(weeks: pd.DataFrame) -> pd.DataFrame:
    """Weekly values on a complete ISO-week grid from the first to the last week.

    Args:
        weeks: columns ``week`` (Monday, date or datetime64) and ``value``.

    Returns:
        Columns week (datetime64[ns], every Monday from first to last), value (float64,
        NaN where the week is missing), label (``YYYY-Www``). Empty when no values.
    """
    if weeks is None or weeks.empty:
        return pd.DataFrame({C.WEEK: pd.Series(dtype="datetime64[ns]"), C.VALUE: [], "label": []})
    w = pd.DataFrame(
        {
            C.WEEK: pd.to_datetime(weeks[C.WEEK]).dt.normalize(),
            C.VALUE: pd.to_numeric(weeks[C.VALUE], errors="coerce").astype("float64"),
        }
    ).dropna(subset=[C.WEEK])
    w[C.WEEK] = w[C.WEEK] - pd.to_timedelta(w[C.WEEK].dt.day_of_week, unit="D")
    w = w.groupby(C.WEEK, as_index=True)[C.VALUE].last().sort_index()
    grid = pd.date_range(w.index.min(), w.index.max(), freq="7D")
    out = w.reindex(grid).rename_axis(C.WEEK).reset_index()
    out.columns = [C.WEEK, C.VALUE]
    out["label"] = [_iso(ts) for ts in out[C.WEEK]]
    return out


def _vertical_line(fig: go.Figure, name: str, x, line: dict) -> None:
    """A named full-height vertical line at ``x`` (tests and callers find it by name)."""
    fig.add_shape(name=name, type="line", xref="x", yref="paper", x0=x, x1=x, y0=0, y1=1, line=line)


def metric_chart(weeks: pd.DataFrame, metric: Mapping | pd.Series) -> go.Figure:
    """One metric over time against its baseline and target (DESIGN §8, Pilot page).

    Draws the weekly values (a visible gap where a week is missing), the baseline and
    target lines labelled with value and unit, the target zone shaded (for a guardrail
    metric, instead of the target line and zone: its non-inferiority limit, baseline ±
    margin, see :func:`guardrail_limit`), the current value
    (trailing mean) as a segment over the weeks it averages with its 95% confidence
    interval as a band around it (``current_ci_low`` .. ``current_ci_high``: Student t
    with an explicit baseline, Welch t against baseline weeks; see
    :func:`metrics.computations.confidence_columns`), a vertical line at the pilot's
    start week, and the trend line projected to the decision date. Weeks after the
    decision date's week are post-decision (DESIGN §4): drawn as open grey circles
    (trace ``after decision``, legend "After decision (not judged)"), never part of the
    current segment, band or trend. The labels above the plot sit on two rows (baseline
    and pilot period; the decision) so they never overlap, and every
    label has an opaque background so no line strikes it through.

    Args:
        weeks: the metric's measurements, columns ``week`` (Monday) and ``value``.
        metric: one row of :func:`metrics.computations.metric_summary` (dict or Series):
            label, unit, direction, baseline, target, current, trailing_window,
            start_date, decision_date, trend_slope, trend_intercept and optionally
            projected_target_week, current_ci_low, current_ci_high, ci_method.

    Returns:
        A plotly figure; traces are named ``values``, ``current ci``, ``current``,
        ``projection`` (and ``projected target``) by their ``meta``, and shapes are
        named ``baseline``, ``target``, ``target zone`` (primary metrics),
        ``non-inferiority limit`` (guardrails), ``start`` and ``decision``, so tests and
        callers can find them.
    """
    # Plotly reads <b>, <br>, <a> ... in text as markup: user text is shown literally.
    label = html.escape(str(_get(metric, C.LABEL, "") or _get(metric, C.KEY, "value")))
    unit = html.escape(str(_get(metric, C.UNIT, "") or ""))
    direction = _get(metric, C.DIRECTION, C.LOWER)
    baseline = _num(metric, C.BASELINE)
    guardrail = is_guardrail(metric)
    # A guardrail is judged by its margin, not its target: no target line, zone or
    # projected target week; its non-inferiority limit instead.
    target = math.nan if guardrail else _num(metric, C.TARGET)
    limit = guardrail_limit(metric) if guardrail else math.nan
    current = _num(metric, C.CURRENT)
    slope = _num(metric, C.TREND_SLOPE)
    intercept = _num(metric, C.TREND_INTERCEPT)
    window = _num(metric, C.WINDOW)
    window = int(window) if math.isfinite(window) and window >= 1 else 4
    start = _ts(_get(metric, C.START_DATE))
    start_week = _monday(start) if start is not None else None
    decision = _ts(_get(metric, C.DECISION_DATE))
    unit_suffix = f" {unit}" if unit and unit != "%" else unit

    all_weeks = weekly_series(weeks)
    # The pilot period ends with the decision date's week (DESIGN §4): later weeks are
    # drawn as their own, marked trace and take no part in current, band or trend.
    decision_week = _monday(decision) if decision is not None else None
    if decision_week is not None:
        series = all_weeks[all_weeks[C.WEEK] <= decision_week]
        after = all_weeks[all_weeks[C.WEEK] > decision_week].dropna(subset=[C.VALUE])
    else:
        series, after = all_weeks, all_weeks.iloc[0:0]
    fig = go.Figure()
    y_points: list[float] = []

    # Weekly values: NaN rows stay in the trace so the line breaks at missing weeks.
    fig.add_trace(
        go.Scatter(
            name="Weekly value",
            meta="values",
            x=series[C.WEEK],
            y=series[C.VALUE],
            customdata=series["label"],
            mode="lines+markers",
            connectgaps=False,
            line={"color": VALUE_COLOR, "width": 2},
            marker={"size": 7},
            hovertemplate=f"%{{customdata}}<br>{label}: %{{y:.4g}}{unit_suffix}<extra></extra>",
            showlegend=True,
        )
    )
    y_points += series[C.VALUE].dropna().tolist()
    if not after.empty:
        fig.add_trace(
            go.Scatter(
                name="After decision (not judged)",
                meta="after decision",
                x=after[C.WEEK],
                y=after[C.VALUE],
                customdata=after["label"],
                mode="markers",
                marker={
                    "size": 8,
                    "symbol": "circle-open",
                    "color": POST_DECISION_COLOR,
                    "line": {"width": 2},
                },
                hovertemplate=(
                    f"%{{customdata}} (after the decision date, not judged)<br>{label}: "
                    f"%{{y:.4g}}{unit_suffix}<extra></extra>"
                ),
            )
        )
        y_points += after[C.VALUE].tolist()

    # Current: the trailing mean over the last `window` reported pilot weeks.
    reported = series.dropna(subset=[C.VALUE])
    if start_week is not None:
        reported = reported[reported[C.WEEK] >= start_week]
    if math.isfinite(current) and not reported.empty:
        # The metric's own count when given (the Pilot tile uses it too); else the
        # weeks drawn. The segment spans exactly the weeks the label names.
        n_reported = _num(metric, C.WEEKS_REPORTED)
        n_reported = int(n_reported) if math.isfinite(n_reported) else len(reported)
        last = reported.tail(current_weeks(window, n_reported) or window)
        x0, x1 = last[C.WEEK].iloc[0], last[C.WEEK].iloc[-1]
        ci_lo, ci_hi = _num(metric, C.CURRENT_CI_LOW), _num(metric, C.CURRENT_CI_HIGH)
        if math.isfinite(ci_lo) and math.isfinite(ci_hi):
            # The band spans the averaged weeks, half a week wider on each side so a
            # single week still shows; drawn first so the segment sits on top of it.
            bx0, bx1 = x0 - pd.Timedelta(days=3), x1 + pd.Timedelta(days=3)
            method = {
                C.STUDENT_T: "Student t, explicit baseline",
                C.WELCH_T: "Welch t vs baseline weeks",
            }.get(_get(metric, C.CI_METHOD), "")
            lo_text, hi_text = fmt_bounds(ci_lo, ci_hi)
            ci_words = f"{_unit_after(lo_text, unit)} to {_unit_after(hi_text, unit)}"
            fig.add_trace(
                go.Scatter(
                    name=f"95% CI of current: {ci_words}",
                    meta="current ci",
                    x=[bx0, bx1, bx1, bx0, bx0],
                    y=[ci_lo, ci_lo, ci_hi, ci_hi, ci_lo],
                    mode="lines",
                    fill="toself",
                    fillcolor=CI_FILL,
                    line={"width": 0, "color": CURRENT_COLOR},
                    hoveron="fills",
                    hoverinfo="text",
                    text=f"95% CI of current: {ci_words}" + (f" ({method})" if method else ""),
                )
            )
            y_points += [ci_lo, ci_hi]
        fig.add_trace(
            go.Scatter(
                name=f"{current_label(window, n_reported)}: {with_unit(current, unit)}",
                x=[x0, x1],
                y=[current, current],
                customdata=[_iso(x0), _iso(x1)],
                mode="lines",
                line={"color": CURRENT_COLOR, "width": 5},
                opacity=0.8,
                hovertemplate=(
                    f"Current (trailing mean): %{{y:.4g}}{unit_suffix}"
                    f"<br>{_iso(x0)} – {_iso(x1)}<extra></extra>"
                ),
                meta="current",
            )
        )
        y_points.append(current)

    # Trend and projection to the decision date (x in weeks since the start week).
    proj_end = None
    if (
        start_week is not None
        and decision is not None
        and math.isfinite(slope)
        and math.isfinite(intercept)
        and not reported.empty
    ):
        first = reported[C.WEEK].iloc[0]
        proj_end = max(decision, reported[C.WEEK].iloc[-1])
        xs = [first, proj_end]
        x_weeks = [(x - start_week).days / 7.0 for x in xs]
        ys = [intercept + slope * xw for xw in x_weeks]
        fig.add_trace(
            go.Scatter(
                name="Trend → decision date",
                x=xs,
                y=ys,
                customdata=[_iso(x) for x in xs],
                mode="lines",
                line={"color": PROJECTION_COLOR, "width": 2, "dash": "dash"},
                hovertemplate=(f"%{{customdata}}<br>Trend: %{{y:.4g}}{unit_suffix}<extra></extra>"),
                meta="projection",
            )
        )
        y_points += ys
        proj_week = _ts(_get(metric, C.PROJECTED_TARGET_WEEK))
        if proj_week is not None and math.isfinite(target) and proj_week <= proj_end:
            fig.add_trace(
                go.Scatter(
                    name=f"Projected to reach target: {_iso(proj_week)}",
                    x=[proj_week],
                    y=[target],
                    customdata=[_iso(proj_week)],
                    mode="markers",
                    marker={"color": PROJECTION_COLOR, "size": 11, "symbol": "star"},
                    hovertemplate="Projected to reach target in %{customdata}<extra></extra>",
                    meta="projected target",
                )
            )

    if math.isfinite(baseline):
        y_points.append(baseline)
    if math.isfinite(target):
        y_points.append(target)
    if math.isfinite(limit):
        y_points.append(limit)

    # Axis range: every plotted number plus padding; the target zone fills to the edge.
    if y_points:
        lo, hi = float(np.min(y_points)), float(np.max(y_points))
    else:
        lo, hi = 0.0, 1.0
    pad = (hi - lo) * 0.08 if hi > lo else max(abs(hi) * 0.1, 1.0)
    y_lo, y_hi = lo - pad, hi + pad
    min_value, max_value = _num(metric, "min_value"), _num(metric, "max_value")
    if math.isfinite(min_value) and lo >= min_value:
        y_lo = max(y_lo, min_value)
    if math.isfinite(max_value) and hi <= max_value:
        y_hi = min(y_hi, max_value)
    if y_hi <= y_lo:
        y_hi = y_lo + 1.0

    if math.isfinite(target):
        lower = direction == C.LOWER
        fig.add_hrect(
            name="target zone",
            y0=y_lo if lower else target,
            y1=target if lower else y_hi,
            fillcolor=ZONE_COLOR,
            line_width=0,
            layer="below",
        )
        fig.add_hline(
            name="target",
            y=target,
            line={"color": TARGET_COLOR, "width": 2, "dash": "dash"},
            annotation_text=f"Target {with_unit(target, unit)}",
            annotation_borderpad=2,
            # early weeks sit near the baseline: label the target on the left ...
            annotation_position="top left" if lower else "bottom left",
            annotation_font_color=TARGET_COLOR,
            annotation_bgcolor=LABEL_BG,
        )
    if math.isfinite(limit):
        fig.add_hline(
            name="non-inferiority limit",
            y=limit,
            line={"color": LIMIT_COLOR, "width": 2, "dash": "dash"},
            annotation_text=f"Non-inferiority limit {with_unit(limit, unit)}",
            annotation_borderpad=2,
            # the limit lies on the worse side of the baseline: label it on the left
            annotation_position="top left" if direction == C.LOWER else "bottom left",
            annotation_font_color=LIMIT_COLOR,
            annotation_bgcolor=LABEL_BG,
        )
    if math.isfinite(baseline):
        fig.add_hline(
            name="baseline",
            y=baseline,
            line={"color": BASELINE_COLOR, "width": 2, "dash": "dot"},
            annotation_text=f"Baseline {with_unit(baseline, unit)}",
            annotation_borderpad=2,
            # ... and the baseline on the right, where late weeks moved away from it
            annotation_position="top right" if direction == C.LOWER else "bottom right",
            annotation_font_color=BASELINE_COLOR,
            annotation_bgcolor=LABEL_BG,
        )

    # Start of the pilot period: baseline weeks to the left, pilot weeks to the right.
    if start_week is not None:
        _vertical_line(fig, "start", start_week, {"color": "#374151", "width": 1})
        has_baseline_weeks = bool((series.dropna(subset=[C.VALUE])[C.WEEK] < start_week).any())
        if has_baseline_weeks:
            fig.add_annotation(
                name="baseline period label",
                x=start_week,
                y=1.0,
                yref="paper",
                xanchor="right",
                yanchor="bottom",
                text="← baseline period ",
                showarrow=False,
                font={"color": "#374151", "size": 11},
            )
        fig.add_annotation(
            name="pilot period label",
            x=start_week,
            y=1.0,
            yref="paper",
            xanchor="left",
            yanchor="bottom",
            text=f" pilot period (from {_iso(start_week)}) →",
            showarrow=False,
            font={"color": "#374151", "size": 11},
        )
    if decision is not None:
        _vertical_line(
            fig, "decision", decision, {"color": PROJECTION_COLOR, "width": 1.5, "dash": "dashdot"}
        )
        # A second row above the period labels: however close the decision date is
        # to the start, the labels never overlap.
        fig.add_annotation(
            name="decision label",
            x=decision,
            y=1.0,
            yref="paper",
            xanchor="right",
            yanchor="bottom",
            yshift=LABEL_ROW_PX,
            text=f"decision {decision.date().isoformat()} ",
            showarrow=False,
            font={"color": PROJECTION_COLOR, "size": 11},
        )

    x_min_candidates = [all_weeks[C.WEEK].min()] if not all_weeks.empty else []
    if start_week is not None:
        x_min_candidates.append(start_week)
    x_min = min(x_min_candidates) if x_min_candidates else None
    x_max_candidates = [all_weeks[C.WEEK].max()] if not all_weeks.empty else []
    if proj_end is not None:
        x_max_candidates.append(proj_end)
    elif decision is not None:
        x_max_candidates.append(decision)
    x_max = max(x_max_candidates) if x_max_candidates else None
    xaxis = {
        # explicit: without any value the axis would guess "linear" and put every
        # date label at the same spot
        "type": "date",
        "title": {"text": "ISO week"},
        "tickformat": "%G-W%V",
        "hoverformat": "%G-W%V",
        "showgrid": True,
    }
    if x_min is not None and x_max is not None and x_max > x_min:
        xaxis["range"] = [x_min - pd.Timedelta(days=4), x_max + pd.Timedelta(days=4)]
        # Ticks on Mondays only, labelled with their ISO week (at most ~10 of them).
        first, last = _monday(x_min), _monday(x_max)
        n_weeks = (last - first).days // 7 + 1
        step = max(1, math.ceil(n_weeks / 10))
        ticks = list(pd.date_range(first, last, freq=f"{7 * step}D"))
        xaxis.update(
            tickmode="array", tickvals=ticks, ticktext=[_iso(t) for t in ticks], tickangle=0
        )

    y_title = f"{label} ({unit})" if unit else label
    fig.update_layout(
        xaxis=xaxis,
        yaxis={"title": {"text": y_title}, "range": [y_lo, y_hi], "zeroline": False},
        hovermode="closest",
        margin={"l": 10, "r": 10, "t": 40 + LABEL_ROW_PX, "b": 10},
        height=380 + LABEL_ROW_PX,
        legend={"orientation": "h", "yanchor": "top", "y": -0.22, "x": 0},
        template="plotly_white",
    )
    if all_weeks.empty:
        fig.add_annotation(
            name="no values",
            text="No values reported yet",
            xref="paper",
            yref="paper",
            x=0.5,
            y=0.5,
            showarrow=False,
            bgcolor=LABEL_BG,
            borderpad=4,
            font={"size": 14, "color": "#6b7280"},
        )
    return fig


#: Most tick labels a count axis shows (plus the one at zero).
COUNT_AXIS_TICKS = 6


def count_axis_step(top: int | float, max_ticks: int = COUNT_AXIS_TICKS) -> int:
    """The tick step of an axis of counts from 0 to ``top``: a whole number 1, 2 or 5
    times a power of ten, the smallest that keeps at most ``max_ticks`` steps.

    ``count_axis_step(3) == 1``, ``count_axis_step(905) == 200``. Written here (not
    Plotly's automatic ticks) because automatic ticks put 0.5 steps on small counts.
    """
    top = max(float(top), 1.0)
    magnitude = 1
    while True:
        for factor in (1, 2, 5):
            step = factor * magnitude
            if top / step <= max_ticks:
                return step
        magnitude *= 10


def portfolio_counts_chart(pilots: pd.DataFrame) -> go.Figure:
    """Bar chart: number of pilots per recommendation, in a fixed order and colour.

    Args:
        pilots: ``Evaluation.pilots`` (needs a ``recommendation`` column).
    """
    counts = (
        pilots[C.RECOMMENDATION].value_counts() if not pilots.empty else pd.Series(dtype="int64")
    )
    order = list(C.RECOMMENDATIONS)
    y = [int(counts.get(r, 0)) for r in order]
    fig = go.Figure(
        go.Bar(
            x=[RECOMMENDATION_LABELS[r] for r in order],
            y=y,
            marker_color=[RECOMMENDATION_COLORS[r] for r in order],
            text=y,
            textposition="outside",
            hovertext=[
                f"{RECOMMENDATION_LABELS[r]}: {n} pilot{'' if n == 1 else 's'}"
                for r, n in zip(order, y, strict=True)
            ],
            hovertemplate="%{hovertext}<extra></extra>",
            name="pilots",
        )
    )
    fig.update_layout(
        # A whole-number step chosen for the largest count: at most COUNT_AXIS_TICKS
        # labels (a step of 1 at 905 pilots drew 905 labels and froze the tab).
        yaxis={
            "title": {"text": "pilots"},
            "dtick": count_axis_step(max(y, default=0)),
            "tickformat": "d",
            "rangemode": "tozero",
        },
        xaxis={"title": {"text": "recommendation"}},
        height=260,
        margin={"l": 10, "r": 10, "t": 20, "b": 10},
        template="plotly_white",
        showlegend=False,
    )
    return fig


#: Height (px) of one vendor's bar in :func:`vendor_comparison_chart`.
VENDOR_BAR_PX = 26


def vendor_comparison_chart(vendors: pd.DataFrame) -> go.Figure:
    """Vendors compared: each vendor's pilots stacked by recommendation (horizontal
    bars, one per vendor, in the frame's order from the top), with the vendor's median
    improvement and reporting discipline in the hover text.

    Args:
        vendors: :func:`metrics.vendors.vendor_summary` output (vendor, pilots,
            ``recommendation_<rec>``, median_improvement_pct, reporting_pct,
            targets_met, targets_total).
    """
    names = [str(v) for v in vendors["vendor"]] if not vendors.empty else []
    fig = go.Figure()
    for rec in C.RECOMMENDATIONS:
        col = f"recommendation_{rec}"
        counts = [int(x) for x in vendors[col]] if not vendors.empty else []
        hover = [
            f"{html.escape(name)}: {n} {RECOMMENDATION_LABELS[rec]} of {int(total)} pilot"
            f"{'' if total == 1 else 's'}<br>median improvement "
            f"{fmt_pct(imp, signed=True)}, reporting {fmt_pct(rep)}, targets met "
            f"{int(met)} / {int(tot)}"
            for name, n, total, imp, rep, met, tot in zip(
                names,
                counts,
                vendors["pilots"] if not vendors.empty else [],
                vendors["median_improvement_pct"] if not vendors.empty else [],
                vendors["reporting_pct"] if not vendors.empty else [],
                vendors["targets_met"] if not vendors.empty else [],
                vendors["targets_total"] if not vendors.empty else [],
                strict=True,
            )
        ]
        fig.add_trace(
            go.Bar(
                y=names,
                x=counts,
                orientation="h",
                name=RECOMMENDATION_LABELS[rec],
                marker_color=RECOMMENDATION_COLORS[rec],
                hovertext=hover,
                hovertemplate="%{hovertext}<extra></extra>",
            )
        )
    top = int(vendors["pilots"].max()) if not vendors.empty else 0
    fig.update_layout(
        barmode="stack",
        xaxis={
            "title": {"text": "pilots"},
            "dtick": count_axis_step(top),
            "tickformat": "d",
            "rangemode": "tozero",
        },
        yaxis={"autorange": "reversed", "automargin": True, "type": "category"},
        height=max(200, 90 + VENDOR_BAR_PX * len(names)),
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        template="plotly_white",
        legend={
            "orientation": "h",
            "y": 1.02,
            "yanchor": "bottom",
            "x": 0,
            "traceorder": "normal",
        },
    )
    return fig
