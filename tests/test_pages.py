"""Every dashboard page through ``streamlit.testing.v1.AppTest`` (DESIGN §10).

Each test gets its own SQLite database in ``tmp_path`` (``PILOTGATE_DATABASE_URL``),
with settings and Streamlit caches cleared before and after.
"""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
import streamlit as st
from PIL import Image
from sqlmodel import Session
from streamlit.testing.v1 import AppTest

from metrics import store
from metrics.db import init_db, make_engine
from tests.apptest_helpers import APP, open_app, spy_downloads
from tests.apptest_helpers import clear_caches as _clear_caches
from tests.factories import add_weeks, make_pilot, metric_id, metric_in

PILOT_PAGE = "dashboard/pages/pilot.py"
ENTER_PAGE = "dashboard/pages/enter.py"
IMPORT_PAGE = "dashboard/pages/import_csv.py"
EXPORT_PAGE = "dashboard/pages/export.py"
VENDORS_PAGE = "dashboard/pages/vendors.py"
PAGES = [None, PILOT_PAGE, ENTER_PAGE, IMPORT_PAGE, EXPORT_PAGE, VENDORS_PAGE]

START = date(2012, 1, 2)  # Monday of 2012-W01
AS_OF = date(2012, 2, 20)  # a Monday: the last complete week is 2012-W07 (Feb 13)
HELPDESK = "Helpdesk triage assistant"
INVOICE = "Invoice extraction copilot"
FRAUD = "Fraud analyst copilot"


def _use_database(monkeypatch, url: str) -> None:
    monkeypatch.setenv("PILOTGATE_DATABASE_URL", url)
    monkeypatch.setenv("PILOTGATE_ACTOR", "page-tester")
    _clear_caches()


@pytest.fixture
def db(tmp_path, monkeypatch):
    """Three pilots: one go (helpdesk), one extend (invoice), one without data (fraud).

    Helpdesk: resolution_time (h, lower is better, baseline 118, target 80, range
    0..1000) reported 2012-W01..W06 (mean of the last 4 = 75 h -> met) and an error_rate
    guardrail (%, 0..100, baseline 5, margin 1). Nothing is reported for 2012-W07.
    """
    url = f"sqlite:///{tmp_path / 'pages.db'}"
    engine = make_engine(url)
    init_db(engine)
    with Session(engine, expire_on_commit=False) as s:
        make_pilot(
            s,
            HELPDESK,
            owner="Dana Ops",
            use_case="Ticket triage",
            metrics=[
                metric_in("resolution_time", baseline=118.0, target=80.0, max_value=1000.0),
                metric_in(
                    "error_rate",
                    label="Error rate",
                    unit="%",
                    role="guardrail",
                    baseline=5.0,
                    target=4.0,
                    margin=1.0,
                    max_value=100.0,
                ),
            ],
        )
        make_pilot(
            s,
            INVOICE,
            vendor="DocuMind",
            metrics=[
                metric_in(
                    "analyst_productivity",
                    label="Analyst productivity",
                    unit="items/h",
                    direction="higher_is_better",
                    baseline=10.0,
                    target=15.0,
                )
            ],
        )
        make_pilot(s, FRAUD, vendor="Sentinel Labs")
        add_weeks(s, metric_id(s, HELPDESK, "resolution_time"), START, [100, 90, 80, 76, 72, 72])
        add_weeks(s, metric_id(s, HELPDESK, "error_rate"), START, [4.8, 5.0, 4.9, 4.7, 4.6, 4.8])
        add_weeks(
            s,
            metric_id(s, INVOICE, "analyst_productivity"),
            START,
            [10.5, 11.0, None, 11.5, 12.0, 12.4, 12.6],
        )
        s.commit()
        ids = {
            "helpdesk": int(store.pilots_frame(s).set_index("pilot").loc[HELPDESK, "pilot_id"]),
            "invoice": int(store.pilots_frame(s).set_index("pilot").loc[INVOICE, "pilot_id"]),
            "resolution_time": metric_id(s, HELPDESK, "resolution_time"),
            "error_rate": metric_id(s, HELPDESK, "error_rate"),
        }
    _use_database(monkeypatch, url)
    yield {"engine": engine, "url": url, **ids}
    _clear_caches()
    engine.dispose()


@pytest.fixture
def empty_db(tmp_path, monkeypatch):
    """A migrated database without any pilot."""
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    engine = make_engine(url)
    init_db(engine)
    engine.dispose()
    _use_database(monkeypatch, url)
    yield url
    _clear_caches()


def _app(page: str | None = None, *, as_of: date = AS_OF, pilot_id: int | None = None):
    return open_app(page, as_of=as_of, pilot_id=pilot_id)


def _unescape(md: str) -> str:
    """Markdown source as a reader sees it: backslash escapes and the zero-width
    spaces of ``md_escape`` removed."""
    return re.sub(r"\\(.)", r"\1", str(md)).replace("\u200b", "")


def _texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [x.value for x in at.info] + [x.value for x in at.warning]
    parts += [x.value for x in at.success] + [x.value for x in at.error]
    return "\n".join(_unescape(p) for p in parts)


def _read(at: AppTest) -> str:
    """:func:`_texts` as a reader sees it: non-breaking spaces read as spaces."""
    return _texts(at).replace("\u00a0", " ")


def _metric_tiles(at: AppTest) -> list[tuple[str, str]]:
    return [(m.label, m.value) for m in at.metric]


def _frame_with(at: AppTest, *columns: str) -> pd.DataFrame:
    """The one st.dataframe on the page that has all of ``columns``."""
    found = [d.value for d in at.dataframe if set(columns) <= set(d.value.columns)]
    assert len(found) == 1, [list(d.value.columns) for d in at.dataframe]
    return found[0]


def _column_config(at: AppTest, *columns: str) -> dict:
    """The column_config (as sent to the browser) of the one dataframe with ``columns``."""
    found = [d for d in at.dataframe if set(columns) <= set(d.value.columns)]
    assert len(found) == 1, [list(d.value.columns) for d in at.dataframe]
    return json.loads(found[0].proto.columns)


def _fraud_id(db) -> int:
    with Session(db["engine"]) as s:
        return int(store.pilots_frame(s).set_index("pilot").loc[FRAUD, "pilot_id"])


def _stored(engine, metric: int) -> pd.DataFrame:
    with Session(engine) as s:
        m = store.measurements_frame(s)
    return m[m["metric_id"] == metric].set_index("week")


# =========================================================================== portfolio


def test_portfolio_lists_every_pilot_with_its_recommendation(db):
    at = _app()
    assert [t.value for t in at.title] == ["Portfolio"]
    table = at.dataframe[0].value
    rows = table.set_index("Pilot")
    assert list(rows.index) == [FRAUD, HELPDESK, INVOICE]
    assert rows.loc[HELPDESK, "Recommendation"] == "go"
    assert rows.loc[INVOICE, "Recommendation"] == "extend"
    assert rows.loc[FRAUD, "Recommendation"] == "insufficient data"
    assert rows.loc[HELPDESK, "Primary met"] == "1 / 1"
    assert rows.loc[HELPDESK, "Last reported"] == "2012-W06"
    assert rows.loc[HELPDESK, "Completeness"] == pytest.approx(100 * 6 / 7)
    assert not rows.loc[HELPDESK, "Stale"]
    assert bool(rows.loc[FRAUD, "Stale"])
    assert rows.loc[HELPDESK, "Decision due"] == "in 130 days"  # 2012-02-20 -> 2012-06-29
    assert rows.loc[HELPDESK, "Decision date"] == date(2012, 6, 29)
    assert "Days to decision" not in table.columns
    tiles = dict(_metric_tiles(at))
    assert tiles["Pilots"] == "3"
    assert tiles[":material/check_circle: go"] == "1"
    assert tiles[":material/schedule: extend"] == "1"
    assert tiles[":material/cancel: no-go"] == "0"
    assert tiles[":material/help: insufficient data"] == "1"
    assert tiles["pilot"] == "3"


def test_decision_countdown_wording():
    from dashboard.components import decision_countdown

    decision = date(2012, 6, 29)
    assert decision_countdown(decision, date(2012, 6, 17)) == "in 12 days"
    assert decision_countdown(decision, date(2012, 6, 28)) == "in 1 day"
    assert decision_countdown(decision, decision) == "today"
    assert decision_countdown(decision, date(2012, 6, 30)) == "1 day ago"
    assert decision_countdown(date(2012, 1, 2), date(2026, 6, 1)) == "5264 days ago"


@pytest.mark.parametrize(
    ("as_of", "words"),
    [
        (AS_OF, "in 130 days"),
        (date(2012, 6, 29), "today"),
        (date(2012, 9, 3), "66 days ago"),
    ],
    ids=["ahead", "today", "passed"],
)
def test_portfolio_and_pilot_page_word_the_decision_date_alike(db, as_of, words):
    at = _app(as_of=as_of)
    (portfolio,) = [d for d in at.dataframe if d.key == "portfolio-table"]
    table = portfolio.value
    rows = table.set_index("Pilot")
    assert rows.loc[HELPDESK, "Decision due"] == words
    assert rows.loc[HELPDESK, "Decision date"] == date(2012, 6, 29)
    # the date column (sortable) sits right before the countdown
    columns = list(table.columns)
    assert columns.index("Decision due") == columns.index("Decision date") + 1
    # (the "due within 14 days" table has a Decision due column too: pick by key)
    config = json.loads(portfolio.proto.columns)
    assert config["Decision due"]["label"] == "Due"  # short header; the tooltip explains
    assert config["Decision date"]["label"] == "Decision date"
    assert config["Decision due"]["type_config"]["type"] == "text"

    at = _app(PILOT_PAGE, as_of=as_of, pilot_id=db["helpdesk"])
    assert f"**Decision due** {words}" in _read(at)


def test_portfolio_filters(db):
    at = _app()
    at.multiselect(key="pf_rec").set_value(["go"]).run(timeout=30)
    assert list(at.dataframe[0].value["Pilot"]) == [HELPDESK]
    at.multiselect(key="pf_rec").set_value([]).run(timeout=30)
    at.text_input(key="pf_search").set_value("documind").run(timeout=30)
    assert list(at.dataframe[0].value["Pilot"]) == [INVOICE]
    at.text_input(key="pf_search").set_value("no such pilot").run(timeout=30)
    assert at.dataframe[0].value.empty
    assert "No pilot matches" in _texts(at)


def test_portfolio_links_every_pilot_to_its_page(db):
    at = _app()
    links = {link.value: link.proto.query_string for link in at.get("page_link")}
    assert links[":material/check_circle: " + HELPDESK] == f"pilot={db['helpdesk']}"
    assert links[":material/schedule: " + INVOICE] == f"pilot={db['invoice']}"
    assert all(link.proto.page.endswith("pilot") for link in at.get("page_link"))


def test_pilot_link_opens_that_pilot_and_keeps_it_in_the_url(db):
    at = AppTest.from_file(APP, default_timeout=30)
    at.query_params["pilot"] = str(db["invoice"])
    at.query_params["as_of"] = "2012-02-06"
    at.run(timeout=30)
    at.switch_page(PILOT_PAGE).run(timeout=30)
    assert not at.exception
    assert [t.value for t in at.title] == [INVOICE]
    assert at.session_state["as_of"] == date(2012, 2, 6)
    assert at.query_params["pilot"] == str(db["invoice"])
    assert at.query_params["as_of"] == "2012-02-06"
    # picking another pilot updates the URL too
    at.sidebar.selectbox(key="pilot_page_pilot").set_value(db["helpdesk"]).run(timeout=30)
    assert [t.value for t in at.title] == [HELPDESK]
    assert at.query_params["pilot"] == str(db["helpdesk"])


def test_as_of_is_shared_across_pages(db):
    at = _app()
    at.sidebar.date_input[0].set_value(date(2012, 1, 30)).run(timeout=30)
    assert at.session_state["as_of"] == date(2012, 1, 30)
    at.switch_page(EXPORT_PAGE).run(timeout=30)
    assert at.sidebar.date_input[0].value == date(2012, 1, 30)
    assert "2012-01-30" in _texts(at)


# =========================================================================== pilot


def test_pilot_page_shows_tiles_reasons_and_values(db):
    at = _app(PILOT_PAGE, pilot_id=db["helpdesk"])
    assert [t.value for t in at.title] == [HELPDESK]
    text = _texts(at)
    assert ":green-badge[Recommendation: go]" in text
    assert "Resolution time 75 h vs target 80 h: met" in text  # a reason, as a bullet
    assert "Dana Ops" in text
    tiles = _metric_tiles(at)
    # primary metrics first (resolution_time), then the error_rate guardrail
    assert ("Baseline", "118 h") in tiles
    assert ("Current (mean of last 4 wk)", "75 h") in tiles
    assert ("Weeks reported", "6 / 7") in tiles
    assert ("Progress to target", "113.2%") in tiles
    assert ("Current (mean of last 4 wk)", "4.75%") in tiles
    assert ("Baseline", "5%") in tiles
    assert ":green-badge[:material/shield: guardrail held]" in text
    # the weekly values table of resolution_time lists the reported weeks
    values = _frame_with(at, "Week", "Value (h)")
    assert values["Week"].iloc[0] == "2012-W06"
    assert values["Value (h)"].iloc[0] == 72.0
    stages = _frame_with(at, "From", "To")
    assert list(stages["To"]) == ["pilot"]


def test_pilot_page_undefined_numbers_are_na_not_zero(db):
    with Session(db["engine"]) as s:
        fraud = int(store.pilots_frame(s).set_index("pilot").loc[FRAUD, "pilot_id"])
    at = _app(PILOT_PAGE, pilot_id=fraud)
    assert [t.value for t in at.title] == [FRAUD]
    tiles = dict(_metric_tiles(at))
    assert tiles["Baseline"] == "n/a"
    assert tiles["Current"] == "n/a"  # no pilot week reported: no week count to name
    assert tiles["Change vs baseline"] == "n/a"
    assert tiles["Progress to target"] == "n/a"
    assert tiles["Weeks reported"] == "0 / 7"
    text = _texts(at)
    assert "Stale" in text
    assert "Insufficient data" in text
    assert ":gray-badge[Recommendation: insufficient data]" in text


def test_current_tile_and_chart_name_the_weeks_averaged(db):
    # Fraud: 2 pilot weeks reported, trailing window 4 -> the mean of 2 weeks
    with Session(db["engine"]) as s:
        mid = metric_id(s, FRAUD, "resolution_time")
        add_weeks(s, mid, date(2012, 1, 30), [90.0, 86.0])  # 2012-W05, W06
        s.commit()
    at = _app(PILOT_PAGE, pilot_id=_fraud_id(db))
    tiles = dict(_metric_tiles(at))
    assert tiles["Current (mean of last 2 wk)"] == "88 h"
    assert not [label for label in tiles if "last 4 wk" in label]
    (chart,) = at.get("plotly_chart")
    spec = json.loads(chart.proto.spec)
    (current,) = [t for t in spec["data"] if t.get("meta") == "current"]
    assert current["name"] == "Current (mean of last 2 wk): 88 h"
    assert current["y"] == [88.0, 88.0]


def test_pilot_page_picker_switches_pilot(db):
    at = _app(PILOT_PAGE, pilot_id=db["helpdesk"])
    at.sidebar.selectbox(key="pilot_page_pilot").set_value(db["invoice"]).run(timeout=30)
    assert [t.value for t in at.title] == [INVOICE]
    assert at.session_state["pilot_id"] == db["invoice"]
    assert ":orange-badge[Recommendation: extend]" in _texts(at)


def test_pilot_page_can_judge_as_of_the_decision_date(db):
    at = _app(PILOT_PAGE, as_of=date(2012, 9, 3), pilot_id=db["helpdesk"])
    assert "**Decision due** 66 days ago" in _read(at)
    at.button(key="pilot-as-of-decision").click().run(timeout=30)
    assert at.session_state["as_of"] == date(2012, 6, 29)
    assert at.sidebar.date_input[0].value == date(2012, 6, 29)
    assert "**Decision due** today" in _read(at)
    assert "As of 2012-06-29: 1 of 1 primary metrics met their target." in _texts(at)
    assert ("Weeks reported", "6 / 25") in _metric_tiles(at)


def test_chosen_pilot_follows_to_the_enter_page(db):
    at = _app(PILOT_PAGE, pilot_id=db["helpdesk"])
    at.sidebar.selectbox(key="pilot_page_pilot").set_value(db["invoice"]).run(timeout=30)
    at.switch_page(ENTER_PAGE).run(timeout=30)
    assert at.selectbox(key="enter_pilot").value == db["invoice"]
    assert _value_labels(at) == ["Analyst productivity (items/h)"]


# =========================================================================== enter


def _enter(db, *, pilot: str = "helpdesk") -> AppTest:
    at = _app(ENTER_PAGE, pilot_id=db[pilot])
    return at


def _value_labels(at: AppTest) -> list[str]:
    """The labels of the Enter page's value fields."""
    return [_unescape(n.label) for n in at.text_input if (n.key or "").startswith("enter-value-")]


def _value_key(db, metric: str, week: date, pilot: str = "helpdesk") -> str:
    return f"enter-value-{db[pilot]}-{db[metric]}-{week.isoformat()}"


def _open_enter_with_url(query: dict[str, str]) -> AppTest:
    """Open /enter directly (no earlier page), as a link or a typed address does."""
    at = AppTest.from_file(APP, default_timeout=30)
    at.session_state["as_of"] = AS_OF
    for name, value in query.items():
        at.query_params[name] = value
    at.switch_page(ENTER_PAGE).run(timeout=30)
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_enter_page_preselects_the_pilot_named_in_the_url(db):
    at = _open_enter_with_url({"pilot": str(db["invoice"])})
    assert at.selectbox(key="enter_pilot").value == db["invoice"]
    assert _value_labels(at) == ["Analyst productivity (items/h)"]
    assert INVOICE in _texts(at)
    # picking another pilot keeps the address in step (like the Pilot page)
    at.selectbox(key="enter_pilot").set_value(db["helpdesk"]).run(timeout=30)
    assert at.query_params["pilot"] == str(db["helpdesk"])
    assert _value_labels(at) == ["Error rate (%)", "Resolution time (h)"]
    # without ?pilot= the first pilot by name is chosen: the URL made the difference
    at = _open_enter_with_url({})
    assert at.selectbox(key="enter_pilot").value == _fraud_id(db)


def test_enter_shows_and_keeps_every_typed_digit(db):
    week = date(2012, 2, 6)  # error rate stored: 4.8 %
    at = _enter(db)
    at.selectbox(key="enter_week").set_value(week).run(timeout=30)
    # a text field: the browser keeps what was typed (4.12345), never rounds or drops it
    at.text_input(key=_value_key(db, "error_rate", week)).input("4.12345")
    at.button(key=f"enter-preview-{db['helpdesk']}-{week.isoformat()}").click().run(timeout=30)
    assert not at.exception
    changes = _frame_with(at, "Existing", "New", "Action").set_index("Metric")
    assert changes.loc["Error rate (%)", "Existing"] == 4.8
    assert changes.loc["Error rate (%)", "New"] == 4.12345
    assert changes.loc["Error rate (%)", "Change"] == -0.67655  # no binary noise
    config = _column_config(at, "Existing", "New", "Action")
    assert config["New"]["type_config"]["format"] == "plain"
    assert config["Existing"]["type_config"]["format"] == "plain"
    assert config["Change"]["type_config"]["format"] == "%+g"

    at.text_input(key=f"enter-reason-{db['helpdesk']}-{week.isoformat()}").set_value("typo")
    at.button(key=f"enter-save-{db['helpdesk']}-{week.isoformat()}").click().run(timeout=30)
    assert "1 updated" in at.success[0].value
    assert _stored(db["engine"], db["error_rate"]).loc[pd.Timestamp(week), "value"] == 4.12345
    assert "Now: **4.12345%**" in _texts(at)


def test_enter_defaults_to_the_last_complete_week(db):
    at = _enter(db)
    week = at.selectbox(key="enter_week")
    assert week.value == date(2012, 2, 13)
    assert "2012-W07 (Mon 13 Feb – Sun 19 Feb)" in week.options
    inputs = {n.key: n.value for n in at.text_input if n.key.startswith("enter-value-")}
    assert inputs == {
        _value_key(db, "error_rate", date(2012, 2, 13)): "",
        _value_key(db, "resolution_time", date(2012, 2, 13)): "",
    }
    assert _value_labels(at) == ["Error rate (%)", "Resolution time (h)"]


def test_enter_a_week_then_see_it_on_the_pilot_page(db):
    week = date(2012, 2, 13)
    at = _enter(db)
    at.text_input(key=_value_key(db, "resolution_time", week)).input("70.5")
    at.text_input(key=f"enter-note-{db['helpdesk']}-{week.isoformat()}").set_value("typed in")
    at.button(key=f"enter-save-{db['helpdesk']}-{week.isoformat()}").click().run(timeout=30)
    assert not at.exception
    assert not at.error
    assert [s.value for s in at.success] == [
        f"Saved 2012-W07 for {HELPDESK}: 1 created, 0 updated, 0 unchanged."
    ]
    stored = _stored(db["engine"], db["resolution_time"])
    assert stored.loc[pd.Timestamp(week), "value"] == 70.5
    assert stored.loc[pd.Timestamp(week), "note"] == "typed in"
    assert stored.loc[pd.Timestamp(week), "entered_by"] == "page-tester"
    assert len(_stored(db["engine"], db["error_rate"])) == 6  # empty field: nothing written
    # the form is emptied; the saved value shows next to its field
    assert [n.value for n in at.text_input if n.key.startswith("enter-value-")] == ["", ""]
    assert at.text_input[0].value == ""
    assert "Now: **70.5 h** (by page-tester, version 1) — “typed in”" in _texts(at)

    at.switch_page(PILOT_PAGE).run(timeout=30)
    assert not at.exception
    values = _frame_with(at, "Week", "Value (h)")
    assert values["Week"].iloc[0] == "2012-W07"
    assert values["Value (h)"].iloc[0] == 70.5
    assert values["Note"].iloc[0] == "typed in"
    assert ("Weeks reported", "7 / 7") in _metric_tiles(at)


def test_enter_preview_shows_the_change_and_writes_nothing(db):
    week = date(2012, 2, 6)  # already reported: 72 h and 4.8 %
    at = _enter(db)
    at.selectbox(key="enter_week").set_value(week).run(timeout=30)
    assert "Now: **72 h**" in _texts(at)
    at.text_input(key=_value_key(db, "resolution_time", week)).input("60.0")
    at.text_input(key=_value_key(db, "error_rate", week)).input("4.8")
    at.button(key=f"enter-preview-{db['helpdesk']}-{week.isoformat()}").click().run(timeout=30)
    assert not at.exception
    changes = _frame_with(at, "Existing", "New", "Action")
    rows = changes.set_index("Metric")
    assert rows.loc["Resolution time (h)", "Existing"] == 72.0
    assert rows.loc["Resolution time (h)", "New"] == 60.0
    assert rows.loc["Resolution time (h)", "Change"] == -12.0
    assert rows.loc["Resolution time (h)", "Action"] == "updated"
    assert rows.loc["Error rate (%)", "Action"] == "unchanged"
    assert _stored(db["engine"], db["resolution_time"]).loc[pd.Timestamp(week), "value"] == 72.0

    at.text_input(key=f"enter-reason-{db['helpdesk']}-{week.isoformat()}").set_value("typo")
    at.button(key=f"enter-save-{db['helpdesk']}-{week.isoformat()}").click().run(timeout=30)
    assert [s.value for s in at.success] == [
        f"Saved 2012-W06 for {HELPDESK}: 0 created, 1 updated, 1 unchanged."
    ]
    stored = _stored(db["engine"], db["resolution_time"]).loc[pd.Timestamp(week)]
    assert stored["value"] == 60.0
    assert stored["version"] == 2


def test_enter_flags_an_unusual_value_and_saves_it_only_when_confirmed(db):
    """Issue 10: the "unusual value" warning came only after the write. Now the value
    is refused until its tick box confirms it, and nothing is written before."""
    week = date(2012, 2, 13)
    at = _enter(db)
    at.text_input(key=_value_key(db, "resolution_time", week)).input("780.0")
    at.button(key=f"enter-preview-{db['helpdesk']}-{week.isoformat()}").click().run(timeout=30)
    assert "Check for a typo" in at.warning[0].value
    changes = _frame_with(at, "Existing", "New", "Action").set_index("Metric")
    assert changes.loc["Resolution time (h)", "Check"] == ("unusual: 10× the recent median 78 h")
    at.button(key=f"enter-save-{db['helpdesk']}-{week.isoformat()}").click().run(timeout=30)
    assert not at.success
    assert _unescape(at.error[0].value) == (
        "Not saved: Resolution time 780 h (unusual: 10× the recent median 78 h). If this is "
        "right, tick **Save values that look unusual** and press Save again."
    )
    assert pd.Timestamp(week) not in _stored(db["engine"], db["resolution_time"]).index
    at.checkbox(key=f"enter-confirm-unusual-{db['helpdesk']}-{week.isoformat()}").check()
    at.button(key=f"enter-save-{db['helpdesk']}-{week.isoformat()}").click().run(timeout=30)
    assert "Saved 2012-W07" in at.success[0].value
    assert _stored(db["engine"], db["resolution_time"]).loc[pd.Timestamp(week), "value"] == 780


def test_enter_out_of_range_shows_error_and_writes_nothing(db):
    week = date(2012, 2, 13)
    at = _enter(db)
    at.text_input(key=_value_key(db, "resolution_time", week)).input("70.0")
    at.text_input(key=_value_key(db, "error_rate", week)).input("150.0")
    at.button(key=f"enter-save-{db['helpdesk']}-{week.isoformat()}").click().run(timeout=30)
    assert not at.exception
    errors = [_unescape(e.value) for e in at.error]
    assert len(errors) == 1
    assert "Error rate: 150% is above the allowed maximum 100%" in errors[0]
    assert not at.success
    # all or nothing: the valid resolution time was not written either
    assert pd.Timestamp(week) not in _stored(db["engine"], db["resolution_time"]).index
    assert pd.Timestamp(week) not in _stored(db["engine"], db["error_rate"]).index


def test_enter_negative_value_below_minimum(db):
    week = date(2012, 2, 13)
    at = _enter(db)
    at.text_input(key=_value_key(db, "resolution_time", week)).input("-1.0")
    at.button(key=f"enter-save-{db['helpdesk']}-{week.isoformat()}").click().run(timeout=30)
    assert "below the allowed minimum 0 h" in at.error[0].value
    assert pd.Timestamp(week) not in _stored(db["engine"], db["resolution_time"]).index


def test_enter_nothing_typed_warns(db):
    week = date(2012, 2, 13)
    at = _enter(db)
    at.button(key=f"enter-save-{db['helpdesk']}-{week.isoformat()}").click().run(timeout=30)
    assert "Nothing entered" in at.warning[0].value
    assert len(_stored(db["engine"], db["resolution_time"])) == 6


def test_enter_first_value_of_a_pilot_without_data(db):
    with Session(db["engine"]) as s:
        fraud = int(store.pilots_frame(s).set_index("pilot").loc[FRAUD, "pilot_id"])
        mid = metric_id(s, FRAUD, "resolution_time")
    at = _app(ENTER_PAGE, pilot_id=fraud)
    assert "0 of 1 metrics already have a value" in _texts(at)
    key = f"enter-value-{fraud}-{mid}-2012-02-13"
    at.text_input(key=key).input("42.0")
    at.button(key=f"enter-save-{fraud}-2012-02-13").click().run(timeout=30)
    assert not at.exception
    assert "1 created" in at.success[0].value
    assert _stored(db["engine"], mid).loc[pd.Timestamp("2012-02-13"), "value"] == 42.0


def test_enter_an_older_week_by_date(db):
    at = _enter(db)
    at.selectbox(key="enter_week").set_value("other").run(timeout=30)
    at.date_input(key="enter_other_day").set_value(date(2011, 12, 7)).run(timeout=30)  # W49
    week = date(2011, 12, 5)
    assert "baseline period" in _texts(at)
    at.text_input(key=_value_key(db, "resolution_time", week)).input("121.0")
    at.button(key=f"enter-save-{db['helpdesk']}-{week.isoformat()}").click().run(timeout=30)
    assert not at.error
    assert _stored(db["engine"], db["resolution_time"]).loc[pd.Timestamp(week), "value"] == 121


# =========================================================================== import

GOOD_CSV = (
    "pilot,metric,week,value,note\n"
    f"{HELPDESK},resolution_time,2012-W07,69.5,imported\n"
    f"{HELPDESK},error_rate,2012-02-15,4.4,\n"
    f"{HELPDESK},resolution_time,2012-W06,72,\n"
)
BAD_CSV = (
    "pilot,metric,week,value\n"
    f"{HELPDESK},resolution_time,2012-W07,69.5\n"
    f"{HELPDESK},error_rate,2012-W07,150\n"
    f"No such pilot,resolution_time,2012-W07,1\n"
)


def test_import_shows_every_error_and_writes_nothing(db):
    at = _app(IMPORT_PAGE)
    at.file_uploader[0].set_value(("bad.csv", BAD_CSV.encode(), "text/csv")).run(timeout=30)
    assert not at.exception
    assert "2 problems found" in at.error[0].value
    errors = at.dataframe[0].value
    assert list(errors["Line"]) == ["3", "4"]
    assert list(errors["Column"]) == ["value", "pilot"]
    assert not [b for b in at.button if b.label.startswith("Write")]
    assert pd.Timestamp("2012-02-13") not in _stored(db["engine"], db["resolution_time"]).index


SEMICOLON_CSV = "name;date;amount\nx;2012-W07;1\n"


def test_import_file_level_error_is_named_and_readable(db):
    at = _app(IMPORT_PAGE)
    at.file_uploader[0].set_value(("semi.csv", SEMICOLON_CSV.encode(), "text/csv"))
    at.run(timeout=30)
    assert not at.exception
    errors = at.dataframe[0].value
    assert list(errors["Line"]) == ["file"]
    assert list(errors["Column"]) == [""]
    assert "(found: name, date, amount)" in errors["Problem"].iloc[0]
    messages = [e.value for e in at.error]
    assert messages[0].startswith("1 problem found: nothing will be written.")
    # the whole problem, in full, above the table
    assert messages[1].startswith("**File:** missing required columns pilot, metric, week")
    assert messages[1].endswith("\\(wide form\\)")
    config = _column_config(at, "Problem")
    assert config["Problem"]["width"] == "large"
    # rows tall enough for the cell text to wrap (Streamlit wraps above 64 px)
    assert at.dataframe[0].proto.row_height > 64


def test_import_header_error_says_header(db):
    data = f"pilot,metric,week,value,value\n{HELPDESK},resolution_time,2012-W07,1,2\n"
    at = _app(IMPORT_PAGE)
    at.file_uploader[0].set_value(("dup.csv", data.encode(), "text/csv")).run(timeout=30)
    errors = at.dataframe[0].value
    assert list(errors["Line"]) == ["header"]
    assert list(errors["Column"]) == ["value"]
    assert at.error[1].value.startswith("**Header:** column 'value' appears twice")


def test_import_updates_use_the_same_words(db):
    data = f"pilot,metric,week,value\n{HELPDESK},resolution_time,2012-W06,71\n"
    at = _app(IMPORT_PAGE)
    at.file_uploader[0].set_value(("one.csv", data.encode(), "text/csv")).run(timeout=30)
    assert list(at.dataframe[0].value["Action"]) == ["updated"]
    assert dict(_metric_tiles(at))["Updated"] == "1"
    assert at.success[0].value == (
        "No problems found. 1 row: 0 created, 1 updated, 0 unchanged. "
        "Nothing is written until you press **Write 1 row**."
    )
    assert [b.label for b in at.button] == ["Write 1 row"]


def test_import_dry_run_then_write(db):
    at = _app(IMPORT_PAGE)
    at.file_uploader[0].set_value(("good.csv", GOOD_CSV.encode(), "text/csv")).run(timeout=30)
    assert not at.exception
    assert not at.error
    assert "long form" in _texts(at)
    preview = at.dataframe[0].value
    assert list(preview["Action"]) == ["created", "created", "unchanged"]
    assert list(preview["Week"]) == ["2012-W07", "2012-W07", "2012-W06"]
    assert _metric_tiles(at) == [
        ("Rows", "3"),
        ("Created", "2"),
        ("Updated", "0"),
        ("Unchanged", "1"),
    ]
    assert [x.value for x in at.success] == [
        "No problems found. 3 rows: 2 created, 0 updated, 1 unchanged. "
        "Nothing is written until you press **Write 3 rows**."
    ]
    assert "dry run" not in _texts(at)
    write = [b for b in at.button if b.label == "Write 3 rows"]
    assert len(write) == 1
    assert pd.Timestamp("2012-02-13") not in _stored(db["engine"], db["resolution_time"]).index

    write[0].click().run(timeout=30)
    assert not at.exception
    assert "2 created, 0 updated, 1 unchanged" in at.success[0].value
    assert (
        _stored(db["engine"], db["resolution_time"]).loc[pd.Timestamp("2012-02-13"), "value"]
        == 69.5
    )
    assert _stored(db["engine"], db["error_rate"]).loc[pd.Timestamp("2012-02-13"), "value"] == 4.4
    # the written file is not offered again
    assert "good.csv has been imported" in _texts(at)
    assert not [b for b in at.button if b.label.startswith("Write")]


def test_import_of_the_measurements_export_changes_nothing(db, downloads):
    _app(EXPORT_PAGE)
    data, _ = downloads["pilotgate-measurements.csv"]
    at = _app(IMPORT_PAGE)
    at.file_uploader[0].set_value(("export.csv", data, "text/csv")).run(timeout=30)
    assert not at.exception
    assert not at.error
    assert dict(_metric_tiles(at))["Unchanged"] == "18"
    assert "already stored" in _texts(at)
    assert not [b for b in at.button if b.label.startswith("Write")]


def test_import_page_offers_templates(db):
    at = _app(IMPORT_PAGE)
    labels = [b.label for b in at.get("download_button")]
    assert "Download long-form template" in labels
    assert "Download wide-form template" in labels


# =========================================================================== export


def test_export_summary_table_and_downloads(db):
    at = _app(EXPORT_PAGE, pilot_id=db["helpdesk"])
    text = _texts(at)
    # one pilot's card at a time (issue 13), picked in a searchable selectbox
    assert ":green-badge[Recommendation: go]" in text
    assert "- Resolution time 75 h vs target 80 h: met" in text
    at.selectbox(key="export_card_pilot").set_value(db["invoice"]).run(timeout=30)
    assert ":orange-badge[Recommendation: extend]" in _texts(at)
    assert "- Resolution time 75 h vs target 80 h: met" not in _texts(at)
    summary = _frame_with(at, "Improvement %")
    helpdesk = summary[summary["Pilot"] == HELPDESK].set_index("Metric")
    assert helpdesk.loc["resolution_time", "Current"] == 75.0
    assert helpdesk.loc["resolution_time", "Baseline"] == 118.0
    assert pd.isna(summary[summary["Pilot"] == FRAUD]["Current"]).all()
    labels = [b.label for b in at.get("download_button")]
    assert "Download summary CSV" in labels
    assert any(label.startswith("Download measurements CSV (18 rows)") for label in labels)


def test_export_title_and_undated_measurements_file(db, downloads):
    at = _app(EXPORT_PAGE, as_of=date(2012, 2, 6))
    assert [t.value for t in at.title] == ["Export: go / no-go summary"]
    # every stored week is in the file, whatever the as-of date: no date in its name
    # (the Portfolio page, run first, offers its own table as CSV: not an Export file)
    names = sorted(
        n for n in downloads if n.endswith(".csv") and not n.startswith("pilotgate-portfolio-")
    )
    assert names == ["pilotgate-measurements.csv", "pilotgate-summary-2012-02-06.csv"]
    lines = downloads["pilotgate-measurements.csv"][0].decode("utf-8").splitlines()
    assert f"{INVOICE},analyst_productivity,2012-W07,12.6," in lines  # after the as-of date


def test_favicon_is_a_local_image(db, monkeypatch):
    from streamlit.commands import page_config

    icons: list[object] = []
    urls: list[str] = []
    real_set_page_config = st.set_page_config
    real_favicon = page_config._get_favicon_string

    def spy_config(*args, **kwargs):
        icons.append(kwargs.get("page_icon"))
        return real_set_page_config(*args, **kwargs)

    def spy_favicon(icon):
        url = real_favicon(icon)
        urls.append(url)
        return url

    monkeypatch.setattr(st, "set_page_config", spy_config)
    monkeypatch.setattr(page_config, "_get_favicon_string", spy_favicon)
    _app()
    assert icons == [str(Path(APP).parent / "dashboard" / "static" / "pilotgate-icon.png")]
    with Image.open(icons[0]) as img:
        assert (img.format, img.size) == ("PNG", (64, 64))
    # served by this server (…/media/<hash>.png; AppTest mounts it under /mock), never a
    # ":material/…:" name the browser turns into a fonts.gstatic.com address
    assert len(urls) == 1
    assert urls[0].startswith(("/media/", "/mock/media/"))
    assert urls[0].endswith(".png")


@pytest.fixture
def downloads(monkeypatch):
    """Every file handed to st.download_button in the run: {file name: (bytes, mime)}."""
    return spy_downloads(monkeypatch)


def test_export_downloads_are_the_summary_and_measurement_csvs(db, downloads):
    from metrics import csvio, service

    _app(EXPORT_PAGE)
    with Session(db["engine"]) as s:
        expected = csvio.to_csv_text(service.summary_export_frame(s, as_of=AS_OF))
    data, mime = downloads[f"pilotgate-summary-{AS_OF.isoformat()}.csv"]
    assert mime == "text/csv"
    text = data.decode("utf-8")
    assert text == expected
    assert text.startswith("\ufeffpilot,vendor,stage,metric,role,unit,direction,baseline")
    line = next(x for x in text.splitlines() if x.startswith(f"{HELPDESK},Acme AI,pilot,res"))
    assert ",118.0,80.0,75.0,6," in line
    import csv
    import io

    (row,) = [
        r
        for r in csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
        if r["pilot"] == HELPDESK and r["metric"] == "resolution_time"
    ]
    assert row["as_of"] == AS_OF.isoformat()
    assert row["open_checklist_items"].count(";") == 10  # the 11 default items, all open
    assert (row["estimated_weekly_value"], row["payback_week"], row["roi_pct"]) == ("", "", "")
    data, _ = downloads["pilotgate-measurements.csv"]
    lines = data.decode("utf-8").splitlines()
    assert lines[0] == "\ufeffpilot,metric,week,value,note"
    assert f"{HELPDESK},resolution_time,2012-W06,72.0," in lines
    assert len(lines) == 1 + 18


# =========================================================================== empty database


@pytest.mark.parametrize(
    "page", PAGES, ids=["portfolio", "pilot", "enter", "import", "export", "vendors"]
)
def test_every_page_has_an_empty_state(empty_db, page):
    at = _app(page)
    assert not at.exception
    text = _texts(at)
    if page is None:
        assert "No pilots yet" in text
        assert "pilotgate seed demo" in text
        assert at.get("page_link")
    elif page == IMPORT_PAGE:
        assert "No pilots are defined yet" in text
        assert at.file_uploader
    elif page == EXPORT_PAGE:
        assert "Nothing to summarise yet" in text
    elif page == VENDORS_PAGE:
        assert "No pilots yet" in text
    else:
        assert "pilotgate seed demo" in text


def test_unreachable_database_is_an_error_not_a_traceback(tmp_path, monkeypatch):
    _use_database(monkeypatch, "nosuchdriver://x")
    at = AppTest.from_file(APP, default_timeout=30).run(timeout=30)
    assert not at.exception
    assert "cannot" in at.error[0].value
    _clear_caches()


def test_week_choice_label():
    from dashboard.components import week_choice_label

    assert week_choice_label(date(2026, 1, 12)) == "2026-W03 (Mon 12 Jan – Sun 18 Jan)"
    assert week_choice_label(date(2020, 12, 28)) == "2020-W53 (Mon 28 Dec – Sun 3 Jan)"
    assert week_choice_label(date(2012, 1, 2) - timedelta(days=7)) == (
        "2011-W52 (Mon 26 Dec – Sun 1 Jan)"
    )


@pytest.mark.parametrize(
    ("raw", "shown"), [("1600-01-01", date(1900, 1, 1)), ("2300-01-01", date(2199, 12, 31))]
)
def test_as_of_outside_the_data_range_is_clamped_not_a_crash(db, raw, shown):
    at = AppTest.from_file(APP, default_timeout=30)
    at.query_params["as_of"] = raw
    at.run()
    assert not at.exception
    assert at.date_input(key="as_of_input").value == shown


def test_hostile_names_are_escaped_for_markdown():
    from dashboard.components import md_escape

    text = "<script>x</script> **b** [l](http://e) $a$ :material/home: ~~s~~ 1. x"
    escaped = md_escape(text)
    for raw in ("**", "[l]", "](", "$a$", ":material/home:", "~~", "<script>"):
        assert raw not in escaped
    assert _unescape(escaped) == text
