"""Errors the store raises for a refused write (a user's mistake, never a crash), and
the one-line wording of a pydantic validation error. The lowest layer: imports nothing
of PilotGate, so every module may use it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class StoreError(ValueError):
    """A write was refused; the message says what to change. Nothing was written."""


class PermissionDenied(StoreError):
    """The actor's role does not allow this write. Nothing was written.

    The message names the actor, their role, the action and the role it needs.
    """


def validation_message(exc: ValidationError) -> str:
    """One readable line from a pydantic ``ValidationError``: ``field: reason; ...``."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err.get("loc", ()) if x != "__root__")
        msg = err.get("msg", "invalid").removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


__all__ = ["PermissionDenied", "StoreError", "validation_message"]
