"""Vendors compared across their pilots (issue 13 item 5, DESIGN §8): the pure
function against hand-computed values, the service and ``pilotgate export vendors`` on
the store, the chart builder and the Vendors page."""

from __future__ import annotations

import csv
import io
import sys
from datetime import date

import numpy as np
import pandas as pd
import pytest
from sqlmodel import Session

from dashboard.charts import vendor_comparison_chart
from metrics import computations as C
from metrics import service
from metrics.db import init_db, make_engine
from metrics.vendors import NO_VENDOR, VENDOR_COLUMNS, vendor_pilots, vendor_summary
from tests.apptest_helpers import clear_caches, open_app
from tests.factories import add_weeks, make_pilot, metric_id, metric_in

NAN = float("nan")
VENDORS_PAGE = "dashboard/pages/vendors.py"


def _pilots() -> pd.DataFrame:
    return pd.DataFrame(
        {
            C.PILOT_ID: [1, 2, 3, 4],
            C.PILOT: ["P1", "P2", "P3", "P4"],
            "vendor": ["Acme", "Acme", "", "Beta"],
            "stage": ["pilot", "production", "pilot", "discovery"],
            C.RECOMMENDATION: [C.GO, C.EXTEND, C.NO_GO, C.INSUFFICIENT],
            C.PRIMARY_MET: [1, 0, 0, 0],
            C.PRIMARY_TOTAL: [2, 1, 1, 1],
            C.COMPLETENESS_PCT: [93.3, 50.0, NAN, 50.0],
            C.STALE: [False, True, False, True],
            C.COST: [1000.0, NAN, 500.0, 200.0],
            C.ESTIMATED_WEEKLY_VALUE: [50.0, NAN, NAN, 10.0],
        }
    )


def _metrics() -> pd.DataFrame:
    return pd.DataFrame(
        {
            C.PILOT_ID: [1, 1, 1, 2, 3, 4],
            C.ROLE: [C.PRIMARY, C.PRIMARY, C.GUARDRAIL, C.PRIMARY, C.PRIMARY, C.PRIMARY],
            C.IMPROVEMENT_PCT: [10.0, 30.0, -5.0, 4.0, NAN, -2.0],
            C.TARGET_MET: [True, False, True, False, False, False],
            C.WEEKS_REPORTED: [8, 10, 10, 3, 0, 1],
            C.WEEKS_EXPECTED: [10, 10, 10, 6, 0, 2],
        }
    )


def test_vendor_summary_golden_values():
    """Hand-computed: Acme's pilots improve by median(10, 30) = 20 and 4 -> median 12;
    1 of 3 primary metrics at target; 31 of 36 weeks reported = 86.11%; P2 stale; the
    cost and value sums skip the unset ones. The guardrail (-5) counts toward reporting
    but not toward improvement or targets. A pilot without a vendor is grouped under
    "(no vendor)"; no weeks expected -> reporting n/a, never 0."""
    out = vendor_summary(_pilots(), _metrics())
    assert list(out.columns) == VENDOR_COLUMNS
    assert list(out["vendor"]) == [NO_VENDOR, "Acme", "Beta"]
    rows = out.set_index("vendor")
    acme = rows.loc["Acme"]
    assert acme["pilots"] == 2
    assert (acme["stage_pilot"], acme["stage_production"], acme["stage_discovery"]) == (1, 1, 0)
    assert (acme["recommendation_go"], acme["recommendation_extend"]) == (1, 1)
    assert acme["recommendation_no_go"] == 0
    assert acme["median_improvement_pct"] == 12.0
    assert (acme["targets_met"], acme["targets_total"]) == (1, 3)
    assert (acme["weeks_reported"], acme["weeks_expected"]) == (31, 36)
    assert acme["reporting_pct"] == pytest.approx(31 / 36 * 100)
    assert acme["stale_pilots"] == 1
    assert acme["cost"] == 1000.0
    assert acme["estimated_weekly_value"] == 50.0

    none = rows.loc[NO_VENDOR]
    assert none["pilots"] == 1 and none["recommendation_no_go"] == 1
    assert np.isnan(none["median_improvement_pct"])
    assert (none["targets_met"], none["targets_total"]) == (0, 1)
    assert np.isnan(none["reporting_pct"])
    assert none["cost"] == 500.0
    assert np.isnan(none["estimated_weekly_value"])

    beta = rows.loc["Beta"]
    assert beta["median_improvement_pct"] == -2.0
    assert beta["reporting_pct"] == 50.0
    assert (beta["stage_discovery"], beta["recommendation_insufficient_data"]) == (1, 1)
    assert beta["stale_pilots"] == 1
    for col in VENDOR_COLUMNS[1:]:
        if col in ("median_improvement_pct", "reporting_pct", "cost", "estimated_weekly_value"):
            assert out[col].dtype == "float64", col
        else:
            assert out[col].dtype == "int64", col


def test_vendor_pilots_is_the_drill_down():
    mine = vendor_pilots(_pilots(), _metrics(), "Acme")
    assert list(mine[C.PILOT]) == ["P1", "P2"]
    assert list(mine[C.IMPROVEMENT_PCT]) == [20.0, 4.0]
    assert list(vendor_pilots(_pilots(), _metrics(), NO_VENDOR)[C.PILOT]) == ["P3"]


def test_vendor_summary_of_no_pilots_is_empty_with_its_columns():
    out = vendor_summary(_pilots().iloc[:0], _metrics().iloc[:0])
    assert out.empty and list(out.columns) == VENDOR_COLUMNS


def test_vendor_chart_stacks_recommendations_with_whole_number_ticks():
    fig = vendor_comparison_chart(vendor_summary(_pilots(), _metrics()))
    assert [t.name for t in fig.data] == ["go", "extend", "no-go", "insufficient data"]
    go_bar = fig.data[0]
    assert list(go_bar.y) == [NO_VENDOR, "Acme", "Beta"]
    assert list(go_bar.x) == [0, 1, 0]
    assert "median improvement +12.0%" in go_bar.hovertext[1]
    assert fig.layout.barmode == "stack"
    assert fig.layout.xaxis.dtick == 1


# --------------------------------------------------------------------------- on the store

START = date(2012, 1, 2)  # Monday of 2012-W01
AS_OF = date(2012, 1, 29)  # Sunday of 2012-W04: four complete pilot weeks


def _seed(session: Session) -> None:
    """Vendor "Acme": two pilots, explicit baseline 100 h, target 80 h (lower is better).
    A reports 90 h for weeks 1-4 (improvement 10%), B 70 h (30%, met). Vendor "Beta":
    one pilot, weeks 1 and 4 only (2 of 4 expected), 95 h (5%)."""
    for name, vendor, values in [
        ("Pilot A", "Acme", [90.0] * 4),
        ("Pilot B", "Acme", [70.0] * 4),
        ("Pilot C", "Beta", [95.0, None, None, 95.0]),
    ]:
        make_pilot(
            session,
            name,
            vendor=vendor,
            cost=1000.0,
            metrics=[metric_in("resolution_time", baseline=100.0, target=80.0)],
        )
        add_weeks(session, metric_id(session, name, "resolution_time"), START, values)
    session.commit()


def test_vendors_frame_on_the_store(session):
    _seed(session)
    out = service.vendors_frame(session, as_of=AS_OF).set_index("vendor")
    assert list(out.index) == ["Acme", "Beta"]
    assert out.loc["Acme", "median_improvement_pct"] == 20.0  # median(10, 30)
    assert (out.loc["Acme", "targets_met"], out.loc["Acme", "targets_total"]) == (1, 2)
    assert out.loc["Acme", "reporting_pct"] == 100.0
    assert out.loc["Acme", "cost"] == 2000.0
    assert out.loc["Beta", "median_improvement_pct"] == 5.0
    assert (out.loc["Beta", "weeks_reported"], out.loc["Beta", "weeks_expected"]) == (2, 4)
    assert out.loc["Beta", "reporting_pct"] == 50.0
    assert out.loc["Acme", "stage_pilot"] == 2


def _cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    from metrics.cli import main

    monkeypatch.setattr(sys, "argv", ["pilotgate", *args])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def test_export_vendors_cli_writes_the_table(tmp_path, monkeypatch, capsys):
    url = f"sqlite:///{tmp_path / 'v.db'}"
    engine = make_engine(url)
    init_db(engine)
    with Session(engine) as s:
        _seed(s)
        # a vendor name a spreadsheet would run as a formula
        make_pilot(s, "Pilot D", vendor="=HYPERLINK(1)", metrics=[metric_in()])
        s.commit()
    engine.dispose()
    out_file = tmp_path / "vendors.csv"
    code, _, err = _cli(
        monkeypatch, capsys, "--database-url", url, "export", "vendors", "--as-of",
        AS_OF.isoformat(), "-o", str(out_file),
    )  # fmt: skip
    assert code == 0, err
    text = out_file.read_text(encoding="utf-8")
    assert text.startswith("\ufeff" + ",".join(VENDOR_COLUMNS) + "\n")
    rows = {r["vendor"]: r for r in csv.DictReader(io.StringIO(text.removeprefix("\ufeff")))}
    assert set(rows) == {"Acme", "Beta", "'=HYPERLINK(1)"}
    assert rows["Acme"]["median_improvement_pct"] == "20.0"
    assert rows["Beta"]["reporting_pct"] == "50.0"
    assert rows["'=HYPERLINK(1)"]["median_improvement_pct"] == ""  # n/a, never 0
    code, _, err = _cli(
        monkeypatch, capsys, "--database-url", url, "export", "vendors", "--as-of", "2012-13-01"
    )
    assert code == 1 and "--as-of '2012-13-01' is not a date" in err


# --------------------------------------------------------------------------- the page


def _frame(at, column: str) -> pd.DataFrame:
    """The dataframe element holding ``column`` (AppTest exposes no dataframe keys)."""
    (frame,) = [d.value for d in at.dataframe if column in d.value.columns]
    return frame


@pytest.fixture
def page_db(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'vendors-page.db'}"
    engine = make_engine(url)
    init_db(engine)
    with Session(engine) as s:
        _seed(s)
    engine.dispose()
    monkeypatch.setenv("PILOTGATE_DATABASE_URL", url)
    monkeypatch.setenv("PILOTGATE_ACTOR", "page-tester")
    clear_caches()
    yield url
    clear_caches()


def test_vendors_page_table_chart_and_drill_down(page_db):
    at = open_app(VENDORS_PAGE, as_of=AS_OF)
    assert [t.value for t in at.title] == ["Vendors"]
    table = _frame(at, "Targets met")
    assert list(table["Vendor"]) == ["Acme", "Beta"]
    assert list(table["Median improvement %"]) == [20.0, 5.0]
    assert list(table["Targets met"]) == ["1 / 2", "0 / 1"]
    # go / extend / no-go / insufficient data: B met (go), A improving (extend); C has
    # 2 of the 4 weeks min_weeks asks for
    assert list(table["Recommendations"]) == ["1 / 1 / 0 / 0", "0 / 0 / 0 / 1"]
    assert list(table["Stages"]) == ["0 / 2 / 0 / 0 / 0", "0 / 1 / 0 / 0 / 0"]
    assert at.get("plotly_chart")
    assert at.selectbox(key="vendor_drill").value == "Acme"
    assert list(_frame(at, "Met")["Pilot"]) == ["Pilot A", "Pilot B"]
    at.selectbox(key="vendor_drill").set_value("Beta").run(timeout=30)
    assert not at.exception
    drill = _frame(at, "Met")
    assert list(drill["Pilot"]) == ["Pilot C"]
    assert list(drill["Reported %"]) == [50.0]
    assert "Download vendors CSV" in [b.label for b in at.get("download_button")]
