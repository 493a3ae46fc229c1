"""`pilotgate serve --api-port` (what `make run` runs): the dashboard and the HTTP API
start together on 127.0.0.1, and Ctrl-C (SIGINT) or SIGTERM stops both, with nothing
left listening or running (issue 11: "one command still; both stop on Ctrl-C")."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests.browser_helpers import free_port


def _status(url: str) -> int | None:
    """The HTTP status of ``url``, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def _children_of(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (read from /proc)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                parents[int(entry)] = int(fields[1])
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        kids = [c for c, parent in parents.items() if parent == p]
        found += kids
        todo += kids
    return found


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_serve_runs_dashboard_and_api_and_one_signal_stops_both(tmp_path, sig):
    dash, api = free_port(), free_port()
    url = f"sqlite:///{tmp_path / 'both.db'}"
    cmd = [sys.executable, "-c", "from metrics.cli import main; main()", "--database-url", url]
    assert subprocess.run([*cmd, "init"], capture_output=True, timeout=120).returncode == 0
    proc = subprocess.Popen(
        [*cmd, "serve", "--port", str(dash), "--api-port", str(api)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as in a terminal
    )
    try:
        deadline = time.monotonic() + 120
        while not (
            _status(f"http://127.0.0.1:{dash}/_stcore/health") == 200
            and _status(f"http://127.0.0.1:{api}/api/v1/pilots") == 401
        ):
            assert proc.poll() is None, "serve ended before both doors answered"
            assert time.monotonic() < deadline, "the dashboard or the API never answered"
            time.sleep(0.3)
        descendants = _children_of(proc.pid)
        assert len(descendants) >= 3  # the API, the dashboard door and Streamlit
        proc.send_signal(sig)
        proc.wait(60)
        deadline = time.monotonic() + 30
        while [p for p in descendants if os.path.exists(f"/proc/{p}")] and (
            time.monotonic() < deadline
        ):
            time.sleep(0.2)
        left = []
        for p in descendants:
            try:
                with open(f"/proc/{p}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                        left.append(p)
            except OSError:
                pass
        assert left == []
        assert _status(f"http://127.0.0.1:{dash}/_stcore/health") is None
        assert _status(f"http://127.0.0.1:{api}/api/v1/pilots") is None
    finally:
        if proc.poll() is None:
            proc.kill()
