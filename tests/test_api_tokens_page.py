"""The Admin page's API tokens section (AppTest): create a token (shown once, stored as a
hash), list it, revoke it; the store's refusals shown, nothing written."""

from __future__ import annotations

import hashlib
from datetime import date

import pytest
import sqlalchemy as sa
from sqlmodel import Session
from streamlit.testing.v1 import AppTest

from metrics import store
from metrics.db import init_db, make_engine
from metrics.models import ApiToken
from tests.apptest_helpers import APP, clear_caches
from tests.factories import make_pilot, make_user

ADMIN_PAGE = "dashboard/pages/admin.py"
PILOT = "Helpdesk triage assistant"


@pytest.fixture
def admin_db(tmp_path, monkeypatch):
    """SQLite with one pilot and the admin ada, the dashboard signed in as ada."""
    for var in ("PILOTGATE_AUTH_MODE", "PILOTGATE_DEFAULT_ROLE", "PILOTGATE_PROXY_USER_HEADER"):
        monkeypatch.delenv(var, raising=False)
    url = f"sqlite:///{tmp_path / 'admin.db'}"
    engine = make_engine(url)
    init_db(engine)
    with Session(engine) as s:
        make_pilot(s, PILOT, actor="setup")
        make_pilot(s, "Invoice copilot", actor="setup")
        make_user(s, "ada", role="admin", actor="setup")
        s.commit()
    monkeypatch.setenv("PILOTGATE_DATABASE_URL", url)
    monkeypatch.setenv("PILOTGATE_ACTOR", "ada")
    clear_caches()
    yield engine
    clear_caches()
    engine.dispose()


def _admin_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30)
    at.session_state["as_of"] = date(2012, 6, 30)
    at.run(timeout=30)
    at.switch_page(ADMIN_PAGE).run(timeout=30)
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_create_shows_the_token_once_and_stores_only_its_hash(admin_db):
    at = _admin_page()
    assert "API tokens" in [t.label for t in at.tabs]
    at.text_input(key="admin-token-name").input("acme-nightly")
    at.multiselect(key="admin-token-pilots").select(PILOT)
    at.button(key="admin-token-add").click().run(timeout=30)
    assert not at.exception, [e.value for e in at.exception]
    (code,) = [c.value for c in at.code]
    assert code.startswith("pgt_") and len(code) == 47
    assert "shown only this once" in at.success[0].value.replace("\\", "")
    with Session(admin_db) as s:
        row = s.exec(sa.select(ApiToken)).one()[0]
        frame = store.api_tokens_frame(s)
    assert row.token_hash == hashlib.sha256(code.encode()).hexdigest()
    assert (row.name, row.role, row.created_by) == ("acme-nightly", "editor", "ada")
    assert frame["pilots"].tolist() == [PILOT]
    tables = [d.value for d in at.dataframe if "Last used (UTC)" in d.value.columns]
    assert tables[0]["Name"].tolist() == ["acme-nightly"]
    assert tables[0]["Pilots"].tolist() == [PILOT]
    # shown once: the next run no longer has it
    at.run(timeout=30)
    assert [c.value for c in at.code] == []


def test_a_bad_name_is_refused_with_the_reason(admin_db):
    at = _admin_page()
    at.text_input(key="admin-token-name").input("=cmd")
    at.button(key="admin-token-add").click().run(timeout=30)
    assert not at.exception
    assert "token name" in at.error[0].value
    with Session(admin_db) as s:
        assert store.api_tokens_frame(s).empty


def test_revoke(admin_db):
    from tests.factories import make_token

    with Session(admin_db) as s:
        make_token(s, "old-job", actor="ada")
        s.commit()
    at = _admin_page()
    at.selectbox(key="admin-token-revoke-name").select("old-job")
    at.button(key="admin-token-revoke").click().run(timeout=30)
    assert not at.exception, [e.value for e in at.exception]
    with Session(admin_db) as s:
        frame = store.api_tokens_frame(s)
    assert frame["revoked_at"].notna().all()
    assert "Revoked old-job" in at.success[0].value.replace("\\", "")
