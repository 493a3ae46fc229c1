"""Small UI pieces shared by the pages: the as-of date, the pilot picker, badges, labels."""

from __future__ import annotations

import contextlib
import re
from datetime import date, timedelta
from urllib.parse import urlparse

import pandas as pd
import streamlit as st

from dashboard.charts import RECOMMENDATION_COLORS, RECOMMENDATION_LABELS, fmt_pct, with_unit
from dashboard.text import md_escape
from metrics import computations as C
from metrics import csvio, service
from metrics.access import allowed
from metrics.models import EARLIEST_DATE, LATEST_DATE, Role

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
PAGE_VENDORS = "dashboard/pages/vendors.py"
PAGE_ADMIN = "dashboard/pages/admin.py"


def empty_state_links() -> None:
    """Links out of an empty portfolio, only to pages the current user's role has
    (a link to a page outside the navigation is an error): Admin to define a pilot,
    Import to load measurements."""
    from dashboard import state

    if state.can(Role.admin):
        st.page_link(PAGE_ADMIN, label="Define a pilot (Admin)", icon=":material/add_circle:")
    if state.can(Role.editor):
        st.page_link(
            PAGE_IMPORT, label="Import measurements from CSV", icon=":material/upload_file:"
        )


#: Markers for markdown (tile labels, links, captions): Streamlit's Material icons, a
#: font shipped with Streamlit, so they render on any machine; colour emoji (🟢 ✅)
#: rendered as identical empty boxes without a colour-emoji font (issue 10). Each
#: shape differs, and the word always follows, so colour is never the only signal.
RECOMMENDATION_ICONS = {
    C.GO: ":material/check_circle:",
    C.EXTEND: ":material/schedule:",
    C.NO_GO: ":material/cancel:",
    C.INSUFFICIENT: ":material/help:",
}
BADGE_COLORS = {C.GO: "green", C.EXTEND: "orange", C.NO_GO: "red", C.INSUFFICIENT: "gray"}
#: Status words for tables and tiles (dataframe cells show no icons: the word is the
#: status, readable in any font and for colour-blind readers).
STATUS_LABELS = {
    C.MET: "met",
    C.ON_TRACK: "on track",
    C.AT_RISK: "at risk",
    C.OFF_TRACK: "off track",
    C.INSUFFICIENT: "insufficient data",
    # guardrail metrics (docs/decision-rules.md): judged by the non-inferiority margin
    C.HELD: "held",
    C.BREACHED: "breached",
    C.NOT_JUDGED: "not judged",
}
#: A guardrail's status words (its own statuses: held, breached, not_judged).
GUARDRAIL_STATUS_LABELS = {s: STATUS_LABELS[s] for s in C.GUARDRAIL_STATUSES}
#: A met / not yet met condition (stage gates, checklist) in markdown.
MET_ICON = ":material/check_box:"
UNMET_ICON = ":material/check_box_outline_blank:"
#: Raw stored words (CSV, store messages) -> the words the UI shows.
FRIENDLY_WORDS = {
    "no_go": "no-go",
    "lower_is_better": "lower is better",
    "higher_is_better": "higher is better",
    "off_track": "off track",
    "on_track": "on track",
    "at_risk": "at risk",
    "insufficient_data": "insufficient data",
    "not_judged": "not judged",
}
_FRIENDLY_RE = re.compile(r"\b(" + "|".join(FRIENDLY_WORDS) + r")\b")
#: Number format of stored values in tables: up to 6 significant digits, no float noise
#: (sprintf-js ``%.6g`` = ``Number(x.toPrecision(6))``: 99.00000000000001 reads 99).
VALUE_FORMAT = "%.6g"
#: Pages outside a role's navigation (streamlit_app.py): url path -> (title, role needed).
RESTRICTED_PAGES = {
    "enter": ("Enter", "editor"),
    "import_csv": ("Import", "editor"),
    "admin": ("Admin", "admin"),
}
STATUS_BADGE_COLORS = {
    C.MET: "green",
    C.ON_TRACK: "blue",
    C.AT_RISK: "orange",
    C.OFF_TRACK: "red",
    C.INSUFFICIENT: "gray",
    C.HELD: "green",
    C.BREACHED: "red",
    C.NOT_JUDGED: "gray",
}

__all__ = [
    "RECOMMENDATION_COLORS",
    "as_of_picker",
    "decision_countdown",
    "flash",
    "md_escape",
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


def _clamp_as_of(day: date) -> date:
    return min(max(day, EARLIEST_AS_OF), LATEST_AS_OF)


def _sync_as_of(widget_key: str) -> None:
    """on_change of the sidebar date: adopt a picked date (a cleared field keeps the
    previous one)."""
    chosen = st.session_state.get(widget_key)
    if isinstance(chosen, date):
        st.session_state[AS_OF_KEY] = chosen


def as_of_picker() -> date:
    """The sidebar "As of" date, shared by every page (session state key ``as_of``).

    ``?as_of=YYYY-MM-DD`` in the URL sets it (a shareable view); the URL carries the
    date whenever it is not today. The widget's value is set through session state
    only (never also a ``value=`` default), so Streamlit never warns that a widget
    "was created with a default value but also had its value set via the Session
    State API".
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
    value = _clamp_as_of(value) if isinstance(value, date) else today
    if st.session_state.get(widget_key) != value:
        st.session_state[widget_key] = value
    with st.sidebar:
        st.date_input(
            "As of",
            min_value=EARLIEST_AS_OF,
            max_value=LATEST_AS_OF,
            key=widget_key,
            on_change=_sync_as_of,
            args=(widget_key,),
            help=(
                "Judge every pilot as of this day: weeks after it are ignored; "
                "staleness and decision deadlines are judged at it."
            ),
            format="YYYY-MM-DD",
        )
    chosen = value
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
    day = _clamp_as_of(day)
    st.session_state[AS_OF_KEY] = day
    st.session_state[f"{AS_OF_KEY}_input"] = day


def _sync_pilot(widget_key: str) -> None:
    st.session_state[PILOT_KEY] = st.session_state[widget_key]
    st.session_state.pop(_LINK_PILOT, None)  # a pilot picked by hand: the link is done


#: The ``?pilot=`` text of a link whose pilot has not been found yet (see pilot_picker).
_LINK_PILOT = "_pilot_from_link"


def pilot_picker(
    pilots: pd.DataFrame, *, key: str, label: str = "Pilot", say_not_found: bool = True
) -> int | None:
    """A selectbox of pilots keyed by database id; remembers the choice across pages.

    The default comes from ``st.session_state["pilot_id"]`` (set by the Portfolio page
    or by ``?pilot=<id>`` in the URL); the first pilot otherwise. A link naming a pilot
    that does not exist (``?pilot=999``, ``?pilot=abc``) never shows another pilot: the
    page says it was not found and the picker starts empty.

    Args:
        say_not_found: show the "not found" error here (False: the page shows
            :func:`link_not_found_message` where it wants, e.g. outside the sidebar).

    Returns:
        The chosen pilot id; None while a link's pilot was not found and no pilot has
        been picked (the page should stop).
    """
    if pilots.empty:
        return None
    ids = [int(x) for x in pilots[C.PILOT_ID]]
    names = dict(zip(ids, pilots[C.PILOT].astype(str), strict=True))
    wanted = st.session_state.get(PILOT_KEY)
    link = st.session_state.get(_LINK_PILOT)
    if link is not None and wanted not in ids:
        if say_not_found:
            st.error(link_not_found_message(str(link)))
        st.session_state.pop(key, None)
        chosen = st.selectbox(
            label,
            ids,
            index=None,
            placeholder="Choose a pilot",
            format_func=lambda pid: names.get(pid, str(pid)),
            key=key,
            on_change=_sync_pilot,
            args=(key,),
        )
        return chosen
    st.session_state.pop(_LINK_PILOT, None)
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


def link_not_found_message(link: str | None = None) -> str:
    """ "No pilot '999' found ..." for a ``?pilot=`` link naming no pilot (markdown)."""
    if link is None:
        link = str(st.session_state.get(_LINK_PILOT, ""))
    return (
        f"No pilot “{md_escape(link)}” found: the link's `?pilot=` names a pilot that "
        "does not exist (or no longer does). Choose a pilot in the list."
    )


def pilot_from_query() -> None:
    """Adopt ``?pilot=<id>`` from the URL (a link or a shared address) when it is new.

    A value that is not a whole number, or an id no pilot has, is remembered so the
    pilot picker says "not found" instead of showing another pilot."""
    raw = st.query_params.get(PILOT_QP)
    if raw is None or raw == st.session_state.get(_PILOT_QP):
        return
    st.session_state[_PILOT_QP] = raw
    st.session_state[_LINK_PILOT] = raw
    try:
        st.session_state[PILOT_KEY] = int(raw.strip())
    except (TypeError, ValueError):
        st.session_state[PILOT_KEY] = None


def pilot_to_query(pilot_id: int) -> None:
    """Keep ``?pilot=<id>`` in the URL in step with the pilot shown."""
    text = str(pilot_id)
    if st.query_params.get(PILOT_QP) != text:
        st.query_params[PILOT_QP] = text
    st.session_state[_PILOT_QP] = text


def recommendation_text(rec: str | None) -> str:
    """``go``, ``no-go``… for tables and plain text: the word, no emoji (see
    :data:`RECOMMENDATION_ICONS` for markdown)."""
    if rec is None or (isinstance(rec, float) and pd.isna(rec)):
        rec = C.INSUFFICIENT
    return str(RECOMMENDATION_LABELS.get(rec, rec))


def recommendation_badge(rec: str) -> None:
    """A coloured badge with the recommendation."""
    st.badge(
        f"Recommendation: {RECOMMENDATION_LABELS.get(rec, rec)}",
        color=BADGE_COLORS.get(rec, "gray"),
    )


def status_text(status: str | None, role: str | None = None) -> str:
    """``met``, ``off track``… for tables and tiles; for a guardrail metric
    (``role="guardrail"``) ``held``, ``breached`` or ``not judged``
    (its status is judged by the non-inferiority margin, docs/decision-rules.md §4)."""
    if status is None or (isinstance(status, float) and pd.isna(status)):
        return "n/a"
    if role == C.GUARDRAIL and status in GUARDRAIL_STATUS_LABELS:
        return GUARDRAIL_STATUS_LABELS[status]
    return STATUS_LABELS.get(status, str(status).replace("_", " "))


def pct(x: float | None, *, signed: bool = False) -> str:
    """A percentage for tiles: ``+12.5%`` (always 1 decimal, like the interval bounds
    next to it: :func:`dashboard.charts.fmt_pct`), ``n/a`` when undefined (never 0)."""
    return fmt_pct(x, signed=signed)


def friendly(text: object) -> str:
    """Raw stored words in a message turned into the UI's words: ``no_go`` -> ``no-go``,
    ``lower_is_better`` -> ``lower is better``, ``off_track`` -> ``off track`` … (CSV
    files keep the raw values)."""
    return _FRIENDLY_RE.sub(lambda m: FRIENDLY_WORDS[m.group(1)], str(text))


def article(word: str) -> str:
    """``a viewer``, ``an editor``, ``an admin``."""
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 pilot``, ``3 pilots``, ``2 open items``."""
    return f"{n} {word if n == 1 else (many or word + 's')}"


def join_names(names: list[str]) -> str:
    """``A``, ``A and B``, ``A, B and C``."""
    names = [str(x) for x in names]
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


#: A store message that already says what was refused ("decision not saved: …",
#: "'X' not moved from pilot to production: …") in its first clause.
_OWN_REFUSAL_RE = re.compile(
    r"^[^:]*\bnot (?:saved|added|moved|restored|written|ticked|re-opened|changed)\b[^:]*:"
)
#: "item: item must not be empty" (a field name repeated by a validation message).
_REPEATED_FIELD_RE = re.compile(r"\b([a-z_]+): (?=\1\b)")


def refusal(prefix: str, exc: object) -> str:
    """A store refusal for ``st.error``, markdown-escaped: ``Not saved: <reason>``.

    When the store's message already names the refusal in its first clause
    ("decision not saved: …") it is shown as it is, capitalised, instead of a second
    prefix ("Not saved: decision not saved: …"); a field name the validation message
    repeats is written once ("item: item must not be empty" -> "item must not be
    empty"); raw stored words read as in the rest of the UI (:func:`friendly`).
    """
    text = friendly(_REPEATED_FIELD_RE.sub("", str(exc).strip()))
    if _OWN_REFUSAL_RE.match(text):
        return md_escape(text[:1].upper() + text[1:])
    return f"{prefix}: {md_escape(text)}"


def unavailable_page_notice() -> None:
    """On the page shown instead (the default, Portfolio): one line saying why a page
    the address asked for did not open ("The Enter page needs the editor role; you are
    a viewer.").

    Streamlit runs the default page, without a word, when the address names a page
    outside this session's ``st.navigation`` (streamlit_app.py registers Enter, Import
    and Admin only for the roles that may use them). The page asked for is read from
    the run's request: the page name (``/enter``) or page hash (``st.switch_page``,
    AppTest) Streamlit was asked to run, else the path of ``st.context.url``.
    """
    from dashboard import state

    wanted = requested_page()
    if wanted is None:
        return
    title, needed = RESTRICTED_PAGES[wanted]
    role = state.current_role()
    if allowed(role, Role(needed)):
        return  # the page is in this role's navigation: nothing was refused
    you = f"you are {article(role.value)}" if role is not None else "you have no role"
    st.info(f"The {title} page needs the {needed} role; {you}.", icon=":material/lock:")


def requested_page() -> str | None:
    """The role-restricted page (a key of :data:`RESTRICTED_PAGES`) this run was asked
    for but is not running, or None.

    Read from the script run's intent (page name from the address, or page hash) and,
    when Streamlit's internals offer neither, from ``st.context.url`` (public: the
    address in the browser, whose page path Streamlit strips only for registered pages).
    """
    names = set()
    with contextlib.suppress(Exception):  # Streamlit internals: a hint, never a crash
        from streamlit.runtime.scriptrunner import get_script_run_ctx
        from streamlit.util import calc_hash

        ctx = get_script_run_ctx()
        manager = ctx.pages_manager if ctx is not None else None
        if manager is not None:
            current = manager.current_page_script_hash
            intended_name = manager.intended_page_name or ""
            intended_hash = manager.intended_page_script_hash or ""
            for name in RESTRICTED_PAGES:
                page_hash = calc_hash(name)
                if page_hash == current:
                    return None  # that page is running
                if intended_name.strip("/") == name or intended_hash == page_hash:
                    names.add(name)
    with contextlib.suppress(Exception):
        url = st.context.url
        if url:
            last = urlparse(url).path.rstrip("/").rsplit("/", 1)[-1]
            if last in RESTRICTED_PAGES:
                names.add(last)
    return next(iter(sorted(names)), None)


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


def csv_download(
    frame: pd.DataFrame, *, file_name: str, key: str, label: str = "Download CSV"
) -> None:
    """PilotGate's own CSV download of a table, next to it: written by
    :func:`metrics.csvio.to_csv_text`, so a cell such as ``=cmd|' /C calc'!A0`` is
    neutralised (Streamlit's built-in table download, which writes cells raw, is off:
    ``client.disableDataExport``). The file is written only when the button is
    clicked (a page with 1,000 pilots does not build CSVs nobody asked for)."""
    st.download_button(
        label,
        data=lambda: csvio.to_csv_text(frame),
        file_name=file_name,
        mime="text/csv",
        on_click="ignore",
        key=key,
        icon=":material/download:",
    )


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
