"""Admin page section: HTTP API tokens (docs/api.md) -- list, create (the token is shown
once), revoke.

Every change goes through :func:`metrics.store.create_api_token` and
:func:`metrics.store.revoke_api_token`, which check the admin role again and write the
audit log. The secret lives only in this browser session until it has been shown once.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st
from pydantic import ValidationError

from dashboard import components as ui
from dashboard import state
from metrics import store
from metrics.db import session_scope
from metrics.errors import StoreError
from metrics.models import ApiTokenCreate, TokenRole

#: session_state key holding (name, secret) of a token just created, until shown once.
_NEW_SECRET = "_admin_new_api_token"
ROLE_HELP = "viewer: read pilots and the summary · editor: also push weekly measurements"


@st.cache_data(ttl=state.CACHE_TTL, show_spinner=False)
def _tokens(version: tuple) -> pd.DataFrame:
    with session_scope(state.get_engine()) as s:
        return store.api_tokens_frame(s)


@st.cache_data(ttl=state.CACHE_TTL, show_spinner=False)
def _pilot_names(version: tuple) -> list[str]:
    with session_scope(state.get_engine()) as s:
        return store.pilots_frame(s)["pilot"].astype(str).tolist()


def _when(s: pd.Series) -> pd.Series:
    return s.dt.strftime("%Y-%m-%d %H:%M").fillna("")


def render(*, actor: str, version: tuple) -> None:
    """The section: the token table, the form to create one, the form to revoke one."""
    st.caption(
        "Tokens let a vendor's system push weekly values, and other systems read the "
        "summary, through the HTTP API (docs/api.md) without a dashboard login."
    )
    shown = st.session_state.pop(_NEW_SECRET, None)
    if shown:
        name, secret = shown
        st.success(
            ui.md_escape(
                f"Created the token {name}. Copy it now: it is shown only this once and "
                "stored only as a hash."
            )
        )
        st.code(secret, language=None)

    frame = _tokens(version)
    if frame.empty:
        st.caption("No API tokens yet.")
    else:
        st.dataframe(
            pd.DataFrame(
                {
                    "Name": frame["name"],
                    "Role": frame["role"],
                    "Pilots": frame["pilots"],
                    "Created (UTC)": _when(frame["created_at"]),
                    "Created by": frame["created_by"],
                    "Last used (UTC)": _when(frame["last_used_at"]),
                    "Revoked (UTC)": _when(frame["revoked_at"]),
                }
            ),
            hide_index=True,
            key="admin-api-tokens",
        )

    left, right = st.columns(2)
    with left, st.form("admin-add-token"):
        st.markdown("**Create a token**")
        name = st.text_input(
            "Token name",
            key="admin-token-name",
            placeholder="acme-nightly",
            help="Letters, digits, '.', '_' or '-'. Revisions written through the token "
            "record the actor token:<name>.",
        )
        role = st.selectbox(
            "Role", [r.value for r in TokenRole], index=1, key="admin-token-role", help=ROLE_HELP
        )
        pilots = st.multiselect(
            "Limit to pilots (none = every pilot)",
            _pilot_names(version),
            key="admin-token-pilots",
        )
        if st.form_submit_button("Create token", key="admin-token-add", icon=":material/key:"):
            try:
                token_in = ApiTokenCreate(name=name, role=role, pilots=pilots)
                with session_scope(state.get_engine()) as s:
                    secret = store.create_api_token(session=s, actor=actor, token_in=token_in)
            except ValidationError as exc:
                st.error(ui.md_escape(store.validation_message(exc)))
            except StoreError as exc:
                st.error(ui.md_escape(str(exc)))
            else:
                state.after_write()
                st.session_state[_NEW_SECRET] = (token_in.name, secret)
                for k in ("admin-token-name", "admin-token-pilots"):
                    st.session_state.pop(k, None)
                st.rerun()

    with right:
        active = [] if frame.empty else frame.loc[frame["revoked_at"].isna(), "name"].tolist()
        if not active:
            st.caption("No active token to revoke.")
        else:
            with st.form("admin-revoke-token"):
                st.markdown("**Revoke a token**")
                victim = st.selectbox("Token", active, key="admin-token-revoke-name")
                if st.form_submit_button(
                    "Revoke", key="admin-token-revoke", icon=":material/key_off:"
                ):
                    try:
                        with session_scope(state.get_engine()) as s:
                            store.revoke_api_token(session=s, actor=actor, name=victim)
                    except StoreError as exc:
                        st.error(ui.md_escape(str(exc)))
                    else:
                        state.after_write()
                        ui.flash(ui.md_escape(f"Revoked {victim}: it is refused from now on."))
                        st.rerun()
