"""Readiness checklist, signed decisions and stage gates (metrics.governance), on SQLite
and PostgreSQL: exact stored rows, snapshots, audit records, and every refusal."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from metrics import computations as C
from metrics import governance as G
from metrics import service, store
from metrics.errors import PermissionDenied, StoreError
from metrics.models import (
    AppUser,
    AuditEvent,
    ChecklistItem,
    Decision,
    Pilot,
    StageEvent,
)
from tests.factories import add_weeks, make_pilot, metric_id, metric_in

START = date(2012, 1, 2)
AS_OF = date(2012, 2, 20)


@pytest.fixture(autouse=True)
def _today_is_as_of(monkeypatch):
    """Decisions are judged "today": these tests live on AS_OF."""
    monkeypatch.setattr(service, "today", lambda: AS_OF)


HELPDESK = "Helpdesk triage assistant"
INVOICE = "Invoice extraction copilot"
ADMIN = "ada"  # auth mode none: a name without a users row is an admin
ALL_OPEN = "; ".join(G.DEFAULT_CHECKLIST)


def count(session: Session, model, *where) -> int:
    stmt = sa.select(sa.func.count()).select_from(model)
    for w in where:
        stmt = stmt.where(w)
    return session.execute(stmt).scalar_one()


def audits(session: Session, entity: str, action: str | None = None) -> list[AuditEvent]:
    stmt = select(AuditEvent).where(AuditEvent.entity == entity).order_by(AuditEvent.id)
    if action is not None:
        stmt = stmt.where(AuditEvent.action == action)
    return list(session.exec(stmt).all())


def add_user(session: Session, name: str, role: str) -> None:
    session.add(AppUser(name=name, role=role))
    session.flush()


@pytest.fixture
def helpdesk(session) -> int:
    """Helpdesk pilot: resolution_time (baseline 118, target 80) reported 2012-W01..W06
    (mean of the last 4 = 75 h, met) -> recommendation go as of 2012-02-20."""
    pid = make_pilot(
        session,
        HELPDESK,
        metrics=[metric_in("resolution_time", baseline=118.0, target=80.0, max_value=1000.0)],
    )
    add_weeks(
        session, metric_id(session, HELPDESK, "resolution_time"), START, [100, 90, 80, 76, 72, 72]
    )
    session.commit()
    return pid


def tick_all(session: Session, pilot_id: int, actor: str = ADMIN) -> None:
    items = G.checklist_frame(session, pilot_id=pilot_id)
    for item_id in items.loc[~items["done"], "item_id"]:
        G.tick_checklist_item(
            session=session, actor=actor, item_id=int(item_id), evidence=f"evidence {item_id}"
        )


# =========================================================================== checklist


def test_new_pilot_gets_the_default_checklist(session, helpdesk):
    rows = session.exec(
        select(ChecklistItem).where(ChecklistItem.pilot_id == helpdesk).order_by(ChecklistItem.id)
    ).all()
    assert [r.item for r in rows] == list(G.DEFAULT_CHECKLIST)
    assert len(rows) == 11
    assert [r.position for r in rows] == list(range(1, 12))
    assert {(r.done, r.evidence, r.by, r.at, r.version) for r in rows} == {(False, "", "", None, 1)}
    (audit,) = audits(session, "checklist")
    assert (audit.actor, audit.entity_id, audit.action) == ("tester", helpdesk, "create_defaults")
    assert json.loads(audit.detail) == {"pilot": HELPDESK, "items": list(G.DEFAULT_CHECKLIST)}
    assert G.open_checklist_items(session) == {helpdesk: list(G.DEFAULT_CHECKLIST)}
    # a second save of the same pilot adds nothing
    make_pilot(session, HELPDESK, metrics=[])
    session.commit()
    assert count(session, ChecklistItem) == 11


def test_pilot_from_before_checklists_counts_all_defaults_open(session):
    # a pilot row as a migration leaves it: no checklist items stored
    session.add(Pilot(name="Legacy", start_date=START, decision_date=date(2012, 6, 29)))
    session.commit()
    pid = session.exec(select(Pilot.id).where(Pilot.name == "Legacy")).one()
    assert G.checklist_frame(session, pilot_id=pid).empty
    assert G.open_checklist_items(session, pilot_id=pid) == {pid: list(G.DEFAULT_CHECKLIST)}
    gate = G.stage_gate(session, pilot_id=pid, to_stage="production")
    assert ("every checklist item must be ticked with evidence", False) in gate.requirements
    assert G.ensure_default_checklist(session=session, actor=ADMIN, pilot_id=pid) == 11
    assert G.ensure_default_checklist(session=session, actor=ADMIN, pilot_id=pid) == 0
    session.commit()
    assert list(G.checklist_frame(session, pilot_id=pid)["item"]) == list(G.DEFAULT_CHECKLIST)


def test_tick_records_evidence_who_when_and_version(session, helpdesk):
    items = G.checklist_frame(session, pilot_id=helpdesk)
    first = int(items["item_id"].iloc[0])
    before = datetime.now(UTC)
    assert G.tick_checklist_item(
        session=session,
        actor="ed",
        item_id=first,
        evidence="  Pilot charter v2, section 3  ",
        expected_version=1,
    )
    session.commit()
    row = session.get(ChecklistItem, first)
    session.refresh(row)
    assert (row.done, row.evidence, row.by, row.version) == (
        True,
        "Pilot charter v2, section 3",
        "ed",
        2,
    )
    assert row.at.tzinfo is not None and before <= row.at <= datetime.now(UTC)
    (audit,) = audits(session, "checklist", "tick")
    detail = json.loads(audit.detail)
    assert (audit.actor, audit.entity_id) == ("ed", first)
    assert detail["item"] == G.DEFAULT_CHECKLIST[0]
    assert detail["before"] == {"done": False, "evidence": "", "by": "", "at": None}
    assert detail["after"]["done"] is True
    assert detail["after"]["evidence"] == "Pilot charter v2, section 3"
    assert detail["after"]["by"] == "ed"
    # the same evidence again changes nothing
    assert not G.tick_checklist_item(
        session=session, actor="ed", item_id=first, evidence="Pilot charter v2, section 3"
    )
    assert len(audits(session, "checklist", "tick")) == 1
    open_now = G.open_checklist_items(session, pilot_id=helpdesk)[helpdesk]
    assert open_now == list(G.DEFAULT_CHECKLIST[1:])


def test_untick_is_recorded_with_who_when_and_reason(session, helpdesk):
    first = int(G.checklist_frame(session, pilot_id=helpdesk)["item_id"].iloc[0])
    G.tick_checklist_item(session=session, actor="ed", item_id=first, evidence="charter")
    session.commit()
    assert G.untick_checklist_item(
        session=session, actor="ann", item_id=first, reason="charter withdrawn", expected_version=2
    )
    session.commit()
    row = session.get(ChecklistItem, first)
    session.refresh(row)
    assert (row.done, row.evidence, row.by, row.version) == (False, "", "ann", 3)
    assert row.at is not None
    (audit,) = audits(session, "checklist", "untick")
    detail = json.loads(audit.detail)
    assert audit.actor == "ann"
    assert detail["reason"] == "charter withdrawn"
    assert detail["before"]["evidence"] == "charter"
    assert detail["before"]["by"] == "ed"
    assert detail["after"] == {
        "done": False,
        "evidence": "",
        "by": "ann",
        "at": detail["after"]["at"],
    }
    with pytest.raises(StoreError, match="is already open"):
        G.untick_checklist_item(session=session, actor="ann", item_id=first)


def test_ticking_without_evidence_is_refused_and_writes_nothing(session, helpdesk):
    first = int(G.checklist_frame(session, pilot_id=helpdesk)["item_id"].iloc[0])
    for evidence in ("", "   "):
        with pytest.raises(StoreError) as exc:
            G.tick_checklist_item(session=session, actor="ed", item_id=first, evidence=evidence)
        assert str(exc.value) == (
            "checklist item not ticked: 'Use case defined with a measurable success metric' "
            "needs evidence to be ticked; write what shows it is in place "
            "(a document, a link, a name)"
        )
    session.rollback()
    row = session.get(ChecklistItem, first)
    session.refresh(row)
    assert (row.done, row.version) == (False, 1)
    assert audits(session, "checklist", "tick") == []


def test_tick_refuses_a_stale_version_and_an_unknown_item(session, helpdesk):
    first = int(G.checklist_frame(session, pilot_id=helpdesk)["item_id"].iloc[0])
    G.tick_checklist_item(session=session, actor="ed", item_id=first, evidence="a")
    session.commit()
    with pytest.raises(StoreError, match="was changed by ed meanwhile; reload the page"):
        G.tick_checklist_item(
            session=session, actor="ann", item_id=first, evidence="b", expected_version=1
        )
    with pytest.raises(StoreError, match="no checklist item with id 99999"):
        G.tick_checklist_item(session=session, actor="ed", item_id=99999, evidence="x")
    session.rollback()
    row = session.get(ChecklistItem, first)
    session.refresh(row)
    assert (row.evidence, row.by, row.version) == ("a", "ed", 2)


def test_add_item_appends_and_is_audited(session, helpdesk):
    new_id = G.add_checklist_item(
        session=session, actor="ed", pilot_id=helpdesk, item="  Red-team test passed  "
    )
    session.commit()
    row = session.get(ChecklistItem, new_id)
    assert (row.pilot_id, row.position, row.item, row.done, row.version) == (
        helpdesk,
        12,
        "Red-team test passed",
        False,
        1,
    )
    (audit,) = audits(session, "checklist", "create")
    assert (audit.actor, audit.entity_id) == ("ed", new_id)
    assert json.loads(audit.detail) == {
        "pilot": HELPDESK,
        "after": {"item": "Red-team test passed", "position": 12},
    }
    assert G.open_checklist_items(session)[helpdesk][-1] == "Red-team test passed"


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("", "checklist item not added: item: item must not be empty"),
        ("   ", "checklist item not added: item: item must not be empty"),
        ("two\nlines", "item must not contain control characters or line breaks"),
        ("x" * 501, "checklist item not added: item: String should have at most 500"),
        (
            "red-team TEST  passed",
            "'Helpdesk triage assistant' already has the item 'Red-team test passed'; "
            "write a different item or tick the existing one",
        ),
        (
            "leadership backing for governance",
            "already has the item 'Leadership backing for governance'",
        ),
    ],
    ids=["empty", "blank", "line-break", "too-long", "duplicate", "duplicate-default"],
)
def test_bad_checklist_items_are_refused(session, helpdesk, item, message):
    G.add_checklist_item(
        session=session, actor="ed", pilot_id=helpdesk, item="Red-team test passed"
    )
    session.commit()
    with pytest.raises(StoreError) as exc:
        G.add_checklist_item(session=session, actor="ed", pilot_id=helpdesk, item=item)
    assert message in str(exc.value)
    session.rollback()
    assert count(session, ChecklistItem) == 12
    assert len(audits(session, "checklist", "create")) == 1


def test_checklist_writes_need_the_editor_role(session, helpdesk):
    add_user(session, "vic", "viewer")
    add_user(session, "ed", "editor")
    session.commit()
    first = int(G.checklist_frame(session, pilot_id=helpdesk)["item_id"].iloc[0])
    with pytest.raises(
        PermissionDenied, match="vic is a viewer: ticking a checklist item needs the editor role"
    ):
        G.tick_checklist_item(session=session, actor="vic", item_id=first, evidence="x")
    with pytest.raises(PermissionDenied, match="vic is a viewer: adding a checklist item needs"):
        G.add_checklist_item(session=session, actor="vic", pilot_id=helpdesk, item="x")
    assert G.tick_checklist_item(session=session, actor="ed", item_id=first, evidence="doc")
    session.commit()
    assert session.get(ChecklistItem, first).by == "ed"


def test_checklist_of_an_unknown_pilot_is_refused(session, helpdesk):
    with pytest.raises(StoreError, match="no pilot with id 99999: pick an existing pilot"):
        G.add_checklist_item(session=session, actor="ed", pilot_id=99999, item="x")
    with pytest.raises(StoreError, match="no pilot with id 99999"):
        G.ensure_default_checklist(session=session, actor="ed", pilot_id=99999)
    session.rollback()
    assert count(session, ChecklistItem) == 11


# =========================================================================== decisions


@pytest.mark.parametrize(
    ("as_of", "rationale", "message"),
    [
        (
            date(2012, 2, 13),
            "",
            "it is judged on the evidence as of 2012-02-13, not today (2012-02-20); write a "
            "rationale",
        ),
        (date(2012, 2, 21), "meeting tomorrow", "the evidence date 2012-02-21 is after today"),
    ],
    ids=["back-dated without rationale", "future evidence date"],
)
def test_back_dated_or_future_decisions_are_refused(session, helpdesk, as_of, rationale, message):
    """The as-of date cannot be used to dodge the rationale rule (QA: a decision
    recorded as of a day whose recommendation matched, while today's differs)."""
    with pytest.raises(StoreError, match=re.escape(message)):
        service.record_decision(
            session=session,
            actor=ADMIN,
            pilot_id=helpdesk,
            decision="go",
            rationale=rationale,
            as_of=as_of,
        )
    session.rollback()
    assert count(session, Decision) == 0


def test_back_dated_decision_with_a_rationale_is_kept_with_its_date(session, helpdesk):
    res = service.record_decision(
        session=session,
        actor=ADMIN,
        pilot_id=helpdesk,
        decision="go",
        rationale="steering committee of 13 Feb",
        as_of=date(2012, 2, 13),
    )
    session.commit()
    row = session.get(Decision, res.decision_id)
    assert (row.as_of, row.rationale) == (date(2012, 2, 13), "steering committee of 13 Feb")


def test_decision_matching_the_recommendation_stores_the_snapshot(session, helpdesk):
    before = datetime.now(UTC)
    res = service.record_decision(
        session=session, actor=ADMIN, pilot_id=helpdesk, decision="go", as_of=AS_OF
    )
    session.commit()
    assert (res.decision, res.recommendation, res.snapshot_rows) == ("go", "go", 1)
    row = session.get(Decision, res.decision_id)
    assert (row.pilot_id, row.decision, row.recommendation, row.rationale, row.as_of) == (
        helpdesk,
        "go",
        "go",
        "",
        AS_OF,
    )
    assert row.decided_by == ADMIN
    assert before <= row.decided_at <= datetime.now(UTC)
    (snap,) = json.loads(row.snapshot)
    assert set(service.SUMMARY_EXPORT_COLUMNS) <= set(snap)
    assert {k: snap[k] for k in ("pilot", "vendor", "stage", "metric", "role", "unit")} == {
        "pilot": HELPDESK,
        "vendor": "Acme AI",
        "stage": "pilot",
        "metric": "resolution_time",
        "role": "primary",
        "unit": "h",
    }
    assert (snap["baseline"], snap["target"], snap["current"], snap["weeks_reported"]) == (
        118.0,
        80.0,
        75.0,
        6,
    )
    assert snap["improvement_pct"] == pytest.approx(100 * 43 / 118)
    assert (snap["status"], snap["recommendation"], snap["as_of"]) == ("met", "go", "2012-02-20")
    assert snap["reasons"].startswith("Resolution time 75 h vs target 80 h: met")
    # what the person saw: no decision before this one, every default item open
    assert (snap["decision"], snap["decided_by"], snap["decided_at"]) == (None, None, None)
    assert snap["open_checklist_items"] == ALL_OPEN
    assert G.decision_snapshot(session, decision_id=res.decision_id) == [snap]
    (audit,) = audits(session, "decision")
    assert (audit.actor, audit.entity_id, audit.action) == (ADMIN, res.decision_id, "create")
    assert json.loads(audit.detail) == {
        "pilot": HELPDESK,
        "decision": "go",
        "recommendation": "go",
        "rationale": "",
        "as_of": "2012-02-20",
    }


def test_a_later_snapshot_shows_the_decision_before_it(session, helpdesk):
    first = service.record_decision(
        session=session, actor=ADMIN, pilot_id=helpdesk, decision="go", as_of=AS_OF
    )
    session.commit()
    second = service.record_decision(
        session=session,
        actor="bo",
        pilot_id=helpdesk,
        decision="extend",
        rationale="Wait for two more weeks of data.\nVendor asked for it.",
        as_of=date(2012, 1, 30),  # judged earlier: 5 pilot weeks, mean of last 4 = 79.5
    )
    session.commit()
    row = session.get(Decision, second.decision_id)
    assert (row.decision, row.recommendation, row.as_of) == ("extend", "go", date(2012, 1, 30))
    assert row.rationale == "Wait for two more weeks of data.\nVendor asked for it."
    (snap,) = json.loads(row.snapshot)
    assert (snap["current"], snap["weeks_reported"], snap["as_of"]) == (79.5, 5, "2012-01-30")
    first_at = session.get(Decision, first.decision_id).decided_at
    assert (snap["decision"], snap["decided_by"], snap["decided_at"]) == (
        "go",
        ADMIN,
        first_at.isoformat(timespec="seconds"),
    )
    latest = G.latest_decisions_frame(session)
    assert list(latest["decision_id"]) == [second.decision_id]
    assert list(latest["decision"]) == ["extend"]
    history = G.decisions_frame(session, pilot_id=helpdesk)
    assert list(history["decision"]) == ["go", "extend"]
    assert list(history["recommendation_then"]) == ["go", "go"]
    assert list(history["as_of"]) == [pd.Timestamp("2012-02-20"), pd.Timestamp("2012-01-30")]


def test_a_decision_against_the_recommendation_needs_a_rationale(session, helpdesk):
    for rationale in ("", "  \n "):
        with pytest.raises(StoreError) as exc:
            service.record_decision(
                session=session,
                actor=ADMIN,
                pilot_id=helpdesk,
                decision="no_go",
                rationale=rationale,
                as_of=AS_OF,
            )
        assert str(exc.value) == (
            "decision not saved: no_go on 'Helpdesk triage assistant' differs from the "
            "recommendation go as of 2012-02-20; write a rationale that says why"
        )
    session.rollback()
    assert count(session, Decision) == 0
    assert audits(session, "decision") == []
    res = service.record_decision(
        session=session,
        actor=ADMIN,
        pilot_id=helpdesk,
        decision="no_go",
        rationale=" Vendor lost its security certification. ",
        as_of=AS_OF,
    )
    session.commit()
    row = session.get(Decision, res.decision_id)
    assert (row.decision, row.recommendation, row.rationale) == (
        "no_go",
        "go",
        "Vendor lost its security certification.",
    )


def test_insufficient_data_needs_a_rationale_for_any_decision(session, helpdesk):
    pid = make_pilot(session, "Fraud analyst copilot")
    session.commit()
    with pytest.raises(StoreError, match="differs from the recommendation insufficient_data"):
        service.record_decision(
            session=session, actor=ADMIN, pilot_id=pid, decision="extend", as_of=AS_OF
        )
    res = service.record_decision(
        session=session,
        actor=ADMIN,
        pilot_id=pid,
        decision="extend",
        rationale="No data yet",
        as_of=AS_OF,
    )
    session.commit()
    assert res.recommendation == "insufficient_data"
    (snap,) = json.loads(session.get(Decision, res.decision_id).snapshot)
    assert snap["pilot"] == "Fraud analyst copilot"
    assert snap["current"] is None  # undefined: null, never 0
    assert snap["weeks_reported"] == 0


@pytest.mark.parametrize("role", ["viewer", "editor"])
def test_only_an_admin_records_a_decision(session, helpdesk, role):
    add_user(session, "pat", role)
    session.commit()
    with pytest.raises(PermissionDenied) as exc:
        service.record_decision(
            session=session, actor="pat", pilot_id=helpdesk, decision="go", as_of=AS_OF
        )
    assert str(exc.value) == (
        f"pat is {'an' if role == 'editor' else 'a'} {role}: recording a decision needs the "
        "admin role. "
        "Ask an admin to change your role."
    )
    session.rollback()
    assert count(session, Decision) == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pilot_id": 99999}, "no pilot with id 99999: pick an existing pilot"),
        ({"decision": "maybe"}, "decision not saved: decision: Input should be 'go', 'extend'"),
        ({"as_of": date(1800, 1, 1)}, "as_of 1800-01-01 is outside 1900..2199: check the year"),
        ({"rationale": "x" * 4001}, "rationale: String should have at most 4000 characters"),
        ({"rationale": "bad\x00byte"}, "rationale must not contain control characters"),
    ],
    ids=["unknown-pilot", "unknown-kind", "as-of-range", "too-long", "control-char"],
)
def test_bad_decisions_are_refused(session, helpdesk, kwargs, message):
    fields = {"pilot_id": helpdesk, "decision": "go", "as_of": AS_OF} | kwargs
    with pytest.raises(StoreError) as exc:
        service.record_decision(session=session, actor=ADMIN, **fields)
    assert message in str(exc.value)
    session.rollback()
    assert count(session, Decision) == 0
    assert audits(session, "decision") == []


# =========================================================================== stage gates


def stage_of(session: Session, pid: int) -> str:
    return session.execute(sa.select(Pilot.stage).where(Pilot.id == pid)).scalar_one()


def test_production_needs_a_go_and_no_open_items(session, helpdesk):
    with pytest.raises(StoreError) as exc:
        store.set_stage(session=session, actor=ADMIN, pilot_id=helpdesk, stage="production")
    assert str(exc.value) == (
        "'Helpdesk triage assistant' not moved from pilot to production: record a go "
        "decision first (no decision is recorded yet); tick the 11 open checklist item(s) "
        f"with evidence first: {ALL_OPEN}. Nothing was changed."
    )
    session.rollback()
    assert stage_of(session, helpdesk) == "pilot"
    assert count(session, StageEvent) == 1
    assert audits(session, "pilot", "set_stage") == []

    service.record_decision(
        session=session, actor=ADMIN, pilot_id=helpdesk, decision="go", as_of=AS_OF
    )
    items = G.checklist_frame(session, pilot_id=helpdesk)
    for item_id in items["item_id"].iloc[:9]:
        G.tick_checklist_item(session=session, actor="ed", item_id=int(item_id), evidence="ok")
    session.commit()
    gate = G.stage_gate(session, pilot_id=helpdesk, to_stage="production")
    assert gate.requirements == [
        ("latest recorded decision must be go", True),
        ("every checklist item must be ticked with evidence", False),
    ]
    with pytest.raises(StoreError) as exc:
        store.set_stage(session=session, actor=ADMIN, pilot_id=helpdesk, stage="production")
    assert str(exc.value) == (
        "'Helpdesk triage assistant' not moved from pilot to production: tick the 2 open "
        "checklist item(s) with evidence first: Code, configuration and IP owned by us by "
        "contract; Knowledge-transfer plan agreed. Nothing was changed."
    )
    session.rollback()
    assert stage_of(session, helpdesk) == "pilot"

    tick_all(session, helpdesk)
    session.commit()
    assert G.stage_gate(session, pilot_id=helpdesk, to_stage="production").allowed
    store.set_stage(
        session=session, actor=ADMIN, pilot_id=helpdesk, stage="production", note="signed off"
    )
    session.commit()
    assert stage_of(session, helpdesk) == "production"
    ev = store.stage_events_frame(session, pilot_id=helpdesk)
    assert list(zip(ev["from_stage"], ev["to_stage"], ev["by"], ev["note"], strict=True))[1:] == [
        ("pilot", "production", ADMIN, "signed off")
    ]
    (audit,) = audits(session, "pilot", "set_stage")
    assert (audit.actor, audit.entity_id) == (ADMIN, helpdesk)
    assert json.loads(audit.detail) == {
        "before": {"stage": "pilot"},
        "after": {"stage": "production"},
        "note": "signed off",
    }


def test_the_latest_decision_is_the_one_that_counts(session, helpdesk):
    tick_all(session, helpdesk)
    service.record_decision(
        session=session, actor=ADMIN, pilot_id=helpdesk, decision="go", as_of=AS_OF
    )
    service.record_decision(
        session=session,
        actor="bo",
        pilot_id=helpdesk,
        decision="extend",
        rationale="Security review pending",
        as_of=AS_OF,
    )
    session.commit()
    day = f"{datetime.now(UTC):%Y-%m-%d}"
    with pytest.raises(StoreError) as exc:
        store.set_stage(session=session, actor=ADMIN, pilot_id=helpdesk, stage="production")
    assert str(exc.value) == (
        "'Helpdesk triage assistant' not moved from pilot to production: record a go "
        f"decision first (the latest decision is extend by bo on {day}). Nothing was changed."
    )


def test_stopped_follows_a_no_go(session, helpdesk):
    with pytest.raises(StoreError) as exc:
        store.set_stage(session=session, actor=ADMIN, pilot_id=helpdesk, stage="stopped")
    assert str(exc.value) == (
        "'Helpdesk triage assistant' not moved from pilot to stopped: record a no_go "
        "decision first (no decision is recorded yet). Nothing was changed."
    )
    session.rollback()
    service.record_decision(
        session=session,
        actor=ADMIN,
        pilot_id=helpdesk,
        decision="no_go",
        rationale="Budget cut",
        as_of=AS_OF,
    )
    store.set_stage(session=session, actor=ADMIN, pilot_id=helpdesk, stage="stopped")
    session.commit()
    assert stage_of(session, helpdesk) == "stopped"
    with pytest.raises(StoreError, match="a stopped pilot stays stopped; start a new pilot"):
        store.set_stage(session=session, actor=ADMIN, pilot_id=helpdesk, stage="pilot")


@pytest.mark.parametrize(
    ("start", "to", "message"),
    [
        ("discovery", "production", "a pilot in discovery can move only to pilot or stopped"),
        ("pilot", "discovery", "a pilot in pilot can move only to production or stopped"),
        ("pilot", "transition", "a pilot in pilot can move only to production or stopped"),
    ],
)
def test_stage_moves_follow_the_sequence(session, start, to, message):
    pid = make_pilot(session, stage=start)
    session.commit()
    with pytest.raises(StoreError) as exc:
        store.set_stage(session=session, actor=ADMIN, pilot_id=pid, stage=to)
    assert message in str(exc.value)
    session.rollback()
    assert stage_of(session, pid) == start


def test_discovery_to_pilot_and_production_to_transition_have_no_gate(session, helpdesk):
    pid = make_pilot(session, "Discovery pilot", stage="discovery")
    store.set_stage(session=session, actor=ADMIN, pilot_id=pid, stage="pilot")
    tick_all(session, helpdesk)
    service.record_decision(
        session=session, actor=ADMIN, pilot_id=helpdesk, decision="go", as_of=AS_OF
    )
    store.set_stage(session=session, actor=ADMIN, pilot_id=helpdesk, stage="production")
    gate = G.stage_gate(session, pilot_id=helpdesk, to_stage="transition")
    assert (gate.allowed, gate.requirements) == (True, [])
    store.set_stage(session=session, actor=ADMIN, pilot_id=helpdesk, stage="transition")
    session.commit()
    assert (stage_of(session, pid), stage_of(session, helpdesk)) == ("pilot", "transition")


def test_save_pilot_enforces_the_gate_and_writes_nothing(session, helpdesk):
    with pytest.raises(StoreError) as exc:
        make_pilot(
            session,
            HELPDESK,
            vendor="Other vendor",
            stage="production",
            metrics=[metric_in("cycle_time")],
        )
    assert "not moved from pilot to production: record a go decision first" in str(exc.value)
    session.rollback()
    p = session.get(Pilot, helpdesk)
    session.refresh(p)
    assert (p.stage, p.vendor) == ("pilot", "Acme AI")
    assert count(session, StageEvent) == 1
    assert list(store.metrics_frame(session)["key"]) == ["resolution_time"]
    # after the go and the ticks the same save moves it
    tick_all(session, helpdesk)
    service.record_decision(
        session=session, actor=ADMIN, pilot_id=helpdesk, decision="go", as_of=AS_OF
    )
    make_pilot(session, HELPDESK, stage="production", metrics=[])
    session.commit()
    assert stage_of(session, helpdesk) == "production"


def test_a_new_pilot_cannot_start_past_its_gates(session):
    for stage in ("production", "transition", "stopped"):
        with pytest.raises(StoreError) as exc:
            make_pilot(session, "Born in production", stage=stage)
        assert str(exc.value) == (
            f"'Born in production' not moved from (new) to {stage}: a new pilot starts in "
            f"discovery or pilot; create it there, then record a decision and move it to "
            f"{stage} through its stage gate. Nothing was changed."
        )
        session.rollback()
    assert count(session, Pilot) == 0
    assert count(session, ChecklistItem) == 0


def test_stage_gate_refuses_unknown_pilot_and_stage(session, helpdesk):
    with pytest.raises(StoreError, match="unknown stage 'live'"):
        G.stage_gate(session, pilot_id=helpdesk, to_stage="live")
    with pytest.raises(StoreError, match="no pilot with id 99999"):
        G.stage_gate(session, pilot_id=99999, to_stage="pilot")


# =========================================================================== export


def test_export_fills_the_latest_decision_and_open_items(session, helpdesk):
    out = service.summary_export_frame(session, as_of=AS_OF)
    cols = list(out.columns)
    assert cols.index("open_checklist_items") == cols.index("as_of") + 1
    row = out.iloc[0]
    assert pd.isna(row["decision"]) and pd.isna(row["decided_by"]) and pd.isna(row["decided_at"])
    assert row["open_checklist_items"] == ALL_OPEN

    service.record_decision(
        session=session, actor=ADMIN, pilot_id=helpdesk, decision="go", as_of=AS_OF
    )
    last = service.record_decision(
        session=session,
        actor="bo",
        pilot_id=helpdesk,
        decision="extend",
        rationale="more data",
        as_of=AS_OF,
    )
    tick_all(session, helpdesk)
    G.add_checklist_item(session=session, actor="ed", pilot_id=helpdesk, item="=HYPERLINK(x)")
    session.commit()
    at = session.get(Decision, last.decision_id).decided_at
    row = service.summary_export_frame(session, as_of=AS_OF).iloc[0]
    assert (row["decision"], row["decided_by"], row["decided_at"]) == (
        "extend",
        "bo",
        at.isoformat(timespec="seconds"),
    )
    assert row["decided_at"].endswith("+00:00")
    assert row["open_checklist_items"] == "=HYPERLINK(x)"
    from metrics import csvio

    text = csvio.to_csv_text(service.summary_export_frame(session, as_of=AS_OF))
    assert ",2012-02-20,'=HYPERLINK(x)" in text  # never read as a formula


# =========================================================================== portfolio view


def _pilots_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            C.PILOT_ID: [1, 2, 3, 4],
            C.PILOT: ["A", "B", "C", "D"],
            "stage": ["pilot", "pilot", "production", "discovery"],
            C.DECISION_DATE: pd.to_datetime(
                ["2012-02-20", "2012-03-05", "2012-03-06", "2012-02-19"]
            ),
            C.RECOMMENDATION: ["go", "extend", "go", "insufficient_data"],
        }
    )


def _latest_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            G.DECISION_ID: [10, 11, 12],
            C.PILOT_ID: [1, 2, 4],
            C.PILOT: ["A", "B", "D"],
            G.DECISION: ["go", "go", "extend"],
            G.DECISION_RECOMMENDATION: ["go", "go", "insufficient_data"],
            G.RATIONALE: ["", "", "needs data"],
            G.AS_OF: pd.to_datetime(["2012-02-01"] * 3),
            G.DECIDED_BY: ["ada", "bo", "cy"],
            G.DECIDED_AT: pd.to_datetime(["2012-02-01T10:00Z"] * 3),
        }
    )


def test_recommendation_stage_counts():
    out = G.recommendation_stage_counts(_pilots_frame())
    assert list(out.index) == ["go", "extend", "no_go", "insufficient_data"]
    assert list(out.columns) == [
        "discovery",
        "pilot",
        "production",
        "transition",
        "stopped",
        "total",
    ]
    assert out.loc["go"].tolist() == [0, 1, 1, 0, 0, 2]
    assert out.loc["extend"].tolist() == [0, 1, 0, 0, 0, 1]
    assert out.loc["no_go"].tolist() == [0, 0, 0, 0, 0, 0]
    assert out.loc["insufficient_data"].tolist() == [1, 0, 0, 0, 0, 1]
    assert (out.dtypes == "int64").all()
    empty = G.recommendation_stage_counts(_pilots_frame().iloc[:0])
    assert empty.to_numpy().sum() == 0 and empty.shape == (4, 6)


def test_decisions_due_within_two_weeks_of_the_as_of_date():
    out = G.decisions_due(_pilots_frame(), _latest_frame(), as_of=date(2012, 2, 20))
    # D (yesterday) is past; C (15 days) is outside; A today, B in 14 days
    assert list(out[C.PILOT]) == ["A", "B"]
    assert list(out[G.DAYS_TO_DECISION]) == [0, 14]
    assert list(out[G.DECISION]) == ["go", "go"]
    out = G.decisions_due(_pilots_frame(), _latest_frame().iloc[:0], as_of=date(2012, 2, 21))
    assert list(out[C.PILOT]) == ["B", "C"]
    assert out[G.DECISION].isna().all()


def test_contradicting_decisions():
    out = G.contradicting_decisions(_pilots_frame(), _latest_frame())
    assert list(out[C.PILOT]) == ["B", "D"]
    assert list(out[C.RECOMMENDATION]) == ["extend", "insufficient_data"]
    assert list(out[G.DECISION]) == ["go", "extend"]
    assert list(out[G.DECIDED_BY]) == ["bo", "cy"]
    assert G.contradicting_decisions(_pilots_frame(), _latest_frame().iloc[:0]).empty


def test_ids_read_from_frames_are_accepted(session, helpdesk):
    # ids taken straight from a DataFrame are numpy integers
    items = G.checklist_frame(session, pilot_id=helpdesk)
    first = items["item_id"].iloc[0]
    assert type(first).__module__ == "numpy"
    assert G.tick_checklist_item(session=session, actor="ed", item_id=first, evidence="doc")
    pid = store.pilots_frame(session)["pilot_id"].iloc[0]
    res = service.record_decision(
        session=session, actor=ADMIN, pilot_id=pid, decision="go", as_of=AS_OF
    )
    G.add_checklist_item(session=session, actor="ed", pilot_id=pid, item="Pen test")
    session.commit()
    assert session.get(Decision, res.decision_id).pilot_id == helpdesk
    with pytest.raises(StoreError, match="no pilot with id True"):
        G.stage_gate(session, pilot_id=True, to_stage="pilot")


def test_a_summary_as_of_an_earlier_day_shows_no_later_decision(session, helpdesk):
    """QA: `export summary --as-of 2012-06-30` showed a decision made years later."""
    service.record_decision(
        session=session,
        actor=ADMIN,
        pilot_id=helpdesk,
        decision="go",
        rationale="steering committee",
        as_of=AS_OF,
    )
    session.commit()
    earlier = service.summary_export_frame(session, as_of=date(2012, 2, 13)).iloc[0]
    assert pd.isna(earlier["decision"]) and pd.isna(earlier["decision_rationale"])
    same_day = service.summary_export_frame(session, as_of=AS_OF).iloc[0]
    assert (same_day["decision"], same_day["decided_by"], same_day["decision_rationale"]) == (
        "go",
        ADMIN,
        "steering committee",
    )
