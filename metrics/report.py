"""The one-page decision report and the portfolio report (DESIGN §12): frames in, PDF bytes out.

Pure: no session, no settings, no I/O besides reading a font file. The numbers come in
as the go/no-go summary rows (:func:`metrics.service.summary_export_frame`) and are
printed with the CSV's own number text, so the PDF shows exactly what the summary CSV
says; :func:`metrics.service.report_inputs` gathers the frames.

Why ReportLab: it is a maintained, pure-Python PDF library that draws vector text and
vector charts straight onto the page. Nothing goes through a browser or an image
renderer (no Chromium, no kaleido), so a report renders in a few milliseconds on any
server, prints sharp, and its text can be extracted and checked by tests.

Layout rules that keep the page a page whatever the data holds:

- every text from the database is XML-escaped before it reaches a Paragraph (a pilot
  named ``<b>`` prints ``<b>``), and long words are split;
- the body is wrapped in a ``KeepInFrame(mode="shrink")``: if a pilot has many metrics
  or very long names, the content is scaled down to fit the single page instead of
  flowing onto a second one; the footer is drawn at a fixed place;
- black-and-white printable: status and recommendation are words, charts use line
  styles (dashed baseline, solid trend, dots for weekly values) and a light grey zone.

Right-to-left text (Hebrew, Arabic) is put in visual order with python-bidi before it is
drawn, so it reads right to left; Arabic letters are not shaped into joined forms.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import pandas as pd
from reportlab.graphics.shapes import Circle, Drawing, Line, PolyLine, Rect, String
from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas as rl_canvas
from reportlab.platypus import (
    Frame,
    KeepInFrame,
    LongTable,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from metrics import computations as C
from metrics.csvio import _plain_float  # the summary CSV's own number text

PAGE = A4
MARGIN = 14 * mm
FOOTER_H = 12 * mm
#: Open checklist items printed on a pilot page (the rest are counted).
MAX_CHECKLIST_ITEMS = 12
#: Characters of a reason or checklist item printed (the page must stay one page).
MAX_TEXT = 400
#: Baseline-period weeks drawn before the start week on a metric chart.
BASELINE_WEEKS_SHOWN = 8

# Fonts: DejaVu Sans (wide Unicode coverage) when the system has it, else Bitstream Vera,
# which ships inside ReportLab (Latin only; other scripts print as empty boxes).
_FONT_CANDIDATES = [
    (
        Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
        Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"),
    ),
]


def _register_fonts() -> tuple[str, str]:
    if "PG-Sans" in pdfmetrics.getRegisteredFontNames():
        return "PG-Sans", "PG-Sans-Bold"
    import reportlab

    vera = Path(reportlab.__file__).parent / "fonts"
    for regular, bold in [*_FONT_CANDIDATES, (vera / "Vera.ttf", vera / "VeraBd.ttf")]:
        if regular.exists() and bold.exists():
            pdfmetrics.registerFont(TTFont("PG-Sans", str(regular)))
            pdfmetrics.registerFont(TTFont("PG-Sans-Bold", str(bold)))
            return "PG-Sans", "PG-Sans-Bold"
    return "Helvetica", "Helvetica-Bold"  # pragma: no cover - ReportLab always ships Vera


FONT, FONT_BOLD = _register_fonts()


def _style(name: str, size: float, *, bold: bool = False, leading: float | None = None, **kw):
    return ParagraphStyle(
        name,
        fontName=FONT_BOLD if bold else FONT,
        fontSize=size,
        leading=leading or size * 1.25,
        alignment=TA_LEFT,
        splitLongWords=1,
        **kw,
    )


S_TITLE = _style("title", 16, bold=True)
S_TITLE_LONG = _style("titlelong", 12, bold=True)  # names longer than 60 characters
S_SUB = _style("sub", 9)
S_H = _style("h", 10, bold=True, spaceBefore=4, spaceAfter=2)
S_REC = _style("rec", 13, bold=True)
S_BODY = _style("body", 8)
S_CELL = _style("cell", 7.2, leading=8.6)
S_CELL_B = _style("cellb", 7.2, bold=True, leading=8.6)
S_SMALL = _style("small", 6.8, leading=8)


# =========================================================================== inputs


@dataclass(frozen=True)
class PilotReportInputs:
    """Everything one pilot's page shows (and nothing else: its hash is the report's).

    Attributes:
        pilot: name, vendor, stage, owner, use_case, start_date, decision_date (dates),
            recommendation, reasons ("; "-separated).
        rows: the pilot's rows of the go/no-go summary
            (:data:`metrics.service.SUMMARY_EXPORT_COLUMNS`, any extra columns kept).
        chart: one row per metric: key, label, role, direction, unit, baseline, target,
            margin (float64, NaN = none), trend_slope (units per week), trend_intercept
            (value at the start week).
        weeks: weekly values up to the as-of date: key, week (datetime64, Monday), value.
        open_items: open readiness and governance checklist items, in order.
        decision: the latest recorded decision judged by the as-of date (decision,
            decided_by, decided_at (ISO text), as_of (ISO date), rationale), or None.
        as_of: the day judged at.
    """

    pilot: dict
    rows: pd.DataFrame
    chart: pd.DataFrame
    weeks: pd.DataFrame
    open_items: list[str] = field(default_factory=list)
    decision: dict | None = None
    as_of: date = date(2000, 1, 3)


@dataclass(frozen=True)
class PortfolioReportInputs:
    """The portfolio report's inputs.

    Attributes:
        pilots: one row per pilot: pilot, vendor, stage, recommendation, decision_date
            (date), decision, decided_by (NaN = none), status_counts (dict status -> n,
            counted from the summary rows' ``status`` column, whatever its words).
        as_of: the day judged at.
    """

    pilots: pd.DataFrame
    as_of: date


# =========================================================================== hash


def _canon(v):
    """A JSON-ready scalar: NaN/NaT/None -> None, numpy -> Python, dates -> ISO text."""
    if v is None or v is pd.NaT:
        return None
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float):
        return None if not math.isfinite(v) else v
    if isinstance(v, (pd.Timestamp, datetime, date)):
        return v.isoformat()
    if isinstance(v, dict):
        return {str(k): _canon(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_canon(x) for x in v]
    if pd.api.types.is_scalar(v) and pd.isna(v):
        return None
    return v


def _frame_records(df: pd.DataFrame) -> list[dict]:
    cols = sorted(str(c) for c in df.columns)
    out = df.copy()
    out.columns = [str(c) for c in out.columns]
    return [{c: _canon(rec[c]) for c in cols} for rec in out.to_dict("records")]


def canonical_inputs(inputs: PilotReportInputs | PortfolioReportInputs) -> bytes:
    """The canonical serialisation of a report's inputs: UTF-8 JSON with sorted keys,
    frames as lists of records (columns sorted, rows in their given order), numbers as
    the shortest round-trip text, NaN/None as ``null``, dates ISO 8601."""
    if isinstance(inputs, PilotReportInputs):
        doc = {
            "kind": "pilot",
            "pilot": _canon(inputs.pilot),
            "rows": _frame_records(inputs.rows),
            "chart": _frame_records(inputs.chart),
            "weeks": _frame_records(inputs.weeks),
            "open_items": list(inputs.open_items),
            "decision": _canon(inputs.decision),
            "as_of": inputs.as_of.isoformat(),
        }
    else:
        doc = {
            "kind": "portfolio",
            "pilots": _frame_records(inputs.pilots),
            "as_of": inputs.as_of.isoformat(),
        }
    return json.dumps(
        doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def inputs_hash(inputs: PilotReportInputs | PortfolioReportInputs) -> str:
    """SHA-256 (64 hex digits) of :func:`canonical_inputs`: printed in the report's
    footer and stored with a decision (``decision.report_hash``)."""
    return hashlib.sha256(canonical_inputs(inputs)).hexdigest()


# =========================================================================== words


def _t(x: object, limit: int = MAX_TEXT) -> str:
    """Database text made safe for a Paragraph: escaped, control characters dropped,
    cut at ``limit`` characters."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    s = "".join(ch if ch.isprintable() else " " for ch in str(x))
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return escape(visual(s))


_RTL_RE = re.compile("[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufeff]")


def visual(s: str) -> str:
    """``s`` in visual order when it holds right-to-left letters (Unicode bidi algorithm,
    python-bidi), so Hebrew and Arabic words read right to left on the page; other text
    unchanged. (Arabic letters are not shaped into their joined forms.)"""
    if not _RTL_RE.search(s):
        return s
    from bidi import get_display

    return get_display(s)


def num(x: object) -> str:
    """A number as the summary CSV writes it (shortest round trip); "n/a" when undefined."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)) or pd.isna(x):
        return "n/a"
    return _plain_float(float(x))


def words(code: object) -> str:
    """A stored code in words: ``no_go`` -> ``no-go``, ``on_track`` -> ``on track``."""
    if code is None or (isinstance(code, float) and math.isnan(code)):
        return "n/a"
    s = str(code)
    return "no-go" if s == "no_go" else s.replace("_", " ")


def decision_countdown(decision: date, as_of: date) -> str:
    """``in 12 days`` / ``today`` / ``3 days ago`` (the dashboard's words)."""
    days = (decision - as_of).days
    if days == 0:
        return "today"
    n = abs(days)
    span = f"{n} day{'' if n == 1 else 's'}"
    return f"in {span}" if days > 0 else f"{span} ago"


def _as_date(x) -> date | None:
    if x is None or (not isinstance(x, date) and pd.isna(x)):
        return None
    return pd.Timestamp(x).date()


def _unit(x: object, unit: str) -> str:
    s = num(x)
    if s == "n/a" or not unit:
        return s
    return f"{s}{unit}" if unit == "%" else f"{s} {unit}"


# =========================================================================== chart


def metric_chart(
    chart_row: dict,
    weeks: pd.DataFrame,
    *,
    start: date,
    decision_date: date,
    width: float,
    height: float,
) -> Drawing:
    """A small vector chart of one metric: weekly values (dots joined by a thin line),
    baseline (dashed), target zone (light grey, beyond the target; for a guardrail the
    tolerated zone up to baseline +/- margin), least-squares trend (thick line over the
    pilot weeks), the decision date (dotted vertical line).

    Args:
        chart_row: one row of :attr:`PilotReportInputs.chart` as a dict.
        weeks: that metric's weekly values (week, value), any order.
    """
    d = Drawing(width, height)
    left, bottom, right, top = 30.0, 14.0, 4.0, 12.0
    pw, ph = width - left - right, height - bottom - top
    label_chars = max(int(width / 5.2), 8)  # up to ~5.2 pt per bold character at 7 pt
    d.add(
        String(
            2,
            height - 9,
            _plain(chart_row.get("label"), label_chars),
            fontName=FONT_BOLD,
            fontSize=7,
        )
    )
    start_week = pd.Timestamp(start) - pd.Timedelta(days=pd.Timestamp(start).weekday())
    w = weeks.sort_values("week")
    w = w[np.isfinite(w["value"].astype("float64"))]
    # The pilot period, plus the baseline weeks of the last BASELINE_WEEKS_SHOWN weeks
    # before it (older baseline weeks are summarised by the baseline line).
    w = w[w["week"] >= start_week - pd.Timedelta(weeks=BASELINE_WEEKS_SHOWN)]
    x0 = start_week
    x_end = max(pd.Timestamp(decision_date), pd.Timestamp(start_week) + pd.Timedelta(weeks=1))
    if not w.empty:
        x0 = min(x0, w["week"].min())
        x_end = max(x_end, w["week"].max())
    span_days = max((x_end - x0).days, 1)

    b = _f(chart_row.get("baseline"))
    t = _f(chart_row.get("target"))
    margin = _f(chart_row.get("margin"))
    lower = chart_row.get("direction") == C.LOWER
    guard = chart_row.get("role") == C.GUARDRAIL
    slope, icpt = _f(chart_row.get("trend_slope")), _f(chart_row.get("trend_intercept"))
    limit = None
    if guard and b is not None:
        limit = b + (margin or 0.0) if lower else b - (margin or 0.0)
    last_pilot = w[w["week"] >= start_week]["week"].max() if not w.empty else None
    trend = None
    if slope is not None and icpt is not None and last_pilot is not None and pd.notna(last_pilot):
        n_weeks = (last_pilot - start_week).days / 7
        trend = ((start_week, icpt), (last_pilot, icpt + slope * n_weeks))
    ys = list(w["value"].astype("float64"))
    ys += [v for v in (b, None if guard else t, limit) if v is not None]
    if trend:
        ys += [trend[0][1], trend[1][1]]
    if not ys:
        d.add(String(left, bottom + ph / 2, "no values yet", fontName=FONT, fontSize=7))
        return d
    lo, hi = min(ys), max(ys)
    if hi - lo < 1e-12:
        lo, hi = lo - 1, hi + 1
    pad = (hi - lo) * 0.08
    lo, hi = lo - pad, hi + pad

    def X(ts) -> float:
        return left + pw * ((pd.Timestamp(ts) - x0).days / span_days)

    def Y(v: float) -> float:
        return bottom + ph * ((min(max(v, lo), hi) - lo) / (hi - lo))

    # target zone (grey): beyond the target for primaries, the tolerated band for guardrails
    zone = None
    if guard and limit is not None:
        zone = (lo, limit) if lower else (limit, hi)
    elif t is not None:
        zone = (lo, t) if lower else (t, hi)
    if zone is not None:
        y1, y2 = Y(zone[0]), Y(zone[1])
        d.add(
            Rect(left, y1, pw, y2 - y1, fillColor=colors.Color(0.88, 0.88, 0.88), strokeColor=None)
        )
    d.add(Rect(left, bottom, pw, ph, fillColor=None, strokeColor=colors.black, strokeWidth=0.4))
    if b is not None:
        d.add(
            Line(
                left,
                Y(b),
                left + pw,
                Y(b),
                strokeColor=colors.black,
                strokeWidth=0.7,
                strokeDashArray=[3, 2],
            )
        )
    if t is not None and not guard:
        d.add(Line(left, Y(t), left + pw, Y(t), strokeColor=colors.black, strokeWidth=0.5))
    if limit is not None:
        d.add(Line(left, Y(limit), left + pw, Y(limit), strokeColor=colors.black, strokeWidth=0.5))
    xd = X(decision_date)
    d.add(
        Line(
            xd,
            bottom,
            xd,
            bottom + ph,
            strokeColor=colors.black,
            strokeWidth=0.5,
            strokeDashArray=[1, 1.5],
        )
    )
    pts = [(X(wk), Y(v)) for wk, v in zip(w["week"], w["value"], strict=True)]
    if len(pts) > 1:
        d.add(
            PolyLine(
                [c for p in pts for c in p],
                strokeColor=colors.Color(0.45, 0.45, 0.45),
                strokeWidth=0.4,
            )
        )
    for x, y in pts:
        d.add(Circle(x, y, 1.1, fillColor=colors.black, strokeColor=None))
    if trend:
        (ta, va), (tb, vb) = trend
        d.add(Line(X(ta), Y(va), X(tb), Y(vb), strokeColor=colors.black, strokeWidth=1.6))
    # axis labels: value range and first / last week
    d.add(String(left - 2, bottom - 2, _short(lo), fontName=FONT, fontSize=5.5, textAnchor="end"))
    d.add(
        String(left - 2, bottom + ph - 4, _short(hi), fontName=FONT, fontSize=5.5, textAnchor="end")
    )
    d.add(String(left, 3, C.iso_label(x0) or "", fontName=FONT, fontSize=5.5))
    d.add(
        String(
            left + pw, 3, C.iso_label(x_end) or "", fontName=FONT, fontSize=5.5, textAnchor="end"
        )
    )
    return d


def _f(x) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _short(v: float) -> str:
    return f"{v:.4g}"


def _plain(x: object, limit: int) -> str:
    """Text for a chart label (not markup): printable characters, cut at ``limit``."""
    s = "" if x is None else "".join(ch if ch.isprintable() else " " for ch in str(x))
    return visual(s if len(s) <= limit else s[: limit - 1] + "…")


CHART_LEGEND = (
    "Charts: dots = weekly values · dashed = baseline · thin line = target (guardrails: "
    "baseline ± margin) · grey = target zone · thick = least-squares trend · dotted "
    "vertical = decision date"
)


# =========================================================================== pilot page


def _metric_table(inputs: PilotReportInputs, width: float) -> Table:
    chart = inputs.chart.set_index("key") if not inputs.chart.empty else pd.DataFrame()
    head = ["Metric", "Baseline → current", "Improvement (95% CI)", "Target or margin", "Status"]
    data = [[Paragraph(h, S_CELL_B) for h in head]]
    for r in inputs.rows.to_dict("records"):
        key = r.get("metric")
        c = chart.loc[key].to_dict() if key in chart.index else {}
        unit = str(r.get("unit") or "")
        label = c.get("label") or key
        role = str(r.get("role") or "")
        imp = r.get("improvement_pct")
        lo, hi = r.get("ci_low_pct"), r.get("ci_high_pct")
        ci = (
            f"{num(imp)}% (95% CI {num(lo)}% to {num(hi)}%)"
            if num(lo) != "n/a" and num(hi) != "n/a"
            else f"{num(imp)}%" + (" (no interval)" if num(imp) != "n/a" else "")
        )
        if role == C.GUARDRAIL:
            margin = _f(c.get("margin"))
            goal = f"margin {num(margin if margin is not None else 0.0)}"
            goal += f" {C.margin_unit(unit)}" if unit else ""
            if num(r.get("target")) != "n/a":
                goal += f" (target {_unit(r.get('target'), unit)}, not judged)"
        else:
            goal = f"target {_unit(r.get('target'), unit)}"
        data.append(
            [
                Paragraph(
                    f"<b>{_t(label, 60)}</b><br/>{_t(role)} · {_t(words(r.get('direction')))}",
                    S_CELL,
                ),
                Paragraph(
                    f"{_t(_unit(r.get('baseline'), unit))} → "
                    f"<b>{_t(_unit(r.get('current'), unit))}</b>"
                    f"<br/>{int(r.get('weeks_reported') or 0)} pilot weeks reported",
                    S_CELL,
                ),
                Paragraph(_t(ci), S_CELL),
                Paragraph(_t(goal), S_CELL),
                Paragraph(f"<b>{_t(words(r.get('status')))}</b>", S_CELL),
            ]
        )
    widths = [w * width for w in (0.22, 0.22, 0.25, 0.19, 0.12)]
    table = Table(data, colWidths=widths, repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("LINEBELOW", (0, 0), (-1, 0), 0.8, colors.black),
                ("LINEBELOW", (0, 1), (-1, -1), 0.25, colors.grey),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 2),
                ("RIGHTPADDING", (0, 0), (-1, -1), 2),
                ("TOPPADDING", (0, 0), (-1, -1), 1.5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
            ]
        )
    )
    return table


def _chart_grid(inputs: PilotReportInputs, width: float):
    chart = inputs.chart
    if chart.empty:
        return None
    n = len(chart)
    cols = min(n, 3)
    gap = 6.0
    cw = (width - gap * (cols - 1)) / cols
    ch = {1: 150.0, 2: 125.0, 3: 110.0}.get(n, 92.0)
    start = _as_date(inputs.pilot.get("start_date")) or inputs.as_of
    dd = _as_date(inputs.pilot.get("decision_date")) or inputs.as_of
    cells = []
    for row in chart.to_dict("records"):
        wk = inputs.weeks[inputs.weeks["key"] == row["key"]]
        cells.append(metric_chart(row, wk, start=start, decision_date=dd, width=cw, height=ch))
    rows = [cells[i : i + cols] for i in range(0, len(cells), cols)]
    rows[-1] += [""] * (cols - len(rows[-1]))
    t = Table(rows, colWidths=[cw + (gap if j < cols - 1 else 0) for j in range(cols)])
    t.setStyle(
        TableStyle(
            [
                ("LEFTPADDING", (0, 0), (-1, -1), 0),
                ("RIGHTPADDING", (0, 0), (-1, -1), 0),
                ("TOPPADDING", (0, 0), (-1, -1), 1),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
            ]
        )
    )
    return t


def _pilot_story(inputs: PilotReportInputs, width: float) -> list:
    p = inputs.pilot
    start = _as_date(p.get("start_date"))
    dd = _as_date(p.get("decision_date"))
    rec = p.get("recommendation") or C.INSUFFICIENT
    name = str(p.get("pilot") or p.get("name") or "")
    title_style = S_TITLE if len(name) <= 60 else S_TITLE_LONG
    story: list = [Paragraph(_t(name, 400), title_style), Spacer(1, 2)]
    facts = [
        f"Vendor <b>{_t(p.get('vendor') or '—', 100)}</b>",
        f"Stage <b>{_t(p.get('stage') or '—')}</b>",
    ]
    if p.get("owner"):
        facts.append(f"Owner {_t(p.get('owner'), 100)}")
    story.append(Paragraph(" · ".join(facts), S_SUB))
    if start and dd:
        story.append(
            Paragraph(
                f"Pilot period {start.isoformat()} ({C.iso_label(start)}) → decision date "
                f"<b>{dd.isoformat()}</b> ({C.iso_label(dd)}) · Decision due "
                f"<b>{decision_countdown(dd, inputs.as_of)}</b> · judged as of "
                f"{inputs.as_of.isoformat()} ({C.iso_label(inputs.as_of)})",
                S_SUB,
            )
        )
    if p.get("use_case"):
        story.append(Paragraph(f"Use case: {_t(p.get('use_case'), 200)}", S_SUB))
    story.append(Spacer(1, 5))

    reasons = [r for r in str(p.get("reasons") or "").split("; ") if r]
    box = [[Paragraph(f"Recommendation: {words(rec).upper()}", S_REC)]]
    for r in reasons[:8]:
        box.append([Paragraph(f"• {_t(r)}", S_BODY)])
    if len(reasons) > 8:
        box.append([Paragraph(f"… and {len(reasons) - 8} more reasons", S_BODY)])
    rbox = Table(box, colWidths=[width])
    rbox.setStyle(
        TableStyle(
            [
                ("BOX", (0, 0), (-1, -1), 1.4, colors.black),
                ("LEFTPADDING", (0, 0), (-1, -1), 6),
                ("TOPPADDING", (0, 0), (-1, -1), 1.5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
            ]
        )
    )
    story += [rbox, Spacer(1, 6), Paragraph("Metrics", S_H)]
    if inputs.rows.empty:
        story.append(Paragraph("No metrics defined.", S_BODY))
    else:
        story.append(_metric_table(inputs, width))
    grid = _chart_grid(inputs, width)
    if grid is not None:
        story += [Spacer(1, 5), grid, Paragraph(CHART_LEGEND, S_SMALL)]

    story.append(Paragraph("Open checklist items (block moving to production)", S_H))
    items = list(inputs.open_items)
    if not items:
        story.append(Paragraph("None: every readiness and governance item is ticked.", S_BODY))
    else:
        shown = items[:MAX_CHECKLIST_ITEMS]
        half = (len(shown) + 1) // 2
        colw = (width - 8) / 2
        cells = [
            [
                Paragraph(f"☐ {_t(a)}", S_CELL),
                Paragraph(f"☐ {_t(b)}", S_CELL) if b is not None else "",
            ]
            for a, b in zip(shown[:half], [*shown[half:], None], strict=False)
        ]
        t = Table(cells, colWidths=[colw + 8, colw])
        t.setStyle(
            TableStyle(
                [
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ("LEFTPADDING", (0, 0), (-1, -1), 0),
                    ("TOPPADDING", (0, 0), (-1, -1), 0.5),
                    ("BOTTOMPADDING", (0, 0), (-1, -1), 0.5),
                ]
            )
        )
        story.append(t)
        if len(items) > len(shown):
            story.append(Paragraph(f"… and {len(items) - len(shown)} more open items", S_SMALL))

    story.append(Paragraph("Latest recorded decision", S_H))
    d = inputs.decision
    if not d:
        story.append(Paragraph("No decision recorded yet.", S_BODY))
    else:
        signed = str(d.get("decided_at") or "")[:10]
        judged = str(d.get("as_of") or "")[:10]
        by = _t(d.get("decided_by"), 200)
        story.append(
            Paragraph(
                f"<b>{_t(words(d.get('decision')))}</b>, signed by <b>{by}</b> on "
                f"{_t(signed)} (judged on the evidence as of {_t(judged)})",
                S_BODY,
            )
        )
        story.append(Paragraph(f"Rationale: {_t(d.get('rationale') or '—', 900)}", S_BODY))
    return story


def _footer(c: rl_canvas.Canvas, *, as_of: date, digest: str, page: str) -> None:
    w, _h = PAGE
    c.saveState()
    c.setLineWidth(0.5)
    c.line(MARGIN, MARGIN + FOOTER_H - 3 * mm, w - MARGIN, MARGIN + FOOTER_H - 3 * mm)
    c.setFont(FONT, 7)
    c.drawString(
        MARGIN,
        MARGIN + 4 * mm,
        f"PilotGate decision report · as of {as_of.isoformat()} ({C.iso_label(as_of)}) · {page}",
    )
    c.setFont(FONT, 6.2)
    c.drawString(MARGIN, MARGIN, f"Inputs SHA-256: {digest}")
    c.restoreState()


def pilot_report_pdf(inputs: PilotReportInputs) -> bytes:
    """Exactly one A4 page for one pilot (DESIGN §12) as PDF bytes.

    Title block (name, vendor, stage, decision date and countdown), recommendation and
    its reasons, a row per metric (baseline -> current, improvement with its 95%
    interval, target or margin, status; numbers as the summary CSV writes them), a small
    chart per metric, open checklist items, the latest recorded decision, and a footer
    with the as-of date and :func:`inputs_hash`. Content that would not fit is shrunk
    onto the page, never continued on a second one.
    """
    buf = io.BytesIO()
    c = rl_canvas.Canvas(buf, pagesize=PAGE, invariant=1, pageCompression=1)
    c.setTitle(f"PilotGate decision report: {_plain(inputs.pilot.get('pilot'), 200)}")
    c.setAuthor("PilotGate")
    w, h = PAGE
    fw = w - 2 * MARGIN
    fh = h - 2 * MARGIN - FOOTER_H
    story = _pilot_story(inputs, fw - 12)
    frame = Frame(MARGIN, MARGIN + FOOTER_H, fw, fh, showBoundary=0)
    frame.addFromList([KeepInFrame(fw - 12, fh - 12, story, mode="shrink")], c)
    _footer(c, as_of=inputs.as_of, digest=inputs_hash(inputs), page="page 1 of 1")
    c.showPage()
    c.save()
    return buf.getvalue()


# =========================================================================== portfolio


def portfolio_report_pdf(inputs: PortfolioReportInputs) -> bytes:
    """The portfolio report: every pilot on as few A4 pages as it needs (a table
    continued with its header), with its recommendation, decision date and countdown,
    latest recorded decision and metric status counts; counts per recommendation on top;
    the as-of date and :func:`inputs_hash` in every page's footer."""
    buf = io.BytesIO()
    digest = inputs_hash(inputs)
    w, _h = PAGE
    doc = SimpleDocTemplate(
        buf,
        pagesize=PAGE,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN + FOOTER_H,
        title="PilotGate portfolio report",
        author="PilotGate",
        invariant=1,
    )
    fw = w - 2 * MARGIN
    df = inputs.pilots
    story: list = [
        Paragraph("PilotGate portfolio: go / no-go at a glance", S_TITLE),
        Paragraph(
            f"As of {inputs.as_of.isoformat()} ({C.iso_label(inputs.as_of)}) · "
            f"{len(df)} pilot{'' if len(df) == 1 else 's'}",
            S_SUB,
        ),
        Spacer(1, 4),
    ]
    if not df.empty:
        counts = df["recommendation"].fillna(C.INSUFFICIENT).value_counts()
        order = [r for r in C.RECOMMENDATIONS if r in counts.index]
        order += [r for r in counts.index if r not in order]
        story.append(
            Paragraph(
                "Recommendations: "
                + " · ".join(f"<b>{_t(words(r))}</b> {int(counts[r])}" for r in order),
                S_BODY,
            )
        )
        story.append(Spacer(1, 6))
    head = [
        "Pilot",
        "Vendor",
        "Stage",
        "Recommendation",
        "Decision date",
        "Latest decision",
        "Metric status counts",
    ]
    data = [[Paragraph(x, S_CELL_B) for x in head]]
    for r in df.to_dict("records"):
        dd = _as_date(r.get("decision_date"))
        due = f"{dd.isoformat()}<br/>{decision_countdown(dd, inputs.as_of)}" if dd else "—"
        dec = r.get("decision")
        dec_text = (
            f"{_t(words(dec))}<br/>by {_t(r.get('decided_by'), 120)}"
            if isinstance(dec, str) and dec
            else "none"
        )
        sc = r.get("status_counts") or {}
        status_text = ", ".join(f"{_t(words(k))} {int(v)}" for k, v in sc.items()) or "no metrics"
        data.append(
            [
                Paragraph(f"<b>{_t(r.get('pilot'), 300)}</b>", S_CELL),
                Paragraph(_t(r.get("vendor") or "—", 120), S_CELL),
                Paragraph(_t(r.get("stage")), S_CELL),
                Paragraph(f"<b>{_t(words(r.get('recommendation')))}</b>", S_CELL),
                Paragraph(due, S_CELL),
                Paragraph(dec_text, S_CELL),
                Paragraph(status_text, S_CELL),
            ]
        )
    widths = [w_ * fw for w_ in (0.23, 0.13, 0.08, 0.14, 0.12, 0.13, 0.17)]
    table = LongTable(data, colWidths=widths, repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("LINEBELOW", (0, 0), (-1, 0), 0.8, colors.black),
                ("LINEBELOW", (0, 1), (-1, -1), 0.25, colors.grey),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LEFTPADDING", (0, 0), (-1, -1), 2),
                ("RIGHTPADDING", (0, 0), (-1, -1), 2),
                ("TOPPADDING", (0, 0), (-1, -1), 1.5),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
            ]
        )
    )
    story.append(table if not df.empty else Paragraph("No pilots yet.", S_BODY))

    def _on_page(c, d):
        _footer(c, as_of=inputs.as_of, digest=digest, page=f"portfolio page {d.page}")

    doc.build(story, onFirstPage=_on_page, onLaterPages=_on_page)
    return buf.getvalue()


__all__ = [
    "PilotReportInputs",
    "PortfolioReportInputs",
    "canonical_inputs",
    "decision_countdown",
    "inputs_hash",
    "metric_chart",
    "pilot_report_pdf",
    "portfolio_report_pdf",
]
