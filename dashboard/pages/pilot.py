"""Pilot: one pilot's recommendation, its reasons, and every metric against its target."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import components as ui
from dashboard import state
from dashboard.charts import (
    ci_range,
    current_label,
    current_weeks,
    fmt_money,
    guardrail_limit,
    metric_chart,
    with_unit,
)
from dashboard.sections import checklist, decisions
from dashboard.sections import report as report_section
from dashboard.sections.history import render_history
from metrics import computations as C
from metrics.models import Role

NBSP = "\u00a0"

ui.pilot_from_query()
as_of = ui.as_of_picker()
version = state.data_version()
pilots = state.pilots(version)

if pilots.empty:
    st.title("Pilot")
    st.info(
        "No pilots yet. Seed the demo portfolio with `pilotgate seed demo` (or `make run`), "
        "or define pilots with `pilotgate pilots import FILE`."
    )
    st.page_link(ui.PAGE_PORTFOLIO, label="Back to the portfolio", icon=":material/dashboard:")
    st.stop()

with st.sidebar:
    pilot_id = ui.pilot_picker(pilots, key="pilot_page_pilot", say_not_found=False)
if pilot_id is None:  # a link naming no pilot: say so, never show another one
    st.title("Pilot")
    st.error(ui.link_not_found_message())
    st.stop()
ui.pilot_to_query(pilot_id)

with st.spinner("Evaluating the pilot…"):
    detail = state.pilot_detail(version, as_of, pilot_id)
if detail is None:
    st.error("That pilot no longer exists. Pick another one in the sidebar.")
    st.stop()

p = detail.pilot
rec = p.get(C.RECOMMENDATION) or C.INSUFFICIENT

# ------------------------------------------------------------------ header
st.title(ui.md_escape(p[C.PILOT]))
start = pd.Timestamp(p[C.START_DATE]).date()
decision = pd.Timestamp(p[C.DECISION_DATE]).date()
countdown = ui.decision_countdown(decision, as_of)
st.markdown(
    " · ".join(
        [
            f"**Vendor** {ui.md_escape(p.get('vendor') or '—')}",
            f"**Stage** {ui.md_escape(p.get('stage') or '—')}",
            f"**Owner** {ui.md_escape(p.get('owner') or '—')}",
            f"**Pilot period** {start:%Y-%m-%d} ({C.iso_label(start)}) → "
            f"{decision:%Y-%m-%d} ({C.iso_label(decision)})",
            # the Portfolio table's "Decision due" column, in the same words; kept on one
            # line (non-breaking spaces) where the header wraps
            f"**Decision{NBSP}due**{NBSP}{countdown.replace(' ', NBSP)}",
        ]
    )
)
if p.get("use_case"):
    st.caption(f"Use case: {ui.md_escape(p['use_case'])}")

ui.recommendation_badge(rec)
reasons = [r for r in str(p.get(C.REASONS) or "").split("; ") if r]
if reasons:
    st.markdown("\n".join(f"- {ui.md_escape(r)}" for r in reasons))
st.caption(
    f"As of {as_of:%Y-%m-%d}: {int(p.get(C.PRIMARY_MET, 0))} of "
    f"{int(p.get(C.PRIMARY_TOTAL, 0))} primary metrics met their target."
)

report_section.render_pilot_download(
    pilot_id=pilot_id, as_of=as_of, version=version, key="pilot-report-pdf"
)

# ------------------------------------------------------------------ economics
st.markdown("**Economics**")
cost_text = fmt_money(p.get(C.COST)).replace("n/a", "not set")
if not bool(p.get(C.HAS_VALUE_MODEL)):
    st.caption(
        f"Pilot cost {cost_text}. No value model set: give a metric a value per unit "
        "(money per week per unit of improvement) to estimate its value, payback and ROI."
    )
else:
    econ_tiles = [
        ("Pilot cost", cost_text, "The pilot's cost, in its currency"),
        (
            "Estimated value",
            f"{fmt_money(p.get(C.ESTIMATED_WEEKLY_VALUE))} / week",
            "Sum over metrics with a value model of improvement (baseline − current, or "
            "current − baseline when higher is better) × value per unit; n/a while a "
            "modelled metric has no current value",
        ),
        (
            "Payback week",
            C.iso_label(p.get(C.PAYBACK_WEEK)) or "n/a",
            "Start week + ceil(cost / weekly value) weeks; n/a when the value is not "
            "positive or no cost is set",
        ),
        (
            f"ROI over {C.ROI_WEEKS} weeks",
            ui.pct(p.get(C.ROI_PCT), signed=True),
            f"({C.ROI_WEEKS} × weekly value − cost) / cost",
        ),
    ]
    with st.container(horizontal=True, gap="small", key="tiles-economics"):
        for tile_label, tile_value, tile_help in econ_tiles:
            st.metric(tile_label, tile_value, help=tile_help, border=True, width="content")

if (as_of - decision).days > 28:
    st.button(
        f"Judge as of the decision date ({decision:%Y-%m-%d})",
        key="pilot-as-of-decision",
        icon=":material/event:",
        on_click=ui.set_as_of,
        args=(decision,),
        help="Sets the As-of date in the sidebar; staleness and completeness follow it.",
    )

# ------------------------------------------------------------------ data warnings
metrics = detail.metrics
if bool(p.get(C.STALE)) and not metrics.empty:
    last = C.iso_label(p.get("last_week"))
    st.warning(
        "**Stale:** no value reported in the last 2 complete weeks"
        + (f" (last reported week {last})." if last else " (nothing reported yet).")
        + " Enter the missing weeks on the Enter page."
    )
if not metrics.empty:
    short = metrics[metrics[C.STATUS].isin([C.INSUFFICIENT, C.NOT_JUDGED])]
    if not short.empty:
        lines = [
            f"{r[C.LABEL]}: {int(r[C.WEEKS_REPORTED])} of {int(r[C.MIN_WEEKS])} pilot weeks"
            + ("" if pd.notna(r[C.BASELINE]) else ", no baseline")
            for _, r in short.iterrows()
        ]
        st.info("**Insufficient data** for " + "; ".join(ui.md_escape(x) for x in lines) + ".")

    late = int(metrics[C.POST_DECISION_WEEKS].max() or 0)
    if late:
        st.info(
            f"**After the decision date:** {late} week{'s' if late != 1 else ''} reported "
            f"after {C.iso_label(decision)}, the decision date's week. They are drawn on "
            "the charts (marked *after decision*) but are not part of the go/no-go "
            "evidence: current value, interval, trend, status and recommendation."
        )

if metrics.empty:
    st.info("This pilot has no metrics defined yet (`pilotgate pilots import FILE`).")

# ------------------------------------------------------------------ per metric
measurements = detail.measurements
if not metrics.empty:  # primary metrics first, then guardrails (each in their order)
    metrics = metrics.sort_values(
        C.ROLE, key=lambda r: (r == C.GUARDRAIL).astype(int), kind="stable"
    )
for _, m in metrics.iterrows():
    mid = int(m[C.METRIC_ID])
    unit = m[C.UNIT] or ""
    guardrail = m[C.ROLE] == C.GUARDRAIL
    role = "guardrail" if guardrail else "primary"
    better = "lower is better" if m[C.DIRECTION] == C.LOWER else "higher is better"
    st.divider()
    head, badge = st.columns([4, 1], vertical_alignment="center")
    head.subheader(ui.md_escape(m[C.LABEL]) + (f" ({ui.md_escape(unit)})" if unit else ""))
    if guardrail:  # judged by its non-inferiority margin, not a target
        margin_text = (
            with_unit(m[C.MARGIN], C.margin_unit(unit))
            if pd.notna(m[C.MARGIN])
            else "not set (0: any worsening breaches)"
        )
        judged_by = f"non-inferiority margin {ui.md_escape(margin_text)}"
    else:
        judged_by = f"target {ui.md_escape(with_unit(m[C.TARGET], unit))}"
    head.caption(f"`{m[C.KEY]}` · {role} · {better} · {judged_by}")
    with badge:
        if guardrail and m[C.STATUS] in (C.HELD, C.BREACHED):
            breached = m[C.STATUS] == C.BREACHED
            st.badge(
                "guardrail breached" if breached else "guardrail held",
                icon=":material/shield:",
                color="red" if breached else "green",
            )
        else:
            st.badge(
                ui.status_text(m[C.STATUS]),
                color=ui.STATUS_BADGE_COLORS.get(m[C.STATUS], "gray"),
            )

    window = int(m[C.WINDOW])
    n_current = current_weeks(window, m[C.WEEKS_REPORTED])
    base_help = (
        "explicit baseline"
        if m[C.BASELINE_SOURCE] == "explicit"
        else f"mean of {int(m[C.BASELINE_WEEKS])} baseline-period weeks"
        if m[C.BASELINE_SOURCE] == "baseline_weeks"
        else "undefined: set one, or report at least 3 weeks before the start"
    )
    proj = C.iso_label(m[C.PROJECTED_TARGET_WEEK])
    ci_how = (
        "Welch t: baseline-week mean − trailing-window mean"
        if m[C.CI_METHOD] == C.WELCH_T
        else "Student t of the trailing-window mean (explicit baseline)"
    )
    limit = guardrail_limit(m) if guardrail else float("nan")
    limit_rule = (
        "baseline + margin (lower is better)"
        if m[C.DIRECTION] == C.LOWER
        else "baseline − margin (higher is better)"
    )
    current_tile = (
        current_label(window, m[C.WEEKS_REPORTED]),
        with_unit(m[C.CURRENT], unit),
        (
            f"Mean of the last {n_current} reported pilot weeks (trailing window: "
            f"{window} weeks; fewer while fewer are reported)"
            if n_current
            else f"No pilot week reported yet (trailing window: {window} weeks)"
        )
        + (f". 95% interval: {ci_how}" if pd.notna(m[C.CURRENT_CI_LOW]) else ""),
        ci_range(m[C.CURRENT_CI_LOW], m[C.CURRENT_CI_HIGH], unit),
    )
    change_tiles = [
        (
            "Change vs baseline",
            ui.pct(m[C.CHANGE_PCT], signed=True),
            "(current − baseline) / |baseline|",
        ),
        (
            "Improvement",
            ui.pct(m[C.IMPROVEMENT_PCT], signed=True),
            "The change signed so that positive is better"
            + (
                f". 95% interval ({ci_how}), divided by |baseline|"
                if pd.notna(m[C.CI_LOW_PCT])
                else ""
            ),
            ci_range(m[C.CI_LOW_PCT], m[C.CI_HIGH_PCT], "%", signed=True),
        ),
    ]
    weeks_tile = (
        "Weeks reported",
        f"{int(m[C.WEEKS_REPORTED])} / {int(m[C.WEEKS_EXPECTED])}",
        "Pilot weeks with a value / complete pilot weeks so far",
    )
    if guardrail:
        tiles = [
            ("Baseline", with_unit(m[C.BASELINE], unit), base_help),
            current_tile,
            (
                "Non-inferiority limit",
                with_unit(limit, unit),
                f"{limit_rule}: a current value worse than this breaches the guardrail",
            ),
            *change_tiles,
            weeks_tile,
            (
                "Status vs margin",
                ui.status_text(m[C.STATUS], C.GUARDRAIL),
                "A guardrail is judged by its non-inferiority margin, not by a target: "
                "held (not worse than baseline by more than the margin) · breached · "
                "not judged (fewer than the minimum pilot weeks, or no baseline; keeps "
                "the pilot from go)",
            ),
        ]
    else:
        tiles = [
            ("Baseline", with_unit(m[C.BASELINE], unit), base_help),
            current_tile,
            ("Target", with_unit(m[C.TARGET], unit), f"{better.capitalize()}"),
            *change_tiles,
            ("Progress to target", ui.pct(m[C.PROGRESS_PCT]), "0% at baseline, 100% at target"),
            weeks_tile,
            (
                "Projected target week",
                proj or "n/a",
                "When the trend line reaches the target (n/a: moving away, flat or too few weeks)",
            ),
            (
                "Status vs target",
                ui.status_text(m[C.STATUS]),
                "met · on track (the trend reaches the target by the decision date, "
                "or is already past it) · at risk (improving but projected to miss, "
                "or no value in the last 2 weeks) · off track (not improving) · "
                "insufficient data",
            ),
        ]
    if pd.notna(m[C.VALUE_PER_UNIT]):
        tiles.append(
            (
                "Estimated value",
                f"{fmt_money(m[C.ESTIMATED_WEEKLY_VALUE])} / week",
                f"Improvement in {unit or 'units'} × value per unit "
                f"({fmt_money(m[C.VALUE_PER_UNIT])} per {unit or 'unit'} per week)",
            )
        )
    with st.container(horizontal=True, gap="small", key=f"tiles-{mid}"):
        for tile_label, tile_value, tile_help, *tile_delta in tiles:
            st.metric(
                tile_label,
                tile_value,
                delta=(tile_delta[0] or None) if tile_delta else None,
                delta_color="off",
                delta_arrow="off",
                help=tile_help,
                border=True,
                width="content",
            )
    if pd.notna(m[C.CI_LOW_PCT]) and pd.notna(m[C.CI_HIGH_PCT]):
        st.caption(
            f"95% interval of the improvement: {ui.pct(m[C.CI_LOW_PCT], signed=True)} "
            f"to {ui.pct(m[C.CI_HIGH_PCT], signed=True)} ({ci_how}): "
            + (
                "significant (excludes 0)."
                if bool(m[C.SIGNIFICANT])
                else "not significant (includes 0)."
            )
        )

    weeks = measurements[measurements[C.METRIC_ID] == mid]
    st.plotly_chart(metric_chart(weeks, m), key=f"chart-{mid}")

    with st.expander(f"Weekly values of {ui.md_escape(m[C.LABEL])} ({len(weeks)})"):
        if weeks.empty:
            st.caption("No values yet.")
        else:
            shown = weeks.sort_values(C.WEEK, ascending=False)
            value_header = f"Value ({unit})" if unit else "Value"
            values_table = pd.DataFrame(
                {
                    "Week": shown[C.WEEK].map(C.iso_label),
                    value_header: shown[C.VALUE],
                    "Note": shown["note"],
                    "Entered by": shown["entered_by"],
                    "Entered at (UTC)": shown["entered_at"].dt.strftime("%Y-%m-%d %H:%M"),
                    "Version": shown["version"],
                }
            )
            ui.csv_download(
                values_table,
                file_name=f"pilotgate-{m[C.KEY]}-values.csv",
                key=f"values-download-{mid}",
            )
            st.dataframe(
                values_table,
                hide_index=True,
                placeholder="n/a",
                key=f"values-{mid}",
                column_config={
                    value_header: st.column_config.NumberColumn(
                        value_header,
                        format=ui.VALUE_FORMAT,
                        help="The stored value, shown to 6 significant digits",
                    )
                },
            )

# ------------------------------------------------------------------ corrections
render_history(pilot_id, metrics)

# ------------------------------------------------------------------ governance
checklist.render(pilot_id=pilot_id, version=version)
decisions.render_pilot(pilot_id=pilot_id, version=version)

# ------------------------------------------------------------------ stage history
st.divider()
st.subheader("Stage history")
stages = detail.stages
if stages.empty:
    st.caption("No stage changes recorded.")
else:
    st.dataframe(
        pd.DataFrame(
            {
                "From": stages["from_stage"].fillna("—"),
                "To": stages["to_stage"],
                "When (UTC)": stages["at"].dt.strftime("%Y-%m-%d %H:%M"),
                "By": stages["by"],
                "Note": stages["note"],
            }
        ),
        hide_index=True,
        placeholder="n/a",
        key="stage-history",
    )
if state.can(Role.editor):  # the Enter page is registered for editors and admins only
    st.page_link(ui.PAGE_ENTER, label="Enter this week's values", icon=":material/edit_note:")
