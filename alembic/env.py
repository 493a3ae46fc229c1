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


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate on the connection PilotGate hands over (it holds the migration lock),
    else on a new engine from the settings (the ``alembic`` command line)."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = config.attributes.get("engine") or make_engine()
    with engine.begin() as conn:
        _run(conn)


run_migrations_online()
