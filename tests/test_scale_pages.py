"""Pages built for a thousand pilots (issue 13 item 4): charts never force one tick per
value; the Export page pages and filters its table, shows one decision card at a time
and builds its CSVs only when asked."""

from __future__ import annotations

import pandas as pd
import pytest

from dashboard.charts import count_axis_step, portfolio_counts_chart
from metrics import computations as C
from metrics.db import init_db, make_engine
from seed.scale import build_scale_portfolio
from tests.apptest_helpers import clear_caches, open_app

EXPORT_PAGE = "dashboard/pages/export.py"


@pytest.mark.parametrize(
    ("top", "step"),
    [(0, 1), (1, 1), (3, 1), (6, 1), (7, 2), (12, 2), (13, 5), (30, 5), (31, 10), (905, 200)],
)
def test_count_axis_step_keeps_at_most_six_steps(top, step):
    assert count_axis_step(top) == step


def test_portfolio_chart_of_905_pilots_has_a_handful_of_ticks():
    """The bug: ``dtick=1`` drew 905 tick labels and froze the browser tab for 30 s."""
    pilots = pd.DataFrame({C.RECOMMENDATION: [C.EXTEND] * 905 + [C.GO] * 95})
    fig = portfolio_counts_chart(pilots)
    assert fig.layout.yaxis.dtick == 200  # 0, 200, ... 1000: six labels
    assert fig.layout.yaxis.tickformat == "d"
    assert list(fig.data[0].y) == [95, 905, 0, 0]


@pytest.fixture
def sixty(tmp_path, monkeypatch):
    """60 pilots x 2 metrics x 30 weeks (seed.scale), judged at its last week."""
    url = f"sqlite:///{tmp_path / 'sixty.db'}"
    engine = make_engine(url)
    init_db(engine)
    built = build_scale_portfolio(engine, pilots=60, metrics=2, weeks=30)
    engine.dispose()
    monkeypatch.setenv("PILOTGATE_DATABASE_URL", url)
    monkeypatch.setenv("PILOTGATE_ACTOR", "page-tester")
    clear_caches()
    yield built
    clear_caches()


def _frame(at, column: str) -> pd.DataFrame:
    """The dataframe element holding ``column`` (AppTest exposes no dataframe keys)."""
    (frame,) = [d.value for d in at.dataframe if column in d.value.columns]
    return frame


def _cards(at) -> list[str]:
    return [m.value for m in at.markdown if m.value.startswith("**Pilot ") and " · " in m.value]


def test_export_pages_filters_and_shows_one_card(sixty, monkeypatch):
    built = []

    from metrics import csvio

    real = csvio.to_csv_text

    def counting(frame):
        built.append(len(frame))
        return real(frame)

    monkeypatch.setattr(csvio, "to_csv_text", counting)
    at = open_app(EXPORT_PAGE, as_of=sixty.as_of)
    assert built == []  # no CSV is built until a download button is clicked
    pilots = _frame(at, "Open items")
    assert list(pilots["Pilot"]) == [f"Pilot {i:04d}" for i in range(25)]
    assert len(_frame(at, "Improvement %")) == 25 * 2  # their metrics
    assert len(_cards(at)) == 1  # one decision card, not sixty
    assert "Pilots 1–25 of 60 shown." in [c.value for c in at.caption]

    at.number_input(key="ex_page").set_value(3).run(timeout=30)
    assert list(_frame(at, "Open items")["Pilot"]) == [f"Pilot {i:04d}" for i in range(50, 60)]
    assert "Pilots 51–60 of 60 shown." in [c.value for c in at.caption]

    at.multiselect(key="ex_vendor").set_value(["Vendor 03"]).run(timeout=30)
    # vendors are assigned round-robin over 40: pilots 3 and 43
    assert list(_frame(at, "Open items")["Pilot"]) == ["Pilot 0003", "Pilot 0043"]
    assert at.selectbox(key="export_card_pilot").options == ["Pilot 0003", "Pilot 0043"]

    at.multiselect(key="ex_vendor").set_value([]).run(timeout=30)
    at.text_input(key="ex_search").set_value("pilot 0007").run(timeout=30)
    assert list(_frame(at, "Open items")["Pilot"]) == ["Pilot 0007"]
    assert _cards(at)[0].startswith("**Pilot 0007**")
    assert not at.exception


def test_export_metrics_table_shows_numbers_rounded_as_its_caption_says(sixty):
    """Issue 10 item 14: values as the reasons show them (1 decimal from 10 up, 3
    significant digits below), percentages to 1 decimal; the CSV keeps full precision."""
    at = open_app(EXPORT_PAGE, as_of=sixty.as_of)
    assert any("Numbers are rounded here for reading" in c.value for c in at.caption)
    shown = _frame(at, "Improvement %")
    for col in ("Baseline", "Target", "Current"):
        values = shown[col].dropna()
        assert len(values) and all(v == float(C.fmt_number(v)) for v in values), col
    for col in ("Change %", "Improvement %"):
        values = shown[col].dropna()
        assert len(values) and all(v == round(v, 1) for v in values), col
    # rounding happened: the stored means have more digits than shown
    import os

    from metrics import service
    from metrics.db import make_engine, session_scope

    engine = make_engine(os.environ["PILOTGATE_DATABASE_URL"])
    with session_scope(engine) as s:
        full = service.summary_export_frame(s, as_of=sixty.as_of)
    engine.dispose()
    first = full[full["pilot"] == "Pilot 0000"]["current"].dropna()
    assert any(v != float(C.fmt_number(v)) for v in first)


def test_summary_and_vendors_from_a_given_evaluation_equal_their_own(sixty):
    """The pages pass their cached evaluation instead of evaluating the portfolio again."""
    import os

    from metrics import service
    from metrics.db import make_engine, session_scope

    engine = make_engine(os.environ["PILOTGATE_DATABASE_URL"])
    with session_scope(engine) as s:
        ev = service.evaluate(s, as_of=sixty.as_of)
        pd.testing.assert_frame_equal(
            service.summary_export_frame(s, as_of=sixty.as_of, evaluation=ev),
            service.summary_export_frame(s, as_of=sixty.as_of),
        )
        pd.testing.assert_frame_equal(
            service.vendors_frame(s, as_of=sixty.as_of, evaluation=ev),
            service.vendors_frame(s, as_of=sixty.as_of),
        )
    engine.dispose()
