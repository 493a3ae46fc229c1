"""The store: the only module that writes, and the set-based reads behind every page.

Writes are keyword-only functions taking the session and the acting user's name; each
validates its input, writes the audit records, and leaves the commit to the caller's
single session (``metrics.db.session_scope``), so one action is one transaction.
Reads return pandas DataFrames built from one query each (never one ORM object per
measurement). Bulk writes use executemany-style ``insert``/``update`` statements.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
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
    LINE_BREAK_RE,
    MAX_ABS_VALUE,
    TOKEN_ACTOR_PREFIX,
    ApiToken,
    ApiTokenCreate,
    ApiTokenPilot,
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
    collapse_spaces,
    pilot_name_key,
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
    "archived",
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
        trailing_window int64, min_weeks int64, updated_at (datetime64[ns, UTC]),
        archived (bool: hidden from the Portfolio unless asked for; data kept).
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
        Pilot.archived,
    ).order_by(Pilot.name)
    df = _frame(session, stmt, PILOT_COLUMNS)
    df["archived"] = df["archived"].fillna(False).astype(bool)
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
    "archived",
]


def metrics_frame(
    session: Session, *, pilot_id: int | None = None, include_archived: bool = False
) -> pd.DataFrame:
    """Metrics with their pilot's fields joined: the ``metrics`` input of
    :mod:`metrics.computations`.

    Returns:
        Columns metric_id, pilot_id (int64), pilot, key, label, unit, direction, role
        (object), baseline, target, margin, min_value, max_value (float64, NaN = not
        set), vendor, stage (object), start_date, decision_date (datetime64[ns]),
        trailing_window, min_weeks (int64), value_per_unit (float64, NaN = no value
        model), archived (bool). Sorted by pilot name, then metric key. Archived
        metrics (:func:`set_metric_archived`) only with ``include_archived``: they take
        no part in the numbers, the pages or the summary.
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
            Metric.archived,
        )
        .join(Pilot, Pilot.id == Metric.pilot_id)
        .order_by(Pilot.name, Metric.key)
    )
    if pilot_id is not None:
        stmt = stmt.where(Metric.pilot_id == pilot_id)
    if not include_archived:
        stmt = stmt.where(Metric.archived == sa.false())
    df = _frame(session, stmt, METRIC_COLUMNS)
    df["archived"] = df["archived"].fillna(False).astype(bool)
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


#: What :func:`save_pilot` may do with a pilot whose name (ignoring case and spacing)
#: is already taken: ``create`` refuses (the Admin "New pilot" form, the API's create),
#: ``update`` needs the pilot to exist, ``upsert`` updates it (``pilots import``, seeds).
SAVE_MODES = ("create", "update", "upsert")

#: Pilot fields a definition CSV or form sets (``name`` changes only by
#: :func:`rename_pilot`).
PILOT_DEFINITION_FIELDS = (
    "vendor",
    "use_case",
    "owner",
    "stage",
    "start_date",
    "decision_date",
    "cost",
    "trailing_window",
    "min_weeks",
)


@dataclass(frozen=True)
class SaveResult:
    """Outcome of :func:`save_pilot`.

    Attributes:
        name: the pilot's stored name.
        fields_changed: pilot fields whose value changed (empty for a new pilot).
        metrics_added, metrics_changed: keys of the metrics created / changed, with
            the changed fields for the latter: ``(key, ("target", "baseline"))``.
    """

    pilot_id: int
    created: bool
    metrics_created: int
    metrics_updated: int
    name: str = ""
    fields_changed: tuple[str, ...] = ()
    metrics_added: tuple[str, ...] = ()
    metrics_changed: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def changed(self) -> bool:
        """True when anything was created or changed."""
        return self.created or bool(
            self.fields_changed or self.metrics_added or self.metrics_changed
        )

    def describe(self) -> str:
        """What really happened, in one line, e.g. "Saved Invoice copilot: vendor, cost
        changed; metric added: error_rate; metric changed: cycle_time (target)." or
        "Invoice copilot: nothing changed."."""
        if self.created:
            n = len(self.metrics_added)
            if not n:
                return f"Created {self.name} (no metrics yet)."
            added = ", ".join(self.metrics_added)
            return f"Created {self.name} with {n} metric{'s' if n > 1 else ''}: {added}."
        if not self.changed:
            return f"{self.name}: nothing changed."
        parts = []
        if self.fields_changed:
            parts.append(f"{', '.join(self.fields_changed)} changed")
        if self.metrics_added:
            parts.append(
                f"metric{'s' if len(self.metrics_added) > 1 else ''} added: "
                + ", ".join(self.metrics_added)
            )
        if self.metrics_changed:
            parts.append(
                f"metric{'s' if len(self.metrics_changed) > 1 else ''} changed: "
                + ", ".join(f"{k} ({', '.join(f)})" for k, f in self.metrics_changed)
            )
        return f"Saved {self.name}: " + "; ".join(parts) + "."


def find_pilot_by_name(session: Session, name: str) -> Pilot | None:
    """The pilot whose name equals ``name`` ignoring case and spacing
    (:func:`metrics.models.pilot_name_key`), or None."""
    return session.exec(select(Pilot).where(Pilot.name_key == pilot_name_key(name))).first()


def _name_taken_message(name: str, existing: str) -> str:
    same = "" if existing == name else " (names are compared ignoring case and spacing)"
    return (
        f"a pilot named {existing!r} already exists{same}: pick it to edit it, or choose "
        f"another name for {name!r}"
    )


def save_pilot(
    *,
    session: Session,
    actor: str,
    pilot_in: PilotCreate,
    metrics_in: list[MetricCreate],
    mode: str = "upsert",
    pilot_id: int | None = None,
) -> SaveResult:
    """Create a pilot or update one, with its metrics.

    The pilot is found by ``pilot_id`` when given, else by its name ignoring case and
    spacing (:func:`metrics.models.pilot_name_key`): "Claims  triage Agent " is the
    pilot "Claims triage agent", never a second one. An update never changes the name
    (that is :func:`rename_pilot`). Metrics are matched by key: new keys are created,
    existing ones updated; metrics not listed are kept. A stage change records a
    :class:`StageEvent`.

    Every created or changed pilot and metric is recorded in the audit log
    (:class:`metrics.models.AuditEvent`: who, when, the fields before and after), shown
    by :func:`definition_history_frame`.

    A new pilot gets the default readiness checklist
    (:func:`metrics.governance.ensure_default_checklist`). A stage change must pass its
    stage gate (:func:`metrics.governance.stage_gate`); a new pilot starts in
    discovery or pilot.

    Args:
        mode: ``create`` refuses a name that is taken (the Admin page's "New pilot");
            ``update`` refuses an unknown pilot; ``upsert`` (default: ``pilots import``,
            seeds) creates or updates.
        pilot_id: the pilot to update (mode ``update``); its name must match.

    Returns:
        :class:`SaveResult` saying exactly what changed (:meth:`SaveResult.describe`).

    Raises:
        PermissionDenied: the actor is not an admin.
        StoreError: the name is taken (mode create; the message names the pilot), the
            pilot does not exist (mode update), two metrics share a key, a metric's
            explicit baseline/target conflicts with the stored data, or the stage change
            skips its gate (the message says what to record first). Nothing is written.
    """
    require_role(session=session, actor=actor, needed=Role.admin, action="saving a pilot")
    if mode not in SAVE_MODES:
        raise ValueError(f"mode must be one of {SAVE_MODES}")
    keys = [m.key for m in metrics_in]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise StoreError(f"pilot {pilot_in.name!r}: metric key(s) listed twice: {dupes}")
    now = utcnow()
    if pilot_id is not None:
        pilot = session.get(Pilot, pilot_id)
        if pilot is None:
            raise StoreError(f"no pilot with id {pilot_id}: it may have been removed; reload")
        if pilot.name_key != pilot_name_key(pilot_in.name):
            raise StoreError(
                f"pilot {pilot.name!r} cannot be saved as {pilot_in.name!r}: rename it instead"
            )
    else:
        pilot = find_pilot_by_name(session, pilot_in.name)
    if pilot is not None and mode == "create":
        raise StoreError(_name_taken_message(pilot_in.name, pilot.name))
    if pilot is None and mode == "update":
        raise StoreError(f"no pilot named {pilot_in.name!r}: create it first")
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
    changed_fields: list[str] = []
    if created:
        pilot = Pilot(
            **fields, name_key=pilot_name_key(pilot_in.name), created_at=now, updated_at=now
        )
        session.add(pilot)
        try:
            session.flush()
        except sa.exc.IntegrityError:  # saved by someone else between the check and now
            raise StoreError(
                f"a pilot named {pilot_in.name!r} was saved by someone else at the same "
                "moment; nothing written: reload and save again to update it"
            ) from None
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
        fields = {k: fields[k] for k in PILOT_DEFINITION_FIELDS}
        old_stage = pilot.stage
        before = {k: getattr(pilot, k) for k in fields}
        changed_fields = [k for k in fields if before[k] != fields[k]]
        for k, v in fields.items():
            setattr(pilot, k, v)
        if changed_fields:
            pilot.updated_at = now
            record_audit(
                session=session,
                actor=actor,
                entity="pilot",
                entity_id=pilot.id,
                action="update",
                detail={
                    "pilot": pilot.name,
                    "before": {k: before[k] for k in changed_fields},
                    "after": {k: fields[k] for k in changed_fields},
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
    added: list[str] = []
    changed_metrics: list[tuple[str, tuple[str, ...]]] = []
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
                detail={"pilot": pilot.name, "key": m_in.key, "after": values},
            )
            added.append(m_in.key)
        else:
            before = {k: getattr(metric, k) for k in values}
            diff = tuple(k for k in values if before[k] != values[k])
            _check_stored_values_in_range(
                session, metric.id, f"{pilot.name} {m_in.key}", m_in.min_value, m_in.max_value
            )
            for k, v in values.items():
                setattr(metric, k, v)
            if diff:
                record_audit(
                    session=session,
                    actor=actor,
                    entity="metric",
                    entity_id=metric.id,
                    action="update",
                    detail={
                        "pilot": pilot.name,
                        "key": m_in.key,
                        "before": {k: before[k] for k in diff},
                        "after": {k: values[k] for k in diff},
                    },
                )
                changed_metrics.append((m_in.key, diff))
    if (added or changed_metrics) and not created:
        pilot.updated_at = now
    session.flush()
    return SaveResult(
        pilot.id,
        created,
        len(added),
        len(changed_metrics),
        name=pilot.name,
        fields_changed=tuple(changed_fields),
        metrics_added=tuple(added),
        metrics_changed=tuple(changed_metrics),
    )


# --------------------------------------------------------------------------- rename, archive


def _pilot_or_error(session: Session, pilot_id: int) -> Pilot:
    pilot = session.get(Pilot, pilot_id)
    if pilot is None:
        raise StoreError(f"no pilot with id {pilot_id}: it may have been removed; reload")
    return pilot


def rename_pilot(*, session: Session, actor: str, pilot_id: int, new_name: str) -> str:
    """Rename a pilot (audited: old and new name). The new name is trimmed and its inner
    white space collapsed; changing only its case or spacing is allowed.

    Returns:
        The stored new name.

    Raises:
        PermissionDenied: the actor is not an admin.
        StoreError: unknown pilot; an empty, too long or control-character name; the
            name is taken by another pilot ignoring case and spacing (the message
            names it). Nothing is written.
    """
    require_role(session=session, actor=actor, needed=Role.admin, action="renaming a pilot")
    pilot = _pilot_or_error(session, pilot_id)
    name = collapse_spaces(new_name or "")
    if not name:
        raise StoreError("the new name is empty: type a name")
    if len(name) > 200:
        raise StoreError(f"the new name is {len(name)} characters long; at most 200")
    if CONTROL_CHARS_RE.search(name) or LINE_BREAK_RE.search(name):
        raise StoreError("the new name must not contain control characters or line breaks")
    other = find_pilot_by_name(session, name)
    if other is not None and other.id != pilot.id:
        raise StoreError(_name_taken_message(name, other.name))
    if name == pilot.name:
        return name
    old = pilot.name
    now = utcnow()
    pilot.name, pilot.name_key, pilot.updated_at = name, pilot_name_key(name), now
    record_audit(
        session=session,
        actor=actor,
        entity="pilot",
        entity_id=pilot.id,
        action="rename",
        detail={"pilot": name, "before": {"name": old}, "after": {"name": name}},
    )
    session.flush()
    return name


def set_pilot_archived(*, session: Session, actor: str, pilot_id: int, archived: bool) -> bool:
    """Archive a pilot (it leaves the Portfolio; every value, decision and checklist item
    is kept) or bring it back. Audited.

    Returns:
        True when the flag changed, False when it already had that value.

    Raises:
        PermissionDenied: the actor is not an admin.
        StoreError: unknown pilot.
    """
    require_role(session=session, actor=actor, needed=Role.admin, action="archiving a pilot")
    pilot = _pilot_or_error(session, pilot_id)
    if bool(pilot.archived) == bool(archived):
        return False
    record_audit(
        session=session,
        actor=actor,
        entity="pilot",
        entity_id=pilot.id,
        action="archive" if archived else "unarchive",
        detail={
            "pilot": pilot.name,
            "before": {"archived": bool(pilot.archived)},
            "after": {"archived": bool(archived)},
        },
    )
    pilot.archived = bool(archived)
    pilot.updated_at = utcnow()
    session.flush()
    return True


def _metric_or_error(session: Session, metric_id: int) -> tuple[Metric, Pilot]:
    metric = session.get(Metric, metric_id)
    if metric is None:
        raise StoreError(f"no metric with id {metric_id}: it may have been removed; reload")
    return metric, session.get(Pilot, metric.pilot_id)


def rename_metric(*, session: Session, actor: str, metric_id: int, new_label: str) -> str:
    """Change a metric's label (its key stays: weekly values and imports use it). Audited.

    Returns:
        The stored new label (trimmed).

    Raises:
        PermissionDenied: the actor is not an admin.
        StoreError: unknown metric; an empty, too long or control-character label.
    """
    require_role(session=session, actor=actor, needed=Role.admin, action="renaming a metric")
    metric, pilot = _metric_or_error(session, metric_id)
    label = collapse_spaces(new_label or "")
    if not label:
        raise StoreError("the new label is empty: type a label")
    if len(label) > 200:
        raise StoreError(f"the new label is {len(label)} characters long; at most 200")
    if CONTROL_CHARS_RE.search(label) or LINE_BREAK_RE.search(label):
        raise StoreError("the new label must not contain control characters or line breaks")
    if label == metric.label:
        return label
    record_audit(
        session=session,
        actor=actor,
        entity="metric",
        entity_id=metric.id,
        action="rename",
        detail={
            "pilot": pilot.name,
            "key": metric.key,
            "before": {"label": metric.label},
            "after": {"label": label},
        },
    )
    metric.label = label
    pilot.updated_at = utcnow()
    session.flush()
    return label


def set_metric_archived(*, session: Session, actor: str, metric_id: int, archived: bool) -> bool:
    """Archive a metric (it leaves the pages, the summary and the recommendation; its
    weekly values and history are kept) or bring it back. Audited.

    Returns:
        True when the flag changed.

    Raises:
        PermissionDenied: the actor is not an admin.
        StoreError: unknown metric, or archiving the pilot's last active metric.
    """
    require_role(session=session, actor=actor, needed=Role.admin, action="archiving a metric")
    metric, pilot = _metric_or_error(session, metric_id)
    if bool(metric.archived) == bool(archived):
        return False
    record_audit(
        session=session,
        actor=actor,
        entity="metric",
        entity_id=metric.id,
        action="archive" if archived else "unarchive",
        detail={
            "pilot": pilot.name,
            "key": metric.key,
            "before": {"archived": bool(metric.archived)},
            "after": {"archived": bool(archived)},
        },
    )
    metric.archived = bool(archived)
    pilot.updated_at = utcnow()
    session.flush()
    return True


def pilot_id_by_name(session: Session, name: str) -> int:
    """The id of the pilot named ``name`` (ignoring case and spacing).

    Raises:
        StoreError: no such pilot (the message suggests close names).
    """
    pilot = find_pilot_by_name(session, name)
    if pilot is None:
        import difflib

        names = list(session.exec(select(Pilot.name)).all())
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
        hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
        raise StoreError(f"no pilot named {name!r}{hint}")
    return int(pilot.id)


def metric_id_by_key(session: Session, pilot_id: int, key: str) -> int:
    """The id of metric ``key`` of pilot ``pilot_id`` (archived ones too).

    Raises:
        StoreError: the pilot has no such metric (the message lists its keys).
    """
    found = session.exec(
        select(Metric).where(Metric.pilot_id == pilot_id, Metric.key == key.strip())
    ).first()
    if found is None:
        keys = sorted(session.exec(select(Metric.key).where(Metric.pilot_id == pilot_id)).all())
        raise StoreError(f"no metric {key!r} (its metrics: {', '.join(keys) or 'none'})")
    return int(found.id)


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


#: A week this many weeks or more before the pilot's start week, or after its decision
#: week, is almost always a typo (2016 for 2026) and is refused unless the user
#: confirms it (DESIGN §6: ``--allow-distant-weeks``, a tick box on the pages).
DISTANT_WEEKS_BEFORE_START = 156
DISTANT_WEEKS_AFTER_DECISION = 52


def distant_weeks(
    weeks: pd.Series, start_dates: pd.Series, decision_dates: pd.Series
) -> tuple[np.ndarray, list[str | None]]:
    """Which weeks are far from their pilot's dates (DESIGN §6), and why.

    The one check behind the import (CLI, Import page, API) and the Enter page: a week
    more than :data:`DISTANT_WEEKS_BEFORE_START` weeks before the Monday of the start
    date, or more than :data:`DISTANT_WEEKS_AFTER_DECISION` weeks after the Monday of
    the decision date. Vectorised; only distant rows are worded.

    Args:
        weeks, start_dates, decision_dates: aligned Series of dates or datetime64
            (NaT/None: not judged).

    Returns:
        (mask: bool array, reasons: one text per row, None where not distant), e.g.
        "week 2016-W05 is 520 weeks before the pilot's start week 2026-W01 (more than
        156): check the year, or confirm distant weeks".
    """
    w = pd.to_datetime(pd.Series(weeks).reset_index(drop=True), errors="coerce")
    start = pd.to_datetime(pd.Series(start_dates).reset_index(drop=True), errors="coerce")
    decision = pd.to_datetime(pd.Series(decision_dates).reset_index(drop=True), errors="coerce")
    start_monday = start - pd.to_timedelta(start.dt.day_of_week, unit="D")
    decision_monday = decision - pd.to_timedelta(decision.dt.day_of_week, unit="D")
    before = ((start_monday - w).dt.days // 7).to_numpy()
    after = ((w - decision_monday).dt.days // 7).to_numpy()
    with np.errstate(invalid="ignore"):
        early = np.nan_to_num(before, nan=0) > DISTANT_WEEKS_BEFORE_START
        late = np.nan_to_num(after, nan=0) > DISTANT_WEEKS_AFTER_DECISION
    mask = early | late
    reasons: list[str | None] = [None] * len(w)
    for i in np.flatnonzero(mask):
        label = C.iso_label(w.iloc[i])
        if early[i]:
            reasons[i] = (
                f"week {label} is {int(before[i])} weeks before the pilot's start week "
                f"{C.iso_label(start_monday.iloc[i])} (more than "
                f"{DISTANT_WEEKS_BEFORE_START}): check the year, or confirm distant weeks"
            )
        else:
            reasons[i] = (
                f"week {label} is {int(after[i])} weeks after the pilot's decision week "
                f"{C.iso_label(decision_monday.iloc[i])} (more than "
                f"{DISTANT_WEEKS_AFTER_DECISION}): check the year, or confirm distant weeks"
            )
    return mask, reasons


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
            ``version``), or ``reason`` fails :func:`check_reason`; the caller must
            roll back, nothing is committed.
    """
    require_role(session=session, actor=actor, needed=Role.editor, action="writing measurements")
    reason = check_reason(reason)
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
        metric_col = to_create[C.METRIC_ID].astype("int64").to_numpy()
        week_col = to_create[C.WEEK].to_numpy()
        if prior:
            version_col = [
                prior.get((m, w), 0) + 1 for m, w in zip(metric_col.tolist(), week_col, strict=True)
            ]
        else:
            version_col = np.ones(len(to_create), dtype="int64")
        bulk_insert(
            session=session,
            table=Measurement.__table__,
            columns={
                "metric_id": metric_col,
                "week": week_col,
                "value": to_create[C.VALUE].astype("float64").to_numpy(),
                "note": to_create["note"].to_numpy(),
                "entered_by": actor,
                "entered_at": now,
                "version": version_col,
            },
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
    changed = pd.concat([to_create, to_update], ignore_index=True)
    if not changed.empty:
        n_create = len(to_create)
        old_value = changed["old_value"].astype("float64").to_numpy(copy=True)
        old_value[:n_create] = np.nan
        bulk_insert(
            session=session,
            table=MeasurementRevision.__table__,
            columns={
                "metric_id": changed[C.METRIC_ID].astype("int64").to_numpy(),
                "week": changed[C.WEEK].to_numpy(),
                "action": np.array(
                    [RevisionAction.create.value] * n_create
                    + [RevisionAction.update.value] * len(to_update),
                    dtype=object,
                ),
                "old_value": old_value,
                "new_value": changed[C.VALUE].astype("float64").to_numpy(),
                "old_note": np.where(
                    np.arange(len(changed)) < n_create, None, changed["old_note"].to_numpy()
                ),
                "new_note": changed["note"].to_numpy(),
                "actor": actor,
                "at": now,
                "reason": reason,
            },
        )
        touched = sorted({int(x) for x in merged.loc[~same, C.METRIC_ID]})
        session.execute(
            sa.update(Pilot)
            .where(Pilot.id.in_(sa.select(Metric.pilot_id).where(Metric.id.in_(touched))))
            .values(updated_at=now)
        )
    session.flush()
    return WriteCounts(len(to_create), len(to_update), int(same.sum()))


#: SQLite's storage formats for DATE and DATETIME, as SQLAlchemy's SQLite dialect writes
#: them (so rows written in bulk read back exactly like rows written through the ORM).
_SQLITE_DATE = "%Y-%m-%d"
_SQLITE_DATETIME = "%Y-%m-%d %H:%M:%S.%f"


def _column_for_driver(values, dialect: str, n: int):
    """One column as the driver wants it, converted once per column (not per row):
    a scalar becomes a repeated value; NaN becomes None (NULL, never a number); dates
    and UTC timestamps become SQLite's text form there."""
    from itertools import repeat

    if isinstance(values, datetime):
        if values.tzinfo is None:
            raise ValueError("naive datetime refused: timestamps must be timezone-aware")
        utc = values.astimezone(UTC)
        return repeat(
            utc.replace(tzinfo=None).strftime(_SQLITE_DATETIME) if dialect == "sqlite" else utc, n
        )
    if values is None or isinstance(values, str | int | float):
        return repeat(values, n)
    arr = np.asarray(values)
    if arr.dtype.kind == "f":
        out = arr.astype(object)
        out[np.isnan(arr)] = None
        return out.tolist()
    if arr.dtype.kind in "iu":
        return arr.tolist()
    items = arr.tolist()
    if dialect == "sqlite" and items and isinstance(items[0], date):
        return [d.strftime(_SQLITE_DATE) if d is not None else None for d in items]
    return items


def bulk_insert(*, session: Session, table: sa.Table, columns: dict[str, object]) -> int:
    """Insert many rows into ``table`` through the driver's own bulk path, inside the
    session's transaction: sqlite3 ``executemany`` on SQLite, ``COPY ... FROM STDIN``
    on PostgreSQL (psycopg), SQLAlchemy's executemany elsewhere.

    Written here rather than with ``session.execute(insert(table), [dicts])`` because
    that path converts every value of every row through the column types (a constant
    timestamp converted once per row) and needs one parameter dict per row: at 832,000
    values that was most of an import's time (issue 13). Values are converted once per
    column instead; the caller has validated them (finite floats, Mondays, short text).

    Args:
        columns: column name -> a 1-D array/list of values (all the same length) or a
            scalar repeated on every row. Dates are ``datetime.date``; timestamps must be
            timezone-aware; NaN in a float column is stored as NULL.

    Returns:
        The number of rows inserted.
    """
    lengths = {len(v) for v in columns.values() if not _is_scalar(v)}
    if len(lengths) != 1:
        raise ValueError(f"bulk_insert needs at least one array column of one length: {lengths}")
    n = lengths.pop()
    if n == 0:
        return 0
    conn = session.connection()
    dialect = conn.dialect.name
    names = list(columns)
    if dialect not in ("sqlite", "postgresql"):
        rows = [dict(zip(names, r, strict=True)) for r in _rows(columns, names, n, dialect)]
        conn.execute(sa.insert(table), rows)
        return n
    raw = conn.connection.driver_connection
    quoted = ", ".join(f'"{c}"' for c in names)
    if dialect == "sqlite":
        marks = ", ".join("?" for _ in names)
        statement = f'INSERT INTO "{table.name}" ({quoted}) VALUES ({marks})'
    else:
        statement = f'COPY "{table.name}" ({quoted}) FROM STDIN'
    try:
        if dialect == "sqlite":
            raw.executemany(statement, _rows(columns, names, n, dialect))
        else:
            with raw.cursor() as cur, cur.copy(statement) as copy:
                for row in _rows(columns, names, n, dialect):
                    copy.write_row(row)
    except conn.dialect.loaded_dbapi.Error as exc:
        # The driver's own error, wrapped as SQLAlchemy wraps it on its own paths
        # (IntegrityError, OperationalError, ...), so callers handle one family.
        raise sa.exc.DBAPIError.instance(
            statement, None, exc, conn.dialect.loaded_dbapi.Error
        ) from exc
    return n


def _is_scalar(v) -> bool:
    return v is None or isinstance(v, str | int | float | datetime)


def _rows(columns: dict[str, object], names: list[str], n: int, dialect: str):
    """Row tuples for :func:`bulk_insert` (one iterator over converted columns)."""
    return zip(*(_column_for_driver(columns[c], dialect, n) for c in names), strict=False)


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
    "field",
    "old_value",
    "new_value",
    "old_note",
    "new_note",
    "actor",
    "at",
    "reason",
]


def revisions_export_frame(session: Session) -> pd.DataFrame:
    """The whole audit trail for ``pilotgate export revisions``: every change to a
    measurement and every change to a pilot's or metric's definition.

    Two queries (measurement revisions joined with their metric and pilot; the audit
    log of pilots and metrics, :func:`definition_history_frame`), oldest first. Write it
    with :func:`metrics.csvio.to_csv_text` (UTF-8 BOM, formula-safe text cells).

    Returns:
        Columns pilot (pilot name), metric (metric key; empty for a pilot's own
        field), week (``YYYY-Www``; empty for a definition change), action
        (measurements: create / update / delete / restore; definitions:
        ``pilot_create``, ``pilot_update``, ``pilot_rename``, ``pilot_archive``,
        ``pilot_unarchive``, ``pilot_set_stage``, ``metric_create``, ``metric_update``,
        ``metric_rename``, ``metric_archive``, ``metric_unarchive``), field (``value``
        for a measurement; the definition field, e.g. ``target``), old_value, new_value
        (the metric's unit for values; a definition's old and new value: a number,
        or text for names, dates and stages; empty = none), old_note, new_note,
        actor, at (ISO 8601 UTC ``2026-03-02T10:04:05Z``), reason; sorted by time.
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
    cols = [c for c in REVISION_EXPORT_COLUMNS if c != "field"]
    df = _frame(session, stmt, cols)
    df["week"] = week_labels(pd.to_datetime(df["week"])).astype(object)
    for col in ("old_value", "new_value"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    df["at"] = pd.to_datetime(df["at"], utc=True)
    df["field"] = "value"
    defs = definition_history_frame(session)
    if not defs.empty:
        d = pd.DataFrame(
            {
                "pilot": defs["pilot"],
                "metric": defs["metric"],
                "week": None,
                "action": defs["entity"] + "_" + defs["action"],
                "field": defs["field"],
                "old_value": defs["old"],
                "new_value": defs["new"],
                "old_note": None,
                "new_note": None,
                "actor": defs["actor"],
                "at": defs["at"],
                "reason": defs["reason"],
            }
        )
        parts = [x.astype(object) for x in (df, d) if not x.empty]
        df = pd.concat(parts, ignore_index=True).sort_values("at", kind="stable")
        df["at"] = pd.to_datetime(df["at"], utc=True)
    df["at"] = df["at"].dt.strftime("%Y-%m-%dT%H:%M:%SZ").astype(object)
    for col in ("pilot", "metric", "action", "field", "old_note", "new_note", "actor", "reason"):
        df[col] = df[col].astype(object).where(df[col].notna(), None)
    return df[REVISION_EXPORT_COLUMNS].reset_index(drop=True)


#: Columns of :func:`definition_history_frame`.
DEFINITION_HISTORY_COLUMNS = [
    "at",
    "actor",
    "entity",
    "action",
    "pilot_id",
    "pilot",
    "metric",
    "field",
    "old",
    "new",
    "reason",
]


def definition_history_frame(session: Session, *, pilot_id: int | None = None) -> pd.DataFrame:
    """Every change to a pilot's or metric's definition, one row per changed field,
    oldest first (one query on the audit log; DESIGN §3: audited like a measurement).

    Args:
        pilot_id: only this pilot and its metrics.

    Returns:
        Columns at (datetime64[ns, UTC]), actor, entity (``pilot`` | ``metric``),
        action (create / update / rename / archive / unarchive / set_stage), pilot_id
        (int64), pilot (its current name), metric (the metric's key; "" for a pilot
        field), field (e.g. ``target``, ``name``, ``archived``), old, new (object: the
        stored value before and after -- a number, text such as an ISO date, a bool,
        or None when there was none; a create has no old value), reason (object: a
        stage move's note, the migration's reason; else "").
    """
    import json

    A = AuditEvent
    metric = sa.orm.aliased(Metric)
    owner_id = sa.case((A.entity == "pilot", A.entity_id), else_=metric.pilot_id)
    stmt = (
        sa.select(
            A.id, A.at, A.actor, A.entity, A.action, A.detail, owner_id, Pilot.name, metric.key
        )
        .outerjoin(metric, sa.and_(A.entity == "metric", metric.id == A.entity_id))
        .outerjoin(Pilot, Pilot.id == owner_id)
        .where(A.entity.in_(["pilot", "metric"]))
        .order_by(A.id)
    )
    if pilot_id is not None:
        stmt = stmt.where(owner_id == pilot_id)
    rows = session.connection().execute(stmt).all()
    out: list[dict] = []
    for _id, at, actor, entity, action, detail, pid, pname, key in rows:
        try:
            d = json.loads(detail or "{}")
        except ValueError:
            d = {}
        before = d.get("before") or {}
        after = d.get("after") or {}
        reason = str(d.get("reason") or d.get("note") or "")
        for f in after if action == "create" else sorted(set(before) | set(after)):
            old = None if action == "create" else before.get(f)
            new = after.get(f)
            if action == "create" and (new is None or new == ""):
                continue
            out.append(
                {
                    "at": at,
                    "actor": actor,
                    "entity": entity,
                    "action": action,
                    "pilot_id": pid,
                    "pilot": pname if pname is not None else d.get("pilot"),
                    "metric": (key or d.get("key") or "") if entity == "metric" else "",
                    "field": f,
                    "old": old,
                    "new": new,
                    "reason": reason,
                }
            )
    if not out:
        df = pd.DataFrame({c: pd.Series(dtype="object") for c in DEFINITION_HISTORY_COLUMNS})
        df["at"] = pd.to_datetime(df["at"], utc=True)
        return df
    df = pd.DataFrame(out, columns=DEFINITION_HISTORY_COLUMNS)
    df["at"] = pd.to_datetime(df["at"], utc=True)
    df["pilot_id"] = df["pilot_id"].astype("Int64")
    for col in ("old", "new"):
        df[col] = df[col].astype(object)
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


def stages_as_of_frame(session: Session, *, as_of: date) -> pd.DataFrame:
    """Each pilot's stage as it stood at the end of day ``as_of`` (UTC), from its
    StageEvent history: a stage move recorded after that day is undone (the stage is
    the ``from_stage`` of the earliest such move). A pilot's first stage (its creation
    event, no ``from_stage``) applies from the start: pilots are often defined after
    their first weeks, like their measurements.

    One query over the moves after ``as_of``, then pandas.

    Returns:
        Columns pilot_id (int64), stage (object): only pilots whose stage then differs
        from a move recorded later; every other pilot's stage is its current one.
    """
    S = StageEvent
    end = datetime.combine(as_of + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    stmt = (
        sa.select(S.pilot_id, S.from_stage)
        .where(S.at >= end, S.from_stage.is_not(None))
        .order_by(S.pilot_id, S.at, S.id)
    )
    df = _frame(session, stmt, [C.PILOT_ID, "stage"])
    df = df.drop_duplicates(C.PILOT_ID, keep="first").reset_index(drop=True)
    df[C.PILOT_ID] = df[C.PILOT_ID].astype("int64")
    return df


def summary_inputs(session: Session) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(metrics_frame, measurements) for the whole portfolio: two queries."""
    return metrics_frame(session), measurements_frame(session)


# =========================================================================== API tokens
#
# Token secrets are hashed with plain SHA-256: they are 32 random bytes, so a slow
# password hash (bcrypt, argon2) adds nothing against guessing and would cost every
# request; the lookup is by hash and the final comparison is constant-time
# (hmac.compare_digest). The secret is returned once by create_api_token and never
# stored, logged or exported.

#: How old a token's recorded last use may get before a request records it again:
#: recording every request would make every read a write.
TOKEN_LAST_USED_RESOLUTION = timedelta(seconds=60)
#: Printed before the random part, so secret scanners and people recognise a token.
TOKEN_PREFIX = "pgt_"
#: Random bytes in a token (DESIGN §11: at least 32).
TOKEN_BYTES = 32


@dataclass(frozen=True)
class TokenScope:
    """Who a valid API token is and what it may touch.

    Attributes:
        name: the token's name.
        role: ``viewer`` or ``editor``.
        actor: the actor name its writes are recorded under (``token:<name>``).
        pilot_ids: the pilots it is limited to; None = every pilot.
        pilot_names: their names (None = every pilot).
    """

    name: str
    role: Role
    actor: str
    pilot_ids: frozenset[int] | None
    pilot_names: frozenset[str] | None

    def allows(self, pilot_id: int) -> bool:
        """True when the token may read and write pilot ``pilot_id``."""
        return self.pilot_ids is None or pilot_id in self.pilot_ids


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_api_token(*, session: Session, actor: str, token_in: ApiTokenCreate) -> str:
    """Create an API token and return its secret (the only time it exists in clear).

    The secret is ``pgt_`` + 43 URL-safe characters (32 random bytes from ``secrets``);
    only its SHA-256 is stored. ``token_in.pilots`` limits it to those pilots (names as
    stored); empty = every pilot. Audited (entity ``api_token``, without the secret).

    Raises:
        PermissionDenied: the actor is not an admin.
        StoreError: a token of that name exists (also a revoked one: names stay unique
            so revisions keep naming one token), or a pilot name is unknown.
    """
    require_role(session=session, actor=actor, needed=Role.admin, action="creating an API token")
    if session.execute(sa.select(ApiToken.id).where(ApiToken.name == token_in.name)).first():
        raise StoreError(f"an API token named {token_in.name!r} exists already: pick another name")
    pilot_ids: list[int] = []
    if token_in.pilots:
        found = dict(
            session.execute(
                sa.select(Pilot.name, Pilot.id).where(Pilot.name.in_(token_in.pilots))
            ).all()
        )
        unknown = [p for p in token_in.pilots if p not in found]
        if unknown:
            raise StoreError(
                "unknown pilot(s) for the token's scope: " + ", ".join(repr(p) for p in unknown)
            )
        pilot_ids = [found[p] for p in token_in.pilots]
    secret = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    now = utcnow()
    row = ApiToken(
        name=token_in.name,
        role=token_in.role.value,
        token_hash=_token_hash(secret),
        all_pilots=not token_in.pilots,
        created_at=now,
        created_by=actor,
    )
    session.add(row)
    session.flush()
    if pilot_ids:
        session.execute(
            sa.insert(ApiTokenPilot),
            [{"token_id": row.id, "pilot_id": pid} for pid in pilot_ids],
        )
    record_audit(
        session=session,
        actor=actor,
        entity="api_token",
        entity_id=row.id,
        action="create",
        detail={"after": {"name": row.name, "role": row.role, "pilots": token_in.pilots or "all"}},
    )
    session.flush()
    return secret


def revoke_api_token(*, session: Session, actor: str, name: str) -> bool:
    """Revoke the token ``name`` at once (every later request with it gets 401).

    Returns:
        True when revoked now; False when it was revoked already.

    Raises:
        PermissionDenied: the actor is not an admin.
        StoreError: no token has that name.
    """
    require_role(session=session, actor=actor, needed=Role.admin, action="revoking an API token")
    row = session.exec(select(ApiToken).where(ApiToken.name == name.strip())).first()
    if row is None:
        raise StoreError(f"no API token named {name.strip()[:70]!r}")
    if row.revoked_at is not None:
        return False
    row.revoked_at = utcnow()
    row.revoked_by = actor
    record_audit(
        session=session,
        actor=actor,
        entity="api_token",
        entity_id=row.id,
        action="revoke",
        detail={"name": row.name},
    )
    session.flush()
    return True


API_TOKEN_COLUMNS = [
    "name",
    "role",
    "pilots",
    "created_at",
    "created_by",
    "last_used_at",
    "revoked_at",
    "revoked_by",
]


def api_tokens_frame(session: Session) -> pd.DataFrame:
    """Every API token (never its secret or hash), sorted by name; two queries.

    Returns:
        Columns name, role (object), pilots (object: ``all`` or the pilot names
        joined by ``; ``), created_at, last_used_at, revoked_at (datetime64[ns, UTC],
        NaT = never), created_by, revoked_by (object).
    """
    T = ApiToken
    df = _frame(
        session,
        sa.select(
            T.id,
            T.name,
            T.role,
            T.all_pilots,
            T.created_at,
            T.created_by,
            T.last_used_at,
            T.revoked_at,
            T.revoked_by,
        ).order_by(T.name),
        [
            "id",
            "name",
            "role",
            "all_pilots",
            "created_at",
            "created_by",
            "last_used_at",
            "revoked_at",
            "revoked_by",
        ],
    )
    scope = session.execute(
        sa.select(ApiTokenPilot.token_id, Pilot.name)
        .join(Pilot, Pilot.id == ApiTokenPilot.pilot_id)
        .order_by(Pilot.name)
    ).all()
    names: dict[int, list[str]] = {}
    for token_id, pilot in scope:
        names.setdefault(token_id, []).append(pilot)
    df["pilots"] = [
        "all" if bool(a) else "; ".join(names.get(i, []))
        for i, a in zip(df["id"], df["all_pilots"], strict=True)
    ]
    for col in ("created_at", "last_used_at", "revoked_at"):
        df[col] = pd.to_datetime(df[col], utc=True)
    return df[API_TOKEN_COLUMNS].reset_index(drop=True)


def authenticate_api_token(*, session: Session, token: str) -> TokenScope | None:
    """The scope of a valid, unrevoked token, or None (unknown, malformed or revoked).

    Records the time of use when the recorded one is older than
    :data:`TOKEN_LAST_USED_RESOLUTION` (the caller commits). The secret itself is
    neither stored nor put in any message.
    """
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    digest = _token_hash(token)
    row = session.exec(select(ApiToken).where(ApiToken.token_hash == digest)).first()
    if row is None or not hmac.compare_digest(row.token_hash, digest) or row.revoked_at:
        return None
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at >= TOKEN_LAST_USED_RESOLUTION:
        session.execute(sa.update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=now))
    ids = names = None
    if not row.all_pilots:
        pairs = session.execute(
            sa.select(Pilot.id, Pilot.name)
            .join(ApiTokenPilot, ApiTokenPilot.pilot_id == Pilot.id)
            .where(ApiTokenPilot.token_id == row.id)
        ).all()
        ids = frozenset(int(i) for i, _ in pairs)
        names = frozenset(n for _, n in pairs)
    return TokenScope(
        name=row.name,
        role=Role(row.role),
        actor=TOKEN_ACTOR_PREFIX + row.name,
        pilot_ids=ids,
        pilot_names=names,
    )


def pilots_outside_scope(scope: TokenScope, names: Iterable[str]) -> list[str]:
    """The pilot names (as given, trimmed) a token may not touch, sorted.

    A limited token may touch only its pilots, named exactly as stored: any other
    name -- an existing pilot or not -- is outside its scope, so the answer never
    tells whether some other pilot exists. Empty names are left to the importer
    ("pilot is missing"). An unlimited token: always [].
    """
    if scope.pilot_names is None:
        return []
    return sorted({n.strip() for n in names if n.strip() and n.strip() not in scope.pilot_names})


__all__ = [
    "API_TOKEN_COLUMNS",
    "UNCHECKED",
    "Metric",
    "PermissionDenied",
    "Pilot",
    "SaveResult",
    "StoreError",
    "TokenScope",
    "WriteCounts",
    "api_tokens_frame",
    "authenticate_api_token",
    "check_measurement_rows",
    "check_reason",
    "conflict_message",
    "create_api_token",
    "data_version",
    "definition_history_frame",
    "delete_measurement",
    "distant_weeks",
    "find_pilot_by_name",
    "measurements_frame",
    "metric_id_by_key",
    "metrics_frame",
    "pilot_id_by_name",
    "pilots_frame",
    "pilots_outside_scope",
    "record_measurement",
    "rename_metric",
    "rename_pilot",
    "restore_measurement",
    "revisions_export_frame",
    "revisions_frame",
    "revoke_api_token",
    "save_pilot",
    "set_metric_archived",
    "set_pilot_archived",
    "set_stage",
    "stage_events_frame",
    "stages_as_of_frame",
    "summary_inputs",
    "validation_message",
    "weekly_values_frame",
    "write_measurements",
]


def count_measurements(session: Session) -> int:
    """How many weekly values are stored (every pilot, metric and week)."""
    return int(session.execute(sa.select(sa.func.count(Measurement.id))).scalar_one())
