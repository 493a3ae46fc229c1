"""Pilot page section: the readiness and governance checklist (DESIGN §5, §8).

Shows every item with its evidence, who ticked it and when; lists open items as
blockers of moving to production; editors tick (evidence required), re-open and add
items, each in its own form applied only on submit. Widget keys carry the pilot's
database id; select boxes hold item ids. The item versions the user saw are kept in
``st.session_state`` so a change made meanwhile by someone else is refused, not
overwritten.
"""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa
import streamlit as st

from dashboard import components as ui
from dashboard import state
from metrics import governance
from metrics.db import failure_reason, session_scope
from metrics.errors import StoreError
from metrics.models import Role

FLASH = "_checklist_flash"
#: Table geometry (px): Streamlit's default row, a row of up to 3 wrapped lines (cell
#: text wraps only in rows taller than 64 px), the header, and a generous average
#: character width of the table's 14 px font plus a cell's padding.
ROW_HEIGHT, WRAP_ROW_HEIGHT, HEADER_HEIGHT = 35, 66, 36
CHAR_PX, CELL_PADDING_PX = 6.0, 17


@st.cache_data(ttl=state.CACHE_TTL, show_spinner=False)
def checklist(version: tuple, pilot_id: int) -> pd.DataFrame:
    """:func:`metrics.governance.checklist_frame` of one pilot (cached by data version)."""
    with session_scope(state.get_engine()) as s:
        return governance.checklist_frame(s, pilot_id=pilot_id)


def _write(fn, message: str, gen_key: str, notice, *, refused: str = "Not saved", **kwargs):
    """Run one governance write in its own session; on success flash and rerun, else
    show why in ``notice`` (a container at the top of the section), starting with
    ``refused`` unless the store's message already says what was not done."""
    try:
        with session_scope(state.get_engine()) as s:
            fn(session=s, actor=state.current_actor(), **kwargs)
    except StoreError as exc:
        notice.error(ui.refusal(refused, exc))
        return
    except (sa.exc.OperationalError, sa.exc.InternalError) as exc:
        notice.error(f"{refused}: {failure_reason(exc)}.")
        return
    state.after_write()
    st.session_state[FLASH] = message
    st.session_state[gen_key] = st.session_state.get(gen_key, 0) + 1
    st.rerun()


def _ensure_defaults(pilot_id: int) -> bool:
    """Store the default items of a pilot created before checklists existed."""
    try:
        with session_scope(state.get_engine()) as s:
            governance.ensure_default_checklist(
                session=s, actor=state.current_actor(), pilot_id=pilot_id
            )
    except (StoreError, sa.exc.OperationalError):
        return False
    state.after_write()
    return True


def render(*, pilot_id: int, version: tuple) -> None:
    """The checklist section of the Pilot page for ``pilot_id``."""
    st.divider()
    st.subheader("Readiness and governance checklist")
    notice = st.container()
    message = st.session_state.pop(FLASH, None)
    if message:
        notice.success(ui.md_escape(message))
    editor = state.can(Role.editor)
    items = checklist(version, pilot_id)
    if items.empty and editor and _ensure_defaults(pilot_id):
        items = checklist(state.data_version(), pilot_id)
    stored = not items.empty
    if not stored:
        # Created before checklists existed: every default item counts as open.
        items = pd.DataFrame(
            {
                governance.ITEM_ID: pd.Series(dtype="int64"),
                "item": list(governance.DEFAULT_CHECKLIST),
                "done": False,
                "evidence": "",
                "by": "",
                "at": pd.Series([pd.NaT] * len(governance.DEFAULT_CHECKLIST), dtype="object"),
                "version": 0,
            }
        )
        st.caption(
            "The default items are not stored for this pilot yet; an editor opening "
            "this page stores them."
        )

    done = items["done"].astype(bool)
    open_items = list(items.loc[~done, "item"])
    st.caption(f"{int(done.sum())} of {len(items)} items ticked with evidence.")
    if open_items:
        n_open = len(open_items)
        st.warning(
            f"**{ui.plural(n_open, 'open item')} "
            f"{'blocks' if n_open == 1 else 'block'} moving to production:**\n"
            + "\n".join(f"- {ui.md_escape(x)}" for x in open_items)
        )
    else:
        st.success(
            "Every item is ticked with evidence: nothing on the checklist blocks "
            "moving to production."
        )

    at = pd.to_datetime(items["at"], utc=True)
    # Widths that fit the page at 1400 px (940 px): the item in full (the longest default
    # item is 75 characters), the time stamp in full, evidence the rest. Text longer
    # than its column (evidence is free text) wraps on taller rows instead of being cut.
    widths = {"Done": 45, "Item": 482, "Evidence": 203, "By": 80, "When (UTC)": 130}
    wrap = any(
        len(str(text)) * CHAR_PX + CELL_PADDING_PX > widths[column]
        for column in ("Item", "Evidence", "By")
        for text in items[column.lower()].fillna("")
    )
    row_height = WRAP_ROW_HEIGHT if wrap else None
    st.dataframe(
        pd.DataFrame(
            {
                "Done": done,
                "Item": items["item"],
                "Evidence": items["evidence"],
                "By": items["by"],
                "When (UTC)": at.dt.strftime("%Y-%m-%d %H:%M"),
            }
        ),
        hide_index=True,
        placeholder="—",
        key=f"checklist-{pilot_id}",
        row_height=row_height,
        # every item visible without scrolling inside the table
        height=HEADER_HEIGHT + len(items) * (row_height or ROW_HEIGHT) + 2,
        column_config={
            "Done": st.column_config.CheckboxColumn("Done", width=widths["Done"]),
            "Item": st.column_config.TextColumn("Item", width=widths["Item"]),
            "Evidence": st.column_config.TextColumn("Evidence", width=widths["Evidence"]),
            "By": st.column_config.TextColumn("By", width=widths["By"]),
            "When (UTC)": st.column_config.TextColumn(
                "When (UTC)",
                width=widths["When (UTC)"],
                help="When it was last ticked or re-opened",
            ),
        },
    )
    if not editor:
        st.caption("Ticking, re-opening and adding items needs the editor role.")
        return
    if stored:
        _forms(pilot_id, items, notice)


def _forms(pilot_id: int, items: pd.DataFrame, notice) -> None:
    """One small form per item (keys from the item's database id) and one to add."""
    gen_key = f"_checklist_gen_{pilot_id}"
    gen = st.session_state.get(gen_key, 0)
    seen_key = f"_checklist_seen_{pilot_id}"
    # The versions shown on the previous run are the ones the user acted on.
    seen: dict[int, int] = st.session_state.get(seen_key, {})
    st.session_state[seen_key] = {
        int(i): int(v) for i, v in zip(items[governance.ITEM_ID], items["version"], strict=True)
    }
    with st.expander("Tick or re-open items", expanded=False):
        for row in items.itertuples(index=False):
            item_id = int(getattr(row, governance.ITEM_ID))
            name, cell = st.columns([5, 1], vertical_alignment="center")
            name.markdown(
                (f"{ui.MET_ICON} done: " if row.done else f"{ui.UNMET_ICON} open: ")
                + ui.md_escape(row.item)
            )
            # The tick form is always there (on a ticked item it replaces the
            # evidence), so a submit still arrives when someone else ticked the item
            # meanwhile and is refused by its version, not lost.
            with cell.popover(
                "Update" if row.done else "Tick", key=f"checklist-pop-{item_id}-{gen}"
            ):
                _tick_form(item_id, row.item, seen.get(item_id), gen_key, gen, notice)
                if row.done:
                    _untick_form(item_id, row.item, seen.get(item_id), gen_key, gen, notice)

    with st.form(key=f"checklist-add-{pilot_id}-{gen}", enter_to_submit=False):
        text = st.text_input(
            "Add an item", key=f"checklist-add-text-{pilot_id}-{gen}", max_chars=500
        )
        if st.form_submit_button("Add item", key=f"checklist-add-save-{pilot_id}-{gen}"):
            _write(
                governance.add_checklist_item,
                f"Added: {text.strip()}",
                gen_key,
                notice,
                refused="Not added",
                pilot_id=pilot_id,
                item=text,
            )


def _tick_form(item_id: int, item: str, seen: int | None, gen_key: str, gen: int, notice) -> None:
    with st.form(key=f"checklist-tick-{item_id}-{gen}", enter_to_submit=False):
        evidence = st.text_area(
            "Evidence (required)",
            key=f"checklist-evidence-{item_id}-{gen}",
            max_chars=4000,
            placeholder="What shows it is in place: a document, a link, a name",
        )
        if st.form_submit_button(
            "Tick with evidence", type="primary", key=f"checklist-tick-save-{item_id}-{gen}"
        ):
            _write(
                governance.tick_checklist_item,
                f"Ticked: {item}",
                gen_key,
                notice,
                refused="Not ticked",
                item_id=item_id,
                evidence=evidence,
                expected_version=seen,
            )


def _untick_form(item_id: int, item: str, seen: int | None, gen_key: str, gen: int, notice) -> None:
    with st.form(key=f"checklist-untick-{item_id}-{gen}", enter_to_submit=False):
        reason = st.text_input(
            "Reason (optional)", key=f"checklist-reason-{item_id}-{gen}", max_chars=4000
        )
        if st.form_submit_button("Re-open item", key=f"checklist-untick-save-{item_id}-{gen}"):
            _write(
                governance.untick_checklist_item,
                f"Re-opened: {item}",
                gen_key,
                notice,
                refused="Not re-opened",
                item_id=item_id,
                reason=reason,
                expected_version=seen,
            )
