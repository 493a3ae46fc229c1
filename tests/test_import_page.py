"""The Import page through Streamlit's AppTest: the preview before anything is written,
the reading choices it offers, and the confirmation needed to overwrite stored values."""

from __future__ import annotations

import re
from datetime import date

import pandas as pd
import pytest
from sqlmodel import Session
from streamlit.testing.v1 import AppTest

from metrics import store
from metrics.db import init_db, make_engine
from tests.apptest_helpers import APP
from tests.apptest_helpers import clear_caches as _clear_caches
from tests.factories import add_weeks, make_pilot, metric_id, metric_in

IMPORT_PAGE = "dashboard/pages/import_csv.py"
HD = "Helpdesk triage assistant"
START = date(2012, 1, 2)  # Monday of 2012-W01
AS_OF = date(2012, 2, 20)


@pytest.fixture
def db(tmp_path, monkeypatch):
    """One pilot: resolution_time (h, 0..5000) and error_rate (%, 0..100), both
    reported 2012-W01..W06 (resolution_time 100, 90, 80, 76, 72, 72)."""
    url = f"sqlite:///{tmp_path / 'import-page.db'}"
    engine = make_engine(url)
    init_db(engine)
    with Session(engine, expire_on_commit=False) as s:
        make_pilot(
            s,
            HD,
            metrics=[
                metric_in("resolution_time", label="Resolution time", max_value=5000.0),
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
        ids = {k: metric_id(s, HD, k) for k in ("resolution_time", "error_rate")}
        add_weeks(s, ids["resolution_time"], START, [100, 90, 80, 76, 72, 72])
        add_weeks(s, ids["error_rate"], START, [4.8, 5.0, 4.9, 4.7, 4.6, 4.8])
        s.commit()
    monkeypatch.setenv("PILOTGATE_DATABASE_URL", url)
    monkeypatch.setenv("PILOTGATE_ACTOR", "page-tester")
    _clear_caches()
    yield {"engine": engine, **ids}
    _clear_caches()
    engine.dispose()


def _page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=30)
    at.session_state["as_of"] = AS_OF
    at.run(timeout=30)
    at.switch_page(IMPORT_PAGE).run(timeout=30)
    assert not at.exception, [e.value for e in at.exception]
    return at


def _upload(at: AppTest, name: str, text: str) -> AppTest:
    at.file_uploader(key="import-file").set_value((name, text.encode("utf-8"), "text/csv"))
    at.run(timeout=30)
    assert not at.exception, [e.value for e in at.exception]
    return at


def _stored(engine, metric: int) -> dict[str, float]:
    with Session(engine) as s:
        m = store.measurements_frame(s)
    m = m[m["metric_id"] == metric]
    return {w.strftime("%Y-%m-%d"): v for w, v in zip(m["week"], m["value"], strict=True)}


def _frame_with(at: AppTest, column: str) -> pd.DataFrame:
    found = [d.value for d in at.dataframe if column in d.value.columns]
    assert len(found) == 1, [list(d.value.columns) for d in at.dataframe]
    return found[0]


def _write_button(at: AppTest):
    (button,) = [b for b in at.button if b.label.startswith("Write")]
    return button


def _unescape(md: str) -> str:
    return re.sub(r"\\(.)", r"\1", str(md)).replace("\u200b", "")


def _texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [x.value for x in at.info] + [x.value for x in at.warning]
    parts += [x.value for x in at.success] + [x.value for x in at.error]
    return "\n".join(_unescape(p) for p in parts)


def _status(at: AppTest) -> list[tuple[str, str]]:
    """(label, state) of each st.status container."""
    return [(s.label, s.state) for s in at.status]


def _progress(at: AppTest) -> list[tuple[int, str]]:
    """(value, text) of each progress bar."""
    return [(p.proto.value, p.proto.text) for p in at.get("progress")]


# =========================================================================== preview


SEMICOLON_FILE = (
    "\ufeffpilot;metric;week;value;note\n"
    f"{HD};resolution_time;2012-W07;69,5;\n"
    f'{HD};error_rate;13.02.2012;"4,4 %";checked, twice\n'
    f"{HD};resolution_time;2012-W06;72;\n"
)


def test_preview_of_a_spreadsheet_file_then_write(db):
    """A semicolon file with decimal commas, a percent sign and day-first dates: the page
    shows what it read, row by row, before anything is written."""
    at = _upload(_page(), "excel.csv", SEMICOLON_FILE)
    assert not at.error
    preview = _frame_with(at, "Action")
    assert preview[["Line", "Metric", "Week", "Value", "Note", "Action"]].values.tolist() == [
        [2, "resolution_time", "2012-W07", 69.5, "", "created"],
        [3, "error_rate", "2012-W07", 4.4, "checked, twice", "created"],
        [4, "resolution_time", "2012-W06", 72.0, "", "unchanged"],
    ]
    assert "Read as: semicolon-separated, decimal comma, dates day first." in _texts(at)
    assert _status(at) == [
        (
            "Checked excel.csv: 3 rows: 2 created, 0 updated, 1 unchanged "
            "(dry run, nothing written)",
            "complete",
        )
    ]
    assert _progress(at) == [(100, "Checked: nothing written")]
    assert "2012-02-13" not in _stored(db["engine"], db["resolution_time"])  # nothing yet
    assert not at.checkbox  # nothing stored would change: no confirmation asked
    write = _write_button(at)
    assert write.label == "Write 3 rows" and not write.disabled

    write.click().run(timeout=30)
    assert not at.exception
    assert at.success[0].value == ("Imported excel.csv: 3 rows: 2 created, 0 updated, 1 unchanged.")
    assert _stored(db["engine"], db["resolution_time"])["2012-02-13"] == 69.5
    assert _stored(db["engine"], db["error_rate"])["2012-02-13"] == 4.4


def test_repeated_header_is_skipped_and_shown(db):
    text = (
        "pilot,metric,week,value\n"
        f"{HD},resolution_time,2012-W07,69.5\n"
        "Pilot,Metric,Week,Value\n"
        f"{HD},error_rate,2012-W07,4.4\n"
    )
    at = _upload(_page(), "glued.csv", text)
    assert _unescape(at.info[0].value) == (
        "Line 3: the header is repeated here (as on line 1): line skipped"
    )
    assert list(_frame_with(at, "Action")["Line"]) == [2, 4]


def test_file_level_problem_is_shown_in_full(db):
    at = _upload(_page(), "other.csv", "name;date;amount\nx;2012-W07;1\n")
    errors = at.dataframe[0].value
    assert list(errors["Line"]) == ["file"]
    assert [_unescape(e.value) for e in at.error] == [
        "1 problem found: nothing will be written. Fix the file and upload it again.",
        "**File:** missing required columns pilot, metric, week, value (found: name, date, "
        "amount); expected pilot, metric, week, value[, note] (long form) or pilot, "
        "week, <metric key>, ... (wide form)",
    ]
    assert not [b for b in at.button if b.label.startswith("Write")]


# =========================================================================== choices


def test_ambiguous_number_offers_the_decimal_separator(db):
    at = _upload(
        _page(), "us.csv", f'pilot,metric,week,value\n{HD},resolution_time,2012-W07,"1,234"\n'
    )
    errors = at.dataframe[0].value
    assert errors.values.tolist() == [
        [
            "2",
            "value",
            "'1,234' reads two ways: 1.234 with a decimal comma, or 1234 with the comma as "
            "thousands separator: choose the decimal separator (dot or comma) and import again",
        ]
    ]
    assert any("choose the **Decimal separator** above" in w.value for w in at.warning)
    assert at.selectbox(key="import-decimal").value is None

    at.selectbox(key="import-decimal").set_value("dot").run(timeout=30)
    assert not at.error
    assert _frame_with(at, "Action")["Value"].tolist() == [1234.0]
    assert "Read as: comma-separated, decimal dot." in _texts(at)

    at.selectbox(key="import-decimal").set_value("comma").run(timeout=30)
    assert _frame_with(at, "Action")["Value"].tolist() == [1.234]
    _write_button(at).click().run(timeout=30)
    assert _stored(db["engine"], db["resolution_time"])["2012-02-13"] == 1.234


def test_ambiguous_dates_offer_the_date_format(db):
    text = (
        "pilot,metric,week,value\n"
        f"{HD},resolution_time,06/02/2012,70\n"  # 6 Feb (W06) or 2 Jun (W22)
        f"{HD},resolution_time,07/02/2012,71\n"  # 7 Feb (W06) or 2 Jul (W27)
    )
    at = _upload(_page(), "dates.csv", text)
    errors = at.dataframe[0].value
    assert errors.values.tolist() == [
        [
            "2",
            "week",
            "dates like '06/02/2012' read two ways in column week (day-first: 2012-02-06, "
            "month-first: 2012-06-02) and no date in the file tells which: choose the date "
            "format (day-first or month-first), or write ISO dates YYYY-MM-DD",
        ]
    ]
    assert any("choose **Dates like 03/04/2026** above" in w.value for w in at.warning)

    at.selectbox(key="import-date-format").set_value("dmy").run(timeout=30)
    # both dates fall in 2012-W06 read day-first: the file lists that week twice
    assert "again: duplicate of line 2" in at.dataframe[0].value["Problem"].iloc[0]
    at.selectbox(key="import-date-format").set_value("mdy").run(timeout=30)
    assert not at.error
    assert _frame_with(at, "Action")["Week"].tolist() == ["2012-W22", "2012-W27"]


# =========================================================================== overwrite

CHANGING_FILE = (
    "pilot,metric,week,value,note\n"
    f"{HD},resolution_time,2012-W06,71,typo fixed\n"
    f"{HD},error_rate,2012-W06,4.9,\n"
    f"{HD},resolution_time,2012-W07,69.5,\n"
)


def test_overwrite_needs_the_checkbox_and_a_reason(db):
    at = _upload(_page(), "fix.csv", CHANGING_FILE)
    assert not at.error
    assert [w.value for w in at.warning] == [
        "2 stored values would change (old → new below). Nothing is overwritten unless you "
        "confirm, with a reason kept in the history of each value."
    ]
    changes = _frame_with(at, "Stored value")
    assert changes.values.tolist() == [
        [2, HD, "resolution_time", "2012-W06", 72.0, 71.0, "h", "", "typo fixed"],
        [3, HD, "error_rate", "2012-W06", 4.8, 4.9, "%", "", ""],
    ]
    assert list(changes.columns) == [
        "Line",
        "Pilot",
        "Metric",
        "Week",
        "Stored value",
        "New value",
        "Unit",  # two units among the rows: a Unit column
        "Stored note",
        "New note",
    ]
    (confirm,) = at.checkbox
    assert confirm.label == "Overwrite 2 existing values" and confirm.value is False
    assert _write_button(at).disabled

    confirm.check().run(timeout=30)
    assert _write_button(at).disabled  # a reason is required too
    at.text_input(key=at.text_input[0].key).input("vendor corrected week 6").run(timeout=30)
    write = _write_button(at)
    assert not write.disabled
    assert _stored(db["engine"], db["resolution_time"])["2012-02-06"] == 72.0  # not yet

    write.click().run(timeout=30)
    assert not at.exception
    assert at.success[0].value == "Imported fix.csv: 3 rows: 1 created, 2 updated, 0 unchanged."
    assert _stored(db["engine"], db["resolution_time"])["2012-02-06"] == 71.0
    assert _stored(db["engine"], db["error_rate"])["2012-02-06"] == 4.9
    with Session(db["engine"]) as s:
        rev = store.revisions_frame(s)
    updates = rev[rev["action"] == "update"]
    assert updates[["old_value", "new_value", "reason", "actor"]].values.tolist() == [
        [72.0, 71.0, "vendor corrected week 6", "page-tester"],
        [4.8, 4.9, "vendor corrected week 6", "page-tester"],
    ]
    mine = rev[rev["actor"] == "page-tester"]
    assert mine[["action", "reason"]].values.tolist() == [
        ["create", "vendor corrected week 6"],
        ["update", "vendor corrected week 6"],
        ["update", "vendor corrected week 6"],
    ]


def test_a_change_made_meanwhile_needs_a_new_confirmation(db):
    """The person confirmed 72 -> 71; someone else then stores 75 for that week. The
    click writes nothing; the page shows 75 -> 71 with the box unticked again."""
    at = _upload(_page(), "fix.csv", CHANGING_FILE)
    at.checkbox[0].check().run(timeout=30)
    at.text_input(key=at.text_input[0].key).input("vendor corrected week 6").run(timeout=30)
    assert not _write_button(at).disabled
    with Session(db["engine"]) as s:
        add_weeks(s, db["resolution_time"], date(2012, 2, 6), [75.0], actor="someone")
        s.commit()

    _write_button(at).click().run(timeout=30)
    assert not at.exception
    assert _stored(db["engine"], db["resolution_time"])["2012-02-06"] == 75.0
    assert "2012-02-13" not in _stored(db["engine"], db["resolution_time"])
    # issue 10: not a silent re-render: the refusal names who changed what
    (error,) = [_unescape(e.value) for e in at.error]
    assert error.startswith(
        "Not written: the stored values changed while you were checking this file: "
        "Resolution time 2012-W06 was changed by someone to 75.0 h at "
    )
    assert error.endswith(
        "while you were editing; your value 71 (line 2) was not saved. Reload to see it. "
        "Check the values that would change above, and confirm again."
    )
    changes = _frame_with(at, "Stored value")
    assert changes["Stored value"].tolist() == [75.0, 4.8]
    assert at.checkbox[0].value is False
    at.run(timeout=30)  # the next run: the new changes wait for a new confirmation
    assert _write_button(at).disabled


def test_reimporting_the_same_file_changes_nothing(db):
    text = "pilot,metric,week,value\n" + "".join(
        f"{HD},resolution_time,2012-W{w:02d},{v}\n"
        for w, v in zip(range(1, 7), [100, 90, 80, 76, 72, 72], strict=True)
    )
    at = _upload(_page(), "same.csv", text)
    assert [(m.label, m.value) for m in at.metric] == [
        ("Rows", "6"),
        ("Created", "0"),
        ("Updated", "0"),
        ("Unchanged", "6"),
    ]
    assert "Every value in this file is already stored" in _texts(at)
    assert not [b for b in at.button if b.label.startswith("Write")]


def test_a_new_week_written_meanwhile_is_named_too(db):
    """Nothing to overwrite when previewed; someone enters week 7 before the click: the
    click writes nothing and names them (before issue 10 the page re-rendered silently)."""
    at = _upload(
        _page(), "new.csv", f"pilot,metric,week,value\n{HD},resolution_time,2012-W07,69.5\n"
    )
    assert not at.warning and not _write_button(at).disabled
    with Session(db["engine"]) as s:
        add_weeks(s, db["resolution_time"], date(2012, 2, 13), [70.0], actor="bob")
        s.commit()
    _write_button(at).click().run(timeout=30)
    (error,) = [_unescape(e.value) for e in at.error]
    assert "Resolution time 2012-W07 was changed by bob to 70.0 h" in error
    assert "your value 69.5 (line 2) was not saved" in error
    assert _stored(db["engine"], db["resolution_time"])["2012-02-13"] == 70.0


def test_a_distant_week_needs_the_tick_box(db):
    """A week 10 years off (2002 typed for 2012) was imported with "No problems found"."""
    text = (
        "pilot,metric,week,value\n"
        f"{HD},resolution_time,2002-W07,69.5\n"
        f"{HD},resolution_time,2012-W07,70\n"
        f"{HD},error_rate,2015-W07,4\n"
    )
    at = _upload(_page(), "far.csv", text)
    problems = _frame_with(at, "Problem")
    assert problems[["Line", "Column", "Problem"]].values.tolist() == [
        [
            "2",
            "week",
            "week 2002-W07 is 516 weeks before the pilot's start week 2012-W01 (more than "
            "156): check the year, or confirm distant weeks",
        ],
        [
            "4",
            "week",
            "week 2015-W07 is 137 weeks after the pilot's decision week 2012-W26 (more than "
            "52): check the year, or confirm distant weeks",
        ],
    ]
    assert "Allow distant weeks" in at.error[0].value
    box = at.checkbox(key=next(c.key for c in at.checkbox if "allow-distant" in c.key))
    assert box.label == "Allow distant weeks" and box.value is False
    assert not [b for b in at.button if b.label.startswith("Write")]
    box.check().run(timeout=30)
    assert not at.error
    _write_button(at).click().run(timeout=30)
    assert at.success[0].value == "Imported far.csv: 3 rows: 3 created, 0 updated, 0 unchanged."
    assert _stored(db["engine"], db["resolution_time"])["2002-02-11"] == 69.5
