"""Service functions: what pages, the CLI and exports call.

Each takes a session (one per action), reads set-based frames from the store, runs
the pure computations and returns plain DataFrames / dataclasses, never live ORM
objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
from sqlmodel import Session

from metrics import computations as C
from metrics import governance, store
from metrics.models import LATEST_DATE

#: Columns of the go/no-go summary export, in order (DESIGN §6).
SUMMARY_EXPORT_COLUMNS = [
    "pilot",
    "vendor",
    "stage",
    "metric",
    "role",
    "unit",
    "direction",
    "baseline",
    "target",
    "current",
    "weeks_reported",
    "change_pct",
    "improvement_pct",
    "ci_low_pct",
    "ci_high_pct",
    "progress_pct",
    "projected_target_week",
    "status",
    "recommendation",
    "reasons",
    "decision",
    "decided_by",
    "decided_at",
    "as_of",
    "open_checklist_items",
    "decision_rationale",
    # economics (docs/decision-rules.md), after DESIGN §6's columns
    "estimated_weekly_value",
    "payback_week",
    "roi_pct",
    # the pilot's deadline, owner and cost; the metric's reporting completeness and
    # staleness (issue 10), after the columns above so older readers keep working
    "decision_date",
    "owner",
    "cost",
    "completeness_pct",
    "stale",
]


#: Significant digits kept for numbers in the go/no-go summary export.
SUMMARY_SIGNIFICANT = 12


def today() -> date:
    """Today's date (local calendar day of the server)."""
    return date.today()


@dataclass(frozen=True)
class Evaluation:
    """The numbers for a set of pilots as of one day.

    Attributes:
        metrics: :func:`metrics.computations.metric_summary` output, one row per metric.
        pilots: :func:`metrics.computations.recommend` output joined with the pilots'
            fields: pilot_id, pilot, vendor, use_case, owner, stage, start_date,
            decision_date, cost, recommendation, reasons, primary_met, primary_total
            (primary metrics that met their target / all primary metrics), metrics_met,
            metrics_total (all metrics; a held guardrail counts as met), stale,
            completeness_pct (mean over metrics, float64), last_week, and the
            economics of :func:`metrics.computations.pilot_economics`:
            has_value_model (bool), estimated_weekly_value (float64, money per week),
            payback_week (datetime64[ns]), roi_pct (float64).
        as_of: the day judged at.
    """

    metrics: pd.DataFrame
    pilots: pd.DataFrame
    as_of: date


def evaluate(session: Session, *, as_of: date, pilot_id: int | None = None) -> Evaluation:
    """Compute every metric's numbers and every pilot's recommendation as of ``as_of``.

    Four queries (pilots, stage moves after ``as_of``, metrics, measurements), then
    pure computation. Each pilot's ``stage`` is the one it had on ``as_of``
    (:func:`metrics.store.stages_as_of_frame`).
    """
    pilots = store.pilots_frame(session)
    if pilot_id is not None:
        pilots = pilots[pilots[C.PILOT_ID] == pilot_id].reset_index(drop=True)
    # The as-of date applies to the stage too: a move recorded later is undone.
    then = store.stages_as_of_frame(session, as_of=as_of)
    if not then.empty and not pilots.empty:
        earlier = pilots[C.PILOT_ID].map(then.set_index(C.PILOT_ID)["stage"])
        pilots = pilots.assign(stage=earlier.where(earlier.notna(), pilots["stage"]))
    metrics = store.metrics_frame(session, pilot_id=pilot_id)
    measurements = store.weekly_values_frame(session, pilot_id=pilot_id, as_of=as_of)
    summary = C.metric_summary(metrics, measurements, as_of=as_of)
    recs = C.recommend(summary, as_of=as_of) if not summary.empty else _empty_recs()
    if not summary.empty:
        agg = summary.groupby(C.PILOT_ID).agg(
            completeness_pct=(C.COMPLETENESS_PCT, "mean"), last_week=(C.LAST_WEEK, "max")
        )
    else:
        agg = pd.DataFrame(columns=["completeness_pct", "last_week"])
    out = pilots.merge(recs.drop(columns=[C.PILOT]), on=C.PILOT_ID, how="left")
    out = out.merge(agg, left_on=C.PILOT_ID, right_index=True, how="left")
    out = out.merge(C.pilot_economics(summary, pilots), on=C.PILOT_ID, how="left")
    no_metrics = out[C.RECOMMENDATION].isna()
    out.loc[no_metrics, C.RECOMMENDATION] = C.INSUFFICIENT
    out.loc[no_metrics, C.REASONS] = "no metrics defined"
    for col in (C.PRIMARY_MET, C.PRIMARY_TOTAL, C.METRICS_MET, C.METRICS_TOTAL):
        out[col] = out[col].fillna(0).astype("int64")
    out[C.STALE] = out[C.STALE].fillna(True).astype(bool)
    return Evaluation(metrics=summary, pilots=out, as_of=as_of)


def _empty_recs() -> pd.DataFrame:
    return pd.DataFrame(
        columns=[
            C.PILOT_ID,
            C.PILOT,
            C.RECOMMENDATION,
            C.REASONS,
            C.PRIMARY_MET,
            C.PRIMARY_TOTAL,
            C.METRICS_MET,
            C.METRICS_TOTAL,
            C.STALE,
        ]
    )


def summary_export_frame(
    session: Session,
    *,
    as_of: date,
    decisions_judged_by: date | None = None,
    pilot_id: int | None = None,
    evaluation: Evaluation | None = None,
) -> pd.DataFrame:
    """The go/no-go summary: one row per pilot and metric, DESIGN §6 columns in order.

    Numbers stay float64, rounded to ``SUMMARY_SIGNIFICANT`` significant digits (NaN =
    undefined,
    written empty); weeks are ISO labels;
    ``as_of`` is an ISO date string. decision, decided_by, decided_at (ISO 8601
    UTC, seconds) and decision_rationale come from the pilot's latest decision judged on
    evidence as of ``as_of`` or earlier (the decision's own as-of date; empty when none),
    so a summary as of an earlier day never shows a later decision
    (``decisions_judged_by`` overrides that day: a decision's snapshot shows every
    decision before it). ``open_checklist_items`` lists the pilot's open readiness and
    governance items separated by "; " (empty when all are ticked; see
    :func:`metrics.governance.open_checklist_items`).

    Economics (appended after DESIGN §6's columns, empty where no value model is set;
    formulas in docs/decision-rules.md): ``estimated_weekly_value`` is the metric's own
    estimated value per week (money; empty when the metric has no value_per_unit);
    ``payback_week`` (ISO label) and ``roi_pct`` (52-week ROI, %) are the pilot's,
    repeated on each of its rows like the recommendation.

    Then (issue 10): ``decision_date`` (ISO date), ``owner`` and ``cost`` (the pilot's,
    empty when not set), and the metric's own ``completeness_pct`` (pilot weeks
    reported / complete pilot weeks expected, %, empty before the first complete week)
    and ``stale`` (``true`` when the metric has no value in the last 2 expected weeks,
    else ``false``).
    ``pilot_id`` limits the rows to one pilot (the same values as its rows of the whole
    summary: every number is computed per pilot).

    ``evaluation``: the portfolio's :func:`evaluate` as of ``as_of`` when the caller has
    it already (a page's cached read); computed here otherwise.
    """
    ev = evaluation if evaluation is not None else evaluate(session, as_of=as_of, pilot_id=pilot_id)
    m = ev.metrics
    if pilot_id is not None and not m.empty:
        m = m[m[C.PILOT_ID] == pilot_id]
    if m.empty:
        return pd.DataFrame(columns=SUMMARY_EXPORT_COLUMNS)
    recs = ev.pilots.set_index(C.PILOT_ID)
    latest = {
        int(r[C.PILOT_ID]): (
            r[governance.DECISION],
            r[governance.DECIDED_BY],
            r[governance.DECIDED_AT].isoformat(timespec="seconds"),
            r[governance.RATIONALE],
        )
        for r in governance.latest_decisions_frame(
            session, judged_by=decisions_judged_by or as_of
        ).to_dict("records")
    }
    open_items = {
        pid: "; ".join(items) for pid, items in governance.open_checklist_items(session).items()
    }
    out = pd.DataFrame(
        {
            "pilot": m[C.PILOT],
            "vendor": m["vendor"],
            "stage": m["stage"],
            "metric": m[C.KEY],
            "role": m[C.ROLE],
            "unit": m[C.UNIT],
            "direction": m[C.DIRECTION],
            "baseline": m[C.BASELINE],
            "target": m[C.TARGET],
            "current": m[C.CURRENT],
            "weeks_reported": m[C.WEEKS_REPORTED].astype("int64"),
            "change_pct": m[C.CHANGE_PCT],
            "improvement_pct": m[C.IMPROVEMENT_PCT],
            "ci_low_pct": m[C.CI_LOW_PCT],
            "ci_high_pct": m[C.CI_HIGH_PCT],
            "progress_pct": m[C.PROGRESS_PCT],
            "projected_target_week": m[C.PROJECTED_TARGET_WEEK].map(C.iso_label),
            "status": m[C.STATUS],
            "recommendation": m[C.PILOT_ID].map(recs[C.RECOMMENDATION]),
            "reasons": m[C.PILOT_ID].map(recs[C.REASONS]),
            "decision": m[C.PILOT_ID].map({k: v[0] for k, v in latest.items()}),
            "decided_by": m[C.PILOT_ID].map({k: v[1] for k, v in latest.items()}),
            "decided_at": m[C.PILOT_ID].map({k: v[2] for k, v in latest.items()}),
            "as_of": as_of.isoformat(),
            "open_checklist_items": m[C.PILOT_ID].map(open_items),
            "decision_rationale": m[C.PILOT_ID].map({k: v[3] for k, v in latest.items()}),
            # the metric's own estimated weekly value; payback and ROI are the pilot's
            "estimated_weekly_value": m[C.ESTIMATED_WEEKLY_VALUE],
            "payback_week": m[C.PILOT_ID].map(recs[C.PAYBACK_WEEK]).map(C.iso_label),
            "roi_pct": m[C.PILOT_ID].map(recs[C.ROI_PCT]).astype("float64"),
            "decision_date": pd.to_datetime(m[C.DECISION_DATE]).dt.strftime("%Y-%m-%d"),
            "owner": m[C.PILOT_ID].map(recs["owner"]),
            "cost": m[C.PILOT_ID].map(recs[C.COST]).astype("float64"),
            "completeness_pct": m[C.COMPLETENESS_PCT].astype("float64"),
            "stale": np.where(m[C.STALE].astype(bool), "true", "false"),
        }
    )
    # The summary is read by people: round away float noise (52.42999999999999 ->
    # 52.43) to SUMMARY_SIGNIFICANT digits, which keeps tiny values (1.2e-06) intact.
    numeric = out.select_dtypes("number").columns.drop("weeks_reported")
    for col in numeric:
        out[col] = [
            float(f"{v:.{SUMMARY_SIGNIFICANT}g}") if pd.notna(v) else np.nan for v in out[col]
        ]
    return out[SUMMARY_EXPORT_COLUMNS].reset_index(drop=True)


@dataclass(frozen=True)
class PilotDetail:
    """Everything the Pilot page shows for one pilot.

    Attributes:
        pilot: one row of ``Evaluation.pilots`` as a dict.
        metrics: that pilot's rows of ``Evaluation.metrics``.
        measurements: store.measurements_frame for the pilot (up to as_of).
        stages: store.stage_events_frame for the pilot.
    """

    pilot: dict
    metrics: pd.DataFrame
    measurements: pd.DataFrame
    stages: pd.DataFrame


def pilot_detail(session: Session, *, pilot_id: int, as_of: date) -> PilotDetail | None:
    """The Pilot page's data, or None when no pilot has that id."""
    ev = evaluate(session, as_of=as_of, pilot_id=pilot_id)
    if ev.pilots.empty:
        return None
    return PilotDetail(
        pilot=ev.pilots.iloc[0].to_dict(),
        metrics=ev.metrics,
        measurements=store.measurements_frame(session, pilot_id=pilot_id, as_of=as_of),
        stages=store.stage_events_frame(session, pilot_id=pilot_id),
    )


# =========================================================================== reports (DESIGN §12)


class ReportError(ValueError):
    """A report cannot be built for the input given (unknown pilot, as-of before the
    pilot's start): the message says what to change."""


class PilotNotFound(ReportError):
    """No pilot has the id or name asked for."""


def report_inputs(session: Session, *, pilot_id: int, as_of: date, check_start: bool = True):
    """The inputs of one pilot's decision report (:class:`metrics.report.PilotReportInputs`).

    The metric rows are the pilot's rows of :func:`summary_export_frame` as of ``as_of``
    (so the PDF prints the summary CSV's numbers); charts use :func:`pilot_detail`'s
    trend lines and weekly values up to ``as_of``; the checklist and latest decision are
    those the summary shows (decisions judged by ``as_of``).

    Raises:
        ReportError: no pilot with that id, or (``check_start``) ``as_of`` before the
            pilot's start date.
    """
    from metrics import governance
    from metrics.report import PilotReportInputs

    detail = pilot_detail(session, pilot_id=pilot_id, as_of=as_of)
    if detail is None:
        raise PilotNotFound(f"no pilot with id {pilot_id!r}")
    p = detail.pilot
    start = pd.Timestamp(p[C.START_DATE]).date()
    if check_start and as_of < start:
        raise ReportError(
            f"--as-of {as_of.isoformat()} is before the start of {p[C.PILOT]!r} "
            f"({start.isoformat()}): there is no pilot evidence to report yet"
        )
    summary = summary_export_frame(session, as_of=as_of, pilot_id=pilot_id)
    rows = summary[summary["pilot"] == p[C.PILOT]].reset_index(drop=True)
    m = detail.metrics
    chart_cols = [
        C.KEY,
        C.LABEL,
        C.ROLE,
        C.DIRECTION,
        C.UNIT,
        C.BASELINE,
        C.TARGET,
        C.MARGIN,
        C.TREND_SLOPE,
        C.TREND_INTERCEPT,
    ]
    chart = (
        m[chart_cols].reset_index(drop=True) if not m.empty else pd.DataFrame(columns=chart_cols)
    )
    for col in (C.BASELINE, C.TARGET, C.MARGIN, C.TREND_SLOPE, C.TREND_INTERCEPT):
        chart[col] = chart[col].astype("float64")
    keys = dict(zip(m[C.METRIC_ID], m[C.KEY], strict=True)) if not m.empty else {}
    meas = detail.measurements
    weeks = pd.DataFrame(
        {
            C.KEY: meas[C.METRIC_ID].map(keys),
            C.WEEK: pd.to_datetime(meas[C.WEEK]).astype("datetime64[ns]"),
            C.VALUE: meas[C.VALUE].astype("float64"),
        }
    ).reset_index(drop=True)
    latest = governance.latest_decisions_frame(session, judged_by=as_of)
    latest = latest[latest[C.PILOT_ID] == pilot_id]
    decision = None
    if not latest.empty:
        d = latest.iloc[0]
        decision = {
            "decision": d[governance.DECISION],
            "decided_by": d[governance.DECIDED_BY],
            "decided_at": d[governance.DECIDED_AT].isoformat(timespec="seconds"),
            "as_of": pd.Timestamp(d[governance.AS_OF]).date().isoformat(),
            "rationale": d[governance.RATIONALE],
        }
    pilot = {
        "pilot": p[C.PILOT],
        "vendor": p.get("vendor") or "",
        "stage": p.get("stage") or "",
        "owner": p.get("owner") or "",
        "use_case": p.get("use_case") or "",
        "start_date": start,
        "decision_date": pd.Timestamp(p[C.DECISION_DATE]).date(),
        "recommendation": p.get(C.RECOMMENDATION),
        "reasons": p.get(C.REASONS),
    }
    return PilotReportInputs(
        pilot=pilot,
        rows=rows,
        chart=chart,
        weeks=weeks,
        open_items=governance.open_checklist_items(session, pilot_id=pilot_id).get(pilot_id, []),
        decision=decision,
        as_of=as_of,
    )


def pilot_id_by_name(session: Session, name: str) -> int:
    """The id of the pilot called ``name`` (case and spacing ignored, DESIGN §3).

    Raises:
        ReportError: no such pilot (the message lists a few names).
    """
    pilots = store.pilots_frame(session)
    want = " ".join(str(name).split()).casefold()
    hit = pilots[pilots[C.PILOT].map(lambda n: " ".join(str(n).split()).casefold()) == want]
    if hit.empty:
        known = ", ".join(repr(n) for n in list(pilots[C.PILOT])[:5])
        raise PilotNotFound(
            f"no pilot named {name!r}"
            + (
                f" (pilots: {known}{', ...' if len(pilots) > 5 else ''})"
                if known
                else " (the database has no pilots)"
            )
        )
    return int(hit[C.PILOT_ID].iloc[0])


def portfolio_report_inputs(session: Session, *, as_of: date):
    """The inputs of the portfolio report (:class:`metrics.report.PortfolioReportInputs`):
    one row per pilot (sorted by name) with its recommendation, decision date, latest
    decision judged by ``as_of`` and the count of each metric status in the summary."""
    from metrics import governance
    from metrics.report import PortfolioReportInputs

    ev = evaluate(session, as_of=as_of)
    summary = summary_export_frame(session, as_of=as_of)
    latest = governance.latest_decisions_frame(session, judged_by=as_of).set_index(C.PILOT_ID)
    counts: dict[str, dict[str, int]] = {}
    for name, grp in summary.groupby("pilot", sort=False):
        vc = grp["status"].fillna("n/a").astype(str).value_counts()
        counts[str(name)] = {str(k): int(vc[k]) for k in sorted(vc.index)}
    pl = ev.pilots.sort_values(C.PILOT, kind="stable")
    pid = pl[C.PILOT_ID].astype("int64")
    out = pd.DataFrame(
        {
            "pilot": pl[C.PILOT].astype(str),
            "vendor": pl["vendor"].fillna("").astype(str),
            "stage": pl["stage"].astype(str),
            "recommendation": pl[C.RECOMMENDATION].astype(str),
            "decision_date": [pd.Timestamp(x).date() for x in pl[C.DECISION_DATE]],
            "decision": pid.map(latest[governance.DECISION]) if not latest.empty else None,
            "decided_by": pid.map(latest[governance.DECIDED_BY]) if not latest.empty else None,
            "status_counts": [counts.get(str(n), {}) for n in pl[C.PILOT]],
        }
    ).reset_index(drop=True)
    return PortfolioReportInputs(pilots=out, as_of=as_of)


#: Significant digits kept for numbers in the vendors export (as the summary's).
VENDORS_SIGNIFICANT = SUMMARY_SIGNIFICANT


def vendors_frame(
    session: Session, *, as_of: date, evaluation: Evaluation | None = None
) -> pd.DataFrame:
    """One row per vendor across its pilots as of ``as_of``
    (:func:`metrics.vendors.vendor_summary`; columns ``metrics.vendors.VENDOR_COLUMNS``).

    Numbers stay float64 (NaN = undefined), rounded to ``VENDORS_SIGNIFICANT``
    significant digits like the summary export; counts are int64. ``evaluation``: the
    whole portfolio's :func:`evaluate` as of ``as_of`` when the caller has it already.
    """
    from metrics.vendors import vendor_summary

    ev = evaluation if evaluation is not None else evaluate(session, as_of=as_of)
    out = vendor_summary(ev.pilots, ev.metrics)
    for col in out.select_dtypes("float").columns:
        out[col] = [
            float(f"{v:.{VENDORS_SIGNIFICANT}g}") if pd.notna(v) else np.nan for v in out[col]
        ]
    return out


def _judge(session: Session, pilot_id: int, as_of: date) -> tuple[str, pd.DataFrame]:
    """The pilot's recommendation as of ``as_of`` and its rows of the summary export
    (whose decision columns show every decision recorded so far): what a person
    deciding sees, stored with the decision (:data:`metrics.governance.Judge`)."""
    ev = evaluate(session, as_of=as_of, pilot_id=pilot_id)
    rec = str(ev.pilots.iloc[0][C.RECOMMENDATION])
    summary = summary_export_frame(
        session, as_of=as_of, decisions_judged_by=LATEST_DATE, evaluation=ev, pilot_id=pilot_id
    )
    return rec, summary.reset_index(drop=True)


def record_decision(
    *,
    session: Session,
    actor: str,
    pilot_id: int,
    decision: str,
    rationale: str = "",
    as_of: date,
    report_hash: str | None = None,
) -> governance.RecordedDecision:
    """Record a person's signed go / extend / no_go decision on a pilot, judged on the
    evidence as of ``as_of`` against today's date (:func:`today`).

    The rules and errors are :func:`metrics.governance.record_decision`'s (a decision
    that differs from the recommendation, or is judged as of another day than today,
    needs a rationale; ``snapshot`` keeps the pilot's summary rows). ``report_hash`` is
    the :func:`report_hash` of the decision report the person saw (the Export page
    sends it): a different hash now means the evidence changed meanwhile, and the
    decision is refused; the decision stores the hash of the report as of ``as_of``.
    Raises PermissionDenied (not an admin) or StoreError; nothing is written then.
    """
    return governance.record_decision(
        session=session,
        actor=actor,
        pilot_id=pilot_id,
        decision=decision,
        rationale=rationale,
        as_of=as_of,
        judge=_judge,
        today=today(),
        report_hash=report_hash,
        hash_report=report_hash_of,
    )


def report_hash_of(session: Session, pilot_id: int, as_of: date) -> str:
    """SHA-256 (hex) of the inputs of pilot ``pilot_id``'s decision report as of
    ``as_of`` (:func:`metrics.report.inputs_hash` of :func:`report_inputs`): the hash a
    recorded decision stores and the report's footer prints."""
    from metrics.report import inputs_hash

    return inputs_hash(report_inputs(session, pilot_id=pilot_id, as_of=as_of, check_start=False))
