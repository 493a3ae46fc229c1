"""SQLModel tables and their model families (``XBase``, ``X(table=True)``, ``XCreate``...).

Table models carry no validation of their own (SQLModel does not validate ``table=True``
models); every write goes through :mod:`metrics.store`, which validates with the
``*Create`` / ``*Update`` models first. Enumerated fields are stored as plain strings
(portable across SQLite and PostgreSQL, no database enum type to migrate).
"""

from __future__ import annotations

import math
import re
import unicodedata
from datetime import UTC, date, datetime
from enum import StrEnum

import sqlalchemy as sa
from pydantic import field_validator, model_validator
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC timestamps on every backend.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones, so values are stored
    as naive UTC and UTC is attached again when read. Naive input is refused, so no
    local time can slip in.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        """Aware datetime -> UTC (naive UTC on SQLite); naive input raises ValueError."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: timestamps must be timezone-aware")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        """Stored value -> timezone-aware UTC datetime."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


#: Earliest and latest dates PilotGate accepts anywhere (weeks, pilot dates, --as-of).
#: pandas timestamps cover 1677..2262; business data outside 1900..2199 is a typo.
EARLIEST_DATE = date(1900, 1, 1)
LATEST_DATE = date(2199, 12, 31)
#: Largest magnitude accepted for a measured value or metric bound: beyond it a mean
#: of a few values could overflow to infinity.
MAX_ABS_VALUE = 1e15
#: Characters never allowed in names and notes (C0 and C1 control characters, NUL,
#: DEL; tab and line breaks are handled by LINE_BREAK_RE).
CONTROL_CHARS_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
LINE_BREAK_RE = re.compile(r"[\r\n\t\u2028\u2029]")
#: Bidirectional formatting characters (Unicode UAX #9): embeddings and overrides
#: U+202A..U+202E, isolates U+2066..U+2069, and the invisible marks LRM U+200E, RLM
#: U+200F, ALM U+061C. In a one-line name they can make "admin\u202e" look like another
#: name or reorder what a table shows ("Trojan Source"), so names refuse them.
BIDI_CONTROL_RE = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
#: Largest whole number an integer column holds on every backend (PostgreSQL
#: ``integer``); a larger one is refused with a message, never an overflow.
MAX_DB_INT = 2**31 - 1
#: Largest trailing window / minimum number of pilot weeks: ten years of weeks.
MAX_WEEKS = 520


def check_date_range(d: date, what: str) -> date:
    """``d`` when inside EARLIEST_DATE..LATEST_DATE, else ValueError naming ``what``."""
    if not EARLIEST_DATE <= d <= LATEST_DATE:
        raise ValueError(
            f"{what} {d.isoformat()} is outside {EARLIEST_DATE.year}..{LATEST_DATE.year}: "
            "check the year"
        )
    return d


def check_text(v: str, what: str, *, single_line: bool = True) -> str:
    """``v`` unless it holds control characters (or, when ``single_line``, line breaks
    or bidirectional formatting characters: :data:`BIDI_CONTROL_RE`).

    Raises:
        ValueError: naming ``what`` and the kind of character.
    """
    if CONTROL_CHARS_RE.search(v) or (single_line and LINE_BREAK_RE.search(v)):
        kind = "control characters or line breaks" if single_line else "control characters"
        raise ValueError(f"{what} must not contain {kind}")
    if single_line and BIDI_CONTROL_RE.search(v):
        raise ValueError(
            f"{what} must not contain bidirectional formatting characters "
            "(U+202A..U+202E, U+2066..U+2069, U+200E, U+200F, U+061C)"
        )
    return v


def clean_name(v: str, what: str = "name") -> str:
    """The one normalisation of a name: actor and user names, proxy-header values, pilot
    names. Unicode NFC (so a name typed with a combining accent is the same name as
    the precomposed one), trimmed; one line without control or bidirectional
    formatting characters (:func:`check_text`). Length limits are the caller's.

    Raises:
        ValueError: naming ``what`` and the character kind refused.
    """
    return check_text(unicodedata.normalize("NFC", v).strip(), what)


def check_value(v: float, what: str = "value") -> float:
    """``v`` when finite and within ±MAX_ABS_VALUE, else ValueError."""
    if not math.isfinite(v):
        raise ValueError(f"{what} must be a finite number")
    if abs(v) > MAX_ABS_VALUE:
        raise ValueError(f"{what} {v:g} is too large (limit ±{MAX_ABS_VALUE:g})")
    return v


#: Longest normalised pilot name key: casefolding can lengthen a name ("ß" -> "ss"; at
#: most three characters per character), so the key column is three times the name's.
NAME_KEY_MAX = 600
#: Runs of spaces and tabs (Unicode space separators included) that a name collapses to
#: one space. Line breaks and control characters are not spacing: check_text refuses them.
_WHITESPACE_RE = re.compile("[\t \u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+")


def collapse_spaces(name: str) -> str:
    """``name`` trimmed, every inner run of white space one space: how a pilot name is
    stored ("Claims  triage agent " -> "Claims triage agent")."""
    return _WHITESPACE_RE.sub(" ", name).strip()


def pilot_name_key(name: str) -> str:
    """The key that makes pilot names unique ignoring case and spacing (DESIGN §3):
    trimmed, inner white space collapsed, casefolded. "Claims  triage Agent " and
    "claims triage agent" share the key "claims triage agent"."""
    return collapse_spaces(name).casefold()


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


class Stage(StrEnum):
    """Pilot stages (DESIGN §3): discovery -> pilot -> production -> transition, or stopped."""

    discovery = "discovery"
    pilot = "pilot"
    production = "production"
    transition = "transition"
    stopped = "stopped"


class Direction(StrEnum):
    """Which way is better for a metric."""

    lower_is_better = "lower_is_better"
    higher_is_better = "higher_is_better"


class MetricRole(StrEnum):
    """Primary metrics must improve; guardrail metrics must not worsen beyond their margin."""

    primary = "primary"
    guardrail = "guardrail"


class RevisionAction(StrEnum):
    """What a measurement revision records (``restore`` brings back a deleted value)."""

    create = "create"
    update = "update"
    delete = "delete"
    restore = "restore"


class Role(StrEnum):
    """What a user may do (ordered: each role includes the ones before it).

    viewer: read and export. editor: also enter, import, correct values and tick
    checklist items. admin: also pilots, metrics, users, decisions and stage gates.
    """

    viewer = "viewer"
    editor = "editor"
    admin = "admin"


#: Rank of each role: a role may do everything a lower-ranked role may.
ROLE_RANK = {Role.viewer: 0, Role.editor: 1, Role.admin: 2}


class DecisionKind(StrEnum):
    """A person's go/no-go decision on a pilot (DESIGN §3 Decision)."""

    go = "go"
    extend = "extend"
    no_go = "no_go"


# --------------------------------------------------------------------------- pilots


class PilotBase(SQLModel):
    name: str = Field(min_length=1, max_length=200)
    vendor: str = Field(default="", max_length=200)
    use_case: str = Field(default="", max_length=500)
    owner: str = Field(default="", max_length=200)
    stage: str = Field(default=Stage.pilot.value, max_length=20)
    start_date: date
    decision_date: date
    cost: float | None = None
    trailing_window: int = Field(default=4, ge=1, le=MAX_WEEKS)
    min_weeks: int = Field(default=4, ge=1, le=MAX_WEEKS)


class Pilot(PilotBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, sa_column_kwargs={"unique": True}, index=True)
    #: :func:`pilot_name_key` of ``name``: unique, so no two pilots differ only in case
    #: or spacing (written by the store with every name).
    name_key: str = Field(max_length=NAME_KEY_MAX, unique=True, index=True)
    #: Archived pilots leave the Portfolio (a filter shows them); every value is kept.
    archived: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


@sa.event.listens_for(Pilot, "before_insert")
@sa.event.listens_for(Pilot, "before_update")
def _fill_name_key(_mapper, _connection, target: Pilot) -> None:
    """Every ORM write of a pilot keeps ``name_key`` in step with ``name``."""
    target.name_key = pilot_name_key(target.name or "")


class PilotCreate(PilotBase):
    """Validated input for creating or replacing a pilot."""

    stage: Stage = Stage.pilot

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        # A name is stored with its inner white space collapsed (DESIGN §3).
        return collapse_spaces(clean_name(v, "name"))

    @field_validator("vendor", "use_case", "owner")
    @classmethod
    def _strip(cls, v: str, info) -> str:
        return check_text(v.strip(), info.field_name)

    @field_validator("start_date", "decision_date")
    @classmethod
    def _date_range(cls, v: date, info) -> date:
        return check_date_range(v, info.field_name)

    @field_validator("cost")
    @classmethod
    def _finite_cost(cls, v: float | None) -> float | None:
        if v is not None:
            check_value(v, "cost")
            if v < 0:
                raise ValueError("cost must be >= 0")
        return v

    @model_validator(mode="after")
    def _dates(self) -> PilotCreate:
        if not self.name:
            raise ValueError("name must not be empty")
        if self.decision_date < self.start_date:
            raise ValueError(
                f"decision_date {self.decision_date} is before start_date {self.start_date}"
            )
        return self


class PilotUpdate(SQLModel):
    """Partial update of a pilot; ``None`` leaves a field unchanged."""

    vendor: str | None = None
    use_case: str | None = None
    owner: str | None = None
    start_date: date | None = None
    decision_date: date | None = None
    cost: float | None = None
    trailing_window: int | None = Field(default=None, ge=1, le=MAX_WEEKS)
    min_weeks: int | None = Field(default=None, ge=1, le=MAX_WEEKS)


# --------------------------------------------------------------------------- metrics


class MetricBase(SQLModel):
    key: str = Field(min_length=1, max_length=64)
    label: str = Field(default="", max_length=200)
    unit: str = Field(default="", max_length=32)
    direction: str = Field(max_length=20)
    role: str = Field(default=MetricRole.primary.value, max_length=20)
    baseline: float | None = None
    #: Required for a primary metric; optional for a guardrail (shown, never judged:
    #: a guardrail is judged by its baseline and non-inferiority margin).
    target: float | None = None
    margin: float | None = None
    min_value: float | None = None
    max_value: float | None = None
    #: Economics value model: money (the pilot's currency) per week for each unit of
    #: improvement of this metric, e.g. hours saved per ticket x tickets per week x
    #: hourly rate -> "money per hour of resolution time saved, per week". None = no model.
    value_per_unit: float | None = None


class Metric(MetricBase, table=True):
    __table_args__ = (sa.UniqueConstraint("pilot_id", "key", name="uq_metric_pilot_key"),)

    id: int | None = Field(default=None, primary_key=True)
    pilot_id: int = Field(foreign_key="pilot.id", index=True, ondelete="CASCADE")
    #: An archived metric is hidden from pages and numbers; its values are kept.
    archived: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})


KEY_RE = r"^[a-z][a-z0-9_]*$"


class MetricCreate(MetricBase):
    """Validated metric definition.

    Rules: finite numbers; ``min_value <= max_value``; a primary metric needs a target,
    a guardrail needs none (DESIGN §4); baseline and target inside the allowed range;
    a target on the better side of an explicit baseline for the direction (never
    equal to it); guardrail margin >= 0 (default 0).
    """

    direction: Direction
    role: MetricRole = MetricRole.primary

    @field_validator("key")
    @classmethod
    def _key(cls, v: str) -> str:
        v = v.strip()
        if not re.match(KEY_RE, v):
            raise ValueError(
                f"metric key {v!r} must start with a lowercase letter and use only "
                "a-z, 0-9 and _ (e.g. resolution_time)"
            )
        return v

    @field_validator("baseline", "target", "margin", "min_value", "max_value", "value_per_unit")
    @classmethod
    def _finite(cls, v: float | None, info) -> float | None:
        return None if v is None else check_value(v, info.field_name)

    @field_validator("label", "unit")
    @classmethod
    def _text(cls, v: str, info) -> str:
        return check_text(v.strip(), info.field_name)

    @model_validator(mode="after")
    def _consistent(self) -> MetricCreate:
        if not self.label:
            self.label = self.key.replace("_", " ").capitalize()
        lo, hi = self.min_value, self.max_value
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"min {lo:g} is greater than max {hi:g}")
        for name in ("baseline", "target"):
            v = getattr(self, name)
            if v is None:
                continue
            if lo is not None and v < lo:
                raise ValueError(f"{name} {v:g} is below the allowed minimum {lo:g}")
            if hi is not None and v > hi:
                raise ValueError(f"{name} {v:g} is above the allowed maximum {hi:g}")
        if self.target is None and self.role == MetricRole.primary:
            raise ValueError(
                "target is missing: a primary metric needs a target "
                "(only a guardrail metric may have none)"
            )
        if self.baseline is not None and self.target is not None:
            if self.target == self.baseline:
                raise ValueError(
                    f"target {self.target:g} equals baseline {self.baseline:g}: "
                    "set a target that is an improvement"
                )
            better = (
                self.target < self.baseline
                if self.direction == Direction.lower_is_better
                else self.target > self.baseline
            )
            if not better:
                side = "below" if self.direction == Direction.lower_is_better else "above"
                raise ValueError(
                    f"target {self.target:g} is on the wrong side of baseline "
                    f"{self.baseline:g}: for {self.direction.value} it must be {side} it"
                )
        if self.margin is not None and self.margin < 0:
            raise ValueError(f"margin {self.margin:g} must be >= 0")
        if self.role == MetricRole.guardrail and self.margin is None:
            self.margin = 0.0
        return self


# --------------------------------------------------------------------------- measurements


class MeasurementBase(SQLModel):
    week: date
    value: float
    note: str = Field(default="", max_length=1000)


class Measurement(MeasurementBase, table=True):
    __table_args__ = (sa.UniqueConstraint("metric_id", "week", name="uq_measurement_metric_week"),)

    id: int | None = Field(default=None, primary_key=True)
    metric_id: int = Field(foreign_key="metric.id", index=True, ondelete="CASCADE")
    entered_by: str = Field(default="", max_length=200)
    entered_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    version: int = Field(default=1)


class MeasurementCreate(MeasurementBase):
    """One weekly value, addressed by pilot name and metric key."""

    pilot: str
    metric: str

    @field_validator("value")
    @classmethod
    def _finite(cls, v: float) -> float:
        return check_value(v)

    @field_validator("note")
    @classmethod
    def _note(cls, v: str) -> str:
        return check_text(v, "note", single_line=False)

    @field_validator("week")
    @classmethod
    def _monday(cls, v: date) -> date:
        check_date_range(v, "week")
        if v.weekday() != 0:
            raise ValueError(f"week {v} is not a Monday")
        return v


class MeasurementRevision(SQLModel, table=True):
    """Audit trail: one row per create, update or delete of a measurement."""

    id: int | None = Field(default=None, primary_key=True)
    metric_id: int = Field(foreign_key="metric.id", index=True, ondelete="CASCADE")
    week: date
    action: str = Field(max_length=10)
    old_value: float | None = None
    new_value: float | None = None
    old_note: str | None = None
    new_note: str | None = None
    actor: str = Field(max_length=200)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    reason: str = Field(default="", max_length=1000)


class StageEvent(SQLModel, table=True):
    """A pilot's move from one stage to another."""

    id: int | None = Field(default=None, primary_key=True)
    pilot_id: int = Field(foreign_key="pilot.id", index=True, ondelete="CASCADE")
    from_stage: str | None = Field(default=None, max_length=20)
    to_stage: str = Field(max_length=20)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    by: str = Field(max_length=200)
    note: str = Field(default="", max_length=1000)


# --------------------------------------------------------------------------- users


class UserBase(SQLModel):
    name: str = Field(min_length=1, max_length=200)
    email: str = Field(default="", max_length=320)
    role: str = Field(default=Role.viewer.value, max_length=20)


class AppUser(UserBase, table=True):
    """A person who may use PilotGate, with their role (table ``app_user``: ``user`` is
    a reserved word in PostgreSQL)."""

    __tablename__ = "app_user"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, sa_column_kwargs={"unique": True}, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_by: str = Field(default="", max_length=200)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class UserCreate(UserBase):
    """Validated input for adding a user."""

    role: Role = Role.viewer

    @field_validator("name", "email")
    @classmethod
    def _text(cls, v: str, info) -> str:
        return clean_name(v, info.field_name)

    @model_validator(mode="after")
    def _non_empty(self) -> UserCreate:
        if not self.name:
            raise ValueError("name must not be empty")
        return self


# --------------------------------------------------------------------------- governance


class Decision(SQLModel, table=True):
    """A person's signed go / extend / no_go decision on a pilot, with the
    recommendation and the summary they saw at that moment (``snapshot``: the go/no-go
    summary rows of this pilot as JSON records)."""

    id: int | None = Field(default=None, primary_key=True)
    pilot_id: int = Field(foreign_key="pilot.id", index=True, ondelete="CASCADE")
    decision: str = Field(max_length=10)
    recommendation: str = Field(max_length=20)
    rationale: str = Field(default="", max_length=4000)
    as_of: date
    decided_by: str = Field(max_length=200)
    decided_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    snapshot: str = Field(default="[]", sa_type=sa.Text)
    #: SHA-256 (hex) of the decision report's inputs the person saw when signing
    #: (:func:`metrics.report.inputs_hash`); None for decisions recorded before 0005.
    report_hash: str | None = Field(default=None, max_length=64)


class ChecklistItem(SQLModel, table=True):
    """One readiness or governance item of a pilot; ``done`` items carry evidence,
    who ticked them (``by``) and when (``at``)."""

    __table_args__ = (sa.UniqueConstraint("pilot_id", "item", name="uq_checklist_pilot_item"),)

    id: int | None = Field(default=None, primary_key=True)
    pilot_id: int = Field(foreign_key="pilot.id", index=True, ondelete="CASCADE")
    position: int = Field(default=0)
    item: str = Field(max_length=500)
    done: bool = Field(default=False)
    evidence: str = Field(default="", max_length=4000)
    by: str = Field(default="", max_length=200)
    at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    version: int = Field(default=1)


class AuditEvent(SQLModel, table=True):
    """Audit record of every write that is not a measurement (those have
    :class:`MeasurementRevision`): pilot and metric definitions, users and roles,
    checklist items, decisions. ``detail`` is JSON: the fields before and after."""

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    actor: str = Field(max_length=200)
    entity: str = Field(max_length=30)
    entity_id: int | None = None
    action: str = Field(max_length=30)
    detail: str = Field(default="{}", sa_type=sa.Text)


# --------------------------------------------------------------------------- governance input


class DecisionCreate(SQLModel):
    """Validated input for a signed decision (:func:`metrics.governance.record_decision`).

    ``rationale`` is stripped; it may span lines. Whether one is required depends on
    the recommendation at the moment of saving (the store checks that).
    """

    pilot_id: int = Field(ge=-MAX_DB_INT - 1, le=MAX_DB_INT)
    decision: DecisionKind
    rationale: str = Field(default="", max_length=4000)
    as_of: date

    @field_validator("rationale")
    @classmethod
    def _rationale(cls, v: str) -> str:
        return check_text(v.strip(), "rationale", single_line=False)

    @field_validator("as_of")
    @classmethod
    def _as_of(cls, v: date) -> date:
        return check_date_range(v, "as_of")


class ChecklistItemCreate(SQLModel):
    """A new readiness or governance item for a pilot: one line of text, 1..500 chars."""

    pilot_id: int = Field(ge=-MAX_DB_INT - 1, le=MAX_DB_INT)
    item: str = Field(max_length=500)

    @field_validator("item")
    @classmethod
    def _item(cls, v: str) -> str:
        v = check_text(v.strip(), "item")
        if not v:
            raise ValueError("item must not be empty: write what has to be in place")
        return v


class ChecklistTick(SQLModel):
    """Tick (``done=True``, evidence required) or un-tick a checklist item.

    ``expected_version`` is the item's version the user saw; a different stored version
    means someone else changed it meanwhile (optimistic concurrency).
    """

    item_id: int = Field(ge=-MAX_DB_INT - 1, le=MAX_DB_INT)
    done: bool
    evidence: str = Field(default="", max_length=4000)
    expected_version: int | None = Field(default=None, ge=-MAX_DB_INT - 1, le=MAX_DB_INT)

    @field_validator("evidence")
    @classmethod
    def _evidence(cls, v: str) -> str:
        return check_text(v.strip(), "evidence", single_line=False)


# --------------------------------------------------------------------------- API tokens

#: Prefix of the actor name a token writes under: revisions written through the token
#: ``acme-nightly`` record the actor ``token:acme-nightly`` (never the token itself).
TOKEN_ACTOR_PREFIX = "token:"
#: A token's name: letters, digits, ``.``, ``_``, ``-``; starts with a letter or digit
#: (so it can never read as a spreadsheet formula in an export).
TOKEN_NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class TokenRole(StrEnum):
    """What an API token may do: ``viewer`` reads, ``editor`` also pushes measurements."""

    viewer = "viewer"
    editor = "editor"


class ApiTokenBase(SQLModel):
    name: str = Field(min_length=1, max_length=64)
    role: str = Field(default=TokenRole.viewer.value, max_length=20)


class ApiToken(ApiTokenBase, table=True):
    """An HTTP API token (DESIGN §3, §11). Only the SHA-256 of the secret is stored
    (``token_hash``, 64 hex digits); ``all_pilots`` False limits it to the pilots in
    :class:`ApiTokenPilot` (none left = no pilot at all, never every pilot)."""

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, sa_column_kwargs={"unique": True}, index=True)
    token_hash: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    all_pilots: bool = Field(default=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_by: str = Field(default="", max_length=200)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_by: str = Field(default="", max_length=200)


class ApiTokenPilot(SQLModel, table=True):
    """One pilot in a limited token's scope."""

    __tablename__ = "api_token_pilot"
    __table_args__ = (sa.UniqueConstraint("token_id", "pilot_id", name="uq_api_token_pilot"),)

    id: int | None = Field(default=None, primary_key=True)
    token_id: int = Field(foreign_key="api_token.id", index=True, ondelete="CASCADE")
    pilot_id: int = Field(foreign_key="pilot.id", index=True, ondelete="CASCADE")


class ApiTokenCreate(ApiTokenBase):
    """Validated input for a new token: a name matching :data:`TOKEN_NAME_RE`, role
    ``viewer`` or ``editor``, and the pilot names it is limited to (empty = every pilot)."""

    role: TokenRole = TokenRole.viewer
    pilots: list[str] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        v = v.strip()
        if not re.match(TOKEN_NAME_RE, v):
            raise ValueError(
                f"token name {v[:70]!r} must be 1-64 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit (e.g. acme-nightly)"
            )
        return v

    @field_validator("pilots")
    @classmethod
    def _pilots(cls, v: list[str]) -> list[str]:
        names = [check_text(p.strip(), "pilot") for p in v]
        if any(not p for p in names):
            raise ValueError("a pilot name is empty")
        return list(dict.fromkeys(names))


# --------------------------------------------------------------------------- alerts (DESIGN §13)


class Webhook(SQLModel, table=True):
    """An endpoint that receives alert events as signed JSON POSTs (Standard Webhooks).

    ``event_types`` is a space-separated list of subscribed event types ("" = every
    type). ``secret`` is the ``whsec_...`` signing secret: stored as given, because
    signing needs it (it is shown once when generated, never listed). A removed
    endpoint keeps its row and delivery history (``removed_at`` set) and gets nothing
    more.
    """

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(max_length=2000)
    secret: str = Field(max_length=200)
    event_types: str = Field(default="", max_length=1000)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_by: str = Field(default="", max_length=200)
    removed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class AlertEvent(SQLModel, table=True):
    """One alert event, stored once: ``event_id`` is deterministic from its type, pilot
    and the state it describes (unique), so re-running or overlapping runs never store
    it twice. ``payload`` is the JSON body sent to endpoints (without signature)."""

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(max_length=64, sa_column_kwargs={"unique": True}, index=True)
    type: str = Field(max_length=40)
    pilot_id: int | None = Field(default=None, index=True)
    pilot: str = Field(default="", max_length=200)
    occurred_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    summary: str = Field(default="", max_length=1000)
    payload: str = Field(default="{}", sa_type=sa.Text)


class Delivery(SQLModel, table=True):
    """The delivery of one event to one endpoint (unique pair): ``status`` is
    ``pending`` (to send, or to retry at ``next_attempt_at``), ``delivered`` or
    ``cancelled`` (endpoint removed). A run claims a pending row atomically
    (``claimed_by`` + ``claimed_until``, a lease) before sending, so two runs never
    send the same row."""

    __table_args__ = (
        sa.UniqueConstraint("alert_event_id", "webhook_id", name="uq_delivery_event_webhook"),
    )

    id: int | None = Field(default=None, primary_key=True)
    alert_event_id: int = Field(foreign_key="alertevent.id", index=True, ondelete="CASCADE")
    webhook_id: int = Field(foreign_key="webhook.id", index=True, ondelete="CASCADE")
    status: str = Field(default="pending", max_length=20, index=True)
    attempts: int = Field(default=0)
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    claimed_by: str | None = Field(default=None, max_length=100)
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_status_code: int | None = None
    last_error: str = Field(default="", max_length=1000)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AlertState(SQLModel, table=True):
    """The last recommendation alerts saw per pilot (for ``recommendation.changed``)."""

    id: int | None = Field(default=None, primary_key=True)
    pilot_id: int = Field(
        foreign_key="pilot.id", ondelete="CASCADE", sa_column_kwargs={"unique": True}
    )
    recommendation: str = Field(max_length=20)
    as_of: date
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class DigestSend(SQLModel, table=True):
    """The weekly e-mail digest of one ISO week (``week``, e.g. ``2026-W05``, unique):
    ``pending`` / ``sending`` (claimed until ``claimed_until``) / ``sent`` / ``failed``
    (retried on the next run)."""

    id: int | None = Field(default=None, primary_key=True)
    week: str = Field(max_length=10, sa_column_kwargs={"unique": True})
    status: str = Field(default="pending", max_length=20)
    recipients: str = Field(default="", max_length=4000)
    claimed_by: str | None = Field(default=None, max_length=100)
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    attempts: int = Field(default=0)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str = Field(default="", max_length=1000)
