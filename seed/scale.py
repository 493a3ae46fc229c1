"""A large synthetic portfolio for benchmarks and scale tests (issue 13).

``build_scale_portfolio`` writes ``pilots`` pilots x ``metrics`` metrics x ``weeks``
weekly values (the issue's portfolio is 1,000 x 8 x 104 = 832,000 values) straight
into a migrated database: pilots and metrics through the ORM (so every column keeps
its model default), measurements with the driver's own ``executemany`` over values
converted once per column. It bypasses the store's validation, role checks and
revisions on purpose: it is a fixture for reading at scale, not a way to enter data
(the import path is what ``benchmarks/bench_scale.py`` times separately).

Deterministic: the same arguments give the same database. Pilots spread over
``VENDORS`` vendors and every stage; each metric has baseline-period weeks (half of
``weeks``) and pilot weeks moving toward its target at a pilot-specific pace; some
pilots skip weeks (reporting discipline) and some stopped reporting (stale).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from metrics.models import Metric, Pilot

SEED = 13
VENDORS = 40
STAGES = ("discovery", "pilot", "pilot", "pilot", "production", "transition", "stopped")

#: (key, label, unit, direction, role, baseline level, target level, guardrail margin)
TEMPLATES = [
    ("cycle_time", "Cycle time", "h", "lower_is_better", "primary", 40.0, 30.0, None),
    ("error_rate", "Error rate", "%", "lower_is_better", "guardrail", 4.0, 3.5, 1.0),
    ("resolution_time", "Resolution time", "h", "lower_is_better", "primary", 120.0, 80.0, None),
    ("conversion_lift", "Conversion lift", "pp", "higher_is_better", "primary", 1.0, 3.0, None),
    ("analyst_productivity", "Analyst productivity", "items/h", "higher_is_better", "primary",
     8.0, 11.0, None),
    ("cost_per_item", "Cost per item", "EUR", "lower_is_better", "primary", 5.0, 4.0, None),
    ("user_trust", "User trust score", "pts", "higher_is_better", "guardrail", 70.0, 75.0, 5.0),
    ("first_contact_fix", "First-contact fix", "%", "higher_is_better", "primary", 55.0, 65.0,
     None),
]  # fmt: skip


@dataclass(frozen=True)
class ScalePortfolio:
    """What :func:`build_scale_portfolio` wrote: counts and the day it is judged at."""

    pilots: int
    metrics: int
    values: int
    as_of: date


def scale_as_of(weeks: int, first_monday: date = date(2024, 1, 1)) -> date:
    """The day the portfolio is meant to be judged at: the Sunday of its last week."""
    return first_monday + timedelta(weeks=weeks, days=-1)


def build_scale_portfolio(
    engine: Engine,
    *,
    pilots: int = 1000,
    metrics: int = 8,
    weeks: int = 104,
    first_monday: date = date(2024, 1, 1),
    gaps: bool = True,
    with_values: bool = True,
    chunk: int = 50_000,
) -> ScalePortfolio:
    """Write the synthetic portfolio into the empty, migrated database behind ``engine``.

    Args:
        pilots: number of pilots (named ``Pilot 0000``...).
        metrics: metrics per pilot (1..8, the first ``metrics`` of ``TEMPLATES``).
        weeks: weeks from ``first_monday``; the first half is the baseline period,
            the pilot starts at week ``weeks // 2`` and decides a few weeks after the last.
        gaps: when False every metric reports every week (exactly pilots x metrics x
            weeks values); when True some pilots skip weeks and some are stale.
        with_values: when False only the pilots and metrics are written (an import target).
        chunk: rows per ``executemany`` call.

    Returns the counts and the as-of day (:func:`scale_as_of`). Raises ValueError when
    ``metrics`` is outside 1..8.
    """
    if not 1 <= metrics <= len(TEMPLATES):
        raise ValueError(f"metrics must be 1..{len(TEMPLATES)}")
    rng = np.random.default_rng(SEED)
    start = first_monday + timedelta(weeks=weeks // 2)
    templates = TEMPLATES[:metrics]
    now = datetime.now(UTC)
    with Session(engine) as s:
        rows = []
        for i in range(pilots):
            rows.append(
                Pilot(
                    name=f"Pilot {i:04d}",
                    vendor=f"Vendor {i % VENDORS:02d}",
                    use_case=f"Use case {i % 23}",
                    owner=f"Owner {i % 31}",
                    stage=STAGES[i % len(STAGES)],
                    start_date=start,
                    decision_date=first_monday + timedelta(weeks=weeks + int(i % 9), days=4),
                    cost=float(10_000 + 500 * (i % 50)),
                    created_at=now,
                    updated_at=now,
                )
            )
        s.add_all(rows)
        s.flush()
        pilot_ids = [p.id for p in rows]
        mrows = []
        for pid in pilot_ids:
            for key, label, unit, direction, role, _base, target, margin in templates:
                mrows.append(
                    Metric(
                        pilot_id=pid,
                        key=key,
                        label=label,
                        unit=unit,
                        direction=direction,
                        role=role,
                        target=target,
                        margin=margin,
                        min_value=0.0,
                        max_value=100.0 if unit == "%" else None,
                        value_per_unit=25.0 if key == "cycle_time" else None,
                    )
                )
        s.add_all(mrows)
        s.flush()
        metric_ids = np.array([m.id for m in mrows], dtype=np.int64)
        s.commit()

    n_m = len(metric_ids)
    base = np.tile([t[5] for t in templates], pilots)
    target = np.tile([t[6] for t in templates], pilots)
    pace = np.repeat(rng.uniform(-0.3, 1.6, size=pilots), metrics)  # share of the way
    w = np.arange(weeks)
    pilot_w = np.clip(w - weeks // 2, 0, None) / max(weeks - weeks // 2, 1)
    level = base[:, None] + (target - base)[:, None] * pace[:, None] * pilot_w[None, :]
    noise = rng.normal(0.0, 0.04, size=(n_m, weeks)) * np.abs(base)[:, None]
    values = np.round(np.clip(level + noise, 0.0, None), 3)
    values[np.tile([t[3] == "%" for t in templates], pilots)] = np.clip(
        values[np.tile([t[3] == "%" for t in templates], pilots)], 0, 100
    )
    keep = rng.random((n_m, weeks)) > np.repeat(rng.uniform(0, 0.2, size=pilots), metrics)[:, None]
    stale = np.repeat(np.arange(pilots) % 11 == 5, metrics)  # stopped reporting 4 weeks ago
    keep[stale, -4:] = False
    if not gaps:
        keep[:] = True
    if not with_values:
        keep[:] = False
    mi, wi = np.nonzero(keep)
    week_dates = [first_monday + timedelta(weeks=int(k)) for k in range(weeks)]
    sqlite = engine.dialect.name == "sqlite"
    if sqlite:  # what SQLAlchemy's SQLite Date/DateTime types store: ISO text, naive UTC
        week_col = [d.isoformat() for d in week_dates]
        at = now.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
        mark = "?"
    else:
        week_col, at, mark = week_dates, now, "%s"
    sql = (
        "INSERT INTO measurement (metric_id, week, value, note, entered_by, entered_at, "
        f"version) VALUES ({', '.join([mark] * 7)})"
    )
    mids = metric_ids[mi].tolist()
    vals = values[mi, wi].tolist()
    wks = wi.tolist()
    total = len(mids)
    with engine.begin() as conn:
        for lo in range(0, total, chunk):
            hi = min(lo + chunk, total)
            conn.exec_driver_sql(
                sql,
                [(mids[k], week_col[wks[k]], vals[k], "", "scale", at, 1) for k in range(lo, hi)],
            )
        conn.execute(sa.text("SELECT 1"))
    return ScalePortfolio(
        pilots=pilots, metrics=n_m, values=total, as_of=scale_as_of(weeks, first_monday)
    )
