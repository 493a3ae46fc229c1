"""The deterministic demo portfolio.

Five pilots whose weekly values are generated from fixed trends plus seeded noise,
anchored to the week of ``today`` so the portfolio always looks current. Together
they show every metric status (met, on_track, at_risk, off_track, insufficient_data)
and every recommendation (go, extend, no_go, insufficient_data), plus a stale pilot.
Same ``today`` -> same database content.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd
from sqlmodel import Session

from metrics import store
from metrics.isoweek import monday_of
from metrics.models import MetricCreate, PilotCreate

SEED = 20261130


@dataclass(frozen=True)
class DemoMetric:
    """A demo metric: definition plus how its weekly values evolve.

    ``start_value`` is the level in the baseline period; pilot weeks move linearly from
    ``start_value`` to ``end_value`` over ``ramp_weeks`` and then stay there; ``noise``
    is the standard deviation of the seeded Gaussian noise, in the metric's unit.
    """

    definition: MetricCreate
    start_value: float
    end_value: float
    ramp_weeks: int
    noise: float


@dataclass(frozen=True)
class DemoPilot:
    """A demo pilot: relative dates in weeks from the current week."""

    name: str
    vendor: str
    use_case: str
    owner: str
    start_weeks_ago: int
    decision_in_weeks: int
    cost: float
    metrics: list[DemoMetric] = field(default_factory=list)
    baseline_weeks: int = 8
    last_reported_weeks_ago: int = 1  # 1 = the last complete week
    stage: str = "pilot"


def _m(key, label, unit, direction, role, target, **kw) -> MetricCreate:
    return MetricCreate(
        key=key, label=label, unit=unit, direction=direction, role=role, target=target, **kw
    )


DEMO_PILOTS: list[DemoPilot] = [
    DemoPilot(
        name="Invoice extraction copilot",
        vendor="DocuMind",
        use_case="Extract line items from supplier invoices for accounts payable",
        owner="Priya Nair (Finance ops)",
        start_weeks_ago=14,
        decision_in_weeks=2,
        cost=48000,
        metrics=[
            DemoMetric(
                _m(
                    "cycle_time",
                    "Cycle time",
                    "h",
                    "lower_is_better",
                    "primary",
                    20,
                    min_value=0,
                    # invoice hours saved: 1 h less cycle time = 150 a week of AP time
                    value_per_unit=150.0,
                ),
                start_value=31.0,
                end_value=17.5,
                ramp_weeks=8,
                noise=1.2,
            ),
            DemoMetric(
                _m(
                    "error_rate",
                    "Error rate",
                    "%",
                    "lower_is_better",
                    "guardrail",
                    4.0,
                    margin=1.0,
                    min_value=0,
                    max_value=100,
                ),
                start_value=4.2,
                end_value=4.4,
                ramp_weeks=6,
                noise=0.25,
            ),
        ],
    ),
    DemoPilot(
        name="Claims triage agent",
        vendor="Triagely",
        use_case="Route incoming insurance claims to the right adjuster queue",
        owner="Marco Rossi (Claims)",
        start_weeks_ago=10,
        decision_in_weeks=8,
        cost=65000,
        metrics=[
            DemoMetric(
                _m(
                    "resolution_time",
                    "Resolution time",
                    "h",
                    "lower_is_better",
                    "primary",
                    30,
                    min_value=0,
                    # 1 h faster claim resolution = 120 a week of adjuster time
                    value_per_unit=120.0,
                ),
                start_value=52.0,
                end_value=26.0,
                ramp_weeks=16,
                noise=1.5,
            ),
            DemoMetric(
                _m(
                    "analyst_productivity",
                    "Analyst productivity",
                    "items/h",
                    "higher_is_better",
                    "primary",
                    14.0,
                    min_value=0,
                ),
                start_value=9.0,
                end_value=11.0,
                ramp_weeks=40,
                noise=0.3,
            ),
        ],
    ),
    DemoPilot(
        name="Sales email assistant",
        vendor="Convertly",
        use_case="Draft follow-up emails for inbound sales leads",
        owner="Dana Kim (Revenue)",
        start_weeks_ago=9,
        decision_in_weeks=3,
        cost=30000,
        metrics=[
            DemoMetric(
                _m(
                    "conversion_lift",
                    "Conversion lift",
                    "pp",
                    "higher_is_better",
                    "primary",
                    2.0,
                    baseline=0.0,
                    min_value=-100,
                    max_value=100,
                ),
                start_value=0.0,
                end_value=1.6,
                ramp_weeks=6,
                noise=0.3,
            ),
            DemoMetric(
                _m(
                    "complaint_rate",
                    "Complaint rate",
                    "%",
                    "lower_is_better",
                    "guardrail",
                    1.0,
                    margin=0.5,
                    min_value=0,
                    max_value=100,
                ),
                start_value=1.2,
                end_value=2.6,
                ramp_weeks=5,
                noise=0.15,
            ),
        ],
    ),
    DemoPilot(
        name="Fraud analyst copilot",
        vendor="Sentinel Labs",
        use_case="Summarise alerts and evidence for fraud analysts",
        owner="Lena Vogel (Risk)",
        start_weeks_ago=2,
        decision_in_weeks=12,
        cost=90000,
        metrics=[
            DemoMetric(
                _m(
                    "analyst_productivity",
                    "Analyst productivity",
                    "items/h",
                    "higher_is_better",
                    "primary",
                    6.0,
                    min_value=0,
                ),
                start_value=4.0,
                end_value=5.0,
                ramp_weeks=8,
                noise=0.2,
            ),
        ],
    ),
    DemoPilot(
        name="Contract review assistant",
        vendor="LexFlow",
        use_case="Flag risky clauses in supplier contracts",
        owner="Tom Becker (Legal)",
        start_weeks_ago=16,
        decision_in_weeks=-2,
        cost=55000,
        last_reported_weeks_ago=6,
        metrics=[
            DemoMetric(
                _m(
                    "cycle_time",
                    "Cycle time",
                    "days",
                    "lower_is_better",
                    "primary",
                    3.0,
                    min_value=0,
                ),
                start_value=5.0,
                end_value=5.4,
                ramp_weeks=10,
                noise=0.3,
            ),
        ],
    ),
]


def demo_measurements(
    today: date,
) -> tuple[list[tuple[PilotCreate, list[MetricCreate]]], pd.DataFrame]:
    """The demo pilots and their weekly values as of ``today``.

    Returns:
        (pilots, values): pilots as (PilotCreate, [MetricCreate]); values with columns
        pilot, metric (key), week (datetime.date Monday), value (float64, rounded to
        2 decimals), note ("" ).
    """
    rng = np.random.default_rng(SEED)
    this_week = monday_of(today)
    last_complete = this_week - timedelta(weeks=1)
    pilots, rows = [], []
    for p in DEMO_PILOTS:
        start = this_week - timedelta(weeks=p.start_weeks_ago)
        pilot_in = PilotCreate(
            name=p.name,
            vendor=p.vendor,
            use_case=p.use_case,
            owner=p.owner,
            stage=p.stage,
            start_date=start,
            decision_date=this_week + timedelta(weeks=p.decision_in_weeks, days=4),
            cost=p.cost,
        )
        pilots.append((pilot_in, [m.definition for m in p.metrics]))
        last = this_week - timedelta(weeks=p.last_reported_weeks_ago)
        first = start - timedelta(weeks=p.baseline_weeks)
        n_weeks = (last - first).days // 7 + 1
        for m in p.metrics:
            noise = rng.normal(0.0, m.noise, size=n_weeks)
            for i in range(n_weeks):
                week = first + timedelta(weeks=i)
                k = (week - start).days // 7  # pilot week index, negative in baseline
                frac = 0.0 if k < 0 else min(1.0, (k + 1) / m.ramp_weeks)
                level = m.start_value + (m.end_value - m.start_value) * frac
                value = level + noise[i]
                lo = m.definition.min_value
                if lo is not None:
                    value = max(value, lo)
                if m.definition.baseline is not None and k < 0:
                    continue  # explicit baseline: no baseline weeks needed
                if week > last_complete:
                    continue
                rows.append(
                    {
                        "pilot": p.name,
                        "metric": m.definition.key,
                        "week": week,
                        "value": round(float(value), 2),
                        "note": "",
                    }
                )
    return pilots, pd.DataFrame(rows, columns=["pilot", "metric", "week", "value", "note"])


def seed_demo(*, session: Session, actor: str, today: date) -> store.WriteCounts:
    """Create or refresh the demo portfolio as of ``today`` (idempotent).

    Returns:
        The measurement write counts (a second run on the same day: all unchanged).
    """
    pilots, values = demo_measurements(today)
    for pilot_in, metrics_in in pilots:
        store.save_pilot(session=session, actor=actor, pilot_in=pilot_in, metrics_in=metrics_in)
    ids = store.metrics_frame(session)[["metric_id", "pilot", "key"]]
    rows = values.merge(ids, left_on=["pilot", "metric"], right_on=["pilot", "key"])
    counts = store.write_measurements(
        session=session,
        actor=actor,
        rows=rows[["metric_id", "week", "value", "note"]],
        reason="demo seed",
    )
    seed_demo_governance(session=session, actor=actor, today=today)
    return counts


#: Demo checklist evidence: pilot -> {default item position (0-based): evidence}.
DEMO_EVIDENCE: dict[str, dict[int, str]] = {
    "Invoice extraction copilot": {
        0: "Success metric: AP cycle time <= 20 h per invoice (pilot charter v2)",
        1: "Data protection impact assessment DPIA-2026-014 signed off",
        2: "Finance ops and AP team sign-off, steering committee minutes",
        3: "CFO sponsorship memo; AI governance board review",
        4: "SSO groups ap-copilot-users / ap-copilot-admins; output store access reviewed",
        5: "Separate dev, test and prod tenants (ticket INFRA-2231)",
        6: "Prompt and output logging policy LOG-07, 90-day retention",
        7: "Vendor sub-processor list reviewed; OCR service approved",
    },
    "Claims triage agent": {
        0: "Success metric: median claim resolution time <= 30 h",
        2: "Claims operations workshop, 3 queues agreed",
    },
}
#: The demo's one recorded decision: (pilot, decision, rationale).
DEMO_DECISION = (
    "Invoice extraction copilot",
    "go",
    "Cycle time is below its 20 h target and the error-rate guardrail held. "
    "Production waits for the open governance items (documentation, IP, knowledge transfer).",
)


def seed_demo_governance(*, session: Session, actor: str, today: date) -> None:
    """Tick the demo checklist items of :data:`DEMO_EVIDENCE` and record
    :data:`DEMO_DECISION` as of ``today`` (once: a pilot with a decision keeps it).

    Idempotent: items already ticked with the same evidence are left unchanged.
    """
    from metrics import governance, service

    pilots = store.pilots_frame(session).set_index("pilot")["pilot_id"]
    for name in DEMO_EVIDENCE:
        governance.ensure_default_checklist(
            session=session, actor=actor, pilot_id=int(pilots[name])
        )
    items = governance.checklist_frame(session)
    for name, evidence in DEMO_EVIDENCE.items():
        pid = int(pilots[name])
        mine = items[items["pilot_id"] == pid].set_index("item")
        for pos, text in evidence.items():
            item = governance.DEFAULT_CHECKLIST[pos]
            if item not in mine.index:
                continue
            governance.tick_checklist_item(
                session=session,
                actor=actor,
                item_id=int(mine.loc[item, "item_id"]),
                evidence=text,
            )
    name, kind, rationale = DEMO_DECISION
    pid = int(pilots[name])
    if governance.decisions_frame(session, pilot_id=pid).empty:
        service.record_decision(
            session=session,
            actor=actor,
            pilot_id=pid,
            decision=kind,
            rationale=rationale,
            as_of=today,
        )
