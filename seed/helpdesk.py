"""The real help-desk pilot, built from ``shared/data/helpdesk.csv``.

Source: the "Helpdesk" event log of an Italian software company (Tax et al., CAiSE
2017; repository verenich/ProcessSequencePrediction). Metric ``resolution_time``:
a ticket's last event minus its first event, in hours; weekly value = median over
the tickets opened (first event) in that ISO week (see :mod:`metrics.derive`).

Weeks imported: the baseline period 2011-01-03 .. 2011-06-26 (its weekly mean is the
baseline) and the pilot period 2012-01-02 .. 2012-06-24; no others.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
from sqlmodel import Session

from metrics import store
from metrics.derive import read_event_log, weekly_median_duration
from metrics.models import MetricCreate, PilotCreate

PILOT_NAME = "Helpdesk triage assistant"
METRIC_KEY = "resolution_time"
BASELINE_WEEKS = (date(2011, 1, 3), date(2011, 6, 26))
PILOT_WEEKS = (date(2012, 1, 2), date(2012, 6, 24))
START_DATE = date(2012, 1, 2)
DECISION_DATE = date(2012, 6, 29)
#: Target: a one-third cut of the ~120 h baseline, rounded to 80 h.
TARGET_HOURS = 80.0

PILOT = PilotCreate(
    name=PILOT_NAME,
    vendor="Help-desk AI vendor (illustrative)",
    use_case="Triage and route IT help-desk tickets (real public event log)",
    owner="IT service desk",
    stage="pilot",
    start_date=START_DATE,
    decision_date=DECISION_DATE,
)
METRICS = [
    MetricCreate(
        key=METRIC_KEY,
        label="Resolution time",
        unit="h",
        direction="lower_is_better",
        role="primary",
        target=TARGET_HOURS,
        min_value=0.0,
    )
]


def helpdesk_weeks(path: Path) -> pd.DataFrame:
    """Weekly median resolution time for the baseline and pilot periods.

    Returns:
        Columns week (datetime64[ns], Monday), value (float64, hours), cases (int64):
        the 25 baseline weeks and 25 pilot weeks, sorted by week.
    """
    events = read_event_log(path, case_col="CaseID", time_col="CompleteTimestamp")
    weekly = weekly_median_duration(events, case_col="CaseID", time_col="CompleteTimestamp")
    wk = weekly["week"]
    keep = wk.between(pd.Timestamp(BASELINE_WEEKS[0]), pd.Timestamp(BASELINE_WEEKS[1])) | (
        wk.between(pd.Timestamp(PILOT_WEEKS[0]), pd.Timestamp(PILOT_WEEKS[1]))
    )
    return weekly[keep].reset_index(drop=True)


def seed_helpdesk(*, session: Session, actor: str, path: Path) -> store.WriteCounts:
    """Create or refresh the help-desk pilot from the event log at ``path``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        metrics.derive.DeriveError: the file is not a readable event log.
    """
    if not Path(path).exists():
        raise FileNotFoundError(f"help-desk event log not found: {path}")
    weeks = helpdesk_weeks(Path(path))
    res = store.save_pilot(session=session, actor=actor, pilot_in=PILOT, metrics_in=METRICS)
    mid = int(
        store.metrics_frame(session, pilot_id=res.pilot_id)
        .set_index("key")
        .at[METRIC_KEY, "metric_id"]
    )
    rows = pd.DataFrame(
        {
            "metric_id": mid,
            "week": weeks["week"].dt.date,
            "value": weeks["value"],
            "note": weeks["cases"].map(lambda n: f"median of {n} tickets"),
        }
    )
    return store.write_measurements(
        session=session, actor=actor, rows=rows, reason="seed helpdesk.csv"
    )
