"""Every page of a 1,000-pilot database in Chromium (issue 13 item 4).

The database: 1,000 pilots x 2 metrics x 30 weeks (``seed.scale``, written with the
driver's executemany in about a second; the full 832,000-value portfolio is
``benchmarks/bench_scale.py``'s). Each page is opened in headless Chromium and
measured in the page: the time until it is interactive (script ended, every chart
drawn, the main thread answering) and the browser's long tasks.

Not a speed test (speed is measured in ``benchmarks/``): the bounds are generous and
only catch a frozen tab. After the page's script ends, the page must draw its charts
and answer within 10 s, and no single task may block the main thread for 10 s or
more. The Portfolio's recommendation chart once forced one tick label per pilot count
(905 labels) and froze the tab for 30 s after a fast script: that fails here.
"""

from __future__ import annotations

import pytest

from seed.scale import build_scale_portfolio
from tests.browser_helpers import (
    LONG_TASKS_SCRIPT,
    open_page,
    require_browser,
    serve,
    sqlite_database,
)

pytestmark = pytest.mark.browser

#: A page must answer within this long after its script ends; a longer task is a freeze.
FREEZE_MS = 10_000
PAGES = {
    "portfolio": "/",
    "pilot": "/pilot?pilot=1",
    "vendors": "/vendors",
    "enter": "/enter?pilot=1",
    "import": "/import_csv",
    "export": "/export?pilot=1",
    "admin": "/admin",
}


@pytest.fixture(scope="module")
def big_app(tmp_path_factory):
    """`streamlit run` over a 1,000-pilot SQLite database (built once per module)."""
    require_browser()
    url, engine = sqlite_database(tmp_path_factory.mktemp("scale"), "scale.db")
    built = build_scale_portfolio(engine, pilots=1000, metrics=2, weeks=30)
    engine.dispose()
    with serve(url) as base:
        yield base, built


@pytest.mark.parametrize("name", list(PAGES))
def test_each_page_of_a_thousand_pilots_becomes_interactive(big_app, browser, name):
    base, built = big_app
    assert built.pilots == 1000
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        ctx.add_init_script(LONG_TASKS_SCRIPT)
        page = ctx.new_page()
        path = PAGES[name]
        sep = "&" if "?" in path else "?"
        timing = open_page(
            page, f"{base}{path}{sep}as_of={built.as_of.isoformat()}", settle_timeout_ms=FREEZE_MS
        )
        assert page.locator('[data-testid="stException"]').count() == 0
        assert timing.longest_task_ms < FREEZE_MS, timing
        print(f"{name}: {timing}")
    finally:
        ctx.close()
