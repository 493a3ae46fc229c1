"""The Alembic migrations build exactly the schema the models describe, and upgrading an
older database keeps every row it holds (SQLite and PostgreSQL).

How to keep this file passing when you add a migration ``000N``:

1. add ``"000N": {...}`` to :data:`ROWS_BY_REVISION`: sample rows for every table the
   revision creates (and rows that fill the columns it adds), with awkward values;
2. add every column the revision adds to an existing table to :data:`NEW_COLUMNS`, with
   the value older rows must have after the upgrade (its default).

The data tests then build a database at *every* revision, fill it with the rows known
at that revision, upgrade it to head and compare every column of every row.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlmodel import Session, SQLModel

from metrics import store
from metrics.db import alembic_config, head_revision, init_db, make_engine, schema_revision
from metrics.models import pilot_name_key
from tests.conftest import BACKENDS, PG_SCHEMA, PG_URL, _pg_url
from tests.factories import add_weeks


def test_migrated_schema_matches_the_models(engine):
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, SQLModel.metadata)
    assert diff == []


def test_init_db_is_idempotent(engine):
    init_db(engine)
    init_db(engine)
    assert schema_revision(engine) == head_revision() == "0005"


def test_processes_starting_at_once_migrate_once(engine, tmp_path):
    """Several dashboards or CLI commands may start together on an empty database:
    three processes run `pilotgate init` at once; all succeed, the schema is at head."""
    from sqlalchemy import text

    if engine.dialect.name == "sqlite":
        url = f"sqlite:///{tmp_path / 'empty.db'}"
    else:
        url = engine.url.render_as_string(hide_password=False)
        with engine.begin() as conn:  # empty the schema again
            conn.execute(text(f"DROP SCHEMA {PG_SCHEMA} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {PG_SCHEMA}"))
    engine.dispose()
    code = "from metrics.cli import main; main()"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, "--database-url", url, "init"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err for _, err in outs]
    assert all(f"at schema revision {head_revision()}" in out for out, _ in outs)


# =========================================================================== upgrades with data


def _revisions() -> list[str]:
    """Every Alembic revision, oldest first."""
    script = ScriptDirectory.from_config(alembic_config(None))
    return [r.revision for r in reversed(list(script.walk_revisions("base", "heads")))]


REVISIONS = _revisions()

T0 = datetime(2011, 1, 3, 8, 30, 15, 123456, tzinfo=UTC)
#: An aware time in another zone: stored as UTC, read back as the same instant.
T_IST = datetime(2012, 6, 29, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=5, minutes=30)))
LONG_NAME = "Ω" * 200  # the longest pilot name the column takes, in 2-byte characters
TINY = 5e-324  # the smallest positive double (subnormal)
SMALLEST_NORMAL = 2.2250738585072014e-308
HUGE = 1.7976931348623157e308

#: Sample rows per revision: {revision: {table: [row, ...]}}, inserted in this order
#: (parents first). Ids are explicit so foreign keys can name them.
ROWS_BY_REVISION: dict[str, dict[str, list[dict]]] = {
    "0001": {
        "pilot": [
            dict(
                id=1,
                name="Helpdesk triage — 工单分流 🚀",
                vendor="Ünïcödé AI GmbH",
                use_case="Triage \"urgent\" tickets; O'Brien's team\nline two",
                owner="Zoë Ağaoğlu",
                stage="pilot",
                start_date=date(2012, 1, 2),
                decision_date=date(2012, 6, 29),
                cost=1234567.89,
                trailing_window=4,
                min_weeks=4,
                created_at=T0,
                updated_at=T_IST,
            ),
            dict(
                id=2,
                name=LONG_NAME,
                vendor="",
                use_case="",
                owner="",
                stage="stopped",
                start_date=date(1900, 1, 1),
                decision_date=date(2199, 12, 30),
                cost=None,
                trailing_window=1,
                min_weeks=52,
                created_at=T0,
                updated_at=T0,
            ),
        ],
        "metric": [
            dict(
                id=10,
                pilot_id=1,
                key="resolution_time",
                label="Résolution time",
                unit="h",
                direction="lower_is_better",
                role="primary",
                baseline=121.6,
                target=80.0,
                margin=None,
                min_value=0.0,
                max_value=1000.0,
            ),
            dict(
                id=11,
                pilot_id=1,
                key="error_rate",
                label="Error rate",
                unit="%",
                direction="lower_is_better",
                role="guardrail",
                baseline=None,
                target=TINY,
                margin=SMALLEST_NORMAL,
                min_value=None,
                max_value=None,
            ),
            dict(
                id=12,
                pilot_id=2,
                key="conversion_lift",
                label="Conversion lift",
                unit="pp",
                direction="higher_is_better",
                role="primary",
                baseline=-0.5,
                target=0.30000000000000004,
                margin=None,
                min_value=-HUGE,
                max_value=HUGE,
            ),
        ],
        "measurement": [
            dict(
                id=100,
                metric_id=10,
                week=date(2012, 1, 2),
                value=100.125,
                note="first week — ok ✓",
                entered_by="Zoë",
                entered_at=T0,
                version=1,
            ),
            dict(
                id=101,
                metric_id=10,
                week=date(2020, 12, 28),  # ISO week 2020-W53
                value=123456789.12345679,
                note="",
                entered_by="",
                entered_at=T_IST,
                version=3,
            ),
            dict(
                id=102,
                metric_id=11,
                week=date(2012, 1, 2),
                value=TINY,
                note="subnormal",
                entered_by="analyst",
                entered_at=T0,
                version=1,
            ),
            dict(
                id=103,
                metric_id=11,
                week=date(2012, 1, 9),
                value=1e-300,
                note="",
                entered_by="analyst",
                entered_at=T0,
                version=2,
            ),
            dict(
                id=104,
                metric_id=12,
                week=date(1900, 1, 1),
                value=-1e15,
                note="日本語のメモ",
                entered_by="analyst",
                entered_at=T0,
                version=1,
            ),
        ],
        "measurementrevision": [
            dict(
                id=1000,
                metric_id=10,
                week=date(2020, 12, 28),
                action="create",
                old_value=None,
                new_value=1.0,
                old_note=None,
                new_note="",
                actor="Zoë",
                at=T0,
                reason="import helpdesk.csv",
            ),
            dict(
                id=1001,
                metric_id=10,
                week=date(2020, 12, 28),
                action="update",
                old_value=1.0,
                new_value=123456789.12345679,
                old_note="",
                new_note="",
                actor="Zoë",
                at=T_IST,
                reason="typo: 1 → 123456789.12345679",
            ),
            dict(
                id=1002,
                metric_id=11,
                week=date(2012, 1, 16),
                action="delete",
                old_value=TINY,
                new_value=None,
                old_note="gone",
                new_note=None,
                actor="analyst",
                at=T0,
                reason="",
            ),
        ],
        "stageevent": [
            dict(
                id=50,
                pilot_id=1,
                from_stage=None,
                to_stage="pilot",
                at=T0,
                by="Zoë",
                note="created",
            ),
            dict(
                id=51,
                pilot_id=2,
                from_stage="pilot",
                to_stage="stopped",
                at=T_IST,
                by="PMO",
                note="budget — cut",
            ),
        ],
    },
    "0002": {
        "metric": [
            dict(
                id=13,
                pilot_id=1,
                key="cost_per_ticket",
                label="Cost per ticket",
                unit="€",
                direction="lower_is_better",
                role="primary",
                baseline=12.5,
                target=9.75,
                margin=None,
                min_value=0.0,
                max_value=None,
                value_per_unit=1e-9,
            )
        ],
        "app_user": [
            dict(
                id=1,
                name="Zoë Ağaoğlu",
                email="zoe@example.com",
                role="admin",
                created_at=T0,
                created_by="bootstrap",
                updated_at=T_IST,
            ),
            dict(
                id=2,
                name="viewer ✓",
                email="",
                role="viewer",
                created_at=T0,
                created_by="Zoë Ağaoğlu",
                updated_at=T0,
            ),
        ],
        "decision": [
            dict(
                id=1,
                pilot_id=1,
                decision="extend",
                recommendation="insufficient_data",
                rationale="Need 4 more weeks — „evidence“",
                as_of=date(2012, 6, 29),
                decided_by="Zoë Ağaoğlu",
                decided_at=T_IST,
                snapshot='[{"metric": "résolution", "current": 5e-324}]',
            )
        ],
        "checklistitem": [
            dict(
                id=1,
                pilot_id=1,
                position=0,
                item="DPIA signed",
                done=True,
                evidence="https://example.com/dpia?x=1&y=ü",
                by="Zoë Ağaoğlu",
                at=T0,
                version=2,
            ),
            dict(
                id=2,
                pilot_id=1,
                position=1,
                item="Exit plan",
                done=False,
                evidence="",
                by="",
                at=None,
                version=1,
            ),
        ],
        "auditevent": [
            dict(
                id=1,
                at=T0,
                actor="Zoë Ağaoğlu",
                entity="user",
                entity_id=None,
                action="create",
                detail='{"after": {"name": "viewer ✓"}}' + " " * 5000,
            )
        ],
    },
    "0003": {
        "pilot": [
            dict(
                id=3,
                name="Claims triage agent",
                vendor="Ünïcödé AI GmbH",
                use_case="",
                owner="",
                stage="pilot",
                start_date=date(2026, 1, 5),
                decision_date=date(2026, 6, 26),
                cost=None,
                trailing_window=4,
                min_weeks=4,
                created_at=T0,
                updated_at=T0,
                name_key="claims triage agent",
                archived=True,
            )
        ],
        "metric": [
            dict(
                id=14,
                pilot_id=3,
                key="cycle_time",
                label="Cycle time",
                unit="h",
                direction="lower_is_better",
                role="primary",
                baseline=None,
                target=20.0,
                margin=None,
                min_value=0.0,
                max_value=None,
                value_per_unit=None,
                archived=True,
            )
        ],
    },
    "0004": {
        "api_token": [
            dict(
                id=1,
                name="acme-nightly",
                role="editor",
                token_hash="0" * 63 + "f",
                all_pilots=False,
                created_at=T0,
                created_by="Zoë Ağaoğlu",
                last_used_at=T_IST,
                revoked_at=None,
                revoked_by="",
            ),
            dict(
                id=2,
                name="A" * 64,
                role="viewer",
                token_hash="ab" * 32,
                all_pilots=True,
                created_at=T0,
                created_by="",
                last_used_at=None,
                revoked_at=T_IST,
                revoked_by="Zoë Ağaoğlu",
            ),
        ],
        "api_token_pilot": [
            dict(id=1, token_id=1, pilot_id=1),
            dict(id=2, token_id=1, pilot_id=2),
        ],
    },
    "0005": {
        "decision": [
            dict(
                id=2,
                pilot_id=1,
                decision="go",
                recommendation="go",
                rationale="",
                as_of=date(2012, 6, 30),
                decided_by="Zoë Ağaoğlu",
                decided_at=T0,
                snapshot="[]",
                report_hash="e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            )
        ],
        "webhook": [
            dict(
                id=1,
                url="https://hooks.example.com/pilotgate?x=1&y=ü",
                secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                event_types="guardrail.breached decision.due",
                created_at=T0,
                created_by="Zoë Ağaoğlu",
                removed_at=None,
            ),
            dict(
                id=2,
                url="http://127.0.0.1:9/removed",
                secret="whsec_" + "A" * 88,
                event_types="",
                created_at=T0,
                created_by="",
                removed_at=T_IST,
            ),
        ],
        "alertevent": [
            dict(
                id=1,
                event_id="evt_0123456789abcdef0123456789abcdef",
                type="recommendation.changed",
                pilot_id=1,
                pilot="Helpdesk triage — 工单分流 🚀",
                occurred_at=T_IST,
                summary="Helpdesk triage — 工单分流 🚀: recommendation extend -> go",
                payload='{"type": "recommendation.changed", "data": {"from": "extend"}}',
            ),
            dict(
                id=2,
                event_id="evt_" + "f" * 60,
                type="pilot.stale",
                pilot_id=None,
                pilot="",
                occurred_at=T0,
                summary="",
                payload="{}",
            ),
        ],
        "delivery": [
            dict(
                id=1,
                alert_event_id=1,
                webhook_id=1,
                status="delivered",
                attempts=2,
                next_attempt_at=T0,
                claimed_by=None,
                claimed_until=None,
                last_attempt_at=T_IST,
                last_status_code=204,
                last_error="",
                delivered_at=T_IST,
                created_at=T0,
            ),
            dict(
                id=2,
                alert_event_id=2,
                webhook_id=2,
                status="pending",
                attempts=7,
                next_attempt_at=T_IST,
                claimed_by="host-1234-abcd",
                claimed_until=T_IST,
                last_attempt_at=T0,
                last_status_code=None,
                last_error="timed out after 10 s — „slow“",
                delivered_at=None,
                created_at=T0,
            ),
        ],
        "alertstate": [
            dict(
                id=1,
                pilot_id=1,
                recommendation="insufficient_data",
                as_of=date(2199, 12, 31),
                updated_at=T0,
            ),
        ],
        "digestsend": [
            dict(
                id=1,
                week="2020-W53",
                status="sent",
                recipients="pmo@example.com, zoë@example.com",
                claimed_by=None,
                claimed_until=None,
                attempts=1,
                sent_at=T_IST,
                last_error="",
            )
        ],
    },
}

#: Columns added to an existing table by a later revision: (table, column) ->
#: (revision that added it, the value rows written before it must read after upgrade).
NEW_COLUMNS: dict[tuple[str, str], tuple[str, object]] = {
    ("metric", "value_per_unit"): ("0002", None),
    ("decision", "report_hash"): ("0005", None),
    # a callable: the value depends on the row (the name's key, metrics.models)
    ("pilot", "name_key"): ("0003", lambda row: pilot_name_key(row["name"])),
    ("pilot", "archived"): ("0003", False),
    ("metric", "archived"): ("0003", False),
}


def _rev_index(revision: str) -> int:
    return REVISIONS.index(revision)


def _empty_engine(backend: str, tmp_path) -> sa.Engine:
    """An empty database (no schema at all) on ``backend``."""
    if backend == "sqlite":
        return make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))
        conn.execute(sa.text(f"CREATE SCHEMA {PG_SCHEMA}"))
    admin.dispose()
    return make_engine(_pg_url())


def _expected_rows(upto: str) -> dict[str, list[tuple[str, dict]]]:
    """{table: [(revision the row was written at, row), ...]} for revisions <= ``upto``."""
    out: dict[str, list[tuple[str, dict]]] = {}
    for rev in REVISIONS[: _rev_index(upto) + 1]:
        for table, rows in ROWS_BY_REVISION.get(rev, {}).items():
            out.setdefault(table, []).extend((rev, row) for row in rows)
    return out


def _fill(engine: sa.Engine, revision: str) -> dict[str, list[tuple[str, dict]]]:
    """Insert the sample rows of every revision up to ``revision`` with Core statements
    naming only the columns the database has at ``revision`` (typed like the models, so
    timestamps are stored the way the application stores them)."""
    data = _expected_rows(revision)
    with engine.begin() as conn:
        inspector = sa.inspect(conn)
        for table, rows in data.items():
            present = {c["name"] for c in inspector.get_columns(table)}
            model = SQLModel.metadata.tables[table]
            for rev, row in rows:
                missing = present - set(row)
                late = {c for c in missing if (table, c) in NEW_COLUMNS}
                assert missing == late, f"sample {table} row of {rev} lacks {missing - late}"
                assert all(_rev_index(NEW_COLUMNS[(table, c)][0]) > _rev_index(rev) for c in late)
                assert set(row) <= present, f"{table} has no {set(row) - present} at {revision}"
                # a later column whose value depends on the row: written as the app would
                derived = {c: NEW_COLUMNS[(table, c)][1] for c in late}
                row = {**row, **{c: f(row) for c, f in derived.items() if callable(f)}}
                target = sa.table(table, *[sa.column(c, model.c[c].type) for c in row])
                conn.execute(sa.insert(target).values(**row))
        if conn.dialect.name == "postgresql":  # as if the application had written them
            for table in data:
                conn.execute(
                    sa.text(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT max(id) FROM {table}))"
                    )
                )
    return data


def _check_survived(engine: sa.Engine, data: dict[str, list[tuple[str, dict]]]) -> None:
    """Every sample row is there after the upgrade, every column equal; columns added
    later hold their default; no table has a row more."""
    with engine.connect() as conn:
        for table, rows in data.items():
            model = SQLModel.metadata.tables[table]
            stored = {r.id: r._mapping for r in conn.execute(sa.select(model).order_by(model.c.id))}
            assert sorted(stored) == sorted(row["id"] for _, row in rows), table
            for _, row in rows:
                got = dict(stored[row["id"]])
                for column in [c.name for c in model.columns]:
                    if column in row:
                        expected = row[column]
                    else:
                        assert (table, column) in NEW_COLUMNS, (
                            f"{table}.{column} is new: add it to NEW_COLUMNS with its default"
                        )
                        expected = NEW_COLUMNS[(table, column)][1]
                        if callable(expected):
                            expected = expected(row)
                    assert got[column] == expected, (table, row["id"], column)
                    assert type(got[column]) is type(expected), (table, row["id"], column)


def test_every_revision_has_sample_rows():
    """A new migration must bring its sample rows (even an empty dict) for the tests
    below, and every table of the models must have some."""
    assert list(ROWS_BY_REVISION) == REVISIONS
    assert REVISIONS[-1] == head_revision()
    sampled = {t for rows in ROWS_BY_REVISION.values() for t in rows}
    assert sampled == set(SQLModel.metadata.tables)
    for (table, _), (rev, _) in NEW_COLUMNS.items():
        assert rev in REVISIONS and table in SQLModel.metadata.tables


@pytest.mark.parametrize("revision", REVISIONS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_upgrade_from_every_revision_keeps_every_row(backend, revision, tmp_path):
    """Build the schema at ``revision``, fill it, upgrade to head: every row is intact."""
    engine = _empty_engine(backend, tmp_path)
    try:
        init_db(engine, revision=revision)
        assert schema_revision(engine) == revision
        data = _fill(engine, revision)
        init_db(engine)
        assert schema_revision(engine) == head_revision()
        _check_survived(engine, data)
        # the upgraded database takes new writes: ids continue after the old rows
        with Session(engine) as s:
            counts = add_weeks(s, 10, date(2012, 1, 9), [99.5], actor="after-upgrade")
            s.commit()
            assert (counts.created, counts.updated) == (1, 0)
            m = store.measurements_frame(s)
        rows = m[m["metric_id"] == 10].set_index("week")
        assert rows.loc["2012-01-09", "value"] == 99.5
        assert rows.loc["2012-01-02", "value"] == 100.125
        assert rows.loc["2020-12-28", "value"] == 123456789.12345679
        with engine.connect() as conn:
            new_id = conn.execute(
                sa.text("SELECT id FROM measurement WHERE entered_by = 'after-upgrade'")
            ).scalar_one()
        assert new_id == 105
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_upgrade_from_0001_keeps_the_first_schema_exactly(backend, tmp_path):
    """The issue's case spelled out: a 0001 database with data, upgraded to head."""
    old = _empty_engine(backend, tmp_path)
    try:
        init_db(old, revision="0001")
        with old.connect() as conn:
            tables = set(sa.inspect(conn).get_table_names())
            metric_columns = {c["name"] for c in sa.inspect(conn).get_columns("metric")}
        assert tables == {
            "alembic_version",
            "pilot",
            "metric",
            "measurement",
            "measurementrevision",
            "stageevent",
        }
        assert "value_per_unit" not in metric_columns
        data = _fill(old, "0001")
        init_db(old)
        with old.connect() as conn:
            counts = {
                t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()
                for t in ("pilot", "metric", "measurement", "measurementrevision", "stageevent")
            }
            per_unit = conn.execute(
                sa.text("SELECT id, value_per_unit FROM metric ORDER BY id")
            ).all()
            tiny = conn.execute(sa.text("SELECT value FROM measurement WHERE id = 102")).scalar()
            name = conn.execute(sa.text("SELECT name FROM pilot WHERE id = 1")).scalar()
            new_tables = {
                t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()
                for t in ("app_user", "decision", "checklistitem", "auditevent")
            }
        assert counts == {
            "pilot": 2,
            "metric": 3,
            "measurement": 5,
            "measurementrevision": 3,
            "stageevent": 2,
        }
        assert per_unit == [(10, None), (11, None), (12, None)]
        assert tiny == 5e-324
        assert name == "Helpdesk triage — 工单分流 🚀"
        assert new_tables == {"app_user": 0, "decision": 0, "checklistitem": 0, "auditevent": 0}
        _check_survived(old, data)
    finally:
        old.dispose()


def _cli(url: str, *args: str) -> subprocess.CompletedProcess:
    code = "from metrics.cli import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, "--database-url", url, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_pilotgate_init_upgrades_a_0001_database(backend, tmp_path):
    """`pilotgate init` (what `make run` does on start) on a database left at 0001 by an
    older version: it prints the head revision, keeps the data, and `--seed-if-empty`
    seeds nothing because pilots exist."""
    old = _empty_engine(backend, tmp_path)
    url = old.url.render_as_string(hide_password=False)
    try:
        init_db(old, revision="0001")
        data = _fill(old, "0001")
        old.dispose()
        run = _cli(url, "init")
        assert run.returncode == 0, run.stderr
        assert run.stdout.endswith(f"at schema revision {head_revision()}\n")
        assert head_revision() == "0005"
        assert schema_revision(old) == "0005"
        _check_survived(old, data)
        run = _cli(url, "init", "--seed-if-empty")
        assert run.returncode == 0, run.stderr
        assert run.stdout.splitlines() == [
            f"database {sa.make_url(url).render_as_string(hide_password=True)} "
            f"at schema revision {head_revision()}",
            "database already has pilots: nothing seeded",
        ]
        _check_survived(old, data)
    finally:
        old.dispose()
