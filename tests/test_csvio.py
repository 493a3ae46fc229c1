"""Tests for metrics.csvio without a database: parsing, validation, the CSV writer."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metrics import csvio
from metrics.csvio import (
    REPORT_COLUMNS,
    ImportReport,
    PilotImportReport,
    RowError,
    parse_measurements_csv,
    parse_pilots_csv,
    to_csv_text,
)
from metrics.models import MAX_ABS_VALUE

HELPDESK = "Helpdesk triage assistant"
CLAIMS = "Claims intake"
NAN = float("nan")
HEADER = "pilot,metric,week,value,note\n"
TODAY = date(2026, 3, 4)  # a Wednesday; its ISO week 2026-W10 starts on 2026-03-02


def metrics_frame() -> pd.DataFrame:
    """A frame shaped like store.metrics_frame for three pilots."""
    return pd.DataFrame(
        {
            "metric_id": [1, 2, 3, 4],
            "pilot_id": [1, 1, 2, 3],
            "pilot": [HELPDESK, HELPDESK, CLAIMS, "=test"],
            "key": ["resolution_time", "error_rate", "cycle_time", "cycle_time"],
            "label": ["Resolution time", "Error rate", "Cycle time", "Cycle time"],
            "unit": ["h", "%", "h", "h"],
            "direction": ["lower_is_better"] * 4,
            "role": ["primary", "guardrail", "primary", "primary"],
            "baseline": [NAN, 5.0, NAN, NAN],
            "target": [80.0, 4.0, 10.0, 10.0],
            "margin": [NAN, 1.0, NAN, NAN],
            "min_value": [0.0, 0.0, NAN, NAN],
            "max_value": [NAN, 100.0, NAN, NAN],
        }
    )


@pytest.fixture(autouse=True)
def _pin_today(monkeypatch):
    monkeypatch.setattr(csvio.parsing, "_today", lambda: TODAY)


def parse(text, **kw) -> ImportReport:
    return parse_measurements_csv(text, metrics_frame(), **kw)


def errs(report) -> list[tuple[int | None, str | None, str]]:
    return [(e.line, e.column, e.reason) for e in report.errors]


def only_error(report) -> RowError:
    assert len(report.errors) == 1, report.errors
    return report.errors[0]


# =========================================================================== good files


def test_long_form_golden_values():
    text = (
        HEADER + f"{HELPDESK},resolution_time,2012-W03,61.2,\n"
        f"{HELPDESK},error_rate,2012-01-18, 5 ,checked by Ann\n"
        f"{CLAIMS},cycle_time,2012-w04,-3.5e1,\n"
    )
    rep = parse(text)
    assert rep.ok and rep.form == "long"
    assert list(rep.rows.columns) == REPORT_COLUMNS
    assert rep.rows.to_dict("records") == [
        {
            "line": 2,
            "pilot": HELPDESK,
            "metric": "resolution_time",
            "week": date(2012, 1, 16),
            "week_label": "2012-W03",
            "value": 61.2,
            "note": "",
            "metric_id": 1,
            "action": "create",
        },
        {
            "line": 3,
            "pilot": HELPDESK,
            "metric": "error_rate",
            "week": date(2012, 1, 16),
            "week_label": "2012-W03",
            "value": 5.0,
            "note": "checked by Ann",
            "metric_id": 2,
            "action": "create",
        },
        {
            "line": 4,
            "pilot": CLAIMS,
            "metric": "cycle_time",
            "week": date(2012, 1, 23),
            "week_label": "2012-W04",
            "value": -35.0,
            "note": "",
            "metric_id": 3,
            "action": "create",
        },
    ]
    assert (rep.created, rep.updated, rep.unchanged, rep.written) == (3, 0, 0, False)
    assert (
        rep.summary_line() == "3 rows: 3 created, 0 updated, 0 unchanged (dry run, nothing written)"
    )


def test_report_dtypes():
    rep = parse(HEADER + f"{HELPDESK},resolution_time,2012-W03,61.2,x\n")
    assert rep.rows.dtypes.astype(str).to_dict() == {
        "line": "int64",
        "pilot": "object",
        "metric": "object",
        "week": "object",
        "week_label": "object",
        "value": "float64",
        "note": "object",
        "metric_id": "int64",
        "action": "object",
    }
    bad = parse(HEADER + f"{HELPDESK},resolution_time,2012-W03,abc,x\n")
    assert bad.rows.empty and list(bad.rows.columns) == REPORT_COLUMNS
    assert bad.rows["value"].dtype == "float64" and bad.rows["line"].dtype == "int64"


def test_wide_form_golden_values():
    text = (
        " Pilot ,WEEK,Resolution_Time,error_rate,cycle_time\n"
        f"{HELPDESK},2012-W03,61.2,4.5,\n"
        f"{HELPDESK},2012-W04,,4,\n"
        ",,,,\n"
        f"{CLAIMS},2012-W03,,,12\n"
    )
    rep = parse(text)
    assert rep.ok, rep.errors
    assert rep.form == "wide"
    got = rep.rows[["line", "pilot", "metric", "week_label", "value", "metric_id"]]
    assert got.values.tolist() == [
        [2, HELPDESK, "resolution_time", "2012-W03", 61.2, 1],
        [2, HELPDESK, "error_rate", "2012-W03", 4.5, 2],
        [3, HELPDESK, "error_rate", "2012-W04", 4.0, 2],
        [5, CLAIMS, "cycle_time", "2012-W03", 12.0, 3],
    ]
    assert rep.rows["note"].tolist() == ["", "", "", ""]


def test_wide_form_errors_name_the_metric_column():
    text = (
        "pilot,week,resolution_time,error_rate,speed\n"
        f"{HELPDESK},2012-W03,abc,101,\n"
        f"{HELPDESK},2012-W04,1,,7\n"
        f"{HELPDESK},2012-W03,2,,\n"
        "Nobody,2012-W03,1,2,3\n"
    )
    assert errs(parse(text)) == [
        (2, "resolution_time", "'abc' is not a number"),
        (2, "error_rate", "Error rate must be between 0 and 100: got 101"),
        (
            3,
            "speed",
            f"pilot '{HELPDESK}' has no metric 'speed' (its metrics: error_rate, resolution_time)",
        ),
        (
            4,
            "resolution_time",
            f"pilot '{HELPDESK}', metric 'resolution_time', week 2012-W03 again: "
            "duplicate of line 2",
        ),
        (5, "pilot", "unknown pilot 'Nobody'"),
    ]


def test_wide_form_with_no_values_is_an_error():
    rep = parse(f"pilot,week,resolution_time\n{HELPDESK},2012-W03,\n")
    assert errs(rep) == [(None, None, "no values: every metric cell is empty")]


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("2012-W03", date(2012, 1, 16)),
        ("2012-w03", date(2012, 1, 16)),
        (" 2012-W03 ", date(2012, 1, 16)),
        ("2012W03", date(2012, 1, 16)),
        ("2012-01-16", date(2012, 1, 16)),  # a Monday
        ("2012-01-22", date(2012, 1, 16)),  # the Sunday of that week
        ("2020-W53", date(2020, 12, 28)),  # 2020 has 53 ISO weeks
        ("2026-W01", date(2025, 12, 29)),  # week 1 starting in December
        ("2021-01-03", date(2020, 12, 28)),  # a January day in 2020-W53
        ("2026-03-08", date(2026, 3, 2)),  # Sunday of the current week: not future
    ],
)
def test_valid_weeks(cell, expected):
    rep = parse(HEADER + f"{HELPDESK},resolution_time,{cell},1,\n")
    assert rep.ok, rep.errors
    assert rep.rows["week"].tolist() == [expected]


def test_week_53_exists_in_2026_and_2020_not_in_2025(monkeypatch):
    # 2026 starts on a Thursday, so it has 53 ISO weeks (2026-W53 = Mon 2026-12-28)
    monkeypatch.setattr(csvio.parsing, "_today", lambda: date(2027, 1, 4))
    rep = parse(
        HEADER + f"{HELPDESK},resolution_time,2026-W53,1,\n{HELPDESK},resolution_time,2020-W53,1,\n"
    )
    assert rep.rows["week"].tolist() == [date(2026, 12, 28), date(2020, 12, 28)]
    bad = parse(HEADER + f"{HELPDESK},resolution_time,2025-W53,1,\n")
    assert errs(bad) == [(2, "week", "'2025-W53' does not exist: ISO year 2025 has weeks 1 to 52")]


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("61.2", 61.2),
        (" 61.2 ", 61.2),
        ("+5", 5.0),
        ("0", 0.0),
        ("-0", 0.0),
        (".5", 0.5),
        ("5.", 5.0),
        ("1e2", 100.0),
        ("1E+2", 100.0),
        ("1e-05", 1e-05),
        ("0.30000000000000004", 0.30000000000000004),
    ],
)
def test_valid_values(cell, expected):
    rep = parse(HEADER + f'{HELPDESK},resolution_time,2012-W03,"{cell}",\n')
    assert rep.ok, rep.errors
    assert rep.rows["value"].tolist() == [expected]


# =========================================================================== bad rows

HD = HELPDESK
BAD_ROWS = [
    # (id, data line, column, reason)
    (
        "unknown pilot with suggestion",
        "Helpdesk triage asistant,resolution_time,2012-W03,61.2,",
        "pilot",
        "unknown pilot 'Helpdesk triage asistant' (did you mean 'Helpdesk triage assistant'?)",
    ),
    (
        "unknown pilot",
        "Nobody at all,resolution_time,2012-W03,61.2,",
        "pilot",
        "unknown pilot 'Nobody at all'",
    ),
    ("missing pilot", ",resolution_time,2012-W03,61.2,", "pilot", "pilot is missing"),
    (
        "unknown metric",
        f"{HD},speed,2012-W03,61.2,",
        "metric",
        f"pilot '{HD}' has no metric 'speed' (its metrics: error_rate, resolution_time)",
    ),
    (
        "metric of another pilot",
        f"{CLAIMS},resolution_time,2012-W03,61.2,",
        "metric",
        f"pilot '{CLAIMS}' has no metric 'resolution_time' (its metrics: cycle_time)",
    ),
    ("missing metric", f"{HD},,2012-W03,61.2,", "metric", "metric is missing"),
    ("text value", f"{HD},resolution_time,2012-W03,abc,", "value", "'abc' is not a number"),
    (
        "groups of two digits",
        f'{HD},resolution_time,2012-W03,"1,23,4",',
        "value",
        "'1,23,4' is not a number",
    ),
    ("two decimal marks", f'{HD},resolution_time,2012-W03,"1.2,3",', "value", "'1.2,3' is not"),
    ("empty value", f"{HD},resolution_time,2012-W03,,", "value", "value is missing"),
    ("blank value", f"{HD},resolution_time,2012-W03,  ,", "value", "value is missing"),
    ("nan", f"{HD},resolution_time,2012-W03,nan,", "value", "'nan' is not a number"),
    ("NaN", f"{HD},resolution_time,2012-W03,NaN,", "value", "'NaN' is not a number"),
    ("inf", f"{HD},resolution_time,2012-W03,inf,", "value", "'inf' is not a number"),
    ("-inf", f"{HD},resolution_time,2012-W03,-Infinity,", "value", "'-Infinity' is not a number"),
    (
        "overflow",
        f"{HD},resolution_time,2012-W03,1e400,",
        "value",
        "'1e400' is not a finite number",
    ),
    (
        "too large",
        f"{HD},resolution_time,2012-W03,1e308,",
        "value",
        "'1e308' is too large (limit ±1e+15)",
    ),
    (
        "week before 1900",
        f"{HD},resolution_time,0001-W01,1,",
        "week",
        "week 0001-W01 is before 1900: check the year",
    ),
    (
        "date before 1677 (pandas' lower bound)",
        f"{HD},resolution_time,1600-01-05,1,",
        "week",
        "week 1600-W01 is before 1900",
    ),
    ("NUL in note", f"{HD},resolution_time,2012-W03,1,a\x00b", "note", "control characters"),
    ("hex", f"{HD},resolution_time,2012-W03,0x10,", "value", "'0x10' is not a number"),
    ("underscore", f"{HD},resolution_time,2012-W03,1_000,", "value", "'1_000' is not a number"),
    ("unit attached", f"{HD},resolution_time,2012-W03,12h,", "value", "'12h' is not a number"),
    (
        "above max",
        f"{HD},error_rate,2012-W03,100.5,",
        "value",
        "Error rate must be between 0 and 100: got 100.5",
    ),
    (
        "below min",
        f"{HD},error_rate,2012-W03,-1,",
        "value",
        "Error rate must be between 0 and 100: got -1",
    ),
    (
        "below open-ended min",
        f"{HD},resolution_time,2012-W03,-0.5,",
        "value",
        "Resolution time must be at least 0: got -0.5",
    ),
    (
        "week 53 of a 52-week year",
        f"{HD},resolution_time,2025-W53,1,",
        "week",
        "'2025-W53' does not exist: ISO year 2025 has weeks 1 to 52",
    ),
    ("week 0", f"{HD},resolution_time,2026-W00,1,", "week", "'2026-W00' does not exist"),
    (
        "impossible date",
        f"{HD},resolution_time,2023-02-30,1,",
        "week",
        "'2023-02-30' is not a valid date",
    ),
    ("text week", f"{HD},resolution_time,last week,1,", "week", "'last week' is not a week"),
    ("datetime", f"{HD},resolution_time,2012-01-18 10:00,1,", "week", "is not a week"),
    ("missing week", f"{HD},resolution_time,,1,", "week", "week is missing"),
    (
        "future week label",
        f"{HD},resolution_time,2031-W05,1,",
        "week",
        "week 2031-W05 is in the future",
    ),
    ("next week", f"{HD},resolution_time,2026-W11,1,", "week", "week 2026-W11 is in the future"),
    (
        "future date",
        f"{HD},resolution_time,2026-03-09,1,",
        "week",
        "week 2026-W11 is in the future",
    ),
    (
        "invalid dd/mm date",
        f"{HD},resolution_time,32/13/2012,1,",
        "week",
        "'32/13/2012' is not a valid date",
    ),
    (
        "note too long",
        f"{HD},resolution_time,2012-W03,1,{'x' * 1001}",
        "note",
        "note is longer than 1000",
    ),
]


@pytest.mark.parametrize(
    ("line", "column", "reason"), [b[1:] for b in BAD_ROWS], ids=[b[0] for b in BAD_ROWS]
)
def test_bad_row_reports_line_column_reason(line, column, reason):
    text = HEADER + f"{HD},resolution_time,2012-W02,60,\n" + line + "\n"
    rep = parse(text)
    assert not rep.ok
    err = only_error(rep)
    assert (err.line, err.column) == (3, column)
    assert reason in err.reason
    assert rep.rows.empty
    assert rep.summary_line() == "1 error, nothing written"


def test_badly_grouped_number_gets_a_hint():
    rep = parse(HEADER + f'{HD},resolution_time,2012-W03,"12,34.5",\n')
    assert only_error(rep).reason == (
        "'12,34.5' is not a number "
        "(thousands separators group three digits, and one decimal separator ends it)"
    )


def test_duplicate_in_file_names_the_first_line():
    text = (
        HEADER + f"{HD},resolution_time,2012-W03,61,\n"
        f"{HD},error_rate,2012-W03,4,\n"
        f"{HD},resolution_time,2012-01-18,62,\n"  # same ISO week as line 2
        f"{HD},resolution_time,2012-W03,63,\n"
    )
    assert errs(parse(text)) == [
        (
            4,
            None,
            f"pilot '{HD}', metric 'resolution_time', week 2012-W03 again: duplicate of line 2",
        ),
        (
            5,
            None,
            f"pilot '{HD}', metric 'resolution_time', week 2012-W03 again: duplicate of line 2",
        ),
    ]


def test_every_error_is_reported_sorted_by_line():
    text = (
        HEADER + f"{HD},resolution_time,2012-W03,61.2,\n"
        "Nobody,resolution_time,2012-W04,1,\n"
        f"{HD},error_rate,2025-W53,abc,\n"
        f"{HD},resolution_time,2012-W05,1,\n"
        "\n"
        f"{HD},error_rate,2012-W05,,\n"
        f"{HD},resolution_time,2012-W05,2,\n"
    )
    rep = parse(text)
    assert [(e.line, e.column) for e in rep.errors] == [
        (3, "pilot"),
        (4, "week"),
        (4, "value"),
        (7, "value"),
        (8, None),
    ]
    assert rep.summary_line() == "5 errors, nothing written"
    assert str(rep.errors[2]) == "line 4, column value: 'abc' is not a number"


def test_only_the_last_row_bad():
    good = "".join(f"{HD},resolution_time,2011-W{w:02d},{w},\n" for w in range(1, 41))
    rep = parse(HEADER + good + f"{HD},resolution_time,2012-W01,x,\n")
    assert errs(rep) == [(42, "value", "'x' is not a number")]
    assert rep.rows.empty and rep.created == 0


# =========================================================================== file-level problems


@pytest.mark.parametrize(
    "data",
    [
        "",
        b"",
        "\n\n",
        ",,,,\n\n",
        "\ufeff",
        b"\xef\xbb\xbf",
        HEADER,
        HEADER + "\n,,,,\n \n",
        HEADER.upper(),
    ],
    ids=[
        "empty",
        "empty-bytes",
        "blank-lines",
        "only-commas",
        "bom",
        "bom-bytes",
        "header",
        "header-blanks",
        "header-upper",
    ],
)
def test_no_rows(data):
    rep = parse(data)
    assert errs(rep) == [(None, None, "no rows")]
    assert str(rep.errors[0]) == "file: no rows"
    assert rep.summary_line() == "1 error, nothing written"


def test_missing_required_column():
    rep = parse(f"pilot,metric,week,note\n{HD},resolution_time,2012-W03,x\n")
    assert rep.form == "long"
    assert errs(rep) == [
        (None, None, "missing required column value (found: pilot, metric, week, note)")
    ]


def test_missing_columns_when_form_unknown():
    rep = parse("name,date,amount\nx,2012-W03,1\n")
    assert rep.form == ""
    err = only_error(rep)
    assert err.line is None
    assert err.reason.startswith(
        "missing required columns pilot, metric, week, value (found: name, date, amount)"
    )


def test_semicolon_pilot_file_gets_a_hint():
    # measurement files may be semicolon-separated (tests/test_import_formats.py);
    # pilot definition files are read comma-separated only
    rep = parse_pilots_csv(f"pilot;start_date;decision_date;metric;direction;target\n{HD};x\n")
    assert "the header looks semicolon-separated" in only_error(rep).reason


def test_unknown_column_in_long_form():
    rep = parse(f"pilot,metric,week,value,Comment\n{HD},resolution_time,2012-W03,1,x\n")
    assert errs(rep) == [
        (
            1,
            "Comment",
            "unknown column 'Comment' (long form columns: pilot, metric, week, value, note)",
        )
    ]


def test_wide_form_without_metric_columns():
    rep = parse(f"pilot,week\n{HD},2012-W03\n")
    assert rep.form == "wide"
    assert "no metric columns" in only_error(rep).reason


def test_duplicate_header_column():
    rep = parse(f"pilot,metric,week,value,Value\n{HD},resolution_time,2012-W03,1,2\n")
    assert errs(rep) == [(1, "Value", "column 'value' appears twice (columns 4 and 5)")]


def test_wrong_field_counts():
    text = (
        HEADER + f"{HD},resolution_time,2012-W03,1,,\n"  # trailing empty field: fine
        f"{HD},resolution_time,2012-W04,1,x,y\n"
        f"{HD},resolution_time,2012-W05,1\n"
    )
    assert errs(parse(text)) == [
        (3, None, "6 fields but the header has 5 columns (quote a value that contains a comma)"),
        (4, None, "only 4 fields but the header has 5 columns"),
    ]


def test_not_utf8():
    rep = parse((HEADER + "Café,resolution_time,2012-W03,1,\n").encode("latin-1"))
    err = only_error(rep)
    assert err.line is None and err.reason.startswith("file is not UTF-8 text")


def test_unterminated_quote():
    rep = parse(HEADER + f'{HD},resolution_time,2012-W03,1,"open\n')
    err = only_error(rep)
    assert err.line == 2 and "not readable as CSV" in err.reason


# =========================================================================== encodings and quoting


def test_bom_crlf_and_quotes():
    text = (
        "\ufeffPilot,Metric,Week,Value,Note\r\n"
        f'"{HD}",resolution_time,2012-W03,61.2,"a, b and ""c"""\r\n'
        "\r\n"
        f'{HD},error_rate,2012-W03,4,"two\r\nlines"\r\n'
        f"{HD},error_rate,2012-W04,abc,\r\n"
    )
    for data in (text, text.encode("utf-8"), text.removeprefix("\ufeff").encode("utf-8-sig")):
        rep = parse(data)
        # the quoted newline occupies lines 4-5, so the bad row is on physical line 6
        assert errs(rep) == [(6, "Value", "'abc' is not a number")]
    ok = parse(text.rsplit("\r\n", 2)[0] + "\r\n")
    assert ok.rows["note"].tolist() == ['a, b and "c"', "two\r\nlines"]
    assert ok.rows["line"].tolist() == [2, 4]


def test_unescapes_neutralized_text_only_before_formula_characters():
    text = (
        HEADER + "'=test,cycle_time,2012-W03,1,'-minus\n"
        "'=test,cycle_time,2012-W04,2,'quoted\n"
        "'=test,cycle_time,2012-W05,3,''=x\n"
    )
    rep = parse(text)
    assert rep.ok, rep.errors
    assert rep.rows["pilot"].tolist() == ["=test"] * 3
    assert rep.rows["note"].tolist() == ["-minus", "'quoted", "'=x"]
    # a number cell is never unescaped
    bad = parse(HEADER + "=test,cycle_time,2012-W03,'-25,\n")
    assert errs(bad) == [(2, "value", "''-25' is not a number")]


def test_metric_keys_are_case_insensitive():
    rep = parse(HEADER + f"{HD}, Resolution_Time ,2012-W03,1,\n")
    assert rep.rows["metric"].tolist() == ["resolution_time"]


# =========================================================================== date formats


@pytest.mark.parametrize(
    ("cells", "labels"),
    [
        (["18/01/2012", "01/02/2012"], ["2012-W03", "2012-W05"]),  # only day-first fits all
        (["01/18/2012", "02/01/2012"], ["2012-W03", "2012-W05"]),  # only month-first fits all
        (["18.01.2012", "25.01.2012"], ["2012-W03", "2012-W04"]),
        (["05/05/2012", "2012-W20"], ["2012-W18", "2012-W20"]),  # same either way
    ],
)
def test_non_iso_dates_resolve_when_the_column_reads_one_way(cells, labels):
    text = HEADER + "".join(
        f"{HD},resolution_time,{c},{i},\n" for i, c in enumerate(cells, start=1)
    )
    rep = parse(text)
    assert rep.ok, rep.errors
    assert rep.rows["week_label"].tolist() == labels


def test_ambiguous_dates_are_refused_once():
    text = (
        HEADER + f"{HD},resolution_time,2012-W01,1,\n"
        f"{HD},resolution_time,01/02/2012,1,\n"
        f"{HD},resolution_time,03/04/2012,1,\n"
    )
    rep = parse(text)
    assert errs(rep) == [
        (
            3,
            "week",
            "dates like '01/02/2012' read two ways in column week (day-first: 2012-02-01, "
            "month-first: 2012-01-02) and no date in the file tells which: choose the date "
            "format (day-first or month-first), or write ISO dates YYYY-MM-DD",
        )
    ]
    assert rep.ask_date_format and not rep.ask_decimal


def test_mixed_day_first_and_month_first_is_refused_per_line():
    text = (
        HEADER + f"{HD},resolution_time,18/01/2012,1,\n"
        f"{HD},resolution_time,25/01/2012,1,\n"
        f"{HD},resolution_time,02/13/2012,1,\n"
    )
    err = only_error(parse(text))
    assert (err.line, err.column) == (4, "week")
    assert err.reason.startswith(
        "'02/13/2012' is only valid month-first, but line 2 '18/01/2012' is only valid day-first"
    )


# =========================================================================== classification


def test_classification_against_existing():
    existing = pd.DataFrame(
        {
            "measurement_id": [10, 11, 12],
            "metric_id": [1, 1, 2],
            "week": pd.to_datetime(["2012-01-16", "2012-01-23", "2012-01-16"]),
            "value": [61.2, 50.0, 4.0],
            "note": ["", "", "old"],
        }
    )
    text = (
        HEADER + f"{HD},resolution_time,2012-W03,61.2,\n"  # unchanged
        f"{HD},resolution_time,2012-W04,51,\n"  # value changed
        f"{HD},error_rate,2012-W03,4,new\n"  # note changed
        f"{HD},error_rate,2012-W04,4,\n"  # new
    )
    rep = parse(text, existing=existing)
    assert rep.rows["action"].tolist() == ["unchanged", "update", "update", "create"]
    assert (rep.created, rep.updated, rep.unchanged) == (1, 2, 1)
    assert (
        rep.summary_line() == "4 rows: 1 created, 2 updated, 1 unchanged (dry run, nothing written)"
    )


# =========================================================================== RowError and reports


@pytest.mark.parametrize(
    ("err", "text"),
    [
        (
            RowError(4, "value", "'abc' is not a number"),
            "line 4, column value: 'abc' is not a number",
        ),
        (RowError(None, None, "no rows"), "file: no rows"),
        (RowError(7, None, "duplicate of line 3"), "line 7: duplicate of line 3"),
        (RowError(None, "week", "x"), "column week: x"),
    ],
)
def test_row_error_str(err, text):
    assert str(err) == text


def test_written_summary_line():
    rep = ImportReport(
        parse(HEADER + f"{HD},resolution_time,2012-W03,1,\n").rows, [], "long", 1, 0, 0, True
    )
    assert rep.summary_line() == "1 row: 1 created, 0 updated, 0 unchanged"


# =========================================================================== to_csv_text


def test_to_csv_text_golden():
    df = pd.DataFrame(
        {
            "pilot": ["=SUM(A1)", 'Café, "Zoë"', "-x", "+1", "@cmd", "\tx", "'=y", "plain", None],
            "value": [-25.0, NAN, 0.1 + 0.2, 1e-05, 1e20, 3.0, 2.5, -0.0, 7.0],
            "n": [1, 2, 3, 4, 5, 6, 7, 8, 9],
            "note": pd.array(["a", None, "'b", "", "x\ny", "=1", "ok", "-", "q"], dtype="string"),
        }
    )
    assert to_csv_text(df) == (
        "\ufeffpilot,value,n,note\n"
        "'=SUM(A1),-25.0,1,a\n"
        '"Café, ""Zoë""",,2,\n'
        "'-x,0.30000000000000004,3,'b\n"
        "'+1,0.00001,4,\n"
        '\'@cmd,100000000000000000000.0,5,"x\ny"\n'
        "'\tx,3.0,6,'=1\n"
        "''=y,2.5,7,ok\n"
        "plain,-0.0,8,'-\n"
        ",7.0,9,q\n"
    )


def test_to_csv_text_other_dtypes():
    df = pd.DataFrame(
        {
            "when": pd.to_datetime(["2026-01-05", None]),
            "day": [date(2026, 1, 5), None],
            "flag": [True, False],
            "cat": pd.Categorical(["-a", "b"]),
            "neg": np.array([-1, -2], dtype="int64"),
        }
    )
    assert to_csv_text(df) == (
        "\ufeffwhen,day,flag,cat,neg\n2026-01-05,2026-01-05,True,'-a,-1\n,,False,b,-2\n"
    )
    assert to_csv_text(pd.DataFrame(columns=["a", "b"])) == "\ufeffa,b\n"


def test_to_csv_text_quotes_a_bare_carriage_return():
    # the csv module would leave "a\rb" unquoted with a "\n" terminator
    df = pd.DataFrame({"note": ["a\rb", "\r", "x\x1ey"], "note ": [1, 2, 3]}).rename(
        columns={"note ": "note"}  # duplicate column names are written as they are
    )
    assert to_csv_text(df) == '\ufeffnote,note\n"a\rb",1\n"\'\r",2\nx\x1ey,3\n'


def test_to_csv_text_round_trips_through_the_parser():
    rows = pd.DataFrame(
        {
            "pilot": ["=test", "=test", CLAIMS],
            "metric": ["cycle_time"] * 3,
            "week": ["2012-W03", "2012-W04", "2020-W53"],
            "value": [-25.0, 0.1 + 0.2, 1e-05],
            "note": ['-5 points, "really"', "'=already", "two\nlines"],
        }
    )
    rep = parse(to_csv_text(rows))
    assert rep.ok, rep.errors
    assert rep.rows["pilot"].tolist() == rows["pilot"].tolist()
    assert rep.rows["value"].tolist() == rows["value"].tolist()
    assert rep.rows["note"].tolist() == rows["note"].tolist()
    assert rep.rows["week_label"].tolist() == rows["week"].tolist()


# =========================================================================== pilot definitions

PH = (
    "pilot,vendor,use_case,owner,start_date,decision_date,stage,metric,label,unit,"
    "direction,role,baseline,target,margin,min,max\n"
)
P1 = f"{HD},Acme AI,Triage,Ann,2012-01-02,2012-06-29,pilot"
RT = "resolution_time,,h,lower_is_better,,,80,,,"  # metric part of a row


def test_pilots_csv_good():
    text = (
        PH + f"{P1},resolution_time,Resolution time,h,lower_is_better,primary,120,80,,0,\n"
        f"{CLAIMS},,,,2012-02-06,2012-08-31,,cycle_time,,h,lower_is_better,,,10,,,\n"
        f"{P1},error_rate,,%,lower_is_better,guardrail,5,4,0.5,0,100\n"
    )
    rep = parse_pilots_csv(text)
    assert rep.ok, rep.errors
    assert [(p.name, [m.key for m in ms]) for p, ms in rep.pilots] == [
        (HD, ["resolution_time", "error_rate"]),
        (CLAIMS, ["cycle_time"]),
    ]
    p, ms = rep.pilots[0]
    assert (p.vendor, p.use_case, p.owner, p.stage.value) == ("Acme AI", "Triage", "Ann", "pilot")
    assert (p.start_date, p.decision_date) == (date(2012, 1, 2), date(2012, 6, 29))
    rt, er = ms
    assert (rt.label, rt.unit, rt.direction.value, rt.role.value) == (
        "Resolution time",
        "h",
        "lower_is_better",
        "primary",
    )
    assert (rt.baseline, rt.target, rt.margin, rt.min_value, rt.max_value) == (
        120.0,
        80.0,
        None,
        0.0,
        None,
    )
    assert (er.label, er.role.value, er.margin, er.min_value, er.max_value) == (
        "Error rate",
        "guardrail",
        0.5,
        0.0,
        100.0,
    )
    c, (ct,) = rep.pilots[1]
    assert (c.vendor, c.stage.value, c.trailing_window, c.cost) == ("", "pilot", 4, None)
    assert (ct.label, ct.role.value, ct.baseline) == ("Cycle time", "primary", None)
    assert rep.summary_line() == (
        "2 pilots: 0 created, 0 updated; metrics: 0 created, 0 updated (dry run, nothing written)"
    )


def test_pilots_csv_optional_extra_columns():
    text = (
        "Pilot,Start_Date,Decision_Date,Metric,Direction,Target,Cost,Trailing_Window,Min_Weeks\n"
        f"{HD},2012-01-02,2012-06-29,resolution_time,lower_is_better,80,12500.5,6,3\n"
    )
    rep = parse_pilots_csv(text)
    assert rep.ok, rep.errors
    p, (m,) = rep.pilots[0]
    assert (p.cost, p.trailing_window, p.min_weeks, m.target) == (12500.5, 6, 3, 80.0)


PILOT_BAD = [
    (
        "target on the wrong side",
        f"{P1},resolution_time,,h,lower_is_better,primary,120,130,,0,",
        None,
        "target 130 is on the wrong side of baseline 120: for lower_is_better it must be below it",
    ),
    (
        "target equals baseline",
        f"{P1},resolution_time,,h,lower_is_better,primary,120,120,,0,",
        None,
        "target 120 equals baseline 120: set a target that is an improvement",
    ),
    (
        "unknown direction",
        f"{P1},resolution_time,,h,sideways,primary,120,80,,0,",
        "direction",
        "'sideways' is not allowed: input should be 'lower_is_better' or 'higher_is_better'",
    ),
    (
        "unknown role",
        f"{P1},resolution_time,,h,lower_is_better,boss,120,80,,0,",
        "role",
        "'boss' is not allowed",
    ),
    (
        "bad date",
        f"{HD},Acme AI,Triage,Ann,02/01/2012,2012-06-29,pilot,{RT}",
        "start_date",
        "'02/01/2012' is not a date (expected YYYY-MM-DD)",
    ),
    (
        "impossible date",
        f"{HD},Acme AI,Triage,Ann,2012-01-02,2012-02-30,pilot,{RT}",
        "decision_date",
        "'2012-02-30' is not a valid date",
    ),
    (
        "decision before start",
        f"{HD},Acme AI,Triage,Ann,2012-07-02,2012-06-29,pilot,{RT}",
        None,
        "decision_date 2012-06-29 is before start_date 2012-07-02",
    ),
    (
        "unknown stage",
        f"{HD},Acme AI,Triage,Ann,2012-01-02,2012-06-29,shipped,{RT}",
        "stage",
        "'shipped' is not allowed",
    ),
    (
        "bad key",
        f"{P1},Resolution Time,,h,lower_is_better,primary,120,80,,0,",
        "metric",
        "metric key 'Resolution Time' must start with a lowercase letter",
    ),
    (
        "missing target",
        f"{P1},resolution_time,,h,lower_is_better,primary,120,,,0,",
        "target",
        "target is missing",
    ),
    (
        "text target",
        f"{P1},resolution_time,,h,lower_is_better,primary,120,abc,,0,",
        "target",
        "'abc' is not a number",
    ),
    (
        "missing direction",
        f"{P1},resolution_time,,h,,primary,120,80,,0,",
        "direction",
        "direction is missing",
    ),
    (
        "min above max",
        f"{P1},error_rate,,%,lower_is_better,primary,5,4,,100,0",
        None,
        "min 100 is greater than max 0",
    ),
    (
        "negative margin",
        f"{P1},error_rate,,%,lower_is_better,guardrail,5,4,-1,0,100",
        None,
        "margin -1 must be >= 0",
    ),
]


@pytest.mark.parametrize(
    ("line", "column", "reason"), [b[1:] for b in PILOT_BAD], ids=[b[0] for b in PILOT_BAD]
)
def test_pilots_csv_bad_row(line, column, reason):
    rep = parse_pilots_csv(PH + line + "\n")
    assert not rep.ok and rep.pilots == []
    err = only_error(rep)
    assert (err.line, err.column) == (2, column)
    assert reason in err.reason


def test_pilots_csv_wrong_side_target_str():
    rep = parse_pilots_csv(PH + f"{P1},resolution_time,,h,lower_is_better,primary,120,130,,0,\n")
    assert str(only_error(rep)) == (
        "line 2: target 130 is on the wrong side of baseline 120: "
        "for lower_is_better it must be below it"
    )


def test_pilots_csv_inconsistent_pilot_fields_and_duplicate_metric():
    text = (
        PH + f"{P1},resolution_time,,h,lower_is_better,primary,120,80,,0,\n"
        f"{HD},Other AI,Triage,Ann,2012-01-02,2012-07-06,pilot,"
        "error_rate,,%,lower_is_better,,,4,,,\n"
        f"{P1},resolution_time,,h,lower_is_better,primary,120,70,,0,\n"
    )
    rep = parse_pilots_csv(text)
    assert errs(rep) == [
        (3, "vendor", f"pilot '{HD}' has vendor 'Other AI' here but 'Acme AI' on line 2"),
        (
            3,
            "decision_date",
            f"pilot '{HD}' has decision_date '2012-07-06' here but '2012-06-29' on line 2",
        ),
        (4, "metric", f"pilot '{HD}' lists metric 'resolution_time' again: duplicate of line 2"),
    ]
    assert rep.summary_line() == "3 errors, nothing written"


def test_pilots_csv_file_problems():
    assert errs(parse_pilots_csv("")) == [(None, None, "no rows")]
    assert errs(parse_pilots_csv(PH)) == [(None, None, "no rows")]
    missing = parse_pilots_csv(f"pilot,start_date,metric\n{HD},2012-01-02,x\n")
    assert errs(missing) == [
        (
            None,
            None,
            "missing required columns decision_date, direction, target "
            "(found: pilot, start_date, metric)",
        )
    ]
    unknown = parse_pilots_csv(PH.strip() + ",colour\n" + f"{P1},x,,h,lower_is_better,,,1,,,,red\n")
    assert [(e.line, e.column) for e in unknown.errors] == [(1, "colour")]
    assert isinstance(unknown, PilotImportReport)


# =========================================================================== property


# Any text a note may hold: no surrogates, no control characters except line breaks/tabs.
TEXT = st.text(
    alphabet=st.characters(exclude_categories=("Cs", "Cc"), include_characters="\n\t\r"),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(
    name=TEXT.map(str.strip).filter(bool),
    notes=st.lists(TEXT, min_size=1, max_size=4),
    values=st.lists(
        st.floats(min_value=-MAX_ABS_VALUE, max_value=MAX_ABS_VALUE, width=64),
        min_size=4,
        max_size=4,
    ),
)
def test_any_text_and_number_round_trips(name, notes, values):
    """to_csv_text -> parse_measurements_csv gives back exactly the same text and floats."""
    metrics = metrics_frame().iloc[[2]].assign(pilot=name)
    frame = pd.DataFrame(
        {
            "pilot": name,
            "metric": "cycle_time",
            "week": [f"2012-W{w:02d}" for w in range(1, len(notes) + 1)],
            "value": values[: len(notes)],
            "note": notes,
        }
    )
    rep = parse_measurements_csv(to_csv_text(frame).encode("utf-8"), metrics)
    assert rep.ok, rep.errors
    assert rep.rows["pilot"].tolist() == [name] * len(notes)
    assert rep.rows["note"].tolist() == notes
    assert rep.rows["value"].tolist() == values[: len(notes)]
