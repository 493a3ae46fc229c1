"""The dashboard after the QA pass: each finding fixed, asserted on real values.

Guardrails shown by their non-inferiority margin (not a target), stored numbers shown
as stored with units, a Portfolio table that fits 1400 px, refused Admin input named,
a role-restricted page opened by address explained, the wording (one refusal prefix,
a/an, plurals, no zero-width spaces, friendly enum words, a stage gate that refuses
only once tried), no Streamlit session-state warning, and percentages in one precision.

Page tests run through ``streamlit.testing.v1.AppTest`` on the ``engine`` fixture's
database: SQLite, and PostgreSQL when ``PILOTGATE_TEST_POSTGRES_URL`` is set.
"""

from __future__ import annotations

import json
import math
import re
from datetime import date
from types import SimpleNamespace

import pandas as pd
import pytest
from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest

from dashboard import charts
from dashboard import components as ui
from metrics import access, service, store
from metrics import computations as C
from metrics import governance as G
from metrics.errors import PermissionDenied
from metrics.models import AppUser, Pilot, Role
from tests.apptest_helpers import APP, open_app
from tests.apptest_helpers import clear_caches as _clear_caches
from tests.factories import add_weeks, make_pilot, metric_id, metric_in

PILOT_PAGE = "dashboard/pages/pilot.py"
ENTER_PAGE = "dashboard/pages/enter.py"
IMPORT_PAGE = "dashboard/pages/import_csv.py"
EXPORT_PAGE = "dashboard/pages/export.py"
ADMIN_PAGE = "dashboard/pages/admin.py"

START = date(2012, 1, 2)  # Monday of 2012-W01
AS_OF = date(2012, 2, 20)  # the last complete week is 2012-W07
HELPDESK = "Helpdesk triage assistant"
INVOICE = "Invoice extraction copilot"
FRAUD = "Fraud analyst copilot"
ACTOR = "page-tester"
#: Streamlit's main container beside the sidebar at a 1400 px wide window, and the
#: part of it a table with row selectors leaves for columns (measured in Chromium).
PAGE_PX, SELECTABLE_TABLE_PX = 940, 906
PORTFOLIO_TABLE_PX_1280 = 786  # beside the row selectors, at 1280 px wide

UNMET = ":material/check_box_outline_blank: not yet: "  # a gate condition not met
MET = ":material/check_box: met: "


@pytest.fixture(autouse=True)
def _today_is_as_of(monkeypatch):
    """The pages live on AS_OF: "today" for decisions and the as-of default."""
    monkeypatch.setattr(service, "today", lambda: AS_OF)


@pytest.fixture
def db(engine, monkeypatch):
    """Helpdesk: resolution_time (primary, h, baseline 118, target 80) and an error_rate
    guardrail (%, baseline 5, margin 1: limit 6%) reported 2012-W01..W06, held.
    Invoice: analyst_productivity (primary, higher is better) and a complaint_rate
    guardrail (%, baseline 2, margin 0.5, lower is better) breached (3% > 2.5%).
    Fraud: nothing reported (stale)."""
    with Session(engine, expire_on_commit=False) as s:
        make_pilot(
            s,
            HELPDESK,
            metrics=[
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
                metric_in("resolution_time", baseline=118.0, target=80.0, max_value=1000.0),
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
                ),
                metric_in(
                    "complaint_rate",
                    label="Complaint rate",
                    unit="%",
                    role="guardrail",
                    baseline=2.0,
                    target=1.0,
                    margin=0.5,
                    max_value=100.0,
                ),
            ],
        )
        make_pilot(s, FRAUD, vendor="Sentinel Labs")
        add_weeks(s, metric_id(s, HELPDESK, "resolution_time"), START, [100, 90, 80, 76, 72, 72])
        add_weeks(s, metric_id(s, HELPDESK, "error_rate"), START, [4.8, 5.0, 4.9, 4.7, 4.6, 4.8])
        add_weeks(
            s, metric_id(s, INVOICE, "analyst_productivity"), START, [11, 12, 12.5, 13, 13.5, 14]
        )
        add_weeks(s, metric_id(s, INVOICE, "complaint_rate"), START, [2.9, 3.0, 3.1, 3.0, 3.0, 3.0])
        s.commit()
        ids = store.pilots_frame(s).set_index("pilot")["pilot_id"]
        out = {
            "engine": engine,
            "helpdesk": int(ids[HELPDESK]),
            "invoice": int(ids[INVOICE]),
            "fraud": int(ids[FRAUD]),
            "resolution_time": metric_id(s, HELPDESK, "resolution_time"),
            "error_rate": metric_id(s, HELPDESK, "error_rate"),
        }
    monkeypatch.setenv("PILOTGATE_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("PILOTGATE_ACTOR", ACTOR)
    _clear_caches()
    yield out
    _clear_caches()


def _role(db, role: str) -> None:
    with Session(db["engine"]) as s:
        user = s.exec(select(AppUser).where(AppUser.name == ACTOR)).first()
        if user is None:
            s.add(AppUser(name=ACTOR, role=role))
        else:
            user.role = role
        s.commit()


def _app(page: str | None = None, *, as_of: date = AS_OF, pilot_id: int | None = None):
    return open_app(page, as_of=as_of, pilot_id=pilot_id)


def _unescape(md: str) -> str:
    """Markdown source as a reader sees it (backslash escapes removed); zero-width
    spaces are kept, so a test sees them."""
    return re.sub(r"\\(.)", r"\1", str(md))


def _texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [x.value for x in at.info] + [x.value for x in at.warning]
    parts += [x.value for x in at.success] + [x.value for x in at.error]
    parts += [h.value for h in at.subheader]
    return "\n".join(_unescape(p) for p in parts)


def _tiles(at: AppTest, key: str) -> list[tuple[str, str, str]]:
    """(label, value, delta) of the metric tiles in the container ``key``."""
    (box,) = [c for c in at.get("flex_container") if c.key == key]
    return [(m.label, m.value, m.proto.delta) for m in box.get("metric")]


def _table(at: AppTest, *columns: str):
    """The one st.dataframe whose data has all of ``columns``."""
    found = [d for d in at.dataframe if set(columns) <= set(d.value.columns)]
    assert len(found) == 1, [list(d.value.columns) for d in at.dataframe]
    return found[0]


def _portfolio_table(at: AppTest):
    (found,) = [d for d in at.dataframe if d.key == "portfolio-table"]
    return found


def _config(element) -> dict:
    return json.loads(element.proto.columns)


def _chart(at: AppTest, key: str) -> dict:
    (found,) = [c for c in at.get("plotly_chart") if c.key == key]
    return json.loads(found.proto.spec)


# =========================================================================== 1 guardrails


def _guardrail(**kw) -> dict:
    m = {
        C.LABEL: "Error rate",
        C.KEY: "error_rate",
        C.UNIT: "%",
        C.DIRECTION: C.LOWER,
        C.ROLE: C.GUARDRAIL,
        C.BASELINE: 4.58,
        C.TARGET: 4.0,
        C.MARGIN: 0.5,
        C.CURRENT: 4.7,
        C.WINDOW: 4,
        C.START_DATE: pd.Timestamp(START),
        C.DECISION_DATE: pd.Timestamp(date(2012, 6, 29)),
        C.TREND_SLOPE: -0.1,
        C.TREND_INTERCEPT: 5.0,
        C.PROJECTED_TARGET_WEEK: pd.Timestamp(date(2012, 3, 5)),
    }
    m.update(kw)
    return m


def _weeks(values: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            C.WEEK: pd.date_range(pd.Timestamp(START), periods=len(values), freq="7D"),
            C.VALUE: values,
        }
    )


@pytest.mark.parametrize(
    ("direction", "margin", "limit", "label"),
    [
        (C.LOWER, 0.5, 5.08, "Non-inferiority limit 5.08%"),
        (C.HIGHER, 0.5, 4.08, "Non-inferiority limit 4.08%"),
        (C.LOWER, float("nan"), 4.58, "Non-inferiority limit 4.58%"),  # no margin: 0
    ],
    ids=["lower-is-better", "higher-is-better", "no-margin"],
)
def test_guardrail_chart_draws_its_limit_not_a_target(direction, margin, limit, label):
    fig = charts.metric_chart(
        _weeks([4.6, 4.7, 4.5, 4.8]), _guardrail(**{C.DIRECTION: direction, C.MARGIN: margin})
    )
    names = [s.name for s in fig.layout.shapes]
    assert "target zone" not in names and "target" not in names
    (line,) = [s for s in fig.layout.shapes if s.name == "non-inferiority limit"]
    assert line.y0 == pytest.approx(limit) and line.y1 == pytest.approx(limit)
    texts = [a.text for a in fig.layout.annotations]
    assert label in texts
    assert not [t for t in texts if t and t.startswith("Target")]
    assert not [t for t in fig.data if t.meta == "projected target"]
    assert fig.layout.yaxis.range[0] < limit < fig.layout.yaxis.range[1]


def test_primary_chart_keeps_its_target_zone_and_has_no_limit():
    fig = charts.metric_chart(_weeks([4.6, 4.7]), _guardrail(**{C.ROLE: C.PRIMARY}))
    names = [s.name for s in fig.layout.shapes]
    assert "target zone" in names and "target" in names
    assert "non-inferiority limit" not in names


def test_guardrail_limit_values():
    assert charts.guardrail_limit(_guardrail()) == pytest.approx(5.08)
    assert charts.guardrail_limit(_guardrail(**{C.DIRECTION: C.HIGHER})) == pytest.approx(4.08)
    assert math.isnan(charts.guardrail_limit(_guardrail(**{C.BASELINE: float("nan")})))


def test_pilot_page_shows_a_held_guardrail_by_its_margin(db):
    at = _app(PILOT_PAGE, pilot_id=db["helpdesk"])
    # primary metrics first, then the guardrail (defined first here)
    assert [_unescape(h.value) for h in at.subheader][:2] == [
        "Resolution time (h)",
        "Error rate (%)",
    ]
    captions = [_unescape(c.value) for c in at.caption]
    assert "`error_rate` · guardrail · lower is better · non-inferiority margin 1 pp" in captions
    assert "`resolution_time` · primary · lower is better · target 80 h" in captions
    assert not [c for c in captions if c.startswith("`error_rate`") and "target" in c]

    guard = {label: value for label, value, _ in _tiles(at, f"tiles-{db['error_rate']}")}
    assert guard["Non-inferiority limit"] == "6%"  # baseline 5% + margin 1 pp
    assert guard["Status vs margin"] == "held"
    assert guard["Baseline"] == "5%"
    assert "Progress to target" not in guard
    assert "Target" not in guard
    assert "Projected target week" not in guard
    primary = {label: value for label, value, _ in _tiles(at, f"tiles-{db['resolution_time']}")}
    assert primary["Progress to target"] == "113.2%"
    assert primary["Status vs target"] == "met"
    assert ":green-badge[:material/shield: guardrail held]" in _texts(at)

    spec = _chart(at, f"chart-{db['error_rate']}")
    shapes = [s.get("name") for s in spec["layout"]["shapes"]]
    assert "non-inferiority limit" in shapes and "target zone" not in shapes
    assert "Non-inferiority limit 6%" in [a.get("text") for a in spec["layout"]["annotations"]]


def test_pilot_page_breached_guardrail_tile_and_badge_agree(db):
    at = _app(PILOT_PAGE, pilot_id=db["invoice"])
    mid = metric_id_of(db, INVOICE, "complaint_rate")
    guard = {label: value for label, value, _ in _tiles(at, f"tiles-{mid}")}
    assert guard["Status vs margin"] == "breached"
    assert guard["Non-inferiority limit"] == "2.5%"
    text = _texts(at)
    assert ":red-badge[:material/shield: guardrail breached]" in text
    assert "`complaint_rate` · guardrail · lower is better · non-inferiority margin 0.5 pp" in text
    assert ":red-badge[Recommendation: no-go]" in text


def metric_id_of(db, pilot: str, key: str) -> int:
    with Session(db["engine"]) as s:
        return metric_id(s, pilot, key)


def test_export_table_words_guardrail_status_as_held_or_breached(db):
    at = _app(EXPORT_PAGE)
    table = _table(at, "Better", "Status").value.set_index(["Pilot", "Metric"])
    assert table.loc[(HELPDESK, "error_rate"), "Status"] == "held"
    assert table.loc[(INVOICE, "complaint_rate"), "Status"] == "breached"
    assert table.loc[(HELPDESK, "resolution_time"), "Status"] == "met"


# =========================================================================== 2 numbers


def test_tables_show_stored_numbers_to_6_significant_digits_with_units(db):
    noisy = 0.1 + 0.2  # 0.30000000000000004: float noise a "plain" column printed
    with Session(db["engine"]) as s:
        store.record_measurement(
            session=s,
            actor=ACTOR,
            metric_id=db["resolution_time"],
            week=date(2012, 2, 6),
            value=61.19097222222222,
            reason="recount",
            expected_version=1,
        )
        add_weeks(s, db["error_rate"], date(2012, 2, 13), [noisy])
        s.commit()
    at = _app(PILOT_PAGE, pilot_id=db["helpdesk"])
    assert ui.VALUE_FORMAT == "%.6g"
    # what sprintf-js makes of it in the browser: Number(x.toPrecision(6))
    assert f"{61.19097222222222:.6g}" == "61.191" and f"{noisy:.6g}" == "0.3"

    history = _table(at, "Action", "Reason")
    frame = history.value
    # the stored numbers themselves, unchanged: only the display is rounded
    assert frame["New value"].iloc[0] == noisy
    corrected = frame[frame["Action"] == "corrected"].iloc[0]
    assert (corrected["Old value"], corrected["New value"]) == (72.0, 61.19097222222222)
    config = _config(history)
    assert config["Old value"]["type_config"]["format"] == "%.6g"
    assert config["New value"]["type_config"]["format"] == "%.6g"
    # two metrics in two units: a Unit column says which
    assert corrected["Unit"] == "h"
    assert set(frame["Unit"]) == {"h", "%"}

    # one metric chosen: its unit goes into the headers
    at.selectbox(key=f"history-metric-{db['helpdesk']}").set_value(db["resolution_time"])
    at.run(timeout=30)
    config = _config(_table(at, "Action", "Reason"))
    assert config["Old value"]["label"] == "Old value (h)"
    assert config["New value"]["label"] == "New value (h)"

    values = _table(at, "Week", "Value (h)")
    assert values.value["Value (h)"].iloc[0] == 61.19097222222222
    assert _config(values)["Value (h)"]["type_config"]["format"] == "%.6g"


def test_import_preview_shows_the_value_with_its_unit_and_6_digits(db):
    at = AppTest.from_file(APP, default_timeout=30)
    at.session_state["as_of"] = AS_OF
    at.run(timeout=30)
    at.switch_page(IMPORT_PAGE).run(timeout=30)
    data = f"pilot,metric,week,value\n{HELPDESK},resolution_time,2012-W07,99\n".encode()
    at.file_uploader(key="import-file").set_value(("w7.csv", data, "text/csv")).run(timeout=30)
    assert not at.exception
    (rows,) = [d for d in at.dataframe if "Action" in d.value.columns]
    assert rows.value["Value"].tolist() == [99.0]
    config = _config(rows)
    assert config["Value"]["label"] == "Value (h)"
    assert config["Value"]["type_config"]["format"] == "%.6g"
    assert rows.value["Unit"].tolist() == ["h"]


# =========================================================================== 3 widths


def test_portfolio_table_fits_1280_px_with_short_labels_and_the_decision(db):
    """Issue 10 item 14: a laptop at 1280 px offers about 786 px beside the row
    selectors; every column, the Decision columns last, fits in it."""
    with Session(db["engine"]) as s:
        service.record_decision(
            session=s,
            actor="ada",
            pilot_id=db["invoice"],
            decision="no_go",
            rationale="complaints",
            as_of=AS_OF,
        )
        s.commit()
    at = _app()
    table = _portfolio_table(at)
    config = _config(table)
    shown = [c for c in table.proto.column_order] or list(table.value.columns)
    widths = [config[c]["width"] for c in shown]
    assert sum(widths) <= PORTFOLIO_TABLE_PX_1280, dict(zip(shown, widths, strict=True))
    assert shown[-3:] == ["Decision date", "Decision due", "Decision"]
    labels = {c: config[c].get("label", c) for c in shown}
    assert labels["Decision date"] == "Decision date"  # the date, named as one
    assert labels["Decision"] == "Decision"  # the recorded decision
    assert (labels["Primary met"], labels["Reported"], labels["Decision due"]) == (
        "Met",
        "Reported",
        "Due",
    )
    for c in ("Primary met", "Reported", "Decision due", "Decision"):
        assert config[c]["help"], c  # a short label is explained by its tooltip
    # a pilot name longer than its column (~5.8 px a character plus the padding) wraps
    assert len(INVOICE) * 5.8 + 17 > config["Pilot"]["width"]
    assert table.proto.row_height == 66
    rows = table.value.set_index("Pilot")
    # reporting discipline in one cell: completeness, ⚠ when stale
    assert rows.loc[FRAUD, "Reported"].startswith("⚠\u00a0")
    assert rows.loc[HELPDESK, "Reported"] == f"{100 * 6 / 7:.0f}%"
    assert rows.loc[INVOICE, "Decision"] == "no-go"
    assert rows.loc[HELPDESK, "Decision"] == "—"
    assert rows.loc[FRAUD, "Last reported"] == "⚠\u00a0none"  # stale, nothing reported
    assert rows.loc[HELPDESK, "Last reported"] == "2012-W06"


def test_portfolio_rows_wrap_a_name_too_long_for_its_column(db):
    with Session(db["engine"]) as s:
        make_pilot(s, "Claims", vendor="Help-desk AI vendor (illustrative)")
        make_pilot(s, "Brief pilot", vendor="Brief")
        s.commit()
    at = _app()
    table = _portfolio_table(at)
    assert table.proto.row_height == 66  # wrapped on up to 3 lines, never cut
    at = _app()
    at.text_input(key="pf_search").set_value("brief").run(timeout=30)
    assert _portfolio_table(at).proto.row_height == 0  # default one-line rows


def test_checklist_table_fits_and_keeps_item_and_time_whole(db):
    at = _app(PILOT_PAGE, pilot_id=db["helpdesk"])
    table = _table(at, "Done", "Item", "Evidence")
    config = _config(table)
    assert sum(config[c]["width"] for c in table.value.columns) <= PAGE_PX
    longest = max(len(x) for x in G.DEFAULT_CHECKLIST)
    assert config["Item"]["width"] >= longest * 6 + 17
    assert config["When (UTC)"]["width"] >= len("2012-02-20 12:30") * 7 + 17


# =========================================================================== 4 admin


@pytest.mark.parametrize(
    ("field", "label"),
    [("window", "Trailing window (weeks)"), ("min-weeks", "Minimum pilot weeks")],
)
def test_admin_names_a_weeks_field_below_1_and_saves_nothing(db, field, label):
    pid = db["helpdesk"]
    with Session(db["engine"]) as s:
        before = store.pilots_frame(s).set_index("pilot_id").loc[pid]
        version = store.data_version(s)
    at = _app(ADMIN_PAGE)
    at.selectbox(key="admin_pilot").set_value(pid).run(timeout=30)
    at.number_input(key=f"adm-p{pid}-{field}").set_value(0)
    at.button(key=f"adm-p{pid}-save").click().run(timeout=30)
    assert not at.exception
    assert [_unescape(e.value) for e in at.error] == [
        f"Not saved: {label} must be a whole number of at least 1 (>= 1); it is 0. "
        "Nothing was changed."
    ]
    assert not at.success
    with Session(db["engine"]) as s:
        assert store.data_version(s) == version
        after = store.pilots_frame(s).set_index("pilot_id").loc[pid]
    assert (after[C.WINDOW], after[C.MIN_WEEKS]) == (before[C.WINDOW], before[C.MIN_WEEKS])


def test_admin_speaks_of_the_non_inferiority_margin_and_friendly_directions(db):
    at = _app(ADMIN_PAGE)
    pid = db["helpdesk"]
    at.selectbox(key="admin_pilot").set_value(pid).run(timeout=30)
    mid = db["error_rate"]
    assert at.number_input(key=f"adm-p{pid}-m{mid}-margin").label == "Non-inferiority margin"
    assert not [n for n in at.number_input if "Guardrail margin" in n.label]
    direction = at.selectbox(key=f"adm-p{pid}-m{mid}-direction")
    assert direction.options == ["lower is better", "higher is better"]
    assert direction.value == "lower_is_better"  # the stored value stays raw


# =========================================================================== 5 by address


@pytest.mark.parametrize(
    ("role", "page", "message"),
    [
        ("viewer", ENTER_PAGE, "The Enter page needs the editor role; you are a viewer."),
        ("viewer", IMPORT_PAGE, "The Import page needs the editor role; you are a viewer."),
        ("viewer", ADMIN_PAGE, "The Admin page needs the admin role; you are a viewer."),
        ("editor", ADMIN_PAGE, "The Admin page needs the admin role; you are an editor."),
    ],
)
def test_a_page_outside_the_role_says_why_on_the_portfolio(db, role, page, message):
    # Open the page while allowed (its address), then lose the role: the same address
    # now names a page outside the navigation and Streamlit runs the Portfolio.
    _role(db, "admin")
    at = _app(page)
    _role(db, role)
    at.run(timeout=30)
    assert not at.exception
    assert [t.value for t in at.title] == ["Portfolio"]
    assert next(i.value for i in at.info) == message


def test_the_portfolio_opened_normally_says_nothing_about_roles(db):
    _role(db, "viewer")
    at = _app()
    assert not [i for i in at.info if "needs the" in i.value]


# =========================================================================== 6 wording


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (
            "decision not saved: no_go on 'X' differs from the recommendation go",
            "Decision not saved: no-go on 'X' differs from the recommendation go",
        ),
        (
            "checklist item not added: item: item must not be empty: write what has to be in place",
            "Checklist item not added: item must not be empty: write what has to be in place",
        ),
        (
            "'X' not moved from pilot to stopped: record a no_go decision first. Nothing was "
            "changed.",
            "'X' not moved from pilot to stopped: record a no-go decision first. Nothing was "
            "changed.",
        ),
        (
            "vic is a viewer: adding a checklist item needs the editor role",
            "Not saved: vic is a viewer: adding a checklist item needs the editor role",
        ),
    ],
)
def test_refusal_says_what_was_refused_once(raw, shown):
    text = ui.refusal("Not saved", raw)
    assert "\u200b" not in text
    assert _unescape(text) == shown


def test_adding_an_empty_checklist_item_reads_once(db):
    pid = db["helpdesk"]
    at = _app(PILOT_PAGE, pilot_id=pid)
    at.text_input(key=f"checklist-add-text-{pid}-0").set_value("   ")
    (add,) = [b for b in at.button if b.label == "Add item"]
    add.click().run(timeout=30)
    (error,) = at.error
    assert "\u200b" not in error.value  # copyable text: no invisible characters
    assert _unescape(error.value) == (
        "Checklist item not added: item must not be empty: write what has to be in place"
    )


def test_refusing_an_editor_uses_an(session):
    session.add(AppUser(name="eddie", role="editor"))
    session.flush()
    with pytest.raises(PermissionDenied) as exc:
        access.require_role(
            session=session, actor="eddie", needed=Role.admin, action="recording a decision"
        )
    assert str(exc.value) == (
        "eddie is an editor: recording a decision needs the admin role. "
        "Ask an admin to change your role."
    )


def test_stale_pilots_are_named_with_singular_and_plural(db):
    at = _app()
    assert [_unescape(w.value) for w in at.warning] == [
        f"1 pilot is stale (no value reported in the last 2 complete weeks): {FRAUD}."
    ]
    with Session(db["engine"]) as s:
        make_pilot(s, "Zeta pilot")
        s.commit()
    at = _app()
    assert [_unescape(w.value) for w in at.warning] == [
        f"2 pilots are stale (no value reported in the last 2 complete weeks): {FRAUD} and "
        "Zeta pilot."
    ]


def test_md_escape_adds_zero_width_spaces_only_before_a_shortcode():
    assert "\u200b" not in ui.md_escape("Not saved: decision not saved: x at 12:30")
    assert _unescape(ui.md_escape("Not saved: x at 12:30")) == "Not saved: x at 12:30"
    for hostile in (":smile:", ":material/home:", "a:thumbs_up:b"):
        escaped = ui.md_escape(hostile)
        assert "\u200b" in escaped
        assert _unescape(escaped).replace("\u200b", "") == hostile
    assert "\\:" in ui.md_escape("x:red[y]")  # a directive cannot start
    # links markdown would make of plain text (GFM autolinks) are broken too
    for link in ("http://evil.example", "https://e.x/p", "www.evil.example"):
        escaped = ui.md_escape(link)
        assert "\u200b" in escaped and _unescape(escaped).replace("\u200b", "") == link


def test_import_asks_for_the_reading_choice_in_the_same_words(db):
    at = AppTest.from_file(APP, default_timeout=30)
    at.session_state["as_of"] = AS_OF
    at.run(timeout=30)
    at.switch_page(IMPORT_PAGE).run(timeout=30)
    data = f'pilot,metric,week,value\n{HELPDESK},resolution_time,2012-W07,"1,234"\n'.encode()
    at.file_uploader(key="import-file").set_value(("us.csv", data, "text/csv")).run(timeout=30)
    (error,) = [_unescape(e.value) for e in at.error]
    assert error == (
        "1 problem found: nothing will be written. Choose the **Decimal separator** above: "
        "the file is checked again at once. If problems remain, fix the file and upload it "
        "again."
    )
    assert any("choose the **Decimal separator** above" in w.value for w in at.warning)


def test_stage_gate_is_a_neutral_checklist_until_a_move_is_tried(db):
    pid = db["helpdesk"]
    at = _app(EXPORT_PAGE, pilot_id=pid)
    at.selectbox(key=f"stage-to-{pid}-0").set_value("stopped").run(timeout=30)
    text = _texts(at)
    assert UNMET + "latest recorded decision must be no-go" in text
    assert "no_go" not in text
    assert "Nothing was changed" not in text and not at.error
    (move,) = [b for b in at.button if b.label == "Move to stopped"]
    assert not move.disabled
    move.click().run(timeout=30)
    assert [_unescape(e.value) for e in at.error] == [
        f"'{HELPDESK}' not moved from pilot to stopped: record a no-go decision first (no "
        "decision is recorded yet). Nothing was changed."
    ]
    with Session(db["engine"]) as s:
        assert s.get(Pilot, pid).stage == "pilot"


def test_decision_form_says_a_past_as_of_needs_a_rationale(db):
    at = _app(EXPORT_PAGE, pilot_id=db["helpdesk"])
    text = _texts(at)
    assert "A different decision needs a rationale, and so does a decision judged as of a " in (
        text
    )
    assert "this one is judged as of" not in text  # as of today
    at = _app(EXPORT_PAGE, pilot_id=db["helpdesk"], as_of=date(2012, 2, 6))
    assert (
        "(this one is judged as of 2012-02-06, today is 2012-02-20: say why, e.g. recording "
        "the steering committee's decision of that day)"
    ) in _texts(at)


def test_export_cards_count_open_items_in_words(db):
    at = _app(EXPORT_PAGE)
    assert "11 open checklist items block moving to production." in _texts(at)


# =========================================================================== 7 warning


class _Recorder:
    def __init__(self):
        self.messages: list[str] = []

    def warning(self, msg, *args, **kwargs):
        self.messages.append(msg % args if args else msg)


@pytest.fixture
def widget_warnings(monkeypatch):
    """Streamlit's "created with a default value but also had its value set via the
    Session State API" warning, recorded (AppTest has no runtime, so Streamlit would
    skip the check: the policy module is told there is one)."""
    from streamlit.elements.lib import policies

    recorder = _Recorder()
    monkeypatch.setattr(policies, "runtime", SimpleNamespace(exists=lambda: True))
    monkeypatch.setattr(policies, "_LOGGER", recorder)
    monkeypatch.setattr(policies, "_shown_default_value_warning", False)
    return recorder


def test_the_recorder_catches_the_warning_pattern(widget_warnings):
    script = """
import streamlit as st
from datetime import date
st.session_state["d"] = date(2012, 1, 2)
st.date_input("d", value=date(2012, 2, 3), key="d")
"""
    AppTest.from_string(script).run(timeout=30)
    assert any('"d"' in m for m in widget_warnings.messages)


def test_as_of_picker_never_sets_a_widget_two_ways(db, widget_warnings):
    at = AppTest.from_file(APP, default_timeout=30)
    at.query_params["as_of"] = "2012-09-03"
    at.run(timeout=30)
    at.switch_page(PILOT_PAGE).run(timeout=30)
    at.sidebar.selectbox(key="pilot_page_pilot").set_value(db["helpdesk"]).run(timeout=30)
    at.button(key="pilot-as-of-decision").click().run(timeout=30)  # sets it by callback
    assert at.date_input(key="as_of_input").value == date(2012, 6, 29)
    at.date_input(key="as_of_input").set_value(date(2012, 2, 13)).run(timeout=30)
    assert at.session_state["as_of"] == date(2012, 2, 13)
    at.switch_page(EXPORT_PAGE).run(timeout=30)
    assert at.date_input(key="as_of_input").value == date(2012, 2, 13)
    assert not at.exception
    assert not [m for m in widget_warnings.messages if "as_of_input" in m]


# =========================================================================== 8 pilot page


def test_pilot_cost_not_set_and_percentages_in_one_precision(db):
    at = _app(PILOT_PAGE, pilot_id=db["helpdesk"])
    text = _texts(at)
    assert "Pilot cost not set." in text
    assert "Pilot cost n/a" not in text
    tiles = _tiles(at, f"tiles-{db['error_rate']}")
    (improvement,) = [t for t in tiles if t[0] == "Improvement"]
    one_decimal = r"[+-]?\d+\.\d%"
    assert re.fullmatch(one_decimal, improvement[1]), improvement
    assert re.fullmatch(rf"95% CI {one_decimal} to {one_decimal}", improvement[2]), improvement
    caption = [c for c in text.splitlines() if c.startswith("95% interval of the improvement")]
    assert caption and all(
        re.match(rf"95% interval of the improvement: {one_decimal} to {one_decimal} ", c)
        for c in caption
    ), caption


@pytest.mark.parametrize(
    ("low", "high", "unit", "signed", "text"),
    [
        (-14.46, 0.746, "%", True, "95% CI -14.5% to +0.7%"),
        (-0.04, 12.0, "%", True, "95% CI 0.0% to +12.0%"),
        (4.054, 4.671, "%", False, "95% CI 4.05 to 4.67%"),
        (8.46, 11.34, "h", False, "95% CI 8.5 to 11.3 h"),
        (1.0, 2.0, "h", False, "95% CI 1 to 2 h"),
        (0.0123, 0.5, "", False, "95% CI 0.012 to 0.500"),
    ],
)
def test_interval_bounds_share_one_precision(low, high, unit, signed, text):
    assert charts.ci_range(low, high, unit, signed=signed) == text


def test_pct_is_one_decimal_and_never_zero_for_undefined():
    assert ui.pct(113.2075) == "113.2%"
    assert ui.pct(12, signed=True) == "+12.0%"
    assert ui.pct(-0.04, signed=True) == "0.0%"
    assert ui.pct(None) == "n/a" and ui.pct(float("nan")) == "n/a"
