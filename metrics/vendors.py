"""Vendors compared across their pilots (DESIGN §8): a pure function over the summary.

:func:`vendor_summary` turns :class:`metrics.service.Evaluation`'s two frames (one row
per pilot, one row per metric) into one row per vendor. Nothing here reads the
database or Streamlit; :func:`metrics.service.vendors_frame` is its service function,
the Vendors page and ``pilotgate export vendors`` show its output. The formulas are
in ``docs/decision-rules.md`` ("Vendors").
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from metrics import computations as C

#: The name a pilot without a vendor is grouped under.
NO_VENDOR = "(no vendor)"
#: Stages in the product's order (metrics.models.Stage), one count column each.
STAGES = ("discovery", "pilot", "production", "transition", "stopped")

#: Columns of :func:`vendor_summary` and of the vendors CSV, in order.
VENDOR_COLUMNS = [
    "vendor",
    "pilots",
    *(f"stage_{s}" for s in STAGES),
    *(f"recommendation_{r}" for r in C.RECOMMENDATIONS),
    "median_improvement_pct",
    "targets_met",
    "targets_total",
    "weeks_reported",
    "weeks_expected",
    "reporting_pct",
    "stale_pilots",
    "cost",
    "estimated_weekly_value",
]


def pilot_improvement(metrics: pd.DataFrame) -> pd.Series:
    """Each pilot's improvement against its own baseline: the median ``improvement_pct``
    of its primary metrics where defined (NaN when none is), indexed by pilot_id."""
    prim = metrics[(metrics[C.ROLE] == C.PRIMARY) & metrics[C.IMPROVEMENT_PCT].notna()]
    return prim.groupby(C.PILOT_ID)[C.IMPROVEMENT_PCT].median().astype("float64")


def vendor_summary(pilots: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per vendor across its pilots, sorted by vendor name.

    Args:
        pilots: ``Evaluation.pilots`` (pilot_id, vendor, stage, recommendation, stale,
            cost, estimated_weekly_value).
        metrics: ``Evaluation.metrics`` (pilot_id, role, improvement_pct, target_met,
            weeks_reported, weeks_expected).

    Returns:
        ``VENDOR_COLUMNS``: vendor (``NO_VENDOR`` for an empty one), pilots (count),
        ``stage_<stage>`` and ``recommendation_<rec>`` (pilot counts, int64),
        median_improvement_pct (median over the vendor's pilots of each pilot's median
        primary-metric improvement_pct against its own baseline; NaN when no pilot has
        one), targets_met / targets_total (primary metrics that met their target / all
        primary metrics), weeks_reported / weeks_expected (pilot-period weeks, summed
        over the vendor's metrics), reporting_pct (= weeks_reported / weeks_expected x
        100, the reporting discipline; NaN when no week is expected yet), stale_pilots,
        cost (sum of the pilots' costs that are set; NaN when none is) and
        estimated_weekly_value (sum of the pilots' estimated value per week, money;
        NaN when no pilot has a value model).
    """
    if pilots.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in VENDOR_COLUMNS})
    p = pilots.copy()
    p["vendor"] = p["vendor"].fillna("").astype(str).str.strip().replace("", NO_VENDOR)
    p["_improvement"] = p[C.PILOT_ID].map(pilot_improvement(metrics)).astype("float64")
    vendor_of = p.set_index(C.PILOT_ID)["vendor"]

    groups = p.groupby("vendor", sort=True)
    out = pd.DataFrame(index=pd.Index(sorted(p["vendor"].unique()), name="vendor"))
    out["pilots"] = groups.size()
    stage_counts = pd.crosstab(p["vendor"], p["stage"])
    for s in STAGES:
        out[f"stage_{s}"] = stage_counts.get(s, 0)
    rec_counts = pd.crosstab(p["vendor"], p[C.RECOMMENDATION])
    for r in C.RECOMMENDATIONS:
        out[f"recommendation_{r}"] = rec_counts.get(r, 0)
    out["median_improvement_pct"] = groups["_improvement"].median()

    m = metrics[metrics[C.PILOT_ID].isin(vendor_of.index)].copy()
    m["vendor"] = m[C.PILOT_ID].map(vendor_of)
    prim = m[m[C.ROLE] == C.PRIMARY]
    out["targets_met"] = prim.groupby("vendor")[C.TARGET_MET].apply(
        lambda s: int(s.fillna(False).astype(bool).sum())
    )
    out["targets_total"] = prim.groupby("vendor").size()
    out["weeks_reported"] = m.groupby("vendor")[C.WEEKS_REPORTED].sum()
    out["weeks_expected"] = m.groupby("vendor")[C.WEEKS_EXPECTED].sum()
    out["stale_pilots"] = groups[C.STALE].apply(lambda s: int(s.fillna(True).astype(bool).sum()))
    out["cost"] = groups[C.COST].sum(min_count=1)
    out["estimated_weekly_value"] = groups[C.ESTIMATED_WEEKLY_VALUE].sum(min_count=1)

    count_cols = [c for c in VENDOR_COLUMNS if c.startswith(("stage_", "recommendation_"))]
    for col in [
        "pilots",
        *count_cols,
        "targets_met",
        "targets_total",
        "weeks_reported",
        "weeks_expected",
        "stale_pilots",
    ]:
        out[col] = out[col].fillna(0).astype("int64")
    expected = out["weeks_expected"].astype("float64")
    out["reporting_pct"] = np.where(
        expected > 0, out["weeks_reported"] / expected.where(expected > 0) * 100.0, np.nan
    )
    for col in ("median_improvement_pct", "cost", "estimated_weekly_value"):
        out[col] = out[col].astype("float64")
    return out.reset_index()[VENDOR_COLUMNS]


def vendor_pilots(pilots: pd.DataFrame, metrics: pd.DataFrame, vendor: str) -> pd.DataFrame:
    """The pilots of one vendor (``NO_VENDOR`` = pilots without one), drill-down rows:
    pilot_id, pilot, stage, recommendation, improvement_pct (the pilot's median primary
    improvement, as in :func:`vendor_summary`), primary_met, primary_total,
    completeness_pct, stale, cost, estimated_weekly_value; sorted by pilot name."""
    names = pilots["vendor"].fillna("").astype(str).str.strip().replace("", NO_VENDOR)
    p = pilots[names == vendor]
    out = pd.DataFrame(
        {
            C.PILOT_ID: p[C.PILOT_ID].astype("int64"),
            C.PILOT: p[C.PILOT],
            "stage": p["stage"],
            C.RECOMMENDATION: p[C.RECOMMENDATION],
            C.IMPROVEMENT_PCT: p[C.PILOT_ID].map(pilot_improvement(metrics)).astype("float64"),
            C.PRIMARY_MET: p[C.PRIMARY_MET],
            C.PRIMARY_TOTAL: p[C.PRIMARY_TOTAL],
            C.COMPLETENESS_PCT: p[C.COMPLETENESS_PCT].astype("float64"),
            C.STALE: p[C.STALE].astype(bool),
            C.COST: p[C.COST].astype("float64"),
            C.ESTIMATED_WEEKLY_VALUE: p[C.ESTIMATED_WEEKLY_VALUE].astype("float64"),
        }
    )
    return out.sort_values(C.PILOT, kind="stable").reset_index(drop=True)
