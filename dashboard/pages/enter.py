"""Enter: one week's values for one pilot, one input per metric, saved in one transaction."""

from __future__ import annotations

import math
from datetime import date, timedelta
from decimal import Decimal

import pandas as pd
import sqlalchemy as sa
import streamlit as st

from dashboard import components as ui
from dashboard import state
from dashboard.charts import with_unit
from metrics import computations as C
from metrics import csvio, store
from metrics.db import failure_reason, session_scope
from metrics.isoweek import monday_of

RECENT_WEEKS = 12
OTHER_WEEK = "other"

ui.pilot_from_query()  # /enter?pilot=<id> preselects that pilot, as on the Pilot page
as_of = ui.as_of_picker()
st.title("Enter weekly values")
ui.show_flash()

version = state.data_version()
pilots = state.pilots(version)
if pilots.empty:
    st.info(
        "No pilots to enter values for. Seed the demo portfolio with `pilotgate seed demo`, "
        "or define pilots with `pilotgate pilots import FILE`."
    )
    st.page_link(
        ui.PAGE_IMPORT, label="Or import measurements from CSV", icon=":material/upload_file:"
    )
    st.stop()


#: Value fields are text, read by the import's own number reader
#: (:func:`metrics.csvio.parse_typed_number`): a browser's number field turned "4,2"
#: into 42 and wrote it at once; a text field keeps what was typed, and the page shows
#: the number it reads before anything is written.
VALUE_PLACEHOLDER = "not entered"


# ------------------------------------------------------------------ pilot and week
left, right = st.columns(2)
with left:
    pilot_id = ui.pilot_picker(pilots, key="enter_pilot")
if pilot_id is None:  # a link naming no pilot (the picker said so): nothing to enter
    st.stop()
ui.pilot_to_query(pilot_id)

last_complete = C.last_complete_week(as_of).date()
this_week = monday_of(as_of)
week_options: list[date | str] = []
if this_week != last_complete:
    week_options.append(this_week)
week_options += [last_complete - timedelta(weeks=i) for i in range(RECENT_WEEKS)]
week_options.append(OTHER_WEEK)


def _week_option_label(opt: date | str) -> str:
    if opt == OTHER_WEEK:
        return "Another week…"
    label = ui.week_choice_label(opt)
    if opt == this_week and opt != last_complete:
        label += " · in progress"
    return label


with right:
    choice = st.selectbox(
        "ISO week",
        week_options,
        index=week_options.index(last_complete),
        format_func=_week_option_label,
        key="enter_week",
        help=f"Weeks up to the as-of date ({as_of:%Y-%m-%d}); default: the last complete week.",
    )
    if choice == OTHER_WEEK:
        day = st.date_input(
            "Any day in the week",
            value=last_complete - timedelta(weeks=RECENT_WEEKS),
            min_value=ui.EARLIEST_AS_OF,
            max_value=as_of,
            key="enter_other_day",
            format="YYYY-MM-DD",
        )
        week = monday_of(day if isinstance(day, date) else last_complete)
        st.caption(f"Week: {ui.week_choice_label(week)}")
    else:
        week = choice

metrics = state.metrics(version, pilot_id)
if metrics.empty:
    st.info("This pilot has no metrics defined yet (`pilotgate pilots import FILE`).")
    st.stop()

all_values = state.measurements(version, pilot_id)
this = all_values[all_values[C.WEEK] == pd.Timestamp(week)].set_index(C.METRIC_ID)
week_text = C.iso_label(week)

pilot_row = pilots[pilots[C.PILOT_ID] == pilot_id].iloc[0]
# The import's rule for weeks far from the pilot's dates (store.distant_weeks): such a
# week (2016 typed for 2026) is refused unless confirmed in the form below.
_distant, _why = store.distant_weeks(
    pd.Series([pd.Timestamp(week)]),
    pd.Series([pilot_row[C.START_DATE]]),
    pd.Series([pilot_row[C.DECISION_DATE]]),
)
distant_reason = _why[0] if bool(_distant[0]) else None
if distant_reason:
    st.warning(f"{ui.md_escape(distant_reason[:1].upper() + distant_reason[1:])}.")
period = C.week_period(week, pilot_row[C.START_DATE], pilot_row[C.DECISION_DATE])
if period == C.POST_DECISION_PERIOD:  # DESIGN §4: stored and drawn, never judged
    period += " (after the decision date: stored and charted, not part of the verdict)"
st.caption(
    f"{ui.week_choice_label(week)} is in the {period} of {ui.md_escape(pilot_row[C.PILOT])}. "
    f"{len(this)} of {len(metrics)} metrics already have a value for this week. "
    "Leave a field empty to keep it as it is."
)


recent_weeks = [week - timedelta(weeks=i) for i in range(5, -1, -1)]
recent = all_values[all_values[C.WEEK].isin(pd.to_datetime(recent_weeks))]
with st.expander("Recent weeks (context for typing)", expanded=False):
    grid = (
        recent.pivot_table(index=C.METRIC_ID, columns=C.WEEK, values=C.VALUE, aggfunc="last")
        .reindex(index=list(metrics[C.METRIC_ID]), columns=pd.to_datetime(recent_weeks))
        .rename(columns=lambda w: C.iso_label(w))
    )
    grid.index = [
        f"{lbl} ({u})" if u else lbl
        for lbl, u in zip(metrics[C.LABEL], metrics[C.UNIT].fillna(""), strict=True)
    ]
    st.dataframe(grid, placeholder="—", key=f"enter-recent-{pilot_id}-{week.isoformat()}")
    st.caption("— = no value reported for that week.")


def _exact(x: float, unit: str) -> str:
    """A stored value as typed (up to 6 significant digits), with its unit."""
    text = f"{x:.6g}"
    return f"{text}{unit}" if unit == "%" else f"{text} {unit}".strip()


def _typical(mid: int) -> float | None:
    """Median of the metric's last 8 reported weeks other than the chosen one."""
    vals = all_values[(all_values[C.METRIC_ID] == mid) & (all_values[C.WEEK] != pd.Timestamp(week))]
    vals = vals.sort_values(C.WEEK)[C.VALUE].tail(8)
    return float(vals.median()) if len(vals) >= 3 else None


def _difference(new: float, old: float) -> float:
    """``new - old`` without binary noise: 4.12345 - 4.1 is 0.02345, not 0.0234500…04."""
    return float(Decimal(repr(new)) - Decimal(repr(old)))


def _existing(mid: int) -> float | None:
    if mid in this.index:
        return float(this.at[mid, C.VALUE])
    return None


# ------------------------------------------------------------------ the form
key_base = f"{pilot_id}-{week.isoformat()}"
# After a save the fields start empty again: a new generation gives them new keys
# (the browser keeps a field's value while its key stays the same).
gen_key = f"enter-generation-{key_base}"
generation = int(st.session_state.get(gen_key, 0))
suffix = f"-v{generation}" if generation else ""

# Optimistic concurrency: a save compares with the version of each value this session
# last *showed* (the run before the Save click), not with what this run reads: if
# someone else saved meanwhile, the store refuses and names their value.
seen_key = f"enter-seen-{key_base}"
shown_versions: dict[int, int | None] = {
    int(mid): (int(this.at[int(mid), "version"]) if int(mid) in this.index else None)
    for mid in metrics[C.METRIC_ID]
}
seen_before: dict[int, int | None] = st.session_state.get(seen_key) or {}
expected_versions = {mid: seen_before.get(mid, v) for mid, v in shown_versions.items()}
st.session_state[seen_key] = shown_versions
had_values = any(v is not None for v in (*shown_versions.values(), *expected_versions.values()))

inputs: dict[int, str] = {}
deletes: dict[int, bool] = {}
with st.form(key=f"enter-form-{key_base}", enter_to_submit=False):
    for _, m in metrics.iterrows():
        mid = int(m[C.METRIC_ID])
        unit = m[C.UNIT] or ""
        lo = None if pd.isna(m["min_value"]) else float(m["min_value"])
        hi = None if pd.isna(m["max_value"]) else float(m["max_value"])
        allowed = (
            f"{with_unit(lo, unit)} to {with_unit(hi, unit)}"
            if lo is not None and hi is not None
            else f"at least {with_unit(lo, unit)}"
            if lo is not None
            else f"at most {with_unit(hi, unit)}"
            if hi is not None
            else "any number"
        )
        c1, c2 = st.columns([3, 2], vertical_alignment="bottom")
        with c1:
            # The allowed range is checked on save (all or nothing, with a message
            # naming the field), not by the widget: Streamlit silently drops an
            # out-of-range number, which would save the other fields without it.
            inputs[mid] = st.text_input(
                ui.md_escape(f"{m[C.LABEL]} ({unit})" if unit else m[C.LABEL]),
                value="",
                placeholder=VALUE_PLACEHOLDER,
                key=f"enter-value-{pilot_id}-{mid}-{week.isoformat()}{suffix}",
                help=(
                    f"Allowed: {allowed}. Target {with_unit(m[C.TARGET], unit)}; "
                    + ("lower is better." if m[C.DIRECTION] == C.LOWER else "higher is better.")
                    + " Type it as you write it: 4,2 or 4.2, 1.234,5 or 1,234.5"
                    + (", with or without %." if unit == "%" else f", with or without {unit}.")
                ),
            )
        old = _existing(mid)
        if old is None:
            now_text = f"No value for {week_text} yet."
        else:
            who = this.at[mid, "entered_by"] or "?"
            old_note = this.at[mid, "note"]
            now_text = (
                f"Now: **{_exact(old, unit)}** (by {ui.md_escape(who)}, "
                f"version {int(this.at[mid, 'version'])})"
                + (f" — “{ui.md_escape(old_note)}”" if old_note else "")
            )
        c2.caption(f"{now_text}  \nAllowed: {allowed}.")
        if old is not None or expected_versions[mid] is not None:
            deletes[mid] = c2.checkbox(
                "Delete this value",
                key=f"enter-delete-{pilot_id}-{mid}-{week.isoformat()}{suffix}",
                help="Removes the value; it stays in its history and can be restored on the "
                "Pilot page. Needs a reason for the correction.",
            )
    note = st.text_input(
        "Note (optional)",
        key=f"enter-note-{key_base}{suffix}",
        max_chars=1000,
        help="Stored with every value saved now; empty keeps each value's existing note.",
    )
    reason = ""
    if had_values:
        reason = st.text_input(
            "Reason for the correction",
            key=f"enter-reason-{key_base}{suffix}",
            max_chars=store.MAX_REASON_CHARS,
            placeholder="e.g. typo: 6.12 typed instead of 61.2",
            help="Required when you change or delete a value that already exists; kept in "
            "the value's history (Pilot page, and `pilotgate export revisions`).",
        )
    confirm_unusual = st.checkbox(
        "Save values that look unusual",
        key=f"enter-confirm-unusual-{key_base}{suffix}",
        help="A value 3 times (or a third of) the metric's recent median is only saved "
        "once you tick this: check it first (a decimal typed wrong?).",
    )
    confirm_distant = False
    if distant_reason:
        confirm_distant = st.checkbox(
            "This week is right although it is far from the pilot's dates",
            key=f"enter-confirm-distant-{key_base}{suffix}",
        )
    b1, b2, _ = st.columns([1, 1, 4])
    preview = b1.form_submit_button("Preview changes", key=f"enter-preview-{key_base}")
    save = b2.form_submit_button("Save", type="primary", key=f"enter-save-{key_base}")

if not (preview or save):
    st.stop()

# ------------------------------------------------------------------ what will change
units_of = dict(zip(metrics[C.METRIC_ID].astype(int), metrics[C.UNIT].fillna(""), strict=True))
parsed = {
    mid: csvio.parse_typed_number(text, units_of.get(mid, "")) for mid, text in inputs.items()
}
typed = {mid: text.strip() for mid, text in inputs.items() if text.strip()}
entered = {mid: p.value for mid, p in parsed.items() if p.value is not None}
to_delete = {mid for mid, ticked in deletes.items() if ticked}
labels = metrics.set_index(C.METRIC_ID)
problems: list[str] = [
    f"{labels.at[mid, C.LABEL]}: {p.problem}." for mid, p in parsed.items() if p.problem
]
if problems:
    st.error("Not saved. " + " ".join(ui.md_escape(x) for x in problems))
    st.stop()
if not entered and not to_delete:
    st.warning("Nothing entered: type at least one value (or tick Delete), then save.")
    st.stop()

unusual: list[str] = []
corrected: list[str] = []
planned: list[tuple[str, int, float | None, str]] = []  # (action, metric_id, value, note)
changes = []
for mid in labels.index:
    mid = int(mid)
    if mid not in entered and mid not in to_delete:
        continue
    m = labels.loc[mid]
    unit = m[C.UNIT] or ""
    shown_label = f"{m[C.LABEL]} ({unit})" if unit else m[C.LABEL]
    old = _existing(mid)
    old_note = str(this.at[mid, "note"] or "") if old is not None else ""
    if mid in to_delete:
        if mid in entered:
            problems.append(
                f"{m[C.LABEL]}: either type a new value or tick Delete this value, not both."
            )
            continue
        if expected_versions[mid] is not None:
            corrected.append(m[C.LABEL])
        planned.append(("deleted", mid, None, ""))
        changes.append(
            {
                "Metric": shown_label,
                "Typed": "",
                "Existing": old,
                "New": None,
                "Change": None,
                "Action": "deleted",
                "Check": "",
            }
        )
        continue
    value = entered[mid]
    lo, hi = m["min_value"], m["max_value"]
    if not math.isfinite(value):
        problems.append(f"{m[C.LABEL]}: {value} is not a number.")
    elif pd.notna(lo) and value < lo:
        problems.append(
            f"{m[C.LABEL]}: {with_unit(value, unit)} is below the allowed minimum "
            f"{with_unit(lo, unit)}."
        )
    elif pd.notna(hi) and value > hi:
        problems.append(
            f"{m[C.LABEL]}: {with_unit(value, unit)} is above the allowed maximum "
            f"{with_unit(hi, unit)}."
        )
    new_note = note.strip() or old_note
    if old is None:
        action = "created"
    elif old == value and old_note == new_note:
        action = "unchanged"
    else:
        action = "updated"
        if expected_versions[mid] is not None:  # the form showed a value: a correction
            corrected.append(m[C.LABEL])
    typical = _typical(mid)
    check = ""
    if typical is not None and typical > 0 and value >= 0:
        ratio = value / typical
        if ratio >= 3 or ratio <= 1 / 3:
            check = f"unusual: {C.fmt_number(ratio)}× the recent median {with_unit(typical, unit)}"
            unusual.append(f"{m[C.LABEL]} {with_unit(value, unit)} ({check})")
    planned.append((action, mid, float(value), new_note))
    changes.append(
        {
            "Metric": shown_label,
            "Typed": typed.get(mid, ""),
            "Existing": old,
            "New": float(value),
            "Change": None if old is None else _difference(float(value), old),
            "Action": action,
            "Check": check,
        }
    )

st.subheader(f"Changes for {week_text}")
st.dataframe(
    pd.DataFrame(changes),
    hide_index=True,
    placeholder="n/a",
    key=f"enter-changes-{key_base}",
    # Every digit stored, as typed ("plain"; "%+g" prints the whole difference too):
    # the default format shows at most 4 decimals (4.12345 would read 4.1235).
    column_config={
        "Existing": st.column_config.NumberColumn(
            "Existing", help="Empty: no value yet", format="plain"
        ),
        "Typed": st.column_config.TextColumn("Typed", help="What was typed"),
        "New": st.column_config.NumberColumn(
            "New", help="The number read from what was typed; empty: deleted", format="plain"
        ),
        "Change": st.column_config.NumberColumn("Change", format="%+g"),
    },
)

if problems:
    st.error("Not saved. " + " ".join(ui.md_escape(x) for x in problems))
    st.stop()
reason_text = reason.strip()
needed = (
    "A reason for the correction is required: "
    + ", ".join(ui.md_escape(x) for x in corrected)
    + f" already {'has' if len(corrected) == 1 else 'have'} a value for {week_text}. "
    "Type it in **Reason for the correction**, then save."
)
needs_reason = bool(corrected) and not reason_text
# A value someone else changed since this form was shown: the store's refusal (naming
# their value) comes first, so the reason is checked after the writes (rolled back).
stale = any(expected_versions[mid] != shown_versions[mid] for _, mid, _, _ in planned)
if needs_reason and not (save and stale):
    if save:
        st.error("Not saved. " + needed)
        st.stop()
    st.warning(needed)
# Confirmations come before anything is written (issue 10): the numbers read from
# what was typed are shown first when reading them took an interpretation (decimal
# comma, thousands marks, a unit), an unusual value needs its tick box, and so does a
# week far from the pilot's dates.
interpreted = {mid: text for mid, text in typed.items() if not parsed[mid].as_typed}
shown_key = f"enter-shown-{key_base}"
shown_before = st.session_state.get(shown_key)
st.session_state[shown_key] = interpreted
if interpreted:
    st.info(
        "Read as: "
        + "; ".join(
            f"{ui.md_escape(labels.at[mid, C.LABEL])} “{ui.md_escape(text)}” = "
            f"**{ui.md_escape(_exact(float(parsed[mid].value), units_of.get(mid, '')))}**"
            for mid, text in interpreted.items()
        )
        + "."
    )
if unusual:
    st.warning(
        "Check for a typo: " + "; ".join(ui.md_escape(u) for u in unusual) + ". "
        "Tick **Save values that look unusual** to save them."
    )
if not save:
    st.caption("Nothing is saved yet: press **Save** to write these values.")
    st.stop()
if interpreted and shown_before != interpreted:
    st.warning(
        "Not saved yet: check the numbers read from what you typed (above), then press "
        "**Save** again to write them."
    )
    st.stop()
if unusual and not confirm_unusual:
    st.error(
        "Not saved: "
        + "; ".join(ui.md_escape(u) for u in unusual)
        + ". If this is right, tick **Save values that look unusual** and press Save again."
    )
    st.stop()
if distant_reason and not confirm_distant:
    st.error(
        f"Not saved: {ui.md_escape(distant_reason)}. If the week is right, tick **This week "
        "is right although it is far from the pilot's dates** and press Save again."
    )
    st.stop()


class ReasonMissing(Exception):
    """A correction without a reason, found after the writes: roll them back."""


counts = {"created": 0, "updated": 0, "unchanged": 0, "deleted": 0}
actor = state.current_actor()
try:
    # One transaction: every value of the week is written, or none.
    with session_scope(state.get_engine()) as s:
        for action, mid, value, new_note in planned:
            if action == "deleted":
                gone = store.delete_measurement(
                    session=s,
                    actor=actor,
                    metric_id=mid,
                    week=week,
                    reason=reason_text,
                    expected_version=expected_versions[mid],
                )
                counts["deleted"] += int(gone)
                continue
            written = store.record_measurement(
                session=s,
                actor=actor,
                metric_id=mid,
                week=week,
                value=value,
                note=new_note,
                reason=reason_text or "entered on the Enter page",
                expected_version=expected_versions[mid],
            )
            counts["created"] += written.created
            counts["updated"] += written.updated
            counts["unchanged"] += written.unchanged
        if needs_reason:
            raise ReasonMissing  # rolls the writes back
except ReasonMissing:
    st.error("Not saved. " + needed)
    st.stop()
except store.StoreError as exc:
    st.error(ui.refusal("Not saved", exc))
    st.stop()
except sa.exc.IntegrityError:
    st.error("Not saved: someone saved this week at the same moment. Reload and try again.")
    st.stop()
except (sa.exc.OperationalError, sa.exc.InternalError) as exc:
    st.error(f"Not saved: {failure_reason(exc)}.")
    st.stop()

state.after_write()
saved = (
    f"Saved {week_text} for {ui.md_escape(pilot_row[C.PILOT])}: {counts['created']} created, "
    f"{counts['updated']} updated, {counts['unchanged']} unchanged"
    + (f", {counts['deleted']} deleted" if counts["deleted"] else "")
    + "."
)
ui.flash(saved)
# Empty the form: the saved values now show as "Now: …" next to each field, and the
# next form is built from them (not from the versions shown before this save).
st.session_state[gen_key] = generation + 1
st.session_state.pop(seen_key, None)
st.session_state.pop(shown_key, None)
st.rerun()
