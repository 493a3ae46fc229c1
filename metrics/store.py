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
from datetime import date

import numpy as np
import pandas as pd
import sqlalchemy as sa
from pydantic import ValidationError
from sqlmodel import Session, select

from metrics import computations as C
from metrics.access import record_audit, require_role
from metrics.errors import PermissionDenied, StoreError
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


def validation_message(exc: ValidationError) -> str:
    """One readable line from a pydantic ``ValidationError``: ``field: reason; ...``."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err.get("loc", ()) if x != "__root__")
        msg = err.get("msg", "invalid").removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


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
]


def metrics_frame(session: Session, *, pilot_id: int | None = None) -> pd.DataFrame:
    """Metrics with their pilot's fields joined: the ``metrics`` input of
    :mod:`metrics.computations`.

    Returns:
        Columns metric_id, pilot_id (int64), pilot, key, label, unit, direction, role
        (object), baseline, target, margin, min_value, max_value (float64, NaN = not
        set), vendor, stage (object), start_date, decision_date (datetime64[ns]),
        trailing_window, min_weeks (int64). Sorted by pilot name, then metric key.
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
        )
        .join(Pilot, Pilot.id == Metric.pilot_id)
        .order_by(Pilot.name, Metric.key)
    )
    if pilot_id is not None:
        stmt = stmt.where(Metric.pilot_id == pilot_id)
    df = _frame(session, stmt, METRIC_COLUMNS)
    for col in (C.BASELINE, C.TARGET, C.MARGIN, "min_value", "max_value"):
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

    Raises:
        PermissionDenied: the actor is not an admin.
        StoreError: two metrics share a key, or a metric's explicit baseline/target
            conflicts with the stored data. Nothing is written.
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
    if created:
        pilot = Pilot(**fields, created_at=now, updated_at=now)
        session.add(pilot)
        session.flush()
        session.add(StageEvent(pilot_id=pilot.id, to_stage=pilot.stage, by=actor, at=now))
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


def set_stage(*, session: Session, actor: str, pilot_id: int, stage: str, note: str = "") -> None:
    """Move a pilot to ``stage``, recording a :class:`StageEvent`.

    Raises:
        PermissionDenied: the actor is not an admin.
        StoreError: unknown pilot or stage.
    """
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
    now = utcnow()
    session.add(
        StageEvent(
            pilot_id=pilot_id, from_stage=pilot.stage, to_stage=new, by=actor, at=now, note=note
        )
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
                    "version": 1,
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


def record_measurement(
    *,
    session: Session,
    actor: str,
    metric_id: int,
    week: date,
    value: float,
    note: str = "",
    reason: str = "",
) -> WriteCounts:
    """Create or update one weekly value (see :func:`write_measurements`).

    Raises:
        StoreError: unknown metric, value not finite or outside the allowed range,
            week not a Monday. Nothing is written.
    """
    rows = pd.DataFrame(
        {C.METRIC_ID: [metric_id], C.WEEK: [week], C.VALUE: [value], "note": [note or ""]}
    )
    return write_measurements(session=session, actor=actor, rows=rows, reason=reason)


def delete_measurement(
    *, session: Session, actor: str, metric_id: int, week: date, reason: str = ""
) -> bool:
    """Delete one weekly value, keeping it in the revision history.

    Returns:
        True when a value was deleted, False when there was none.

    Raises:
        PermissionDenied: the actor is not an editor or admin.
    """
    require_role(session=session, actor=actor, needed=Role.editor, action="deleting a measurement")
    m = session.exec(
        select(Measurement).where(Measurement.metric_id == metric_id, Measurement.week == week)
    ).first()
    if m is None:
        return False
    now = utcnow()
    session.add(
        MeasurementRevision(
            metric_id=metric_id,
            week=week,
            action=RevisionAction.delete.value,
            old_value=m.value,
            new_value=None,
            old_note=m.note,
            new_note=None,
            actor=actor,
            at=now,
            reason=reason,
        )
    )
    session.delete(m)
    pilot = session.get(Pilot, session.get(Metric, metric_id).pilot_id)
    pilot.updated_at = now
    session.flush()
    return True


def revisions_frame(session: Session, *, metric_id: int | None = None) -> pd.DataFrame:
    """The audit trail of measurements, oldest first.

    Returns:
        Columns revision_id, metric_id (int64), week (datetime64[ns]), action,
        old_value, new_value (float64), old_note, new_note, actor, reason (object),
        at (datetime64[ns, UTC]).
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
    cols = [
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
    df = _frame(session, stmt, cols)
    df[C.WEEK] = pd.to_datetime(df[C.WEEK])
    df["at"] = pd.to_datetime(df["at"], utc=True)
    return df


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
    "PermissionDenied",
    "SaveResult",
    "StoreError",
    "WriteCounts",
    "check_measurement_rows",
    "data_version",
    "delete_measurement",
    "measurements_frame",
    "metrics_frame",
    "pilots_frame",
    "record_measurement",
    "revisions_frame",
    "save_pilot",
    "set_stage",
    "stage_events_frame",
    "summary_inputs",
    "validation_message",
    "weekly_values_frame",
    "write_measurements",
]
