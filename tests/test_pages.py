"""Every dashboard page through ``streamlit.testing.v1.AppTest`` (DESIGN §10).

Each test gets its own SQLite database in ``tmp_path`` (``PILOTGATE_DATABASE_URL``),
with settings and Streamlit caches cleared before and after.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
import streamlit as st
from sqlmodel import Session
from streamlit.testing.v1 import AppTest

from metrics import store
from metrics.db import init_db, make_engine
from metrics.settings import get_settings
from tests.factories import add_weeks, make_pilot, metric_id, metric_in

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")
PILOT_PAGE = "dashboard/pages/pilot.py"
ENTER_PAGE = "dashboard/pages/enter.py"
IMPORT_PAGE = "dashboard/pages/import_csv.py"
EXPORT_PAGE = "dashboard/pages/export.py"
PAGES = [None, PILOT_PAGE, ENTER_PAGE, IMPORT_PAGE, EXPORT_PAGE]

START = date(2012, 1, 2)  # Monday of 2012-W01
AS_OF = date(2012, 2, 20)  # a Monday: the last complete week is 2012-W07 (Feb 13)
HELPDESK = "Helpdesk triage assistant"
INVOICE = "Invoice extraction copilot"
FRAUD = "Fraud analyst copilot"


def _clear_caches() -> None:
    get_settings.cache_clear()
    st.cache_data.clear()
    st.cache_resource.clear()


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
    at = AppTest.from_file(APP, default_timeout=30)
    at.session_state["as_of"] = as_of
    if pilot_id is not None:
        at.session_state["pilot_id"] = pilot_id
    at.run(timeout=30)
    if page is not None:
        at.switch_page(page).run(timeout=30)
    assert not at.exception, [e.value for e in at.exception]
    return at


def _texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [x.value for x in at.info] + [x.value for x in at.warning]
    parts += [x.value for x in at.success] + [x.value for x in at.error]
    return "\n".join(str(p) for p in parts)


def _metric_tiles(at: AppTest) -> list[tuple[str, str]]:
    return [(m.label, m.value) for m in at.metric]


def _frame_with(at: AppTest, *columns: str) -> pd.DataFrame:
    """The one st.dataframe on the page that has all of ``columns``."""
    found = [d.value for d in at.dataframe if set(columns) <= set(d.value.columns)]
    assert len(found) == 1, [list(d.value.columns) for d in at.dataframe]
    return found[0]


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
    assert rows.loc[HELPDESK, "Recommendation"] == "🟢 go"
    assert rows.loc[INVOICE, "Recommendation"] == "🟡 extend"
    assert rows.loc[FRAUD, "Recommendation"] == "⚪ insufficient data"
    assert rows.loc[HELPDESK, "Metrics met"] == "1 / 2"
    assert rows.loc[HELPDESK, "Last reported"] == "2012-W06"
    assert rows.loc[HELPDESK, "Completeness"] == pytest.approx(100 * 6 / 7)
    assert not rows.loc[HELPDESK, "Stale"]
    assert bool(rows.loc[FRAUD, "Stale"])
    assert rows.loc[HELPDESK, "Days to decision"] == (date(2012, 6, 29) - AS_OF).days
    tiles = dict(_metric_tiles(at))
    assert tiles["Pilots"] == "3"
    assert tiles["🟢 go"] == "1"
    assert tiles["🟡 extend"] == "1"
    assert tiles["🔴 no-go"] == "0"
    assert tiles["⚪ insufficient data"] == "1"
    assert tiles["pilot"] == "3"


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
    assert links["🟢 " + HELPDESK] == f"pilot={db['helpdesk']}"
    assert links["🟡 " + INVOICE] == f"pilot={db['invoice']}"
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
    # error_rate (guardrail) sorts before resolution_time
    assert ("Baseline", "118 h") in tiles
    assert ("Current (last 4 wk)", "75 h") in tiles
    assert ("Weeks reported", "6 / 7") in tiles
    assert ("Progress to target", "113.2%") in tiles
    assert ("Current (last 4 wk)", "4.75%") in tiles
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
    assert tiles["Current (last 4 wk)"] == "n/a"
    assert tiles["Change vs baseline"] == "n/a"
    assert tiles["Progress to target"] == "n/a"
    assert tiles["Weeks reported"] == "0 / 7"
    text = _texts(at)
    assert "Stale" in text
    assert "Insufficient data" in text
    assert ":gray-badge[Recommendation: insufficient data]" in text


def test_pilot_page_picker_switches_pilot(db):
    at = _app(PILOT_PAGE, pilot_id=db["helpdesk"])
    at.sidebar.selectbox(key="pilot_page_pilot").set_value(db["invoice"]).run(timeout=30)
    assert [t.value for t in at.title] == [INVOICE]
    assert at.session_state["pilot_id"] == db["invoice"]
    assert ":orange-badge[Recommendation: extend]" in _texts(at)


def test_pilot_page_can_judge_as_of_the_decision_date(db):
    at = _app(PILOT_PAGE, as_of=date(2012, 9, 3), pilot_id=db["helpdesk"])
    assert ("Weeks reported", "6 / 35") in _metric_tiles(at)
    at.button(key="pilot-as-of-decision").click().run(timeout=30)
    assert at.session_state["as_of"] == date(2012, 6, 29)
    assert at.sidebar.date_input[0].value == date(2012, 6, 29)
    assert ("Weeks reported", "6 / 25") in _metric_tiles(at)


def test_chosen_pilot_follows_to_the_enter_page(db):
    at = _app(PILOT_PAGE, pilot_id=db["helpdesk"])
    at.sidebar.selectbox(key="pilot_page_pilot").set_value(db["invoice"]).run(timeout=30)
    at.switch_page(ENTER_PAGE).run(timeout=30)
    assert at.selectbox(key="enter_pilot").value == db["invoice"]
    assert [n.label for n in at.number_input] == ["Analyst productivity (items/h)"]


# =========================================================================== enter


def _enter(db, *, pilot: str = "helpdesk") -> AppTest:
    at = _app(ENTER_PAGE, pilot_id=db[pilot])
    return at


def _value_key(db, metric: str, week: date, pilot: str = "helpdesk") -> str:
    return f"enter-value-{db[pilot]}-{db[metric]}-{week.isoformat()}"


def test_enter_defaults_to_the_last_complete_week(db):
    at = _enter(db)
    week = at.selectbox(key="enter_week")
    assert week.value == date(2012, 2, 13)
    assert "2012-W07 (Mon 13 Feb – Sun 19 Feb)" in week.options
    inputs = {n.key: n.value for n in at.number_input}
    assert inputs == {
        _value_key(db, "error_rate", date(2012, 2, 13)): None,
        _value_key(db, "resolution_time", date(2012, 2, 13)): None,
    }
    labels = [n.label for n in at.number_input]
    assert labels == ["Error rate (%)", "Resolution time (h)"]


def test_enter_a_week_then_see_it_on_the_pilot_page(db):
    week = date(2012, 2, 13)
    at = _enter(db)
    at.number_input(key=_value_key(db, "resolution_time", week)).set_value(70.5)
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
    assert [n.value for n in at.number_input] == [None, None]
    assert at.text_input[0].value == ""
    assert "Now: **70.5 h** (by page\\-tester, version 1) — “typed in”" in _texts(at)

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
    at.number_input(key=_value_key(db, "resolution_time", week)).set_value(60.0)
    at.number_input(key=_value_key(db, "error_rate", week)).set_value(4.8)
    at.button(key=f"enter-preview-{db['helpdesk']}-{week.isoformat()}").click().run(timeout=30)
    assert not at.exception
    changes = _frame_with(at, "Existing", "New", "Action")
    rows = changes.set_index("Metric")
    assert rows.loc["Resolution time (h)", "Existing"] == 72.0
    assert rows.loc["Resolution time (h)", "New"] == 60.0
    assert rows.loc["Resolution time (h)", "Change"] == -12.0
    assert rows.loc["Resolution time (h)", "Action"] == "update"
    assert rows.loc["Error rate (%)", "Action"] == "unchanged"
    assert _stored(db["engine"], db["resolution_time"]).loc[pd.Timestamp(week), "value"] == 72.0

    at.button(key=f"enter-save-{db['helpdesk']}-{week.isoformat()}").click().run(timeout=30)
    assert [s.value for s in at.success] == [
        f"Saved 2012-W06 for {HELPDESK}: 0 created, 1 updated, 1 unchanged."
    ]
    stored = _stored(db["engine"], db["resolution_time"]).loc[pd.Timestamp(week)]
    assert stored["value"] == 60.0
    assert stored["version"] == 2


def test_enter_flags_an_unusual_value_but_allows_it(db):
    week = date(2012, 2, 13)
    at = _enter(db)
    at.number_input(key=_value_key(db, "resolution_time", week)).set_value(780.0)
    at.button(key=f"enter-preview-{db['helpdesk']}-{week.isoformat()}").click().run(timeout=30)
    assert "Check for a typo" in at.warning[0].value
    changes = _frame_with(at, "Existing", "New", "Action").set_index("Metric")
    assert changes.loc["Resolution time (h)", "Check"] == ("unusual: 10× the recent median 78 h")
    at.button(key=f"enter-save-{db['helpdesk']}-{week.isoformat()}").click().run(timeout=30)
    assert "Saved 2012-W07" in at.warning[0].value
    assert _stored(db["engine"], db["resolution_time"]).loc[pd.Timestamp(week), "value"] == 780


def test_enter_out_of_range_shows_error_and_writes_nothing(db):
    week = date(2012, 2, 13)
    at = _enter(db)
    at.number_input(key=_value_key(db, "resolution_time", week)).set_value(70.0)
    at.number_input(key=_value_key(db, "error_rate", week)).set_value(150.0)
    at.button(key=f"enter-save-{db['helpdesk']}-{week.isoformat()}").click().run(timeout=30)
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1
    assert "Error rate: 150% is above the allowed maximum 100%" in errors[0]
    assert not at.success
    # all or nothing: the valid resolution time was not written either
    assert pd.Timestamp(week) not in _stored(db["engine"], db["resolution_time"]).index
    assert pd.Timestamp(week) not in _stored(db["engine"], db["error_rate"]).index


def test_enter_negative_value_below_minimum(db):
    week = date(2012, 2, 13)
    at = _enter(db)
    at.number_input(key=_value_key(db, "resolution_time", week)).set_value(-1.0)
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
    at.number_input(key=key).set_value(42.0)
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
    at.number_input(key=_value_key(db, "resolution_time", week)).set_value(121.0)
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
    assert list(errors["Line"]) == [3, 4]
    assert list(errors["Column"]) == ["value", "pilot"]
    assert not [b for b in at.button if b.label.startswith("Write")]
    assert pd.Timestamp("2012-02-13") not in _stored(db["engine"], db["resolution_time"]).index


def test_import_dry_run_then_write(db):
    at = _app(IMPORT_PAGE)
    at.file_uploader[0].set_value(("good.csv", GOOD_CSV.encode(), "text/csv")).run(timeout=30)
    assert not at.exception
    assert not at.error
    assert "long form" in _texts(at)
    preview = at.dataframe[0].value
    assert list(preview["Action"]) == ["create", "create", "unchanged"]
    assert list(preview["Week"]) == ["2012-W07", "2012-W07", "2012-W06"]
    tiles = dict(_metric_tiles(at))
    assert tiles["New"] == "2"
    assert tiles["Unchanged"] == "1"
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
    data, _ = downloads[f"pilotgate-measurements-{AS_OF.isoformat()}.csv"]
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
    at = _app(EXPORT_PAGE)
    text = _texts(at)
    assert ":green-badge[Recommendation: go]" in text
    assert ":orange-badge[Recommendation: extend]" in text
    assert "- Resolution time 75 h vs target 80 h: met" in text
    summary = _frame_with(at, "Improvement %")
    helpdesk = summary[summary["Pilot"] == HELPDESK].set_index("Metric")
    assert helpdesk.loc["resolution_time", "Current"] == 75.0
    assert helpdesk.loc["resolution_time", "Baseline"] == 118.0
    assert pd.isna(summary[summary["Pilot"] == FRAUD]["Current"]).all()
    labels = [b.label for b in at.get("download_button")]
    assert "Download summary CSV" in labels
    assert any(label.startswith("Download all measurements (18 rows") for label in labels)


@pytest.fixture
def downloads(monkeypatch):
    """Every file handed to st.download_button in the run: {file name: (bytes, mime)}."""
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    seen: dict[str, tuple[bytes, str]] = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def spy(self, path_or_data, mimetype, kind, filename=None):
        if filename and isinstance(path_or_data, bytes):
            seen[filename] = (path_or_data, mimetype)
        return original(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", spy)
    return seen


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
    assert line.endswith(f",{AS_OF.isoformat()}")
    data, _ = downloads[f"pilotgate-measurements-{AS_OF.isoformat()}.csv"]
    lines = data.decode("utf-8").splitlines()
    assert lines[0] == "\ufeffpilot,metric,week,value,note"
    assert f"{HELPDESK},resolution_time,2012-W06,72.0," in lines
    assert len(lines) == 1 + 18


# =========================================================================== empty database


@pytest.mark.parametrize("page", PAGES, ids=["portfolio", "pilot", "enter", "import", "export"])
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
