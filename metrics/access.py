"""Who may do what: roles checked by the store at every write, and the audit log.

Part of the store layer (it reads the ``app_user`` table and writes ``auditevent``).
Written here rather than taken from a library because the rule is PilotGate's own
and tiny: a role is looked up by the actor's name at the moment of the write, so a
role change takes effect on the next action, in every process.

Resolution of an actor's role (:func:`role_of`):

1. a row in ``app_user`` with that name -> its role (in every auth mode);
2. else, auth mode ``none`` (the embedded single-user default) -> ``admin``: the one
   local user has every right;
3. else (``oidc`` / ``proxy``: a signed-in person not yet added) -> ``default_role``
   from settings (``viewer`` by default; ``none`` refuses everything).
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from metrics.errors import PermissionDenied
from metrics.models import (
    ROLE_RANK,
    TOKEN_ACTOR_PREFIX,
    ApiToken,
    AppUser,
    AuditEvent,
    Role,
    utcnow,
)
from metrics.settings import get_settings


def role_of(session: Session, actor: str) -> Role | None:
    """The role ``actor`` has right now (see the module docstring), or None when the
    actor may do nothing at all (unknown user with ``default_role=none``).

    An actor ``token:<name>`` is an API token (DESIGN §11): its own role while it is
    not revoked, else None; never a user's role, whatever the auth mode.
    """
    if actor.startswith(TOKEN_ACTOR_PREFIX):
        token_role = session.execute(
            sa.select(ApiToken.role).where(
                ApiToken.name == actor.removeprefix(TOKEN_ACTOR_PREFIX),
                ApiToken.revoked_at.is_(None),
            )
        ).scalar()
        return None if token_role is None else Role(token_role)
    stored = session.execute(sa.select(AppUser.role).where(AppUser.name == actor)).scalar()
    if stored is not None:
        return Role(stored)
    settings = get_settings()
    if settings.auth_mode == "none":
        return Role.admin
    return None if settings.default_role == "none" else Role(settings.default_role)


def allowed(role: Role | None, needed: Role) -> bool:
    """True when ``role`` includes ``needed`` (admin > editor > viewer)."""
    return role is not None and ROLE_RANK[role] >= ROLE_RANK[needed]


def require_role(*, session: Session, actor: str, needed: Role, action: str) -> Role:
    """Refuse unless ``actor`` has at least role ``needed``; returns the actor's role.

    Args:
        action: what is being attempted, in words ("import measurements").

    Raises:
        PermissionDenied: e.g. "alice is a viewer: import measurements needs the
            editor role. Ask an admin to change your role."
    """
    if not actor or not actor.strip():
        raise PermissionDenied(f"{action} needs a signed-in user; nobody is signed in")
    role = role_of(session, actor)
    if not allowed(role, needed):
        article = "an" if role is not None and role.value[:1] in "aeiou" else "a"
        has = f"is {article} {role.value}" if role is not None else "is not a PilotGate user"
        raise PermissionDenied(
            f"{actor} {has}: {action} needs the {needed.value} role. "
            "Ask an admin to change your role."
        )
    return role


def record_audit(
    *,
    session: Session,
    actor: str,
    entity: str,
    entity_id: int | None,
    action: str,
    detail: dict[str, Any] | None = None,
) -> None:
    """Add one :class:`AuditEvent` in the caller's transaction (no commit).

    Args:
        entity: "pilot", "metric", "user", "checklist", "decision", ...
        action: "create", "update", "tick", "untick", "set_role", ...
        detail: JSON-serialisable fields (e.g. {"before": {...}, "after": {...}});
            dates and other objects are written with ``str``.
    """
    session.add(
        AuditEvent(
            at=utcnow(),
            actor=actor,
            entity=entity,
            entity_id=entity_id,
            action=action,
            detail=json.dumps(detail or {}, default=str, ensure_ascii=False, sort_keys=True),
        )
    )


__all__ = ["PermissionDenied", "allowed", "record_audit", "require_role", "role_of"]
