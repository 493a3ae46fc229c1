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
import math
import string
from typing import Literal

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
#: Streamlit's prefix for listening on a Unix socket (reachable only through the file
#: system, like loopback).
UNIX_SOCKET_PREFIX = "unix://"
#: What an unset Streamlit ``server.address`` means: every interface.
EVERY_INTERFACE = "0.0.0.0"


def effective_address(option: str | None) -> str:
    """The address a server really listens on for a configured ``option``: an unset
    or empty Streamlit ``server.address`` binds every interface (``0.0.0.0``)."""
    return (option or "").strip() or EVERY_INTERFACE


def is_loopback(address: str) -> bool:
    """True when ``address`` (a host name or IPv4/IPv6 literal, brackets allowed) can
    only be reached from this machine. ``0.0.0.0`` and ``::`` (every interface) are not;
    a Unix socket (``unix://PATH``) is."""
    if address.strip().startswith(UNIX_SOCKET_PREFIX):
        return True
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
    address = effective_address(address)
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


#: Bits of entropy a sign-in cookie secret needs: 32 bytes (what
#: ``python -c "import secrets; print(secrets.token_hex(32))"`` gives).
MIN_COOKIE_SECRET_BITS = 256
_HEX = frozenset(string.hexdigits)
_BASE64 = frozenset(string.ascii_letters + string.digits + "+/=-_")


def secret_entropy_bits(secret: str) -> float:
    """An estimate of the entropy of ``secret``, in bits, as if it were random.

    Each character counts log2 of the smallest alphabet holding all of them (hex 16,
    base64 64, printable ASCII 95), so ``secrets.token_hex(32)`` (64 hex characters)
    counts 256 bits and ``secrets.token_urlsafe(32)`` 258. A string of fewer than 8
    distinct characters (``"a" * 64``, ``"abab..."``) counts only log2 of that number
    per character. Own code, not a library: password-strength libraries judge words
    people choose, not random tokens.
    """
    if not secret:
        return 0.0
    chars = set(secret)
    if chars <= _HEX:
        alphabet = 16
    elif chars <= _BASE64:
        alphabet = 64
    else:
        alphabet = 95
    if len(chars) < 8:
        alphabet = len(chars)
    return len(secret) * math.log2(alphabet) if alphabet > 1 else 0.0


def example_placeholders() -> frozenset[str]:
    """Every value of ``.streamlit/secrets.toml.example`` (refused as real secrets)."""
    import tomllib

    from metrics.settings import REPO_ROOT

    try:
        data = tomllib.loads((REPO_ROOT / ".streamlit" / "secrets.toml.example").read_text())
    except (OSError, ValueError):
        return frozenset()
    return frozenset(str(v) for v in data.get("auth", {}).values())


def cookie_secret_problem(secret: object, *, file: str, placeholders: frozenset[str]) -> str | None:
    """The one-line reason the OIDC sign-in ``cookie_secret`` must not be used, or None.

    Anyone who knows the secret can forge a sign-in cookie offline and be any user, so
    PilotGate refuses to start in oidc mode with a secret that is missing, a placeholder
    (a value of ``.streamlit/secrets.toml.example``, anything with ``replace-with``) or
    shorter than 32 bytes of entropy (:func:`secret_entropy_bits`).

    Args:
        secret: ``[auth] cookie_secret`` as read from the secrets file(s), or None.
        file: the secrets file(s) to name in the message.
        placeholders: the example file's values, refused verbatim.
    """
    fix = (
        f'set [auth] cookie_secret in {file} to a new random value: python -c "import '
        'secrets; print(secrets.token_hex(32))" (docs/auth.md)'
    )
    if secret is None or (isinstance(secret, str) and not secret.strip()):
        return f"refusing to start in oidc mode: no sign-in cookie secret; {fix}"
    text = str(secret).strip()
    if text in placeholders or "replace-with" in text.lower():
        return (
            "refusing to start in oidc mode: the sign-in cookie secret is the example's "
            f"placeholder, so anyone could forge a sign-in cookie; {fix}"
        )
    bits = secret_entropy_bits(text)
    if bits < MIN_COOKIE_SECRET_BITS:
        return (
            f"refusing to start in oidc mode: the sign-in cookie secret is too weak "
            f"(about {int(bits)} bits of entropy, at least {MIN_COOKIE_SECRET_BITS} needed); "
            f"{fix}"
        )
    return None
