"""Who can reach PilotGate: the rule for the address a door (dashboard or API) listens on.

Safe by default (DESIGN §9): both doors listen on 127.0.0.1 unless told otherwise. A
non-loopback address is refused when anyone who reaches the port would get rights they
should not have:

- the dashboard in auth mode ``none`` (everyone would be admin);
- the dashboard in auth mode ``proxy`` without a stated trusted proxy (anyone reaching
  the port directly could send the trusted user header);
- the API without a stated trusted proxy (bearer tokens would travel without TLS; the
  proxy terminates TLS in front of it, docs/operations.md).
"""

from __future__ import annotations

import ipaddress
from typing import Literal

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_loopback(address: str) -> bool:
    """True when ``address`` (a host name or IPv4/IPv6 literal, brackets allowed) can
    only be reached from this machine. ``0.0.0.0`` and ``::`` (every interface) are not."""
    host = address.strip().strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def listen_refusal(
    address: str,
    *,
    door: Literal["dashboard", "api"],
    auth_mode: str,
    trusted_proxy: str | None,
) -> str | None:
    """The one-line reason ``door`` must not listen on ``address``, or None when it may.

    Args:
        address: the host the server binds to.
        door: ``dashboard`` (Streamlit) or ``api`` (FastAPI).
        auth_mode: the dashboard's sign-in mode (``none``, ``oidc`` or ``proxy``).
        trusted_proxy: the address of the reverse proxy the operator stated
            (``PILOTGATE_TRUSTED_PROXY``), or None.
    """
    if is_loopback(address):
        return None
    if door == "dashboard" and auth_mode == "none":
        return (
            f"refusing to listen on {address}: auth mode 'none' makes everyone who reaches "
            "the port an admin; listen on 127.0.0.1, or set PILOTGATE_AUTH_MODE=oidc or "
            "proxy (docs/auth.md)"
        )
    if auth_mode == "proxy" and door == "dashboard" and not trusted_proxy:
        return (
            f"refusing to listen on {address}: auth mode 'proxy' trusts a user header that "
            "anyone reaching the port directly could send; state the proxy's address in "
            "PILOTGATE_TRUSTED_PROXY (docs/auth.md)"
        )
    if door == "api" and not trusted_proxy:
        return (
            f"refusing to listen on {address}: API tokens would travel without TLS; put the "
            "API behind a TLS-terminating reverse proxy and state its address in "
            "PILOTGATE_TRUSTED_PROXY (docs/operations.md)"
        )
    return None
