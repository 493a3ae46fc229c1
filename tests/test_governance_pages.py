"""The governance UI through ``streamlit.testing.v1.AppTest``: the Pilot page's checklist
and decision sections, the Export page's decision form and stage-move control, and the
Portfolio page's view of decisions.

Same approach as ``tests/test_pages.py``: each test gets its own SQLite database in
``tmp_path`` (``PILOTGATE_DATABASE_URL``), settings and Streamlit caches cleared before
and after; the acting user is ``page-tester`` (an admin unless a users row says else).
"""

from __future__ import annotations

import re
from datetime import date

import pandas as pd
import pytest
from sqlmodel import Session, select
from streamlit.testing.v1 import AppTest

from metrics import governance as G
from metrics import service, store
from metrics.db import init_db, make_engine
from metrics.models import AppUser, ChecklistItem, Decision, Pilot
from tests.apptest_helpers import clear_caches as _clear_caches
from tests.apptest_helpers import open_app
from tests.factories import add_weeks, make_pilot, metric_id, metric_in

PILOT_PAGE = "dashboard/pages/pilot.py"
EXPORT_PAGE = "dashboard/pages/export.py"

START = date(2012, 1, 2)
AS_OF = date(2012, 2, 20)

UNMET = ":material/check_box_outline_blank: not yet: "  # a gate condition not met
MET = ":material/check_box: met: "


@pytest.fixture(autouse=True)
def _today_is_as_of(monkeypatch):
    """Decisions are judged "today": these tests live on AS_OF."""
    monkeypatch.setattr(service, "today", lambda: AS_OF)


HELPDESK = "Helpdesk triage assistant"
INVOICE = "Invoice extraction copilot"
FRAUD = "Fraud analyst copilot"
ACTOR = "page-tester"


@pytest.fixture
def db(tmp_path, monkeypatch):
    """Helpdesk (go as of 2012-02-20), Invoice (extend), Fraud (no data, decision date
    2012-03-02: 11 days after the as-of date)."""
    url = f"sqlite:///{tmp_path / 'gov.db'}"
    engine = make_engine(url)
    init_db(engine)
    with Session(engine, expire_on_commit=False) as s:
        make_pilot(
            s,
            HELPDESK,
            metrics=[metric_in("resolution_time", baseline=118.0, target=80.0, max_value=1000.0)],
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
        make_pilot(s, FRAUD, vendor="Sentinel Labs", decision_date=date(2012, 3, 2))
        add_weeks(s, metric_id(s, HELPDESK, "resolution_time"), START, [100, 90, 80, 76, 72, 72])
        add_weeks(
            s,
            metric_id(s, INVOICE, "analyst_productivity"),
            START,
            [10.5, 11.0, None, 11.5, 12.0, 12.4, 12.6],
        )
        s.commit()
        ids = store.pilots_frame(s).set_index("pilot")["pilot_id"]
    monkeypatch.setenv("PILOTGATE_DATABASE_URL", url)
    monkeypatch.setenv("PILOTGATE_ACTOR", ACTOR)
    _clear_caches()
    yield {
        "engine": engine,
        "helpdesk": int(ids[HELPDESK]),
        "invoice": int(ids[INVOICE]),
        "fraud": int(ids[FRAUD]),
    }
    _clear_caches()
    engine.dispose()


def _role(db, role: str) -> None:
    with Session(db["engine"]) as s:
        s.add(AppUser(name=ACTOR, role=role))
        s.commit()


def _app(page: str | None = None, *, as_of: date = AS_OF, pilot_id: int | None = None):
    return open_app(page, as_of=as_of, pilot_id=pilot_id)


def _unescape(md: str) -> str:
    return re.sub(r"\\(.)", r"\1", str(md)).replace("\u200b", "")


def _texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [x.value for x in at.info] + [x.value for x in at.warning]
    parts += [x.value for x in at.success] + [x.value for x in at.error]
    parts += [h.value for h in at.subheader]
    return "\n".join(_unescape(p) for p in parts)


def _frame_with(at: AppTest, *columns: str) -> pd.DataFrame:
    found = [d.value for d in at.dataframe if set(columns) <= set(d.value.columns)]
    assert len(found) == 1, [list(d.value.columns) for d in at.dataframe]
    return found[0]


def _button(at: AppTest, label: str):
    (b,) = [b for b in at.button if b.label == label]
    return b


def _items(db, pilot: str = "helpdesk") -> pd.DataFrame:
    with Session(db["engine"]) as s:
        return G.checklist_frame(s, pilot_id=db[pilot])


def _decisions(db) -> list[Decision]:
    with Session(db["engine"]) as s:
        return list(s.exec(select(Decision).order_by(Decision.id)).all())


# =========================================================================== Pilot page


def test_pilot_page_lists_the_checklist_and_its_blockers(db):
    at = _app(PILOT_PAGE, pilot_id=db["helpdesk"])
    table = _frame_with(at, "Done", "Item", "Evidence")
    assert list(table["Item"]) == list(G.DEFAULT_CHECKLIST)
    assert not table["Done"].any()
    text = _texts(at)
    assert "Readiness and governance checklist" in text
    assert "0 of 11 items ticked with evidence." in text
    assert "11 open items block moving to production:" in text
    assert "- Knowledge-transfer plan agreed" in text
    # the stage gates ahead, explained
    assert "**Stage gate pilot → production** (blocked)" in text
    # a neutral checklist in Material icons: met / not yet
    assert UNMET + "latest recorded decision must be go" in text
    assert UNMET + "every checklist item must be ticked with evidence" in text
    assert UNMET + "latest recorded decision must be no-go" in text  # the gate to stopped
    assert "No decision recorded yet." in text


def test_editor_ticks_an_item_with_evidence(db):
    _role(db, "editor")
    pid = db["helpdesk"]
    items = _items(db)
    target = int(items["item_id"].iloc[1])
    at = _app(PILOT_PAGE, pilot_id=pid)
    at.text_area(key=f"checklist-evidence-{target}-0").set_value("DPIA-2026-014 signed")
    at.button(key=f"checklist-tick-save-{target}-0").click().run(timeout=30)
    assert not at.exception
    row = _items(db).set_index("item_id").loc[target]
    assert (bool(row["done"]), row["evidence"], row["by"], row["version"]) == (
        True,
        "DPIA-2026-014 signed",
        ACTOR,
        2,
    )
    text = _texts(at)
    assert "Ticked: Data accessible, lawful and of sufficient quality" in text
    assert "1 of 11 items ticked with evidence." in text
    table = _frame_with(at, "Done", "Item", "Evidence").set_index("Item")
    assert table.loc["Data accessible, lawful and of sufficient quality", "Evidence"] == (
        "DPIA-2026-014 signed"
    )
    assert table.loc["Data accessible, lawful and of sufficient quality", "By"] == ACTOR
    # the forms are empty again (a new generation of widget keys); the ticked item
    # now offers re-opening instead
    assert at.text_area(key=f"checklist-evidence-{int(items['item_id'].iloc[0])}-1").value == ""
    assert at.button(key=f"checklist-untick-save-{target}-1").label == "Re-open item"


def test_ticking_without_evidence_shows_the_reason_and_saves_nothing(db):
    first = int(_items(db)["item_id"].iloc[0])
    at = _app(PILOT_PAGE, pilot_id=db["helpdesk"])
    at.text_area(key=f"checklist-evidence-{first}-0").set_value("   ")
    at.button(key=f"checklist-tick-save-{first}-0").click().run(timeout=30)
    assert not at.exception
    assert "needs evidence to be ticked" in _unescape(at.error[0].value)
    assert not _items(db)["done"].any()
    assert (_items(db)["version"] == 1).all()


def test_ticking_an_item_someone_else_changed_is_refused(db):
    pid = db["helpdesk"]
    first = int(_items(db)["item_id"].iloc[0])
    at = _app(PILOT_PAGE, pilot_id=pid)
    with Session(db["engine"]) as s:  # another user ticks it meanwhile
        G.tick_checklist_item(session=s, actor="other", item_id=first, evidence="theirs")
        s.commit()
    at.text_area(key=f"checklist-evidence-{first}-0").set_value("mine")
    at.button(key=f"checklist-tick-save-{first}-0").click().run(timeout=30)
    assert "was changed by other meanwhile" in _unescape(at.error[0].value)
    row = _items(db).set_index("item_id").loc[first]
    assert (row["evidence"], row["by"]) == ("theirs", "other")


def test_editor_adds_and_reopens_items(db):
    pid = db["helpdesk"]
    at = _app(PILOT_PAGE, pilot_id=pid)
    at.text_input(key=f"checklist-add-text-{pid}-0").set_value("Red-team test passed")
    _button(at, "Add item").click().run(timeout=30)
    assert "Added: Red-team test passed" in _texts(at)
    assert list(_items(db)["item"])[-1] == "Red-team test passed"
    # a duplicate is refused with the reason
    at.text_input(key=f"checklist-add-text-{pid}-1").set_value("red-team test PASSED")
    _button(at, "Add item").click().run(timeout=30)
    assert "already has the item 'Red-team test passed'" in _unescape(at.error[0].value)
    assert len(_items(db)) == 12
    # re-open a ticked item
    first = int(_items(db)["item_id"].iloc[0])
    with Session(db["engine"]) as s:
        G.tick_checklist_item(session=s, actor=ACTOR, item_id=first, evidence="charter")
        s.commit()
    at = _app(PILOT_PAGE, pilot_id=pid)
    at.text_input(key=f"checklist-reason-{first}-0").set_value("charter withdrawn")
    at.button(key=f"checklist-untick-save-{first}-0").click().run(timeout=30)
    assert not at.exception
    row = _items(db).set_index("item_id").loc[first]
    assert (bool(row["done"]), row["evidence"], row["by"], row["version"]) == (
        False,
        "",
        ACTOR,
        3,
    )


def test_viewer_sees_the_checklist_without_controls(db):
    _role(db, "viewer")
    at = _app(PILOT_PAGE, pilot_id=db["helpdesk"])
    assert len(_frame_with(at, "Done", "Item", "Evidence")) == 11
    labels = [b.label for b in at.button]
    assert "Tick with evidence" not in labels
    assert "Add item" not in labels
    assert "Ticking, re-opening and adding items needs the editor role." in _texts(at)


def test_pilot_from_before_checklists_gets_its_defaults_when_an_editor_opens_it(db):
    with Session(db["engine"]) as s:
        s.add(Pilot(name="Legacy", start_date=START, decision_date=date(2012, 6, 29)))
        s.commit()
        legacy = s.exec(select(Pilot.id).where(Pilot.name == "Legacy")).one()
    _role(db, "viewer")
    at = _app(PILOT_PAGE, pilot_id=legacy)
    # a viewer sees every default item as open, nothing is stored
    assert len(_frame_with(at, "Done", "Item", "Evidence")) == 11
    assert "an editor opening this page stores them" in _texts(at)
    with Session(db["engine"]) as s:
        assert not s.exec(select(ChecklistItem).where(ChecklistItem.pilot_id == legacy)).all()
        user = s.exec(select(AppUser).where(AppUser.name == ACTOR)).one()
        user.role = "editor"
        s.commit()
    _clear_caches()
    at = _app(PILOT_PAGE, pilot_id=legacy)
    with Session(db["engine"]) as s:
        stored = G.checklist_frame(s, pilot_id=legacy)
    assert list(stored["item"]) == list(G.DEFAULT_CHECKLIST)
    assert [b.label for b in at.button if b.label == "Tick with evidence"]


def test_pilot_page_shows_the_decision_history(db):
    pid = db["helpdesk"]
    with Session(db["engine"]) as s:
        service.record_decision(session=s, actor="ada", pilot_id=pid, decision="go", as_of=AS_OF)
        service.record_decision(
            session=s,
            actor="bo",
            pilot_id=pid,
            decision="extend",
            rationale="Security review *pending*",
            as_of=AS_OF,
        )
        s.commit()
    at = _app(PILOT_PAGE, pilot_id=pid)
    text = _texts(at)
    assert ":orange-badge[Decision: extend]" in text
    assert "Recorded by **bo** on" in text
    assert "judged as of 2012-02-20 (recommendation then: go)" in text
    assert "**Rationale:** Security review *pending*" in text  # literal, not emphasis
    history = _frame_with(at, "Decision", "Recommendation then", "Rationale")
    assert list(history["Decision"]) == ["extend", "go"]  # newest first
    assert list(history["Decided by"]) == ["bo", "ada"]
    assert list(history["Judged as of"]) == ["2012-02-20", "2012-02-20"]
    assert list(history["Rationale"]) == ["Security review *pending*", ""]
    assert UNMET + "latest recorded decision must be go" in text
    assert "**Stage gate pilot → stopped** (blocked)" in text


# =========================================================================== Export page


def test_admin_records_a_decision_with_its_snapshot(db):
    pid = db["helpdesk"]
    at = _app(EXPORT_PAGE, pilot_id=pid)
    assert "Record a decision" in _texts(at)
    assert at.selectbox(key="decide_pilot").value == pid
    assert at.radio(key=f"decide-choice-{pid}-0").value == "go"  # the recommendation
    _button(at, "Save decision").click().run(timeout=30)
    assert not at.exception
    (d,) = _decisions(db)
    assert (d.pilot_id, d.decision, d.recommendation, d.rationale, d.as_of, d.decided_by) == (
        pid,
        "go",
        "go",
        "",
        AS_OF,
        ACTOR,
    )
    with Session(db["engine"]) as s:
        (snap,) = G.decision_snapshot(s, decision_id=d.id)
    assert (snap["pilot"], snap["current"], snap["recommendation"], snap["as_of"]) == (
        HELPDESK,
        75.0,
        "go",
        "2012-02-20",
    )
    text = _texts(at)
    assert f"Decision go recorded for {HELPDESK} (recommendation go as of 2012-02-20)." in text
    assert "Latest decision: go by page-tester" in text


def test_a_decision_against_the_recommendation_needs_a_rationale_on_the_page(db):
    pid = db["helpdesk"]
    at = _app(EXPORT_PAGE, pilot_id=pid)
    at.radio(key=f"decide-choice-{pid}-0").set_value("no_go")
    _button(at, "Save decision").click().run(timeout=30)
    assert not at.exception
    # the store's own refusal, once ("Decision not saved: …", not "Not saved: decision
    # not saved: …"), with the UI's word for no_go
    assert _unescape(at.error[0].value) == (
        "Decision not saved: no-go on 'Helpdesk triage assistant' differs from the "
        "recommendation go as of 2012-02-20; write a rationale that says why"
    )
    assert _decisions(db) == []
    at.text_area(key=f"decide-rationale-{pid}-0").set_value("Vendor lost its certification")
    _button(at, "Save decision").click().run(timeout=30)
    (d,) = _decisions(db)
    assert (d.decision, d.recommendation, d.rationale) == (
        "no_go",
        "go",
        "Vendor lost its certification",
    )


def test_decide_for_another_pilot_shows_its_recommendation(db):
    at = _app(EXPORT_PAGE, pilot_id=db["helpdesk"])
    at.selectbox(key="decide_pilot").set_value(db["fraud"]).run(timeout=30)
    text = _texts(at)
    assert ":gray-badge[Recommendation: insufficient data]" in text
    # no decision kind matches "insufficient data": nothing is preselected
    assert at.radio(key=f"decide-choice-{db['fraud']}-0").value is None
    _button(at, "Save decision").click().run(timeout=30)
    assert "Not saved: choose go, extend or no-go." in _unescape(at.error[0].value)
    assert _decisions(db) == []


@pytest.mark.parametrize("role", ["viewer", "editor"])
def test_decision_form_and_stage_move_are_hidden_from_non_admins(db, role):
    _role(db, role)
    at = _app(EXPORT_PAGE, pilot_id=db["helpdesk"])
    text = _texts(at)
    assert "Record a decision" not in text
    assert "Move a pilot to its next stage" not in text
    labels = [b.label for b in at.button]
    assert "Save decision" not in labels
    assert not [x for x in labels if x.startswith("Move to")]
    # the summary itself is still there
    assert "Download summary CSV" in [b.label for b in at.get("download_button")]


def test_stage_move_explains_the_gate_and_moves_when_it_is_clear(db):
    pid = db["helpdesk"]
    at = _app(EXPORT_PAGE, pilot_id=pid)
    assert at.selectbox(key=f"stage-to-{pid}-0").value == "production"
    text = _texts(at)
    assert "Stage gate pilot → production:" in text
    # before any click: the requirements as a neutral checklist and what to do first,
    # no refusal ("not moved … Nothing was changed.") yet
    assert UNMET + "latest recorded decision must be go" in text
    assert "Before moving: record a go decision first (no decision is recorded yet)" in text
    assert "not moved" not in text and "Nothing was changed" not in text
    assert not at.error
    # the refusal comes once the move is tried, in the store's words, said once
    _button(at, "Move to production").click().run(timeout=30)
    (refused,) = [_unescape(e.value) for e in at.error]
    assert refused.startswith(
        "'Helpdesk triage assistant' not moved from pilot to production: record a go "
        "decision first (no decision is recorded yet); tick the 11 open checklist"
    )
    assert refused.endswith("Nothing was changed.")
    with Session(db["engine"]) as s:
        assert s.get(Pilot, pid).stage == "pilot"
    with Session(db["engine"]) as s:
        service.record_decision(session=s, actor=ACTOR, pilot_id=pid, decision="go", as_of=AS_OF)
        for item_id in G.checklist_frame(s, pilot_id=pid)["item_id"]:
            G.tick_checklist_item(session=s, actor=ACTOR, item_id=int(item_id), evidence="ok")
        s.commit()
    at = _app(EXPORT_PAGE, pilot_id=pid)
    assert MET + "every checklist item must be ticked with evidence" in _texts(at)
    at.text_input(key=f"stage-note-{pid}-0").set_value("steering committee 2012-02-20")
    _button(at, "Move to production").click().run(timeout=30)
    assert not at.exception
    with Session(db["engine"]) as s:
        assert s.get(Pilot, pid).stage == "production"
        ev = store.stage_events_frame(s, pilot_id=pid)
    assert list(ev["to_stage"]) == ["pilot", "production"]
    assert ev["note"].iloc[-1] == "steering committee 2012-02-20"
    assert f"{HELPDESK} moved from pilot to production." in _texts(at)


def test_stopping_shows_what_to_record_first(db):
    pid = db["invoice"]
    at = _app(EXPORT_PAGE, pilot_id=pid)
    at.selectbox(key=f"stage-to-{pid}-0").set_value("stopped").run(timeout=30)
    assert "record a no-go decision first (no decision is recorded yet)" in _texts(at)
    assert not at.error  # nothing refused before the move is tried


def test_export_cards_show_the_recorded_decision_and_open_items(db):
    with Session(db["engine"]) as s:
        service.record_decision(
            session=s, actor="ada", pilot_id=db["helpdesk"], decision="go", as_of=AS_OF
        )
        s.commit()
    at = _app(EXPORT_PAGE, pilot_id=db["helpdesk"])
    text = _texts(at)
    assert "Recorded decision: go by ada" in text
    assert "11 open checklist items block moving to production." in text


# =========================================================================== Portfolio page


def test_portfolio_view_of_decisions(db):
    with Session(db["engine"]) as s:
        # a go against Invoice's extend recommendation: a contradiction
        service.record_decision(
            session=s,
            actor="ada",
            pilot_id=db["invoice"],
            decision="go",
            rationale="Good enough for AP",
            as_of=AS_OF,
        )
        service.record_decision(
            session=s, actor="ada", pilot_id=db["helpdesk"], decision="go", as_of=AS_OF
        )
        s.commit()
    at = _app()
    counts = _frame_with(at, "Recommendation", "discovery", "pilot", "Total").set_index(
        "Recommendation"
    )
    assert counts.loc["go", "pilot"] == 1
    assert counts.loc["extend", "pilot"] == 1
    assert counts.loc["insufficient data", "pilot"] == 1
    assert counts.loc["no-go", "Total"] == 0
    assert int(counts["Total"].sum()) == 3
    tiles = {m.label: m.value for m in at.metric}
    assert (tiles["Decided go"], tiles["Decided extend"], tiles["No decision"]) == ("2", "0", "1")
    due = _frame_with(at, "Decision due", "Recorded decision")
    assert list(due["Pilot"]) == [FRAUD]  # decision date 2012-03-02: 11 days ahead
    assert list(due["Decision due"]) == ["in 11 days"]
    assert list(due["Recorded decision"]) == ["—"]
    against = _frame_with(at, "Recommendation now", "Recorded decision")
    assert list(against["Pilot"]) == [INVOICE]
    assert list(against["Recommendation now"]) == ["extend"]
    assert list(against["Recorded decision"]) == ["go"]
    assert list(against["Rationale"]) == ["Good enough for AP"]


def test_portfolio_view_without_decisions(db):
    at = _app(as_of=date(2012, 8, 1))
    text = _texts(at)
    assert "No pilot's decision date falls within 2 weeks of 2012-08-01." in text
    assert "Every recorded decision matches its pilot's current recommendation." in text
    tiles = {m.label: m.value for m in at.metric}
    assert tiles["No decision"] == "3"
