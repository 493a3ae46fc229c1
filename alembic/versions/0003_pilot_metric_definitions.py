"""pilot and metric definitions (names, archive, definition audit)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-08 02:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


import metrics.models

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # trust-evidence (issue 10 item 9): a guardrail metric needs no target.
    with op.batch_alter_table("metric") as batch:
        batch.alter_column("target", existing_type=sa.Float(), nullable=True)


def downgrade() -> None:
    # trust-evidence: a guardrail without a target gets its baseline back as target
    # (never NULL in the older schema; the older code ignores a guardrail's target).
    op.execute("UPDATE metric SET target = COALESCE(baseline, 0) WHERE target IS NULL")
    with op.batch_alter_table("metric") as batch:
        batch.alter_column("target", existing_type=sa.Float(), nullable=False)
