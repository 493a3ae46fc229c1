"""Alembic environment: runs migrations on the engine PilotGate hands it.

``metrics.db.init_db`` passes the engine through ``config.attributes["engine"]``;
the ``alembic`` command line falls back to ``Settings.database_url``.
"""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from metrics import models  # noqa: F401
from metrics.db import make_engine

config = context.config
target_metadata = SQLModel.metadata


def run_migrations_online() -> None:
    engine = config.attributes.get("engine") or make_engine()
    with engine.begin() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        context.run_migrations()


run_migrations_online()
