"""Shared fixtures: a migrated database per test on SQLite, and on PostgreSQL when
``PILOTGATE_TEST_POSTGRES_URL`` is set (DESIGN §9)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from metrics.db import init_db, make_engine
from tests.browser_helpers import launch_chromium, require_browser

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
PG_URL = os.environ.get("PILOTGATE_TEST_POSTGRES_URL", "")
#: One schema per test process, so several pytest runs can share the database.
PG_SCHEMA = f"pilotgate_test_{os.getpid()}"

BACKENDS = ["sqlite"] + (["postgres"] if PG_URL else [])


def _pg_url() -> str:
    url = sa.make_url(PG_URL)
    return url.update_query_dict({"options": f"-csearch_path={PG_SCHEMA}"}).render_as_string(
        hide_password=False
    )


def fresh_engine(backend: str, tmp_path: Path) -> Engine:
    """A migrated, empty database on ``backend`` ("sqlite" or "postgres")."""
    if backend == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'test.db'}")
    else:
        admin = sa.create_engine(PG_URL)
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))
            conn.execute(sa.text(f"CREATE SCHEMA {PG_SCHEMA}"))
        admin.dispose()
        engine = make_engine(_pg_url())
    init_db(engine)
    return engine


@pytest.fixture(scope="session", autouse=True)
def _drop_pg_schema() -> Iterator[None]:
    """Drop this process's PostgreSQL test schema when the run ends."""
    yield
    if PG_URL:
        admin = sa.create_engine(PG_URL)
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def engine(request, tmp_path) -> Iterator[Engine]:
    """A migrated, empty database: SQLite always, PostgreSQL when its URL is set."""
    eng = fresh_engine(request.param, tmp_path)
    yield eng
    eng.dispose()


@pytest.fixture
def sqlite_engine(tmp_path) -> Iterator[Engine]:
    """A migrated, empty SQLite database (for tests that need only one backend)."""
    eng = fresh_engine("sqlite", tmp_path)
    yield eng
    eng.dispose()


@pytest.fixture
def session(engine) -> Iterator[Session]:
    """One session on ``engine``; the test commits what it wants kept."""
    with Session(engine, expire_on_commit=False) as s:
        yield s


@pytest.fixture
def shared_data() -> Path:
    """The read-only shared real data folder; skips when it is absent."""
    if not (SHARED_DATA / "helpdesk.csv").exists():
        if os.environ.get("PILOTGATE_REQUIRE_SHARED_DATA"):
            pytest.fail(f"shared data not found at {SHARED_DATA} (required in CI)")
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium through Playwright, one per test module; skips where it is
    absent (a failure under PILOTGATE_REQUIRE_BROWSER=1)."""
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch_chromium(p)
        yield b
        b.close()
