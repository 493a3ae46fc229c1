"""A thousand pilots (issue 13): every row of the issue's table, measured at 1,000 pilots
x 8 metrics x 104 weeks = 832,000 values, as product vs raw ratios and peak RSS, on
SQLite and (when ``PILOTGATE_TEST_POSTGRES_URL`` or ``--postgres-url`` is set) on
PostgreSQL.

Rows (goals from the issue):

- ``pilotgate import`` of the 832k-row CSV (validation, revisions) vs ``read_csv`` +
  one ``executemany`` (SQLite) / ``COPY`` (PostgreSQL) into the same schema; peak RSS
  of the import process. Goal <= 2x, <= 850 MB. On PostgreSQL the issue's 250k values
  (``--pg-import-pilots``, default 300 pilots = 249,600 values).
- ``pilotgate export summary`` (CLI, start-up included) and the service function alone
  vs ``read_sql`` of every measurement + a groupby. Goal <= 1.5x (CLI), <= 1.0x (service).
- Pages through AppTest, cold (caches cleared) and warm (second run): Portfolio,
  Pilot, Export, Vendors. Goals: Portfolio <= 2 s, Pilot <= 1 s, Export <= 2 s cold and
  <= 0.5 s warm.
- Pages in Chromium (when ``/usr/bin/chromium`` is there and ``--no-browser`` is not
  given): the time until each page is interactive, measured in the page
  (``tests/browser_helpers.py``), and its longest main-thread task. Goal <= 2 s after
  load, no freeze.

Every product measurement runs in a child process, so its peak RSS is its own
(``os.wait4``). Prints the table; asserts nothing (speed is measured, not tested).

Run: ``make bench`` or ``.venv/bin/python benchmarks/bench_scale.py [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import pandas as pd  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from metrics import csvio, store  # noqa: E402
from metrics.db import init_db, make_engine, session_scope  # noqa: E402
from seed.scale import build_scale_portfolio, scale_as_of  # noqa: E402

PILOTGATE = Path(sys.executable).with_name("pilotgate")
ROWS: list[tuple[str, str, str, str, str]] = []  # backend, what, product, raw, ratio/goal


def _mb(kib: int) -> str:
    return f"{kib / 1024:.0f} MB"


#: Peak RSS is read by GNU time when it is there: a child forked from this (large)
#: process would report this process's memory as its own (Linux keeps the high-water
#: mark across fork and exec), so the measured command is started by the small
#: ``time`` process instead.
GNU_TIME = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)


def run_measured(cmd: list[str], env: dict | None = None) -> tuple[float, int, str]:
    """Run ``cmd``; (wall seconds, peak RSS in KiB of that process alone, its stdout).
    Exits with the child's stderr when it fails."""
    with (
        tempfile.TemporaryFile("w+") as out,
        tempfile.TemporaryFile("w+") as err,
        tempfile.NamedTemporaryFile("r") as rss_file,
    ):
        full = [GNU_TIME, "-f", "%M", "-o", rss_file.name, *cmd] if GNU_TIME else cmd
        t0 = time.perf_counter()
        proc = subprocess.Popen(full, stdout=out, stderr=err, env=env, cwd=REPO, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            sys.exit(f"failed: {' '.join(cmd)}\n{err.read()[-2000:]}")
        text = rss_file.read().strip().splitlines()
        rss = int(text[-1]) if GNU_TIME and text and text[-1].isdigit() else int(usage.ru_maxrss)
        return elapsed, rss, out.read()


def best(times: list[float]) -> float:
    """The median of the repeats (the issue's figures are medians of 3)."""
    return statistics.median(times)


def row(backend: str, what: str, product: str, raw: str, verdict: str) -> None:
    ROWS.append((backend, what, product, raw, verdict))
    print(f"  {what}: {product} | raw {raw} | {verdict}", flush=True)


# --------------------------------------------------------------------------- databases


def pg_schema_url(base: str, schema: str) -> str:
    """``base`` pointed at a fresh ``schema`` (dropped and created)."""
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    admin.dispose()
    url = sa.make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


def pg_drop(base: str, schemas: list[str]) -> None:
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        for schema in schemas:
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    admin.dispose()


def build(url: str, *, pilots: int, metrics: int, weeks: int, values: bool = True):
    engine = make_engine(url)
    init_db(engine)
    t0 = time.perf_counter()
    built = build_scale_portfolio(
        engine, pilots=pilots, metrics=metrics, weeks=weeks, gaps=False, with_values=values
    )
    elapsed = time.perf_counter() - t0
    engine.dispose()
    return built, elapsed


def export_csv(url: str, path: Path) -> int:
    engine = make_engine(url)
    with session_scope(engine) as s:
        frame = csvio.export_measurements_frame(s)
    engine.dispose()
    path.write_text(csvio.to_csv_text(frame), encoding="utf-8")
    return len(frame)


# --------------------------------------------------------------------------- raw baselines


def raw_import(url: str, csv_path: Path) -> float:
    """``read_csv`` + one query for the metric ids + one bulk insert with the driver
    (sqlite3 ``executemany`` / psycopg ``COPY``): the least any import can do."""
    engine = make_engine(url)
    t0 = time.perf_counter()
    df = pd.read_csv(csv_path, keep_default_na=False, encoding="utf-8-sig")
    with session_scope(engine) as s:
        ids = store.metrics_frame(s)[["metric_id", "pilot", "key"]]
    rows = df.merge(ids, left_on=["pilot", "metric"], right_on=["pilot", "key"])
    monday = pd.to_datetime(rows["week"] + "-1", format="%G-W%V-%u")
    now = pd.Timestamp.now(tz="UTC")
    with engine.begin() as conn:
        raw = conn.connection.driver_connection
        if engine.dialect.name == "sqlite":
            data = list(
                zip(
                    rows["metric_id"].tolist(),
                    monday.dt.strftime("%Y-%m-%d").tolist(),
                    rows["value"].astype(float).tolist(),
                    rows["note"].astype(str).tolist(),
                    strict=True,
                )
            )
            at = now.tz_localize(None).strftime("%Y-%m-%d %H:%M:%S.%f")
            raw.executemany(
                "INSERT INTO measurement (metric_id, week, value, note, entered_by, "
                f"entered_at, version) VALUES (?, ?, ?, ?, 'raw', '{at}', 1)",
                data,
            )
        else:
            buf = io.StringIO()
            out = pd.DataFrame(
                {
                    "metric_id": rows["metric_id"],
                    "week": monday.dt.strftime("%Y-%m-%d"),
                    "value": rows["value"],
                    "note": rows["note"],
                    "entered_by": "raw",
                    "entered_at": now.isoformat(),
                    "version": 1,
                }
            )
            out.to_csv(buf, index=False, header=False)
            with (
                raw.cursor() as cur,
                cur.copy(
                    "COPY measurement (metric_id, week, value, note, entered_by, entered_at, "
                    "version) FROM STDIN WITH (FORMAT csv, FORCE_NOT_NULL (note))"
                ) as copy,
            ):
                copy.write(buf.getvalue())
    elapsed = time.perf_counter() - t0
    engine.dispose()
    return elapsed


def raw_summary(url: str) -> float:
    """``read_sql`` of every measurement + one groupby (mean, variance, count, last week
    per metric): reading the raw rows once."""
    engine = make_engine(url)
    t0 = time.perf_counter()
    with engine.connect() as conn:
        df = pd.read_sql("SELECT metric_id, week, value FROM measurement", conn)
    df.groupby("metric_id").agg(
        mean=("value", "mean"), var=("value", "var"), n=("value", "size"), last=("week", "max")
    )
    elapsed = time.perf_counter() - t0
    engine.dispose()
    return elapsed


# --------------------------------------------------------------------------- product


SERVICE_PROBE = textwrap.dedent(
    """
    import json, sys, time
    from datetime import date
    from metrics import service
    from metrics.db import make_engine, session_scope
    engine = make_engine(sys.argv[1])
    as_of = date.fromisoformat(sys.argv[2])
    t0 = time.perf_counter()
    with session_scope(engine) as s:
        frame = service.summary_export_frame(s, as_of=as_of)
    print(json.dumps({"seconds": time.perf_counter() - t0, "rows": len(frame)}))
    """
)

PAGES_PROBE = textwrap.dedent(
    """
    import json, os, sys, time
    from datetime import date
    import streamlit as st
    from streamlit.testing.v1 import AppTest
    from metrics.settings import get_settings
    os.environ["PILOTGATE_DATABASE_URL"] = sys.argv[1]
    as_of = date.fromisoformat(sys.argv[2])
    app = sys.argv[3]
    pages = {"Portfolio": None, "Pilot": "dashboard/pages/pilot.py",
             "Export": "dashboard/pages/export.py", "Vendors": "dashboard/pages/vendors.py"}
    out = {}
    for name, page in pages.items():
        get_settings.cache_clear(); st.cache_data.clear(); st.cache_resource.clear()
        at = AppTest.from_file(app, default_timeout=600)
        at.session_state["as_of"] = as_of
        at.session_state["pilot_id"] = 1
        at.run(timeout=600)  # registers the pages (and runs the Portfolio)
        if page is not None:
            at.switch_page(page)
        # cold: every cache empty (the first run above already warmed the engine only)
        st.cache_data.clear()
        t0 = time.perf_counter(); at.run(timeout=600); cold = time.perf_counter() - t0
        t0 = time.perf_counter(); at.run(timeout=600); warm = time.perf_counter() - t0
        if at.exception:
            raise SystemExit(f"{name}: {at.exception[0].message}")
        out[name] = {"cold": cold, "warm": warm}
    print(json.dumps(out))
    """
)


def product_import(url: str, csv_path: Path) -> tuple[float, int, str]:
    cmd = [str(PILOTGATE), "--database-url", url, "import", str(csv_path)]
    return run_measured(cmd)


def product_summary(url: str, as_of: str, out: Path) -> tuple[float, int]:
    cmd = [str(PILOTGATE), "--database-url", url, "export", "summary", "--as-of", as_of]
    elapsed, rss, _ = run_measured([*cmd, "-o", str(out)])
    return elapsed, rss


def service_alone(url: str, as_of: str) -> tuple[float, int]:
    _, rss, out = run_measured([sys.executable, "-c", SERVICE_PROBE, url, as_of])
    return json.loads(out.strip().splitlines()[-1])["seconds"], rss


def pages_apptest(url: str, as_of: str) -> dict:
    _, rss, out = run_measured(
        [sys.executable, "-c", PAGES_PROBE, url, as_of, str(REPO / "streamlit_app.py")]
    )
    result = json.loads(out.strip().splitlines()[-1])
    result["rss"] = rss
    return result


def pages_browser(url: str, as_of: str) -> dict:
    from playwright.sync_api import sync_playwright

    from tests.browser_helpers import CHROMIUM_ARGS, LONG_TASKS_SCRIPT, open_page, serve

    paths = {
        "Portfolio": "/",
        "Pilot": "/pilot?pilot=1",
        "Export": "/export?pilot=1",
        "Vendors": "/vendors",
    }
    out = {}
    with serve(url) as base, sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=shutil.which("chromium"), headless=True, args=CHROMIUM_ARGS
        )
        for name, path in paths.items():
            ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
            ctx.add_init_script(LONG_TASKS_SCRIPT)
            page = ctx.new_page()
            sep = "&" if "?" in path else "?"
            try:
                t = open_page(page, f"{base}{path}{sep}as_of={as_of}", settle_timeout_ms=120_000)
                out[name] = t
            finally:
                ctx.close()
        browser.close()
    return out


# --------------------------------------------------------------------------- one backend


def bench_backend(
    backend: str,
    urls: dict[str, str],
    args: argparse.Namespace,
    tmp: Path,
    *,
    import_pilots: int,
) -> None:
    print(f"\n== {backend} ==", flush=True)
    built, secs = build(urls["read"], pilots=args.pilots, metrics=args.metrics, weeks=args.weeks)
    print(f"  built {built.values:,} values in {secs:.1f} s", flush=True)
    as_of = built.as_of.isoformat()

    # ---- import
    csv_path = tmp / f"{backend}-import.csv"
    if import_pilots == args.pilots:
        n_rows = export_csv(urls["read"], csv_path)
    else:
        build(urls["csv"], pilots=import_pilots, metrics=args.metrics, weeks=args.weeks)
        n_rows = export_csv(urls["csv"], csv_path)
    raw_t, prod_t, rss, said = [], [], 0, ""
    for _ in range(args.repeat):
        for key in ("raw_import", "product_import"):
            if backend == "sqlite":
                Path(sa.make_url(urls[key]).database).unlink(missing_ok=True)
            else:
                urls[key] = pg_schema_url(args.postgres_url, f"bench_scale_{key}")
            build(urls[key], pilots=import_pilots, metrics=args.metrics, weeks=args.weeks,
                  values=False)  # fmt: skip
        raw_t.append(raw_import(urls["raw_import"], csv_path))
        t, r, said = product_import(urls["product_import"], csv_path)
        prod_t.append(t)
        rss = max(rss, r)
    ratio = best(prod_t) / best(raw_t)
    row(
        backend,
        f"pilotgate import, {n_rows:,} values (with revisions)",
        f"{best(prod_t):.1f} s, peak RSS {_mb(rss)} ({said.strip()})",
        f"{best(raw_t):.1f} s (read_csv + {'executemany' if backend == 'sqlite' else 'COPY'})",
        f"{ratio:.1f}x (goal <= 2x, RSS <= 850 MB)",
    )

    # ---- summary
    raw_t, cli_t, svc_t, rss_cli, rss_svc = [], [], [], 0, 0
    for _ in range(args.repeat):
        raw_t.append(raw_summary(urls["read"]))
        t, r = product_summary(urls["read"], as_of, tmp / "summary.csv")
        cli_t.append(t)
        rss_cli = max(rss_cli, r)
        t, r = service_alone(urls["read"], as_of)
        svc_t.append(t)
        rss_svc = max(rss_svc, r)
    raw = best(raw_t)
    row(
        backend,
        f"pilotgate export summary ({built.values:,} values), CLI with start-up",
        f"{best(cli_t):.2f} s, peak RSS {_mb(rss_cli)}",
        f"{raw:.2f} s (read_sql + groupby)",
        f"{best(cli_t) / raw:.1f}x (goal <= 1.5x)",
    )
    row(
        backend,
        "summary service function alone",
        f"{best(svc_t):.2f} s, peak RSS {_mb(rss_svc)}",
        f"{raw:.2f} s",
        f"{best(svc_t) / raw:.1f}x (goal <= 1.0x)",
    )

    # ---- pages
    if args.no_pages:
        return
    pages = pages_apptest(urls["read"], as_of)
    goals = {"Portfolio": "<= 2 s", "Pilot": "<= 1 s", "Export": "<= 2 s cold, <= 0.5 s warm"}
    for name in ("Portfolio", "Pilot", "Export", "Vendors"):
        row(
            backend,
            f"{name} page (AppTest)",
            f"cold {pages[name]['cold']:.2f} s, warm {pages[name]['warm']:.2f} s",
            "-",
            f"goal {goals.get(name, 'none set')}",
        )
    if args.no_browser or not shutil.which("chromium"):
        return
    for n, (name, t) in enumerate(pages_browser(urls["read"], as_of).items()):
        row(
            backend,
            f"{name} page in Chromium "
            + ("(fresh server)" if n == 0 else "(same server: reads cached by the pages before)"),
            f"interactive {t.interactive_ms / 1000:.1f} s after navigation, longest "
            f"main-thread task {t.longest_task_ms / 1000:.2f} s",
            "-",
            "goal: interactive <= 2 s after load, no freeze",
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--pilots", type=int, default=1000)
    ap.add_argument("--metrics", type=int, default=8)
    ap.add_argument("--weeks", type=int, default=104)
    ap.add_argument("--repeat", type=int, default=1, help="runs per row; the median counts")
    ap.add_argument(
        "--postgres-url",
        default=os.environ.get("PILOTGATE_TEST_POSTGRES_URL", ""),
        help="PostgreSQL server to measure too (default PILOTGATE_TEST_POSTGRES_URL)",
    )
    ap.add_argument(
        "--pg-import-pilots",
        type=int,
        default=300,
        help="pilots in PostgreSQL's import row (300 x 8 x 104 = 249,600 values)",
    )
    ap.add_argument("--no-pages", action="store_true", help="skip AppTest and the browser")
    ap.add_argument("--no-browser", action="store_true", help="skip Chromium")
    ap.add_argument("--sqlite-only", action="store_true")
    args = ap.parse_args()
    print(
        f"portfolio: {args.pilots} pilots x {args.metrics} metrics x {args.weeks} weeks = "
        f"{args.pilots * args.metrics * args.weeks:,} values; as of "
        f"{scale_as_of(args.weeks)}; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp_name:
        tmp = Path(tmp_name)
        keys = ("read", "raw_import", "product_import", "csv")
        urls = {k: f"sqlite:///{tmp / (k + '.db')}" for k in keys}
        bench_backend("sqlite", urls, args, tmp, import_pilots=args.pilots)
        if args.postgres_url and not args.sqlite_only:
            schemas = [f"bench_scale_{k}" for k in ("read", "raw_import", "product_import", "csv")]
            try:
                urls = {
                    k: pg_schema_url(args.postgres_url, f"bench_scale_{k}")
                    for k in ("read", "raw_import", "product_import", "csv")
                }
                bench_backend("postgresql", urls, args, tmp, import_pilots=args.pg_import_pilots)
            finally:
                pg_drop(args.postgres_url, schemas)
    print("\n| backend | what | product | raw | ratio / goal |")
    print("|---|---|---|---|---|")
    for r in ROWS:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
