"""Shared helpers for the page tests (Streamlit AppTest): the app's path, clearing
Streamlit's and the settings' caches between tests, and opening a page."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import streamlit as st
from streamlit.testing.v1 import AppTest

from metrics.settings import get_settings

#: The dashboard entry point every page test runs.
APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")


def clear_caches() -> None:
    """Forget cached settings, reads and the engine (DESIGN §10: between tests)."""
    get_settings.cache_clear()
    st.cache_data.clear()
    st.cache_resource.clear()


def open_app(page: str | None, *, as_of: date, pilot_id: int | None = None) -> AppTest:
    """Run the app judged ``as_of`` (and on ``pilot_id``), switch to ``page``; fails on
    any exception the page raised."""
    at = AppTest.from_file(APP, default_timeout=30)
    at.session_state["as_of"] = as_of
    if pilot_id is not None:
        at.session_state["pilot_id"] = pilot_id
    at.run(timeout=30)
    if page is not None:
        at.switch_page(page).run(timeout=30)
    assert not at.exception, [e.value for e in at.exception]
    return at
