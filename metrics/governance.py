"""Readiness and governance: checklists, signed decisions and stage gates (DESIGN §3, §5).

Part of the store layer: the only writer of :class:`metrics.models.ChecklistItem` and
:class:`metrics.models.Decision`, with the same rules as :mod:`metrics.store` --
keyword-only functions ``f(*, session, actor, ...)``, the actor's role checked first
(:func:`metrics.access.require_role`), every write audited
(:func:`metrics.access.record_audit`), nothing committed here (the caller's
``session_scope`` is the transaction), and a :class:`metrics.errors.StoreError` whose
message says what to change when input is refused (nothing is written then).

Rules:

- **Checklist**: every pilot gets :data:`DEFAULT_CHECKLIST` when it is created
  (:func:`ensure_default_checklist`, called by :func:`metrics.store.save_pilot`); a
  pilot with no stored items (created before checklists existed) counts as having all
  default items open until they are stored. Items can be added (editor role); ticking
  needs evidence text; ticking and un-ticking record who and when (``by``, ``at``) and
  bump ``version`` (optimistic concurrency).
- **Decisions** (admin role): go / extend / no_go with a rationale, which is required
  when the decision differs from the recommendation at that moment. The decision keeps
  that recommendation and a JSON snapshot of the pilot's go/no-go summary rows
  (:func:`metrics.service.summary_export_frame`) as of the day the person judged.
- **Stage gates** (:func:`stage_gate`): moves follow :data:`NEXT_STAGES`
  (discovery -> pilot -> production -> transition; any stage -> stopped). Moving to
  ``production`` needs the latest decision to be ``go`` and no open checklist item;
  moving to ``stopped`` needs the latest decision to be ``no_go``.

The pure functions at the end (``recommendation_stage_counts``, ``decisions_due``,
``contradicting_decisions``) build the Portfolio page's view of decisions from frames.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np
import pandas as pd
import sqlalchemy as sa
from pydantic import ValidationError
from sqlmodel import Session

from metrics import computations as C
from metrics.access import record_audit, require_role
from metrics.errors import StoreError, validation_message
from metrics.models import (
    ChecklistItem,
    ChecklistItemCreate,
    ChecklistTick,
    Decision,
    DecisionCreate,
    DecisionKind,
    Pilot,
    Role,
    Stage,
    utcnow,
)

#: The readiness and governance items every serious AI pilot must clear before
#: production (the issue's list), in the order they are shown.
DEFAULT_CHECKLIST: tuple[str, ...] = (
    "Use case defined with a measurable success metric",
    "Data accessible, lawful and of sufficient quality",
    "Stakeholders aligned on what the system should do",
    "Leadership backing for governance",
    "Access controls on the system, its prompts and its outputs",
    "Environments separated (development, test, production)",
    "Rules for logging prompts and outputs",
    "Controls on the vendor's third-party tools",
    "Documentation of prompts, pipelines, architecture and deployment held by us",
    "Code, configuration and IP owned by us by contract",
    "Knowledge-transfer plan agreed",
)

#: Where a pilot may move from each stage (stage gates add conditions on top).
NEXT_STAGES: dict[str, tuple[str, ...]] = {
    Stage.discovery.value: (Stage.pilot.value, Stage.stopped.value),
    Stage.pilot.value: (Stage.production.value, Stage.stopped.value),
    Stage.production.value: (Stage.transition.value, Stage.stopped.value),
    Stage.transition.value: (Stage.stopped.value,),
    Stage.stopped.value: (),
}
#: Stages a new pilot may be created in (the others are reached through their gate).
INITIAL_STAGES: tuple[str, ...] = (Stage.discovery.value, Stage.pilot.value)

#: Days ahead of the as-of date in which a decision date counts as "due" (2 weeks).
DUE_WITHIN_DAYS = 14

# Column names of the frames below.
ITEM_ID = "item_id"
DECISION_ID = "decision_id"
DECISION = "decision"
DECIDED_BY = "decided_by"
DECIDED_AT = "decided_at"
RATIONALE = "rationale"
AS_OF = "as_of"
DECISION_RECOMMENDATION = "recommendation_then"
DAYS_TO_DECISION = "days_to_decision"

CHECKLIST_COLUMNS = [
    ITEM_ID,
    C.PILOT_ID,
    "position",
    "item",
    "done",
    "evidence",
    "by",
    "at",
    "version",
]
DECISION_COLUMNS = [
    DECISION_ID,
    C.PILOT_ID,
    C.PILOT,
    DECISION,
    DECISION_RECOMMENDATION,
    RATIONALE,
    AS_OF,
    DECIDED_BY,
    DECIDED_AT,
]


def _frame(session: Session, stmt, columns: list[str]) -> pd.DataFrame:
    rows = session.connection().execute(stmt).all()
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
    return pd.DataFrame(dict(zip(columns, (list(c) for c in zip(*rows, strict=True)), strict=True)))


def _as_id(x: object) -> int | None:
    """``x`` as a database id (Python or numpy integer), else None."""
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)):
        return None
    return int(x)


def _id_or(x: object) -> object:
    """``x`` as a Python int when it is an integer id, else unchanged (for validation)."""
    pid = _as_id(x)
    return x if pid is None else pid


def _pilot(session: Session, pilot_id: int) -> Pilot:
    pid = _as_id(pilot_id)
    pilot = session.get(Pilot, pid) if pid is not None else None
    if pilot is None:
        raise StoreError(f"no pilot with id {pilot_id!r}: pick an existing pilot")
    return pilot


# =========================================================================== reads


def checklist_frame(session: Session, *, pilot_id: int | None = None) -> pd.DataFrame:
    """Stored checklist items, in display order (pilot, position, id).

    Returns:
        Columns item_id, pilot_id, position, version (int64), item, evidence, by
        (object), done (bool), at (datetime64[ns, UTC], NaT = never ticked or
        un-ticked).
    """
    K = ChecklistItem
    stmt = sa.select(
        K.id, K.pilot_id, K.position, K.item, K.done, K.evidence, K.by, K.at, K.version
    )
    if pilot_id is not None:
        stmt = stmt.where(K.pilot_id == pilot_id)
    df = _frame(session, stmt.order_by(K.pilot_id, K.position, K.id), CHECKLIST_COLUMNS)
    for col in (ITEM_ID, C.PILOT_ID, "position", "version"):
        df[col] = df[col].astype("int64")
    df["done"] = df["done"].astype(bool)
    df["at"] = pd.to_datetime(df["at"], utc=True)
    return df


def open_checklist_items(session: Session, *, pilot_id: int | None = None) -> dict[int, list[str]]:
    """Open (not ticked) checklist items per pilot: ``{pilot_id: [item, ...]}``.

    Every pilot is a key (``pilot_id`` given: only that one). A pilot without any
    stored item counts as having every :data:`DEFAULT_CHECKLIST` item open. Two
    queries (pilot ids, open items).
    """
    ids_stmt = sa.select(Pilot.id)
    if pilot_id is not None:
        ids_stmt = ids_stmt.where(Pilot.id == pilot_id)
    ids = [int(x) for x in session.execute(ids_stmt).scalars()]
    K = ChecklistItem
    stmt = sa.select(K.pilot_id, K.item, K.done).order_by(K.pilot_id, K.position, K.id)
    if pilot_id is not None:
        stmt = stmt.where(K.pilot_id == pilot_id)
    has_items: set[int] = set()
    out: dict[int, list[str]] = {pid: [] for pid in ids}
    for pid, item, done in session.execute(stmt).all():
        has_items.add(int(pid))
        if not done:
            out.setdefault(int(pid), []).append(item)
    for pid in ids:
        if pid not in has_items:
            out[pid] = list(DEFAULT_CHECKLIST)
    return out


def decisions_frame(session: Session, *, pilot_id: int | None = None) -> pd.DataFrame:
    """Recorded decisions, oldest first (without their snapshots).

    Returns:
        Columns decision_id, pilot_id (int64), pilot, decision, recommendation_then
        (the recommendation when it was recorded), rationale, decided_by (object),
        as_of (datetime64[ns], the day the person judged at), decided_at
        (datetime64[ns, UTC]).
    """
    D = Decision
    stmt = sa.select(
        D.id,
        D.pilot_id,
        Pilot.name,
        D.decision,
        D.recommendation,
        D.rationale,
        D.as_of,
        D.decided_by,
        D.decided_at,
    ).join(Pilot, Pilot.id == D.pilot_id)
    if pilot_id is not None:
        stmt = stmt.where(D.pilot_id == pilot_id)
    df = _frame(session, stmt.order_by(D.id), DECISION_COLUMNS)
    return _typed_decisions(df)


def _typed_decisions(df: pd.DataFrame) -> pd.DataFrame:
    for col in (DECISION_ID, C.PILOT_ID):
        df[col] = df[col].astype("int64")
    df[AS_OF] = pd.to_datetime(df[AS_OF]).astype("datetime64[ns]")
    df[DECIDED_AT] = pd.to_datetime(df[DECIDED_AT], utc=True)
    return df


def latest_decisions_frame(session: Session, *, judged_by: date | None = None) -> pd.DataFrame:
    """The latest (most recently recorded) decision of every pilot that has one.

    Args:
        judged_by: only decisions judged on evidence as of this day or earlier (their
            ``as_of``), e.g. the as-of date of a summary; None = every decision.

    Returns:
        :func:`decisions_frame` columns, one row per pilot, sorted by pilot_id.
    """
    D = Decision
    latest = sa.select(sa.func.max(D.id)).group_by(D.pilot_id)
    if judged_by is not None:
        latest = latest.where(D.as_of <= judged_by)
    latest = latest.scalar_subquery()
    stmt = (
        sa.select(
            D.id,
            D.pilot_id,
            Pilot.name,
            D.decision,
            D.recommendation,
            D.rationale,
            D.as_of,
            D.decided_by,
            D.decided_at,
        )
        .join(Pilot, Pilot.id == D.pilot_id)
        .where(D.id.in_(latest))
        .order_by(D.pilot_id)
    )
    return _typed_decisions(_frame(session, stmt, DECISION_COLUMNS))


def decision_snapshot(session: Session, *, decision_id: int) -> list[dict]:
    """The summary rows a decision's author saw (JSON records, see :func:`record_decision`).

    Raises:
        StoreError: no decision with that id.
    """
    raw = session.execute(sa.select(Decision.snapshot).where(Decision.id == decision_id)).scalar()
    if raw is None:
        raise StoreError(f"no decision with id {decision_id!r}")
    return json.loads(raw)


def _latest_decision(session: Session, pilot_id: int) -> Decision | None:
    stmt = (
        sa.select(Decision)
        .where(Decision.pilot_id == pilot_id)
        .order_by(Decision.id.desc())
        .limit(1)
    )
    return session.execute(stmt).scalars().first()


# =========================================================================== checklist


def ensure_default_checklist(*, session: Session, actor: str, pilot_id: int) -> int:
    """Store the :data:`DEFAULT_CHECKLIST` items a pilot does not have yet (open).

    Called by :func:`metrics.store.save_pilot` when a pilot is created, and by the
    Pilot page for pilots created before checklists existed. Idempotent; when another
    writer stores them at the same moment, theirs are kept.

    Returns:
        How many items were created (0 when all were there).

    Raises:
        PermissionDenied: the actor is not an editor or admin.
        StoreError: unknown pilot.
    """
    require_role(
        session=session, actor=actor, needed=Role.editor, action="creating a pilot's checklist"
    )
    pilot = _pilot(session, pilot_id)
    pilot_id = pilot.id
    existing = session.execute(
        sa.select(ChecklistItem.item, ChecklistItem.position).where(
            ChecklistItem.pilot_id == pilot_id
        )
    ).all()
    have = {_norm(item) for item, _ in existing}
    missing = [item for item in DEFAULT_CHECKLIST if _norm(item) not in have]
    if not missing:
        return 0
    first = max((pos for _, pos in existing), default=0) + 1
    rows = [
        {
            "pilot_id": pilot_id,
            "position": first + i,
            "item": item,
            "done": False,
            "evidence": "",
            "by": "",
            "at": None,
            "version": 1,
        }
        for i, item in enumerate(missing)
    ]
    try:
        with session.begin_nested():
            session.execute(sa.insert(ChecklistItem.__table__), rows)
    except sa.exc.IntegrityError:
        return 0  # another writer stored them first: theirs are kept
    record_audit(
        session=session,
        actor=actor,
        entity="checklist",
        entity_id=pilot_id,
        action="create_defaults",
        detail={"pilot": pilot.name, "items": missing},
    )
    return len(missing)


def _norm(text: str) -> str:
    """Comparison form of an item: case-folded, runs of whitespace as one space."""
    return " ".join(text.split()).casefold()


def add_checklist_item(*, session: Session, actor: str, pilot_id: int, item: str) -> int:
    """Add an open item at the end of a pilot's checklist.

    Returns:
        The new item's id.

    Raises:
        PermissionDenied: the actor is not an editor or admin.
        StoreError: unknown pilot; the item is empty, longer than 500 characters, holds
            line breaks or control characters, or is already on the checklist
            (compared ignoring case and repeated spaces). Nothing is written.
    """
    require_role(session=session, actor=actor, needed=Role.editor, action="adding a checklist item")
    try:
        item_in = ChecklistItemCreate(pilot_id=_id_or(pilot_id), item=item)
    except ValidationError as exc:
        raise StoreError(f"checklist item not added: {validation_message(exc)}") from None
    pilot = _pilot(session, pilot_id)
    pilot_id = pilot.id
    ensure_default_checklist(session=session, actor=actor, pilot_id=pilot_id)
    existing = session.execute(
        sa.select(ChecklistItem.item, ChecklistItem.position).where(
            ChecklistItem.pilot_id == pilot_id
        )
    ).all()
    for text, _ in existing:
        if _norm(text) == _norm(item_in.item):
            raise StoreError(
                f"checklist item not added: {pilot.name!r} already has the item {text!r}; "
                "write a different item or tick the existing one"
            )
    row = ChecklistItem(
        pilot_id=pilot_id,
        position=max((pos for _, pos in existing), default=0) + 1,
        item=item_in.item,
        done=False,
        evidence="",
        by="",
        at=None,
        version=1,
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except sa.exc.IntegrityError:
        raise StoreError(
            f"checklist item not added: {pilot.name!r} already has the item {item_in.item!r} "
            "(just added by someone else)"
        ) from None
    record_audit(
        session=session,
        actor=actor,
        entity="checklist",
        entity_id=row.id,
        action="create",
        detail={"pilot": pilot.name, "after": {"item": row.item, "position": row.position}},
    )
    return int(row.id)


def tick_checklist_item(
    *,
    session: Session,
    actor: str,
    item_id: int,
    evidence: str,
    expected_version: int | None = None,
) -> bool:
    """Tick an item as done, with the evidence that it is (a link, a document, a name).

    Ticking an item that is already done with the same evidence changes nothing;
    with other evidence it replaces the evidence (recorded like a tick).

    Args:
        expected_version: the item's version the user saw; refused when it changed.

    Returns:
        True when something was written.

    Raises:
        PermissionDenied: the actor is not an editor or admin.
        StoreError: unknown item, empty evidence, or the item was changed meanwhile.
    """
    return _set_done(
        session=session,
        actor=actor,
        tick=_tick_in(item_id, True, evidence, expected_version, "not ticked"),
    )


def untick_checklist_item(
    *,
    session: Session,
    actor: str,
    item_id: int,
    reason: str = "",
    expected_version: int | None = None,
) -> bool:
    """Re-open a ticked item; who and when are recorded, the old evidence goes to the
    audit record (with ``reason``) and is cleared on the item.

    Returns:
        True when the item was re-opened.

    Raises:
        PermissionDenied: the actor is not an editor or admin.
        StoreError: unknown item, the item is not ticked, or it was changed meanwhile.
    """
    return _set_done(
        session=session,
        actor=actor,
        tick=_tick_in(item_id, False, reason, expected_version, "not un-ticked"),
    )


def _tick_in(
    item_id: int, done: bool, text: str, expected_version: int | None, what: str
) -> ChecklistTick:
    try:
        return ChecklistTick(
            item_id=_id_or(item_id),
            done=done,
            evidence=text or "",
            expected_version=expected_version,
        )
    except ValidationError as exc:
        raise StoreError(f"checklist item {what}: {validation_message(exc)}") from None


def _set_done(*, session: Session, actor: str, tick: ChecklistTick) -> bool:
    action = "ticking a checklist item" if tick.done else "un-ticking a checklist item"
    require_role(session=session, actor=actor, needed=Role.editor, action=action)
    what = "not ticked" if tick.done else "not un-ticked"
    row = session.get(ChecklistItem, tick.item_id)
    if row is None:
        raise StoreError(f"checklist item {what}: no checklist item with id {tick.item_id!r}")
    if tick.expected_version is not None and tick.expected_version != row.version:
        raise StoreError(
            f"checklist item {what}: {row.item!r} was changed by {row.by or 'someone else'} "
            "meanwhile; reload the page and try again"
        )
    if tick.done and not tick.evidence:
        raise StoreError(
            f"checklist item {what}: {row.item!r} needs evidence to be ticked; write what "
            "shows it is in place (a document, a link, a name)"
        )
    if not tick.done and not row.done:
        raise StoreError(f"checklist item {what}: {row.item!r} is already open")
    if tick.done and row.done and row.evidence == tick.evidence:
        return False
    before = {"done": row.done, "evidence": row.evidence, "by": row.by, "at": row.at}
    now = utcnow()
    after = {
        "done": tick.done,
        "evidence": tick.evidence if tick.done else "",
        "by": actor,
        "at": now,
    }
    t = ChecklistItem.__table__
    result = session.execute(
        sa.update(t)
        .where(t.c.id == row.id, t.c.version == row.version)
        .values(**after, version=row.version + 1)
    )
    if result.rowcount != 1:
        raise StoreError(
            f"checklist item {what}: {row.item!r} was changed by someone else meanwhile; "
            "reload the page and try again"
        )
    detail: dict = {"pilot_id": row.pilot_id, "item": row.item, "before": before, "after": after}
    if not tick.done and tick.evidence:
        detail["reason"] = tick.evidence
    record_audit(
        session=session,
        actor=actor,
        entity="checklist",
        entity_id=row.id,
        action="tick" if tick.done else "untick",
        detail=detail,
    )
    session.expire(row)
    return True


# =========================================================================== decisions


@dataclass(frozen=True)
class RecordedDecision:
    """Outcome of :func:`record_decision`."""

    decision_id: int
    decision: str
    recommendation: str
    snapshot_rows: int
    #: SHA-256 of the decision report's inputs stored with it (metrics.report.inputs_hash).
    report_hash: str | None = None


def _plain(v):
    """A JSON-ready scalar: NaN/NaT/None -> None, numpy -> Python, timestamps -> ISO."""
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NaT:
        return None
    if isinstance(v, np.generic):
        v = v.item()
        if isinstance(v, float) and math.isnan(v):
            return None
        return v
    if isinstance(v, (pd.Timestamp, datetime, date)):
        return v.isoformat()
    if pd.api.types.is_scalar(v) and pd.isna(v):
        return None
    return v


def snapshot_records(rows: pd.DataFrame) -> list[dict]:
    """Summary rows as JSON records: column -> value, undefined numbers as ``None``."""
    return [{k: _plain(v) for k, v in rec.items()} for rec in rows.to_dict("records")]


#: ``judge(session, pilot_id, as_of) -> (recommendation, summary rows)``: how
#: :func:`record_decision` learns the pilot's recommendation and the summary the
#: person saw. :func:`metrics.service.record_decision` passes the service's own (this
#: module sits below the service and never imports it).
Judge = Callable[[Session, int, date], tuple[str, pd.DataFrame]]
#: ``hash_report(session, pilot_id, as_of) -> SHA-256 hex`` of the pilot's decision report
#: as of that day (:func:`metrics.service.report_hash_of`; passed in for the same reason).
ReportHasher = Callable[[Session, int, date], str]


def record_decision(
    *,
    session: Session,
    actor: str,
    pilot_id: int,
    decision: str,
    rationale: str = "",
    as_of: date,
    judge: Judge,
    today: date,
    report_hash: str | None = None,
    hash_report: ReportHasher | None = None,
) -> RecordedDecision:
    """Record a person's signed go / extend / no_go decision on a pilot.

    Call it through :func:`metrics.service.record_decision`, which supplies ``judge``,
    ``today`` and ``hash_report``. The recommendation is computed as of ``as_of`` (the
    day the person judged, by ``judge``); a decision that differs from it needs a
    rationale, and so does any decision judged as of a day other than ``today``,
    so back-dating cannot bypass the rule.
    ``snapshot`` stores the pilot's rows of
    :func:`metrics.service.summary_export_frame` as of ``as_of`` as JSON records
    (column -> value; undefined numbers ``null``; the decision columns hold the
    decision before this one). ``report_hash`` is the SHA-256 of the decision report
    (``hash_report`` of the pilot as of ``as_of``) the person saw; it must equal the
    hash of the report now, else the evidence changed since they looked and the
    decision is refused. Without it (CLI, API) the hash of the report as of ``as_of``
    is computed and stored.

    Raises:
        PermissionDenied: the actor is not an admin.
        StoreError: unknown pilot, decision not go/extend/no_go, as_of outside
            1900..2199 or after today, rationale too long, or a decision that differs
            from the recommendation or is judged as of another day than today, without
            a rationale; a ``report_hash`` that differs from the report now (the
            evidence changed since it was shown). Nothing is written.
    """
    require_role(session=session, actor=actor, needed=Role.admin, action="recording a decision")
    try:
        d_in = DecisionCreate(
            pilot_id=_id_or(pilot_id), decision=decision, rationale=rationale or "", as_of=as_of
        )
    except ValidationError as exc:
        raise StoreError(f"decision not saved: {validation_message(exc)}") from None
    pilot = _pilot(session, pilot_id)
    if d_in.as_of > today:
        raise StoreError(
            f"decision not saved: the evidence date {d_in.as_of.isoformat()} is after today "
            f"({today.isoformat()}); judge as of today or an earlier day"
        )
    rec, summary = judge(session, int(pilot.id), d_in.as_of)
    if d_in.decision.value != rec and not d_in.rationale:
        raise StoreError(
            f"decision not saved: {d_in.decision.value} on {pilot.name!r} differs from the "
            f"recommendation {rec} as of {d_in.as_of.isoformat()}; write a rationale that "
            "says why"
        )
    if d_in.as_of != today and not d_in.rationale:
        # A decision is signed today; judging it on an earlier day's evidence (e.g.
        # recording a meeting's decision afterwards) is allowed but must be explained,
        # or the as-of date would be a way around the rationale rule above.
        raise StoreError(
            f"decision not saved: it is judged on the evidence as of {d_in.as_of.isoformat()}, "
            f"not today ({today.isoformat()}); write a rationale that says why (e.g. "
            '"recording the steering committee decision of that day")'
        )
    now_hash = hash_report(session, int(pilot.id), d_in.as_of) if hash_report else None
    if report_hash is not None and now_hash is not None and report_hash != now_hash:
        raise StoreError(
            f"decision not saved: the evidence of {pilot.name!r} as of "
            f"{d_in.as_of.isoformat()} changed since the report you saw was made (report "
            f"{report_hash[:12]}…, now {now_hash[:12]}…); look at it again and decide"
        )
    rows = snapshot_records(summary)
    row = Decision(
        pilot_id=pilot.id,
        decision=d_in.decision.value,
        recommendation=rec,
        rationale=d_in.rationale,
        as_of=d_in.as_of,
        decided_by=actor,
        decided_at=utcnow(),
        snapshot=json.dumps(rows, ensure_ascii=False, allow_nan=False),
        report_hash=now_hash,
    )
    session.add(row)
    session.flush()
    record_audit(
        session=session,
        actor=actor,
        entity="decision",
        entity_id=row.id,
        action="create",
        detail={
            "pilot": pilot.name,
            "decision": row.decision,
            "recommendation": rec,
            "rationale": row.rationale,
            "as_of": row.as_of,
        },
    )
    return RecordedDecision(int(row.id), row.decision, rec, len(rows), now_hash)


# =========================================================================== stage gates


@dataclass(frozen=True)
class GateCheck:
    """Whether a pilot may move to a stage, and why not.

    Attributes:
        requirements: (requirement in words, met) pairs, for showing the gate.
        blockers: what to do first, one sentence each; empty when the move is allowed.
    """

    pilot: str
    from_stage: str
    to_stage: str
    requirements: list[tuple[str, bool]] = field(default_factory=list)
    blockers: list[str] = field(default_factory=list)

    @property
    def allowed(self) -> bool:
        """True when nothing blocks the move."""
        return not self.blockers

    def message(self) -> str:
        """The refusal message: every blocker, and that nothing was changed."""
        return (
            f"{self.pilot!r} not moved from {self.from_stage} to {self.to_stage}: "
            + "; ".join(self.blockers)
            + ". Nothing was changed."
        )


def _decision_words(d: Decision | None) -> str:
    if d is None:
        return "no decision is recorded yet"
    return f"the latest decision is {d.decision} by {d.decided_by} on {d.decided_at:%Y-%m-%d}"


def stage_gate(session: Session, *, pilot_id: int, to_stage: str) -> GateCheck:
    """Check a stage move against :data:`NEXT_STAGES` and the stage gates.

    Raises:
        StoreError: unknown pilot or stage.
    """
    pilot = _pilot(session, pilot_id)
    try:
        new = Stage(to_stage).value
    except ValueError:
        raise StoreError(
            f"unknown stage {to_stage!r}; use one of {', '.join(s.value for s in Stage)}"
        ) from None
    return _gate(session, name=pilot.name, pilot_id=pilot.id, from_stage=pilot.stage, to_stage=new)


def _gate(
    session: Session, *, name: str, pilot_id: int | None, from_stage: str | None, to_stage: str
) -> GateCheck:
    gate = GateCheck(pilot=name, from_stage=from_stage or "(new)", to_stage=to_stage)
    if from_stage is None:
        if to_stage not in INITIAL_STAGES:
            gate.blockers.append(
                f"a new pilot starts in {' or '.join(INITIAL_STAGES)}; create it there, "
                f"then record a decision and move it to {to_stage} through its stage gate"
            )
        return gate
    if from_stage == to_stage:
        return gate
    nxt = NEXT_STAGES.get(from_stage, ())
    if to_stage not in nxt:
        gate.blockers.append(
            f"a pilot in {from_stage} can move only to {' or '.join(nxt)}"
            if nxt
            else f"a {from_stage} pilot stays {from_stage}; start a new pilot instead"
        )
        return gate
    latest = _latest_decision(session, pilot_id) if pilot_id is not None else None
    if to_stage == Stage.production.value:
        ok = latest is not None and latest.decision == DecisionKind.go.value
        gate.requirements.append(("latest recorded decision must be go", ok))
        if not ok:
            gate.blockers.append(f"record a go decision first ({_decision_words(latest)})")
        open_items = open_checklist_items(session, pilot_id=pilot_id).get(pilot_id, [])
        gate.requirements.append(
            ("every checklist item must be ticked with evidence", not open_items)
        )
        if open_items:
            gate.blockers.append(
                f"tick the {len(open_items)} open checklist item(s) with evidence first: "
                + "; ".join(open_items)
            )
    elif to_stage == Stage.stopped.value:
        ok = latest is not None and latest.decision == DecisionKind.no_go.value
        gate.requirements.append(("latest recorded decision must be no_go", ok))
        if not ok:
            gate.blockers.append(f"record a no_go decision first ({_decision_words(latest)})")
    return gate


def check_stage_move(
    *, session: Session, name: str, pilot_id: int | None, from_stage: str | None, to_stage: str
) -> None:
    """Refuse a stage move that its gate does not allow (used by :mod:`metrics.store`
    before it writes anything).

    Args:
        name: the pilot's name (for the message).
        pilot_id: None for a pilot being created.
        from_stage: the stored stage, or None for a pilot being created.
        to_stage: a :class:`metrics.models.Stage` value.

    Raises:
        StoreError: :meth:`GateCheck.message` -- what to record first.
    """
    gate = _gate(session, name=name, pilot_id=pilot_id, from_stage=from_stage, to_stage=to_stage)
    if not gate.allowed:
        raise StoreError(gate.message())


# =========================================================================== portfolio view


def recommendation_stage_counts(pilots: pd.DataFrame) -> pd.DataFrame:
    """Pilots counted per recommendation (rows) and stage (columns).

    Args:
        pilots: columns recommendation, stage (``metrics.service.Evaluation.pilots``).

    Returns:
        Index recommendation in :data:`metrics.computations.RECOMMENDATIONS` order;
        columns every :class:`metrics.models.Stage` in order, then ``total``; int64.
    """
    stages = [s.value for s in Stage]
    table = pd.crosstab(pilots[C.RECOMMENDATION], pilots["stage"]) if not pilots.empty else None
    out = pd.DataFrame(
        0,
        index=pd.Index(list(C.RECOMMENDATIONS), name=C.RECOMMENDATION),
        columns=stages,
        dtype="int64",
    )
    if table is not None:
        table = table.reindex(index=out.index, columns=stages, fill_value=0)
        out = table.fillna(0).astype("int64")
    out.columns.name = None
    out["total"] = out.sum(axis=1).astype("int64")
    return out


def _with_latest(pilots: pd.DataFrame, latest: pd.DataFrame) -> pd.DataFrame:
    keep = [C.PILOT_ID, DECISION, DECISION_RECOMMENDATION, RATIONALE, DECIDED_BY, DECIDED_AT]
    right = latest[keep] if not latest.empty else pd.DataFrame(columns=keep)
    right = right.astype({C.PILOT_ID: "int64"})
    left = pilots.astype({C.PILOT_ID: "int64"})
    return left.merge(right, on=C.PILOT_ID, how="left")


def _days_after(dates: pd.Series, as_of: date) -> pd.Series:
    """Whole days from ``as_of`` to each of ``dates`` (int64, negative when before).

    Counted in day units: a nanosecond difference overflows int64 beyond 292 years (a
    decision date in 1900 judged as of 2199 is a valid question)."""
    day_numbers = dates.to_numpy().astype("datetime64[D]").astype("int64")
    as_of_number = np.datetime64(as_of, "D").astype("int64")
    return pd.Series(day_numbers - as_of_number, index=dates.index, dtype="int64")


def decisions_due(
    pilots: pd.DataFrame,
    latest: pd.DataFrame,
    *,
    as_of: date,
    within_days: int = DUE_WITHIN_DAYS,
) -> pd.DataFrame:
    """Pilots whose decision date is 0..``within_days`` days after ``as_of``.

    Args:
        pilots: columns pilot_id, pilot, stage, decision_date (datetime64),
            recommendation.
        latest: :func:`latest_decisions_frame`.

    Returns:
        Columns pilot_id, pilot, stage, decision_date (datetime64[ns]),
        days_to_decision (int64, decision_date - as_of), recommendation, decision
        (latest recorded, NaN = none); soonest first.
    """
    cols = [
        C.PILOT_ID,
        C.PILOT,
        "stage",
        C.DECISION_DATE,
        DAYS_TO_DECISION,
        C.RECOMMENDATION,
        DECISION,
    ]
    if pilots.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in cols})
    df = _with_latest(pilots, latest)
    dd = pd.to_datetime(df[C.DECISION_DATE]).astype("datetime64[ns]")
    days = _days_after(dd, as_of)
    df = df.assign(**{C.DECISION_DATE: dd, DAYS_TO_DECISION: days})
    df = df[(days >= 0) & (days <= within_days)]
    df = df.sort_values([DAYS_TO_DECISION, C.PILOT], kind="stable")
    df[DAYS_TO_DECISION] = df[DAYS_TO_DECISION].astype("int64")
    return df[cols].reset_index(drop=True)


DAYS_OVERDUE = "days_overdue"


def decisions_overdue(pilots: pd.DataFrame, latest: pd.DataFrame, *, as_of: date) -> pd.DataFrame:
    """Pilots whose decision date has passed by ``as_of`` with no decision recorded.

    "Recorded" means as of that day: pass ``latest`` from
    :func:`latest_decisions_frame` with ``judged_by=as_of``, so a Portfolio judged as
    of a past day calls out what was overdue then.

    Args:
        pilots: columns pilot_id, pilot, stage, decision_date (datetime64),
            recommendation.
        latest: :func:`latest_decisions_frame`.

    Returns:
        Columns pilot_id, pilot, stage, decision_date (datetime64[ns]), days_overdue
        (int64, as_of - decision_date, >= 1), recommendation; longest overdue first.
    """
    cols = [C.PILOT_ID, C.PILOT, "stage", C.DECISION_DATE, DAYS_OVERDUE, C.RECOMMENDATION]
    if pilots.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in cols})
    df = _with_latest(pilots, latest)
    dd = pd.to_datetime(df[C.DECISION_DATE]).astype("datetime64[ns]")
    days = -_days_after(dd, as_of)
    df = df.assign(**{C.DECISION_DATE: dd, DAYS_OVERDUE: days})
    df = df[(days > 0) & df[DECISION].isna()]
    df = df.sort_values([DAYS_OVERDUE, C.PILOT], ascending=[False, True], kind="stable")
    df[DAYS_OVERDUE] = df[DAYS_OVERDUE].astype("int64")
    return df[cols].reset_index(drop=True)


def contradicting_decisions(pilots: pd.DataFrame, latest: pd.DataFrame) -> pd.DataFrame:
    """Pilots whose latest recorded decision differs from their current recommendation.

    Any difference counts (as for the rationale rule): e.g. ``go`` while the pilot is
    now recommended ``no_go`` or ``insufficient_data``.

    Returns:
        Columns pilot_id, pilot, stage, recommendation (current), decision,
        recommendation_then, rationale, decided_by, decided_at; sorted by pilot.
    """
    cols = [
        C.PILOT_ID,
        C.PILOT,
        "stage",
        C.RECOMMENDATION,
        DECISION,
        DECISION_RECOMMENDATION,
        RATIONALE,
        DECIDED_BY,
        DECIDED_AT,
    ]
    if pilots.empty or latest.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in cols})
    df = _with_latest(pilots, latest)
    df = df[df[DECISION].notna() & (df[DECISION] != df[C.RECOMMENDATION])]
    return df.sort_values(C.PILOT, kind="stable")[cols].reset_index(drop=True)


__all__ = [
    "DEFAULT_CHECKLIST",
    "NEXT_STAGES",
    "GateCheck",
    "RecordedDecision",
    "add_checklist_item",
    "check_stage_move",
    "checklist_frame",
    "contradicting_decisions",
    "decision_snapshot",
    "decisions_due",
    "decisions_frame",
    "decisions_overdue",
    "ensure_default_checklist",
    "latest_decisions_frame",
    "open_checklist_items",
    "recommendation_stage_counts",
    "record_decision",
    "stage_gate",
    "tick_checklist_item",
    "untick_checklist_item",
]
