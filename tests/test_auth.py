"""Sign-in (docs/auth.md): who the user is in each auth mode, the sign-in gate, and
which pages each role sees.

The rules of ``dashboard.auth`` are pure functions tested with tables; the gate and
the navigation run through ``streamlit.testing.v1.AppTest`` (``AppTest.user`` plays
``st.user``; the proxy header is supplied by replacing the one function that reads
``st.context.headers``, which AppTest cannot seed). The real OpenID Connect round trip
is in tests/test_oidc_browser.py.
"""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from sqlmodel import Session
from streamlit.testing.v1 import AppTest

from dashboard import auth
from metrics import users
from metrics.db import init_db, make_engine
from metrics.models import AuditEvent, Role
from metrics.settings import Settings, get_settings
from tests.apptest_helpers import APP
from tests.apptest_helpers import clear_caches as _clear_caches
from tests.factories import make_pilot, make_user

PAGE_FILES = {
    "Portfolio": "dashboard/pages/portfolio.py",
    "Pilot": "dashboard/pages/pilot.py",
    "Vendors": "dashboard/pages/vendors.py",
    "Enter": "dashboard/pages/enter.py",
    "Import": "dashboard/pages/import_csv.py",
    "Export": "dashboard/pages/export.py",
    "Admin": "dashboard/pages/admin.py",
}
VIEWER_PAGES = ["Portfolio", "Pilot", "Vendors", "Export"]
EDITOR_PAGES = ["Portfolio", "Pilot", "Vendors", "Enter", "Import", "Export"]
ADMIN_PAGES = [*EDITOR_PAGES, "Admin"]
OIDC_SECRETS = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    # 64 hex characters: 32 bytes, the least PilotGate accepts (docs/auth.md)
    "cookie_secret": "6f1c2a9e4b7d3f8a0c5e1b9d7a3f6c2e8b4d0a7f1e5c9b3d6a2f8e4c0b7d1a5f",
    "client_id": "pilotgate",
    "client_secret": "a-client-secret-for-tests-only",
    "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration",
}


# =========================================================================== pure rules


@pytest.mark.parametrize(
    ("user_info", "expected"),
    [
        ({}, (None, "")),
        ({"email": "ana@example.com"}, (None, "")),  # AppTest's default: not logged in
        ({"is_logged_in": False, "email": "ana@example.com"}, (None, "")),
        ({"is_logged_in": "true", "email": "ana@example.com"}, (None, "")),
        (
            {"is_logged_in": True, "email": " ana@example.com ", "sub": "42"},
            ("ana@example.com", "ana@example.com"),
        ),
        (
            {"is_logged_in": True, "email": "ana@example.com", "email_verified": True},
            ("ana@example.com", "ana@example.com"),
        ),
        # an unverified address could name someone else: the subject is used instead
        (
            {
                "is_logged_in": True,
                "email": "ana@example.com",
                "email_verified": False,
                "sub": "42",
            },
            ("42", "ana@example.com"),
        ),
        (
            {"is_logged_in": True, "email": "a@x", "email_verified": "false", "sub": "s"},
            ("s", "a@x"),
        ),
        ({"is_logged_in": True, "sub": "auth0|123", "name": "Ana"}, ("auth0|123", "")),
        ({"is_logged_in": True, "email": "not-an-address", "sub": "7"}, ("7", "")),
        ({"is_logged_in": True, "email": "", "sub": ""}, (None, "")),
        ({"is_logged_in": True, "email": "a\nb@example.com", "sub": "9"}, ("9", "")),
        ({"is_logged_in": True, "sub": "x" * 201}, (None, "")),
    ],
)
def test_oidc_user_name(user_info, expected):
    assert auth.name_from_user_info(user_info) == expected


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["bo@example.com"], ("bo@example.com", "")),
        (["  bo  "], ("bo", "")),
        ([], (None, "the request has no X-Forwarded-Email header")),
        (
            ["mallory", "bo"],
            (
                None,
                "the request has the X-Forwarded-Email header 2 times; the proxy must "
                "replace any copy the browser sends",
            ),
        ),
        (["   "], (None, "the X-Forwarded-Email header is empty or not a valid user name")),
        (["a\x00b"], (None, "the X-Forwarded-Email header is empty or not a valid user name")),
        (["y" * 201], (None, "the X-Forwarded-Email header is empty or not a valid user name")),
    ],
)
def test_proxy_user_name(values, expected):
    assert auth.name_from_header_values(values, "X-Forwarded-Email") == expected


@pytest.mark.parametrize(
    ("mode", "name", "role", "text"),
    [
        ("none", "local", Role.admin, "Signed in as local (single-user mode, admin)"),
        ("none", "local", Role.viewer, "Signed in as local (single-user mode, viewer)"),
        ("oidc", "ana@example.com", Role.editor, "Signed in as ana@example.com (editor)"),
        ("proxy", "bo", Role.viewer, "Signed in as bo (viewer) via the sign-in proxy"),
        ("oidc", "eve@example.com", None, "Signed in as eve@example.com (no access)"),
    ],
)
def test_describe(mode, name, role, text):
    assert auth.describe(auth.Identity(mode=mode, name=name), role) == text


def test_identity_in_mode_none_is_the_configured_actor():
    ident = auth.current_identity(Settings(auth_mode="none", actor="pmo"))
    assert (ident.name, ident.signed_in, ident.mode) == ("pmo", True, "none")


def test_proxy_mode_must_name_its_header():
    with pytest.raises(ValueError, match="auth_mode proxy needs PILOTGATE_PROXY_USER_HEADER"):
        Settings(auth_mode="proxy")


def test_proxy_mode_without_a_request_is_nobody():
    ident = auth.current_identity(Settings(auth_mode="proxy", proxy_user_header="X-User"))
    assert (ident.name, ident.problem) == (None, "the request has no X-User header")


# =========================================================================== AppTest


@pytest.fixture
def db(tmp_path, monkeypatch):
    """A database with one pilot and the users ana (admin), eddie (editor), vera
    (viewer); auth settings from the environment (mode none unless a test sets it)."""
    url = f"sqlite:///{tmp_path / 'auth.db'}"
    engine = make_engine(url)
    init_db(engine)
    with Session(engine) as s:
        make_pilot(s, "Helpdesk triage assistant", actor="seed")
        make_user(s, "ana@example.com", role="admin", actor="seed")
        make_user(s, "eddie", role="editor", actor="seed")
        make_user(s, "vera", role="viewer", actor="seed")
        s.commit()
    monkeypatch.setenv("PILOTGATE_DATABASE_URL", url)
    for var in (
        "PILOTGATE_AUTH_MODE",
        "PILOTGATE_ACTOR",
        "PILOTGATE_DEFAULT_ROLE",
        "PILOTGATE_PROXY_USER_HEADER",
    ):
        monkeypatch.delenv(var, raising=False)
    _clear_caches()
    yield engine
    _clear_caches()
    engine.dispose()


def _mode(monkeypatch, mode: str, **env: str) -> None:
    monkeypatch.setenv("PILOTGATE_AUTH_MODE", mode)
    for k, v in env.items():
        monkeypatch.setenv(f"PILOTGATE_{k.upper()}", v)
    get_settings.cache_clear()


def _run(user: dict | None = None, secrets: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30)
    if user is not None:
        at.user = user
    if secrets is not None:
        at.secrets["auth"] = secrets
    at.run(timeout=30)
    assert not at.exception, [e.value for e in at.exception]
    return at


def _plain(md: str) -> str:
    return re.sub(r"\\(.)", r"\1", str(md)).replace("\u200b", "")


def _sidebar_text(at: AppTest) -> str:
    return "\n".join(_plain(c.value) for c in at.sidebar.caption)


def _pages(at: AppTest) -> list[str]:
    """The pages the navigation offers this session (AppTest.switch_page refuses the
    others), in navigation order."""
    shown = []
    for title, path in PAGE_FILES.items():
        try:
            at.switch_page(path)
        except ValueError:
            continue
        shown.append(title)
    at.switch_page(PAGE_FILES["Portfolio"])
    return shown


def test_mode_none_is_the_local_admin_with_every_page(db):
    at = _run()
    assert [t.value for t in at.title] == ["Portfolio"]
    assert "Signed in as local (single-user mode, admin)" in _sidebar_text(at)
    assert _pages(at) == ADMIN_PAGES
    assert not [b for b in at.button if b.label == "Log out"]


def test_mode_none_local_user_row_with_a_lower_role(db, monkeypatch):
    monkeypatch.setenv("PILOTGATE_ACTOR", "vera")
    get_settings.cache_clear()
    at = _run()
    assert "Signed in as vera (single-user mode, viewer)" in _sidebar_text(at)
    assert _pages(at) == VIEWER_PAGES


def test_oidc_not_logged_in_sees_only_the_log_in_page(db, monkeypatch):
    _mode(monkeypatch, "oidc")
    at = _run(user={"is_logged_in": False}, secrets=OIDC_SECRETS)
    assert [t.value for t in at.title] == ["PilotGate"]
    assert [s.value for s in at.subheader] == ["Log in"]
    assert [b.label for b in at.button] == ["Log in"]
    assert not at.dataframe  # no page ran: nothing of the portfolio is shown
    assert "Helpdesk" not in str([m.value for m in at.markdown])
    # an address of a page does not get past the gate either
    at.switch_page(PAGE_FILES["Export"]).run(timeout=30)
    assert [t.value for t in at.title] == ["PilotGate"]
    assert not at.get("download_button")


def test_oidc_without_secrets_says_what_to_configure(db, monkeypatch):
    _mode(monkeypatch, "oidc")
    at = _run(user={"is_logged_in": False})
    assert "no [auth] section" in at.error[0].value
    assert "docs/auth.md" in at.error[0].value
    assert not at.button


@pytest.mark.parametrize(
    ("user", "shown", "pages"),
    [
        (
            {"is_logged_in": True, "email": "ana@example.com", "sub": "1"},
            "Signed in as ana@example.com (admin)",
            ADMIN_PAGES,
        ),
        ({"is_logged_in": True, "sub": "eddie"}, "Signed in as eddie (editor)", EDITOR_PAGES),
        (
            {"is_logged_in": True, "email": "new@example.com", "sub": "3"},
            "Signed in as new@example.com (viewer)",  # default_role
            VIEWER_PAGES,
        ),
    ],
)
def test_oidc_logged_in_sees_pages_by_role(db, monkeypatch, user, shown, pages):
    _mode(monkeypatch, "oidc")
    at = _run(user=user, secrets=OIDC_SECRETS)
    assert [t.value for t in at.title] == ["Portfolio"]
    assert shown in _sidebar_text(at)
    assert [b.label for b in at.button if b.key == "auth-logout"] == ["Log out"]
    assert _pages(at) == pages


def test_oidc_log_out_returns_to_the_log_in_page(db, monkeypatch):
    _mode(monkeypatch, "oidc")
    at = _run(user={"is_logged_in": True, "email": "ana@example.com"}, secrets=OIDC_SECRETS)
    at.button(key="auth-logout").click().run(timeout=30)
    assert not at.exception
    assert at.user == {"is_logged_in": False}
    at.run(timeout=30)
    assert [s.value for s in at.subheader] == ["Log in"]


def test_oidc_unknown_user_with_default_role_none_has_no_access(db, monkeypatch):
    _mode(monkeypatch, "oidc", default_role="none")
    at = _run(user={"is_logged_in": True, "email": "eve@example.com"}, secrets=OIDC_SECRETS)
    assert [s.value for s in at.subheader] == ["No access yet"]
    assert "eve@example.com" in _plain(at.warning[0].value)
    assert "Signed in as eve@example.com (no access)" in _sidebar_text(at)
    assert not at.dataframe


def _headers(monkeypatch, values: list[str]) -> list[str]:
    """Play the reverse proxy: the trusted header's values for every run."""
    seen: list[str] = []

    def fake(header: str) -> list[str]:
        seen.append(header)
        return list(values)

    monkeypatch.setattr(auth, "_request_header_values", fake)
    return seen


def test_proxy_header_names_the_user(db, monkeypatch):
    _mode(monkeypatch, "proxy", proxy_user_header="X-Forwarded-Email")
    seen = _headers(monkeypatch, ["eddie"])
    at = _run()
    assert seen and set(seen) == {"X-Forwarded-Email"}
    assert [t.value for t in at.title] == ["Portfolio"]
    assert "Signed in as eddie (editor) via the sign-in proxy" in _sidebar_text(at)
    assert _pages(at) == EDITOR_PAGES
    assert not at.button  # the proxy signs out, not PilotGate


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ([], "the request has no X-Forwarded-Email header"),
        (["mallory", "eddie"], "the X-Forwarded-Email header 2 times"),
        ([""], "the X-Forwarded-Email header is empty"),
    ],
)
def test_proxy_without_a_usable_header_is_not_signed_in(db, monkeypatch, values, reason):
    _mode(monkeypatch, "proxy", proxy_user_header="X-Forwarded-Email")
    _headers(monkeypatch, values)
    at = _run()
    assert [s.value for s in at.subheader] == ["Not signed in"]
    assert reason in at.error[0].value
    assert "never guesses a user" in at.error[0].value
    assert not at.dataframe
    assert "Signed in" not in _sidebar_text(at)  # never a fallback user


def test_proxy_ignores_st_user_and_the_configured_actor(db, monkeypatch):
    _mode(monkeypatch, "proxy", proxy_user_header="X-Forwarded-Email", actor="ana@example.com")
    _headers(monkeypatch, [])
    at = _run(user={"is_logged_in": True, "email": "ana@example.com"})
    assert [s.value for s in at.subheader] == ["Not signed in"]


def test_writes_from_the_dashboard_record_the_signed_in_user(db, monkeypatch):
    _mode(monkeypatch, "oidc")
    at = _run(user={"is_logged_in": True, "email": "ana@example.com"}, secrets=OIDC_SECRETS)
    at.switch_page(PAGE_FILES["Admin"]).run(timeout=30)
    at.text_input(key="admin-user-name").input("zoe@example.com")
    at.selectbox(key="admin-user-role").set_value("editor")
    at.button(key="admin-user-add").click().run(timeout=30)
    assert not at.exception
    with Session(db) as s:
        row = users.users_frame(s).set_index("name").loc["zoe@example.com"]
        audit = s.execute(
            sa.select(AuditEvent.actor, AuditEvent.action).where(
                AuditEvent.entity == "user", AuditEvent.entity_id == int(row["user_id"])
            )
        ).all()
    assert (row["role"], row["created_by"]) == ("editor", "ana@example.com")
    assert [tuple(a) for a in audit] == [("ana@example.com", "create")]


@pytest.fixture
def empty_db(tmp_path, monkeypatch):
    """A migrated database without pilots, with the user vera (viewer)."""
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    engine = make_engine(url)
    init_db(engine)
    with Session(engine) as s:
        make_user(s, "vera", role="viewer", actor="seed")
        s.commit()
    monkeypatch.setenv("PILOTGATE_DATABASE_URL", url)
    for var in ("PILOTGATE_AUTH_MODE", "PILOTGATE_DEFAULT_ROLE", "PILOTGATE_PROXY_USER_HEADER"):
        monkeypatch.delenv(var, raising=False)
    _clear_caches()
    yield engine
    _clear_caches()
    engine.dispose()


@pytest.mark.parametrize(
    ("database", "title"),
    [
        *(("db", title) for title in VIEWER_PAGES),
        ("empty_db", "Portfolio"),
        ("empty_db", "Pilot"),
        ("empty_db", "Export"),
        ("empty_db", "Vendors"),
    ],
)
def test_every_page_of_a_viewer_runs_without_links_to_hidden_pages(
    request, monkeypatch, database, title
):
    """A page may not link to a page the role does not have (st.page_link to a page
    that is not in the navigation is an exception)."""
    request.getfixturevalue(database)
    monkeypatch.setenv("PILOTGATE_ACTOR", "vera")
    get_settings.cache_clear()
    at = AppTest.from_file(APP, default_timeout=30).run(timeout=30)  # registers the pages
    at.switch_page(PAGE_FILES[title]).run(timeout=30)
    at.run(timeout=30)  # AppTest keeps a previous page's exception element for one run
    assert not at.exception, [e.value for e in at.exception]
    assert "Signed in as vera (single-user mode, viewer)" in _sidebar_text(at)
    assert "Signed in as vera (single-user mode, viewer)" in _sidebar_text(at)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"PILOTGATE_AUTH_MODE": "proxy"},
            "PilotGate is misconfigured: auth_mode proxy needs PILOTGATE_PROXY_USER_HEADER",
        ),
        (
            {"PILOTGATE_AUTH_MODE": "ldap"},
            "PilotGate is misconfigured: auth_mode: Input should be 'none', 'oidc' or 'proxy'",
        ),
        (
            {"PILOTGATE_DEFAULT_ROLE": "admin"},
            "PilotGate is misconfigured: default_role: Input should be 'viewer' or 'none'",
        ),
    ],
)
def test_bad_auth_settings_are_an_error_not_a_traceback(db, monkeypatch, env, message):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    get_settings.cache_clear()
    at = _run()
    assert len(at.error) == 1
    assert at.error[0].value.startswith(message)
    assert not at.title  # no page ran
