"""Vendors (DESIGN §8): one row per vendor across its pilots, a chart comparing them,
and a drill-down to one vendor's pilots. The numbers are
:func:`metrics.vendors.vendor_summary` (formulas in docs/decision-rules.md)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import components as ui
from dashboard import state
from dashboard.charts import vendor_comparison_chart
from metrics import computations as C
from metrics import csvio
from metrics.vendors import NO_VENDOR, STAGES, vendor_pilots

VENDOR_KEY = "vendor_drill"

as_of = ui.as_of_picker()
st.title("Vendors")
st.caption(
    f"Every vendor across its pilots, judged as of {as_of:%a %d %b %Y} ({C.iso_label(as_of)}). "
    "Improvement is each pilot's median over its primary metrics, against its own baseline."
)

version = state.data_version()
with st.spinner("Comparing vendors…"):
    table = state.vendors(version, as_of)
    pilots, metrics = state.evaluation(version, as_of)

if table.empty:
    st.info(
        "**No pilots yet.** Load the demo portfolio with `pilotgate seed demo`, or define "
        "pilots with `pilotgate pilots import FILE`; their vendors are compared here."
    )
    ui.empty_state_links()
    st.stop()


def _stages(row: pd.Series) -> str:
    """``4 / 11 / 4 / 3 / 3``: pilots per stage, in the order of STAGES."""
    return " / ".join(str(int(row[f"stage_{s}"])) for s in STAGES)


st.download_button(
    "Download vendors CSV",
    data=lambda: csvio.to_csv_text(table),  # built on click
    file_name=f"pilotgate-vendors-{as_of.isoformat()}.csv",
    mime="text/csv",
    on_click="ignore",
    key="download-vendors",
    icon=":material/download:",
    help="The same table as `pilotgate export vendors`.",
)
shown = pd.DataFrame(
    {
        "Vendor": table["vendor"],
        "Pilots": table["pilots"],
        "Stages": table.apply(_stages, axis=1),
        "Recommendations": [
            " / ".join(str(int(r[f"recommendation_{k}"])) for k in C.RECOMMENDATIONS)
            for _, r in table.iterrows()
        ],
        "Median improvement %": table["median_improvement_pct"],
        "Targets met": [
            f"{m} / {t}" for m, t in zip(table["targets_met"], table["targets_total"], strict=True)
        ],
        "Reported %": table["reporting_pct"],
        "Stale": table["stale_pilots"],
        "Cost": table["cost"],
        "Value / week": table["estimated_weekly_value"],
    }
)
selection = st.dataframe(
    shown,
    hide_index=True,
    placeholder="n/a",
    key="vendors-table",
    on_select="rerun",
    selection_mode="single-row",
    column_config={
        # about 800 px in all: the table fits beside the sidebar at 1280 px
        "Vendor": st.column_config.TextColumn(width=105, pinned=True),
        "Pilots": st.column_config.NumberColumn(width=45),
        "Stages": st.column_config.TextColumn(
            width=110, help="Pilots per stage: " + " / ".join(STAGES)
        ),
        "Recommendations": st.column_config.TextColumn(
            "Recommended",
            width=120,
            help="Pilots recommended go / extend / no-go / insufficient data",
        ),
        "Median improvement %": st.column_config.NumberColumn(
            "Median impr. %",
            format="%+.1f",
            width=80,
            help="Median over the vendor's pilots of each pilot's median primary-metric "
            "improvement against its own baseline",
        ),
        "Targets met": st.column_config.TextColumn(
            "Targets", width=60, help="Primary metrics at target / all primary metrics"
        ),
        "Reported %": st.column_config.NumberColumn(
            "Reported",
            format="%.0f%%",
            width=65,
            help="Reporting discipline: pilot weeks reported / weeks expected",
        ),
        "Stale": st.column_config.NumberColumn(
            width=42, help="Pilots with no value in the last 2 complete weeks"
        ),
        "Cost": st.column_config.NumberColumn(format="%.6g", width=65),
        "Value / week": st.column_config.NumberColumn(
            "Value/wk",
            format="%.6g",
            width=70,
            help="Estimated value per week (pilots with a value model)",
        ),
    },
)
st.caption("Select a row (or pick a vendor below) to see its pilots. Empty cells are n/a.")

st.plotly_chart(
    vendor_comparison_chart(table), key="vendors-chart", config={"displayModeBar": False}
)

# ------------------------------------------------------------------ drill-down
st.subheader("A vendor's pilots")
names = [str(v) for v in table["vendor"]]
rows = selection.selection.rows if selection is not None else []
# adopt a row picked in the table once (the selectbox may move on from it afterwards)
picked_row = names[rows[0]] if rows else None
if picked_row != st.session_state.get("_vendor_row"):
    st.session_state["_vendor_row"] = picked_row
    if picked_row is not None:
        st.session_state[VENDOR_KEY] = picked_row
if st.session_state.get(VENDOR_KEY) not in names:
    st.session_state[VENDOR_KEY] = names[0]
vendor = st.selectbox("Vendor (type to search)", names, key=VENDOR_KEY)
mine = vendor_pilots(pilots, metrics, vendor)
label = "pilots without a vendor" if vendor == NO_VENDOR else ui.md_escape(vendor)
st.caption(f"{ui.plural(len(mine), 'pilot')} of {label}. Select a row to open the pilot.")
picked = st.dataframe(
    pd.DataFrame(
        {
            "Pilot": mine[C.PILOT],
            "Stage": mine["stage"],
            "Recommendation": mine[C.RECOMMENDATION].map(ui.recommendation_text),
            "Improvement %": mine[C.IMPROVEMENT_PCT],
            "Met": [
                f"{m} / {t}"
                for m, t in zip(mine[C.PRIMARY_MET], mine[C.PRIMARY_TOTAL], strict=True)
            ],
            "Reported %": mine[C.COMPLETENESS_PCT],
            "Stale": mine[C.STALE].map({True: "⚠ stale", False: ""}),
            "Cost": mine[C.COST],
            "Value / week": mine[C.ESTIMATED_WEEKLY_VALUE],
        }
    ),
    hide_index=True,
    placeholder="n/a",
    key=f"vendor-pilots-{vendor}",
    on_select="rerun",
    selection_mode="single-row",
    column_config={
        "Improvement %": st.column_config.NumberColumn(format="%+.1f"),
        "Reported %": st.column_config.NumberColumn(format="%.0f%%"),
        "Cost": st.column_config.NumberColumn(format="%.6g"),
        "Value / week": st.column_config.NumberColumn(format="%.6g"),
    },
)
chosen = picked.selection.rows if picked is not None else []
if chosen:
    pid = int(mine[C.PILOT_ID].iloc[chosen[0]])
    st.session_state[ui.PILOT_KEY] = pid
    st.switch_page(ui.PAGE_PILOT, query_params={ui.PILOT_QP: str(pid)})
