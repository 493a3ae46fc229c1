"""Connection pool of the dashboard: hundreds of page runs leave no connection checked
out, one engine serves the whole process, and on PostgreSQL the server sees no more
connections from us than ``pool_size + max_overflow`` (docs/operations.md).

Pages run through ``streamlit.testing.v1.AppTest`` against a database named by
``PILOTGATE_DATABASE_URL`` (SQLite always; PostgreSQL when
``PILOTGATE_TEST_POSTGRES_URL`` is set), with the pool kept small so a leak would
exhaust it quickly and fail the run instead of waiting.
"""

from __future__ import annotations

import os
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import Session
from streamlit.testing.v1 import AppTest

import dashboard.state as state
from metrics import computations as C
from metrics import store
from metrics.db import make_engine
from metrics.settings import get_settings
from tests.apptest_helpers import APP
from tests.apptest_helpers import clear_caches as _clear_caches
from tests.conftest import PG_URL, fresh_engine
from tests.factories import add_weeks, make_pilot, metric_id, metric_in

PORTFOLIO_PAGE = "dashboard/pages/portfolio.py"
PILOT_PAGE = "dashboard/pages/pilot.py"
ENTER_PAGE = "dashboard/pages/enter.py"
IMPORT_PAGE = "dashboard/pages/import_csv.py"
EXPORT_PAGE = "dashboard/pages/export.py"

START = date(2012, 1, 2)
AS_OF = date(2012, 2, 20)  # last complete week: 2012-W07 (Monday 2012-02-13)
WEEK = date(2012, 2, 13)
BASELINE_START = date(2011, 1, 3)  # Monday of 2011-W01
HELPDESK = "Helpdesk triage assistant"
INVOICE = "Invoice extraction copilot"

POOL_SIZE = 3
MAX_OVERFLOW = 2
#: Browser sessions of the test below; each makes RUNS_PER_VISIT page runs (209 in all).
VISITS = 19
RUNS_PER_VISIT = 11
READ_PAGES = [
    (PORTFOLIO_PAGE, "Portfolio"),
    (PILOT_PAGE, HELPDESK),
    (EXPORT_PAGE, "Export: go / no-go summary"),
]
APP_NAME = f"pilotgate-pool-test-{os.getpid()}"


#: The pool that matters is PostgreSQL's (a team server); SQLite runs only where no
#: PostgreSQL URL is set, so a local run still checks for leaks without doubling CI time.
LEAK_BACKENDS = ["postgres"] if PG_URL else ["sqlite"]


@pytest.fixture(params=LEAK_BACKENDS)
def dashboard_db(request, tmp_path, monkeypatch):
    """A database with two pilots (helpdesk: 2 metrics, 6 weeks; invoice: 1 metric), its
    URL in ``PILOTGATE_DATABASE_URL``, a small pool, and a spy on engine creation."""
    if request.param == "postgres" and not PG_URL:
        pytest.skip("PILOTGATE_TEST_POSTGRES_URL is not set (CI sets it)")
    engine = fresh_engine(request.param, tmp_path)
    with Session(engine) as s:
        make_pilot(
            s,
            HELPDESK,
            metrics=[
                metric_in("resolution_time", baseline=118.0, target=80.0, max_value=1000.0),
                metric_in(
                    "error_rate",
                    unit="%",
                    role="guardrail",
                    baseline=5.0,
                    target=4.0,
                    margin=1.0,
                    max_value=100.0,
                ),
            ],
        )
        make_pilot(s, INVOICE, vendor="DocuMind")
        add_weeks(s, metric_id(s, HELPDESK, "resolution_time"), START, [100, 90, 80, 76, 72, 72])
        add_weeks(s, metric_id(s, HELPDESK, "error_rate"), START, [4.8, 5.0, 4.9, 4.7, 4.6, 4.8])
        s.commit()
        ids = {
            "helpdesk": int(store.pilots_frame(s).set_index("pilot").loc[HELPDESK, "pilot_id"]),
            "resolution_time": metric_id(s, HELPDESK, "resolution_time"),
            "error_rate": metric_id(s, HELPDESK, "error_rate"),
        }
    url = engine.url
    if request.param == "postgres":
        url = url.update_query_dict({"application_name": APP_NAME})
    engine.dispose()
    monkeypatch.setenv("PILOTGATE_DATABASE_URL", url.render_as_string(hide_password=False))
    monkeypatch.setenv("PILOTGATE_ACTOR", "pool-tester")
    monkeypatch.setenv("PILOTGATE_POOL_SIZE", str(POOL_SIZE))
    monkeypatch.setenv("PILOTGATE_MAX_OVERFLOW", str(MAX_OVERFLOW))
    monkeypatch.setenv("PILOTGATE_POOL_TIMEOUT_S", "5")  # a leak fails fast, not in 30 s
    _clear_caches()

    created: list[sa.Engine] = []
    real_make_engine = state.make_engine

    def spy_make_engine(*args, **kwargs):
        eng = real_make_engine(*args, **kwargs)
        created.append(eng)
        return eng

    monkeypatch.setattr(state, "make_engine", spy_make_engine)
    yield {"backend": request.param, "created": created, **ids}
    _clear_caches()


class Browser:
    """Runs pages like a user would and checks the pool after every run."""

    def __init__(self, db):
        self.db = db
        self.runs = 0
        self.max_checked_out = 0

    def run(self, at: AppTest, page: str | None = None) -> AppTest:
        if page is not None:
            at.switch_page(page)
        at.run(timeout=30)
        self.runs += 1
        assert not at.exception, [(page, e.value, e.stack_trace) for e in at.exception]
        (engine,) = self.db["created"]  # one engine per process, made on the first run
        self.max_checked_out = max(self.max_checked_out, engine.pool.checkedout())
        assert engine.pool.checkedout() == 0, f"run {self.runs} ({page}) left a connection out"
        return at

    def visit(self, i: int) -> None:
        """One browser session, RUNS_PER_VISIT page runs: Enter (save a value, or a
        refused one every third visit; two reruns), Import (check a CSV and write it, or
        a CSV with an error every other visit; a rerun), then Portfolio, Pilot or Export
        in turn (two reruns). A rerun is what any widget click does: the page runs again,
        reading through the caches and the data version."""
        db = self.db
        at = AppTest.from_file(APP, default_timeout=30)
        at.session_state["as_of"] = AS_OF
        at.session_state["pilot_id"] = db["helpdesk"]
        self.run(at, ENTER_PAGE)
        week = WEEK.isoformat()
        # widget keys from database ids (a suffix may follow after a save)
        (value,) = [
            n
            for n in at.text_input
            if n.key.startswith(f"enter-value-{db['helpdesk']}-{db['resolution_time']}-{week}")
        ]
        refused = i % 3 == 2
        value.set_value(str(1500.0 if refused else 60.0 + i))
        for reason in [t for t in at.text_input if (t.key or "").startswith("enter-reason-")]:
            reason.set_value(f"pool test visit {i}")  # asked for once a value exists
        at.button(key=f"enter-save-{db['helpdesk']}-{week}").click()
        self.run(at)
        if refused:
            assert "above the allowed maximum" in at.error[0].value
        else:
            assert at.success, [x.value for x in [*at.warning, *at.error]]
            assert "Saved 2012-W07" in at.success[0].value
        for _ in range(2):
            self.run(at)
            assert [t.value for t in at.title] == ["Enter weekly values"]

        self.run(at, IMPORT_PAGE)
        if i % 2 == 0:  # a new baseline week: created, no stored value to confirm
            week_label = C.iso_label(BASELINE_START + timedelta(weeks=i // 2))
            csv = f"pilot,metric,week,value\n{HELPDESK},error_rate,{week_label},{4 + i / 100}\n"
            at.file_uploader[0].set_value((f"visit-{i}.csv", csv.encode(), "text/csv"))
            self.run(at)
            (write,) = [b for b in at.button if b.label == "Write 1 row"]
            write.click()
            self.run(at)
            assert "1 created" in at.success[0].value
        else:
            csv = f"pilot,metric,week,value\n{HELPDESK},error_rate,2012-W07,150\n"
            at.file_uploader[0].set_value((f"visit-{i}.csv", csv.encode(), "text/csv"))
            self.run(at)
            assert "1 problem found" in at.error[0].value
            self.run(at)
        self.run(at)

        page, title = READ_PAGES[i % len(READ_PAGES)]
        for _ in range(3):
            self.run(at, page)
            assert [t.value for t in at.title] == [title]


def test_page_runs_leave_no_connection_checked_out(dashboard_db):
    browser = Browser(dashboard_db)
    for i in range(VISITS):
        browser.visit(i)

    assert browser.runs == VISITS * RUNS_PER_VISIT >= 200
    (engine,) = dashboard_db["created"]
    # the engine the pages used is the cached one: one per process
    assert state.get_engine() is engine
    assert engine.pool.checkedout() == 0
    url = get_settings().database_url
    assert engine.url.render_as_string(hide_password=False) == url

    # what was written through the pages is stored: the last Enter value, every import
    with Session(engine) as s:
        entered = s.execute(
            sa.text("SELECT value FROM measurement WHERE metric_id = :m AND week = :w"),
            {"m": dashboard_db["resolution_time"], "w": WEEK},
        ).scalar_one()
        imported = s.execute(
            sa.text("SELECT week, value FROM measurement WHERE metric_id = :m AND week < :w"),
            {"m": dashboard_db["error_rate"], "w": START},
        ).all()
    last_saved = max(i for i in range(VISITS) if i % 3 != 2)
    assert entered == 60.0 + last_saved
    written = range(0, VISITS, 2)
    assert len(imported) == len(written)
    assert sorted(v for _, v in imported) == [4 + i / 100 for i in written]

    ours = None
    if dashboard_db["backend"] == "postgres":
        assert engine.pool.size() == POOL_SIZE
        assert engine.pool._max_overflow == MAX_OVERFLOW
        admin = sa.create_engine(PG_URL, poolclass=sa.NullPool)
        with admin.connect() as conn:
            ours = conn.execute(
                sa.text(
                    "SELECT count(*) AS n, "
                    "count(*) FILTER (WHERE state LIKE 'idle in transaction%') AS in_tx "
                    "FROM pg_stat_activity WHERE application_name = :name"
                ),
                {"name": APP_NAME},
            ).one()
        admin.dispose()
        assert 1 <= ours.n <= POOL_SIZE + MAX_OVERFLOW
        assert ours.n >= engine.pool.checkedin()
        assert ours.in_tx == 0  # nothing left inside an open transaction
    print(
        f"\n[{dashboard_db['backend']}] {browser.runs} page runs, 1 engine, "
        f"checked out now {engine.pool.checkedout()} (max after any run "
        f"{browser.max_checked_out}), idle in pool {engine.pool.checkedin()}"
        + (f", server connections {ours.n}" if ours else "")
    )


@pytest.mark.skipif(not PG_URL, reason="PILOTGATE_TEST_POSTGRES_URL is not set (CI sets it)")
def test_postgres_connections_are_named_and_pooled_as_configured(monkeypatch):
    """docs/operations.md counts our connections in pg_stat_activity by this name."""
    monkeypatch.setenv("PILOTGATE_POOL_SIZE", "4")
    monkeypatch.setenv("PILOTGATE_MAX_OVERFLOW", "6")
    get_settings.cache_clear()
    try:
        engine = make_engine(PG_URL)
        named = make_engine(sa.make_url(PG_URL).update_query_dict({"application_name": "mine"}))
        with engine.connect() as conn, named.connect() as other:
            sql = sa.text("SELECT current_setting('application_name')")
            assert conn.execute(sql).scalar() == "pilotgate"
            assert other.execute(sql).scalar() == "mine"
        assert (engine.pool.size(), engine.pool._max_overflow) == (4, 6)
        assert engine.pool.timeout() == 30.0
        engine.dispose()
        named.dispose()
    finally:
        get_settings.cache_clear()
