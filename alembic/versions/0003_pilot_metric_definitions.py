"""pilot and metric definitions (names, archive, definition audit)

Pilot names become unique ignoring case and spacing (DESIGN §3): ``pilot.name_key``
holds the trimmed, space-collapsed, casefolded name under a unique index. Pilots and
metrics gain ``archived`` (hidden, every value kept). Changes to a definition are
recorded in ``auditevent`` (table of 0002), so no new table is needed.

Existing rows get their key here. Two existing pilots whose names differ only in case
or spacing cannot both keep their name under the new rule: the later one (higher id)
is renamed to "<name> (duplicate N)" -- nothing is deleted or merged -- and the rename
is written to the audit log (actor "migration 0003"), so an admin can see it, rename
it again or archive it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-08 02:00:00
"""
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
import sqlmodel
from alembic import op

import metrics.models

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MIGRATION_ACTOR = "migration 0003"


def _key(name: str) -> str:
    # The rule of metrics.models.pilot_name_key, frozen here: a migration must not
    # change meaning when the application's code changes later.
    return re.sub(r"\s+", " ", name).strip().casefold()


def upgrade() -> None:
    # Plain ADD COLUMN (no batch "move and copy" on SQLite: recreating ``pilot`` would
    # cascade-delete every metric through the foreign keys). SQLite and PostgreSQL both
    # add a NOT NULL column with a server default in place.
    op.add_column(
        'pilot',
        sa.Column(
            'name_key',
            sqlmodel.sql.sqltypes.AutoString(length=600),
            nullable=False,
            server_default='',
        ),
    )
    op.add_column(
        'pilot', sa.Column('archived', sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.add_column(
        'metric', sa.Column('archived', sa.Boolean(), nullable=False, server_default=sa.false())
    )

    conn = op.get_bind()
    pilot = sa.table(
        'pilot', sa.column('id', sa.Integer), sa.column('name', sa.String),
        sa.column('name_key', sa.String),
    )
    audit = sa.table(
        'auditevent',
        sa.column('at', metrics.models.UTCDateTime(timezone=True)),
        sa.column('actor', sa.String),
        sa.column('entity', sa.String),
        sa.column('entity_id', sa.Integer),
        sa.column('action', sa.String),
        sa.column('detail', sa.Text),
    )
    rows = conn.execute(sa.select(pilot.c.id, pilot.c.name).order_by(pilot.c.id)).all()
    taken_keys: set[str] = set()
    taken_names = {name for _, name in rows}
    for pid, name in rows:
        key = _key(name)
        new_name = name
        n = 1
        while key in taken_keys or (new_name != name and new_name in taken_names):
            suffix = " (duplicate)" if n == 1 else f" (duplicate {n})"
            new_name = f"{name[: 200 - len(suffix)]}{suffix}"
            key = _key(new_name)
            n += 1
        taken_keys.add(key)
        if new_name != name:
            taken_names.add(new_name)
            conn.execute(
                sa.update(pilot).where(pilot.c.id == pid).values(name=new_name, name_key=key)
            )
            conn.execute(
                sa.insert(audit).values(
                    at=datetime.now(UTC),
                    actor=MIGRATION_ACTOR,
                    entity='pilot',
                    entity_id=pid,
                    action='rename',
                    detail=json.dumps(
                        {
                            'before': {'name': name},
                            'after': {'name': new_name},
                            'reason': 'pilot names are unique ignoring case and spacing; '
                            'another pilot already has this name',
                        },
                        ensure_ascii=False,
                        sort_keys=True,
                    ),
                )
            )
        else:
            conn.execute(sa.update(pilot).where(pilot.c.id == pid).values(name_key=key))

    op.create_index(op.f('ix_pilot_name_key'), 'pilot', ['name_key'], unique=True)

    # A guardrail metric needs no target (issue 10 item 9). On SQLite this rebuilds
    # ``metric``; metrics.db.init_db runs migrations with foreign keys off, so the
    # rebuild cascades nothing.
    with op.batch_alter_table("metric") as batch:
        batch.alter_column("target", existing_type=sa.Float(), nullable=True)


def downgrade() -> None:
    # A guardrail without a target gets its baseline back as target
    # (never NULL in the older schema; the older code ignores a guardrail's target).
    op.execute("UPDATE metric SET target = COALESCE(baseline, 0) WHERE target IS NULL")
    with op.batch_alter_table("metric") as batch:
        batch.alter_column("target", existing_type=sa.Float(), nullable=False)
    with op.batch_alter_table('metric', schema=None) as batch_op:
        batch_op.drop_column('archived')
    with op.batch_alter_table('pilot', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pilot_name_key'))
        batch_op.drop_column('archived')
        batch_op.drop_column('name_key')
