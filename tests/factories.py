"""Factories for tests: pilots, metrics and weekly values with readable defaults."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
from sqlmodel import Session

from metrics import store
from metrics.models import MetricCreate, PilotCreate


def metric_in(key: str = "resolution_time", **kw) -> MetricCreate:
    """A metric definition; defaults: hours, lower is better, primary, target 80."""
    fields = dict(
        key=key,
        label=key.replace("_", " ").capitalize(),
        unit="h",
        direction="lower_is_better",
        role="primary",
        target=80.0,
        min_value=0.0,
    )
    fields.update(kw)
    return MetricCreate(**fields)


def make_pilot(
    session: Session,
    name: str = "Helpdesk triage assistant",
    *,
    metrics: list[MetricCreate] | None = None,
    start_date: date = date(2012, 1, 2),
    decision_date: date = date(2012, 6, 29),
    actor: str = "tester",
    **kw,
) -> int:
    """Create (or update) a pilot with ``metrics`` (default one resolution_time metric);
    returns the pilot id. Flushes, does not commit."""
    fields = dict(name=name, vendor="Acme AI", start_date=start_date, decision_date=decision_date)
    fields.update(kw)
    res = store.save_pilot(
        session=session,
        actor=actor,
        pilot_in=PilotCreate(**fields),
        metrics_in=metrics if metrics is not None else [metric_in()],
    )
    return res.pilot_id


def metric_id(session: Session, pilot: str, key: str) -> int:
    """The id of metric ``key`` of pilot ``pilot``."""
    m = store.metrics_frame(session)
    row = m[(m["pilot"] == pilot) & (m["key"] == key)]
    return int(row["metric_id"].iloc[0])


def add_weeks(
    session: Session,
    metric: int,
    first_week: date,
    values: list[float | None],
    *,
    actor: str = "tester",
) -> store.WriteCounts:
    """Write consecutive weekly ``values`` from ``first_week`` (a Monday); None = skip."""
    rows = [
        {"metric_id": metric, "week": first_week + timedelta(weeks=i), "value": v, "note": ""}
        for i, v in enumerate(values)
        if v is not None
    ]
    return store.write_measurements(session=session, actor=actor, rows=pd.DataFrame(rows))


def make_user(
    session: Session,
    name: str = "ana@example.com",
    *,
    role: str = "viewer",
    email: str = "",
    actor: str = "tester",
    bootstrap: bool = False,
) -> int:
    """Add a user with ``role`` (viewer | editor | admin) through ``metrics.users.add_user``;
    returns the user id. ``actor`` must be an admin (in auth mode none any name without
    a user row is), or ``bootstrap`` while there is no admin. Flushes, does not commit."""
    from metrics import users

    return users.add_user(
        session=session, actor=actor, name=name, email=email, role=role, bootstrap=bootstrap
    )


def make_token(
    session: Session,
    name: str = "acme-nightly",
    *,
    role: str = "editor",
    pilots: list[str] | None = None,
    actor: str = "tester",
) -> str:
    """Create an API token through ``metrics.store.create_api_token``; returns its secret.
    ``actor`` must be an admin (in auth mode none any name without a user row is).
    Flushes, does not commit."""
    from metrics.models import ApiTokenCreate

    return store.create_api_token(
        session=session,
        actor=actor,
        token_in=ApiTokenCreate(name=name, role=role, pilots=pilots or []),
    )
