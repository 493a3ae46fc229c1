"""Sign-in through a real OpenID Connect provider in a real browser (docs/auth.md).

A local provider (the PyPI package ``oidc-provider-mock``, which accepts any client id,
secret and redirect URI and asks for the subject in a form field ``sub``) runs on a
free localhost port; ``streamlit run`` serves PilotGate in auth mode ``oidc`` with a
temporary ``secrets.toml`` (passed with ``--secrets.files`` from a temporary working
folder, so the repository's own ``.streamlit/`` is never touched); Playwright drives
Debian's Chromium through Log in -> the provider's form -> back to the Portfolio as
that user, and through Log out. The same server helper runs PilotGate in auth mode
``proxy``, with the browser sending the trusted header (as a sign-in proxy would).

Everything uses ``127.0.0.1``: the browser must open the app on exactly the host
written in ``redirect_uri`` (``localhost`` would be another cookie jar). The
provider's pages pull a stylesheet from the internet; the test blocks every
non-local request with ``page.route``. Where Chromium is absent the tests skip (CI
sets PILOTGATE_REQUIRE_BROWSER=1 so that is a failure there).
"""

from __future__ import annotations

import importlib.util
import sys
import urllib.request
from collections.abc import Iterator
from datetime import date

import pytest
from sqlmodel import Session

from tests.browser_helpers import (
    browser_page,
    free_port,
    require_browser,
    running,
    serve,
    skip_or_fail,
    sqlite_database,
)
from tests.factories import add_weeks, make_pilot, make_user, metric_id

pytestmark = pytest.mark.browser

PILOT = "Helpdesk triage assistant"
CLIENT_SECRET = "client-secret-never-logged-4711"
COOKIE_SECRET = "c00c1e5ec2e7a9b8d4f6e1c3b5a7d9f0e2c4b6a8d0f1e3c5b7a9d2f4e6c8b0a1"


@pytest.fixture(scope="module")
def provider(tmp_path_factory) -> Iterator[str]:
    """oidc-provider-mock on a free localhost port; yields its issuer URL."""
    require_browser()
    if importlib.util.find_spec("oidc_provider_mock") is None:
        skip_or_fail("oidc-provider-mock not installed (pip install -c constraints.txt -e .[dev])")
    port = free_port()
    log = tmp_path_factory.mktemp("oidc") / "provider.log"
    issuer = f"http://127.0.0.1:{port}"
    with running(
        [sys.executable, "-m", "oidc_provider_mock", "--port", str(port)],
        ready_url=f"{issuer}/.well-known/openid-configuration",
        what="the OIDC provider",
        log=log,
        start_timeout=60,
    ):
        yield issuer


@pytest.fixture(scope="module")
def oidc_app(provider, tmp_path_factory) -> Iterator[dict]:
    """PilotGate in auth mode oidc over a SQLite database with one pilot and the users
    ana@example.com (editor) and root@example.com (admin)."""
    tmp = tmp_path_factory.mktemp("oidc-app")
    url, engine = sqlite_database(tmp, "oidc.db")
    with Session(engine) as s:
        make_pilot(s, PILOT, actor="seed")
        add_weeks(s, metric_id(s, PILOT, "resolution_time"), date(2012, 1, 2), [99.0], actor="seed")
        make_user(s, "ana@example.com", role="editor", actor="seed")
        make_user(s, "root@example.com", role="admin", actor="seed")
        s.commit()
    engine.dispose()
    port = free_port()
    secrets = tmp / ".streamlit" / "secrets.toml"
    secrets.parent.mkdir()
    secrets.write_text(
        "[auth]\n"
        f'redirect_uri = "http://127.0.0.1:{port}/oauth2callback"\n'
        f'cookie_secret = "{COOKIE_SECRET}"\n'
        'client_id = "pilotgate-test"\n'
        f'client_secret = "{CLIENT_SECRET}"\n'
        f'server_metadata_url = "{provider}/.well-known/openid-configuration"\n',
        encoding="utf-8",
    )
    log = tmp / "streamlit.log"
    # the redirect URI names the port, so the server must get exactly that one
    with serve(
        url,
        env={"PILOTGATE_AUTH_MODE": "oidc"},
        extra_args=["--secrets.files", str(secrets)],
        cwd=tmp,
        log=log,
        port=port,
        start_timeout=60,
    ) as base:
        yield {"base": base, "url": url, "log": log, "issuer": provider}


def local_only(page) -> None:
    """Refuse every request that leaves this machine (the provider's CDN stylesheet)."""

    def handle(route) -> None:
        host = urllib.request.urlparse(route.request.url).hostname or ""
        if host in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            route.abort()

    page.route("**/*", handle)


@pytest.fixture
def page(browser):
    with browser_page(browser, 1300, 1000) as pg:
        local_only(pg)
        yield pg


def _sidebar(page) -> str:
    return page.locator('[data-testid="stSidebar"]').inner_text()


def _log_in(page, app: dict, sub: str) -> None:
    base = app["base"]
    page.goto(base + "/")
    page.get_by_role("button", name="Log in").wait_for(timeout=30_000)
    page.get_by_role("button", name="Log in").click()
    page.locator('input[name="sub"]').wait_for(timeout=30_000)
    assert page.url.startswith(app["issuer"] + "/oauth2/authorize?")  # the provider's form
    page.fill('input[name="sub"]', sub)
    page.get_by_role("button", name="Authorize").click()
    page.wait_for_url(f"{base}/**", timeout=30_000)
    page.get_by_text(f"Signed in as {sub}").wait_for(timeout=30_000)


def test_log_in_page_shows_nothing_of_the_portfolio(oidc_app, page):
    page.goto(oidc_app["base"] + "/export")
    page.get_by_role("button", name="Log in").wait_for(timeout=30_000)
    body = page.inner_text("body")
    assert "Log in" in body
    assert PILOT not in body
    assert "Signed in" not in body
    assert page.locator('[data-testid="stException"]').count() == 0


def test_sign_in_through_the_provider_lands_on_the_portfolio(oidc_app, page):
    _log_in(page, oidc_app, "ana@example.com")
    page.get_by_text(PILOT).first.wait_for(timeout=30_000)
    assert page.locator("h1").first.inner_text() == "Portfolio"
    sidebar = _sidebar(page)
    assert "Signed in as ana@example.com (editor)" in sidebar
    nav = page.locator('[data-testid="stSidebarNav"]').inner_text()
    for title in ("Portfolio", "Pilot", "Enter", "Import", "Export"):
        assert title in nav
    assert "Admin" not in nav  # an editor
    assert page.locator('[data-testid="stException"]').count() == 0

    # Log out: the provider ends its session, then the app asks to log in again
    page.get_by_role("button", name="Log out").click()
    end = page.get_by_role("button", name="End session")
    end.wait_for(timeout=30_000)
    end.click()
    page.get_by_role("button", name="Log in").wait_for(timeout=30_000)
    assert "Signed in" not in page.inner_text("body")


def test_an_admin_signs_in_and_sees_the_admin_page(oidc_app, page):
    _log_in(page, oidc_app, "root@example.com")
    assert "Signed in as root@example.com (admin)" in _sidebar(page)
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Admin").click()
    page.get_by_text("Users and roles").first.wait_for(timeout=30_000)
    page.get_by_text("Add a user").first.wait_for(timeout=30_000)
    # the "Change a role" picker holds the first user (the table is a canvas grid)
    box = page.get_by_role("combobox", name="User")
    box.wait_for(timeout=30_000)
    assert box.input_value() == "ana@example.com (editor)"  # the first user, by name
    assert page.locator('[data-testid="stException"]').count() == 0


def test_a_stranger_is_a_viewer(oidc_app, page):
    _log_in(page, oidc_app, "stranger@example.com")
    assert "Signed in as stranger@example.com (viewer)" in _sidebar(page)
    nav = page.locator('[data-testid="stSidebarNav"]').inner_text()
    assert "Enter" not in nav and "Import" not in nav and "Admin" not in nav


def test_secrets_never_reach_the_server_log(oidc_app, page):
    _log_in(page, oidc_app, "ana@example.com")
    log = oidc_app["log"].read_text(errors="replace")
    assert "Uvicorn server started" in log or "You can now view" in log
    assert CLIENT_SECRET not in log
    assert COOKIE_SECRET not in log


# =========================================================================== proxy mode


@pytest.fixture(scope="module")
def proxy_app(tmp_path_factory) -> Iterator[str]:
    """PilotGate in auth mode proxy (header X-Forwarded-Email) over a database with one
    pilot and the user ana@example.com (editor)."""
    require_browser()
    tmp = tmp_path_factory.mktemp("proxy-app")
    url, engine = sqlite_database(tmp, "proxy.db")
    with Session(engine) as s:
        make_pilot(s, PILOT, actor="seed")
        make_user(s, "ana@example.com", role="editor", actor="seed")
        s.commit()
    engine.dispose()
    env = {"PILOTGATE_AUTH_MODE": "proxy", "PILOTGATE_PROXY_USER_HEADER": "X-Forwarded-Email"}
    with serve(url, env=env, cwd=tmp, log=tmp / "streamlit.log", start_timeout=60) as base:
        yield base


def test_proxy_header_signs_the_user_in(proxy_app, browser):
    # the browser plays the proxy: every request (the websocket too) carries the header
    ctx = browser.new_context(extra_http_headers={"X-Forwarded-Email": "ana@example.com"})
    page = ctx.new_page()
    local_only(page)
    page.goto(proxy_app + "/")
    page.get_by_text("Signed in as ana@example.com (editor) via the sign-in proxy").wait_for(
        timeout=30_000
    )
    page.get_by_text(PILOT).first.wait_for(timeout=30_000)
    assert page.locator("h1").first.inner_text() == "Portfolio"
    ctx.close()


def test_proxy_without_the_header_is_not_signed_in(proxy_app, page):
    page.goto(proxy_app + "/")
    page.get_by_text("Not signed in").first.wait_for(timeout=30_000)
    body = page.inner_text("body")
    assert "the request has no X-Forwarded-Email header" in body
    assert PILOT not in body
    assert "Signed in as" not in body
