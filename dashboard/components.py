"""Small UI pieces shared by the pages: the as-of date, the pilot picker, badges, labels."""

from __future__ import annotations

import contextlib
from datetime import date, timedelta

import pandas as pd
import streamlit as st

from dashboard.charts import RECOMMENDATION_COLORS, RECOMMENDATION_LABELS, with_unit
from metrics import computations as C
from metrics import service
from metrics.models import EARLIEST_DATE, LATEST_DATE

AS_OF_KEY = "as_of"
PILOT_KEY = "pilot_id"
FLASH_KEY = "_flash"
PILOT_QP = "pilot"
# The as-of picker accepts the same range as the data (metrics.models); a date outside
# it, from the URL or a button, is clamped instead of crashing the session.
EARLIEST_AS_OF = EARLIEST_DATE
LATEST_AS_OF = LATEST_DATE
_PILOT_QP = "_pilot_query"  # the ?pilot= value last adopted or written
_AS_OF_QP = "_as_of_query"  # the ?as_of= value last adopted or written

PAGE_PORTFOLIO = "dashboard/pages/portfolio.py"
PAGE_PILOT = "dashboard/pages/pilot.py"
PAGE_ENTER = "dashboard/pages/enter.py"
PAGE_IMPORT = "dashboard/pages/import_csv.py"
PAGE_EXPORT = "dashboard/pages/export.py"
PAGE_ADMIN = "dashboard/pages/admin.py"


def empty_state_links() -> None:
    """Links out of an empty portfolio, only to pages the current user's role has
    (a link to a page outside the navigation is an error): Admin to define a pilot,
    Import to load measurements."""
    from dashboard import state
    from metrics.models import Role

    if state.can(Role.admin):
        st.page_link(PAGE_ADMIN, label="Define a pilot (Admin)", icon=":material/add_circle:")
    if state.can(Role.editor):
        st.page_link(
            PAGE_IMPORT, label="Import measurements from CSV", icon=":material/upload_file:"
        )


RECOMMENDATION_ICONS = {
    C.GO: "🟢",
    C.EXTEND: "🟡",
    C.NO_GO: "🔴",
    C.INSUFFICIENT: "⚪",
}
BADGE_COLORS = {C.GO: "green", C.EXTEND: "orange", C.NO_GO: "red", C.INSUFFICIENT: "gray"}
STATUS_LABELS = {
    C.MET: "✅ met",
    C.ON_TRACK: "🟢 on track",
    C.AT_RISK: "🟠 at risk",
    C.OFF_TRACK: "🔴 off track",
    C.INSUFFICIENT: "⚪ insufficient data",
}
STATUS_BADGE_COLORS = {
    C.MET: "green",
    C.ON_TRACK: "blue",
    C.AT_RISK: "orange",
    C.OFF_TRACK: "red",
    C.INSUFFICIENT: "gray",
}

__all__ = [
    "RECOMMENDATION_COLORS",
    "as_of_picker",
    "decision_countdown",
    "flash",
    "pilot_picker",
    "recommendation_text",
    "show_flash",
    "week_choice_label",
    "with_unit",
]


def _parse_day(raw: object) -> date | None:
    try:
        return date.fromisoformat(str(raw).strip())
    except ValueError:
        return None


def as_of_picker() -> date:
    """The sidebar "As of" date, shared by every page (session state key ``as_of``).

    ``?as_of=YYYY-MM-DD`` in the URL sets it (a shareable view); the URL carries the
    date whenever it is not today.
    """
    widget_key = f"{AS_OF_KEY}_input"
    raw = st.query_params.get(AS_OF_KEY)
    if raw is not None and raw != st.session_state.get(_AS_OF_QP):
        st.session_state[_AS_OF_QP] = raw
        day = _parse_day(raw)
        if day is not None:
            set_as_of(day)
    today = service.today()
    value = st.session_state.get(AS_OF_KEY)
    with st.sidebar:
        chosen = st.date_input(
            "As of",
            value=min(max(value, EARLIEST_AS_OF), LATEST_AS_OF)
            if isinstance(value, date)
            else today,
            min_value=EARLIEST_AS_OF,
            max_value=LATEST_AS_OF,
            key=widget_key,
            help=(
                "Judge every pilot as of this day: weeks after it are ignored; "
                "staleness and decision deadlines are judged at it."
            ),
            format="YYYY-MM-DD",
        )
    if not isinstance(chosen, date):  # cleared field: fall back to today
        chosen = value if isinstance(value, date) else today
    st.session_state[AS_OF_KEY] = chosen
    if chosen != today:
        text = chosen.isoformat()
        if st.query_params.get(AS_OF_KEY) != text:
            st.query_params[AS_OF_KEY] = text
        st.session_state[_AS_OF_QP] = text
    elif AS_OF_KEY in st.query_params:
        del st.query_params[AS_OF_KEY]
        st.session_state[_AS_OF_QP] = None
    return chosen


def set_as_of(day: date) -> None:
    """Callback: move the shared as-of date (and its sidebar widget) to ``day``,
    clamped to EARLIEST_AS_OF..LATEST_AS_OF."""
    day = min(max(day, EARLIEST_AS_OF), LATEST_AS_OF)
    st.session_state[AS_OF_KEY] = day
    st.session_state[f"{AS_OF_KEY}_input"] = day


def _sync_pilot(widget_key: str) -> None:
    st.session_state[PILOT_KEY] = st.session_state[widget_key]


def pilot_picker(pilots: pd.DataFrame, *, key: str, label: str = "Pilot") -> int | None:
    """A selectbox of pilots keyed by database id; remembers the choice across pages.

    The default comes from ``st.session_state["pilot_id"]`` (set by the Portfolio page
    or by ``?pilot=<id>`` in the URL); the first pilot otherwise.
    """
    if pilots.empty:
        return None
    ids = [int(x) for x in pilots[C.PILOT_ID]]
    names = dict(zip(ids, pilots[C.PILOT].astype(str), strict=True))
    wanted = st.session_state.get(PILOT_KEY)
    if wanted not in ids:
        wanted = ids[0]
    if st.session_state.get(key) != wanted:
        st.session_state[key] = wanted
    chosen = st.selectbox(
        label,
        ids,
        format_func=lambda pid: names.get(pid, str(pid)),
        key=key,
        on_change=_sync_pilot,
        args=(key,),
    )
    st.session_state[PILOT_KEY] = chosen
    return chosen


def pilot_from_query() -> None:
    """Adopt ``?pilot=<id>`` from the URL (a link or a shared address) when it is new."""
    raw = st.query_params.get(PILOT_QP)
    if raw is None or raw == st.session_state.get(_PILOT_QP):
        return
    st.session_state[_PILOT_QP] = raw
    with contextlib.suppress(TypeError, ValueError):
        st.session_state[PILOT_KEY] = int(raw)


def pilot_to_query(pilot_id: int) -> None:
    """Keep ``?pilot=<id>`` in the URL in step with the pilot shown."""
    text = str(pilot_id)
    if st.query_params.get(PILOT_QP) != text:
        st.query_params[PILOT_QP] = text
    st.session_state[_PILOT_QP] = text


def recommendation_text(rec: str | None) -> str:
    """``🟢 go`` etc., for tables."""
    if rec is None or (isinstance(rec, float) and pd.isna(rec)):
        rec = C.INSUFFICIENT
    return f"{RECOMMENDATION_ICONS.get(rec, '')} {RECOMMENDATION_LABELS.get(rec, rec)}".strip()


def recommendation_badge(rec: str) -> None:
    """A coloured badge with the recommendation."""
    st.badge(
        f"Recommendation: {RECOMMENDATION_LABELS.get(rec, rec)}",
        color=BADGE_COLORS.get(rec, "gray"),
    )


def status_text(status: str | None) -> str:
    """``✅ met``, ``🔴 off track``… for tables and tiles."""
    if status is None or (isinstance(status, float) and pd.isna(status)):
        return "n/a"
    return STATUS_LABELS.get(status, str(status).replace("_", " "))


def pct(x: float | None, *, signed: bool = False) -> str:
    """A percentage for tiles: ``+12.5%``, ``n/a`` when undefined (never 0)."""
    if x is None or pd.isna(x):
        return "n/a"
    text = C.fmt_number(x)
    if signed and float(x) > 0:
        text = "+" + text
    return f"{text}%"


def decision_countdown(decision: date, as_of: date) -> str:
    """Time from ``as_of`` to the decision date, in the words every page uses.

    ``in 12 days`` / ``in 1 day`` (still ahead), ``today``, or ``5267 days ago`` /
    ``1 day ago``. Read after a "Decision due" label (Portfolio column, Pilot header).
    """
    days = (decision - as_of).days
    if days == 0:
        return "today"
    n = abs(days)
    span = f"{n} day{'' if n == 1 else 's'}"
    return f"in {span}" if days > 0 else f"{span} ago"


def week_choice_label(monday: date) -> str:
    """``2026-W03 (Mon 12 Jan – Sun 18 Jan)``."""
    iso = monday.isocalendar()
    sunday = monday + timedelta(days=6)
    return (
        f"{iso.year}-W{iso.week:02d} (Mon {monday.day} {monday:%b} – Sun {sunday.day} {sunday:%b})"
    )


def flash(message: str, kind: str = "success") -> None:
    """Keep a message to show after the next rerun (e.g. after a save)."""
    st.session_state[FLASH_KEY] = (kind, message)


def show_flash() -> None:
    """Show (once) the message kept by :func:`flash`."""
    item = st.session_state.pop(FLASH_KEY, None)
    if item:
        kind, message = item
        getattr(st, kind, st.info)(message)


def md_escape(text: str) -> str:
    """User text made literal for any Streamlit element that renders markdown.

    Backslash-escapes every ASCII punctuation mark markdown, HTML or LaTeX could act on,
    and puts a zero-width space after each ``:`` so ``:material/x:`` and ``:smile:``
    shortcodes (resolved after markdown escapes) are not turned into icons.
    """
    out = str(text)
    for ch in "\\`*_{}[]<>()#+-.!|~$&=":
        out = out.replace(ch, "\\" + ch)
    return out.replace(":", ":\u200b")
