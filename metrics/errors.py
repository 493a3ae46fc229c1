"""Errors the store raises for a refused write (a user's mistake, never a crash)."""

from __future__ import annotations


class StoreError(ValueError):
    """A write was refused; the message says what to change. Nothing was written."""


class PermissionDenied(StoreError):
    """The actor's role does not allow this write. Nothing was written.

    The message names the actor, their role, the action and the role it needs.
    """


__all__ = ["PermissionDenied", "StoreError"]
