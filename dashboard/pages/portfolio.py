"""Portfolio: every pilot at a glance, with counts, filters and a link to each pilot."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import components as ui
from dashboard import state
from dashboard.charts import RECOMMENDATION_LABELS, portfolio_counts_chart
from dashboard.sections import decisions
from metrics import computations as C
from metrics import governance
from metrics.models import Stage

MAX_LINKS = 60  # pilot links under the table; filters narrow the rest
MAX_STALE_NAMES = 10  # stale pilots named in the warning; more are counted
#: Column widths (px) of the pilots table: at most TABLE_PX in all, what the page
#: offers beside the row selectors at 1280 px wide (a laptop: about 820 px of content
#: beside the sidebar), so the Decision columns are never cut. One-line rows; when a
#: pilot or vendor name is too long for its column, rows wrap (WRAP_WIDTHS): the pilot
#: name may wrap then and gives its width to the cells whose words must stay on one
#: line (wrapped cells break a little before the one-line limit). Reporting discipline
#: is one column: completeness, with ⚠ when stale (the last reported week is on the
#: Pilot page and in the stale warning above).
TABLE_PX = 786
WIDTHS = {
    "Pilot": 144,
    "Vendor": 86,
    "Stage": 72,
    "Recommendation": 124,
    "Primary met": 46,
    "Reported": 62,
    "Decision date": 92,
    "Decision due": 96,  # "5267 days ago" in full
    "Decision": 60,
}
WRAP_WIDTHS = WIDTHS | {
    "Pilot": 130,
    "Vendor": 96,
    "Decision due": 100,
}
WRAP_ROW_HEIGHT = 66  # px: up to 3 lines of wrapped text
HEADER_HEIGHT = 36  # px
MAX_TABLE_ROWS = 15  # taller tables scroll inside
CHAR_PX = 5.8  # average width of a character of the table's 14 px font (measured ~5.7)
CELL_PADDING_PX = 17


def _fits(text: str, width: int) -> bool:
    """True when ``text`` shows on one line in a column ``width`` px wide (estimate)."""
    return len(text) * CHAR_PX + CELL_PADDING_PX <= width


as_of = ui.as_of_picker()
st.title("Portfolio")
ui.unavailable_page_notice()  # an address naming a page this role cannot open lands here
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

# Archived pilots (Admin, `pilotgate pilots archive`) leave the Portfolio; their data is
# kept and this switch shows them again.
n_archived = int(pilots["archived"].fillna(False).astype(bool).sum())
if n_archived and not st.toggle(
    f"Show archived pilots ({n_archived})",
    key="portfolio-show-archived",
    help="Archived pilots keep every value, decision and checklist item.",
):
    pilots = pilots[~pilots["archived"].fillna(False).astype(bool)].reset_index(drop=True)
    if pilots.empty:
        st.info("Every pilot is archived: switch on **Show archived pilots** to see them.")
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
    stale_names = sorted(pilots.loc[pilots[C.STALE].astype(bool), C.PILOT].astype(str))
    if stale_names:
        n_stale = len(stale_names)
        shown_names = stale_names[:MAX_STALE_NAMES]
        more = n_stale - len(shown_names)
        names = ui.join_names(
            [ui.md_escape(x) for x in shown_names] + ([f"{more} more"] if more else [])
        )
        st.warning(
            f"{ui.plural(n_stale, 'pilot')} {'is' if n_stale == 1 else 'are'} stale "
            f"(no value reported in the last 2 complete weeks): {names}."
        )
    overdue = governance.decisions_overdue(
        pilots, decisions.latest_decisions(version, as_of), as_of=as_of
    )
    if not overdue.empty:
        n_over = len(overdue)
        names = ui.join_names(
            [ui.md_escape(x) for x in overdue[C.PILOT].astype(str).head(MAX_STALE_NAMES)]
            + ([f"{n_over - MAX_STALE_NAMES} more"] if n_over > MAX_STALE_NAMES else [])
        )
        st.error(
            f"{ui.plural(n_over, 'decision')} overdue (decision date passed, no decision "
            f"recorded as of {as_of:%Y-%m-%d}): {names}. See Decisions below."
        )
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
# decisions recorded as of the as-of date (a past day shows what was decided then)
latest = decisions.latest_decisions(version, as_of)
recorded = latest.set_index(C.PILOT_ID)[governance.DECISION]
stale = view[C.STALE].astype(bool)
last_week = view["last_week"].map(C.iso_label)
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
        # shown: completeness with ⚠ when stale (Completeness, Stale and Last reported
        # stay in the data for sorting and tests; hidden by column_order)
        "Reported": [
            ("⚠\u00a0" if s_ else "") + ("n/a" if pd.isna(c_) else f"{c_:.0f}%")
            for c_, s_ in zip(view["completeness_pct"].astype("float64"), stale, strict=True)
        ],
        # the last reported week (hidden; ⚠ marks a stale pilot in the Reported cell)
        "Stale": stale,
        "Last reported": [
            (f"⚠\u00a0{w}" if w else "⚠\u00a0none") if s_ else (w or None)
            for w, s_ in zip(last_week.fillna(""), stale, strict=True)
        ],
        "Decision date": decision.dt.date,
        "Decision due": pd.Series(countdown, index=view.index, dtype="object"),
        "Decision": view[C.PILOT_ID].map(recorded).map(decisions.decision_text),
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
# The table fits the page at 1280 px (about 786 px beside the row selectors): short
# headers, each explained by its tooltip. A pilot or vendor name longer than its column
# wraps (taller rows: Streamlit wraps cell text only in rows taller than 64 px) instead
# of being cut.
long_text = any(
    not _fits(str(text), WIDTHS[title])
    for column, title in ((C.PILOT, "Pilot"), ("vendor", "Vendor"))
    for text in view[column].fillna("")
)
row_height = WRAP_ROW_HEIGHT if long_text else None
width = WRAP_WIDTHS if long_text else WIDTHS
selection = st.dataframe(
    table,
    key="portfolio-table",
    hide_index=True,
    placeholder="n/a",
    on_select="rerun",
    selection_mode="single-row",
    row_height=row_height,
    # every row visible without scrolling inside the table, up to MAX_TABLE_ROWS
    height=(HEADER_HEIGHT + min(len(view), MAX_TABLE_ROWS) * row_height + 2)
    if row_height
    else "auto",
    column_order=list(WIDTHS),
    column_config={
        "Pilot": st.column_config.TextColumn("Pilot", width=width["Pilot"]),
        "Vendor": st.column_config.TextColumn("Vendor", width=width["Vendor"]),
        "Stage": st.column_config.TextColumn("Stage", width=width["Stage"]),
        "Recommendation": st.column_config.TextColumn(
            "Recommendation", width=width["Recommendation"]
        ),
        "Primary met": st.column_config.TextColumn(
            "Met",
            width=width["Primary met"],
            help="Primary metrics that met their target / all primary metrics "
            "(guardrails are judged by their margin, not counted here)",
        ),
        "Reported": st.column_config.TextColumn(
            "Reported",
            help="Completeness: weeks reported / weeks expected since the start "
            "(mean over metrics); ⚠ = stale: no value in the last 2 complete weeks "
            "(the last reported week is on the Pilot page)",
            width=width["Reported"],
        ),
        "Decision date": st.column_config.DateColumn(
            "Decision date",
            format="YYYY-MM-DD",
            width=width["Decision date"],
            help="The go/no-go deadline",
        ),
        "Decision due": st.column_config.TextColumn(
            "Due",
            help="Time from the as-of date to the decision date (sort by Decision date)",
            width=width["Decision due"],
        ),
        "Decision": st.column_config.TextColumn(
            "Decision",
            help="The latest recorded decision (go / extend / no-go); — = none yet",
            width=width["Decision"],
        ),
    },
)

ui.csv_download(
    pd.DataFrame(
        {
            "pilot": view[C.PILOT],
            "vendor": view["vendor"],
            "stage": view["stage"],
            "recommendation": view[C.RECOMMENDATION],
            "primary_met": view[C.PRIMARY_MET],
            "primary_total": view[C.PRIMARY_TOTAL],
            "completeness_pct": view["completeness_pct"].astype("float64"),
            "stale": stale,
            "last_week": last_week,
            "decision_date": decision.dt.date,
            "decision": view[C.PILOT_ID].map(recorded),
        }
    ),
    file_name=f"pilotgate-portfolio-{as_of.isoformat()}.csv",
    key="portfolio-download",
    label="Download these pilots (CSV)",
)

rows = selection.selection.rows if selection is not None else []
if rows:
    picked = int(view[C.PILOT_ID].iloc[rows[0]])
    st.session_state[ui.PILOT_KEY] = picked
    st.switch_page(ui.PAGE_PILOT, query_params={ui.PILOT_QP: str(picked)})

# ------------------------------------------------------------------ decisions
decisions.render_portfolio(pilots=pilots, as_of=as_of, version=version)
