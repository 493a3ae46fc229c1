"""PilotGate settings: one pydantic-settings object, read from the environment.

Every setting is read here and nowhere else; environment variables use the prefix
``PILOTGATE_`` (for example ``PILOTGATE_DATABASE_URL``).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]


class Settings(BaseSettings):
    """Process-wide configuration.

    Attributes:
        database_url: SQLAlchemy URL. Default: SQLite file ``pilotgate.db`` in the
            working directory. PostgreSQL: ``postgresql+psycopg://user@host:5432/db``.
        actor: name recorded on writes when no signed-in user is known (auth mode none).
        trailing_window: default trailing window, in reported pilot weeks, for "current".
        min_weeks: default minimum number of pilot weeks before a metric is judged.
        shared_data_dir: folder holding the shared real data (helpdesk.csv, ...).
        sqlite_busy_timeout_ms: how long SQLite waits for a lock before failing.
        pool_size, max_overflow, pool_timeout_s: PostgreSQL connection pool (per process).
        auth_mode: ``none`` (embedded default: one local user, ``actor``, with every
            right), ``oidc`` (Streamlit's ``st.login`` with the OpenID Connect provider
            in ``.streamlit/secrets.toml``) or ``proxy`` (user name from the trusted
            header ``proxy_user_header`` set by a reverse proxy).
        proxy_user_header: the one header trusted in proxy mode (e.g.
            ``X-Forwarded-User``); required when auth_mode is ``proxy``, ignored otherwise.
        default_role: role of a signed-in user (oidc/proxy) who is not in the users
            table yet: ``viewer`` (default) or ``none`` (refuse until an admin adds them).
        alerts_interval_s: how often the API process runs :func:`metrics.alerts.run_alerts`
            (seconds, default hourly); cron can run ``pilotgate alerts run`` instead.
        webhook_timeout_s: how long one webhook delivery may take (connect + answer)
            before it counts as failed and is retried on a later run.
        smtp_url: the mail server for the weekly digest: ``smtp://host:port``,
            ``smtp+starttls://user:password@host:587`` or ``smtps://...:465``; None = no
            digest.
        smtp_timeout_s: how long talking to the mail server may take.
        digest_recipients: addresses of the weekly digest (comma-separated in
            ``PILOTGATE_DIGEST_RECIPIENTS``); empty = no digest.
        digest_sender: the digest's From address.
    """

    model_config = SettingsConfigDict(env_prefix="PILOTGATE_", extra="ignore")

    database_url: str = "sqlite:///pilotgate.db"
    actor: str = Field(default="local", min_length=1, max_length=200)
    trailing_window: int = Field(default=4, ge=1)
    min_weeks: int = Field(default=4, ge=1)
    shared_data_dir: Path = REPO_ROOT.parent / "shared" / "data"
    sqlite_busy_timeout_ms: int = Field(default=5000, ge=0)
    pool_size: int = Field(default=5, ge=1, le=100)
    max_overflow: int = Field(default=10, ge=0, le=100)
    pool_timeout_s: float = Field(default=30.0, gt=0)
    auth_mode: Literal["none", "oidc", "proxy"] = "none"
    proxy_user_header: str | None = Field(default=None, min_length=1, max_length=100)
    default_role: Literal["viewer", "none"] = "viewer"
    alerts_interval_s: int = Field(default=3600, ge=60)
    webhook_timeout_s: float = Field(default=10.0, gt=0, le=120)
    smtp_url: str | None = None
    smtp_timeout_s: float = Field(default=30.0, gt=0, le=600)
    digest_recipients: Annotated[list[str], NoDecode] = Field(default_factory=list)
    digest_sender: str = "pilotgate@localhost"

    @field_validator("digest_recipients", mode="before")
    @classmethod
    def _recipients(cls, v: object) -> object:
        if isinstance(v, str):
            v = [x.strip() for x in v.split(",")]
        if isinstance(v, list):
            v = [x for x in v if x]
            bad = [x for x in v if "@" not in str(x) or any(c in str(x) for c in " <>\r\n")]
            if bad:
                raise ValueError(f"digest recipient {bad[0]!r} is not an e-mail address")
        return v

    @model_validator(mode="after")
    def _proxy_header(self) -> Settings:
        if self.auth_mode == "proxy" and not self.proxy_user_header:
            raise ValueError(
                "auth_mode proxy needs PILOTGATE_PROXY_USER_HEADER (the one header your "
                "reverse proxy sets, e.g. X-Forwarded-User)"
            )
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide :class:`Settings` (read once from the environment)."""
    return Settings()
