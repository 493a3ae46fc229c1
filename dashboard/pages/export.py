"""Export (decide & export): the go/no-go summary for every pilot, the CSV downloads,
recording a signed decision and moving a pilot through its stage gate (admin only)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import components as ui
from dashboard import state
from dashboard.sections import decisions
from dashboard.sections import report as report_section
from metrics import computations as C
from metrics import csvio

MEASUREMENTS_FILE = "pilotgate-measurements.csv"

ui.pilot_from_query()  # /export?pilot=<id> (the Pilot page's link) picks it to decide on
as_of = ui.as_of_picker()
st.title("Export: go / no-go summary")
st.caption(
    f"One row per pilot and metric, judged as of {as_of:%Y-%m-%d} ({C.iso_label(as_of)}). "
    "Numbers are rounded here for reading; the CSV keeps full precision."
)

version = state.data_version()
frame = state.summary(version, as_of)

if frame.empty:
    st.info(
        "Nothing to summarise yet: no pilot has metrics. Seed the demo portfolio with "
        "`pilotgate seed demo`, or define pilots with `pilotgate pilots import FILE`."
    )
    ui.empty_state_links()
    st.stop()

# ------------------------------------------------------------------ downloads
d1, d2 = st.columns(2)
d1.download_button(
    "Download summary CSV",
    data=csvio.to_csv_text(frame),
    file_name=f"pilotgate-summary-{as_of.isoformat()}.csv",
    mime="text/csv",
    type="primary",
    on_click="ignore",
    key="download-summary",
    icon=":material/download:",
)
measurements = state.measurements_export(version)
d2.download_button(
    f"Download all measurements ({len(measurements)} rows, long form)",
    data=csvio.to_csv_text(measurements),
    # Every stored week, whatever the as-of date: the name carries no date.
    file_name=MEASUREMENTS_FILE,
    mime="text/csv",
    on_click="ignore",
    key="download-measurements",
    icon=":material/download:",
    help="Every stored weekly value; `pilotgate import` reads this file back.",
)

report_section.render_export_downloads(as_of=as_of, version=version)

# ------------------------------------------------------------------ per pilot
per_pilot = frame.drop_duplicates("pilot")[
    [
        "pilot",
        "vendor",
        "stage",
        "recommendation",
        "reasons",
        "decision",
        "decided_by",
        "open_checklist_items",
    ]
]
pilot_filter = st.multiselect(
    "Pilots", list(per_pilot["pilot"]), key="export_pilots", placeholder="All pilots"
)
view = frame[frame["pilot"].isin(pilot_filter)] if pilot_filter else frame

st.subheader("Recommendations")
recs = per_pilot[per_pilot["pilot"].isin(view["pilot"])]
cards = st.columns(2)
for n, rec in enumerate(recs.itertuples(index=False)):
    with cards[n % 2].container(border=True):
        st.markdown(
            f"**{ui.md_escape(rec.pilot)}** · {ui.md_escape(rec.vendor or '—')} · {rec.stage}"
        )
        ui.recommendation_badge(rec.recommendation)
        reasons = [r for r in str(rec.reasons or "").split("; ") if r]
        st.markdown("\n".join(f"- {ui.md_escape(r)}" for r in reasons) or "—")
        if pd.notna(rec.decision):
            st.caption(
                f"Recorded decision: {decisions.decision_text(rec.decision)} "
                f"by {ui.md_escape(rec.decided_by)}"
            )
        open_text = rec.open_checklist_items if isinstance(rec.open_checklist_items, str) else ""
        n_open = len([x for x in open_text.split("; ") if x])
        if n_open:
            st.caption(
                f"{ui.plural(n_open, 'open checklist item')} "
                f"{'blocks' if n_open == 1 else 'block'} moving to production."
            )

st.subheader("Metrics")
display = pd.DataFrame(
    {
        "Pilot": view["pilot"],
        "Metric": view["metric"],
        "Role": view["role"],
        "Unit": view["unit"],
        "Better": view["direction"].map({C.LOWER: "↓ lower", C.HIGHER: "↑ higher"}),
        "Baseline": view["baseline"],
        "Target": view["target"],
        "Current": view["current"],
        "Weeks": view["weeks_reported"],
        "Change %": view["change_pct"],
        "Improvement %": view["improvement_pct"],
        "CI low %": view["ci_low_pct"],
        "CI high %": view["ci_high_pct"],
        "Progress %": view["progress_pct"],
        "Projected target week": view["projected_target_week"],
        "Status": pd.Series(
            [ui.status_text(x, r) for x, r in zip(view["status"], view["role"], strict=True)],
            index=view.index,
            dtype=object,
        ),
        "Recommendation": view["recommendation"].map(ui.recommendation_text),
    }
)
if display["CI low %"].isna().all() and display["CI high %"].isna().all():
    display = display.drop(columns=["CI low %", "CI high %"])
# Stored numbers to 6 significant digits (never float noise, never a value cut to 0.00);
# percentages with 1 decimal, as on the Pilot page.
value_fmt = st.column_config.NumberColumn(format=ui.VALUE_FORMAT)
pct_fmt = st.column_config.NumberColumn(format="%+.1f")
st.dataframe(
    display,
    hide_index=True,
    placeholder="n/a",
    key="export-summary",
    column_config={
        "Baseline": value_fmt,
        "Target": value_fmt,
        "Current": value_fmt,
        "Change %": pct_fmt,
        "Improvement %": pct_fmt,
        "CI low %": pct_fmt,
        "CI high %": pct_fmt,
        "Progress %": st.column_config.NumberColumn(format="%.0f"),
    },
)
st.caption("Empty cells are undefined (n/a), never zero.")

# ------------------------------------------------------------------ decide (admin only)
pilots_now, _ = state.evaluation(version, as_of)
decisions.render_record_form(pilots=pilots_now, as_of=as_of, version=version)
decisions.render_stage_move(pilots=pilots_now, version=version)
