"""Export (decide & export): the go/no-go summary for every pilot, the CSV downloads,
recording a signed decision and moving a pilot through its stage gate (admin only).

Built for a thousand pilots (issue 13): the pilots table is filtered and paged, one
pilot's decision card is shown at a time (picked in a searchable selectbox), and each
CSV is built only when its download button is clicked (Streamlit's deferred download).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import components as ui
from dashboard import state
from dashboard.sections import decisions
from dashboard.sections import report as report_section
from metrics import computations as C
from metrics import csvio
from metrics.db import session_scope

MEASUREMENTS_FILE = "pilotgate-measurements.csv"
#: Pilots per page of the tables (their metrics are shown for the same pilots).
PAGE_SIZE = 25
STAGES = ["discovery", "pilot", "production", "transition", "stopped"]

ui.pilot_from_query()  # /export?pilot=<id> (the Pilot page's link) picks it to decide on
as_of = ui.as_of_picker()
st.title("Export: go / no-go summary")
st.caption(
    f"One row per pilot and metric, judged as of {as_of:%Y-%m-%d} ({C.iso_label(as_of)}). "
    "Numbers are rounded here for reading (values as in the reasons: 1 decimal from 10 up, "
    "3 significant digits below; percentages to 1 decimal); the CSV keeps full precision."
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
# Each file is built when its button is clicked (a callable as ``data``), never on a
# rerun: at a thousand pilots the two files took seconds to build on every run.
engine = state.get_engine()


def _summary_csv() -> str:
    return csvio.to_csv_text(frame)


def _measurements_csv() -> str:
    with session_scope(engine) as s:
        return csvio.to_csv_text(csvio.export_measurements_frame(s))


d1, d2, d3 = st.columns(3)
d1.download_button(
    "Download summary CSV",
    data=_summary_csv,
    file_name=f"pilotgate-summary-{as_of.isoformat()}.csv",
    mime="text/csv",
    type="primary",
    on_click="ignore",
    key="download-summary",
    icon=":material/download:",
)
n_values = state.measurement_count(version)
d2.download_button(
    f"Download measurements CSV ({n_values} rows)",
    data=_measurements_csv,
    # Every stored week, whatever the as-of date: the name carries no date.
    file_name=MEASUREMENTS_FILE,
    mime="text/csv",
    on_click="ignore",
    key="download-measurements",
    icon=":material/download:",
    help="Every stored weekly value; `pilotgate import` reads this file back.",
)

with d3:
    report_section.render_portfolio_download(as_of=as_of, version=version)

# ------------------------------------------------------------------ filters
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
].reset_index(drop=True)
pilots_now, _ = state.evaluation(version, as_of)
ids_by_name = dict(zip(pilots_now[C.PILOT].astype(str), pilots_now[C.PILOT_ID], strict=True))
per_pilot[C.PILOT_ID] = per_pilot["pilot"].map(ids_by_name)

st.subheader("Pilots")
f1, f2, f3, f4 = st.columns([2, 2, 2, 3])
stage_filter = f1.multiselect("Stage", STAGES, key="ex_stage", placeholder="All stages")
rec_filter = f2.multiselect(
    "Recommendation",
    list(C.RECOMMENDATIONS),
    format_func=ui.recommendation_text,
    key="ex_rec",
    placeholder="All recommendations",
)
vendors = sorted(v for v in per_pilot["vendor"].dropna().unique() if v)
vendor_filter = f3.multiselect("Vendor", vendors, key="ex_vendor", placeholder="All vendors")
search = f4.text_input("Search", key="ex_search", placeholder="pilot or vendor").strip()

view = per_pilot
if stage_filter:
    view = view[view["stage"].isin(stage_filter)]
if rec_filter:
    view = view[view["recommendation"].isin(rec_filter)]
if vendor_filter:
    view = view[view["vendor"].isin(vendor_filter)]
if search:
    hay = (view["pilot"].fillna("") + " " + view["vendor"].fillna("")).str.casefold()
    view = view[hay.str.contains(search.casefold(), regex=False)]
view = view.reset_index(drop=True)

n_pages = max(1, math.ceil(len(view) / PAGE_SIZE))
if n_pages > 1:
    page_no = st.number_input(
        f"Page (of {n_pages})", min_value=1, max_value=n_pages, value=1, step=1, key="ex_page"
    )
else:
    page_no = 1
page_no = min(int(page_no), n_pages)
page = view.iloc[(page_no - 1) * PAGE_SIZE : page_no * PAGE_SIZE]
first = (page_no - 1) * PAGE_SIZE + 1 if len(view) else 0
st.caption(
    f"Pilots {first}–{first + len(page) - 1 if len(page) else 0} of {len(view)} shown"
    + (f" ({len(per_pilot)} in all)" if len(view) != len(per_pilot) else "")
    + "."
)
if view.empty:
    st.info("No pilot matches these filters.")

open_counts = [
    len([x for x in str(t).split("; ") if x]) if isinstance(t, str) else 0
    for t in page["open_checklist_items"]
]
st.dataframe(
    pd.DataFrame(
        {
            "Pilot": page["pilot"],
            "Vendor": page["vendor"],
            "Stage": page["stage"],
            "Recommendation": page["recommendation"].map(ui.recommendation_text),
            "Decision": page["decision"].map(decisions.decision_text),
            "Decided by": page["decided_by"],
            "Open items": pd.Series(open_counts, index=page.index, dtype="int64"),
        }
    ),
    hide_index=True,
    placeholder="—",
    key="export-pilots",
    # Fits the page beside the sidebar at 1280 px: the Decision columns are never cut.
    column_config={
        "Pilot": st.column_config.TextColumn(width=200),
        "Vendor": st.column_config.TextColumn(width=110),
        "Stage": st.column_config.TextColumn(width=80),
        "Recommendation": st.column_config.TextColumn(width=140),
        "Decision": st.column_config.TextColumn(
            width=70, help="The latest recorded decision (go / extend / no-go); — = none"
        ),
        "Decided by": st.column_config.TextColumn(width=100),
        "Open items": st.column_config.NumberColumn(
            width=80, help="Open readiness and governance checklist items"
        ),
    },
)

# ------------------------------------------------------------------ one decision card
st.subheader("Recommendation")
if not view.empty:
    card_pilots = pd.DataFrame(
        {C.PILOT_ID: view[C.PILOT_ID].astype("int64"), C.PILOT: view["pilot"]}
    )
    pid = ui.pilot_picker(card_pilots, key="export_card_pilot", label="Pilot (type to search)")
    rec = view[view[C.PILOT_ID] == pid].iloc[0]
    with st.container(border=True):
        st.markdown(
            f"**{ui.md_escape(rec['pilot'])}** · {ui.md_escape(rec['vendor'] or '—')} · "
            f"{rec['stage']}"
        )
        ui.recommendation_badge(rec["recommendation"])
        reasons = [r for r in str(rec["reasons"] or "").split("; ") if r]
        st.markdown("\n".join(f"- {ui.md_escape(r)}" for r in reasons) or "—")
        if pd.notna(rec["decision"]):
            st.caption(
                f"Recorded decision: {decisions.decision_text(rec['decision'])} "
                f"by {ui.md_escape(rec['decided_by'])}"
            )
        open_text = rec["open_checklist_items"]
        open_text = open_text if isinstance(open_text, str) else ""
        n_open = len([x for x in open_text.split("; ") if x])
        if n_open:
            st.caption(
                f"{ui.plural(n_open, 'open checklist item')} "
                f"{'blocks' if n_open == 1 else 'block'} moving to production."
            )
        report_section.render_pilot_download(
            pilot_id=int(pid), as_of=as_of, version=version, key="download-pilot-report"
        )

# ------------------------------------------------------------------ metrics (this page)


def _reading(values: pd.Series) -> pd.Series:
    """Values rounded as the reasons show them (:func:`metrics.computations.fmt_number`);
    NaN stays NaN (shown n/a)."""
    return pd.Series(
        [float(C.fmt_number(v)) if pd.notna(v) else np.nan for v in values],
        index=values.index,
        dtype="float64",
    )


st.subheader("Metrics")
rows = frame[frame["pilot"].isin(page["pilot"])]
display = pd.DataFrame(
    {
        "Pilot": rows["pilot"],
        "Metric": rows["metric"],
        "Role": rows["role"],
        "Unit": rows["unit"],
        "Better": rows["direction"].map({C.LOWER: "↓ lower", C.HIGHER: "↑ higher"}),
        "Baseline": _reading(rows["baseline"]),
        "Target": _reading(rows["target"]),
        "Current": _reading(rows["current"]),
        "Weeks": rows["weeks_reported"],
        "Change %": rows["change_pct"].round(1),
        "Improvement %": rows["improvement_pct"].round(1),
        "CI low %": rows["ci_low_pct"].round(1),
        "CI high %": rows["ci_high_pct"].round(1),
        "Progress %": rows["progress_pct"].round(0),
        "Projected target week": rows["projected_target_week"],
        "Status": pd.Series(
            [ui.status_text(x, r) for x, r in zip(rows["status"], rows["role"], strict=True)],
            index=rows.index,
            dtype=object,
        ),
        "Recommendation": rows["recommendation"].map(ui.recommendation_text),
    }
)
if display["CI low %"].isna().all() and display["CI high %"].isna().all():
    display = display.drop(columns=["CI low %", "CI high %"])
# Rounded above for reading (the caption says how; never float noise, never a small
# value cut to 0.00: 3 significant digits below 10); percentages with 1 decimal, as on
# the Pilot page. Pilot and metric stay pinned while the table scrolls sideways.
value_fmt = st.column_config.NumberColumn()  # already rounded: shown as it is
pct_fmt = st.column_config.NumberColumn(format="%+.1f")
st.dataframe(
    display,
    hide_index=True,
    placeholder="n/a",
    key="export-summary",
    column_config={
        "Pilot": st.column_config.TextColumn(pinned=True),
        "Metric": st.column_config.TextColumn(pinned=True),
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
st.caption("Empty cells are undefined (n/a), never zero. The metrics of the pilots above.")

# ------------------------------------------------------------------ decide (admin only)
decisions.render_record_form(pilots=pilots_now, as_of=as_of, version=version)
decisions.render_stage_move(pilots=pilots_now, version=version)
