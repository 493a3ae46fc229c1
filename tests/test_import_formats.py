"""The measurements CSV as people really have it: encodings, delimiters, decimal commas,
thousands separators, percent signs, quoting, repeated headers, date formats -- parsed
without a database (exact values), and through the `pilotgate import` command line."""

from __future__ import annotations

import io
import sys
from datetime import date

import pandas as pd
import pytest
from sqlmodel import Session

from metrics import csvio, store
from metrics.cli import main
from metrics.csvio import parse_measurements_csv
from metrics.settings import get_settings
from tests.factories import add_weeks, make_pilot, metric_id, metric_in

HD = "Helpdesk triage assistant"
LIFT = "Checkout assistant"
NAN = float("nan")
TODAY = date(2026, 3, 4)  # a Wednesday; its ISO week 2026-W10 starts on 2026-03-02


def metrics_frame() -> pd.DataFrame:
    """Shaped like store.metrics_frame: hours, a % metric (0..100) and a pp metric."""
    return pd.DataFrame(
        {
            "metric_id": [1, 2, 3],
            "pilot": [HD, HD, LIFT],
            "key": ["resolution_time", "error_rate", "conversion_lift"],
            "label": ["Resolution time", "Error rate", "Conversion lift"],
            "unit": ["h", "%", "pp"],
            "min_value": [0.0, 0.0, NAN],
            "max_value": [NAN, 100.0, NAN],
        }
    )


@pytest.fixture(autouse=True)
def _pin_today(monkeypatch):
    monkeypatch.setattr(csvio.parsing, "_today", lambda: TODAY)


def parse(data, **kw) -> csvio.ImportReport:
    return parse_measurements_csv(data, metrics_frame(), **kw)


def rows(report) -> list[tuple]:
    """(line, metric, week label, value, note) of each parsed row."""
    assert report.ok, report.errors
    r = report.rows
    return list(zip(r["line"], r["metric"], r["week_label"], r["value"], r["note"], strict=True))


def errs(report) -> list[tuple[int | None, str | None, str]]:
    return [(e.line, e.column, e.reason) for e in report.errors]


# =========================================================================== encodings

COMMA = f"pilot,metric,week,value,note\n{HD},resolution_time,2012-W03,61.2,fine\n"
EXPECTED = [(2, "resolution_time", "2012-W03", 61.2, "fine")]


@pytest.mark.parametrize(
    "data",
    [
        COMMA,
        COMMA.encode("utf-8"),
        COMMA.encode("utf-8-sig"),  # byte-order mark, as Excel's "CSV UTF-8" writes it
        "\ufeff" + COMMA,
        COMMA.replace("\n", "\r\n").encode("utf-8-sig"),
    ],
    ids=["str", "utf8", "utf8-bom", "str-bom", "crlf-bom"],
)
def test_utf8_with_or_without_bom(data):
    rep = parse(data)
    assert rows(rep) == EXPECTED
    assert rep.delimiter == ","


# =========================================================================== delimiters


@pytest.mark.parametrize(
    ("text", "delimiter"),
    [
        (COMMA, ","),
        (COMMA.replace(",", ";"), ";"),
        (COMMA.replace(",", "\t"), "\t"),
        ("sep=;\n" + COMMA.replace(",", ";"), ";"),  # Excel's delimiter line
        # notes full of the other candidates do not mislead the detection
        (
            "pilot;metric;week;value;note\n"
            f"{HD};resolution_time;2012-W03;61.2;fine\n"
            f'{HD};resolution_time;2012-W04;60;"a, b, c, d, e"\n',
            ";",
        ),
        (
            "pilot,metric,week,value,note\n"
            f"{HD},resolution_time,2012-W03,61.2,fine\n"
            f"{HD},resolution_time,2012-W04,60,a; b; c; d\n",
            ",",
        ),
    ],
    ids=["comma", "semicolon", "tab", "sep-line", "semicolon-notes-with-commas", "comma-notes"],
)
def test_delimiter_is_detected(text, delimiter):
    rep = parse(text)
    assert rep.delimiter == delimiter
    assert rows(rep)[0] == (3 if text.startswith("sep=") else 2, *EXPECTED[0][1:])


def test_wide_form_semicolon_file():
    text = f"pilot;week;resolution_time;error_rate\n{HD};2012-W03;61,2;4,5 %\n{HD};2012-W04;;4\n"
    assert rows(parse(text)) == [
        (2, "resolution_time", "2012-W03", 61.2, ""),
        (2, "error_rate", "2012-W03", 4.5, ""),
        (3, "error_rate", "2012-W04", 4.0, ""),
    ]


# =========================================================================== layout


def test_quotes_spaces_blank_lines_and_delimiter_only_lines():
    text = (
        " Pilot ; Metric ;Week; Value ;Note\n"
        "\n"
        f'"{HD}"; resolution_time ; 2012-W03 ;  61,2 ;"a; b"\n'
        ";;;;\n"
        "   \n"
        f'{HD};resolution_time;2012-W04;"1.234,5";"two\nlines"\n'
        f"{HD};resolution_time;2012-W05;7;\n"
    )
    assert rows(parse(text)) == [
        (3, "resolution_time", "2012-W03", 61.2, "a; b"),
        (6, "resolution_time", "2012-W04", 1234.5, "two\nlines"),
        (8, "resolution_time", "2012-W05", 7.0, ""),
    ]


def test_quoted_fields_after_spaces():
    text = (
        "pilot, metric, week, value, note\n"
        f'{HD}, resolution_time, 2012-W03, "1,234.5", "late, approx"\n'
    )
    assert rows(parse(text)) == [(2, "resolution_time", "2012-W03", 1234.5, "late, approx")]


def test_leading_spaces_of_notes_survive_when_nothing_is_quoted_after_spaces():
    text = f"pilot,metric,week,value,note\n{HD},resolution_time,2012-W03,1,  indented\n"
    assert rows(parse(text))[0][4] == "  indented"


def test_repeated_header_is_skipped_and_reported():
    text = (
        "pilot,metric,week,value\n"
        f"{HD},resolution_time,2012-W03,61.2\n"
        "\n"
        "PILOT, metric ,Week,VALUE\n"
        f"{HD},resolution_time,2012-W04,60\n"
        "pilot,metric,week,value,,\n"
        f"{HD},resolution_time,2012-W05,59\n"
    )
    rep = parse(text)
    assert [r[:4] for r in rows(rep)] == [
        (2, "resolution_time", "2012-W03", 61.2),
        (5, "resolution_time", "2012-W04", 60.0),
        (7, "resolution_time", "2012-W05", 59.0),
    ]
    assert [str(n) for n in rep.notices] == [
        "line 4: the header is repeated here (as on line 1): line skipped",
        "line 6: the header is repeated here (as on line 1): line skipped",
    ]


def test_only_repeated_headers_is_no_rows():
    rep = parse("pilot,metric,week,value\npilot,metric,week,value\n")
    assert errs(rep) == [(None, None, "no rows")]


# =========================================================================== numbers


def one_value(cell: str, delimiter: str = ",", metric: str = "resolution_time", **kw):
    """Parse a file holding one value cell (quoted when it holds the delimiter)."""
    quoted = f'"{cell}"' if delimiter in cell else cell
    d = delimiter
    text = f"pilot{d}metric{d}week{d}value\n{HD if metric != 'conversion_lift' else LIFT}"
    text += f"{d}{metric}{d}2012-W03{d}{quoted}\n"
    return parse(text, **kw)


@pytest.mark.parametrize(
    ("cell", "delimiter", "decimal", "expected"),
    [
        # comma-separated: the decimal dot is the convention
        ("61.2", ",", None, 61.2),
        ("1.234", ",", None, 1.234),  # the dot is the decimal separator here
        ("1,234.5", ",", None, 1234.5),
        ("1,234,567", ",", None, 1234567.0),
        ("-1,234.75", ",", None, -1234.75),  # metric without a minimum: see below
        ("1 234", ",", None, 1234.0),
        ("1\u00a0234.5", ",", None, 1234.5),  # no-break space, as spreadsheets write it
        ("1\u202f234", ",", None, 1234.0),  # narrow no-break space (French)
        ("12,5", ",", None, 12.5),  # reads one way only: a decimal comma
        ("0,125", ",", None, 0.125),
        # semicolon-separated: the decimal comma is the convention
        ("61,2", ";", None, 61.2),
        ("1,234", ";", None, 1.234),
        ("1.234,5", ";", None, 1234.5),
        ("1.234.567", ";", None, 1234567.0),
        ("1 234,5", ";", None, 1234.5),
        ("61.2", ";", None, 61.2),  # reads one way only: a decimal dot
        # tab-separated: no convention, the cell decides
        ("61,2", "\t", None, 61.2),
        ("61.2", "\t", None, 61.2),
        ("1 234", "\t", None, 1234.0),
        # the user's declared decimal separator settles "1,234" and "1.234"
        ("1,234", ",", "dot", 1234.0),
        ("1,234", ",", "comma", 1.234),
        ("1.234", ";", "comma", 1234.0),
        ("1.234", ";", "dot", 1.234),
        ("1.234", "\t", "comma", 1234.0),
        ("1,234", "\t", "comma", 1.234),
        ("12", ";", "dot", 12.0),
        ("1e3", ";", None, 1000.0),
    ],
)
def test_number_formats(cell, delimiter, decimal, expected):
    metric = "conversion_lift" if cell.startswith("-") else "resolution_time"
    rep = one_value(cell, delimiter, metric, decimal=decimal)
    assert rows(rep)[0][3] == expected


@pytest.mark.parametrize(
    ("cell", "delimiter", "expected"),
    [
        ("12.5%", ",", 12.5),
        ("12.5 %", ",", 12.5),
        ("12,5%", ";", 12.5),
        ("12,5 %", ";", 12.5),
        ("12,5\u00a0%", ";", 12.5),
        ("0.5%", ",", 0.5),
        ("100%", ",", 100.0),
        ("0%", "\t", 0.0),
    ],
)
def test_percent_sign_on_a_percent_metric_is_percentage_points(cell, delimiter, expected):
    rep = one_value(cell, delimiter, "error_rate")
    assert rows(rep)[0][3] == expected  # 12.5 % is stored as 12.5, never 0.125


def test_decimal_separator_decided_by_the_other_cells():
    """'1,234' alone is ambiguous; next to '12,5' (which reads only one way) the file's
    decimal separator is the comma, so it is 1.234."""
    text = (
        "pilot,metric,week,value\n"
        f'{HD},resolution_time,2012-W03,"12,5"\n'
        f'{HD},resolution_time,2012-W04,"1,234"\n'
    )
    rep = parse(text)
    assert [r[3] for r in rows(rep)] == [12.5, 1.234]
    assert rep.decimal == "comma"


def test_report_says_how_the_file_was_read():
    rep = parse(
        "pilot;metric;week;value\n"
        f"{HD};resolution_time;18/01/2012;61,2\n"
        f"{HD};resolution_time;25/01/2012;60\n"
    )
    assert (rep.delimiter, rep.decimal, rep.date_format) == (";", "comma", "dmy")
    assert (rep.ask_decimal, rep.ask_date_format) == (False, False)
    plain = parse(COMMA.replace("61.2", "61"))
    assert (plain.delimiter, plain.decimal, plain.date_format) == (",", "", "")


def test_ambiguous_number_asks_once_for_the_whole_file():
    text = (
        "pilot,metric,week,value\n"
        f"{HD},resolution_time,2012-W03,61\n"
        f'{HD},resolution_time,2012-W04,"1,234"\n'
        f'{HD},resolution_time,2012-W05,"2,500"\n'
        f'{HD},resolution_time,2012-W06,"1,005"\n'
    )
    rep = parse(text)
    assert errs(rep) == [
        (
            3,
            "value",
            "'1,234' reads two ways: 1.234 with a decimal comma, or 1234 with the comma as "
            "thousands separator (2 more values like it): choose the decimal separator "
            "(dot or comma) and import again",
        )
    ]
    assert rep.ask_decimal and not rep.ask_date_format
    assert [r[3] for r in rows(parse(text, decimal="dot"))] == [61.0, 1234.0, 2500.0, 1005.0]
    assert [r[3] for r in rows(parse(text, decimal="comma"))] == [61.0, 1.234, 2.5, 1.005]


# =========================================================================== weeks


@pytest.mark.parametrize(
    ("cells", "date_format", "labels", "used"),
    [
        (["2012-W03", "2012-w04", "2012W05"], None, ["2012-W03", "2012-W04", "2012-W05"], ""),
        (["2012-01-18", "2012-01-29"], None, ["2012-W03", "2012-W04"], ""),
        (["2012/01/18", "2012.01.29"], None, ["2012-W03", "2012-W04"], ""),
        (["2020-W53", "2026-W01"], None, ["2020-W53", "2026-W01"], ""),
        # day-first decided from all rows together: 18 cannot be a month
        (["03/01/2012", "18/01/2012"], None, ["2012-W01", "2012-W03"], "dmy"),
        (["03.01.2012", "18.01.2012"], None, ["2012-W01", "2012-W03"], "dmy"),
        # month-first decided the same way: 18 cannot be a month
        (["01/03/2012", "01/18/2012"], None, ["2012-W01", "2012-W03"], "mdy"),
        # every date reads both ways: the user's choice decides
        (["03/01/2012", "09/01/2012"], "dmy", ["2012-W01", "2012-W02"], "dmy"),
        (["03/01/2012", "09/01/2012"], "mdy", ["2012-W09", "2012-W35"], "mdy"),
        (["05/05/2012"], None, ["2012-W18"], ""),  # the same day either way
    ],
)
def test_week_formats(cells, date_format, labels, used):
    metrics = ["resolution_time", "error_rate", "conversion_lift"]
    text = "pilot,metric,week,value\n" + "".join(
        f"{HD if m != 'conversion_lift' else LIFT},{m},{c},1\n"
        for m, c in zip(metrics, cells, strict=False)
    )
    rep = parse(text, date_format=date_format)
    assert [r[2] for r in rows(rep)] == labels
    assert rep.date_format == used


def test_ambiguous_dates_ask_once_for_the_whole_column():
    text = (
        "pilot,metric,week,value\n"
        f"{HD},resolution_time,03/01/2012,1\n"
        f"{HD},error_rate,09/01/2012,2\n"
        f"{HD},resolution_time,2012-W20,3\n"
    )
    rep = parse(text)
    assert errs(rep) == [
        (
            2,
            "week",
            "dates like '03/01/2012' read two ways in column week (day-first: 2012-01-03, "
            "month-first: 2012-03-01) and no date in the file tells which: choose the date "
            "format (day-first or month-first), or write ISO dates YYYY-MM-DD",
        )
    ]
    assert rep.ask_date_format and not rep.ask_decimal


# =========================================================================== bad input

H = "pilot,metric,week,value\n"
HS = "pilot;metric;week;value\n"
HT = "pilot\tmetric\tweek\tvalue\n"
RT = f"{HD},resolution_time"
RTS = f"{HD};resolution_time"
ER = f"{HD},error_rate"

#: (id, file text, keyword arguments, [(line, column, exact reason or fragment)])
BAD = [
    (
        "percent sign on hours",
        H + f"{RT},2012-W03,12.5%\n",
        {},
        [
            (
                2,
                "value",
                "'12.5%' has a percent sign but Resolution time is measured in h: "
                "write the number without %",
            )
        ],
    ),
    (
        "percent sign on percentage points",
        H + f"{LIFT},conversion_lift,2012-W03,2.5 %\n",
        {},
        [(2, "value", "'2.5 %' has a percent sign but Conversion lift is measured in pp")],
    ),
    ("percent sign alone", H + f"{ER},2012-W03,%\n", {}, [(2, "value", "'%' is not a number")]),
    ("two percent signs", H + f"{ER},2012-W03,5%%\n", {}, [(2, "value", "'5%%' is not a number")]),
    ("percent sign first", H + f"{ER},2012-W03,%5\n", {}, [(2, "value", "'%5' is not a number")]),
    (
        "percent above the range",
        H + f"{ER},2012-W03,120 %\n",
        {},
        [(2, "value", "Error rate must be between 0 and 100: got 120")],
    ),
    (
        "1,234 in a comma file",
        H + f'{RT},2012-W03,"1,234"\n',
        {},
        [(2, "value", "'1,234' reads two ways: 1.234 with a decimal comma, or 1234 with")],
    ),
    (
        "1.234 in a semicolon file",
        HS + f"{RTS};2012-W03;1.234\n",
        {},
        [(2, "value", "'1.234' reads two ways: 1.234 with a decimal dot, or 1234 with the dot")],
    ),
    (
        "1,234 in a tab file",
        HT + f"{HD}\tresolution_time\t2012-W03\t1,234\n",
        {},
        [(2, "value", "'1,234' reads two ways")],
    ),
    (
        "1.234 in a tab file",
        HT + f"{HD}\tresolution_time\t2012-W03\t1.234\n",
        {},
        [(2, "value", "'1.234' reads two ways")],
    ),
    (
        "decimal comma and decimal dot in one file",
        HS + f"{RTS};2012-W03;61,2\n{RTS};2012-W04;60.5\n{RTS};2012-W05;59,5\n",
        {},
        [
            (
                3,
                "value",
                "'60.5' reads only with a decimal dot, but line 2 '61,2' reads only with a "
                "decimal comma: use one decimal separator in the whole file (or choose it)",
            )
        ],
    ),
    (
        "decimal comma when dot was chosen",
        H + f'{RT},2012-W03,"12,5"\n',
        {"decimal": "dot"},
        [(2, "value", "'12,5' is not a number with the decimal dot chosen for this file")],
    ),
    (
        "decimal dot when comma was chosen",
        HS + f"{RTS};2012-W03;12.5\n",
        {"decimal": "comma"},
        [(2, "value", "'12.5' is not a number with the decimal comma chosen for this file")],
    ),
    (
        "groups of two digits",
        H + f'{RT},2012-W03,"1,23,456"\n',
        {},
        [(2, "value", "'1,23,456' is not a number (thousands separators group three digits")],
    ),
    (
        "group after the decimal",
        HS + f"{RTS};2012-W03;1,234.567\n",
        {"decimal": "comma"},
        [(2, "value", "'1,234.567' is not a number")],
    ),
    (
        "two decimal separators",
        H + f"{RT},2012-W03,1.2.3\n",
        {},
        [(2, "value", "'1.2.3' is not a number")],
    ),
    (
        "leading zero group",
        H + f'{RT},2012-W03,"0,123,456"\n',
        {},
        [(2, "value", "'0,123,456' is not a number")],
    ),
    ("spaces inside", H + f"{RT},2012-W03,12 5\n", {}, [(2, "value", "'12 5' is not a number")]),
    ("currency", H + f"{RT},2012-W03,$12\n", {}, [(2, "value", "'$12' is not a number")]),
    ("unit text", H + f"{RT},2012-W03,12 h\n", {}, [(2, "value", "'12 h' is not a number")]),
    ("missing value", H + f"{RT},2012-W03,\n", {}, [(2, "value", "value is missing")]),
    ("only spaces", H + f"{RT},2012-W03,\u00a0 \n", {}, [(2, "value", "value is missing")]),
    ("nan", HS + f"{RTS};2012-W03;NaN\n", {}, [(2, "value", "'NaN' is not a number")]),
    (
        "overflow with a decimal comma",
        HS + f"{RTS};2012-W03;1,5e400\n",
        {},
        [(2, "value", "'1,5e400' is not a finite number")],
    ),
    (
        "week 53 of a 52-week ISO year",
        H + f"{RT},2025-W53,1\n",
        {},
        [(2, "week", "'2025-W53' does not exist: ISO year 2025 has weeks 1 to 52")],
    ),
    (
        "week 54",
        H + f"{RT},2026-W54,1\n",
        {},
        [(2, "week", "'2026-W54' does not exist: ISO year 2026 has weeks 1 to 53")],
    ),
    (
        "future week label",
        H + f"{RT},2026-W11,1\n",
        {},
        [(2, "week", "week 2026-W11 is in the future")],
    ),
    (
        "future ISO date",
        H + f"{RT},2026-03-09,1\n",
        {},
        [(2, "week", "week 2026-W11 is in the future")],
    ),
    (
        "future day-first date",
        HS + f"{RTS};18/01/2012;1\n{RTS};09/03/2026;2\n",
        {"date_format": "dmy"},
        [(3, "week", "week 2026-W11 is in the future")],
    ),
    (
        "impossible year-first date",
        H + f"{RT},2012/02/30,1\n",
        {},
        [(2, "week", "'2012/02/30' is not a valid date")],
    ),
    (
        "impossible date with the chosen order",
        H + f"{RT},12/31/2012,1\n",
        {"date_format": "dmy"},
        [(2, "week", "'12/31/2012' is not a valid date read day-first (the date format chosen)")],
    ),
    (
        "two date orders in one column",
        H + f"{RT},18/01/2012,1\n{RT},25/01/2012,2\n{ER},02/13/2012,3\n",
        {},
        [
            (
                4,
                "week",
                "'02/13/2012' is only valid month-first, but line 2 '18/01/2012' is only valid "
                "day-first: use one date format (ISO YYYY-MM-DD is safest)",
            )
        ],
    ),
    (
        "two-digit year",
        H + f"{RT},18/01/12,1\n",
        {},
        [(2, "week", "'18/01/12' is not a week (expected YYYY-Www or YYYY-MM-DD)")],
    ),
    (
        "ambiguous dates",
        H + f"{RT},03/01/2012,1\n{RT},04/01/2012,2\n",
        {},
        [(2, "week", "dates like '03/01/2012' read two ways in column week")],
    ),
    (
        "unquoted decimal comma in a comma file",
        H + f"{RT},2012-W03,12,5\n",
        {},
        [(2, None, "5 fields but the header has 4 columns (quote a value that contains a comma)")],
    ),
    (
        "too many fields in a semicolon file",
        HS + f"{RTS};2012-W03;12;5\n",
        {},
        [(2, None, "5 fields but the header has 4 columns (quote a value that contains a semi")],
    ),
    (
        "text after a closing quote",
        "pilot, metric, week, value\n" + f'{HD}, resolution_time, 2012-W03, "1,5" x\n',
        {},
        [(2, None, "not readable as CSV: ',' expected after '\"' (a quoted cell must end at")],
    ),
    (
        "header repeated with a bad row after it",
        H + f"{RT},2012-W03,1\n" + H + f"{RT},2012-W04,abc\n",
        {},
        [(4, "value", "'abc' is not a number")],
    ),
]


@pytest.mark.parametrize(("text", "kw", "expected"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_names_line_column_and_reason(text, kw, expected):
    rep = parse(text, **kw)
    assert not rep.ok
    assert rep.rows.empty and rep.created == 0  # all or nothing
    got = errs(rep)
    assert [(line, col) for line, col, _ in got] == [(line, col) for line, col, _ in expected]
    for (_, _, reason), (_, _, fragment) in zip(got, expected, strict=True):
        assert fragment in reason


def test_count_of_bad_input_cases():
    """Kept in step with the report: how many bad inputs this file tries."""
    assert len(BAD) == 38


# =========================================================================== command line


@pytest.fixture
def cli(engine, monkeypatch, capsys):
    """Run ``pilotgate --database-url <the test database> ARGS`` in-process on SQLite and
    PostgreSQL; returns (exit code, stdout, stderr)."""
    url = engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("PILOTGATE_ACTOR", "cli-tester")
    get_settings.cache_clear()

    def run(*args: str):
        monkeypatch.setattr(sys, "argv", ["pilotgate", "--database-url", url, *args])
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return code, out, err

    yield run
    get_settings.cache_clear()


@pytest.fixture
def helpdesk(engine) -> dict[str, int]:
    """resolution_time (h, >= 0) and error_rate (%, 0..100); 2012-W01..W02 stored."""
    with Session(engine, expire_on_commit=False) as s:
        make_pilot(
            s,
            HD,
            metrics=[
                metric_in("resolution_time", label="Resolution time"),
                metric_in("error_rate", label="Error rate", unit="%", target=4.0, max_value=100.0),
            ],
        )
        ids = {k: metric_id(s, HD, k) for k in ("resolution_time", "error_rate")}
        add_weeks(s, ids["resolution_time"], date(2012, 1, 2), [100.0, 90.0])
        s.commit()
    return ids


def stored(engine) -> list[tuple]:
    with Session(engine) as s:
        m = store.measurements_frame(s).merge(store.metrics_frame(s), on="metric_id")
    m = m.sort_values(["key", "week"])
    return [
        (k, w.strftime("%Y-%m-%d"), v, n)
        for k, w, v, n in zip(m["key"], m["week"], m["value"], m["note"], strict=True)
    ]


def revisions(engine) -> list[tuple]:
    with Session(engine) as s:
        r = store.revisions_frame(s)
    r = r[r["actor"] == "cli-tester"]
    return list(
        zip(r["action"], r["old_value"].fillna(-1), r["new_value"], r["reason"], strict=True)
    )


def test_cli_reads_a_spreadsheet_file(cli, helpdesk, engine, tmp_path):
    f = tmp_path / "excel.csv"
    f.write_bytes(
        (
            "sep=;\npilot;metric;week;value;note\n"
            f"{HD};resolution_time;16.01.2012;1.061,5;\n"
            f"{HD};error_rate;2012-W03;4,5 %;checked\n"
        ).encode("utf-8-sig")
    )
    code, out, err = cli("import", str(f))
    assert (code, err) == (0, "")
    assert out == "2 rows: 2 created, 0 updated, 0 unchanged\n"
    assert stored(engine) == [
        ("error_rate", "2012-01-16", 4.5, "checked"),
        ("resolution_time", "2012-01-02", 100.0, ""),
        ("resolution_time", "2012-01-09", 90.0, ""),
        ("resolution_time", "2012-01-16", 1061.5, ""),
    ]
    assert set(r[3] for r in revisions(engine)) == {"import excel.csv"}


def test_cli_asks_for_the_decimal_separator(cli, helpdesk, engine, tmp_path):
    f = tmp_path / "us.csv"
    f.write_text(f'pilot,metric,week,value\n{HD},resolution_time,2012-W03,"1,250"\n')
    code, out, err = cli("import", str(f))
    assert code == 1 and out == ""
    assert err.splitlines() == [
        f"{f}: line 2, column value: '1,250' reads two ways: 1.25 with a decimal comma, or "
        "1250 with the comma as thousands separator: choose the decimal separator (dot or "
        "comma) and import again",
        f"{f}: choose the decimal separator: --decimal comma|dot",
        f"error: {f}: 1 error, nothing written",
    ]
    assert len(stored(engine)) == 2
    code, out, _ = cli("import", str(f), "--decimal", "dot")
    assert (code, out) == (0, "1 row: 1 created, 0 updated, 0 unchanged\n")
    assert stored(engine)[-1] == ("resolution_time", "2012-01-16", 1250.0, "")


def test_cli_asks_for_the_date_format(cli, helpdesk, engine, tmp_path):
    f = tmp_path / "dates.csv"
    f.write_text(f"pilot,metric,week,value\n{HD},error_rate,03/02/2012,4\n")
    code, _, err = cli("import", str(f))
    assert code == 1
    assert f"{f}: choose the date format: --date-format dmy|mdy" in err.splitlines()
    code, out, _ = cli("import", str(f), "--date-format", "mdy")
    assert (code, out) == (0, "1 row: 1 created, 0 updated, 0 unchanged\n")
    assert stored(engine)[0] == ("error_rate", "2012-02-27", 4.0, "")  # 2 March 2012
    code, _, err = cli("import", str(f), "--date-format", "ymd")
    assert code == 2 and "Invalid value for '--date-format'" in err


def test_cli_refuses_changes_without_update(cli, helpdesk, engine, tmp_path):
    f = tmp_path / "fix.csv"
    f.write_text(
        "pilot,metric,week,value,note\n"
        f"{HD},resolution_time,2012-W01,100,\n"
        f"{HD},resolution_time,2012-W02,85.5,typo fixed\n"
        f"{HD},resolution_time,2012-W03,80,\n"
    )
    before = stored(engine)
    for extra in ([], ["--dry-run"]):
        code, out, err = cli("import", str(f), *extra)
        assert code == 1 and out == ""
        assert err.splitlines() == [
            f"{f}: would change line 3: {HD}, resolution_time, 2012-W02: 90 -> 85.5; "
            "note '' -> 'typo fixed'",
            f"error: {f}: 3 rows: 1 created, 1 updated, 1 unchanged; nothing written: 1 stored "
            "value would change and the overwrite was not confirmed; pass --update (and "
            "--reason TEXT) to overwrite",
        ]
        assert stored(engine) == before

    code, out, _ = cli("import", str(f), "--update", "--reason", "vendor resent week 2")
    assert (code, out) == (0, "3 rows: 1 created, 1 updated, 1 unchanged\n")
    assert stored(engine)[1:] == [
        ("resolution_time", "2012-01-09", 85.5, "typo fixed"),
        ("resolution_time", "2012-01-16", 80.0, ""),
    ]
    assert revisions(engine) == [
        ("create", -1, 80.0, "vendor resent week 2"),
        ("update", 90.0, 85.5, "vendor resent week 2"),
    ]
    # the same file again: nothing changes, and the report says so
    code, out, _ = cli("import", str(f))
    assert (code, out) == (0, "3 rows: 0 created, 0 updated, 3 unchanged\n")
    assert len(revisions(engine)) == 2


def test_cli_update_default_reason_is_the_file_name(cli, helpdesk, engine, tmp_path):
    f = tmp_path / "week2.csv"
    f.write_text(f"pilot,metric,week,value\n{HD},resolution_time,2012-W02,91\n")
    assert cli("import", str(f), "--update")[0] == 0
    assert revisions(engine) == [("update", 90.0, 91.0, "import week2.csv")]


def test_cli_reports_a_repeated_header(cli, helpdesk, tmp_path):
    f = tmp_path / "glued.csv"
    f.write_text(
        "pilot,metric,week,value\n"
        f"{HD},error_rate,2012-W03,4\n"
        "pilot,metric,week,value\n"
        f"{HD},error_rate,2012-W04,5\n"
    )
    code, out, err = cli("import", str(f))
    assert (code, out) == (0, "2 rows: 2 created, 0 updated, 0 unchanged\n")
    assert err == (f"{f}: note: line 3: the header is repeated here (as on line 1): line skipped\n")
