"""Issue 9, input safety: bounded work, nothing coerced, one line for a user's mistake,
one normalisation of names, dry run = real run, and no download path that writes a
cell a spreadsheet would run as a formula (items 4, 5, 7, 8, 12, 13, 14)."""

from __future__ import annotations

import csv
import io
import sys
import tomllib
import unicodedata
from datetime import date

import pandas as pd
import pytest
import sqlalchemy as sa
from pydantic import ValidationError
from sqlmodel import Session

from metrics import csvio, governance, models, store, users
from metrics.cli import main
from metrics.db import init_db, make_engine
from metrics.errors import StoreError
from metrics.models import AppUser, ChecklistTick, PilotCreate, UserCreate
from metrics.settings import Settings, get_settings
from tests.apptest_helpers import clear_caches, open_app, spy_downloads
from tests.conftest import REPO
from tests.factories import make_pilot, make_user, metric_id
from tests.test_browser import app_url, page  # noqa: F401 (browser fixtures)

HD = "Helpdesk triage assistant"
HEADER = "pilot,metric,week,value,note\n"
TODAY = date(2026, 3, 4)
FORMULA_NAME = "=cmd|' /C calc'!A0"
#: What no exported cell may start with (OWASP CSV injection, plus the fullwidth and
#: small forms and both line breaks).
FORMULA_STARTS = tuple(csvio.FORMULA_TRIGGERS)


def metrics_frame() -> pd.DataFrame:
    """Shaped like store.metrics_frame: one pilot with two metrics."""
    return pd.DataFrame(
        {
            "metric_id": [1, 2],
            "pilot_id": [1, 1],
            "pilot": [HD, HD],
            "key": ["resolution_time", "error_rate"],
            "label": ["Resolution time", "Error rate"],
            "unit": ["h", "%"],
            "direction": ["lower_is_better"] * 2,
            "role": ["primary", "guardrail"],
            "baseline": [float("nan"), 5.0],
            "target": [80.0, 4.0],
            "margin": [float("nan"), 1.0],
            "min_value": [float("nan"), 0.0],
            "max_value": [float("nan"), 100.0],
        }
    )


@pytest.fixture(autouse=True)
def _fresh_settings(monkeypatch):
    monkeypatch.setattr(csvio.parsing, "_today", lambda: TODAY)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def parse(text: str, **kw) -> csvio.ImportReport:
    return csvio.parse_measurements_csv(text, metrics_frame(), **kw)


def errs(report) -> list[tuple[int | None, str | None, str]]:
    return [(e.line, e.column, e.reason) for e in report.errors]


@pytest.fixture
def db(tmp_path):
    return f"sqlite:///{tmp_path / 'cli.db'}"


@pytest.fixture
def cli(db, monkeypatch, capsys):
    """Run ``pilotgate --database-url DB ARGS`` as ``actor``: (exit code, stdout, stderr)."""

    def _run(*args: str, actor: str = "local"):
        monkeypatch.setenv("PILOTGATE_ACTOR", actor)
        get_settings.cache_clear()
        monkeypatch.setattr(sys, "argv", ["pilotgate", "--database-url", db, *args])
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capsys.readouterr()
        return code, out, err

    return _run


def one_line(err: str) -> str:
    """stderr of a refused command: exactly one line, no traceback."""
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


# =========================================================================== item 4


def test_streamlit_table_download_is_off_in_the_config_the_app_reads():
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert config["client"]["disableDataExport"] is True


@pytest.fixture
def downloads(monkeypatch):
    """Every file handed to st.download_button in the run: {file name: (bytes, mime)}."""
    return spy_downloads(monkeypatch)


@pytest.fixture
def hostile_db(tmp_path, monkeypatch):
    """Pilots whose names, vendor and notes a spreadsheet would run as formulas."""
    url = f"sqlite:///{tmp_path / 'pages.db'}"
    engine = make_engine(url)
    init_db(engine)
    with Session(engine, expire_on_commit=False) as s:
        pid = make_pilot(s, FORMULA_NAME, vendor="@SUM(1+1)")
        make_pilot(s, "\uff1d1+1 fullwidth", vendor="-2+3")
        mid = metric_id(s, FORMULA_NAME, "resolution_time")
        rows = pd.DataFrame(
            {
                "metric_id": [mid, mid],
                "week": [date(2012, 1, 2), date(2012, 1, 9)],
                "value": [100.0, 90.0],
                "note": ["+1 checked", "\n=HYPERLINK(1)"],
            }
        )
        store.write_measurements(session=s, actor="tester", rows=rows)
        s.commit()
    engine.dispose()
    monkeypatch.setenv("PILOTGATE_DATABASE_URL", url)
    monkeypatch.setenv("PILOTGATE_ACTOR", "page-tester")
    clear_caches()
    yield pid
    clear_caches()


def _cells(text: str) -> list[str]:
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    return [c for row in rows for c in row]


def test_every_page_download_neutralises_formula_cells_and_tables_show_names(hostile_db, downloads):
    import streamlit.config

    at = open_app(None, as_of=date(2012, 3, 1))
    assert streamlit.config.get_option("client.disableDataExport") is True
    # the table shows the names as they are (readable) ...
    shown = at.dataframe[0].value
    assert FORMULA_NAME in set(shown["Pilot"])
    open_app("dashboard/pages/pilot.py", as_of=date(2012, 3, 1), pilot_id=hostile_db)
    open_app("dashboard/pages/export.py", as_of=date(2012, 3, 1))
    # ... and every download next to a table neutralises them
    assert "pilotgate-portfolio-2012-03-01.csv" in downloads
    assert "pilotgate-resolution_time-values.csv" in downloads
    texts = {n: d.decode("utf-8") for n, (d, _) in downloads.items() if n.endswith(".csv")}
    for name, text in texts.items():
        cells = _cells(text)
        assert cells, name
        bad = [c for c in cells if c.startswith(FORMULA_STARTS)]
        assert not bad, (name, bad)
    portfolio = _cells(texts["pilotgate-portfolio-2012-03-01.csv"])
    assert "'" + FORMULA_NAME in portfolio and "'\uff1d1+1 fullwidth" in portfolio
    values = _cells(texts["pilotgate-resolution_time-values.csv"])
    assert "'+1 checked" in values and "'\n=HYPERLINK(1)" in values


@pytest.mark.browser
def test_browser_table_toolbar_has_no_csv_download(app_url, page):  # noqa: F811
    """In a real browser: the table toolbar offers no "Download as CSV" (it does when
    client.disableDataExport is false), and PilotGate's own download sits below."""
    from tests.test_browser import _assert_no_exception, _wait_rendered

    base, _ = app_url
    page.goto(base + "/")
    _wait_rendered(page)
    table = page.locator('[data-testid="stDataFrame"]').first
    table.wait_for(timeout=30_000)
    table.hover()
    toolbar = page.locator('[data-testid="stElementToolbarButton"] button')
    toolbar.first.wait_for(timeout=10_000)
    labels = {toolbar.nth(i).get_attribute("aria-label") for i in range(toolbar.count())}
    assert "Search" in labels  # the toolbar is shown ...
    assert "Download as CSV" not in labels  # ... without Streamlit's raw download
    assert page.get_by_role("button", name="Download these pilots (CSV)").count() == 1
    _assert_no_exception(page)


# =========================================================================== item 14


@pytest.mark.parametrize(
    "text",
    [
        "\uff1d1+1",  # fullwidth =
        "\uff0bcmd",  # fullwidth +
        "\uff0d1",  # fullwidth -
        "\uff20SUM(1)",  # fullwidth @
        "\ufe66x",  # small =
        "\n=1+1",  # leading line feed
        "\nplain",
        "'\uff1d1",  # already looks neutralised: stays distinguishable
    ],
)
def test_export_neutralises_fullwidth_and_line_feed_and_imports_back(text, session):
    frame = pd.DataFrame({"pilot": [text], "value": [1.5]})
    (cell, value) = list(csv.reader(io.StringIO(csvio.to_csv_text(frame).removeprefix("\ufeff"))))[
        1
    ]
    assert cell == "'" + text and value == "1.5"
    # the readers strip that quote again: an exported note imports back unchanged
    make_pilot(session, HD)
    mid = metric_id(session, HD, "resolution_time")
    store.write_measurements(
        session=session,
        actor="tester",
        rows=pd.DataFrame(
            {"metric_id": [mid], "week": [date(2012, 1, 2)], "value": [90.0], "note": [text]}
        ),
    )
    exported = csvio.to_csv_text(csvio.export_measurements_frame(session))
    again = csvio.import_measurements(session=session, actor="tester", data=exported)
    assert again.ok and (again.created, again.updated, again.unchanged) == (0, 0, 1)


# =========================================================================== item 5


def test_a_200000_column_wide_file_is_refused_in_one_line():
    header = "pilot,week," + ",".join(f"m{i}" for i in range(200_000))
    text = header + "\n" + f"{HD},2012-W03," + ",".join("1" for _ in range(200_000)) + "\n"
    assert len(text) > 1_500_000
    rep = parse(text)
    assert errs(rep) == [
        (
            1,
            None,
            "the header has 200,002 columns: at most 500 are read at once "
            "(PILOTGATE_MAX_IMPORT_COLUMNS); split the file into several with fewer "
            "metric columns",
        )
    ]
    assert rep.summary_line() == "1 error, nothing written"


def test_column_and_row_limits_are_settings(monkeypatch):
    monkeypatch.setenv("PILOTGATE_MAX_IMPORT_ROWS", "3")
    monkeypatch.setenv("PILOTGATE_MAX_IMPORT_COLUMNS", "5")
    get_settings.cache_clear()
    rows = [f"{HD},resolution_time,2012-W0{i},6{i},\n" for i in range(1, 5)]
    assert parse(HEADER + "".join(rows[:3])).ok
    assert errs(parse(HEADER + "".join(rows))) == [
        (
            None,
            None,
            "the file has more than 3 rows: at most 3 are read at once "
            "(PILOTGATE_MAX_IMPORT_ROWS); split it into smaller files",
        )
    ]
    wide = f"pilot,week,resolution_time,error_rate\n{HD},2012-W03,61,2\n"
    assert parse(wide).ok
    rep = parse("pilot,week,resolution_time,error_rate,x,y\n" + f"{HD},2012-W03,61,2,1,1\n")
    assert [e.reason.split(":")[0] for e in rep.errors] == ["the header has 6 columns"]


def test_cli_refuses_a_wide_file_in_one_line(cli, tmp_path):
    path = tmp_path / "wide.csv"
    path.write_text("pilot,week," + ",".join(f"m{i}" for i in range(600)) + "\nx,2012-W03\n")
    code, _, err = cli("import", str(path))
    assert code == 1
    lines = err.strip().splitlines()
    assert "Traceback" not in err
    assert lines[0] == (
        f"{path}: line 1: the header has 602 columns: at most 500 are read at once "
        "(PILOTGATE_MAX_IMPORT_COLUMNS); split the file into several with fewer metric columns"
    )
    assert lines[1] == f"error: {path}: 1 error, nothing written"


# =========================================================================== item 7


@pytest.mark.parametrize(
    "week",
    [
        "\uff12\uff10\uff11\uff12-W03",  # fullwidth digits
        "\u0662\u0660\u0661\u0662-W03",  # Arabic-Indic digits
        "2012-W0\uff13",
        "\u0662\u0660\u0661\u0662-01-18",
        "2012/01/1\uff18",
        "18/01/\uff12\uff10\uff11\uff12",
    ],
)
def test_weeks_with_other_digits_are_refused(week):
    rep = parse(HEADER + f"{HD},resolution_time,2012-W02,60,\n{HD},resolution_time,{week},61,\n")
    [(line, column, reason)] = errs(rep)
    assert (line, column) == (3, "week")
    assert reason.startswith(f"'{week}' is not a week") and "digits 0-9" in reason


@pytest.mark.parametrize(
    ("column", "cell", "reason"),
    [
        ("target", "\uff18\uff10", "'８０' is not a number (write digits as 0-9)"),
        ("baseline", "\u0661\u0662\u0660", "'١٢٠' is not a number (write digits as 0-9)"),
        ("min_weeks", "\uff14", "'４' is not a whole number (write digits as 0-9)"),
        (
            "start_date",
            "\uff12\uff10\uff11\uff12-01-02",
            "'２０１２-01-02' is not a date (expected YYYY-MM-DD) (write digits as 0-9)",
        ),
        (
            "target",
            "1e-400",
            "'1e-400' is too close to zero to store: it would become 0 (write 0 if that is meant)",
        ),
    ],
)
def test_pilot_file_numbers_are_not_coerced(column, cell, reason):
    fields = {
        "pilot": HD,
        "start_date": "2012-01-02",
        "decision_date": "2012-06-29",
        "metric": "resolution_time",
        "direction": "lower_is_better",
        "baseline": "120",
        "target": "80",
        "min_weeks": "4",
    }
    fields[column] = cell
    text = ",".join(fields) + "\n" + ",".join(fields.values()) + "\n"
    rep = csvio.parse_pilots_csv(text)
    assert errs(rep) == [(2, column, reason)]


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("1e-400", False),
        ("-2.5e-999", False),
        ("0.000001e-400", False),
        ("0e-400", True),  # zero written with an exponent is zero
        ("0.0", True),
        ("1e-300", True),
    ],
)
def test_values_that_underflow_to_zero_are_refused(value, ok):
    rep = parse(HEADER + f"{HD},resolution_time,2012-W03,{value},\n")
    if ok:
        assert rep.ok and rep.rows["value"].iloc[0] == float(value)
    else:
        assert errs(rep) == [
            (
                2,
                "value",
                f"'{value}' is too close to zero to store: it would become 0 "
                "(write 0 if that is meant)",
            )
        ]


SPLIT = (
    "'61' is followed by an unexpected extra field '2': the row has more fields than the "
    'header (a decimal comma? write 61.2, or quote it: "61,2")'
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a note column; the other rows end with an empty note
        (
            HEADER + f"{HD},resolution_time,2012-W02,61.5,\n{HD},resolution_time,2012-W03,61,2,\n",
            [(3, "value", SPLIT)],
        ),
        # wide form: the 2 would become the next metric's value
        (
            f"pilot,week,resolution_time,error_rate\n{HD},2012-W03,61,2,\n",
            [(2, "resolution_time", SPLIT)],
        ),
        # every line (the header too) ends with a delimiter: a consistent layout, fine
        (
            f"pilot,metric,week,value,note,\n{HD},resolution_time,2012-W03,61,2,\n",
            [],
        ),
        # a trailing empty field after an empty note: fine
        (HEADER + f"{HD},resolution_time,2012-W03,61,,\n", []),
        # quoted decimal comma: fine
        (HEADER + f'{HD},resolution_time,2012-W03,"61,2",\n', []),
    ],
)
def test_unquoted_decimal_comma_is_not_read_as_value_and_note(text, expected):
    rep = parse(text)
    assert errs(rep) == expected
    if not expected:
        assert rep.rows["value"].iloc[0] in (61.0, 61.2)


# =========================================================================== item 8


@pytest.mark.parametrize("role", ["viewer", "editor"])
def test_seed_demo_as_viewer_or_editor_is_one_line(cli, role):
    assert cli("users", "add", "root", "--role", "admin")[0] == 0
    assert cli("users", "add", "sam", "--role", role, actor="root")[0] == 0
    code, _, err = cli("seed", "demo", actor="sam")
    assert code == 1
    article = "an" if role == "editor" else "a"
    assert one_line(err) == (
        f"error: sam is {article} {role}: saving a pilot needs the admin role. "
        "Ask an admin to change your role."
    )


def test_seed_helpdesk_as_viewer_is_one_line(cli, shared_data):
    assert cli("users", "add", "root", "--role", "admin")[0] == 0
    assert cli("users", "add", "vic", "--role", "viewer", actor="root")[0] == 0
    code, _, err = cli("seed", "helpdesk", "--file", str(shared_data / "helpdesk.csv"), actor="vic")
    assert code == 1
    assert one_line(err).startswith("error: vic is a viewer: ")


@pytest.mark.parametrize("column", ["min_weeks", "trailing_window"])
@pytest.mark.parametrize("dry_run", [False, True])
def test_an_integer_of_10_to_the_30_is_one_line(cli, tmp_path, column, dry_run):
    path = tmp_path / "pilots.csv"
    path.write_text(
        f"pilot,start_date,decision_date,metric,direction,target,{column}\n"
        f"{HD},2012-01-02,2012-06-29,resolution_time,lower_is_better,80,{10**30}\n"
    )
    code, _, err = cli("pilots", "import", *(["--dry-run"] if dry_run else []), str(path))
    assert code == 1 and "Traceback" not in err
    assert err.strip().splitlines() == [
        f"{path}: line 2, column {column}: Input should be less than or equal to 520",
        f"error: {path}: 1 error, nothing written",
    ]


def test_integer_fields_are_bounded_in_the_models():
    base = dict(name="x", start_date=date(2012, 1, 2), decision_date=date(2012, 6, 29))
    for field in ("min_weeks", "trailing_window"):
        with pytest.raises(ValidationError):
            PilotCreate(**base, **{field: 10**30})
    with pytest.raises(ValidationError):
        ChecklistTick(item_id=10**30, done=False)
    with pytest.raises(ValidationError):
        ChecklistTick(item_id=1, done=False, expected_version=10**30)


def _sneak_in(engine, table_prefix: str, write) -> list[int]:
    """Run ``write(session)`` on another connection just before the first statement
    starting with ``INSERT INTO <table_prefix>``: a second writer winning the race."""
    fired: list[int] = []

    def before(conn, cursor, statement, params, context, executemany):
        if not fired and statement.lstrip().upper().startswith(f"INSERT INTO {table_prefix}"):
            fired.append(1)
            with Session(engine) as other:
                write(other)
                other.commit()

    sa.event.listen(engine, "before_cursor_execute", before)
    return fired


def test_same_name_race_on_add_user_is_a_store_error(engine):
    fired = _sneak_in(
        engine, "APP_USER", lambda s: s.add(AppUser(name="ana", role="viewer", created_by="x"))
    )
    with Session(engine) as s, pytest.raises(StoreError) as exc:
        make_user(s, "ana")
    assert fired
    assert str(exc.value) == (
        "user 'ana' already exists (someone added them at the same moment); nothing "
        "written: change their role instead"
    )
    with Session(engine) as s:
        assert users.users_frame(s)["name"].tolist() == ["ana"]


def test_same_name_race_on_saving_a_pilot_is_a_store_error(engine):
    def other(s):
        make_pilot(s, HD, actor="someone")

    fired = _sneak_in(engine, "PILOT ", other)
    with Session(engine) as s, pytest.raises(StoreError) as exc:
        make_pilot(s, HD)
    assert fired
    assert str(exc.value) == (
        f"a pilot named '{HD}' was saved by someone else at the same moment; nothing "
        "written: reload and save again to update it"
    )


def test_same_name_race_on_users_add_is_one_line_in_the_cli(cli, db):
    assert cli("users", "add", "root", "--role", "admin")[0] == 0
    engine = make_engine(db)
    fired: list[int] = []

    def before(conn, cursor, statement, params, context, executemany):
        if not fired and statement.lstrip().upper().startswith("INSERT INTO APP_USER"):
            fired.append(1)
            with engine.begin() as c:
                c.execute(
                    sa.text(
                        "INSERT INTO app_user (name, email, role, created_at, created_by, "
                        "updated_at) VALUES ('ana', '', 'viewer', '2026-01-01', 'x', "
                        "'2026-01-01')"
                    )
                )

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", before)
    try:
        code, _, err = cli("users", "add", "ana", actor="root")
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", before)
        engine.dispose()
    assert fired and code == 1
    assert one_line(err) == (
        "error: user 'ana' already exists (someone added them at the same moment); "
        "nothing written: change their role instead"
    )


def test_decisions_due_300_years_apart_does_not_overflow():
    pilots = pd.DataFrame(
        {
            "pilot_id": [1, 2],
            "pilot": ["Old", "Future"],
            "stage": ["pilot", "pilot"],
            "decision_date": pd.to_datetime(["1900-03-05", "2199-12-30"]),
            "recommendation": ["go", "extend"],
        }
    )
    latest = pd.DataFrame(
        columns=[
            "pilot_id",
            governance.DECISION,
            governance.DECISION_RECOMMENDATION,
            governance.RATIONALE,
            governance.DECIDED_BY,
            governance.DECIDED_AT,
        ]
    )
    due = governance.decisions_due(pilots, latest, as_of=date(2199, 12, 20))
    assert due["pilot"].tolist() == ["Future"]
    assert due[governance.DAYS_TO_DECISION].tolist() == [10]
    assert governance.decisions_due(pilots, latest, as_of=date(1900, 3, 1))[
        governance.DAYS_TO_DECISION
    ].tolist() == [4]


def test_portfolio_as_of_300_years_after_a_decision_shows_the_pilot(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    init_db(engine)
    with Session(engine) as s:
        make_pilot(s, "Old", start_date=date(1900, 1, 1), decision_date=date(1900, 3, 5))
        make_pilot(s, "Future", start_date=date(2199, 6, 2), decision_date=date(2199, 12, 30))
        s.commit()
    engine.dispose()
    monkeypatch.setenv("PILOTGATE_DATABASE_URL", url)
    clear_caches()
    try:
        for as_of in (date(2199, 12, 31), date(1900, 1, 1)):
            at = open_app(None, as_of=as_of)  # fails on any exception of the page
            assert set(at.dataframe[0].value["Pilot"]) == {"Old", "Future"}
    finally:
        clear_caches()


# =========================================================================== item 12


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Jose\u0301  ", "Jos\u00e9"),  # combining accent -> precomposed, trimmed
        ("ana@example.com", "ana@example.com"),
        ("admin\u202e", None),  # right-to-left override
        ("\u2066ana\u2069", None),  # isolates
        ("ana\u200f", None),  # right-to-left mark
        ("a\x85b", None),  # C1 control (next line)
        ("a\u2028b", None),  # line separator
        ("a\tb", None),
    ],
)
def test_clean_name_is_the_one_normalisation(raw, expected):
    if expected is None:
        with pytest.raises(ValueError):
            models.clean_name(raw)
    else:
        assert models.clean_name(raw) == expected
        assert unicodedata.is_normalized("NFC", models.clean_name(raw))


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["Jos\u00e9".encode().decode("latin-1")], ("Jos\u00e9", "")),  # UTF-8 bytes
        (["  Jose\u0301 "], ("Jos\u00e9", "")),
        (["Jos\xe9"], (None, "the X-Forwarded-User header is not UTF-8 text")),
        (
            ["root\u202e".encode().decode("latin-1")],
            (None, "the X-Forwarded-User header is empty or not a valid user name"),
        ),
    ],
)
def test_proxy_header_bytes_read_as_utf8_and_normalised(values, expected):
    from dashboard import auth

    assert auth.name_from_header_values(values, "X-Forwarded-User") == expected


def test_oidc_and_settings_actor_names_are_normalised():
    from dashboard import auth

    assert auth.name_from_user_info({"is_logged_in": True, "sub": "ana\u202e"}) == (None, "")
    assert Settings(actor=" Jose\u0301 ").actor == "Jos\u00e9"
    with pytest.raises(ValidationError):
        Settings(actor="root\u202e")


def test_user_names_are_stored_normalised_and_match_the_signed_in_name(session):
    from metrics.access import role_of

    make_user(session, "  Jose\u0301 ", role="editor")
    assert users.users_frame(session)["name"].tolist() == ["Jos\u00e9"]
    assert role_of(session, models.clean_name("Jose\u0301")).value == "editor"
    with pytest.raises(ValidationError):
        UserCreate(name="root\u202e")


@pytest.mark.parametrize("bad", ["Claims\u202etriage", "\u2067Claims", "Clai\x85ms", "A\u200eB"])
def test_pilot_names_refuse_control_and_bidi_characters(bad):
    with pytest.raises(ValidationError, match="name must not contain"):
        PilotCreate(name=bad, start_date=date(2012, 1, 2), decision_date=date(2012, 6, 29))
    rep = csvio.parse_pilots_csv(
        "pilot,start_date,decision_date,metric,direction,target\n"
        f"{bad},2012-01-02,2012-06-29,resolution_time,lower_is_better,80\n"
    )
    [(line, column, reason)] = errs(rep)
    assert (line, column) == (2, "pilot") and reason.startswith("name must not contain")


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        ("typo\x00fixed", "the reason contains control characters (e.g. NUL); remove them"),
        ("r" * 1001, "the reason is 1001 characters long; shorten it to at most 1000"),
    ],
)
def test_import_reason_gets_the_correction_check(session, reason, message):
    make_pilot(session, HD)
    session.commit()
    rep = csvio.import_measurements(
        session=session,
        actor="tester",
        data=HEADER + f"{HD},resolution_time,2012-W03,61,\n",
        reason=reason,
    )
    assert errs(rep) == [(None, None, f"nothing written: {message}")]
    session.rollback()
    assert store.measurements_frame(session).empty
    with pytest.raises(StoreError, match="the reason"):
        store.write_measurements(
            session=session,
            actor="tester",
            rows=pd.DataFrame(
                {
                    "metric_id": [metric_id(session, HD, "resolution_time")],
                    "week": [date(2012, 1, 16)],
                    "value": [61.0],
                }
            ),
            reason=reason,
        )


def test_import_reason_with_a_control_character_is_one_line_in_the_cli(cli, tmp_path):
    path = tmp_path / "m.csv"
    path.write_text(HEADER + f"{HD},resolution_time,2012-W03,61,\n")
    code, _, err = cli("import", str(path), "--reason", "bad\x07reason")
    assert code == 1 and "Traceback" not in err
    assert err.strip().splitlines()[0] == (
        f"{path}: file: nothing written: the reason contains control characters (e.g. NUL); "
        "remove them"
    )


# =========================================================================== item 13

PILOTS = (
    "pilot,start_date,decision_date,stage,metric,direction,baseline,target\n"
    f"{HD},2012-01-02,2012-06-29,STAGE,resolution_time,lower_is_better,120,80\n"
)


def test_pilots_dry_run_applies_the_stage_gate_of_the_real_import(session):
    first = csvio.import_pilots(
        session=session, actor="admin", data=PILOTS.replace("STAGE", "pilot")
    )
    assert first.ok
    session.commit()
    to_production = PILOTS.replace("STAGE", "production")
    real = csvio.import_pilots(session=session, actor="admin", data=to_production)
    session.rollback()
    dry = csvio.import_pilots(session=session, actor="admin", data=to_production, dry_run=True)
    session.rollback()
    assert not real.ok and not dry.ok
    assert errs(dry) == errs(real)
    assert errs(dry)[0][0] == 2 and "production" in errs(dry)[0][2]
    assert store.pilots_frame(session)["stage"].tolist() == ["pilot"]


def test_pilots_dry_run_reports_what_the_real_run_does_and_writes_nothing(session):
    data = PILOTS.replace("STAGE", "discovery")
    dry = csvio.import_pilots(session=session, actor="admin", data=data, dry_run=True)
    session.commit()
    assert dry.ok and not dry.written
    assert (dry.created, dry.updated, dry.metrics_created, dry.metrics_updated) == (1, 0, 1, 0)
    assert store.pilots_frame(session).empty
    with Session(session.get_bind()) as other:
        assert store.pilots_frame(other).empty
        assert other.execute(sa.text("SELECT count(*) FROM auditevent")).scalar() == 0
    real = csvio.import_pilots(session=session, actor="admin", data=data)
    session.commit()
    assert (real.created, real.updated, real.metrics_created, real.metrics_updated) == (
        1,
        0,
        1,
        0,
    )
    assert store.pilots_frame(session)["pilot"].tolist() == [HD]


def test_decisions_overdue_300_years_apart_does_not_overflow():
    """The overdue call-out counts whole days too: a decision date in 1900 judged as of
    2199 is 109,206 days overdue, not an int64 overflow."""
    from metrics import governance

    pilots = pd.DataFrame(
        {
            "pilot_id": [1],
            "pilot": ["Old"],
            "stage": ["pilot"],
            "decision_date": [pd.Timestamp("1900-01-01")],
            "recommendation": ["go"],
        }
    )
    out = governance.decisions_overdue(pilots, pd.DataFrame(), as_of=date(2199, 1, 1))
    assert out["days_overdue"].tolist() == [(date(2199, 1, 1) - date(1900, 1, 1)).days]
