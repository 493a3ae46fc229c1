"""Who is signed in: the dashboard user's name in each auth mode (docs/auth.md).

``Settings.auth_mode`` decides where the name comes from:

- ``none`` (embedded default): nobody signs in; the one local user is
  ``Settings.actor`` (``local``), an admin unless the users table says otherwise.
- ``oidc``: Streamlit's ``st.login`` with the OpenID Connect provider in
  ``.streamlit/secrets.toml``. The name is the ID token's ``email`` claim, or its
  ``sub`` (subject) when the provider sends no e-mail or marks it unverified
  (``email_verified`` false): an unverified address could name someone else.
- ``proxy``: the value of the one trusted header ``Settings.proxy_user_header`` set by
  a reverse proxy (e.g. oauth2-proxy), read from ``st.context.headers``. No header
  (or an empty, repeated or malformed one) means nobody is signed in: never a
  fallback user.

The role of the name is looked up fresh on every run by ``dashboard.state`` (through
``metrics.access.role_of``); this module only says *who*, never *what they may do*.
The functions that take plain mappings (:func:`name_from_user_info`,
:func:`name_from_header_values`) are pure, so every rule is tested without a server.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st

from dashboard.text import md_escape
from metrics.models import Role, clean_name
from metrics.settings import Settings, get_settings

#: Longest accepted user name (the ``app_user.name`` column).
MAX_NAME = 200


@dataclass(frozen=True)
class Identity:
    """The person using this browser session.

    Attributes:
        mode: the auth mode (``none`` | ``oidc`` | ``proxy``).
        name: the actor name recorded on writes; None when nobody is signed in.
        email: the e-mail address when known (oidc), else "".
        problem: why nobody is signed in, in words for the sign-in page ("" when
            signed in).
    """

    mode: str
    name: str | None
    email: str = ""
    problem: str = ""

    @property
    def signed_in(self) -> bool:
        """True when a user name is known."""
        return self.name is not None


def _clean_name(raw: object) -> str | None:
    """``raw`` as :func:`metrics.models.clean_name` normalises every name (NFC,
    trimmed), or None when empty, too long or holding control, line-break or
    bidirectional formatting characters."""
    if raw is None:
        return None
    try:
        text = clean_name(str(raw))
    except ValueError:
        return None
    if not text or len(text) > MAX_NAME:
        return None
    return text


def header_text(value: str) -> str | None:
    """A request header's value as the text its bytes spell in UTF-8, or None when
    they are not UTF-8.

    Tornado (under Streamlit) decodes header bytes as Latin-1, so ``José`` sent as
    UTF-8 arrives as ``JosÃ©``; encoding back to Latin-1 recovers the bytes. A value
    holding a character beyond Latin-1 did not come from raw bytes and is kept as is.
    """
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError:
        return value
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _is_false(value: object) -> bool:
    return value is False or (isinstance(value, str) and value.strip().lower() == "false")


def name_from_user_info(user_info: Mapping[str, Any]) -> tuple[str | None, str]:
    """(name, email) of an OpenID Connect user from ``st.user`` (as a plain mapping).

    Rules: nobody unless ``is_logged_in`` is True; the name is the ``email`` claim
    unless it is missing, malformed or ``email_verified`` is false, then the ``sub``
    claim; None when neither is usable.
    """
    if user_info.get("is_logged_in") is not True:
        return None, ""
    email = _clean_name(user_info.get("email"))
    if email is not None and "@" not in email:
        email = None
    if email is not None and not _is_false(user_info.get("email_verified")):
        return email, email
    return _clean_name(user_info.get("sub")), email or ""


def name_from_header_values(values: Sequence[str], header: str) -> tuple[str | None, str]:
    """(name, problem) from every value the request carried for the trusted header.

    Exactly one non-empty, single-line value of at most 200 characters is a name (its
    bytes read as UTF-8: :func:`header_text`; normalised as every name is:
    :func:`metrics.models.clean_name`); anything else is nobody, with the reason (a
    repeated header means a client could have added its own copy before the proxy's,
    so none is trusted).
    """
    if not values:
        return None, f"the request has no {header} header"
    if len(values) > 1:
        return None, (
            f"the request has the {header} header {len(values)} times; the proxy must "
            "replace any copy the browser sends"
        )
    text = header_text(values[0])
    if text is None:
        return None, f"the {header} header is not UTF-8 text"
    name = _clean_name(text)
    if name is None:
        return None, f"the {header} header is empty or not a valid user name"
    return name, ""


def _request_header_values(header: str) -> list[str]:
    """Every value of ``header`` in this session's request (``st.context.headers``)."""
    try:
        return list(st.context.headers.get_all(header))
    except Exception:  # no client context (e.g. a bare script run): no headers
        return []


def _user_info() -> dict[str, Any]:
    try:
        return dict(st.user.to_dict())
    except Exception:  # no script run context
        return {}


def current_identity(settings: Settings | None = None) -> Identity:
    """Who uses this session, per ``Settings.auth_mode`` (see the module docstring)."""
    settings = settings or get_settings()
    mode = settings.auth_mode
    if mode == "none":
        return Identity(mode=mode, name=settings.actor)
    if mode == "oidc":
        name, email = name_from_user_info(_user_info())
        if name is None:
            return Identity(mode=mode, name=None, problem="not logged in")
        return Identity(mode=mode, name=name, email=email)
    header = settings.proxy_user_header or ""
    name, problem = name_from_header_values(_request_header_values(header), header)
    return Identity(mode=mode, name=name, problem=problem)


def _secrets_files() -> str:
    """The secrets file(s) Streamlit reads, for messages (``secrets.files``)."""
    try:
        files = [str(f) for f in st.get_option("secrets.files") or []]
    except Exception:  # pragma: no cover - the option always exists in Streamlit >= 1.28
        files = []
    existing = [f for f in files if Path(f).exists()]
    return " or ".join(existing or files[-1:] or [".streamlit/secrets.toml"])


def _cookie_secret() -> object:
    try:
        return st.secrets.get("auth", {}).get("cookie_secret")
    except Exception:  # no secrets.toml at all, or an unreadable one
        return None


def _real_server() -> bool:
    """True when a Streamlit server runs this script (not AppTest, whose runtime is a
    stand-in and listens nowhere)."""
    from streamlit import runtime

    return runtime.exists() and isinstance(runtime.get_instance(), runtime.Runtime)


def startup_refusal(settings: Settings | None = None) -> str | None:
    """Why this dashboard must not serve anyone, in one line, or None.

    Checked on every run before any page (so ``streamlit run streamlit_app.py
    --server.address 0.0.0.0`` is refused as ``pilotgate serve --address`` is):

    - the address Streamlit listens on (``server.address``; unset means every
      interface) must be allowed by :func:`metrics.exposure.listen_refusal`;
    - in ``oidc`` mode the sign-in cookie secret must be set, not the example's
      placeholder and at least 32 bytes of entropy
      (:func:`metrics.exposure.cookie_secret_problem`).
    """
    from metrics.exposure import cookie_secret_problem, example_placeholders, listen_refusal

    settings = settings or get_settings()
    address = st.get_option("server.address")
    if not address and not _real_server():
        address = "127.0.0.1"  # AppTest: no server, nothing listens
    refusal = listen_refusal(
        address or "",
        door="dashboard",
        auth_mode=settings.auth_mode,
        trusted_proxy=settings.trusted_proxy,
    )
    if refusal is None and settings.auth_mode == "oidc" and oidc_configured():
        refusal = cookie_secret_problem(
            _cookie_secret(), file=_secrets_files(), placeholders=example_placeholders()
        )
    return refusal


#: Refusals already written to the server's log (each once per process).
_LOGGED_REFUSALS: set[str] = set()


def refused_page(reason: str) -> None:
    """The only page a refused dashboard shows (see :func:`startup_refusal`); the
    reason also goes once to the server's standard error, where the operator looks."""
    if reason not in _LOGGED_REFUSALS:
        _LOGGED_REFUSALS.add(reason)
        print(f"PilotGate is not serving: {reason}", file=sys.stderr, flush=True)
    st.title("PilotGate")
    st.error(f"PilotGate is not serving: {reason}.")


def oidc_configured() -> bool:
    """True when ``.streamlit/secrets.toml`` has an ``[auth]`` section for ``st.login``."""
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets.toml at all
        return False


# --------------------------------------------------------------------------- UI pieces


def describe(identity: Identity, role: Role | None) -> str:
    """The sidebar line: ``Signed in as local (single-user mode, admin)``,
    ``Signed in as ana@example.com (editor)``; the name is shown as typed (markdown-escaped
    by the caller)."""
    role_text = role.value if role is not None else "no access"
    if identity.mode == "none":
        return f"Signed in as {identity.name} (single-user mode, {role_text})"
    via = " via the sign-in proxy" if identity.mode == "proxy" else ""
    return f"Signed in as {identity.name} ({role_text}){via}"


def sidebar_identity(identity: Identity, role: Role | None) -> None:
    """Who is signed in, with the role, at the bottom of the sidebar; a Log out button
    in oidc mode."""
    with st.sidebar:
        st.caption(md_escape(describe(identity, role)))
        if identity.mode == "oidc" and st.button(
            "Log out", key="auth-logout", icon=":material/logout:"
        ):
            st.logout()


def sign_in_page(identity: Identity) -> None:
    """The page shown to a session with nobody signed in (oidc or proxy mode)."""
    st.title("PilotGate")
    if identity.mode == "oidc":
        st.subheader("Log in")
        st.write(
            "PilotGate shows AI pilots to the people of your organisation. "
            "Log in with your organisation's account to continue."
        )
        if not oidc_configured():
            st.error(
                "Sign-in is switched on (PILOTGATE_AUTH_MODE=oidc) but "
                ".streamlit/secrets.toml has no [auth] section. An operator must add the "
                "OpenID Connect provider there (see docs/auth.md)."
            )
            return
        if st.button("Log in", key="auth-login", type="primary", icon=":material/login:"):
            st.login()
        return
    st.subheader("Not signed in")
    st.error(
        f"Nobody is signed in: {identity.problem}. Open PilotGate through your "
        "organisation's sign-in proxy; the dashboard never guesses a user."
    )


def no_access_page(identity: Identity) -> None:
    """The page shown to a signed-in person without any role (``default_role=none``)."""
    st.title("PilotGate")
    st.subheader("No access yet")
    st.warning(
        f"You are signed in as {md_escape(identity.name or '')}, but you are not a PilotGate "
        "user yet. Ask an admin to add you (Admin page, or "
        "`pilotgate users add NAME --role viewer`)."
    )


__all__ = [
    "Identity",
    "current_identity",
    "describe",
    "name_from_header_values",
    "name_from_user_info",
    "no_access_page",
    "oidc_configured",
    "refused_page",
    "sidebar_identity",
    "sign_in_page",
    "startup_refusal",
]
