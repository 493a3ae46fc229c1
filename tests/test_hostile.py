"""Hostile input: HTML and script are shown as text, SQL-looking text is stored
literally, and database passwords never appear in messages or logs.

- The dashboard never passes user data through ``unsafe_allow_html`` (a static check
  over every dashboard file) and escapes it for markdown (``md_escape``); a pilot named
  ``<script>alert(1)</script>`` renders as that literal text on the Portfolio and Pilot
  pages, in AppTest and in a real browser, and no script runs.
- ``Robert'); DROP TABLE pilot;--`` round-trips as a pilot name, user name, note and
  CSV cell on SQLite and PostgreSQL, and every table is still there.
- A PostgreSQL URL with a password that cannot connect: the CLI's error and the
  dashboard's error show the URL with the password masked (``metrics.db.safe_url``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
import streamlit as st
from sqlmodel import Session
from streamlit.testing.v1 import AppTest

from metrics import csvio, store, users
from metrics.db import DatabaseError, init_db, make_engine, safe_url
from metrics.settings import get_settings
from tests.conftest import REPO
from tests.factories import add_weeks, make_pilot, metric_id, metric_in

APP = str(REPO / "streamlit_app.py")
SCRIPT_NAME = "<script>alert(1)</script>"
IMG_VENDOR = '<img src=x onerror="alert(2)">'
MD_OWNER = "**bold** [link](http://evil.example) ![t](http://evil.example/t.png) :material/home:"
SQL_NAME = "Robert'); DROP TABLE pilot;--"
SQL_NOTE = "x'; DELETE FROM measurement WHERE '1'='1"
PASSWORD = "S3cr3t-pw_9f2"


# =========================================================================== no raw HTML


def test_no_dashboard_file_renders_raw_html():
    files = [REPO / "streamlit_app.py", *sorted((REPO / "dashboard").rglob("*.py"))]
    offenders = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        for pattern in (r"unsafe_allow_html\s*=\s*True", r"\bst\.html\(", r"components\.html\("):
            if re.search(pattern, text):
                offenders.append(f"{path.relative_to(REPO)}: {pattern}")
    assert len(files) >= 10  # the pages, charts, components, state, auth, entry point
    assert offenders == []


# =========================================================================== SQL-looking text


def test_sql_looking_text_is_stored_literally(engine):
    tables_before = sorted(sa.inspect(engine).get_table_names())
    assert {"pilot", "metric", "measurement", "app_user", "auditevent"} <= set(tables_before)
    with Session(engine) as s:
        pid = make_pilot(s, SQL_NAME, owner=SQL_NOTE, actor="setup")
        mid = metric_id(s, SQL_NAME, "resolution_time")
        store.record_measurement(
            session=s,
            actor="setup",
            metric_id=mid,
            week=date(2012, 1, 2),
            value=61.5,
            note=SQL_NOTE,
        )
        users.add_user(session=s, actor="setup", name=SQL_NAME, role="editor")
        s.commit()
    with Session(engine) as s:
        pilots = store.pilots_frame(s)
        m = store.measurements_frame(s, pilot_id=pid)
        u = users.users_frame(s)
    assert pilots["pilot"].tolist() == [SQL_NAME]
    assert pilots["owner"].tolist() == [SQL_NOTE]
    assert (m["value"].tolist(), m["note"].tolist()) == ([61.5], [SQL_NOTE])
    assert u["name"].tolist() == [SQL_NAME]
    assert sorted(sa.inspect(engine).get_table_names()) == tables_before
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM pilot")).scalar_one() == 1
        assert conn.execute(sa.text("SELECT count(*) FROM measurement")).scalar_one() == 1


def test_sql_looking_csv_cells_import_literally(engine):
    with Session(engine) as s:
        make_pilot(s, SQL_NAME, actor="setup")
        s.commit()
    quoted = SQL_NAME.replace('"', '""')
    data = (
        "pilot,metric,week,value,note\n"
        f'"{quoted}",resolution_time,2012-W03,61.2,"{SQL_NOTE}"\n'
        f'"{quoted}",resolution_time,2012-W04,"58.4","DROP TABLE measurement;"\n'
    ).encode()
    with Session(engine) as s:
        report = csvio.import_measurements(session=s, actor="setup", data=data, source="x.csv")
        assert report.ok, report.errors
        s.commit()
    with Session(engine) as s:
        m = store.measurements_frame(s)
    assert m["value"].tolist() == [61.2, 58.4]
    assert m["note"].tolist() == [SQL_NOTE, "DROP TABLE measurement;"]
    assert {"pilot", "measurement"} <= set(sa.inspect(engine).get_table_names())


# =========================================================================== passwords


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens


def _pg_url_with_password() -> str:
    return f"postgresql+psycopg://pilot:{PASSWORD}@127.0.0.1:{_closed_port()}/pilotgate"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            f"postgresql+psycopg://pilot:{PASSWORD}@db.internal:5432/pg",
            "postgresql+psycopg://pilot:***@db.internal:5432/pg",
        ),
        ("postgresql://pilot:p%40ss@db/pg", "postgresql://pilot:***@db/pg"),
        ("sqlite:///pilotgate.db", "sqlite:///pilotgate.db"),
        ("::not a url::", "<unparseable database URL>"),
    ],
)
def test_safe_url_masks_the_password(url, shown):
    assert safe_url(url) == shown


def test_make_engine_error_masks_the_password():
    with pytest.raises(DatabaseError) as err:
        make_engine(f"postgresql+nosuchdriver://pilot:{PASSWORD}@db/pg")
    assert "postgresql+nosuchdriver://pilot:***@db/pg" in str(err.value)
    assert PASSWORD not in str(err.value)


def test_cli_error_masks_the_password(tmp_path):
    url = _pg_url_with_password()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PILOTGATE_")}
    for args in (["--database-url", url, "init"], ["users", "list"]):
        run_env = dict(env, PILOTGATE_DATABASE_URL=url)
        r = subprocess.run(
            [sys.executable, "-m", "metrics.cli", *args],
            capture_output=True,
            text=True,
            env=run_env,
            cwd=tmp_path,
            timeout=120,
        )
        assert r.returncode == 2, (r.stdout, r.stderr)
        masked = url.replace(PASSWORD, "***")
        assert r.stderr.startswith(f"error: cannot open database {masked}: ")
        assert PASSWORD not in r.stdout + r.stderr
        assert "Traceback" not in r.stderr


def test_dashboard_error_masks_the_password(monkeypatch, caplog, capfd):
    url = _pg_url_with_password()
    monkeypatch.setenv("PILOTGATE_DATABASE_URL", url)
    monkeypatch.delenv("PILOTGATE_AUTH_MODE", raising=False)
    get_settings.cache_clear()
    st.cache_data.clear()
    st.cache_resource.clear()
    try:
        at = AppTest.from_file(APP, default_timeout=60).run(timeout=60)
        assert not at.exception
        shown = [e.value for e in at.error]
        assert len(shown) == 1
        assert shown[0].startswith("The database cannot be opened: cannot open database ")
        assert url.replace(PASSWORD, "***") in shown[0].replace("\\", "")
        everything = " ".join(
            [*shown, *(m.value for m in at.markdown), *(c.value for c in at.caption)]
        )
        assert PASSWORD not in everything
        out, err = capfd.readouterr()
        assert PASSWORD not in caplog.text + out + err
    finally:
        get_settings.cache_clear()
        st.cache_data.clear()
        st.cache_resource.clear()


# =========================================================================== script as text


def _hostile_db(path: Path) -> tuple[str, int]:
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    init_db(engine)
    with Session(engine) as s:
        pid = make_pilot(
            s,
            SCRIPT_NAME,
            vendor=IMG_VENDOR,
            owner=MD_OWNER,
            use_case="<b>bold</b> & <i>co</i>",
            metrics=[metric_in(label="<u>Resolution</u> time", unit="<h>")],
            actor="setup",
        )
        add_weeks(
            s,
            metric_id(s, SCRIPT_NAME, "resolution_time"),
            date(2012, 1, 2),
            [100.0, 90.0, 80.0, 76.0],
            actor="setup",
        )
        s.commit()
    engine.dispose()
    return url, pid


def _plain(md: str) -> str:
    return re.sub(r"\\(.)", r"\1", str(md)).replace("\u200b", "")


@pytest.fixture
def hostile_app(tmp_path, monkeypatch):
    url, pid = _hostile_db(tmp_path / "hostile.db")
    monkeypatch.setenv("PILOTGATE_DATABASE_URL", url)
    monkeypatch.delenv("PILOTGATE_AUTH_MODE", raising=False)
    get_settings.cache_clear()
    st.cache_data.clear()
    st.cache_resource.clear()
    yield pid
    get_settings.cache_clear()
    st.cache_data.clear()
    st.cache_resource.clear()


def _markdown_sources(at: AppTest) -> list[str]:
    out = [m.value for m in at.markdown] + [c.value for c in at.caption]
    out += [t.value for t in at.title] + [h.value for h in at.subheader]
    return [str(x) for x in out]


def test_hostile_text_reaches_markdown_escaped(hostile_app):
    at = AppTest.from_file(APP, default_timeout=30)
    at.session_state["as_of"] = date(2012, 2, 6)
    at.run(timeout=30)
    assert not at.exception
    at.switch_page("dashboard/pages/pilot.py").run(timeout=30)
    assert not at.exception
    sources = _markdown_sources(at)
    assert _plain(at.title[0].value) == SCRIPT_NAME
    for raw in (SCRIPT_NAME, IMG_VENDOR, "**bold**", "[link](", "![t](", ":material/home:"):
        hits = [src for src in sources if raw in src]
        assert hits == [], f"{raw!r} reached markdown unescaped: {hits}"
    joined = "\n".join(_plain(s) for s in sources)
    for text in (SCRIPT_NAME, IMG_VENDOR, MD_OWNER, "<b>bold</b> & <i>co</i>"):
        assert text in joined


def test_script_in_a_pilot_name_is_literal_text_in_the_browser(tmp_path, hostile_app):
    from tests.browser_helpers import launch_chromium, require_browser, serve
    from tests.test_oidc_browser import local_only

    require_browser()
    from playwright.sync_api import sync_playwright

    url = os.environ["PILOTGATE_DATABASE_URL"]
    log = tmp_path / "streamlit.log"
    env = {"PILOTGATE_AUTH_MODE": "none"}
    with (
        serve(url, env=env, cwd=REPO, log=log, start_timeout=60) as base,
        sync_playwright() as p,
    ):
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        local_only(page)
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

        page.goto(f"{base}/?as_of=2012-02-06")
        page.get_by_text(SCRIPT_NAME).first.wait_for(timeout=30_000)
        body = page.inner_text("body")
        assert SCRIPT_NAME in body  # the Portfolio's link to the pilot, as typed

        page.goto(f"{base}/pilot?pilot={hostile_app}&as_of=2012-02-06")
        page.locator("h1").first.wait_for(timeout=30_000)
        page.get_by_text(IMG_VENDOR).first.wait_for(timeout=30_000)
        assert page.locator("h1").first.inner_text() == SCRIPT_NAME
        # md_escape puts an invisible zero-width space after each ':' (no :icon: codes)
        body = page.inner_text("body").replace("\u200b", "")
        for text in (IMG_VENDOR, MD_OWNER, "<b>bold</b> & <i>co</i>", "<u>Resolution</u> time"):
            assert text in body
        page.wait_for_timeout(500)  # give an injected handler every chance to fire
        assert dialogs == []
        injected = page.evaluate(
            """() => ({
                scripts: [...document.querySelectorAll('script')]
                    .filter(s => s.textContent.includes('alert(')).length,
                images: document.querySelectorAll('img[src="x"]').length,
                bold: [...document.querySelectorAll('b')]
                    .filter(b => b.textContent === 'bold').length,
                links: document.querySelectorAll('a[href^="http://evil"]').length,
            })"""
        )
        assert injected == {"scripts": 0, "images": 0, "bold": 0, "links": 0}
        assert page.locator('[data-testid="stException"]').count() == 0
        browser.close()
