"""Import: upload a measurements CSV, see every parsed row, every problem and every stored
value it would change; write it only when it is clean (and the changes are confirmed)."""

from __future__ import annotations

import hashlib

import pandas as pd
import sqlalchemy as sa
import streamlit as st

from dashboard import components as ui
from dashboard import state
from metrics import computations as C
from metrics import csvio
from metrics.db import failure_reason, session_scope
from metrics.models import Role

#: The Action column in the words of the tiles and the summary.
ACTION_WORDS = {csvio.CREATE: "created", csvio.UPDATE: "updated", csvio.UNCHANGED: "unchanged"}
#: Reading choices: None = decided from the file (or asked when it reads two ways).
DECIMAL_CHOICES = {
    None: "Detect from the file",
    csvio.DECIMAL_DOT: "Dot: 1,234.5",
    csvio.DECIMAL_COMMA: "Comma: 1.234,5",
}
DATE_CHOICES = {
    None: "Detect from the file",
    csvio.DATE_DMY: "Day first: 31/12/2026",
    csvio.DATE_MDY: "Month first: 12/31/2026",
}
#: Notices (e.g. repeated header lines) shown one by one; more are counted.
MAX_NOTICES = 10


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


def _overwrite_label(n: int) -> str:
    return f"Overwrite {n} existing value{'s' if n != 1 else ''}"


def _read_as(report: csvio.ImportReport) -> str:
    """How the file was read, in words: delimiter, decimal separator, date order."""
    parts = [f"{csvio.DELIMITER_NAMES.get(report.delimiter, 'comma')}-separated"]
    if report.decimal:
        parts.append(f"decimal {report.decimal}")
    if report.date_format:
        parts.append("dates " + {"dmy": "day first", "mdy": "month first"}[report.date_format])
    return ", ".join(parts)


def _progress_bar():
    """The callback ``(fraction 0..1, text)`` that draws and moves a progress bar where
    it is first called (so a preview kept from an earlier run draws none)."""
    bar = None

    def report(fraction: float, words: str) -> None:
        nonlocal bar
        value = min(max(fraction, 0.0), 1.0)
        if bar is None:
            bar = st.progress(value, text=words)
        else:
            bar.progress(value, text=words)

    return report


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
        "- Comma, semicolon or tab separated, UTF-8 (a spreadsheet's *CSV UTF-8*).\n"
        "- `pilot`: the pilot's name exactly; `metric`: its metric key.\n"
        "- `week`: an ISO week label (`2012-W03`) or any date in the week (`2012-01-18`; "
        "`18/01/2012` when the whole column reads one way, else choose the date order).\n"
        "- `value`: a number in the metric's unit, inside its allowed range: `61.2` or "
        "`61,2`, thousands separators allowed (`1,234.5`, `1.234,5`, `1 234`); a percent "
        "sign only on % metrics (`12,5 %` is 12.5). An empty value is never read as 0.\n"
        "- All or nothing: if any row is wrong, nothing is written and every problem is "
        "listed with its line and column. Values already stored are overwritten only "
        "when you confirm each change."
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
    "Measurements CSV",
    type=["csv", "tsv", "txt"],
    key="import-file",
    help="UTF-8; comma, semicolon or tab separated.",
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

o1, o2 = st.columns(2)
decimal = o1.selectbox(
    "Decimal separator",
    options=list(DECIMAL_CHOICES),
    format_func=DECIMAL_CHOICES.get,
    key="import-decimal",
    help="Detected from the file; choose it when a number such as 1,234 reads two ways.",
)
date_format = o2.selectbox(
    "Dates like 03/04/2026",
    options=list(DATE_CHOICES),
    format_func=DATE_CHOICES.get,
    key="import-date-format",
    help="Decided from the whole column; choose it when every date reads both ways.",
)

distant_key = f"import-allow-distant-{digest}"
allow_distant = bool(st.session_state.get(distant_key, False))
with st.status(f"Checking {uploaded.name}…", expanded=True) as checking:
    report = state.import_preview(
        version,
        data,
        uploaded.name,
        decimal=decimal,
        date_format=date_format,
        progress=_progress_bar(),
        allow_distant_weeks=allow_distant,
    )
    checking.update(
        label=f"Checked {uploaded.name}: {report.summary_line()}",
        state="error" if report.errors else "complete",
        expanded=False,
    )

form_text = {
    "long": "long form (pilot, metric, week, value, note)",
    "wide": "wide form (pilot, week, one column per metric)",
}.get(report.form, "not recognised")
st.markdown(f"**{ui.md_escape(uploaded.name)}** — detected: {form_text}.")
st.caption(f"Read as: {_read_as(report)}.")
if report.ask_distant_weeks or allow_distant:
    # DESIGN §6: a week years away from the pilot's dates is refused unless confirmed
    # (the CLI's --allow-distant-weeks); the check is csvio's, shared by every door.
    st.checkbox(
        "Allow distant weeks",
        key=distant_key,
        help="Weeks more than 156 weeks before a pilot's start date or more than 52 weeks "
        "after its decision date are almost always a typo in the year (2016 for 2026). "
        "Tick only when every week named below is right.",
    )
for note in report.notices[:MAX_NOTICES]:
    st.info(f"Line {note.line}: {ui.md_escape(note.reason)}")
if len(report.notices) > MAX_NOTICES:
    st.info(f"… and {len(report.notices) - MAX_NOTICES} more lines like these.")

if report.errors:
    n = len(report.errors)
    choices = [
        name
        for name, asked in (
            ("the **Decimal separator**", report.ask_decimal),
            ("**Dates like 03/04/2026**", report.ask_date_format),
            ("**Allow distant weeks** (if the weeks named are right)", report.ask_distant_weeks),
        )
        if asked
    ]
    # The next step in the same words as the warnings below: a reading choice when the
    # file reads two ways (the page checks it again), else a corrected file.
    next_step = (
        f"Choose {' and '.join(choices)} above: the file is checked again at once. If "
        "problems remain, fix the file and upload it again."
        if choices
        else "Fix the file and upload it again."
    )
    st.error(f"{n} problem{'s' if n != 1 else ''} found: nothing will be written. {next_step}")
    if report.ask_decimal:
        st.warning(
            "Some numbers read two ways: choose the **Decimal separator** above "
            "(dot or comma) and the file is checked again."
        )
    if report.ask_date_format:
        st.warning(
            "Every date reads both day-first and month-first: choose **Dates like "
            "03/04/2026** above and the file is checked again."
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
units = (
    {
        (str(p_), str(k)): str(u or "")
        for p_, k, u in metrics[[C.PILOT, C.KEY, C.UNIT]].itertuples(index=False)
    }
    if not metrics.empty
    else {}
)


def _units_of(pilot_col: pd.Series, metric_col: pd.Series) -> pd.Series:
    """The unit of each row's metric ("" when it has none)."""
    return pd.Series(
        [units.get((str(p_), str(k)), "") for p_, k in zip(pilot_col, metric_col, strict=True)],
        index=pilot_col.index,
        dtype=object,
    )


def _order(frame: pd.DataFrame, unit_values: pd.Series) -> list[str]:
    """Columns to show: the Unit column only when the rows have several units (one
    unit is in the value headers)."""
    keep_unit = len(set(unit_values)) > 1
    return [c for c in frame.columns if c != "Unit" or keep_unit]


def _value_column(label: str, unit_values: pd.Series, help_text: str):
    """A stored number as it is (6 significant digits, no float noise), its unit in the
    header when every row shares one."""
    distinct = set(unit_values)
    unit = next(iter(distinct)) if len(distinct) == 1 else ""
    return st.column_config.NumberColumn(
        f"{label} ({unit})" if unit else label, format=ui.VALUE_FORMAT, help=help_text
    )


row_units = _units_of(rows["pilot"], rows["metric"])
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
preview = pd.DataFrame(
    {
        "Line": rows["line"],
        "Pilot": rows["pilot"],
        "Metric": rows["metric"],
        "Week": rows["week_label"],
        "Value": rows["value"],
        "Unit": row_units,
        "Note": rows["note"],
        "Action": rows["action"].map(ACTION_WORDS).fillna(rows["action"]),
    }
)
st.dataframe(
    preview,
    hide_index=True,
    placeholder="n/a",
    key=f"import-rows-{digest}",
    column_order=_order(preview, row_units),
    column_config={
        "Value": _value_column("Value", row_units, "The value as it will be stored"),
        "Unit": st.column_config.TextColumn("Unit", help="The metric's unit", width=60),
    },
)

if to_write == 0:
    st.info("Every value in this file is already stored: there is nothing to write.")
    st.stop()

if not state.can(Role.editor):
    st.info("You can check files here; writing them needs the editor role.")
    st.stop()

# ------------------------------------------------------------------ stored values it changes
changes = report.changes
n_changes = len(changes)
# The confirmation belongs to exactly these changes: if a rerun finds others (someone
# wrote meanwhile), the checkbox and the button are new widgets, unticked, unclicked.
changes_key = hashlib.sha256(changes.to_csv(index=False).encode()).hexdigest()[:12]
reason = ""
can_write = True
if n_changes:
    st.warning(
        f"{n_changes} stored value{'s' if n_changes != 1 else ''} would change (old → new "
        "below). Nothing is overwritten unless you confirm, with a reason kept in the "
        "history of each value."
    )
    change_units = _units_of(changes[csvio.PILOT_COL], changes[csvio.METRIC_COL])
    change_table = pd.DataFrame(
        {
            "Line": changes[csvio.LINE_COL],
            "Pilot": changes[csvio.PILOT_COL],
            "Metric": changes[csvio.METRIC_COL],
            "Week": changes[csvio.WEEK_LABEL_COL],
            "Stored value": changes[csvio.OLD_VALUE_COL],
            "New value": changes[csvio.VALUE_COL],
            "Unit": change_units,
            "Stored note": changes[csvio.OLD_NOTE_COL],
            "New note": changes[csvio.NOTE_COL],
        }
    )
    st.dataframe(
        change_table,
        hide_index=True,
        placeholder="n/a",
        key=f"import-changes-{digest}",
        column_order=_order(change_table, change_units),
        column_config={
            "Stored value": _value_column("Stored value", change_units, "The value stored now"),
            "New value": _value_column("New value", change_units, "The value the file gives"),
            "Unit": st.column_config.TextColumn("Unit", help="The metric's unit", width=60),
        },
    )
    confirmed = st.checkbox(
        _overwrite_label(n_changes), key=f"import-confirm-{digest}-{changes_key}"
    )
    reason = st.text_input(
        "Reason for the change (required)",
        key=f"import-reason-{digest}",
        max_chars=300,
        placeholder="e.g. vendor corrected the March figures",
    )
    can_write = confirmed and bool(reason.strip())
    if not can_write:
        st.caption(f"To write, tick **{_overwrite_label(n_changes)}** and give a reason.")

# What this person saw before pressing Write: the changes shown by the previous run.
# If the stored values changed meanwhile (someone else wrote some of these weeks), the
# click writes nothing and says who changed what; the new changes need a new confirmation.
shown_key = f"import-shown-changes-{digest}"
shown_before = st.session_state.get(shown_key)
st.session_state[shown_key] = changes
# The run after a click that finds other changes than the person saw keeps the button
# enabled: Streamlit discards a click on a widget that is disabled when it is rendered,
# and the page must answer that click with what changed (it writes nothing either way).
race = shown_before is not None and not csvio.same_changes(shown_before, changes)
clicked = st.button(
    _write_label(n_rows),
    type="primary",
    key=f"import-write-{digest}",
    disabled=not can_write and not race,
)
if clicked and race:
    with session_scope(state.get_engine()) as s:
        who = csvio.changed_meanwhile(s, shown_before, changes, rows)
    st.error(
        ui.refusal(
            "Not written",
            "the stored values changed while you were checking this file: "
            + " ".join(who)
            + " Check the values that would change above, and confirm again.",
        )
    )
    st.stop()
if clicked and can_write:
    with st.status(f"Importing {uploaded.name}…", expanded=True) as writing:
        try:
            with session_scope(state.get_engine()) as s:
                result = csvio.import_measurements(
                    session=s,
                    actor=state.current_actor(),
                    data=data,
                    source=uploaded.name,
                    update=n_changes > 0,
                    reason=reason.strip() or None,
                    decimal=decimal,
                    date_format=date_format,
                    # always the changes the person saw (none = none may appear)
                    expected_changes=shown_before if shown_before is not None else changes,
                    progress=_progress_bar(),
                    allow_distant_weeks=allow_distant,
                )
                if not result.ok:
                    s.rollback()
        except (sa.exc.OperationalError, sa.exc.InternalError) as exc:
            writing.update(label="Not written", state="error")
            st.error(f"Not written: {failure_reason(exc)}.")
            st.stop()
        writing.update(
            label=f"{uploaded.name}: {result.summary_line()}",
            state="complete" if result.ok else "error",
            expanded=not result.ok,
        )
    if not result.ok:
        problem = "; ".join(str(e) for e in result.errors) or (
            "stored values changed since the preview; check the values that would change again"
        )
        st.error(ui.refusal("Not written", problem))
        st.stop()
    state.after_write()
    st.session_state["import_written"] = digest
    ui.flash(f"Imported {uploaded.name}: {result.summary_line()}.")
    st.rerun()
