"""Admin: users and their roles; pilots and their metrics (admins only, docs/auth.md).

Every change goes through the store (``metrics.users.add_user`` / ``set_role``,
``metrics.store.save_pilot``), which checks the admin role again and writes the audit
log; a refused input shows the store's message and writes nothing.
"""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import streamlit as st
from pydantic import ValidationError

from dashboard import components as ui
from dashboard import state
from dashboard.sections import api_tokens
from dashboard.sections import webhooks as webhooks_section
from metrics import computations as C
from metrics import store, users
from metrics.db import session_scope
from metrics.errors import StoreError
from metrics.models import Direction, MetricCreate, MetricRole, PilotCreate, Role, Stage
from metrics.settings import get_settings

NEW = 0  # the "new pilot" choice of the pilot picker (database ids start at 1)
PICK_KEY = "admin_pilot"
_PENDING_PICK = "_admin_pilot_pending"
ROLES = [r.value for r in Role]
STAGES = [s.value for s in Stage]
DIRECTIONS = [d.value for d in Direction]
METRIC_ROLES = [r.value for r in MetricRole]
WINDOW_LABEL = "Trailing window (weeks)"
MIN_WEEKS_LABEL = "Minimum pilot weeks"
ROLE_HELP = (
    "viewer: read and export · editor: also enter, import, correct values and tick "
    "checklist items · admin: also pilots, metrics, users, decisions and stage gates"
)

st.title("Admin")
if not state.can(Role.admin):  # the page is hidden from others; the store checks too
    st.warning("The Admin page needs the admin role. Ask an admin to change your role.")
    st.stop()
ui.show_flash()

actor = state.current_actor()
version = state.data_version()


@st.cache_data(ttl=state.CACHE_TTL, show_spinner=False)
def _users(version: tuple) -> pd.DataFrame:
    with session_scope(state.get_engine()) as s:
        return users.users_frame(s)


def _run_write(action, success: str) -> bool:
    """Run ``action(session)`` in one transaction; show the store's message on refusal."""
    try:
        with session_scope(state.get_engine()) as s:
            action(s)
    except StoreError as exc:
        st.error(ui.md_escape(str(exc)))  # messages quote user input: shown as text
        return False
    state.after_write()
    ui.flash(ui.md_escape(success))
    return True


users_tab, pilots_tab, tokens_tab, webhooks_tab = st.tabs(
    ["Users and roles", "Pilots and metrics", "API tokens", "Webhooks"]
)

# =========================================================================== users
with users_tab:
    if get_settings().auth_mode == "none":
        st.info(
            f"Single-user mode (PILOTGATE_AUTH_MODE=none): everyone using this dashboard "
            f"is {ui.md_escape(actor)}, with every right unless a user of that name is listed "
            "below. The roles here apply once sign-in is switched on (docs/auth.md)."
        )
    frame = _users(version)
    if frame.empty:
        st.caption("No users yet. Add the first admin below.")
    else:
        st.dataframe(
            pd.DataFrame(
                {
                    "Name": frame["name"],
                    "E-mail": frame["email"],
                    "Role": frame["role"],
                    "Added by": frame["created_by"],
                    "Added (UTC)": frame["created_at"].dt.strftime("%Y-%m-%d %H:%M"),
                    "Changed (UTC)": frame["updated_at"].dt.strftime("%Y-%m-%d %H:%M"),
                }
            ),
            hide_index=True,
            key="admin-users",
        )

    left, right = st.columns(2)
    with left, st.form("admin-add-user", clear_on_submit=False):
        st.markdown("**Add a user**")
        new_name = st.text_input(
            "Name",
            key="admin-user-name",
            help="The sign-in name: the e-mail address with OpenID Connect sign-in, the "
            "proxy header's value behind a sign-in proxy.",
        )
        new_email = st.text_input("E-mail (optional)", key="admin-user-email")
        new_role = st.selectbox("Role", ROLES, key="admin-user-role", help=ROLE_HELP)
        if st.form_submit_button("Add user", key="admin-user-add", icon=":material/person_add:"):
            name = new_name.strip()
            if _run_write(
                lambda s: users.add_user(
                    session=s, actor=actor, name=name, email=new_email, role=new_role
                ),
                f"Added {name} as {new_role}.",
            ):
                for k in ("admin-user-name", "admin-user-email"):
                    st.session_state.pop(k, None)
                st.rerun()

    with right:
        if frame.empty:
            st.caption("Add a user first; then change roles here.")
        else:
            ids = [int(x) for x in frame["user_id"]]
            user_names = dict(zip(ids, frame["name"].astype(str), strict=True))
            user_roles = dict(zip(ids, frame["role"].astype(str), strict=True))
            with st.form("admin-set-role"):
                st.markdown("**Change a role**")
                uid = st.selectbox(
                    "User",
                    ids,
                    format_func=lambda i: f"{user_names.get(i, i)} ({user_roles.get(i, '?')})",
                    key="admin-role-user",
                )
                role_choice = st.selectbox("New role", ROLES, key="admin-role-role", help=ROLE_HELP)
                if st.form_submit_button(
                    "Change role", key="admin-role-save", icon=":material/manage_accounts:"
                ):
                    who = user_names[uid]
                    if _run_write(
                        lambda s: users.set_role(
                            session=s, actor=actor, name=who, role=role_choice
                        ),
                        f"{who} is now {role_choice}.",
                    ):
                        st.rerun()


# =========================================================================== pilots


def _num(value) -> float | None:
    """A stored number for a number_input default: None when undefined (never 0)."""
    return None if value is None or pd.isna(value) else float(value)


def _metric_widgets(prefix: str, m: dict, *, new: bool) -> dict:
    """Inputs of one metric definition (keys from the metric's database id)."""
    c = st.columns(4)
    out: dict = {}
    if new:
        out["key"] = c[0].text_input(
            "Key", key=f"{prefix}-key", help="a-z, 0-9 and _, e.g. resolution_time"
        )
    else:
        out["key"] = m["key"]
        c[0].text_input(
            "Key",
            value=m["key"],
            key=f"{prefix}-key",
            disabled=True,
            help="Identifies the metric (its weekly values and imports use it); fixed",
        )
    out["label"] = c[1].text_input("Label", value=m.get("label", ""), key=f"{prefix}-label")
    out["unit"] = c[2].text_input("Unit", value=m.get("unit", ""), key=f"{prefix}-unit")
    out["direction"] = c[3].selectbox(
        "Direction",
        DIRECTIONS,
        index=DIRECTIONS.index(m.get("direction", Direction.lower_is_better.value)),
        format_func=ui.friendly,  # "lower is better"; the stored value stays raw
        key=f"{prefix}-direction",
    )
    c = st.columns(4)
    out["role"] = c[0].selectbox(
        "Role",
        METRIC_ROLES,
        index=METRIC_ROLES.index(m.get("role", MetricRole.primary.value)),
        key=f"{prefix}-role",
        help="primary: must improve · guardrail: must not get worse beyond its margin",
    )
    out["baseline"] = c[1].number_input(
        "Baseline",
        value=_num(m.get("baseline")),
        key=f"{prefix}-baseline",
        help="Empty: the mean of at least 3 weeks before the start date",
        format="%g",
    )
    out["target"] = c[2].number_input(
        "Target",
        value=_num(m.get("target")),
        key=f"{prefix}-target",
        format="%g",
        help="Primary metrics: required · guardrails: optional (shown, never judged)",
    )
    margin = _num(m.get("margin"))
    if margin is None and m.get("role") == MetricRole.guardrail.value:
        margin = 0.0
    out["margin"] = c[3].number_input(
        "Non-inferiority margin",
        value=margin,
        min_value=0.0,
        key=f"{prefix}-margin",
        help="Guardrails only: the largest tolerated worsening, in the metric's unit "
        "(percentage points for a % metric); empty = 0: any worsening breaches",
        format="%g",
    )
    c = st.columns(4)
    out["min_value"] = c[0].number_input(
        "Allowed minimum", value=_num(m.get("min_value")), key=f"{prefix}-min", format="%g"
    )
    out["max_value"] = c[1].number_input(
        "Allowed maximum", value=_num(m.get("max_value")), key=f"{prefix}-max", format="%g"
    )
    out["value_per_unit"] = c[2].number_input(
        "Value per unit",
        value=_num(m.get("value_per_unit")),
        key=f"{prefix}-vpu",
        help="Money (the pilot's currency) per week for each unit of improvement; "
        "empty = no value model",
        format="%g",
    )
    return out


def _weeks_problem(label: str, value) -> str:
    """Why a whole-number-of-weeks field (trailing window, minimum pilot weeks) is
    refused, naming the field and the rule; "" when it is fine."""
    if value is None:
        return f"{label} is empty: type a whole number of at least 1."
    if value < 1 or value != int(value):
        return f"{label} must be a whole number of at least 1 (>= 1); it is {value:g}."
    return ""


def _metric_in(fields: dict, where: str) -> MetricCreate:
    try:
        return MetricCreate(**fields)
    except ValidationError as exc:
        raise StoreError(f"{where}: {store.validation_message(exc)}") from None


with pilots_tab:
    pilots = state.pilots(version)
    pending = st.session_state.pop(_PENDING_PICK, None)
    pilot_ids = [int(x) for x in pilots[C.PILOT_ID]] if not pilots.empty else []
    if pending is not None and pending in pilot_ids:
        st.session_state[PICK_KEY] = pending
    pilot_names = (
        dict(zip(pilot_ids, pilots[C.PILOT].astype(str), strict=True)) if pilot_ids else {}
    )
    archived_ids = (
        {int(i) for i, a in zip(pilots[C.PILOT_ID], pilots["archived"], strict=True) if a}
        if pilot_ids
        else set()
    )
    pid = st.selectbox(
        "Pilot",
        [NEW, *pilot_ids],
        format_func=lambda i: (
            "New pilot…"
            if i == NEW
            else pilot_names.get(i, str(i)) + (" (archived)" if i in archived_ids else "")
        ),
        key=PICK_KEY,
    )
    existing = pid != NEW
    if existing:
        p = pilots.set_index(C.PILOT_ID).loc[pid]
        metric_rows = state.metrics(version, pid, include_archived=True).to_dict("records")
    else:
        p = None
        metric_rows = []
    prefix = f"adm-p{pid}"
    today = date.today()

    with st.form(f"admin-pilot-{pid}"):
        st.markdown("**Pilot**")
        if existing:
            st.text_input(
                "Name",
                value=str(p[C.PILOT]),
                key=f"{prefix}-name",
                disabled=True,
                help="Rename the pilot below the form (Rename and archive).",
            )
            name = str(p[C.PILOT])
        else:
            name = st.text_input("Name", key=f"{prefix}-name")
        c = st.columns(3)
        vendor = c[0].text_input(
            "Vendor", value=str(p["vendor"]) if existing else "", key=f"{prefix}-vendor"
        )
        use_case = c[1].text_input(
            "Use case", value=str(p["use_case"]) if existing else "", key=f"{prefix}-use"
        )
        owner = c[2].text_input(
            "Owner", value=str(p["owner"]) if existing else "", key=f"{prefix}-owner"
        )
        c = st.columns(4)
        stage = c[0].selectbox(
            "Stage",
            STAGES,
            index=STAGES.index(str(p["stage"])) if existing else STAGES.index("pilot"),
            key=f"{prefix}-stage",
        )
        start = c[1].date_input(
            "Start date (first pilot week)",
            value=pd.Timestamp(p[C.START_DATE]).date() if existing else today,
            key=f"{prefix}-start",
            format="YYYY-MM-DD",
        )
        decision = c[2].date_input(
            "Decision date (go/no-go)",
            value=pd.Timestamp(p[C.DECISION_DATE]).date()
            if existing
            else today + timedelta(weeks=12),
            key=f"{prefix}-decision",
            format="YYYY-MM-DD",
        )
        cost = c[3].number_input(
            "Cost",
            value=_num(p["cost"]) if existing else None,
            min_value=0.0,
            key=f"{prefix}-cost",
            help="In the pilot's currency; empty = not set",
            format="%g",
        )
        c = st.columns(4)
        # No min_value: a browser refuses a number below it without a word, so the
        # rule (>= 1) is checked on Save with a message naming the field.
        window = c[0].number_input(
            WINDOW_LABEL,
            value=int(p[C.WINDOW]) if existing else get_settings().trailing_window,
            step=1,
            key=f"{prefix}-window",
            help="Current = mean of the last N reported pilot weeks (a whole number, at least 1)",
        )
        min_weeks = c[1].number_input(
            MIN_WEEKS_LABEL,
            value=int(p[C.MIN_WEEKS]) if existing else get_settings().min_weeks,
            step=1,
            key=f"{prefix}-min-weeks",
            help="Fewer reported pilot weeks: insufficient data (a whole number, at least 1)",
        )

        st.markdown("**Metrics**")
        st.caption(
            "A metric is identified by its key. Metrics are never deleted here (their "
            "weekly values and history are kept)."
        )
        metric_fields: list[tuple[str, dict]] = []
        for m in metric_rows:
            mid = int(m[C.METRIC_ID])
            with st.container(border=True):
                if m.get("archived"):
                    st.caption(
                        f"Metric {ui.md_escape(m[C.KEY])} is archived: hidden from pages, the "
                        "summary and the recommendation; its values are kept."
                    )
                metric_fields.append(
                    (f"metric {m[C.KEY]}", _metric_widgets(f"{prefix}-m{mid}", m, new=False))
                )
        with st.container(border=True):
            st.markdown("**New metric** (leave the key empty to add none)")
            new_fields = _metric_widgets(f"{prefix}-mnew", {}, new=True)

        saved = st.form_submit_button(
            "Save pilot", key=f"{prefix}-save", type="primary", icon=":material/save:"
        )

    week_problems = [
        problem
        for problem in (
            _weeks_problem(WINDOW_LABEL, window),
            _weeks_problem(MIN_WEEKS_LABEL, min_weeks),
        )
        if problem
    ]
    if saved and week_problems:
        st.error("Not saved: " + " ".join(week_problems) + " Nothing was changed.")
        saved = False
    if saved:
        result: dict = {}

        def _save(s) -> None:
            try:
                pilot_in = PilotCreate(
                    name=name,
                    vendor=vendor,
                    use_case=use_case,
                    owner=owner,
                    stage=stage,
                    start_date=start,
                    decision_date=decision,
                    cost=cost,
                    trailing_window=int(window),
                    min_weeks=int(min_weeks),
                )
            except ValidationError as exc:
                raise StoreError(f"pilot: {store.validation_message(exc)}") from None
            metrics_in = [_metric_in(f, where) for where, f in metric_fields]
            if str(new_fields["key"]).strip():
                metrics_in.append(
                    _metric_in(new_fields, f"new metric {str(new_fields['key']).strip()}")
                )
            if not metrics_in:
                raise StoreError("a pilot needs at least one metric: fill in the new metric")
            # "New pilot" only ever creates: a name taken by another pilot (ignoring case
            # and spacing) is refused by the store, never overwritten.
            res = store.save_pilot(
                session=s,
                actor=actor,
                pilot_in=pilot_in,
                metrics_in=metrics_in,
                mode="update" if existing else "create",
                pilot_id=pid if existing else None,
            )
            result["id"] = res.pilot_id
            result["res"] = res

        if _run_write(_save, f"Saved {name.strip()}."):
            res = result["res"]
            ui.flash(ui.md_escape(res.describe()), "success" if res.changed else "info")
            for k in [k for k in st.session_state if str(k).startswith(f"{prefix}-mnew")]:
                del st.session_state[k]
            if not existing:
                for k in [k for k in st.session_state if str(k).startswith(f"{prefix}-")]:
                    del st.session_state[k]
            st.session_state[_PENDING_PICK] = result["id"]
            st.rerun()

    # ------------------------------------------------------------------ rename and archive
    if existing:
        st.markdown("**Rename and archive**")
        st.caption(
            "Every rename and archive is recorded with who and when (Pilot page, Definition "
            "history; `pilotgate export revisions`). Archived pilots leave the Portfolio "
            "(its filter shows them); every value, decision and checklist item is kept."
        )
        r1, r2 = st.columns(2)
        with r1, st.form(f"admin-rename-{pid}"):
            new_name = st.text_input("New name", value=str(p[C.PILOT]), key=f"{prefix}-rename")
            if st.form_submit_button(
                "Rename pilot", key=f"{prefix}-rename-save", icon=":material/edit:"
            ) and _run_write(
                lambda s: store.rename_pilot(
                    session=s, actor=actor, pilot_id=pid, new_name=new_name
                ),
                f"Renamed {p[C.PILOT]} to {' '.join(new_name.split())}.",
            ):
                st.session_state.pop(f"{prefix}-rename", None)
                st.session_state[_PENDING_PICK] = pid
                st.rerun()
        with r2:
            is_archived = bool(p["archived"])
            if st.button(
                "Unarchive pilot" if is_archived else "Archive pilot",
                key=f"{prefix}-archive",
                icon=":material/unarchive:" if is_archived else ":material/archive:",
            ) and _run_write(
                lambda s: store.set_pilot_archived(
                    session=s, actor=actor, pilot_id=pid, archived=not is_archived
                ),
                f"{'Unarchived' if is_archived else 'Archived'} {p[C.PILOT]}.",
            ):
                st.session_state[_PENDING_PICK] = pid
                st.rerun()
            if metric_rows:
                metric_ids = [int(m[C.METRIC_ID]) for m in metric_rows]
                info = {int(m[C.METRIC_ID]): m for m in metric_rows}
                chosen = st.selectbox(
                    "Metric",
                    metric_ids,
                    format_func=lambda i: (
                        f"{info[i][C.LABEL]} ({info[i][C.KEY]})"
                        + (" (archived)" if info[i].get("archived") else "")
                    ),
                    key=f"{prefix}-archive-metric",
                )
                m_archived = bool(info[chosen].get("archived"))
                if st.button(
                    "Unarchive metric" if m_archived else "Archive metric",
                    key=f"{prefix}-archive-metric-go",
                    icon=":material/unarchive:" if m_archived else ":material/archive:",
                    help="An archived metric leaves the pages, the summary and the "
                    "recommendation; its weekly values and history are kept.",
                ):
                    label = info[chosen][C.LABEL]
                    if _run_write(
                        lambda s: store.set_metric_archived(
                            session=s, actor=actor, metric_id=chosen, archived=not m_archived
                        ),
                        f"{'Unarchived' if m_archived else 'Archived'} metric {label}.",
                    ):
                        st.session_state[_PENDING_PICK] = pid
                        st.rerun()

# =========================================================================== API tokens
with tokens_tab:
    api_tokens.render(actor=actor, version=version)

# =========================================================================== webhooks
with webhooks_tab:
    webhooks_section.render(actor=actor)
