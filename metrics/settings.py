"""PilotGate settings: one pydantic-settings object, read from the environment.

Every setting is read here and nowhere else; environment variables use the prefix
``PILOTGATE_`` (for example ``PILOTGATE_DATABASE_URL``).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

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
    """

    model_config = SettingsConfigDict(env_prefix="PILOTGATE_", extra="ignore")

    database_url: str = "sqlite:///pilotgate.db"
    actor: str = Field(default="local", min_length=1, max_length=200)
    trailing_window: int = Field(default=4, ge=1)
    min_weeks: int = Field(default=4, ge=1)
    shared_data_dir: Path = REPO_ROOT.parent / "shared" / "data"
    sqlite_busy_timeout_ms: int = Field(default=5000, ge=0)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide :class:`Settings` (read once from the environment)."""
    return Settings()
