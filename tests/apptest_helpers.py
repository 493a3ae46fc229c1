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


def spy_downloads(monkeypatch) -> dict[str, tuple[bytes, str]]:
    """Every file handed to ``st.download_button`` in the runs that follow:
    {file name: (bytes, mime)}. A file built on click (a callable, Streamlit's deferred
    download) is built at once, as a click would build it."""
    from streamlit.runtime.media_file_manager import MediaFileManager
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    seen: dict[str, tuple[bytes, str]] = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def spy(self, path_or_data, mimetype, kind, filename=None):
        if filename and isinstance(path_or_data, bytes):
            seen[filename] = (path_or_data, mimetype)
        return original(self, path_or_data, mimetype, kind, filename)

    original_deferred = MediaFileManager.add_deferred

    def spy_deferred(self, data_callable, mimetype, coordinates, file_name=None, **kw):
        data = data_callable()
        seen[file_name] = (data.encode("utf-8") if isinstance(data, str) else data, mimetype)
        return original_deferred(self, data_callable, mimetype, coordinates, file_name, **kw)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", spy)
    monkeypatch.setattr(MediaFileManager, "add_deferred", spy_deferred)
    return seen
