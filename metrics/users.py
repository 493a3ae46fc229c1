"""Users and roles: the store functions behind the Admin page and ``pilotgate users``.

Part of the store layer (no Streamlit). Every write checks the actor's role with
:func:`metrics.access.require_role` (admin), records an :class:`AuditEvent` with
:func:`metrics.access.record_audit`, and leaves the commit to the caller's one session
(``metrics.db.session_scope``), so nothing is written when it raises.

A user's ``name`` is what sign-in yields (docs/auth.md): the e-mail address (or the
OpenID Connect subject) in ``oidc`` mode, the trusted header's value in ``proxy`` mode,
``PILOTGATE_ACTOR`` (default ``local``) in mode ``none`` and on the command line. It is
compared exactly, as :func:`metrics.access.role_of` does.
"""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa
from pydantic import ValidationError
from sqlmodel import Session

from metrics.access import record_audit, require_role
from metrics.db import lock_for_write
from metrics.errors import StoreError
from metrics.models import AppUser, Role, UserCreate, utcnow

#: Columns of :func:`users_frame`, in order.
USER_COLUMNS = ["user_id", "name", "email", "role", "created_at", "created_by", "updated_at"]


def users_frame(session: Session) -> pd.DataFrame:
    """Every user, one row each, sorted by name.

    Returns:
        Columns user_id (int64), name, email, role (object: viewer | editor | admin),
        created_at, updated_at (datetime64[ns, UTC]), created_by (object: the actor who
        added the user). Empty frame with these columns when there are no users.
    """
    stmt = sa.select(
        AppUser.id,
        AppUser.name,
        AppUser.email,
        AppUser.role,
        AppUser.created_at,
        AppUser.created_by,
        AppUser.updated_at,
    ).order_by(AppUser.name)
    rows = session.connection().execute(stmt).all()
    df = pd.DataFrame(rows, columns=USER_COLUMNS)
    df["user_id"] = df["user_id"].astype("int64")
    for col in ("name", "email", "role", "created_by"):
        df[col] = df[col].astype("object")
    for col in ("created_at", "updated_at"):
        df[col] = pd.to_datetime(df[col], utc=True)
    return df


def admin_count(session: Session) -> int:
    """How many users have the admin role (rows of ``app_user``; the implicit local
    admin of auth mode ``none`` is not a row and is not counted)."""
    return int(
        session.execute(
            sa.select(sa.func.count(AppUser.id)).where(AppUser.role == Role.admin.value)
        ).scalar_one()
    )


def _parse_role(role: Role | str) -> Role:
    try:
        return Role(str(role).strip().lower())
    except ValueError:
        raise StoreError(
            f"unknown role {role!r}; use one of {', '.join(r.value for r in Role)}"
        ) from None


def add_user(
    *,
    session: Session,
    actor: str,
    name: str,
    email: str = "",
    role: Role | str = Role.viewer,
    bootstrap: bool = False,
) -> int:
    """Add a user with a role; returns the new user's id.

    Args:
        name: the sign-in name (trimmed; 1..200 characters, no control characters).
        email: optional e-mail address (must contain ``@`` when given).
        role: ``viewer`` (default), ``editor`` or ``admin``.
        bootstrap: the command line's first-admin escape hatch: while the database has
            no admin user at all, the role check is skipped so an operator can create
            the first admin of a team database (auth mode oidc/proxy). Once an admin
            exists it changes nothing. Only ``pilotgate users add`` passes True.

    Raises:
        PermissionDenied: the actor is not an admin (and this is no bootstrap).
        StoreError: invalid name, e-mail or role, or a user with that name exists
            already. Nothing is written.
    """
    bootstrapping = bootstrap and admin_count(session) == 0
    if not bootstrapping:
        require_role(session=session, actor=actor, needed=Role.admin, action="adding a user")
    parsed_role = _parse_role(role)
    try:
        user_in = UserCreate(name=name, email=email or "", role=parsed_role)
    except ValidationError as exc:
        from metrics.errors import validation_message

        raise StoreError(f"user {name!r}: {validation_message(exc)}") from None
    if user_in.email and "@" not in user_in.email:
        raise StoreError(f"user {user_in.name!r}: email {user_in.email!r} is not an e-mail address")
    exists = session.execute(sa.select(AppUser.id).where(AppUser.name == user_in.name)).scalar()
    if exists is not None:
        raise StoreError(
            f"user {user_in.name!r} already exists; change their role instead "
            "(Admin page, or `pilotgate users set-role NAME ROLE`)"
        )
    now = utcnow()
    user = AppUser(
        name=user_in.name,
        email=user_in.email,
        role=user_in.role.value,
        created_at=now,
        created_by=actor,
        updated_at=now,
    )
    session.add(user)
    try:
        session.flush()
    except sa.exc.IntegrityError:  # added by someone else between the check and now
        raise StoreError(
            f"user {user_in.name!r} already exists (someone added them at the same moment); "
            "nothing written: change their role instead"
        ) from None
    detail: dict = {"after": {"name": user.name, "email": user.email, "role": user.role}}
    if bootstrapping:
        detail["bootstrap"] = True
    record_audit(
        session=session,
        actor=actor,
        entity="user",
        entity_id=user.id,
        action="create",
        detail=detail,
    )
    session.flush()
    return int(user.id)


def set_role(*, session: Session, actor: str, name: str, role: Role | str) -> bool:
    """Give user ``name`` the role ``role``; returns False when it already had it.

    The last admin cannot be demoted: make another user admin first. The write lock is
    taken before the check (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: the admin rows
    ``FOR UPDATE``), so two admins demoting each other at once cannot leave the
    database without one.

    Raises:
        PermissionDenied: the actor is not an admin.
        StoreError: unknown role, no user with that name, or ``name`` is the last
            admin and ``role`` is not admin. Nothing is written.
    """
    # Take the write lock before reading anything the decision depends on: SQLite
    # ignores FOR UPDATE, so it takes its database-wide write lock (BEGIN IMMEDIATE);
    # PostgreSQL locks the admin rows, always in id order, then the user. Two
    # concurrent demotions queue up behind each other (no deadlock), and the second one
    # sees the first one's result: the last admin stays.
    lock_for_write(session)
    admins = session.execute(
        sa.select(AppUser.id)
        .where(AppUser.role == Role.admin.value)
        .order_by(AppUser.id)
        .with_for_update()
    ).all()
    # The actor's role is read after the lock, so an admin demoted a moment ago
    # cannot still change roles.
    require_role(session=session, actor=actor, needed=Role.admin, action="changing a role")
    new_role = _parse_role(role)
    user = session.execute(
        sa.select(AppUser).where(AppUser.name == name.strip()).with_for_update()
    ).scalar()
    if user is None:
        raise StoreError(
            f"no user named {name.strip()!r}; add them first "
            "(Admin page, or `pilotgate users add NAME --role ROLE`)"
        )
    old_role = user.role
    if old_role == new_role.value:
        return False
    if old_role == Role.admin.value and len(admins) <= 1:
        raise StoreError(
            f"{user.name} is the last admin: make another user admin before changing "
            f"{user.name}'s role to {new_role.value}"
        )
    user.role = new_role.value
    user.updated_at = utcnow()
    record_audit(
        session=session,
        actor=actor,
        entity="user",
        entity_id=user.id,
        action="set_role",
        detail={"name": user.name, "before": {"role": old_role}, "after": {"role": new_role.value}},
    )
    session.flush()
    return True


__all__ = ["USER_COLUMNS", "add_user", "admin_count", "set_role", "users_frame"]
