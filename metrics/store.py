"""The store: the only module that writes, and the set-based reads behind every page.

Writes are keyword-only functions taking the session and the acting user's name; each
validates its input, writes the audit records, and leaves the commit to the caller's
single session (``metrics.db.session_scope``), so one action is one transaction.
Reads return pandas DataFrames built from one query each (never one ORM object per
measurement). Bulk writes use executemany-style ``insert``/``update`` statements.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import Enum
from typing import Final

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlmodel import Session, select

from metrics import computations as C
from metrics.access import record_audit, require_role
from metrics.errors import PermissionDenied, StoreError, validation_message
from metrics.models import (
    CONTROL_CHARS_RE,
    EARLIEST_DATE,
    LATEST_DATE,
    MAX_ABS_VALUE,
    AuditEvent,
    Measurement,
    MeasurementRevision,
    Metric,
    MetricCreate,
    Pilot,
    PilotCreate,
    RevisionAction,
    Role,
    StageEvent,
    utcnow,
)

# =========================================================================== reads

PILOT_COLUMNS = [
    C.PILOT_ID,
    C.PILOT,
    "vendor",
    "use_case",
    "owner",
    "stage",
    C.START_DATE,
    C.DECISION_DATE,
    "cost",
    C.WINDOW,
    C.MIN_WEEKS,
    "updated_at",
]


def _frame(session: Session, stmt, columns: list[str]) -> pd.DataFrame:
    """Run ``stmt`` and build the frame column by column (much faster than row tuples)."""
    # Core execution on the session's connection: same transaction, no ORM row overhead.
    rows = session.connection().execute(stmt).all()
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
    return pd.DataFrame(dict(zip(columns, (list(c) for c in zip(*rows, strict=True)), strict=True)))


def pilots_frame(session: Session) -> pd.DataFrame:
    """Every pilot, one row each, sorted by name.

    Returns:
        Columns pilot_id int64, pilot object, vendor, use_case, owner, stage (object),
        start_date, decision_date (datetime64[ns]), cost float64 (NaN = not set),
        trailing_window int64, min_weeks int64, updated_at (datetime64[ns, UTC]).
    """
    stmt = sa.select(
        Pilot.id,
        Pilot.name,
        Pilot.vendor,
        Pilot.use_case,
        Pilot.owner,
        Pilot.stage,
        Pilot.start_date,
        Pilot.decision_date,
        Pilot.cost,
        Pilot.trailing_window,
        Pilot.min_weeks,
        Pilot.updated_at,
    ).order_by(Pilot.name)
    df = _frame(session, stmt, PILOT_COLUMNS)
    for col in (C.START_DATE, C.DECISION_DATE):
        df[col] = pd.to_datetime(df[col])
    df["cost"] = df["cost"].astype("float64")
    df["updated_at"] = pd.to_datetime(df["updated_at"], utc=True)
    return df


METRIC_COLUMNS = [
    C.METRIC_ID,
    C.PILOT_ID,
    C.PILOT,
    C.KEY,
    C.LABEL,
    C.UNIT,
    C.DIRECTION,
    C.ROLE,
    C.BASELINE,
    C.TARGET,
    C.MARGIN,
    "min_value",
    "max_value",
    "vendor",
    "stage",
    C.START_DATE,
    C.DECISION_DATE,
    C.WINDOW,
    C.MIN_WEEKS,
    C.VALUE_PER_UNIT,
]


def metrics_frame(session: Session, *, pilot_id: int | None = None) -> pd.DataFrame:
    """Metrics with their pilot's fields joined: the ``metrics`` input of
    :mod:`metrics.computations`.

    Returns:
        Columns metric_id, pilot_id (int64), pilot, key, label, unit, direction, role
        (object), baseline, target, margin, min_value, max_value (float64, NaN = not
        set), vendor, stage (object), start_date, decision_date (datetime64[ns]),
        trailing_window, min_weeks (int64), value_per_unit (float64, NaN = no value
        model). Sorted by pilot name, then metric key.
    """
    stmt = (
        sa.select(
            Metric.id,
            Metric.pilot_id,
            Pilot.name,
            Metric.key,
            Metric.label,
            Metric.unit,
            Metric.direction,
            Metric.role,
            Metric.baseline,
            Metric.target,
            Metric.margin,
            Metric.min_value,
            Metric.max_value,
            Pilot.vendor,
            Pilot.stage,
            Pilot.start_date,
            Pilot.decision_date,
            Pilot.trailing_window,
            Pilot.min_weeks,
            Metric.value_per_unit,
        )
        .join(Pilot, Pilot.id == Metric.pilot_id)
        .order_by(Pilot.name, Metric.key)
    )
    if pilot_id is not None:
        stmt = stmt.where(Metric.pilot_id == pilot_id)
    df = _frame(session, stmt, METRIC_COLUMNS)
    for col in (C.BASELINE, C.TARGET, C.MARGIN, "min_value", "max_value", C.VALUE_PER_UNIT):
        df[col] = df[col].astype("float64")
    for col in (C.START_DATE, C.DECISION_DATE):
        df[col] = pd.to_datetime(df[col])
    return df


MEASUREMENT_COLUMNS = [
    "measurement_id",
    C.METRIC_ID,
    C.WEEK,
    C.VALUE,
    "note",
    "entered_by",
    "entered_at",
    "version",
]


def measurements_frame(
    session: Session, *, pilot_id: int | None = None, as_of: date | None = None
) -> pd.DataFrame:
    """Weekly measurements, one row per metric and ISO week.

    Args:
        pilot_id: only this pilot's measurements.
        as_of: only weeks whose Monday is on or before this date.

    Returns:
        Columns measurement_id, metric_id (int64), week (datetime64[ns], Monday),
        value (float64), note, entered_by (object), entered_at (datetime64[ns, UTC]),
        version (int64); sorted by metric_id, week.
    """
    stmt = sa.select(
        Measurement.id,
        Measurement.metric_id,
        Measurement.week,
        Measurement.value,
        Measurement.note,
        Measurement.entered_by,
        Measurement.entered_at,
        Measurement.version,
    ).order_by(Measurement.metric_id, Measurement.week)
    if pilot_id is not None:
        stmt = stmt.join(Metric, Metric.id == Measurement.metric_id).where(
            Metric.pilot_id == pilot_id
        )
    if as_of is not None:
        stmt = stmt.where(Measurement.week <= as_of)
    df = _frame(session, stmt, MEASUREMENT_COLUMNS)
    df[C.WEEK] = pd.to_datetime(df[C.WEEK])
    df[C.VALUE] = df[C.VALUE].astype("float64")
    df["entered_at"] = pd.to_datetime(df["entered_at"], utc=True)
    return df


def weekly_values_frame(
    session: Session, *, pilot_id: int | None = None, as_of: date | None = None
) -> pd.DataFrame:
    """The lean ``measurements`` input of :mod:`metrics.computations`.

    Returns:
        Columns metric_id (int64), week (datetime64[ns], Monday), value (float64);
        sorted by metric_id, week; only weeks whose Monday is on or before ``as_of``.
    """
    stmt = sa.select(Measurement.metric_id, Measurement.week, Measurement.value).order_by(
        Measurement.metric_id, Measurement.week
    )
    if pilot_id is not None:
        stmt = stmt.join(Metric, Metric.id == Measurement.metric_id).where(
            Metric.pilot_id == pilot_id
        )
    if as_of is not None:
        stmt = stmt.where(Measurement.week <= as_of)
    df = _frame(session, stmt, [C.METRIC_ID, C.WEEK, C.VALUE])
    df[C.METRIC_ID] = df[C.METRIC_ID].astype("int64")
    df[C.WEEK] = pd.to_datetime(df[C.WEEK]).astype("datetime64[ns]")
    df[C.VALUE] = df[C.VALUE].astype("float64")
    return df


def data_version(session: Session) -> tuple:
    """A cheap stamp that changes whenever any pilot, metric, measurement, or anything
    audited (users, checklist items, decisions) changes.

    Pages use it as part of their cache key, so a write in one browser session (or
    one process) is seen by every other on its next run.
    """
    row = session.execute(
        sa.select(
            sa.select(sa.func.max(MeasurementRevision.id)).scalar_subquery(),
            sa.select(sa.func.max(Pilot.updated_at)).scalar_subquery(),
            sa.select(sa.func.count(Pilot.id)).scalar_subquery(),
            sa.select(sa.func.max(Metric.id)).scalar_subquery(),
            sa.select(sa.func.max(AuditEvent.id)).scalar_subquery(),
        )
    ).one()
    return tuple(str(x) for x in row)


# =========================================================================== pilots


@dataclass(frozen=True)
class SaveResult:
    """Outcome of :func:`save_pilot`."""

    pilot_id: int
    created: bool
    metrics_created: int
    metrics_updated: int


def save_pilot(
    *,
    session: Session,
    actor: str,
    pilot_in: PilotCreate,
    metrics_in: list[MetricCreate],
) -> SaveResult:
    """Create the pilot named ``pilot_in.name`` or update it, with its metrics.

    Metrics are matched by key: new keys are created, existing ones updated; metrics
    not listed are kept. A stage change records a :class:`StageEvent`.

    Every created or changed pilot and metric is recorded in the audit log
    (:class:`metrics.models.AuditEvent`, fields before and after).

    A new pilot gets the default readiness checklist
    (:func:`metrics.governance.ensure_default_checklist`). A stage change must pass its
    stage gate (:func:`metrics.governance.stage_gate`); a new pilot starts in
    discovery or pilot.

    Raises:
        PermissionDenied: the actor is not an admin.
        StoreError: two metrics share a key, a metric's explicit baseline/target
            conflicts with the stored data, or the stage change skips its gate (the
            message says what to record first). Nothing is written.
    """
    require_role(session=session, actor=actor, needed=Role.admin, action="saving a pilot")
    keys = [m.key for m in metrics_in]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise StoreError(f"pilot {pilot_in.name!r}: metric key(s) listed twice: {dupes}")
    now = utcnow()
    pilot = session.exec(select(Pilot).where(Pilot.name == pilot_in.name)).first()
    created = pilot is None
    fields = pilot_in.model_dump()
    fields["stage"] = pilot_in.stage.value
    from metrics import governance  # imports this module: import when used

    if created or pilot.stage != fields["stage"]:
        # Stage gate before anything is written (metrics.governance.stage_gate).
        governance.check_stage_move(
            session=session,
            name=pilot_in.name,
            pilot_id=None if created else pilot.id,
            from_stage=None if created else pilot.stage,
            to_stage=fields["stage"],
        )
    if created:
        pilot = Pilot(**fields, created_at=now, updated_at=now)
        session.add(pilot)
        session.flush()
        session.add(StageEvent(pilot_id=pilot.id, to_stage=pilot.stage, by=actor, at=now))
        governance.ensure_default_checklist(session=session, actor=actor, pilot_id=pilot.id)
        record_audit(
            session=session,
            actor=actor,
            entity="pilot",
            entity_id=pilot.id,
            action="create",
            detail={"after": fields},
        )
    else:
        old_stage = pilot.stage
        before = {k: getattr(pilot, k) for k in fields}
        for k, v in fields.items():
            setattr(pilot, k, v)
        pilot.updated_at = now
        if before != fields:
            record_audit(
                session=session,
                actor=actor,
                entity="pilot",
                entity_id=pilot.id,
                action="update",
                detail={
                    "before": {k: v for k, v in before.items() if v != fields[k]},
                    "after": {k: v for k, v in fields.items() if v != before[k]},
                },
            )
        if old_stage != pilot.stage:
            session.add(
                StageEvent(
                    pilot_id=pilot.id, from_stage=old_stage, to_stage=pilot.stage, by=actor, at=now
                )
            )
    existing = {
        m.key: m for m in session.exec(select(Metric).where(Metric.pilot_id == pilot.id)).all()
    }
    n_new = n_upd = 0
    for m_in in metrics_in:
        values = m_in.model_dump()
        values["direction"] = m_in.direction.value
        values["role"] = m_in.role.value
        metric = existing.get(m_in.key)
        if metric is None:
            metric = Metric(pilot_id=pilot.id, **values)
            session.add(metric)
            session.flush()
            record_audit(
                session=session,
                actor=actor,
                entity="metric",
                entity_id=metric.id,
                action="create",
                detail={"pilot": pilot.name, "after": values},
            )
            n_new += 1
        else:
            before = {k: getattr(metric, k) for k in values}
            changed = before != values
            _check_stored_values_in_range(
                session, metric.id, f"{pilot_in.name} {m_in.key}", m_in.min_value, m_in.max_value
            )
            for k, v in values.items():
                setattr(metric, k, v)
            if changed:
                record_audit(
                    session=session,
                    actor=actor,
                    entity="metric",
                    entity_id=metric.id,
                    action="update",
                    detail={
                        "pilot": pilot.name,
                        "before": {k: v for k, v in before.items() if v != values[k]},
                        "after": {k: v for k, v in values.items() if v != before[k]},
                    },
                )
            n_upd += int(changed)
    session.flush()
    return SaveResult(pilot.id, created, n_new, n_upd)


def _check_stored_values_in_range(
    session: Session, metric_id: int, what: str, lo: float | None, hi: float | None
) -> None:
    """Refuse a metric's allowed range (min..max) that stored values fall outside:
    those values would stay in every number while no longer being valid, and the
    measurements export would stop being re-importable.

    Raises:
        StoreError: naming up to 5 offending weeks and values.
    """
    if lo is None and hi is None:
        return
    outside = sa.false()
    if lo is not None:
        outside = sa.or_(outside, Measurement.value < lo)
    if hi is not None:
        outside = sa.or_(outside, Measurement.value > hi)
    rows = session.execute(
        sa.select(Measurement.week, Measurement.value)
        .where(Measurement.metric_id == metric_id, outside)
        .order_by(Measurement.week)
    ).all()
    if not rows:
        return
    shown = ", ".join(f"{C.iso_label(w)} = {v:g}" for w, v in rows[:5])
    more = f" and {len(rows) - 5} more" if len(rows) > 5 else ""
    bounds = f"{'-inf' if lo is None else f'{lo:g}'}..{'inf' if hi is None else f'{hi:g}'}"
    raise StoreError(
        f"{what}: allowed range {bounds} would leave {len(rows)} stored value(s) outside it "
        f"({shown}{more}); correct those values first or choose a wider range"
    )


def set_stage(*, session: Session, actor: str, pilot_id: int, stage: str, note: str = "") -> None:
    """Move a pilot to ``stage``, recording a :class:`StageEvent` and an audit record.

    Moves follow :data:`metrics.governance.NEXT_STAGES` and their stage gates
    (:func:`metrics.governance.stage_gate`): ``production`` needs a recorded go (the
    latest decision) and no open checklist item; ``stopped`` needs a recorded no_go.

    Raises:
        PermissionDenied: the actor is not an admin.
        StoreError: unknown pilot or stage, or the move skips its gate (the message
            says what to record first). Nothing is written.
    """
    from metrics import governance
    from metrics.models import Stage

    require_role(session=session, actor=actor, needed=Role.admin, action="changing a stage")
    try:
        new = Stage(stage).value
    except ValueError:
        raise StoreError(
            f"unknown stage {stage!r}; use one of {', '.join(s.value for s in Stage)}"
        ) from None
    pilot = session.get(Pilot, pilot_id)
    if pilot is None:
        raise StoreError(f"no pilot with id {pilot_id}")
    if pilot.stage == new:
        return
    governance.check_stage_move(
        session=session, name=pilot.name, pilot_id=pilot.id, from_stage=pilot.stage, to_stage=new
    )
    now = utcnow()
    session.add(
        StageEvent(
            pilot_id=pilot_id, from_stage=pilot.stage, to_stage=new, by=actor, at=now, note=note
        )
    )
    record_audit(
        session=session,
        actor=actor,
        entity="pilot",
        entity_id=pilot.id,
        action="set_stage",
        detail={"before": {"stage": pilot.stage}, "after": {"stage": new}, "note": note},
    )
    pilot.stage = new
    pilot.updated_at = now
    session.flush()


# =========================================================================== measurements

WRITE_COLUMNS = [C.METRIC_ID, C.WEEK, C.VALUE, "note"]


@dataclass(frozen=True)
class WriteCounts:
    """How many measurements a write created, updated and left unchanged."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0

    @property
    def total(self) -> int:
        """Rows written or checked: created + updated + unchanged."""
        return self.created + self.updated + self.unchanged


def check_measurement_rows(rows: pd.DataFrame, metric_ranges: pd.DataFrame) -> list[str]:
    """Problems with rows about to be written (the store's last line of defence).

    Args:
        rows: columns metric_id (int), week (date or datetime64, Monday), value
            (float), note (str).
        metric_ranges: columns metric_id, min_value, max_value, label (float NaN = open).

    Returns:
        One message per problem (empty when all rows are fine): a value that is
        missing or not finite, outside the metric's allowed range, a week that is
        not a Monday, an unknown metric, or a metric/week listed twice. Vectorised:
        only rows with a problem are visited one by one to word the message.
    """
    if rows.empty:
        return []
    ranges = metric_ranges.drop_duplicates(C.METRIC_ID).set_index(C.METRIC_ID)
    mid = rows[C.METRIC_ID]
    known = mid.isin(ranges.index).to_numpy()
    # Out-of-bounds dates (e.g. year 1) become NaT here and are reported, not raised.
    weeks = pd.to_datetime(rows[C.WEEK], errors="coerce")
    in_range = (weeks >= pd.Timestamp(EARLIEST_DATE)) & (weeks <= pd.Timestamp(LATEST_DATE))
    dup = rows.assign(_w=weeks).duplicated([C.METRIC_ID, "_w"], keep=False).to_numpy()
    dup = dup & weeks.notna().to_numpy()
    bad_week = (~in_range | (weeks.dt.day_of_week != 0)).to_numpy()
    raw = rows[C.VALUE]
    if pd.api.types.is_float_dtype(raw) or pd.api.types.is_integer_dtype(raw):
        values = raw.astype("float64").to_numpy()
        finite = np.isfinite(values)
    else:
        finite = np.array(
            [v is not None and isinstance(v, (int, float)) and math.isfinite(v) for v in raw],
            dtype=bool,
        )
        values = np.where(finite, pd.to_numeric(raw, errors="coerce"), np.nan)
    lo = mid.map(ranges["min_value"]).astype("float64").to_numpy()
    hi = mid.map(ranges["max_value"]).astype("float64").to_numpy()
    with np.errstate(invalid="ignore"):
        too_large = finite & (np.abs(values) > MAX_ABS_VALUE)
        below = finite & (values < lo)
        above = finite & (values > hi)
    notes = rows["note"] if "note" in rows else pd.Series("", index=rows.index)
    bad_note = notes.fillna("").astype(str).str.contains(CONTROL_CHARS_RE).to_numpy(dtype=bool)
    flagged = ~known | (known & (bad_week | ~finite | too_large | below | above | dup | bad_note))
    problems: list[str] = []
    if not flagged.any():
        return problems
    labels = mid.map(ranges[C.LABEL]).to_numpy()
    mids = mid.to_numpy()
    for i in np.flatnonzero(flagged):
        where = f"row {i + 1}"
        if not known[i]:
            problems.append(f"{where}: unknown metric id {mids[i]}")
            continue
        label, wk, val = labels[i], weeks.iloc[i], raw.iloc[i]
        if isinstance(val, np.generic):
            val = val.item()
        if bad_week[i]:
            text = rows[C.WEEK].iloc[i] if pd.isna(wk) else wk.date()
            problems.append(
                f"{where}: week {text} is not the Monday of an ISO week in "
                f"{EARLIEST_DATE.year}..{LATEST_DATE.year}"
            )
        if bad_note[i]:
            problems.append(f"{where}: note contains control characters (e.g. NUL)")
        if not finite[i]:
            problems.append(f"{where}: {label}: value {val!r} is not a finite number")
            continue
        if too_large[i]:
            problems.append(f"{where}: {label}: value {val:g} is too large")
            continue
        if below[i]:
            problems.append(f"{where}: {label}: value {val:g} is below the minimum {lo[i]:g}")
        if above[i]:
            problems.append(f"{where}: {label}: value {val:g} is above the maximum {hi[i]:g}")
        if dup[i]:
            problems.append(f"{where}: {label}: week {wk.date()} is listed more than once")
    return problems


def write_measurements(
    *, session: Session, actor: str, rows: pd.DataFrame, reason: str = ""
) -> WriteCounts:
    """Create or update many weekly values in one transaction, with revisions.

    Existing values for the same (metric, week) are updated only when value or note
    differ (version + 1); identical ones count as unchanged. Every create and update
    writes a :class:`MeasurementRevision`. Statements are executemany-style bulk
    inserts/updates: one round trip per kind, not one per row.

    Args:
        rows: columns metric_id (int), week (date/datetime64 Monday), value (float),
            note (str, optional).
        reason: stored on every revision (e.g. "import helpdesk.csv").

    Raises:
        PermissionDenied: the actor is not an editor or admin.
        StoreError: any row fails :func:`check_measurement_rows`, or another writer
            changed one of the existing values meanwhile (optimistic concurrency on
            ``version``); the caller must roll back, nothing is committed.
    """
    require_role(session=session, actor=actor, needed=Role.editor, action="writing measurements")
    if rows.empty:
        return WriteCounts()
    rows = rows.copy()
    if "note" not in rows:
        rows["note"] = ""
    rows["note"] = rows["note"].fillna("").astype(str)
    metric_ids = sorted({int(x) for x in rows[C.METRIC_ID]})
    ranges = pd.DataFrame(
        session.execute(
            sa.select(Metric.id, Metric.label, Metric.min_value, Metric.max_value).where(
                Metric.id.in_(metric_ids)
            )
        ).all(),
        columns=[C.METRIC_ID, C.LABEL, "min_value", "max_value"],
    )
    problems = check_measurement_rows(rows, ranges)
    if problems:
        shown = problems[:20]
        more = f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""
        raise StoreError("; ".join(shown) + more)

    rows[C.WEEK] = pd.to_datetime(rows[C.WEEK])
    weeks = rows[C.WEEK].dt.date
    existing = pd.DataFrame(
        session.execute(
            sa.select(
                Measurement.id,
                Measurement.metric_id,
                Measurement.week,
                Measurement.value,
                Measurement.note,
                Measurement.version,
            ).where(
                Measurement.metric_id.in_(metric_ids),
                Measurement.week >= weeks.min(),
                Measurement.week <= weeks.max(),
            )
        ).all(),
        columns=["id", C.METRIC_ID, C.WEEK, "old_value", "old_note", "version"],
    )
    incoming = pd.DataFrame(
        {
            C.METRIC_ID: rows[C.METRIC_ID].astype("int64").to_numpy(),
            C.WEEK: weeks.to_numpy(),
            C.VALUE: rows[C.VALUE].astype("float64").to_numpy(),
            "note": rows["note"].to_numpy(),
        }
    )
    merged = incoming.merge(existing, on=[C.METRIC_ID, C.WEEK], how="left")
    is_new = merged["id"].isna()
    same = (
        (~is_new)
        & (merged["old_value"] == merged[C.VALUE])
        & (merged["old_note"] == merged["note"])
    )
    to_update = merged[~is_new & ~same]
    to_create = merged[is_new]
    now = utcnow()

    if not to_create.empty:
        # A week whose value was deleted continues its version count (version = number
        # of revisions), so a form built from the old value never matches the new row.
        prior = _revision_counts(session, to_create)
        session.execute(
            sa.insert(Measurement.__table__),
            [
                {
                    "metric_id": int(r.metric_id),
                    "week": r.week,
                    "value": float(r.value),
                    "note": r.note,
                    "entered_by": actor,
                    "entered_at": now,
                    "version": prior.get((int(r.metric_id), r.week), 0) + 1,
                }
                for r in to_create.itertuples(index=False)
            ],
        )
    if not to_update.empty:
        # Optimistic concurrency: each row is updated only if it still has the version
        # read above. A concurrent writer that got there first leaves rowcount short,
        # and the whole write is refused (the caller rolls back): no lost update, no
        # broken revision chain.
        t = Measurement.__table__
        stmt = (
            sa.update(t)
            .where(t.c.id == sa.bindparam("b_id"), t.c.version == sa.bindparam("b_version"))
            .values(
                value=sa.bindparam("b_value"),
                note=sa.bindparam("b_note"),
                entered_by=sa.bindparam("b_by"),
                entered_at=sa.bindparam("b_at"),
                version=sa.bindparam("b_new_version"),
            )
        )
        result = session.connection().execute(
            stmt,
            [
                {
                    "b_id": int(r.id),
                    "b_version": int(r.version),
                    "b_value": float(r.value),
                    "b_note": r.note,
                    "b_by": actor,
                    "b_at": now,
                    "b_new_version": int(r.version) + 1,
                }
                for r in to_update.itertuples(index=False)
            ],
        )
        if result.rowcount != len(to_update):
            changed = len(to_update) - max(result.rowcount, 0)
            raise StoreError(
                f"{changed} value(s) were changed by someone else while this write was "
                "prepared; nothing written. Reload and try again."
            )
    revisions = [
        {
            "metric_id": int(r.metric_id),
            "week": r.week,
            "action": RevisionAction.create.value,
            "old_value": None,
            "new_value": float(r.value),
            "old_note": None,
            "new_note": r.note,
            "actor": actor,
            "at": now,
            "reason": reason,
        }
        for r in to_create.itertuples(index=False)
    ] + [
        {
            "metric_id": int(r.metric_id),
            "week": r.week,
            "action": RevisionAction.update.value,
            "old_value": float(r.old_value),
            "new_value": float(r.value),
            "old_note": r.old_note,
            "new_note": r.note,
            "actor": actor,
            "at": now,
            "reason": reason,
        }
        for r in to_update.itertuples(index=False)
    ]
    if revisions:
        session.execute(sa.insert(MeasurementRevision.__table__), revisions)
        touched = sorted({int(x) for x in merged.loc[~same, C.METRIC_ID]})
        session.execute(
            sa.update(Pilot)
            .where(Pilot.id.in_(sa.select(Metric.pilot_id).where(Metric.id.in_(touched))))
            .values(updated_at=now)
        )
    session.flush()
    return WriteCounts(len(to_create), len(to_update), int(same.sum()))


def _revision_counts(session: Session, rows: pd.DataFrame) -> dict[tuple[int, date], int]:
    """How many revisions each (metric_id, week) of ``rows`` already has (one query)."""
    R = MeasurementRevision
    found = session.execute(
        sa.select(R.metric_id, R.week, sa.func.count())
        .where(
            R.metric_id.in_(sorted({int(x) for x in rows[C.METRIC_ID]})),
            R.week >= min(rows[C.WEEK]),
            R.week <= max(rows[C.WEEK]),
        )
        .group_by(R.metric_id, R.week)
    ).all()
    return {(int(mid), wk): int(n) for mid, wk, n in found}


class _Unchecked(Enum):
    """Type of :data:`UNCHECKED`."""

    token = "unchecked"


#: Default ``expected_version`` of :func:`record_measurement` and
#: :func:`delete_measurement`: no form to compare with (imports, the CLI, scripts); the
#: value read just before the write is the expected one, so a concurrent change between
#: that read and the write is still refused.
UNCHECKED: Final = _Unchecked.token

#: Longest reason a revision keeps (``MeasurementRevision.reason``).
MAX_REASON_CHARS = 1000


@dataclass(frozen=True)
class _MetricInfo:
    label: str
    unit: str
    pilot_id: int
    min_value: float | None
    max_value: float | None


@dataclass(frozen=True)
class _Stored:
    id: int
    value: float
    note: str
    version: int
    entered_by: str
    entered_at: datetime


def _metric_info(session: Session, metric_id: int) -> _MetricInfo:
    row = session.execute(
        sa.select(
            Metric.label, Metric.unit, Metric.pilot_id, Metric.min_value, Metric.max_value
        ).where(Metric.id == metric_id)
    ).first()
    if row is None:
        raise StoreError(f"unknown metric id {metric_id}: reload the page and pick a metric")
    return _MetricInfo(row[0] or "", row[1] or "", int(row[2]), row[3], row[4])


def _stored(session: Session, metric_id: int, week: date) -> _Stored | None:
    """The stored value of (metric, week), read fresh; None when there is none."""
    M = Measurement
    row = (
        session.connection()
        .execute(
            sa.select(M.id, M.value, M.note, M.version, M.entered_by, M.entered_at).where(
                M.metric_id == metric_id, M.week == week
            )
        )
        .first()
    )
    if row is None:
        return None
    return _Stored(int(row[0]), float(row[1]), row[2] or "", int(row[3]), row[4] or "", row[5])


def _last_revision(session: Session, metric_id: int, week: date):
    """The newest revision row of (metric, week) and how many there are, or (None, 0)."""
    R = MeasurementRevision
    where = (R.metric_id == metric_id, R.week == week)
    last = (
        session.connection()
        .execute(
            sa.select(R.action, R.old_value, R.old_note, R.new_value, R.actor, R.at)
            .where(*where)
            .order_by(R.id.desc())
            .limit(1)
        )
        .first()
    )
    n = session.connection().execute(sa.select(sa.func.count()).where(*where)).scalar_one()
    return last, int(n)


def _as_week(week) -> date:
    return pd.Timestamp(week).date()


def _num(x: float) -> str:
    """A stored value exactly as typed: ``61.2``, ``60.0`` (Python's shortest repr)."""
    return repr(float(x))


def _with_unit(x: float, unit: str) -> str:
    if not unit:
        return _num(x)
    return f"{_num(x)}{unit}" if unit == "%" else f"{_num(x)} {unit}"


def _when(at: datetime | None) -> str:
    """``10:04 UTC`` for today, ``2026-03-02 10:04 UTC`` for another day."""
    if at is None:
        return "an unknown time"
    at = at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)
    if at.date() == utcnow().date():
        return f"{at:%H:%M} UTC"
    return f"{at:%Y-%m-%d %H:%M} UTC"


def check_reason(reason: str | None) -> str:
    """A revision's reason, trimmed.

    Raises:
        StoreError: longer than :data:`MAX_REASON_CHARS` or holding control characters.
    """
    text = (reason or "").strip()
    if len(text) > MAX_REASON_CHARS:
        raise StoreError(
            f"the reason is {len(text)} characters long; shorten it to at most {MAX_REASON_CHARS}"
        )
    if CONTROL_CHARS_RE.search(text):
        raise StoreError("the reason contains control characters (e.g. NUL); remove them")
    return text


def conflict_message(
    session: Session, *, metric_id: int, week: date, yours: str, stored: _Stored | None = None
) -> str:
    """The refusal shown when someone else changed a value while a form was open, e.g.
    "Resolution time 2012-W03 was changed by alice to 61.2 h at 10:04 UTC while you were
    editing; your value 60.0 was not saved. Reload to see it."

    Args:
        yours: what was not saved, e.g. "value 60.0" or "deletion".
        stored: the value stored now (read fresh when omitted).
    """
    info = _metric_info(session, metric_id)
    week = _as_week(week)
    what = f"{info.label} {C.iso_label(week)}"
    if stored is None:
        stored = _stored(session, metric_id, week)
    if stored is not None:
        change = (
            f"was changed by {stored.entered_by or 'someone'} to "
            f"{_with_unit(stored.value, info.unit)} at {_when(stored.entered_at)}"
        )
    else:
        last, _n = _last_revision(session, metric_id, week)
        who = (last.actor if last is not None else "") or "someone"
        change = f"was deleted by {who} at {_when(last.at if last is not None else None)}"
    return f"{what} {change} while you were editing; your {yours} was not saved. Reload to see it."


def _touch_pilot(session: Session, pilot_id: int, now: datetime) -> None:
    session.execute(sa.update(Pilot).where(Pilot.id == pilot_id).values(updated_at=now))


def _insert_once(session: Session, values: dict) -> int:
    """INSERT one measurement unless (metric, week) exists (then nothing): rowcount 1/0.

    ``ON CONFLICT DO NOTHING`` on SQLite and PostgreSQL, so a concurrent insert of the
    same week ends in a readable refusal instead of an aborted transaction.
    """
    t = Measurement.__table__
    name = session.get_bind().dialect.name
    if name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    elif name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        stmt = sa.insert(t).values(**values).execution_options(preserve_rowcount=True)
        return session.connection().execute(stmt).rowcount
    stmt = (
        dialect_insert(t)
        .values(**values)
        .on_conflict_do_nothing(index_elements=[t.c.metric_id, t.c.week])
        # SQLAlchemy keeps an INSERT's rowcount only when asked (PostgreSQL: -1 otherwise)
        .execution_options(preserve_rowcount=True)
    )
    return session.connection().execute(stmt).rowcount


def _revision_count_expr(metric_id: int, week: date):
    """SQL: the number of revisions of (metric, week) + 1 (the version of a new row)."""
    R = MeasurementRevision.__table__
    return (
        sa.select(sa.func.count() + 1)
        .select_from(R)
        .where(R.c.metric_id == metric_id, R.c.week == week)
        .scalar_subquery()
    )


def _check_one_value(metric_id: int, info, week, value, note: str) -> list[str]:
    """:func:`check_measurement_rows` for one value of metric ``metric_id`` (``info``:
    its label, min_value, max_value)."""
    ranges = pd.DataFrame(
        {
            C.METRIC_ID: [metric_id],
            C.LABEL: [info.label],
            "min_value": [info.min_value],
            "max_value": [info.max_value],
        }
    )
    row = pd.DataFrame({C.METRIC_ID: [metric_id], C.WEEK: [week], C.VALUE: [value], "note": [note]})
    return check_measurement_rows(row, ranges)


def record_measurement(
    *,
    session: Session,
    actor: str,
    metric_id: int,
    week: date,
    value: float,
    note: str = "",
    reason: str = "",
    expected_version: int | _Unchecked | None = UNCHECKED,
) -> WriteCounts:
    """Create or correct one weekly value, with its revision, under optimistic concurrency.

    ``version`` counts a week's revisions (1 after the first entry, +1 per correction,
    deletion and restore), so it identifies exactly the value a form showed.

    Args:
        week: the Monday of the ISO week (date, datetime or Timestamp).
        value: finite, inside the metric's allowed range (its unit).
        note: replaces the stored note ("" = no note).
        reason: kept on the revision ("typo in the ticket export"); at most 1000 chars.
        expected_version: the version the user's form was built from; None = the form
            showed no value. :data:`UNCHECKED` (default): the version read just now.

    Returns:
        :class:`WriteCounts` with exactly one of created / updated / unchanged = 1. An
        identical value and note is "unchanged" whatever the version (a double-clicked
        Save writes once, and no second revision).

    Raises:
        PermissionDenied: the actor is not an editor or admin.
        StoreError: unknown metric, value not finite or outside the allowed range, week
            not a Monday, a bad reason; or someone else changed, created or deleted the
            value since ``expected_version`` (the message names who, the value they
            saved and when: see :func:`conflict_message`). Nothing is written.
    """
    require_role(session=session, actor=actor, needed=Role.editor, action="writing measurements")
    note = note or ""
    reason = check_reason(reason)
    info = _metric_info(session, metric_id)
    problems = _check_one_value(metric_id, info, week, value, note)
    if problems:
        raise StoreError("; ".join(problems))
    week = _as_week(week)
    value = float(value)
    yours = f"value {_num(value)}"

    def same(s: _Stored | None) -> bool:
        return s is not None and s.value == value and s.note == note

    cur = _stored(session, metric_id, week)
    if same(cur):
        return WriteCounts(unchanged=1)
    have = None if cur is None else cur.version
    expected = have if expected_version is UNCHECKED else expected_version
    if have != expected:
        raise StoreError(
            conflict_message(session, metric_id=metric_id, week=week, yours=yours, stored=cur)
        )
    now = utcnow()
    if cur is None:
        written = _insert_once(
            session,
            {
                "metric_id": metric_id,
                "week": week,
                "value": value,
                "note": note,
                "entered_by": actor,
                "entered_at": now,
                "version": _revision_count_expr(metric_id, week),
            },
        )
    else:
        t = Measurement.__table__
        written = (
            session.connection()
            .execute(
                sa.update(t)
                .where(t.c.id == cur.id, t.c.version == cur.version)
                .values(
                    value=value,
                    note=note,
                    entered_by=actor,
                    entered_at=now,
                    version=cur.version + 1,
                )
            )
            .rowcount
        )
    if written != 1:
        # Someone else wrote this week between our read and our write.
        now_stored = _stored(session, metric_id, week)
        if same(now_stored):
            return WriteCounts(unchanged=1)
        raise StoreError(
            conflict_message(
                session, metric_id=metric_id, week=week, yours=yours, stored=now_stored
            )
        )
    session.add(
        MeasurementRevision(
            metric_id=metric_id,
            week=week,
            action=(RevisionAction.create if cur is None else RevisionAction.update).value,
            old_value=None if cur is None else cur.value,
            new_value=value,
            old_note=None if cur is None else cur.note,
            new_note=note,
            actor=actor,
            at=now,
            reason=reason,
        )
    )
    _touch_pilot(session, info.pilot_id, now)
    session.flush()
    return WriteCounts(created=1) if cur is None else WriteCounts(updated=1)


def delete_measurement(
    *,
    session: Session,
    actor: str,
    metric_id: int,
    week: date,
    reason: str = "",
    expected_version: int | _Unchecked | None = UNCHECKED,
) -> bool:
    """Delete one weekly value, keeping it in the revision history (action "delete").

    Args:
        reason: kept on the revision; at most 1000 characters.
        expected_version: the version the user's form showed (see
            :func:`record_measurement`); :data:`UNCHECKED` = the version read now.

    Returns:
        True when the value was deleted; False when there was none, or it was already
        deleted from exactly the version the form showed (a double-clicked Delete).

    Raises:
        PermissionDenied: the actor is not an editor or admin.
        StoreError: unknown metric, a bad reason, or someone else changed (or entered)
            the value since ``expected_version``; nothing is written.
    """
    require_role(session=session, actor=actor, needed=Role.editor, action="deleting a measurement")
    reason = check_reason(reason)
    info = _metric_info(session, metric_id)
    week = _as_week(week)

    def already_gone() -> bool:
        if expected_version is UNCHECKED or expected_version is None:
            return True
        last, n = _last_revision(session, metric_id, week)
        # version = number of revisions: the delete that followed the version the form
        # showed is revision expected + 1, and the newest one.
        return (
            last is not None and last.action == RevisionAction.delete and n == expected_version + 1
        )

    cur = _stored(session, metric_id, week)
    if cur is None:
        if already_gone():
            return False
        raise StoreError(
            conflict_message(session, metric_id=metric_id, week=week, yours="deletion")
        )
    expected = cur.version if expected_version is UNCHECKED else expected_version
    if cur.version != expected:
        raise StoreError(
            conflict_message(session, metric_id=metric_id, week=week, yours="deletion", stored=cur)
        )
    t = Measurement.__table__
    deleted = (
        session.connection()
        .execute(sa.delete(t).where(t.c.id == cur.id, t.c.version == cur.version))
        .rowcount
    )
    if deleted != 1:
        now_stored = _stored(session, metric_id, week)
        if now_stored is None and already_gone():
            return False
        raise StoreError(
            conflict_message(
                session, metric_id=metric_id, week=week, yours="deletion", stored=now_stored
            )
        )
    now = utcnow()
    session.add(
        MeasurementRevision(
            metric_id=metric_id,
            week=week,
            action=RevisionAction.delete.value,
            old_value=cur.value,
            new_value=None,
            old_note=cur.note,
            new_note=None,
            actor=actor,
            at=now,
            reason=reason,
        )
    )
    _touch_pilot(session, info.pilot_id, now)
    session.flush()
    return True


def restore_measurement(
    *, session: Session, actor: str, metric_id: int, week: date, reason: str = ""
) -> float:
    """Bring back the last deleted value (and its note) of one week, with a revision of
    action "restore" (old value empty, new value the restored one).

    Returns:
        The restored value (the metric's unit).

    Raises:
        PermissionDenied: the actor is not an editor or admin.
        StoreError: unknown metric; the week has a value now (correct it instead); the
            week never had a value; the deleted value is outside the metric's current
            allowed range; someone entered a value meanwhile; a bad reason. Nothing is
            written.
    """
    require_role(session=session, actor=actor, needed=Role.editor, action="restoring a measurement")
    reason = check_reason(reason)
    info = _metric_info(session, metric_id)
    week = _as_week(week)
    what = f"{info.label} {C.iso_label(week)}"
    cur = _stored(session, metric_id, week)
    if cur is not None:
        raise StoreError(
            f"{what} has a value ({_with_unit(cur.value, info.unit)}, entered by "
            f"{cur.entered_by or 'someone'}): only a deleted value can be restored; "
            "correct it on the Enter page instead"
        )
    last, _n = _last_revision(session, metric_id, week)
    if last is None:
        raise StoreError(f"{what} never had a value: there is nothing to restore")
    if last.action != RevisionAction.delete or last.old_value is None:
        raise StoreError(f"{what} has no deleted value to restore (last change: {last.action})")
    value, note = float(last.old_value), last.old_note or ""
    problems = _check_one_value(metric_id, info, week, value, note)
    if problems:
        raise StoreError(
            f"{what}: the deleted value cannot be restored: "
            + "; ".join(p.removeprefix("row 1: ") for p in problems)
        )
    now = utcnow()
    written = _insert_once(
        session,
        {
            "metric_id": metric_id,
            "week": week,
            "value": value,
            "note": note,
            "entered_by": actor,
            "entered_at": now,
            "version": _revision_count_expr(metric_id, week),
        },
    )
    if written != 1:
        raise StoreError(conflict_message(session, metric_id=metric_id, week=week, yours="restore"))
    session.add(
        MeasurementRevision(
            metric_id=metric_id,
            week=week,
            action=RevisionAction.restore.value,
            old_value=None,
            new_value=value,
            old_note=None,
            new_note=note,
            actor=actor,
            at=now,
            reason=reason,
        )
    )
    _touch_pilot(session, info.pilot_id, now)
    session.flush()
    return value


REVISION_COLUMNS = [
    "revision_id",
    C.METRIC_ID,
    C.WEEK,
    "action",
    "old_value",
    "new_value",
    "old_note",
    "new_note",
    "actor",
    "reason",
    "at",
]


def revisions_frame(
    session: Session, *, metric_id: int | None = None, pilot_id: int | None = None
) -> pd.DataFrame:
    """The audit trail of measurements, oldest first (one query).

    Args:
        metric_id: only this metric's revisions.
        pilot_id: only the revisions of this pilot's metrics.

    Returns:
        Columns revision_id, metric_id (int64), week (datetime64[ns], Monday), action
        (object: create / update / delete / restore), old_value, new_value (float64,
        NaN = none: a create has no old value, a delete no new one), old_note, new_note,
        actor, reason (object), at (datetime64[ns, UTC]); sorted by revision_id.
    """
    R = MeasurementRevision
    stmt = sa.select(
        R.id,
        R.metric_id,
        R.week,
        R.action,
        R.old_value,
        R.new_value,
        R.old_note,
        R.new_note,
        R.actor,
        R.reason,
        R.at,
    ).order_by(R.id)
    if metric_id is not None:
        stmt = stmt.where(R.metric_id == metric_id)
    if pilot_id is not None:
        stmt = stmt.join(Metric, Metric.id == R.metric_id).where(Metric.pilot_id == pilot_id)
    df = _frame(session, stmt, REVISION_COLUMNS)
    if not df.empty:
        df["revision_id"] = df["revision_id"].astype("int64")
        df[C.METRIC_ID] = df[C.METRIC_ID].astype("int64")
    for col in ("action", "old_note", "new_note", "actor", "reason"):
        df[col] = df[col].astype(object).where(df[col].notna(), None)
    df[C.WEEK] = pd.to_datetime(df[C.WEEK])
    for col in ("old_value", "new_value"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    df["at"] = pd.to_datetime(df["at"], utc=True)
    return df


#: Columns of :func:`revisions_export_frame` (``pilotgate export revisions``).
REVISION_EXPORT_COLUMNS = [
    "pilot",
    "metric",
    "week",
    "action",
    "old_value",
    "new_value",
    "old_note",
    "new_note",
    "actor",
    "at",
    "reason",
]


def revisions_export_frame(session: Session) -> pd.DataFrame:
    """The whole audit trail of measurements for ``pilotgate export revisions``.

    One query (revisions joined with their metric and pilot), oldest first. Write it
    with :func:`metrics.csvio.to_csv_text` (UTF-8 BOM, formula-safe text cells).

    Returns:
        Columns pilot (pilot name), metric (metric key), week (``YYYY-Www``), action
        (create / update / delete / restore), old_value, new_value (float64, the
        metric's unit, NaN = none), old_note, new_note (object, None = none), actor,
        at (object, ISO 8601 UTC ``2026-03-02T10:04:05Z``), reason; sorted by revision.
    """
    from metrics.isoweek import week_labels

    R = MeasurementRevision
    stmt = (
        sa.select(
            Pilot.name,
            Metric.key,
            R.week,
            R.action,
            R.old_value,
            R.new_value,
            R.old_note,
            R.new_note,
            R.actor,
            R.at,
            R.reason,
        )
        .join(Metric, Metric.id == R.metric_id)
        .join(Pilot, Pilot.id == Metric.pilot_id)
        .order_by(R.id)
    )
    df = _frame(session, stmt, REVISION_EXPORT_COLUMNS)
    df["week"] = week_labels(pd.to_datetime(df["week"])).astype(object)
    for col in ("old_value", "new_value"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    at = pd.to_datetime(df["at"], utc=True)
    df["at"] = at.dt.strftime("%Y-%m-%dT%H:%M:%SZ").astype(object)
    for col in ("pilot", "metric", "action", "old_note", "new_note", "actor", "reason"):
        df[col] = df[col].astype(object).where(df[col].notna(), None)
    return df[REVISION_EXPORT_COLUMNS]


def stage_events_frame(session: Session, *, pilot_id: int) -> pd.DataFrame:
    """A pilot's stage history, oldest first: columns from_stage, to_stage, at, by, note."""
    S = StageEvent
    stmt = (
        sa.select(S.from_stage, S.to_stage, S.at, S.by, S.note)
        .where(S.pilot_id == pilot_id)
        .order_by(S.id)
    )
    df = _frame(session, stmt, ["from_stage", "to_stage", "at", "by", "note"])
    df["at"] = pd.to_datetime(df["at"], utc=True)
    return df


def summary_inputs(session: Session) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(metrics_frame, measurements) for the whole portfolio: two queries."""
    return metrics_frame(session), measurements_frame(session)


__all__ = [
    "UNCHECKED",
    "PermissionDenied",
    "SaveResult",
    "StoreError",
    "WriteCounts",
    "check_measurement_rows",
    "check_reason",
    "conflict_message",
    "data_version",
    "delete_measurement",
    "measurements_frame",
    "metrics_frame",
    "pilots_frame",
    "record_measurement",
    "restore_measurement",
    "revisions_export_frame",
    "revisions_frame",
    "save_pilot",
    "set_stage",
    "stage_events_frame",
    "summary_inputs",
    "validation_message",
    "weekly_values_frame",
    "write_measurements",
]


def count_measurements(session: Session) -> int:
    """How many weekly values are stored (every pilot, metric and week)."""
    return int(session.execute(sa.select(sa.func.count(Measurement.id))).scalar_one())
