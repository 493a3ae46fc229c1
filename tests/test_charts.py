"""Chart builders are pure: assert on the figures' real content."""

from __future__ import annotations

import itertools
import math
from datetime import date, timedelta

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from dashboard.charts import (
    RECOMMENDATION_COLORS,
    ci_range,
    current_label,
    current_weeks,
    fmt_money,
    metric_chart,
    portfolio_counts_chart,
    weekly_series,
    with_unit,
)
from metrics import computations as C

START = date(2012, 1, 2)  # a Monday: ISO 2012-W01
DECISION = date(2012, 6, 29)


def _weeks(first: date, values: list[float | None]) -> pd.DataFrame:
    rows = [
        (pd.Timestamp(first + timedelta(weeks=i)), v) for i, v in enumerate(values) if v is not None
    ]
    return pd.DataFrame(rows, columns=[C.WEEK, C.VALUE])


def _metric(**kw) -> dict:
    m = {
        C.LABEL: "Resolution time",
        C.KEY: "resolution_time",
        C.UNIT: "h",
        C.DIRECTION: C.LOWER,
        C.BASELINE: 118.0,
        C.TARGET: 80.0,
        C.CURRENT: 70.0,
        C.WINDOW: 4,
        C.START_DATE: pd.Timestamp(START),
        C.DECISION_DATE: pd.Timestamp(DECISION),
        C.TREND_SLOPE: -2.0,
        C.TREND_INTERCEPT: 100.0,
        C.PROJECTED_TARGET_WEEK: pd.Timestamp(START + timedelta(weeks=10)),
        "min_value": 0.0,
        "max_value": np.nan,
    }
    m.update(kw)
    return m


def _trace(fig: go.Figure, meta: str) -> go.Scatter:
    found = [t for t in fig.data if t.meta == meta]
    assert found, f"no trace with meta {meta!r}: {[t.meta for t in fig.data]}"
    return found[0]


def _shape(fig: go.Figure, name: str):
    found = [s for s in fig.layout.shapes if s.name == name]
    assert found, f"no shape named {name!r}: {[s.name for s in fig.layout.shapes]}"
    return found[0]


def _has_trace(fig: go.Figure, meta: str) -> bool:
    return any(t.meta == meta for t in fig.data)


def test_missing_week_is_a_visible_gap():
    # baseline weeks W50..W52 of 2011, then pilot weeks with W03 missing
    weeks = _weeks(date(2011, 12, 12), [120, 118, 116, None, 100, None, 95, 90])
    fig = metric_chart(weeks, _metric())
    values = _trace(fig, "values")
    xs = [pd.Timestamp(x) for x in values.x]
    # every ISO week from first to last is on the x axis, one week apart
    assert xs[0] == pd.Timestamp("2011-12-12")
    assert xs[-1] == pd.Timestamp("2012-01-30")
    assert all((b - a) == pd.Timedelta(days=7) for a, b in itertools.pairwise(xs))
    ys = list(values.y)
    gap = xs.index(pd.Timestamp("2012-01-16"))  # 2012-W03, not reported
    assert ys[gap] is None or math.isnan(ys[gap])
    assert ys[gap - 1] == 100
    assert ys[gap + 1] == 95
    first_pilot_week = xs.index(pd.Timestamp("2012-01-02"))  # also missing
    assert ys[first_pilot_week] is None or math.isnan(ys[first_pilot_week])
    assert sum(1 for y in ys if y is None or math.isnan(y)) == 2
    assert values.connectgaps is False
    assert values.mode == "lines+markers"
    # hover shows the ISO label of each week
    assert list(values.customdata)[gap] == "2012-W03"
    assert "h" in values.hovertemplate


def test_weekly_series_reindexes_to_every_week():
    s = weekly_series(_weeks(START, [1.0, None, None, 4.0]))
    assert list(s["label"]) == ["2012-W01", "2012-W02", "2012-W03", "2012-W04"]
    assert s[C.VALUE].isna().tolist() == [False, True, True, False]
    assert weekly_series(pd.DataFrame(columns=[C.WEEK, C.VALUE])).empty


def test_baseline_and_target_lines_with_labels():
    fig = metric_chart(_weeks(START, [100, 98, 95, 90, 88]), _metric())
    baseline, target = _shape(fig, "baseline"), _shape(fig, "target")
    assert baseline.y0 == baseline.y1 == 118.0
    assert target.y0 == target.y1 == 80.0
    assert target.line.dash == "dash"
    texts = [a.text for a in fig.layout.annotations]
    assert "Target 80 h" in texts
    assert "Baseline 118 h" in texts
    assert fig.layout.yaxis.title.text == "Resolution time (h)"


def test_target_zone_below_target_for_lower_is_better():
    fig = metric_chart(_weeks(START, [100, 98, 95, 90, 88]), _metric())
    zone = _shape(fig, "target zone")
    y_lo, y_hi = fig.layout.yaxis.range
    assert zone.y1 == 80.0
    assert zone.y0 == pytest.approx(y_lo)
    assert zone.y0 < 80.0
    assert y_hi > 118.0  # the baseline line is inside the visible range


def test_target_zone_above_target_for_higher_is_better():
    metric = _metric(
        **{
            C.LABEL: "Conversion lift",
            C.UNIT: "pp",
            C.DIRECTION: C.HIGHER,
            C.BASELINE: 0.0,
            C.TARGET: 2.0,
            C.CURRENT: 1.0,
            C.TREND_SLOPE: 0.1,
            C.TREND_INTERCEPT: 0.2,
            "min_value": np.nan,
        }
    )
    fig = metric_chart(_weeks(START, [0.1, 0.5, 0.9, 1.2]), metric)
    zone = _shape(fig, "target zone")
    y_lo, y_hi = fig.layout.yaxis.range
    assert zone.y0 == 2.0
    assert zone.y1 == pytest.approx(y_hi)
    assert y_lo < 0.0 < y_hi
    assert fig.layout.yaxis.title.text == "Conversion lift (pp)"


def test_projection_ends_at_decision_date_on_the_trend_line():
    fig = metric_chart(_weeks(START, [100, 98, 95, 90, 88]), _metric())
    proj = _trace(fig, "projection")
    assert proj.line.dash == "dash"
    end_x = pd.Timestamp(proj.x[-1])
    assert end_x == pd.Timestamp(DECISION)
    weeks_since_start = (pd.Timestamp(DECISION) - pd.Timestamp(START)).days / 7
    assert proj.y[-1] == pytest.approx(100.0 - 2.0 * weeks_since_start)
    assert pd.Timestamp(proj.x[0]) == pd.Timestamp(START)  # first reported pilot week
    assert proj.y[0] == pytest.approx(100.0)
    star = _trace(fig, "projected target")
    assert pd.Timestamp(star.x[0]) == pd.Timestamp(START + timedelta(weeks=10))
    assert star.y[0] == 80.0


def test_no_projection_without_a_trend():
    fig = metric_chart(
        _weeks(START, [100]),
        _metric(**{C.TREND_SLOPE: np.nan, C.TREND_INTERCEPT: np.nan}),
    )
    assert not _has_trace(fig, "projection")


def test_current_is_a_segment_over_the_trailing_window():
    # baseline weeks before START are not part of the trailing window
    weeks = _weeks(START - timedelta(weeks=3), [120, 119, 118, 100, 98, None, 90, 88, 86])
    fig = metric_chart(weeks, _metric(**{C.CURRENT: 90.5}))
    cur = _trace(fig, "current")
    assert list(cur.y) == [90.5, 90.5]
    # last 4 *reported* pilot weeks: W02, W04, W05, W06 (W03 missing)
    assert pd.Timestamp(cur.x[0]) == pd.Timestamp(START + timedelta(weeks=1))
    assert pd.Timestamp(cur.x[1]) == pd.Timestamp(START + timedelta(weeks=5))
    assert "90.5 h" in cur.name


def test_start_line_and_period_labels():
    weeks = _weeks(START - timedelta(weeks=3), [120, 119, 118, 100, 98])
    fig = metric_chart(weeks, _metric())
    start = _shape(fig, "start")
    assert pd.Timestamp(start.x0) == pd.Timestamp(START)
    texts = " ".join(a.text for a in fig.layout.annotations)
    assert "baseline period" in texts
    assert "pilot period" in texts
    assert fig.layout.xaxis.tickformat == "%G-W%V"


def test_undefined_numbers_draw_nothing_and_never_zero():
    metric = _metric(
        **{
            C.BASELINE: np.nan,
            C.CURRENT: np.nan,
            C.TREND_SLOPE: np.nan,
            C.TREND_INTERCEPT: np.nan,
        }
    )
    fig = metric_chart(_weeks(START, [100, 98]), metric)
    names = [s.name for s in fig.layout.shapes]
    assert "baseline" not in names
    assert not _has_trace(fig, "current")
    assert not _has_trace(fig, "projection")
    assert "target" in names


def test_empty_metric_chart_says_so():
    fig = metric_chart(pd.DataFrame(columns=[C.WEEK, C.VALUE]), _metric(**{C.CURRENT: np.nan}))
    assert any("No values" in (a.text or "") for a in fig.layout.annotations)
    assert len(_trace(fig, "values").x) == 0


def test_with_unit():
    assert with_unit(56.8, "h") == "56.8 h"
    assert with_unit(12.0, "%") == "12%"
    assert with_unit(float("nan"), "h") == "n/a"
    assert with_unit(None, "h") == "n/a"
    assert with_unit(0.0, "h") == "0 h"


def test_portfolio_counts_chart_colours_and_counts():
    pilots = pd.DataFrame({C.RECOMMENDATION: [C.GO, C.GO, C.NO_GO, C.INSUFFICIENT]})
    fig = portfolio_counts_chart(pilots)
    bar = fig.data[0]
    assert list(bar.x) == ["go", "extend", "no-go", "insufficient data"]
    assert list(bar.y) == [2, 0, 1, 1]
    assert list(bar.marker.color) == [
        RECOMMENDATION_COLORS[C.GO],
        RECOMMENDATION_COLORS[C.EXTEND],
        RECOMMENDATION_COLORS[C.NO_GO],
        RECOMMENDATION_COLORS[C.INSUFFICIENT],
    ]
    empty = portfolio_counts_chart(pd.DataFrame({C.RECOMMENDATION: []}))
    assert list(empty.data[0].y) == [0, 0, 0, 0]


def test_current_names_the_weeks_actually_averaged():
    # 3 baseline weeks, then only 2 pilot weeks: window 4, but the mean is of 2 weeks
    weeks = _weeks(START - timedelta(weeks=3), [120, 119, 118, 100, 96])
    fig = metric_chart(weeks, _metric(**{C.CURRENT: 98.0, C.WEEKS_REPORTED: 2}))
    cur = _trace(fig, "current")
    assert cur.name == "Current (mean of last 2 wk): 98 h"
    assert [pd.Timestamp(x) for x in cur.x] == [
        pd.Timestamp(START),
        pd.Timestamp(START + timedelta(weeks=1)),
    ]


def test_current_label_uses_min_of_window_and_weeks_reported():
    assert current_label(4, 6) == "Current (mean of last 4 wk)"
    assert current_label(4, 2) == "Current (mean of last 2 wk)"
    assert current_label(4, 1) == "Current (mean of last 1 wk)"
    assert current_label(4, 0) == "Current"
    assert current_label(4, None) == "Current"
    assert current_weeks(4, 2) == 2
    assert current_weeks(3, 10) == 3


def test_confidence_band_spans_the_trailing_weeks():
    weeks = _weeks(START - timedelta(weeks=3), [120, 119, 118, 100, 98, None, 90, 88, 86])
    metric = _metric(
        **{
            C.CURRENT: 90.5,
            C.CURRENT_CI_LOW: 84.25,
            C.CURRENT_CI_HIGH: 96.75,
            C.CI_METHOD: C.WELCH_T,
            C.BASELINE: 119.0,
        }
    )
    fig = metric_chart(weeks, metric)
    band = _trace(fig, "current ci")
    assert band.fill == "toself"
    assert list(band.y) == [84.25, 84.25, 96.75, 96.75, 84.25]
    xs = [pd.Timestamp(x) for x in band.x]
    # the 4 averaged weeks W02..W06, half a week wider on each side
    assert xs[0] == pd.Timestamp(START + timedelta(weeks=1)) - pd.Timedelta(days=3)
    assert xs[1] == pd.Timestamp(START + timedelta(weeks=5)) + pd.Timedelta(days=3)
    assert band.name == "95% CI of current: 84.2 h to 96.8 h"
    assert "Welch t vs baseline weeks" in band.text
    # drawn below the current segment, and inside the visible y range
    metas = [t.meta for t in fig.data]
    assert metas.index("current ci") < metas.index("current")
    y_lo, y_hi = fig.layout.yaxis.range
    assert y_lo < 84.25 and y_hi > 96.75


def test_confidence_band_widens_the_y_range():
    metric = _metric(**{C.CURRENT: 99.0, C.CURRENT_CI_LOW: 40.0, C.CURRENT_CI_HIGH: 158.0})
    fig = metric_chart(_weeks(START, [100, 98, 95, 90, 88]), metric)
    y_lo, y_hi = fig.layout.yaxis.range
    assert y_lo < 40.0 and y_hi > 158.0


def test_no_band_without_an_interval():
    metric = _metric(**{C.CURRENT_CI_LOW: np.nan, C.CURRENT_CI_HIGH: np.nan})
    fig = metric_chart(_weeks(START, [100, 98, 95, 90, 88]), metric)
    assert not _has_trace(fig, "current ci")
    assert _has_trace(fig, "current")
    # and none when the metric frame has no interval columns at all
    assert not _has_trace(metric_chart(_weeks(START, [100, 98]), _metric()), "current ci")


@pytest.mark.parametrize(
    ("x", "text"),
    [
        (48000.0, "48,000"),
        (1830.75, "1,831"),
        (-1250.0, "-1,250"),
        (42.5, "42.5"),
        (0.125, "0.12"),
        (0.0, "0"),
        (np.nan, "n/a"),
        (None, "n/a"),
    ],
)
def test_fmt_money(x, text):
    assert fmt_money(x) == text


def test_ci_range():
    assert ci_range(47.1, 66.52, "h") == "95% CI 47.1 to 66.5 h"
    assert ci_range(4.054, 4.671, "%") == "95% CI 4.05 to 4.67%"  # a rate, not a change
    assert ci_range(23.45, 83.21, "%", signed=True) == "95% CI +23.4% to +83.2%"
    # an improvement interval: both bounds with 1 decimal, never mixed precisions
    assert ci_range(-14.06, -5.94, "%", signed=True) == "95% CI -14.1% to -5.9%"
    assert ci_range(np.nan, 1.0, "h") == ""
    assert ci_range(None, None) == ""
