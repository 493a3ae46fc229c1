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

from metrics.models import clean_name

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
        api_max_body_bytes: largest request body the HTTP API reads (bytes, default
            10 MB); a larger one is refused with 413 before anything is parsed.
        api_max_rows: most measurement rows (JSON rows, or CSV data lines) one API
            request may carry (default 50,000); more is refused with 413: split it.
        pool_size, max_overflow, pool_timeout_s: PostgreSQL connection pool (per process).
        auth_mode: ``none`` (embedded default: one local user, ``actor``, with every
            right), ``oidc`` (Streamlit's ``st.login`` with the OpenID Connect provider
            in ``.streamlit/secrets.toml``) or ``proxy`` (user name from the trusted
            header ``proxy_user_header`` set by a reverse proxy).
        proxy_user_header: the one header trusted in proxy mode (e.g.
            ``X-Forwarded-User``); required when auth_mode is ``proxy``, ignored otherwise.
        default_role: role of a signed-in user (oidc/proxy) who is not in the users
            table yet: ``viewer`` (default) or ``none`` (refuse until an admin adds them).
        server_address: the address the dashboard (``pilotgate serve``) listens on:
            ``127.0.0.1`` (default, this machine only). A non-loopback address is
            refused unless the auth mode makes it safe (``metrics.exposure``).
        trusted_proxy: the address of the TLS-terminating reverse proxy in front of
            PilotGate (``PILOTGATE_TRUSTED_PROXY``); stating it is what allows proxy mode
            and the API to listen on a non-loopback address (docs/operations.md).
        connect_timeout_s: how long (seconds) opening a PostgreSQL connection may take
            before failing with a message naming the host (default 10; libpq counts
            whole seconds, at least 2).
        max_import_columns: most columns a CSV import reads (a wide-form file has one
            per metric, plus pilot and week); a wider file is refused in one line.
        max_import_rows: most data rows a CSV import reads; a longer file is refused
            in one line (split it).
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
    api_max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    api_max_rows: int = Field(default=50_000, ge=1)
    pool_size: int = Field(default=5, ge=1, le=100)
    max_overflow: int = Field(default=10, ge=0, le=100)
    pool_timeout_s: float = Field(default=30.0, gt=0)
    auth_mode: Literal["none", "oidc", "proxy"] = "none"
    proxy_user_header: str | None = Field(default=None, min_length=1, max_length=100)
    default_role: Literal["viewer", "none"] = "viewer"
    server_address: str = Field(default="127.0.0.1", min_length=1, max_length=255)
    trusted_proxy: str | None = Field(default=None, min_length=1, max_length=255)
    connect_timeout_s: float = Field(default=10.0, gt=0, le=3600)
    # --- input bounds and names (issue 9 items 5, 12): bounded work per imported file
    max_import_columns: int = Field(default=500, ge=3, le=100_000)
    max_import_rows: int = Field(default=2_000_000, ge=1, le=100_000_000)

    @field_validator("actor")
    @classmethod
    def _actor_name(cls, v: str) -> str:
        return clean_name(v, "actor")

    # --- end of input bounds and names
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
