"""Issue 10 in a real browser (Playwright driving Debian's Chromium, as
tests/test_browser.py): a decimal comma and thousands marks typed on the Enter page, a
"New pilot" named like an existing one, a week ten years off on the Import page, and
status markers that need no colour-emoji font. One small database, one server."""

from __future__ import annotations

import os
import re
from datetime import date

import pandas as pd
import pytest
from sqlmodel import Session

from metrics import store
from metrics.db import session_scope
from tests.browser_helpers import browser_page, require_browser, serve, sqlite_database
from tests.factories import add_weeks, make_pilot, metric_id, metric_in
from tests.test_browser import _assert_no_exception, _wait_rendered

pytestmark = pytest.mark.browser

PILOT = "Helpdesk triage assistant"
START = date(2012, 1, 2)
AS_OF = "2012-02-20"  # last complete week 2012-W07 (no values yet)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`streamlit run` on a free port over a database with one pilot, six weeks."""
    require_browser()
    url, engine = sqlite_database(tmp_path_factory.mktemp("browser-trust"), "trust.db")
    with session_scope(engine) as s:
        make_pilot(
            s,
            PILOT,
            metrics=[
                metric_in("resolution_time", baseline=118.0, target=80.0, max_value=5000.0),
                metric_in("error_rate", label="Error rate", unit="%", target=4.0, max_value=100.0),
            ],
        )
        add_weeks(s, metric_id(s, PILOT, "resolution_time"), START, [100, 90, 80, 76, 72, 72])
        add_weeks(s, metric_id(s, PILOT, "error_rate"), START, [4.8, 5.0, 4.9, 4.7, 4.6, 4.8])
    try:
        with serve(url, env={"PILOTGATE_ACTOR": "browser"}, start_timeout=60) as base:
            yield base, engine
    finally:
        engine.dispose()


@pytest.fixture
def page(browser):
    with browser_page(browser, 1280, 1400) as pg:
        yield pg


def _stored(engine, key: str) -> pd.Series:
    with Session(engine) as s:
        m = store.measurements_frame(s)
        mid = metric_id(s, PILOT, key)
    return m[m["metric_id"] == mid].set_index("week")["value"]


def _open(page, url: str, ready: str) -> None:
    """Go to ``url`` and wait until ``ready`` (text) is shown and the script is done."""
    page.goto(url)
    _wait_rendered(page)
    page.get_by_text(ready).first.wait_for(timeout=30_000)
    _wait_rendered(page)


def _field(page, label: str):
    """The input whose label starts with ``label`` (aria-label; the label may carry
    markdown escapes, e.g. ``Error rate \\(%\\)``)."""
    field = page.locator(f'input[aria-label^="{label}"]').first
    field.wait_for(timeout=30_000)
    return field


def _click(page, name: str) -> None:
    page.get_by_role("button", name=name, exact=True).click()
    page.wait_for_timeout(300)
    _wait_rendered(page)


def test_enter_reads_4_comma_2_and_1_234_comma_5_and_asks_before_writing(server, page):
    base, engine = server
    _open(page, f"{base}/enter?as_of={AS_OF}", "Enter weekly values")
    _field(page, "Error rate").fill("4,2")
    _field(page, "Resolution time").fill("1.234,5")
    _click(page, "Save")
    page.get_by_text("press Save again").wait_for(timeout=30_000)
    body = page.inner_text("body")
    assert "Read as: Error rate “4,2” = 4.2%; Resolution time “1.234,5” = 1234.5 h." in body
    assert pd.Timestamp("2012-02-13") not in _stored(engine, "error_rate").index  # not yet
    _click(page, "Save")  # the numbers were shown: now the unusual value stops it
    page.get_by_text("Not saved: Resolution time").wait_for(timeout=30_000)
    body = page.inner_text("body")
    assert "Not saved: Resolution time 1234.5 h (unusual:" in body
    assert pd.Timestamp("2012-02-13") not in _stored(engine, "resolution_time").index
    page.get_by_test_id("stCheckbox").get_by_text("Save values that look unusual").click()
    _click(page, "Save")
    page.get_by_text("Saved 2012-W07").wait_for(timeout=30_000)
    _assert_no_exception(page)
    assert _stored(engine, "error_rate")[pd.Timestamp("2012-02-13")] == 4.2
    assert _stored(engine, "resolution_time")[pd.Timestamp("2012-02-13")] == 1234.5


def test_new_pilot_named_like_an_existing_one_is_refused(server, page):
    base, engine = server
    _open(page, f"{base}/admin", "Pilots and metrics")
    page.get_by_role("tab", name="Pilots and metrics").click()
    _wait_rendered(page)
    # widgets by their Streamlit key (class st-key-<key>): the users tab has a Name too
    page.locator(".st-key-adm-p0-name input").fill("  helpdesk   TRIAGE assistant ")
    page.locator(".st-key-adm-p0-owner input").fill("Mallory")
    page.locator(".st-key-adm-p0-mnew-key input").fill("cost_per_ticket")
    page.locator(".st-key-adm-p0-mnew-target input").fill("5")
    _click(page, "Save pilot")
    page.get_by_text("already exists").wait_for(timeout=30_000)
    body = page.inner_text("body")
    assert f"a pilot named '{PILOT}' already exists" in body
    with Session(engine) as s:
        p = store.pilots_frame(s)
    assert p[["pilot", "owner"]].values.tolist() == [[PILOT, ""]]


def test_a_week_ten_years_off_needs_the_tick_box(server, page, tmp_path):
    base, engine = server
    f = tmp_path / "far.csv"
    f.write_text(f"pilot,metric,week,value\n{PILOT},error_rate,2002-W03,4.4\n")
    _open(page, f"{base}/import_csv?as_of={AS_OF}", "Import measurements")
    page.locator('input[type="file"]').set_input_files(str(f))
    page.get_by_text("Allow distant weeks").first.wait_for(timeout=30_000)
    _wait_rendered(page)
    body = page.inner_text("body")  # the problems table is a canvas: its words are not text
    assert "1 problem found: nothing will be written. Choose Allow distant weeks" in body
    page.get_by_test_id("stCheckbox").get_by_text("Allow distant weeks").click()
    _wait_rendered(page)
    page.get_by_role("button", name="Write 1 row").wait_for(timeout=30_000)
    _click(page, "Write 1 row")
    page.get_by_text("Imported far.csv").wait_for(timeout=30_000)
    assert _stored(engine, "error_rate")[pd.Timestamp("2002-01-14")] == 4.4


def test_status_markers_are_material_icons_and_words(server, page, tmp_path):
    base, _ = server
    _open(page, f"{base}/?as_of={AS_OF}", "Recommendations")
    _assert_no_exception(page)
    # markdown icons: <span role="img" aria-label="check_circle icon"> in Streamlit's
    # bundled Material Symbols font (no system emoji font needed), then the word
    icons = page.locator('[data-testid="stMetricLabel"] span[role="img"]')
    icons.first.wait_for(timeout=30_000)
    labels = [
        page.locator('[data-testid="stMetricLabel"]').nth(i).inner_text().split()
        for i in range(page.locator('[data-testid="stMetricLabel"]').count())
    ]
    assert ["check_circle", "go"] in labels and ["cancel", "no-go"] in labels
    assert ["schedule", "extend"] in labels and ["help", "insufficient", "data"] in labels
    font = icons.first.evaluate("e => getComputedStyle(e).fontFamily")
    assert "Material Symbols" in font  # Streamlit's own icon font, on any machine
    page.get_by_text("Pilots per stage").wait_for(timeout=30_000)
    _wait_rendered(page)
    emoji = re.compile("[\U0001f300-\U0001faff\u2705\u2b1c\u26aa]")
    assert not emoji.search(page.inner_text("body"))
    page.screenshot(path=str(tmp_path / "portfolio.png"), full_page=True)
    if os.environ.get("PILOTGATE_SCREENSHOT_DIR"):
        page.screenshot(
            path=os.path.join(os.environ["PILOTGATE_SCREENSHOT_DIR"], "trust-portfolio.png"),
            full_page=True,
        )
