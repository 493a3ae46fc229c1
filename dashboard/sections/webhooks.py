"""Webhooks on the Admin page (DESIGN §8, §13): endpoints, their recent deliveries,
subscribing and removing one. Writes go through :mod:`metrics.alerts` (admin role
checked there again); a generated signing secret is shown once, right after adding.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import components as ui
from dashboard import state
from metrics import alerts
from metrics.db import session_scope
from metrics.errors import StoreError

_SECRET_KEY = "_webhook_secret_once"


def _endpoints() -> tuple[pd.DataFrame, pd.DataFrame]:
    # Not cached: deliveries change on every alert run (no data-version bump), and the
    # two queries are small (admins only).
    with session_scope(state.get_engine()) as s:
        return alerts.webhooks_frame(s), alerts.deliveries_frame(s, limit=200)


def _when(x) -> str:
    return "—" if x is None or pd.isna(x) else pd.Timestamp(x).strftime("%Y-%m-%d %H:%M")


def render(*, actor: str) -> None:
    """The Webhooks section: list, recent deliveries per endpoint, add, remove."""
    st.subheader("Webhooks")
    st.caption(
        "Alert events (" + ", ".join(alerts.EVENT_TYPES) + ") are POSTed as signed JSON "
        "(Standard Webhooks) by `pilotgate alerts run` or the API's schedule; each event "
        "reaches each endpoint once, failed deliveries are retried with backoff."
    )
    secret = st.session_state.pop(_SECRET_KEY, None)
    if secret:
        st.success("Webhook added. Its signing secret, shown only now: give it to the receiver.")
        st.code(secret, language=None)
    hooks, deliveries = _endpoints()
    if hooks.empty:
        st.caption("No webhooks yet.")
    for h in hooks.to_dict("records"):
        with st.expander(
            f"#{h['webhook_id']} {ui.md_escape(h['url'])} · {h['delivered']} delivered, "
            f"{h['pending']} pending",
            expanded=False,
        ):
            st.caption(
                f"Events: {h['event_types'] or 'every type'} · added by "
                f"{ui.md_escape(h['created_by'] or '—')} on {_when(h['created_at'])} UTC"
            )
            mine = deliveries[deliveries["webhook_id"] == h["webhook_id"]].head(20)
            if mine.empty:
                st.caption("No deliveries yet.")
            else:
                st.dataframe(
                    pd.DataFrame(
                        {
                            "Event": mine["type"],
                            "Pilot": mine["pilot"],
                            "Status": mine["status"],
                            "Attempts": mine["attempts"],
                            "Last attempt (UTC)": mine["last_attempt_at"].map(_when),
                            "HTTP": mine["last_status_code"],
                            "Error": mine["last_error"],
                            "Next retry (UTC)": [
                                _when(n) if s == "pending" else ""
                                for n, s in zip(
                                    mine["next_attempt_at"], mine["status"], strict=True
                                )
                            ],
                        }
                    ),
                    hide_index=True,
                    key=f"webhook-deliveries-{h['webhook_id']}",
                )
    left, right = st.columns(2)
    with left, st.form("webhook-add", clear_on_submit=True):
        st.markdown("**Subscribe an endpoint**")
        url = st.text_input("URL", placeholder="https://hooks.example.com/pilotgate")
        given = st.text_input(
            "Signing secret (optional)",
            type="password",
            help="whsec_ followed by base64; leave empty to have one generated.",
        )
        types = st.multiselect("Events", alerts.EVENT_TYPES, placeholder="Every event type")
        if st.form_submit_button("Add webhook", icon=":material/add_link:"):
            try:
                with session_scope(state.get_engine()) as s:
                    _, used = alerts.add_webhook(
                        session=s,
                        actor=actor,
                        url=url,
                        secret=given.strip() or None,
                        event_types=types,
                    )
            except StoreError as exc:
                st.error(ui.md_escape(str(exc)))
            else:
                state.after_write()
                if not given.strip():
                    st.session_state[_SECRET_KEY] = used
                else:
                    ui.flash(ui.md_escape(f"Webhook {url.strip()} added."))
                st.rerun()
    with right:
        if not hooks.empty:
            with st.form("webhook-remove"):
                st.markdown("**Remove an endpoint**")
                urls = dict(zip(hooks["webhook_id"].astype(int), hooks["url"], strict=True))
                pick = st.selectbox(
                    "Webhook", list(urls), format_func=lambda i: f"#{i} {urls.get(i, '')}"
                )
                if st.form_submit_button("Remove webhook", icon=":material/link_off:"):
                    try:
                        with session_scope(state.get_engine()) as s:
                            alerts.remove_webhook(session=s, actor=actor, webhook_id=int(pick))
                    except StoreError as exc:
                        st.error(ui.md_escape(str(exc)))
                    else:
                        state.after_write()
                        ui.flash(ui.md_escape(f"Webhook #{pick} removed."))
                        st.rerun()
