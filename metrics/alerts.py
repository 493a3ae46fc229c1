"""Alerts (DESIGN §13): webhook endpoints, alert events stored once, deliveries sent once,
and the weekly e-mail digest.

Layers: the store part (the only writer of :class:`Webhook`, :class:`AlertEvent`,
:class:`Delivery`, :class:`AlertState` and :class:`DigestSend`), a pure part
(:func:`detect_events`: frames in, events out) and :func:`run_alerts`, which the CLI
(``pilotgate alerts run``, cron-friendly) and the API process (every
``Settings.alerts_interval_s``) call.

Guarantees:

- **Each event once.** An event's id is deterministic (:func:`event_id`: its type, its
  pilot and the state it describes, e.g. the decision date that is due), and
  ``alertevent.event_id`` is unique: re-runs and overlapping runs insert it once
  (``INSERT ... ON CONFLICT DO NOTHING``, SQLite and PostgreSQL). Its deliveries (one
  per subscribed endpoint, unique pair) are created in the same transaction.
- **Each delivery once per endpoint.** A run claims a delivery before sending with one
  atomic ``UPDATE ... WHERE status = 'pending' AND (claimed_until IS NULL OR
  claimed_until < now)`` (a lease); only the run whose update changed the row sends it.
  A delivery whose endpoint answered 2xx is ``delivered`` and never claimed again.
  (Like every webhook sender, a request that reached the endpoint but whose answer was
  lost is retried; receivers dedupe on the ``webhook-id`` header, the event id.)
- **Nothing lost.** A failed attempt (non-2xx, timeout, refused connection) is recorded
  (status code, error) and retried on a later run after an exponential backoff
  (:func:`backoff`), with no limit on attempts.
- **A slow endpoint holds up nobody.** Each endpoint's deliveries go in their own
  thread with ``Settings.webhook_timeout_s``; after one timeout or connection error
  the endpoint's other deliveries wait for the next run.

Signatures follow Standard Webhooks with the ``standardwebhooks`` package
(``webhook-id``, ``webhook-timestamp``, ``webhook-signature`` headers, ``whsec_``
secrets).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import secrets
import socket
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import httpx
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session
from standardwebhooks.webhooks import Webhook as SignatureScheme

from metrics import computations as C
from metrics.access import record_audit, require_role
from metrics.errors import StoreError
from metrics.governance import DUE_WITHIN_DAYS  # "due" = within 14 days, as on the Portfolio
from metrics.models import (
    AlertEvent,
    AlertState,
    Delivery,
    DigestSend,
    Role,
    Webhook,
    check_text,
    utcnow,
)

EVENT_TYPES: tuple[str, ...] = (
    "pilot.stale",
    "guardrail.breached",
    "recommendation.changed",
    "decision.due",
    "decision.overdue",
    "decision.recorded",
)
#: Stages whose pilots still await a go / no-go (stale and deadline alerts apply).
OPEN_STAGES = ("discovery", "pilot")
#: Statuses of a guardrail too young to judge (the name differs between versions).
NOT_JUDGED = (C.INSUFFICIENT, "not_judged")
PENDING, DELIVERED, CANCELLED = "pending", "delivered", "cancelled"
#: Backoff of retries: 1 min, 2, 4 ... capped at 6 h.
BACKOFF_FIRST_S = 60
BACKOFF_MAX_S = 6 * 3600
SECRET_BYTES = 32


class AlertError(StoreError):
    """Refused input (URL, secret, event type, unknown endpoint): one readable line."""


# =========================================================================== endpoints


def check_url(url: str) -> str:
    """``url`` stripped when it is an absolute http(s) URL with a host, else AlertError."""
    url = (url or "").strip()
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise AlertError(f"webhook URL {url!r} is not a URL: use http(s)://host/path") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise AlertError(f"webhook URL {url!r} is not an http(s) URL: use http(s)://host/path")
    if len(url) > 2000:
        raise AlertError("webhook URL is longer than 2000 characters")
    return url


def check_secret(secret: str) -> str:
    """``secret`` when it is ``whsec_`` + base64 of 24 to 64 bytes, else AlertError
    (the message never repeats the secret)."""
    secret = (secret or "").strip()
    if not secret.startswith("whsec_"):
        raise AlertError("webhook secret must start with whsec_ (Standard Webhooks)")
    body = secret.removeprefix("whsec_")
    try:
        raw = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise AlertError("webhook secret after whsec_ is not valid base64") from None
    if not 24 <= len(raw) <= 64:
        raise AlertError(
            f"webhook secret decodes to {len(raw)} bytes: use 24 to 64 random bytes "
            "(leave --secret out to have one generated)"
        )
    return secret


def new_secret() -> str:
    """A fresh ``whsec_`` secret: 32 random bytes, base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def check_event_types(types: list[str] | tuple[str, ...]) -> list[str]:
    """The distinct event types, each one of :data:`EVENT_TYPES`, else AlertError."""
    out: list[str] = []
    for t in types:
        t = t.strip()
        if t not in EVENT_TYPES:
            raise AlertError(f"unknown event type {t!r}: use one of {', '.join(EVENT_TYPES)}")
        if t not in out:
            out.append(t)
    return out


def add_webhook(
    *, session: Session, actor: str, url: str, secret: str | None = None, event_types=()
) -> tuple[int, str]:
    """Subscribe an endpoint (admin role) to ``event_types`` (empty = every type).

    Returns:
        (webhook id, the secret: the one given, or a new one to show once).

    Raises:
        PermissionDenied: the actor is not an admin.
        AlertError: URL not http(s), secret not ``whsec_`` base64, unknown event type.
    """
    require_role(session=session, actor=actor, needed=Role.admin, action="adding a webhook")
    url = check_url(url)
    check_text(url, "webhook URL")
    secret = check_secret(secret) if secret is not None else new_secret()
    types = check_event_types(list(event_types))
    row = Webhook(url=url, secret=secret, event_types=" ".join(types), created_by=actor)
    session.add(row)
    session.flush()
    record_audit(
        session=session,
        actor=actor,
        entity="webhook",
        entity_id=row.id,
        action="create",
        detail={"url": url, "event_types": types},
    )
    return int(row.id), secret


def remove_webhook(*, session: Session, actor: str, webhook_id: int) -> str:
    """Unsubscribe an endpoint (admin role): it gets nothing more, its pending deliveries
    are cancelled, its history is kept. Returns its URL.

    Raises:
        AlertError: no active webhook with that id.
    """
    require_role(session=session, actor=actor, needed=Role.admin, action="removing a webhook")
    row = session.get(Webhook, webhook_id)
    if row is None or row.removed_at is not None:
        raise AlertError(f"no webhook with id {webhook_id} (see `pilotgate webhooks list`)")
    row.removed_at = utcnow()
    session.add(row)
    session.execute(
        sa.update(Delivery)
        .where(Delivery.webhook_id == webhook_id, Delivery.status == PENDING)
        .values(status=CANCELLED, claimed_by=None, claimed_until=None)
    )
    record_audit(
        session=session,
        actor=actor,
        entity="webhook",
        entity_id=webhook_id,
        action="delete",
        detail={"url": row.url},
    )
    return row.url


def webhooks_frame(session: Session) -> pd.DataFrame:
    """Active endpoints with delivery counts (never the secret).

    Returns:
        Columns webhook_id, url, event_types ("" = all), created_at, created_by,
        delivered, pending (int64), last_attempt_at, last_status_code, last_error (of
        the endpoint's most recent attempt); sorted by id.
    """
    W, D = Webhook, Delivery
    counts = (
        sa.select(
            D.webhook_id,
            sa.func.sum(sa.case((D.status == DELIVERED, 1), else_=0)).label("delivered"),
            sa.func.sum(sa.case((D.status == PENDING, 1), else_=0)).label("pending"),
        )
        .group_by(D.webhook_id)
        .subquery()
    )
    stmt = (
        sa.select(
            W.id,
            W.url,
            W.event_types,
            W.created_at,
            W.created_by,
            counts.c.delivered,
            counts.c.pending,
        )
        .outerjoin(counts, counts.c.webhook_id == W.id)
        .where(W.removed_at.is_(None))
        .order_by(W.id)
    )
    rows = session.execute(stmt).all()
    cols = ["webhook_id", "url", "event_types", "created_at", "created_by", "delivered", "pending"]
    df = pd.DataFrame(rows, columns=cols)
    for col in ("delivered", "pending"):
        df[col] = df[col].fillna(0).astype("int64")
    last = deliveries_frame(session, limit=None)
    last = last.dropna(subset=["last_attempt_at"]).sort_values("last_attempt_at")
    last = last.drop_duplicates("webhook_id", keep="last").set_index("webhook_id")
    for col in ("last_attempt_at", "last_status_code", "last_error"):
        df[col] = df["webhook_id"].map(last[col]) if not last.empty else None
    return df


def deliveries_frame(
    session: Session, *, webhook_id: int | None = None, limit: int | None = 20
) -> pd.DataFrame:
    """Deliveries, newest first: delivery_id, webhook_id, event_id, type, pilot,
    summary, status, attempts, last_attempt_at, last_status_code, last_error,
    next_attempt_at, delivered_at."""
    D, E = Delivery, AlertEvent
    stmt = sa.select(
        D.id,
        D.webhook_id,
        E.event_id,
        E.type,
        E.pilot,
        E.summary,
        D.status,
        D.attempts,
        D.last_attempt_at,
        D.last_status_code,
        D.last_error,
        D.next_attempt_at,
        D.delivered_at,
    ).join(E, E.id == D.alert_event_id)
    if webhook_id is not None:
        stmt = stmt.where(D.webhook_id == webhook_id)
    stmt = stmt.order_by(D.id.desc())
    if limit is not None:
        stmt = stmt.limit(limit)
    cols = [
        "delivery_id",
        "webhook_id",
        "event_id",
        "type",
        "pilot",
        "summary",
        "status",
        "attempts",
        "last_attempt_at",
        "last_status_code",
        "last_error",
        "next_attempt_at",
        "delivered_at",
    ]
    return pd.DataFrame(session.execute(stmt).all(), columns=cols)


# =========================================================================== events (pure)


@dataclass(frozen=True)
class Event:
    """One alert event before it is stored: ``data`` is JSON-ready."""

    type: str
    pilot_id: int | None
    pilot: str
    state: str
    summary: str
    data: dict = field(default_factory=dict)

    @property
    def id(self) -> str:
        return event_id(self.type, self.pilot_id, self.state)


def event_id(type_: str, pilot_id: int | None, state: str) -> str:
    """The stable id of an event: ``evt_`` + the first 32 hex digits of
    SHA-256("type|pilot id|state"). The same situation always gets the same id."""
    raw = f"{type_}|{pilot_id}|{state}".encode()
    return "evt_" + hashlib.sha256(raw).hexdigest()[:32]


def _label(ts) -> str:
    return C.iso_label(ts) or "none"


def _num(x) -> float | None:
    """A number for a payload, rounded to the summary CSV's 12 significant digits (no
    binary noise like 1.1674999999999998); None when undefined."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return float(f"{v:.12g}") if pd.notna(v) else None


def _with_unit(x, unit: object) -> str:
    text, unit = C.fmt_number(x), str(unit or "")
    if not unit or text == "n/a":
        return text
    return f"{text}{unit}" if unit == "%" else f"{text} {unit}"


def detect_events(
    *,
    pilots: pd.DataFrame,
    metrics: pd.DataFrame,
    decisions: pd.DataFrame,
    last_recommendation: dict[int, str],
    as_of: date,
) -> list[Event]:
    """The alert events of the portfolio as of ``as_of`` (pure; DESIGN §13).

    - ``pilot.stale``: an open pilot (discovery/pilot stage) started by ``as_of`` with
      metrics and no value in the last 2 weeks; state = its last reported week.
    - ``guardrail.breached``: a guardrail worse than its baseline by more than its
      margin (judged, not stopped); state = metric key + its last reported week (a new
      event when new data is still breached).
    - ``recommendation.changed``: the recommendation differs from the last one seen
      (``last_recommendation``; none seen yet = no event); state = from, to, as_of.
    - ``decision.due``: an open pilot's decision date 0..14 days after ``as_of`` and no
      decision recorded; ``decision.overdue``: the date has passed and none is
      recorded; state = the decision date.
    - ``decision.recorded``: each recorded decision judged by ``as_of``; state = its id.

    Args:
        pilots: :attr:`metrics.service.Evaluation.pilots`.
        metrics: :attr:`metrics.service.Evaluation.metrics`.
        decisions: :func:`metrics.governance.decisions_frame` (all decisions).
    """
    out: list[Event] = []
    decided = set(decisions[C.PILOT_ID].astype(int)) if not decisions.empty else set()
    for p in pilots.to_dict("records"):
        pid, name = int(p[C.PILOT_ID]), str(p[C.PILOT])
        stage = str(p.get("stage") or "")
        start = pd.Timestamp(p[C.START_DATE]).date()
        dd = pd.Timestamp(p[C.DECISION_DATE]).date()
        rec = str(p.get(C.RECOMMENDATION) or C.INSUFFICIENT)
        open_ = stage in OPEN_STAGES
        has_metrics = int(p.get(C.METRICS_TOTAL) or 0) > 0
        base = {
            "stage": stage,
            "decision_date": dd.isoformat(),
            "recommendation": rec,
            "as_of": as_of.isoformat(),
        }
        if open_ and has_metrics and as_of >= start + timedelta(days=14) and bool(p.get(C.STALE)):
            last = _label(p.get(C.LAST_WEEK)) if pd.notna(p.get(C.LAST_WEEK)) else "none"
            out.append(
                Event(
                    "pilot.stale",
                    pid,
                    name,
                    last,
                    f"{name}: no weekly value since {last} (stale as of {as_of})",
                    {**base, "last_week": None if last == "none" else last},
                )
            )
        prev = last_recommendation.get(pid)
        if prev is not None and prev != rec:
            out.append(
                Event(
                    "recommendation.changed",
                    pid,
                    name,
                    f"{prev}>{rec}@{as_of.isoformat()}",
                    f"{name}: recommendation {prev} -> {rec} as of {as_of}",
                    {**base, "from": prev, "to": rec, "reasons": p.get(C.REASONS)},
                )
            )
        days = (dd - as_of).days
        if open_ and pid not in decided:
            if 0 <= days <= DUE_WITHIN_DAYS:
                out.append(
                    Event(
                        "decision.due",
                        pid,
                        name,
                        dd.isoformat(),
                        f"{name}: go/no-go decision due {dd} (in {days} days), "
                        f"recommendation {rec}",
                        {**base, "days_to_decision": days},
                    )
                )
            elif days < 0:
                out.append(
                    Event(
                        "decision.overdue",
                        pid,
                        name,
                        dd.isoformat(),
                        f"{name}: go/no-go decision overdue since {dd} "
                        f"({-days} days), recommendation {rec}",
                        {**base, "days_overdue": -days},
                    )
                )
    if not metrics.empty:
        guard = metrics[
            (metrics[C.ROLE] == C.GUARDRAIL)
            & metrics[C.GUARDRAIL_BREACHED].fillna(False).astype(bool)
            & ~metrics[C.STATUS].astype(str).isin(NOT_JUDGED)
        ]
        stages = dict(zip(pilots[C.PILOT_ID].astype(int), pilots["stage"], strict=True))
        for m in guard.to_dict("records"):
            pid, name = int(m[C.PILOT_ID]), str(m[C.PILOT])
            if stages.get(pid) == "stopped":
                continue
            last = _label(m.get(C.LAST_WEEK))
            label = str(m.get(C.LABEL) or m[C.KEY])
            out.append(
                Event(
                    "guardrail.breached",
                    pid,
                    name,
                    f"{m[C.KEY]}@{last}",
                    f"{name}: guardrail {label} breached: "
                    f"{_with_unit(m[C.CURRENT], m[C.UNIT])} vs baseline "
                    f"{_with_unit(m[C.BASELINE], m[C.UNIT])} (non-inferiority margin "
                    f"{_with_unit(m[C.MARGIN], C.margin_unit(m[C.UNIT]))})",
                    {
                        "metric": m[C.KEY],
                        "label": label,
                        "unit": m.get(C.UNIT),
                        "baseline": _num(m[C.BASELINE]),
                        "current": _num(m[C.CURRENT]),
                        "margin": _num(m[C.MARGIN]),
                        "last_week": last,
                        "status": m.get(C.STATUS),
                        "as_of": as_of.isoformat(),
                    },
                )
            )
    if not decisions.empty:
        judged = decisions[pd.to_datetime(decisions["as_of"]) <= pd.Timestamp(as_of)]
        for d in judged.to_dict("records"):
            pid, name = int(d[C.PILOT_ID]), str(d[C.PILOT])
            out.append(
                Event(
                    "decision.recorded",
                    pid,
                    name,
                    str(int(d["decision_id"])),
                    f"{name}: decision {d['decision']} signed by {d['decided_by']} "
                    f"(recommendation then {d['recommendation_then']})",
                    {
                        "decision": d["decision"],
                        "decided_by": d["decided_by"],
                        "decided_at": pd.Timestamp(d["decided_at"]).isoformat(),
                        "judged_as_of": pd.Timestamp(d["as_of"]).date().isoformat(),
                        "recommendation_then": d["recommendation_then"],
                        "rationale": d["rationale"],
                    },
                )
            )
    return out


def payload(event: Event, occurred_at: datetime) -> str:
    """The JSON body of an event: ``type``, ``id``, ``occurred_at`` (ISO 8601 UTC),
    ``pilot`` ({id, name}), ``data``, ``summary`` (one line)."""
    body = {
        "type": event.type,
        "id": event.id,
        "occurred_at": occurred_at.astimezone(UTC).isoformat(timespec="seconds"),
        "pilot": {"id": event.pilot_id, "name": event.pilot},
        "data": event.data,
        "summary": " ".join(event.summary.split()),
    }
    return json.dumps(body, ensure_ascii=False, allow_nan=False, default=str)


# =========================================================================== store events


def _insert_ignore(conn, table, values: dict, key: str):
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(table).values(**values).on_conflict_do_nothing(index_elements=[key])
    # RETURNING the id tells reliably (SQLite and PostgreSQL) whether a row was inserted.
    return conn.execute(stmt.returning(table.c.id)).scalar_one_or_none()


def store_events(session: Session, events: list[Event], *, now: datetime) -> list[str]:
    """Store the events not stored yet and one pending delivery per subscribed active
    endpoint; returns the ids of the events new in this call (the others were already
    stored, by an earlier or an overlapping run)."""
    hooks = session.execute(
        sa.select(Webhook.id, Webhook.event_types).where(Webhook.removed_at.is_(None))
    ).all()
    conn = session.connection()
    table = AlertEvent.__table__
    new: list[str] = []
    for ev in events:
        values = dict(
            event_id=ev.id,
            type=ev.type,
            pilot_id=ev.pilot_id,
            pilot=ev.pilot[:200],
            occurred_at=now,
            summary=" ".join(ev.summary.split())[:1000],
            payload=payload(ev, now),
        )
        row_id = _insert_ignore(conn, table, values, "event_id")
        if row_id is None:  # stored before (by an earlier or an overlapping run)
            continue
        new.append(ev.id)
        for hook_id, types in hooks:
            if types and ev.type not in types.split():
                continue
            conn.execute(
                sa.insert(Delivery.__table__).values(
                    alert_event_id=row_id,
                    webhook_id=hook_id,
                    status=PENDING,
                    attempts=0,
                    next_attempt_at=now,
                    last_error="",
                    created_at=now,
                )
            )
    return new


def _store_recommendations(
    session: Session, pilots: pd.DataFrame, *, as_of: date, now: datetime
) -> None:
    conn = session.connection()
    for p in pilots.to_dict("records"):
        pid, rec = int(p[C.PILOT_ID]), str(p.get(C.RECOMMENDATION) or C.INSUFFICIENT)
        inserted = _insert_ignore(
            conn,
            AlertState.__table__,
            dict(pilot_id=pid, recommendation=rec, as_of=as_of, updated_at=now),
            "pilot_id",
        )
        if inserted is None:
            conn.execute(
                sa.update(AlertState.__table__)
                .where(AlertState.pilot_id == pid)
                .values(recommendation=rec, as_of=as_of, updated_at=now)
            )


# =========================================================================== deliveries


def backoff(attempts: int) -> timedelta:
    """Wait before retry number ``attempts`` + 1: 1 min x 2^(attempts-1), at most 6 h."""
    return timedelta(seconds=min(BACKOFF_FIRST_S * 2 ** max(attempts - 1, 0), BACKOFF_MAX_S))


def worker_id() -> str:
    """This run's claim name: host, process id and a random part."""
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _claim(engine: Engine, *, worker: str, now: datetime, lease: timedelta) -> list[int]:
    D = Delivery
    due = sa.or_(D.claimed_until.is_(None), D.claimed_until < now)
    with Session(engine) as s:
        ids = list(
            s.execute(
                sa.select(D.id)
                .join(Webhook, Webhook.id == D.webhook_id)
                .where(
                    D.status == PENDING, D.next_attempt_at <= now, due, Webhook.removed_at.is_(None)
                )
                .order_by(D.id)
            ).scalars()
        )
    claimed: list[int] = []
    for did in ids:
        with engine.begin() as conn:
            res = conn.execute(
                sa.update(D.__table__)
                .where(D.id == did, D.status == PENDING, due)
                .values(claimed_by=worker, claimed_until=now + lease)
            )
        if res.rowcount == 1:
            claimed.append(did)
    return claimed


@dataclass
class _Job:
    delivery_id: int
    webhook_id: int
    url: str
    secret: str
    event_id: str
    body: str
    attempts: int


@dataclass
class DeliveryOutcome:
    """What happened to one claimed delivery in a run."""

    delivery_id: int
    url: str
    event_id: str
    status: str  # delivered | failed | deferred
    status_code: int | None = None
    error: str = ""


def _send(client: httpx.Client, job: _Job) -> tuple[int | None, str]:
    """POST one signed event; returns (status code or None, error text or "")."""
    sent_at = datetime.now(UTC)  # the signature's timestamp is the real send time
    signature = SignatureScheme(job.secret).sign(job.event_id, sent_at, job.body.encode())
    headers = {
        "content-type": "application/json",
        "user-agent": "PilotGate-webhooks/1",
        "webhook-id": job.event_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signature,
    }
    try:
        r = client.post(job.url, content=job.body.encode(), headers=headers)
    except httpx.TimeoutException:
        return None, f"timed out after {client.timeout.read or client.timeout.connect} s"
    except httpx.HTTPError as exc:
        return None, f"cannot connect: {type(exc).__name__}: {' '.join(str(exc).split())}"[:500]
    if 200 <= r.status_code < 300:
        return r.status_code, ""
    return r.status_code, f"endpoint answered {r.status_code} {r.reason_phrase}"[:500]


def _deliver_endpoint(
    engine: Engine, client: httpx.Client, jobs: list[_Job], *, worker: str, now: datetime
) -> list[DeliveryOutcome]:
    """Send one endpoint's jobs in order; after a timeout or connection error the rest
    wait for a later run (released, not attempted)."""
    out: list[DeliveryOutcome] = []
    D = Delivery.__table__
    down_until: datetime | None = None
    for job in jobs:
        mine = sa.and_(Delivery.id == job.delivery_id, Delivery.claimed_by == worker)
        if down_until is not None:
            with engine.begin() as conn:
                conn.execute(
                    sa.update(D)
                    .where(mine)
                    .values(claimed_by=None, claimed_until=None, next_attempt_at=down_until)
                )
            out.append(DeliveryOutcome(job.delivery_id, job.url, job.event_id, "deferred"))
            continue
        code, error = _send(client, job)
        attempts = job.attempts + 1
        with engine.begin() as conn:
            if not error:
                conn.execute(
                    sa.update(D)
                    .where(mine)
                    .values(
                        status=DELIVERED,
                        attempts=attempts,
                        last_attempt_at=now,
                        last_status_code=code,
                        last_error="",
                        delivered_at=now,
                        claimed_by=None,
                        claimed_until=None,
                    )
                )
                out.append(DeliveryOutcome(job.delivery_id, job.url, job.event_id, DELIVERED, code))
                continue
            retry_at = now + backoff(attempts)
            conn.execute(
                sa.update(D)
                .where(mine)
                .values(
                    attempts=attempts,
                    last_attempt_at=now,
                    last_status_code=code,
                    last_error=error,
                    next_attempt_at=retry_at,
                    claimed_by=None,
                    claimed_until=None,
                )
            )
        out.append(
            DeliveryOutcome(
                job.delivery_id,
                job.url,
                job.event_id,
                "failed",
                code,
                f"{error}; retry after {retry_at:%Y-%m-%d %H:%M} UTC",
            )
        )
        if code is None:  # no answer at all: do not wait on this endpoint again now
            down_until = retry_at
    return out


def deliver_pending(
    engine: Engine,
    *,
    now: datetime,
    timeout_s: float,
    worker: str | None = None,
    max_threads: int = 8,
) -> list[DeliveryOutcome]:
    """Claim and send every due pending delivery (one thread per endpoint)."""
    worker = worker or worker_id()
    # The lease outlives the slowest possible run of one endpoint's batch start, so a
    # claim cannot expire while its request is in flight.
    lease = timedelta(seconds=max(600.0, timeout_s * 20))
    ids = _claim(engine, worker=worker, now=now, lease=lease)
    if not ids:
        return []
    D, E, W = Delivery, AlertEvent, Webhook
    with Session(engine) as s:
        rows = s.execute(
            sa.select(D.id, D.webhook_id, W.url, W.secret, E.event_id, E.payload, D.attempts)
            .join(E, E.id == D.alert_event_id)
            .join(W, W.id == D.webhook_id)
            .where(D.id.in_(ids), D.claimed_by == worker)
            .order_by(D.id)
        ).all()
    by_endpoint: dict[int, list[_Job]] = defaultdict(list)
    for r in rows:
        by_endpoint[r[1]].append(_Job(*r))
    outcomes: list[DeliveryOutcome] = []
    timeout = httpx.Timeout(timeout_s)
    with (
        httpx.Client(timeout=timeout, follow_redirects=False) as client,
        ThreadPoolExecutor(max_workers=min(max_threads, len(by_endpoint))) as pool,
    ):
        futures = [
            pool.submit(_deliver_endpoint, engine, client, jobs, worker=worker, now=now)
            for jobs in by_endpoint.values()
        ]
        for f in futures:
            outcomes.extend(f.result())
    return sorted(outcomes, key=lambda o: o.delivery_id)


# =========================================================================== digest


def _smtp_send(
    url: str,
    *,
    sender: str,
    recipients: list[str],
    subject: str,
    text: str,
    attachment: bytes,
    filename: str,
    timeout_s: float,
) -> None:
    """Send one message through the SMTP server at ``url`` (smtp://, smtp+starttls://,
    smtps://; optional user:password@). Raises OSError/smtplib errors."""
    import smtplib
    from email.message import EmailMessage
    from urllib.parse import unquote, urlsplit

    u = urlsplit(url)
    if u.scheme not in ("smtp", "smtps", "smtp+starttls") or not u.hostname:
        raise ValueError("PILOTGATE_SMTP_URL must look like smtp://host:port")
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, ", ".join(recipients), subject
    msg.set_content(text)
    msg.add_attachment(attachment, maintype="application", subtype="pdf", filename=filename)
    cls = smtplib.SMTP_SSL if u.scheme == "smtps" else smtplib.SMTP
    port = u.port or (465 if u.scheme == "smtps" else 25)
    with cls(u.hostname, port, timeout=timeout_s) as smtp:
        if u.scheme == "smtp+starttls":
            smtp.starttls()
        if u.username:
            smtp.login(unquote(u.username), unquote(u.password or ""))
        smtp.send_message(msg)


def _safe_smtp(url: str) -> str:
    from urllib.parse import urlsplit

    u = urlsplit(url)
    return f"{u.scheme}://{u.hostname}:{u.port or ''}"


def send_digest(engine: Engine, *, as_of: date, now: datetime, settings, worker: str) -> str:
    """Send the weekly digest (the portfolio report attached) once per ISO week of
    ``as_of``; returns one line saying what happened. A failed send is recorded and
    retried on the next run."""
    from metrics import report, service

    if not settings.digest_recipients or not settings.smtp_url:
        return "digest: off (set PILOTGATE_DIGEST_RECIPIENTS and PILOTGATE_SMTP_URL)"
    week = C.iso_label(as_of)
    T = DigestSend.__table__
    with engine.begin() as conn:
        _insert_ignore(
            conn,
            T,
            dict(week=week, status=PENDING, recipients="", attempts=0, last_error=""),
            "week",
        )
        free = sa.or_(
            T.c.status.in_([PENDING, "failed"]),
            sa.and_(T.c.status == "sending", T.c.claimed_until < now),
        )
        res = conn.execute(
            sa.update(T)
            .where(T.c.week == week, free)
            .values(
                status="sending",
                claimed_by=worker,
                claimed_until=now + timedelta(minutes=10),
                attempts=T.c.attempts + 1,
            )
        )
    if res.rowcount != 1:
        return f"digest: {week} already sent"
    recipients = list(settings.digest_recipients)
    mine = sa.and_(T.c.week == week, T.c.claimed_by == worker)
    try:
        with Session(engine) as s:
            inputs = service.portfolio_report_inputs(s, as_of=as_of)
        pdf = report.portfolio_report_pdf(inputs)
        pilots = inputs.pilots
        lines = [f"PilotGate weekly digest, {week} (as of {as_of.isoformat()})", ""]
        for r in pilots.to_dict("records"):
            dd = r["decision_date"]
            lines.append(
                f"- {r['pilot']}: {report.words(r['recommendation'])}, decision "
                f"{dd.isoformat()} ({report.decision_countdown(dd, as_of)})"
            )
        lines += ["", "The portfolio report is attached (PDF)."]
        _smtp_send(
            settings.smtp_url,
            sender=settings.digest_sender,
            recipients=recipients,
            subject=f"PilotGate digest {week}: {len(pilots)} pilots",
            text="\n".join(lines),
            attachment=pdf,
            filename=f"pilotgate-portfolio-{as_of.isoformat()}.pdf",
            timeout_s=settings.smtp_timeout_s,
        )
    except Exception as exc:  # any failure: recorded and retried, never a traceback
        error = f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:900]
        with engine.begin() as conn:
            conn.execute(
                sa.update(T)
                .where(mine)
                .values(status="failed", last_error=error, claimed_by=None, claimed_until=None)
            )
        return (
            f"digest: {week} not sent through {_safe_smtp(settings.smtp_url)} ({error}); "
            "retried on the next run"
        )
    with engine.begin() as conn:
        conn.execute(
            sa.update(T)
            .where(mine)
            .values(
                status="sent",
                sent_at=now,
                recipients=", ".join(recipients)[:4000],
                last_error="",
                claimed_by=None,
                claimed_until=None,
            )
        )
    return f"digest: {week} sent to {len(recipients)} recipient(s)"


# =========================================================================== run


@dataclass(frozen=True)
class AlertRunReport:
    """What one :func:`run_alerts` did.

    Attributes:
        found: events the portfolio shows as of the day (new or already stored).
        new_events: ids of the events stored by this run.
        deliveries: one outcome per delivery this run claimed.
        digest: one line about the weekly digest.
    """

    as_of: date
    found: int
    new_events: list[str]
    deliveries: list[DeliveryOutcome]
    digest: str

    @property
    def delivered(self) -> int:
        return sum(o.status == DELIVERED for o in self.deliveries)

    @property
    def failed(self) -> list[DeliveryOutcome]:
        return [o for o in self.deliveries if o.status != DELIVERED]

    def summary_line(self) -> str:
        """``alerts as of 2012-06-30: 3 events (2 new); 4 deliveries sent, 1 failed``."""
        failed = sum(o.status == "failed" for o in self.deliveries)
        deferred = sum(o.status == "deferred" for o in self.deliveries)
        return (
            f"alerts as of {self.as_of.isoformat()}: {self.found} events "
            f"({len(self.new_events)} new); {self.delivered} deliveries sent, "
            f"{failed} failed, {deferred} deferred (retried on a later run)"
        )


def run_alerts(
    *,
    engine: Engine,
    as_of: date,
    now: datetime | None = None,
    settings=None,
    worker: str | None = None,
) -> AlertRunReport:
    """Evaluate the portfolio as of ``as_of``, store new events once, deliver every due
    pending delivery (new ones and earlier failures whose backoff has passed), and send
    the weekly digest when due. Safe to run from several processes at once.

    Args:
        now: the run's clock for scheduling (claims, backoff, stored times); default the
            current UTC time. Signatures always carry the real send time.
        settings: :class:`metrics.settings.Settings` (default the process's).
    """
    from metrics import governance, service
    from metrics.settings import get_settings

    settings = settings or get_settings()
    now = now or utcnow()
    worker = worker or worker_id()
    with Session(engine) as s:
        ev = service.evaluate(s, as_of=as_of)
        decisions = governance.decisions_frame(s)
        last = dict(s.execute(sa.select(AlertState.pilot_id, AlertState.recommendation)).all())
    pilots = ev.pilots[ev.pilots[C.START_DATE].map(lambda d: pd.Timestamp(d).date() <= as_of)]
    events = detect_events(
        pilots=pilots,
        metrics=ev.metrics,
        decisions=decisions,
        last_recommendation=last,
        as_of=as_of,
    )
    with Session(engine) as s:
        new = store_events(s, events, now=now)
        _store_recommendations(s, pilots, as_of=as_of, now=now)
        s.commit()
    outcomes = deliver_pending(engine, now=now, timeout_s=settings.webhook_timeout_s, worker=worker)
    digest = send_digest(engine, as_of=as_of, now=now, settings=settings, worker=worker)
    return AlertRunReport(as_of, len(events), new, outcomes, digest)


__all__ = [
    "EVENT_TYPES",
    "AlertError",
    "AlertRunReport",
    "Event",
    "add_webhook",
    "check_secret",
    "check_url",
    "deliver_pending",
    "deliveries_frame",
    "detect_events",
    "event_id",
    "new_secret",
    "remove_webhook",
    "run_alerts",
    "send_digest",
    "webhooks_frame",
]


class AlertSchedule:
    """Runs :func:`run_alerts` every ``interval_s`` seconds in a background thread (the
    API process's schedule, DESIGN §13; cron can run ``pilotgate alerts run`` instead).

    The first run comes ``first_delay_s`` after :meth:`start`. A run that fails is
    logged and the schedule goes on; nothing it had stored is lost (deliveries stay
    pending and are retried). Overlap with cron or other API processes is safe: events
    are stored once and deliveries are claimed atomically.

    Args:
        engine: the database.
        interval_s: seconds between the starts of two runs.
        run: the function called as ``run(engine=..., as_of=...)``; default
            :func:`run_alerts` (tests pass their own).
        today: the as-of day of each run; default :func:`metrics.service.today`.
    """

    def __init__(
        self,
        *,
        engine: Engine,
        interval_s: float,
        first_delay_s: float = 5.0,
        run=None,
        today=None,
    ) -> None:
        import threading

        self.engine, self.interval_s, self.first_delay_s = engine, interval_s, first_delay_s
        self._run = run or run_alerts
        self._today = today
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="pilotgate-alerts", daemon=True)
        self.runs = 0
        self.failures = 0

    def start(self) -> None:
        """Start the background thread."""
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Ask the thread to stop and wait up to ``timeout_s`` for a run in progress."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _loop(self) -> None:
        import logging

        log = logging.getLogger("pilotgate.alerts")
        wait = self.first_delay_s
        while not self._stop.wait(wait):
            if self._today is not None:
                day = self._today()
            else:
                from metrics.service import today

                day = today()
            try:
                report = self._run(engine=self.engine, as_of=day)
                self.runs += 1
                log.info("alerts run as of %s: %s", day, report)
            except Exception as exc:  # a failed run must not stop the schedule
                self.failures += 1
                log.warning("alerts run as of %s failed: %s", day, type(exc).__name__)
            wait = self.interval_s
