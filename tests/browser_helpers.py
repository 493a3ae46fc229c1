"""Serving the dashboard and measuring a page in Chromium, shared by the browser tests
and ``benchmarks/bench_scale.py``: `streamlit run` on a free localhost port, Debian's
Chromium launched through Playwright (skipped where it is absent, a failure under
PILOTGATE_REQUIRE_BROWSER=1), and the time until a page is interactive, measured in
the page itself."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from sqlalchemy.engine import Engine

from metrics.db import init_db, make_engine

REPO = Path(__file__).resolve().parents[1]
#: Debian's Chromium (`apt-get install chromium`); never `playwright install`.
CHROMIUM = shutil.which("chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Registered before any page script: every long task (main thread busy > 50 ms) the
#: browser reports, so a freeze is seen even when the page looks done.
LONG_TASKS_SCRIPT = """
window.__pgLongTasks = [];
try {
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) window.__pgLongTasks.push([e.startTime, e.duration]);
  }).observe({type: "longtask", buffered: true});
} catch (e) {}
"""
#: True when the app's script has ended (Streamlit marks its root element
#: ``data-test-script-state="notRunning"``; "initial" before the first run).
SCRIPT_ENDED = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  return !!app && app.getAttribute('data-test-script-state') === 'notRunning'
    && !!document.querySelector('[data-testid="stMain"] h1');
}"""
#: True when, in addition, nothing is a placeholder any more and every chart is drawn.
SETTLED = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  if (document.querySelector('[data-testid="stSkeleton"]')) return false;
  const charts = document.querySelectorAll('[data-testid="stPlotlyChart"]');
  for (const c of charts) if (!c.querySelector('.main-svg .ytick, .main-svg .xtick')) return false;
  return true;
}"""


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the test for want of what ``reason`` names; fail it instead where
    PILOTGATE_REQUIRE_BROWSER is set (CI), so a missing browser is never silent there."""
    import pytest

    if os.environ.get("PILOTGATE_REQUIRE_BROWSER"):
        pytest.fail(reason + " — required in CI")
    pytest.skip(reason)


def require_browser() -> str:
    """The path of Debian's Chromium; skips the test without it (see :func:`skip_or_fail`)."""
    if CHROMIUM:
        return CHROMIUM
    skip_or_fail("Debian chromium not installed (apt-get install chromium)")


def launch_chromium(playwright):
    """Debian's Chromium, headless, launched through a Playwright instance
    (``sync_playwright()``); never Playwright's own browser download."""
    return playwright.chromium.launch(
        executable_path=require_browser(), headless=True, args=CHROMIUM_ARGS
    )


@contextmanager
def browser_page(browser, width: int, height: int, **context_options) -> Iterator:
    """A page in a new context of ``browser`` with a ``width`` x ``height`` viewport
    (``context_options`` go to ``new_context``); the context is closed afterwards."""
    ctx = browser.new_context(viewport={"width": width, "height": height}, **context_options)
    try:
        yield ctx.new_page()
    finally:
        ctx.close()


def sqlite_database(folder: Path, name: str) -> tuple[str, Engine]:
    """A migrated, empty SQLite database ``folder / name`` for a server to open: its URL
    and an engine on it (the caller disposes of the engine)."""
    url = f"sqlite:///{folder / name}"
    engine = make_engine(url)
    init_db(engine)
    return url, engine


@contextmanager
def running(
    args: list[str],
    *,
    ready_url: str,
    what: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    log: Path | None = None,
    start_timeout: float = 90,
) -> Iterator[subprocess.Popen]:
    """Run ``args`` as a child process until ``ready_url`` answers 200; yields the
    process and stops it (this process's child only) afterwards. Its output goes to
    ``log`` when given, else to a pipe.

    Raises RuntimeError with the process's output when it does not start.
    """
    if log is None:
        proc = subprocess.Popen(
            args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
    else:
        with open(log, "wb") as out:
            proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            try:
                with urllib.request.urlopen(ready_url, timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                proc.wait(timeout=10)
                if log is None:
                    out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
                else:
                    out = log.read_text(errors="replace") if log.exists() else ""
                raise RuntimeError(f"{what} did not start:\n{out[-2000:]}")
            time.sleep(0.5)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@contextmanager
def serve(
    database_url: str,
    *,
    env: dict[str, str] | None = None,
    extra_args: list[str] | None = None,
    cwd: Path = REPO,
    log: Path | None = None,
    port: int | None = None,
    start_timeout: float = 90,
) -> Iterator[str]:
    """Run `streamlit run streamlit_app.py` over ``database_url`` on 127.0.0.1 (``port``,
    default a free one); yields the base URL and stops the server afterwards.

    ``env`` is added to this process's environment, ``extra_args`` follow the script's
    path (e.g. ``--secrets.files``), ``cwd`` is the server's working folder (its
    ``.streamlit/`` is read from there) and ``log`` takes its output (default a pipe).
    Raises RuntimeError with the server's output when it does not start.
    """
    port = port or free_port()
    base = f"http://127.0.0.1:{port}"
    args = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(REPO / "streamlit_app.py"),
        *(extra_args or []),
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--browser.gatherUsageStats",
        "false",
    ]
    with running(
        args,
        ready_url=f"{base}/_stcore/health",
        what="streamlit",
        cwd=cwd,
        env={**os.environ, "PILOTGATE_DATABASE_URL": database_url, **(env or {})},
        log=log,
        start_timeout=start_timeout,
    ):
        yield base


@dataclass(frozen=True)
class PageTiming:
    """One page load, measured in the page (milliseconds since navigation start).

    Attributes:
        interactive_ms: when the main thread answered, after the script ended and
            every chart was drawn.
        longest_task_ms: the longest task that blocked the main thread (0 when none
            was reported).
        blocked_ms: all long tasks added up.
    """

    interactive_ms: float
    longest_task_ms: float
    blocked_ms: float


def open_page(
    page, url: str, *, script_timeout_ms: int = 180_000, settle_timeout_ms: int = 10_000
) -> PageTiming:
    """Open ``url`` and measure when it becomes interactive.

    Waits (up to ``script_timeout_ms``) for the app's script to end, then gives the
    page ``settle_timeout_ms`` to draw its charts with the main thread answering:
    a tab that freezes longer raises Playwright's TimeoutError. ``page`` must have
    :data:`LONG_TASKS_SCRIPT` registered (``context.add_init_script``).
    """
    page.goto(url)
    page.wait_for_selector('[data-testid="stApp"]', timeout=script_timeout_ms)
    page.wait_for_function(SCRIPT_ENDED, timeout=script_timeout_ms, polling=100)
    page.wait_for_function(SETTLED, timeout=settle_timeout_ms, polling=100)
    at, tasks = page.evaluate(
        "() => new Promise(r => setTimeout(() => r([performance.now(), "
        "window.__pgLongTasks || []]), 0))"
    )
    durations = [d for _, d in tasks]
    return PageTiming(
        interactive_ms=float(at),
        longest_task_ms=float(max(durations, default=0.0)),
        blocked_ms=float(sum(durations)),
    )
