"""api tokens

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-08 02:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


import metrics.models

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('api_token',
    sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('token_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('all_pilots', sa.Boolean(), nullable=False),
    sa.Column('created_at', metrics.models.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('last_used_at', metrics.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', metrics.models.UTCDateTime(timezone=True), nullable=True),
    sa.Column('revoked_by', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_token_name'), ['name'], unique=True)

    op.create_table('api_token_pilot',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_id', sa.Integer(), nullable=False),
    sa.Column('pilot_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['pilot_id'], ['pilot.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['token_id'], ['api_token.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_id', 'pilot_id', name='uq_api_token_pilot')
    )
    with op.batch_alter_table('api_token_pilot', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_token_pilot_pilot_id'), ['pilot_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_api_token_pilot_token_id'), ['token_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('api_token_pilot', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_token_pilot_token_id'))
        batch_op.drop_index(batch_op.f('ix_api_token_pilot_pilot_id'))

    op.drop_table('api_token_pilot')
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_token_name'))

    op.drop_table('api_token')
