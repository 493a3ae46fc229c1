"""Pilot page section: the history of every weekly value (who changed what, when and
why), and restoring a deleted value.

Reads go through a cache keyed by the data version (like ``dashboard/state.py``);
the one write (restore) goes through :func:`metrics.store.restore_measurement`, which
checks the editor role again.
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import sqlalchemy as sa
import streamlit as st

from dashboard import components as ui
from dashboard import state
from metrics import computations as C
from metrics import store
from metrics.db import failure_reason, session_scope
from metrics.models import RevisionAction, Role

#: How each revision action reads in the table; deletions stand out.
ACTION_LABELS = {
    RevisionAction.create.value: "entered",
    RevisionAction.update.value: "corrected",
    RevisionAction.delete.value: "deleted",
    RevisionAction.restore.value: "↩ restored",
}
ALL_METRICS = 0
ALL_WEEKS = "all"
RESTORABLE_COLUMNS = [
    "revision_id",
    C.METRIC_ID,
    C.WEEK,
    "old_value",
    "old_note",
    "actor",
    "at",
    "reason",
]


@st.cache_data(ttl=state.CACHE_TTL, show_spinner=False)
def _revisions(version: tuple, pilot_id: int) -> pd.DataFrame:
    """store.revisions_frame of one pilot (``version`` is only the cache key)."""
    with session_scope(state.get_engine()) as s:
        return store.revisions_frame(s, pilot_id=pilot_id)


def restorable(revisions: pd.DataFrame) -> pd.DataFrame:
    """The deleted values that can be restored: every (metric, week) whose newest
    revision is a deletion (so the week has no value now).

    Args:
        revisions: the shape of :func:`metrics.store.revisions_frame`.

    Returns:
        Columns revision_id, metric_id (int64), week (datetime64[ns]), old_value
        (float64: the deleted value), old_note, actor (who deleted it), at
        (datetime64[ns, UTC]), reason; newest deletion first.
    """
    if revisions.empty:
        return revisions.reindex(columns=RESTORABLE_COLUMNS)
    newest = revisions.sort_values("revision_id").groupby([C.METRIC_ID, C.WEEK]).tail(1)
    deleted = newest[newest["action"] == RevisionAction.delete.value]
    return deleted.sort_values("revision_id", ascending=False)[RESTORABLE_COLUMNS].reset_index(
        drop=True
    )


def history_table(revisions: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """The revisions as shown on the Pilot page, newest first.

    Args:
        revisions: the shape of :func:`metrics.store.revisions_frame`.
        metrics: at least metric_id, label, unit.

    Returns:
        Columns Week (``YYYY-Www``), Metric ("Label (unit)"), Action (entered /
        corrected / deleted / ↩ restored), Old value, New value (float64, the
        stored numbers unchanged, in the metric's unit, NaN = none), Unit (the metric's
        unit, "" when it has none), Note (the new note; the old one for a deletion),
        By, When (UTC) (``YYYY-MM-DD HH:MM``), Reason (object).
    """
    names = {
        int(mid): (f"{label} ({unit})" if unit else str(label))
        for mid, label, unit in zip(
            metrics[C.METRIC_ID], metrics[C.LABEL], metrics[C.UNIT].fillna(""), strict=True
        )
    }
    units = {
        int(mid): str(unit)
        for mid, unit in zip(metrics[C.METRIC_ID], metrics[C.UNIT].fillna(""), strict=True)
    }
    r = revisions.sort_values("revision_id", ascending=False)
    deleted = r["action"] == RevisionAction.delete.value
    return pd.DataFrame(
        {
            "Week": r[C.WEEK].map(C.iso_label).astype(object),
            "Metric": r[C.METRIC_ID].map(lambda mid: names.get(int(mid), f"metric {mid}")),
            "Action": r["action"].map(lambda a: ACTION_LABELS.get(a, a)),
            "Old value": r["old_value"].astype("float64"),
            "New value": r["new_value"].astype("float64"),
            "Unit": r[C.METRIC_ID].map(lambda mid: units.get(int(mid), "")).astype(object),
            "Note": r["old_note"].where(deleted, r["new_note"]).fillna("").astype(object),
            "By": r["actor"].astype(object),
            "When (UTC)": r["at"].dt.strftime("%Y-%m-%d %H:%M").astype(object),
            "Reason": r["reason"].fillna("").astype(object),
        }
    ).reset_index(drop=True)


@st.cache_data(ttl=state.CACHE_TTL, show_spinner=False)
def _definitions(version: tuple, pilot_id: int) -> pd.DataFrame:
    """store.definition_history_frame of one pilot (``version`` is only the cache key)."""
    with session_scope(state.get_engine()) as s:
        return store.definition_history_frame(s, pilot_id=pilot_id)


def _shown(v: object) -> str:
    """A definition value as text: numbers to 12 significant digits, "" when none."""
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int, float)):
        return f"{v:.12g}"
    return ui.friendly(str(v))


def definition_table(defs: pd.DataFrame) -> pd.DataFrame:
    """The definition changes as shown on the Pilot page, newest first.

    Args:
        defs: the shape of :func:`metrics.store.definition_history_frame`.

    Returns:
        Columns When (UTC) (``YYYY-MM-DD HH:MM``), By, What (``pilot`` or ``metric
        <key>``), Change (create / update / rename / archive / unarchive / stage),
        Field, Old, New (text; "" = none).
    """
    d = defs.iloc[::-1]
    return pd.DataFrame(
        {
            "When (UTC)": d["at"].dt.strftime("%Y-%m-%d %H:%M").astype(object),
            "By": d["actor"].astype(object),
            "What": [
                f"metric {k}" if e == "metric" else "pilot"
                for e, k in zip(d["entity"], d["metric"], strict=True)
            ],
            "Change": d["action"].map(lambda a: "stage" if a == "set_stage" else a),
            "Field": d["field"].astype(object),
            "Old": [_shown(v) for v in d["old"]],
            "New": [_shown(v) for v in d["new"]],
        }
    ).reset_index(drop=True)


def render_definition_history(pilot_id: int) -> None:
    """The "Definition history" table: every change to the pilot's or its metrics'
    definition (targets, baselines, margins, dates, stage, cost, value model, names,
    labels, archiving) with who, when, old and new value."""
    defs = _definitions(state.data_version(), pilot_id)
    st.markdown("**Definition history**")
    if defs.empty:
        st.caption("No definition changes recorded.")
        return
    st.dataframe(
        definition_table(defs),
        hide_index=True,
        placeholder="—",
        key=f"definition-history-{pilot_id}",
    )
    st.caption(
        f"{len(defs)} field changes, newest first; `pilotgate export revisions` writes them "
        "with the measurement history."
    )


def _message_key(pilot_id: int) -> str:
    return f"history-message-{pilot_id}"


def render_history(pilot_id: int, metrics: pd.DataFrame) -> None:
    """Render the "Corrections and history" section of a pilot.

    A table of the pilot's revisions newest first (filter by metric and ISO week),
    deleted values marked, and for editors a form to restore a deleted value with a
    reason (:func:`metrics.store.restore_measurement`).

    Args:
        pilot_id: the pilot shown.
        metrics: that pilot's metrics (columns metric_id, label, unit at least).
    """
    st.divider()
    st.subheader("Corrections and history")
    done = st.session_state.pop(_message_key(pilot_id), None)
    if done:
        st.success(done)
    render_definition_history(pilot_id)
    st.markdown("**Weekly values**")
    revisions = _revisions(state.data_version(), pilot_id)
    if revisions.empty:
        st.caption("No values entered yet: every entry, correction and deletion will show here.")
        return

    labels = {
        int(m): str(lbl) for m, lbl in zip(metrics[C.METRIC_ID], metrics[C.LABEL], strict=True)
    }
    units = {
        int(m): str(u or "") for m, u in zip(metrics[C.METRIC_ID], metrics[C.UNIT], strict=True)
    }
    left, right = st.columns(2)
    metric_options = [ALL_METRICS, *labels]
    chosen_metric = left.selectbox(
        "Metric",
        metric_options,
        format_func=lambda mid: "All metrics" if mid == ALL_METRICS else labels.get(mid, str(mid)),
        key=f"history-metric-{pilot_id}",
    )
    shown = revisions
    if chosen_metric != ALL_METRICS:
        shown = shown[shown[C.METRIC_ID] == chosen_metric]
    weeks = sorted(shown[C.WEEK].dt.date.unique(), reverse=True)
    week_options = [ALL_WEEKS, *(w.isoformat() for w in weeks)]
    chosen_week = right.selectbox(
        "ISO week",
        week_options,
        format_func=lambda w: (
            "All weeks" if w == ALL_WEEKS else ui.week_choice_label(date.fromisoformat(w))
        ),
        key=f"history-week-{pilot_id}",
    )
    if chosen_week != ALL_WEEKS:
        shown = shown[shown[C.WEEK] == pd.Timestamp(chosen_week)]
    table = history_table(shown, metrics)
    shown_units = set(table["Unit"])
    # One unit among the rows: it goes in the value headers; several: a Unit column.
    one_unit = next(iter(shown_units)) if len(shown_units) == 1 else None
    columns = [c for c in table.columns if c != "Unit" or one_unit is None]
    suffix = f" ({one_unit})" if one_unit else ""
    ui.csv_download(
        table[columns],
        file_name=f"pilotgate-corrections-{pilot_id}.csv",
        key=f"history-download-{pilot_id}",
    )
    st.dataframe(
        table,
        hide_index=True,
        placeholder="—",
        key=f"history-table-{pilot_id}",
        column_order=columns,
        column_config={
            "Old value": st.column_config.NumberColumn(
                f"Old value{suffix}",
                format=ui.VALUE_FORMAT,
                help="The stored value before the change (6 significant digits shown)",
            ),
            "New value": st.column_config.NumberColumn(
                f"New value{suffix}",
                format=ui.VALUE_FORMAT,
                help="The stored value after the change (6 significant digits shown)",
            ),
            "Unit": st.column_config.TextColumn("Unit", width=50),
        },
    )
    st.caption(
        f"{len(shown)} of {len(revisions)} changes, newest first. — = no value (a first "
        "entry has no old value, a deletion no new one). Every change is kept: "
        "`pilotgate export revisions` writes them all as CSV."
    )

    deleted = restorable(revisions)
    deleted = deleted[deleted[C.METRIC_ID].isin(list(labels))]
    if deleted.empty:
        return
    if not state.can(Role.editor):
        st.caption(f"{len(deleted)} deleted value(s) can be restored by an editor or admin.")
        return

    def _option_label(opt: str) -> str:
        mid_text, week_text = opt.split(":", 1)
        row = deleted[
            (deleted[C.METRIC_ID] == int(mid_text)) & (deleted[C.WEEK] == pd.Timestamp(week_text))
        ].iloc[0]
        mid = int(mid_text)
        value = ui.with_unit(float(row["old_value"]), units.get(mid, ""))
        return (
            f"{labels.get(mid, mid_text)} {C.iso_label(row[C.WEEK])}: {value} "
            f"(deleted by {row['actor']} {row['at']:%Y-%m-%d %H:%M} UTC)"
        )

    options = [f"{int(r[C.METRIC_ID])}:{r[C.WEEK]:%Y-%m-%d}" for _, r in deleted.iterrows()]
    with st.form(key=f"history-restore-form-{pilot_id}"):
        st.markdown("**Restore a deleted value**")
        choice = st.selectbox(
            "Deleted value",
            options,
            format_func=_option_label,
            key=f"history-restore-choice-{pilot_id}",
        )
        reason = st.text_input(
            "Reason for restoring",
            key=f"history-restore-reason-{pilot_id}",
            max_chars=store.MAX_REASON_CHARS,
            placeholder="e.g. deleted by mistake",
            help="Required; kept in the value's history.",
        )
        restore = st.form_submit_button(
            "Restore", key=f"history-restore-{pilot_id}", icon=":material/restore:"
        )
    if not restore or choice is None:
        return
    if not reason.strip():
        st.error("Not restored: type a reason for restoring, then press Restore again.")
        return
    mid_text, week_text = choice.split(":", 1)
    mid, week = int(mid_text), pd.Timestamp(week_text).date()
    try:
        with session_scope(state.get_engine()) as s:
            value = store.restore_measurement(
                session=s,
                actor=state.current_actor(),
                metric_id=mid,
                week=week,
                reason=reason,
            )
    except store.StoreError as exc:
        st.error(ui.refusal("Not restored", exc))
        return
    except (sa.exc.OperationalError, sa.exc.InternalError) as exc:
        st.error(f"Not restored: {failure_reason(exc)}.")
        return
    state.after_write()
    st.session_state[_message_key(pilot_id)] = (
        f"Restored {ui.md_escape(labels.get(mid, mid_text))} {C.iso_label(week)}: "
        f"{ui.md_escape(ui.with_unit(value, units.get(mid, '')))}."
    )
    st.rerun()
