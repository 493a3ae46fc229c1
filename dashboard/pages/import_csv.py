"""Import: upload a measurements CSV, see every problem, write it only when it is clean."""

from __future__ import annotations

import hashlib

import pandas as pd
import sqlalchemy as sa
import streamlit as st

from dashboard import components as ui
from dashboard import state
from metrics import computations as C
from metrics import csvio
from metrics.db import session_scope

#: The Action column in the words of the tiles and the summary.
ACTION_WORDS = {csvio.CREATE: "created", csvio.UPDATE: "updated", csvio.UNCHANGED: "unchanged"}


def _where(error: csvio.RowError) -> str:
    """The Line cell of a problem: its line number, ``header``, or ``file``."""
    if error.line is None:
        return "file"
    if error.line == 1 and error.column is not None:
        return "header"
    return str(error.line)


def _row_height(longest: int) -> int | None:
    """Row height (px) that shows a problem of ``longest`` characters in full."""
    lines = -(-longest // 60)
    # Streamlit wraps cell text only in rows taller than 4rem (64 px).
    return None if lines <= 1 else min(max(22 * lines + 14, 70), 240)


def _write_label(n: int) -> str:
    return f"Write {n} row{'s' if n != 1 else ''}"


as_of = ui.as_of_picker()
st.title("Import measurements")
ui.show_flash()

version = state.data_version()
pilots = state.pilots(version)
metrics = state.metrics(version)

if pilots.empty:
    st.warning(
        "No pilots are defined yet, so every row would be refused (a row must name an "
        "existing pilot and one of its metric keys). Seed the demo portfolio with "
        "`pilotgate seed demo`, or define pilots with `pilotgate pilots import FILE`."
    )

# ------------------------------------------------------------------ expected format
template_week = C.iso_label(C.last_complete_week(as_of))
if metrics.empty:
    example_pilot, example_keys = "Helpdesk triage assistant", ["resolution_time", "error_rate"]
else:
    first = metrics[metrics[C.PILOT] == metrics[C.PILOT].iloc[0]]
    example_pilot, example_keys = str(first[C.PILOT].iloc[0]), list(first[C.KEY])

long_template = pd.DataFrame(
    {
        "pilot": [example_pilot] * len(example_keys),
        "metric": example_keys,
        "week": [template_week] * len(example_keys),
        "value": [None] * len(example_keys),
        "note": [""] * len(example_keys),
    }
)
wide_template = pd.DataFrame(
    [{"pilot": example_pilot, "week": template_week, **dict.fromkeys(example_keys)}]
)

with st.expander("Expected format and templates", expanded=False):
    st.markdown(
        "**Long form** (canonical): one row per pilot, metric and week. Header names are "
        "case-insensitive, any column order; `note` is optional."
    )
    st.code(
        "pilot,metric,week,value,note\n"
        "Helpdesk triage assistant,resolution_time,2012-W03,61.2,\n"
        "Helpdesk triage assistant,resolution_time,2012-01-23,58.4,holiday week",
        language="text",
    )
    st.markdown(
        "**Wide form**: one row per pilot and week, one column per metric key; an empty "
        "cell means no value."
    )
    st.code(
        "pilot,week,resolution_time,error_rate\n"
        "Helpdesk triage assistant,2012-W03,61.2,4.1\n"
        "Helpdesk triage assistant,2012-W04,58.4,",
        language="text",
    )
    st.markdown(
        "- `pilot`: the pilot's name exactly; `metric`: its metric key.\n"
        "- `week`: an ISO week label (`2012-W03`) or any date in the week (`2012-01-18`).\n"
        "- `value`: a number with a dot decimal, in the metric's unit, inside its allowed "
        "range; an empty value is never read as 0.\n"
        "- All or nothing: if any row is wrong, nothing is written and every problem is "
        "listed with its line and column."
    )
    t1, t2 = st.columns(2)
    t1.download_button(
        "Download long-form template",
        data=csvio.to_csv_text(long_template),
        file_name="pilotgate-measurements-template.csv",
        mime="text/csv",
        on_click="ignore",
        key="template-long",
        icon=":material/description:",
    )
    t2.download_button(
        "Download wide-form template",
        data=csvio.to_csv_text(wide_template),
        file_name="pilotgate-measurements-wide-template.csv",
        mime="text/csv",
        on_click="ignore",
        key="template-wide",
        icon=":material/description:",
    )

# ------------------------------------------------------------------ upload and check
uploaded = st.file_uploader(
    "Measurements CSV", type=["csv"], key="import-file", help="UTF-8, comma-separated."
)
if uploaded is None:
    st.caption("Upload a file to see its validation report. Nothing is written until you confirm.")
    st.stop()

data = uploaded.getvalue()
digest = hashlib.sha256(data).hexdigest()[:16]
if st.session_state.get("import_written") == digest:
    st.caption(
        f"{uploaded.name} has been imported. Upload another file to import more, or "
        "see the values on the Pilot page."
    )
    st.page_link(ui.PAGE_PILOT, label="Open the Pilot page", icon=":material/query_stats:")
    st.stop()
report = state.import_preview(version, data, uploaded.name)

form_text = {
    "long": "long form (pilot, metric, week, value, note)",
    "wide": "wide form (pilot, week, one column per metric)",
}.get(report.form, "not recognised")
st.markdown(f"**{ui.md_escape(uploaded.name)}** — detected: {form_text}.")

if report.errors:
    n = len(report.errors)
    st.error(
        f"{n} problem{'s' if n != 1 else ''} found: nothing will be written. "
        "Fix the file and upload it again."
    )
    # Problems with the file as a whole (or its header) come first, in full: they are
    # usually long and explain every other line.
    for e in report.errors:
        if _where(e) in ("file", "header"):
            st.error(f"**{_where(e).capitalize()}:** {ui.md_escape(e.reason)}")
    longest = max(len(e.reason) for e in report.errors)
    st.dataframe(
        pd.DataFrame(
            {
                "Line": [_where(e) for e in report.errors],
                "Column": [e.column or "" for e in report.errors],
                "Problem": [e.reason for e in report.errors],
            }
        ),
        hide_index=True,
        placeholder="n/a",
        key=f"import-errors-{digest}",
        column_config={
            "Line": st.column_config.TextColumn(
                "Line", width=70, help="Line in the file (header = 1), or the whole file"
            ),
            "Column": st.column_config.TextColumn("Column", width=110),
            "Problem": st.column_config.TextColumn("Problem", width="large"),
        },
        # Cells wrap only in rows taller than one line: size the rows to the longest
        # problem (about 60 characters a line in the "large" column).
        row_height=_row_height(longest),
    )
    st.stop()

rows = report.rows
if rows.empty:
    st.warning("The file has a header but no values to import.")
    st.stop()

# One vocabulary on the page: created / updated / unchanged (tiles, text, Action column).
n_rows = len(rows)
to_write = report.created + report.updated
c1, c2, c3, c4 = st.columns(4)
c1.metric("Rows", n_rows)
c2.metric("Created", report.created)
c3.metric("Updated", report.updated)
c4.metric("Unchanged", report.unchanged)
counts_text = (
    f"{n_rows} row{'s' if n_rows != 1 else ''}: {report.created} created, "
    f"{report.updated} updated, {report.unchanged} unchanged."
)
if to_write:
    counts_text += f" Nothing is written until you press **{_write_label(n_rows)}**."
st.success(f"No problems found. {counts_text}")
st.dataframe(
    pd.DataFrame(
        {
            "Line": rows["line"],
            "Pilot": rows["pilot"],
            "Metric": rows["metric"],
            "Week": rows["week_label"],
            "Value": rows["value"],
            "Note": rows["note"],
            "Action": rows["action"].map(ACTION_WORDS).fillna(rows["action"]),
        }
    ),
    hide_index=True,
    placeholder="n/a",
    key=f"import-rows-{digest}",
    column_config={"Value": st.column_config.NumberColumn("Value", format="plain")},
)

if to_write == 0:
    st.info("Every value in this file is already stored: there is nothing to write.")
    st.stop()

if st.button(_write_label(n_rows), type="primary", key=f"import-write-{digest}"):
    try:
        with st.spinner("Writing…"), session_scope(state.get_engine()) as s:
            result = csvio.import_measurements(
                session=s,
                actor=state.current_actor(),
                data=data,
                dry_run=False,
                source=uploaded.name,
            )
            if not result.ok:
                s.rollback()
    except sa.exc.OperationalError:
        st.error("Not written: the database is busy or unreachable. Try again in a moment.")
        st.stop()
    if not result.ok:
        st.error("Not written: " + ui.md_escape("; ".join(str(e) for e in result.errors)))
        st.stop()
    state.after_write()
    st.session_state["import_written"] = digest
    ui.flash(f"Imported {uploaded.name}: {result.summary_line()}.")
    st.rerun()
