"""HTTP API speed (DESIGN §11), against a real `pilotgate api` (uvicorn) on a free
127.0.0.1 port, with figures measured in the same run:

1. Pushing 10,000 rows in one POST /api/v1/measurements (JSON, and the same rows as a
   text/csv body) against `pilotgate import` of the same rows as a CSV file (CLI wall
   time), each into its own fresh database with the same pilots. Goal: API / CLI <= 1.2.
   Also shown: the import function alone in-process (csvio.import_measurements), which
   both doors call, so the API's own overhead (JSON -> CSV, HTTP) is visible.
2. p50 / p99 latency of GET /api/v1/summary over the demo portfolio, 20 concurrent
   clients (threads with keep-alive connections), a bounded number of requests; beside
   it the in-process time of service.summary_export_frame alone.

Run: ``make bench`` or ``.venv/bin/python benchmarks/bench_api.py [--rows N]``. Prints
the figures; asserts nothing (speed is measured, not tested).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_import import build_portfolio, make_csv

from metrics import csvio, service
from metrics.db import init_db, make_engine, session_scope
from metrics.models import ApiTokenCreate
from metrics.store import create_api_token

PILOTGATE = Path(sys.executable).with_name("pilotgate")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_token(url: str) -> str:
    engine = make_engine(url)
    init_db(engine)
    with session_scope(engine) as s:
        token = create_api_token(
            session=s, actor="bench", token_in=ApiTokenCreate(name="bench", role="editor")
        )
    engine.dispose()
    return token


class Server:
    """`pilotgate api` on a free loopback port, stopped on exit."""

    def __init__(self, url: str):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}/api/v1"
        env = dict(os.environ, PILOTGATE_DATABASE_URL=url)
        self.proc = subprocess.Popen(
            [str(PILOTGATE), "api", "--port", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def __enter__(self) -> Server:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}/openapi.json", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.2)
        self.proc.kill()
        sys.exit("pilotgate api did not start within 60 s")

    def __exit__(self, *exc) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)


def push_bench(tmp: Path, n_rows: int) -> None:
    n_pilots = 10
    first_week = date(2010, 1, 4)
    csv_text = make_csv(n_rows, n_pilots, first_week)
    rows = [
        {"pilot": p, "metric": m, "week": w, "value": float(v), "note": ""}
        for p, m, w, v in (line.split(",")[:4] for line in csv_text.splitlines()[1:])
    ]
    csv_path = tmp / "weekly.csv"
    csv_path.write_text(csv_text)
    urls = {k: f"sqlite:///{tmp / f'{k}.db'}" for k in ("cli", "core", "json", "csv")}
    for url in urls.values():
        build_portfolio(url, n_pilots, first_week)

    t0 = time.perf_counter()
    proc = subprocess.run(
        [str(PILOTGATE), "--database-url", urls["cli"], "import", str(csv_path)],
        capture_output=True,
        text=True,
    )
    cli = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"pilotgate import failed: {proc.stderr.strip()[:500]}")

    engine = make_engine(urls["core"])
    t0 = time.perf_counter()
    with session_scope(engine) as s:
        report = csvio.import_measurements(session=s, actor="bench", data=csv_text, source="x")
    core = time.perf_counter() - t0
    engine.dispose()
    assert report.ok and report.created == len(rows), report.summary_line()

    timings = {}
    for kind, content_type, body in (
        ("json", "application/json", json.dumps({"rows": rows}).encode()),
        ("csv", "text/csv", csv_text.encode()),
    ):
        token = make_token(urls[kind])
        with Server(urls[kind]) as server, httpx.Client(timeout=300) as client:
            # a long-running server: warm it up with a one-row dry run first
            client.post(
                f"{server.base}/measurements",
                json={"rows": rows[:1], "dry_run": True},
                headers={"Authorization": f"Bearer {token}"},
            )
            t0 = time.perf_counter()
            r = client.post(
                f"{server.base}/measurements",
                content=body,
                headers={"Authorization": f"Bearer {token}", "Content-Type": content_type},
            )
            timings[kind] = time.perf_counter() - t0
        if r.status_code != 200 or r.json()["created"] != len(rows):
            sys.exit(f"API push ({kind}) failed: {r.status_code} {r.text[:500]}")

    print(f"push: {len(rows):,} rows, {n_pilots} pilots x 4 metrics, fresh SQLite each")
    print(f"  pilotgate import weekly.csv (CLI wall time, incl. start-up):  {cli:6.2f} s")
    print(f"  csvio.import_measurements in-process (the shared core):      {core:6.2f} s")
    print(
        f"  POST /api/v1/measurements JSON:                              {timings['json']:6.2f} s"
    )
    print(f"  POST /api/v1/measurements text/csv:                          {timings['csv']:6.2f} s")
    print(
        f"  ratio API JSON / CLI import: {timings['json'] / cli:.2f}  (goal <= 1.2); "
        f"API CSV / CLI: {timings['csv'] / cli:.2f}; "
        f"API JSON / in-process core: {timings['json'] / core:.2f}"
    )


def summary_bench(tmp: Path, clients: int, per_client: int) -> None:
    from seed.demo import seed_demo

    url = f"sqlite:///{tmp / 'demo.db'}"
    engine = make_engine(url)
    init_db(engine)
    today = date.today()
    with session_scope(engine) as s:
        seed_demo(session=s, actor="bench", today=today)
    t0 = time.perf_counter()
    for _ in range(5):
        with session_scope(engine) as s:
            frame = service.summary_export_frame(s, as_of=today)
    core = (time.perf_counter() - t0) / 5
    engine.dispose()
    token = make_token(url)
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    with Server(url) as server:
        barrier = threading.Barrier(clients)

        def client_loop() -> None:
            mine = []
            with httpx.Client(timeout=60, headers={"Authorization": f"Bearer {token}"}) as c:
                c.get(f"{server.base}/pilots")  # connect and warm up
                barrier.wait()
                for _ in range(per_client):
                    t = time.perf_counter()
                    r = c.get(f"{server.base}/summary", params={"as_of": today.isoformat()})
                    mine.append(time.perf_counter() - t)
                    if r.status_code != 200:
                        with lock:
                            errors.append(f"{r.status_code} {r.text[:200]}")
            with lock:
                latencies.extend(mine)

        threads = [threading.Thread(target=client_loop) for _ in range(clients)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
    if errors:
        sys.exit(f"{len(errors)} summary requests failed, e.g. {errors[0]}")
    latencies.sort()
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, round(0.99 * len(latencies)) - 1)]
    print(
        f"summary: demo portfolio ({frame['pilot'].nunique()} pilots, {len(frame)} rows), "
        f"{clients} concurrent clients x {per_client} requests = {len(latencies)}"
    )
    print(f"  GET /api/v1/summary latency p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms")
    print(f"  throughput {len(latencies) / wall:.1f} requests/s over {wall:.1f} s")
    print(f"  service.summary_export_frame in-process (one call): {core * 1000:.0f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=10_000)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--requests-per-client", type=int, default=10)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        push_bench(Path(tmp), args.rows)
        summary_bench(Path(tmp), args.clients, args.requests_per_client)


if __name__ == "__main__":
    main()
