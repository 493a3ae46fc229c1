"""Portfolio: every pilot at a glance, with counts, filters and a link to each pilot."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import components as ui
from dashboard import state
from dashboard.charts import RECOMMENDATION_LABELS, portfolio_counts_chart
from dashboard.sections import decisions
from metrics import computations as C
from metrics.models import Stage

MAX_LINKS = 60  # pilot links under the table; filters narrow the rest

as_of = ui.as_of_picker()
st.title("Portfolio")
st.caption(f"Every pilot judged as of {as_of:%a %d %b %Y} ({C.iso_label(as_of)}).")

version = state.data_version()
with st.spinner("Evaluating the portfolio…"):
    pilots, _metrics = state.evaluation(version, as_of)

if pilots.empty:
    st.info(
        "**No pilots yet.** Load the demo portfolio with `make run` (it seeds demo data), "
        "or from a terminal: `pilotgate seed demo` and `pilotgate seed helpdesk`. "
        "Define your own pilots on the Admin page or with `pilotgate pilots import FILE`, "
        "then enter weekly values on the Enter page or import them as CSV."
    )
    ui.empty_state_links()
    st.stop()

# ------------------------------------------------------------------ counts
stages = [s.value for s in Stage]
rec_counts = pilots[C.RECOMMENDATION].value_counts()
stage_counts = pilots["stage"].value_counts()

st.subheader("Recommendations")
cols = st.columns(len(C.RECOMMENDATIONS) + 1)
cols[0].metric("Pilots", len(pilots), border=True)
for col, rec in zip(cols[1:], C.RECOMMENDATIONS, strict=True):
    col.metric(
        f"{ui.RECOMMENDATION_ICONS[rec]} {RECOMMENDATION_LABELS[rec]}",
        int(rec_counts.get(rec, 0)),
        border=True,
    )

left, right = st.columns([3, 2])
with left:
    st.markdown("**Pilots per stage**")
    stage_cols = st.columns(len(stages))
    for col, stage in zip(stage_cols, stages, strict=True):
        col.metric(stage, int(stage_counts.get(stage, 0)))
    n_stale = int(pilots[C.STALE].sum())
    if n_stale:
        st.warning(f"{n_stale} pilot(s) are stale: no value reported in the last 2 complete weeks.")
with right:
    st.plotly_chart(
        portfolio_counts_chart(pilots),
        key="portfolio-counts",
        config={"displayModeBar": False},
    )

# ------------------------------------------------------------------ filters
st.subheader("Pilots")
f1, f2, f3, f4 = st.columns([2, 2, 2, 3])
stage_filter = f1.multiselect("Stage", stages, key="pf_stage", placeholder="All stages")
rec_filter = f2.multiselect(
    "Recommendation",
    list(C.RECOMMENDATIONS),
    format_func=ui.recommendation_text,
    key="pf_rec",
    placeholder="All recommendations",
)
vendors = sorted(v for v in pilots["vendor"].dropna().unique() if v)
vendor_filter = f3.multiselect("Vendor", vendors, key="pf_vendor", placeholder="All vendors")
search = f4.text_input(
    "Search", key="pf_search", placeholder="pilot, vendor, use case or owner"
).strip()

view = pilots
if stage_filter:
    view = view[view["stage"].isin(stage_filter)]
if rec_filter:
    view = view[view[C.RECOMMENDATION].isin(rec_filter)]
if vendor_filter:
    view = view[view["vendor"].isin(vendor_filter)]
if search:
    needle = search.casefold()
    hay = (
        view[[C.PILOT, "vendor", "use_case", "owner"]]
        .fillna("")
        .astype(str)
        .agg(" ".join, axis=1)
        .str.casefold()
    )
    view = view[hay.str.contains(needle, regex=False)]
view = view.reset_index(drop=True)

decision = pd.to_datetime(view[C.DECISION_DATE])
# The same wording as the Pilot page's header ("in 12 days", "today", "3 days ago");
# the Decision date column next to it sorts the pilots by deadline.
countdown = [None if pd.isna(d) else ui.decision_countdown(d.date(), as_of) for d in decision]
table = pd.DataFrame(
    {
        "Pilot": view[C.PILOT],
        "Vendor": view["vendor"],
        "Stage": view["stage"],
        "Recommendation": view[C.RECOMMENDATION].map(ui.recommendation_text),
        "Primary met": [
            f"{m} / {t}" for m, t in zip(view[C.PRIMARY_MET], view[C.PRIMARY_TOTAL], strict=True)
        ],
        "Completeness": view["completeness_pct"].astype("float64"),
        "Stale": view[C.STALE].astype(bool),
        "Last reported": view["last_week"].map(C.iso_label),
        "Decision date": decision.dt.date,
        "Decision due": pd.Series(countdown, index=view.index, dtype="object"),
    }
)

if view.empty:
    st.info("No pilot matches these filters.")
else:
    with st.container(horizontal=True, gap="xsmall", key="portfolio-links"):
        st.markdown("**Open:**", width="content")
        for pid, name, rec in (
            view[[C.PILOT_ID, C.PILOT, C.RECOMMENDATION]].head(MAX_LINKS).itertuples(index=False)
        ):
            st.page_link(
                ui.PAGE_PILOT,
                label=f"{ui.RECOMMENDATION_ICONS.get(rec, '')} {ui.md_escape(name)}",
                query_params={ui.PILOT_QP: str(int(pid))},
            )
    if len(view) > MAX_LINKS:
        st.caption(f"First {MAX_LINKS} shown: filter or search to find the others.")

st.caption(f"{len(view)} of {len(pilots)} pilots shown. Open one above, or select its row.")
selection = st.dataframe(
    table,
    key="portfolio-table",
    hide_index=True,
    placeholder="n/a",
    on_select="rerun",
    selection_mode="single-row",
    column_config={
        "Pilot": st.column_config.TextColumn("Pilot", width=165),
        "Vendor": st.column_config.TextColumn("Vendor", width=90),
        "Stage": st.column_config.TextColumn("Stage", width=55),
        "Recommendation": st.column_config.TextColumn("Recommendation", width=130),
        "Primary met": st.column_config.TextColumn(
            "Primary met",
            width=62,
            help="Primary metrics that met their target / all primary metrics "
            "(guardrails are judged by their margin, not counted here)",
        ),
        "Completeness": st.column_config.ProgressColumn(
            "Completeness",
            help="Weeks reported / weeks expected since the start (mean over metrics)",
            min_value=0,
            max_value=100,
            format="%.0f%%",
            width=80,
        ),
        "Stale": st.column_config.CheckboxColumn(
            "Stale", help="No value in the last 2 complete weeks", width=45
        ),
        "Last reported": st.column_config.TextColumn(
            "Last week", help="Last pilot week with a value (ISO week)", width=72
        ),
        "Decision date": st.column_config.DateColumn("Decision", format="YYYY-MM-DD", width=82),
        "Decision due": st.column_config.TextColumn(
            "Decision due",
            help="Time from the as-of date to the decision date (sort by the Decision column)",
            width=120,  # "5267 days ago" in full
        ),
    },
)

rows = selection.selection.rows if selection is not None else []
if rows:
    picked = int(view[C.PILOT_ID].iloc[rows[0]])
    st.session_state[ui.PILOT_KEY] = picked
    st.switch_page(ui.PAGE_PILOT, query_params={ui.PILOT_QP: str(picked)})

# ------------------------------------------------------------------ decisions
decisions.render_portfolio(pilots=pilots, as_of=as_of, version=version)
