"""Portfolio page speed: one AppTest run of the Portfolio page over the demo portfolio
plus the real help-desk pilot, as a ratio against a raw baseline in the same run (the
same three tables read with plain ``pandas.read_sql``).

Also times the page over a large synthetic portfolio (``--pilots``, default 200 pilots x
4 metrics x 104 weeks) to show how it scales.

Run: ``make bench`` or ``.venv/bin/python benchmarks/bench_portfolio_page.py``.
Prints timings and ratios; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from metrics import store  # noqa: E402
from metrics.db import init_db, make_engine, session_scope  # noqa: E402
from metrics.models import MetricCreate, PilotCreate  # noqa: E402
from metrics.settings import get_settings  # noqa: E402
from seed.demo import seed_demo  # noqa: E402
from seed.helpdesk import seed_helpdesk  # noqa: E402


def raw_read(url: str) -> float:
    engine = make_engine(url)
    t0 = time.perf_counter()
    with engine.connect() as conn:
        for table in ("pilot", "metric", "measurement"):
            pd.read_sql(f"SELECT * FROM {table}", conn)
    elapsed = time.perf_counter() - t0
    engine.dispose()
    return elapsed


def apptest_portfolio(url: str, runs: int = 3) -> list[float]:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    os.environ["PILOTGATE_DATABASE_URL"] = url
    get_settings.cache_clear()
    times = []
    for _ in range(runs):
        st.cache_data.clear()
        st.cache_resource.clear()
        at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=120)
        t0 = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - t0)
        if at.exception:
            raise SystemExit(f"Portfolio page raised: {at.exception[0].message}")
    return times


def big_portfolio(url: str, n_pilots: int, weeks: int) -> int:
    engine = make_engine(url)
    init_db(engine)
    today = date.today()
    start = today - timedelta(weeks=weeks // 2)
    first = start - timedelta(days=start.weekday()) - timedelta(weeks=weeks // 2)
    rng = np.random.default_rng(1)
    keys = ["cycle_time", "error_rate", "resolution_time", "analyst_productivity"]
    with session_scope(engine) as s:
        for i in range(n_pilots):
            store.save_pilot(
                session=s,
                actor="bench",
                pilot_in=PilotCreate(
                    name=f"Pilot {i:04d}",
                    vendor=f"Vendor {i % 17}",
                    start_date=start,
                    decision_date=today + timedelta(weeks=8),
                ),
                metrics_in=[
                    MetricCreate(key=k, direction="lower_is_better", target=50.0, min_value=0)
                    for k in keys
                ],
            )
        ids = store.metrics_frame(s)["metric_id"].to_numpy()
        week_list = [first + timedelta(weeks=w) for w in range(weeks)]
        rows = pd.DataFrame(
            {
                "metric_id": np.repeat(ids, weeks),
                "week": week_list * len(ids),
                "value": np.round(rng.uniform(40, 100, size=len(ids) * weeks), 2),
                "note": "",
            }
        )
        rows = rows[pd.to_datetime(rows["week"]) <= pd.Timestamp(today)]
        store.write_measurements(session=s, actor="bench", rows=rows)
    engine.dispose()
    return len(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--pilots", type=int, default=200)
    ap.add_argument("--weeks", type=int, default=104)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        demo_url = f"sqlite:///{Path(tmp) / 'demo.db'}"
        engine = make_engine(demo_url)
        init_db(engine)
        with session_scope(engine) as s:
            seed_demo(session=s, actor="bench", today=date.today())
            helpdesk = get_settings().shared_data_dir / "helpdesk.csv"
            if helpdesk.exists():
                seed_helpdesk(session=s, actor="bench", path=helpdesk)
        engine.dispose()
        raw = min(raw_read(demo_url) for _ in range(3))
        page = apptest_portfolio(demo_url)
        print("demo portfolio (6 pilots, 187 weekly values):")
        print(f"  raw pandas.read_sql of pilot+metric+measurement: {raw * 1000:.1f} ms")
        print(
            f"  AppTest run of the Portfolio page: first {page[0]:.2f} s, "
            f"median {statistics.median(page):.2f} s"
        )
        print(f"  ratio page / raw read: {statistics.median(page) / raw:.0f}x")

        big_url = f"sqlite:///{Path(tmp) / 'big.db'}"
        n = big_portfolio(big_url, args.pilots, args.weeks)
        raw = min(raw_read(big_url) for _ in range(3))
        page = apptest_portfolio(big_url)
        print(f"large portfolio ({args.pilots} pilots, {n} weekly values):")
        print(f"  raw pandas.read_sql of pilot+metric+measurement: {raw * 1000:.1f} ms")
        print(
            f"  AppTest run of the Portfolio page: first {page[0]:.2f} s, "
            f"median {statistics.median(page):.2f} s"
        )
        print(f"  ratio page / raw read: {statistics.median(page) / raw:.0f}x")


if __name__ == "__main__":
    main()
