"""Import speed: `pilotgate import` of a 100,000-row measurements CSV, as a ratio
against a raw baseline measured in the same run (pandas.read_csv + one executemany
insert of the same rows into the same schema).

Run: ``make bench`` or ``.venv/bin/python benchmarks/bench_import.py [--rows N]``.
Prints the timings and the ratio; asserts nothing (speed is measured, not tested).
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from metrics.db import init_db, make_engine, session_scope
from metrics.models import Measurement, MetricCreate, PilotCreate
from metrics.store import metrics_frame, save_pilot

METRICS = ["cycle_time", "error_rate", "resolution_time", "analyst_productivity"]


def build_portfolio(url: str, n_pilots: int, first_week: date) -> None:
    """Pilots with four metrics each (no values yet)."""
    engine = make_engine(url)
    init_db(engine)
    with session_scope(engine) as s:
        for i in range(n_pilots):
            save_pilot(
                session=s,
                actor="bench",
                pilot_in=PilotCreate(
                    name=f"Pilot {i:03d}",
                    vendor="Bench",
                    start_date=first_week + timedelta(weeks=100),
                    decision_date=first_week + timedelta(weeks=600),
                ),
                metrics_in=[
                    MetricCreate(key=k, direction="lower_is_better", target=1.0, min_value=0)
                    for k in METRICS
                ],
            )
    engine.dispose()


def make_csv(n_rows: int, n_pilots: int, first_week: date) -> str:
    weeks_per_metric = n_rows // (n_pilots * len(METRICS))
    rng = np.random.default_rng(7)
    pilots = np.repeat([f"Pilot {i:03d}" for i in range(n_pilots)], len(METRICS) * weeks_per_metric)
    metrics = np.tile(np.repeat(METRICS, weeks_per_metric), n_pilots)
    weeks = np.tile(
        [(first_week + timedelta(weeks=w)).isoformat() for w in range(weeks_per_metric)],
        n_pilots * len(METRICS),
    )
    values = np.round(rng.uniform(1, 100, size=len(pilots)), 3)
    df = pd.DataFrame({"pilot": pilots, "metric": metrics, "week": weeks, "value": values})
    df["note"] = ""
    return df.to_csv(index=False)


def raw_baseline(url: str, csv_text: str) -> float:
    """pandas.read_csv + resolve ids with one query + one executemany insert."""
    engine = make_engine(url)
    t0 = time.perf_counter()
    df = pd.read_csv(io.StringIO(csv_text), keep_default_na=False)
    with session_scope(engine) as s:
        ids = metrics_frame(s)[["metric_id", "pilot", "key"]]
        rows = df.merge(ids, left_on=["pilot", "metric"], right_on=["pilot", "key"])
        s.execute(
            sa.insert(Measurement),
            [
                {"metric_id": int(m), "week": date.fromisoformat(w), "value": float(v), "note": n}
                for m, w, v, n in zip(
                    rows["metric_id"], rows["week"], rows["value"], rows["note"], strict=True
                )
            ],
        )
    elapsed = time.perf_counter() - t0
    engine.dispose()
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--pilots", type=int, default=50)
    args = ap.parse_args()
    first_week = date(2010, 1, 4)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        csv_text = make_csv(args.rows, args.pilots, first_week)
        n = csv_text.count("\n") - 1
        csv_path = tmp / "weekly.csv"
        csv_path.write_text(csv_text)
        raw_url = f"sqlite:///{tmp / 'raw.db'}"
        prod_url = f"sqlite:///{tmp / 'product.db'}"
        build_portfolio(raw_url, args.pilots, first_week)
        build_portfolio(prod_url, args.pilots, first_week)

        raw = raw_baseline(raw_url, csv_text)
        pilotgate = Path(sys.executable).with_name("pilotgate")
        t0 = time.perf_counter()
        proc = subprocess.run(
            [str(pilotgate), "--database-url", prod_url, "import", str(csv_path)],
            capture_output=True,
            text=True,
        )
        product = time.perf_counter() - t0
        if proc.returncode != 0:
            sys.exit(f"pilotgate import failed: {proc.stderr.strip()[:500]}")
        print(f"rows: {n}")
        print(f"raw read_csv + executemany insert: {raw:.2f} s")
        print(
            f"pilotgate import (CLI wall time, incl. start-up, validation, revisions): "
            f"{product:.2f} s  -> {proc.stdout.strip()}"
        )
        print(f"ratio product / raw: {product / raw:.1f}x")


if __name__ == "__main__":
    main()
