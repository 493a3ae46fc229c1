"""Serving the dashboard and measuring a page in Chromium, shared by the browser tests
and ``benchmarks/bench_scale.py``: `streamlit run` on a free localhost port, and the
time until a page is interactive, measured in the page itself."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
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


@contextmanager
def serve(database_url: str, *, start_timeout: float = 90) -> Iterator[str]:
    """Run `streamlit run streamlit_app.py` over ``database_url`` on a free port; yields
    the base URL and stops the server (this process's child only) afterwards.

    Raises RuntimeError with the server's output when it does not start.
    """
    port = free_port()
    env = dict(os.environ, PILOTGATE_DATABASE_URL=database_url)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(REPO / "streamlit_app.py"),
            "--server.headless",
            "true",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
                raise RuntimeError(f"streamlit did not start:\n{out[-2000:]}")
            time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


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
