# ruff: noqa: F811  (test functions take the imported fixture ``db`` as a parameter)
"""Issue 10, data that must never be silently changed: pilot names unique ignoring case
and spacing, rename and archive with a definition audit, typed numbers read the way
people write them, distant weeks, a lost race named, links to unknown pilots, and
status that reads without a colour-emoji font. Store tests run on SQLite and
PostgreSQL (when its URL is set); page tests through AppTest."""

from __future__ import annotations

import csv
import io
import json
import sys
from datetime import date

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from metrics import csvio, store
from metrics.cli import main as cli_main
from metrics.db import init_db, session_scope
from metrics.models import AuditEvent, PilotCreate, pilot_name_key
from tests.apptest_helpers import open_app
from tests.factories import add_weeks, make_pilot, metric_id, metric_in
from tests.test_pages import (
    AS_OF,
    ENTER_PAGE,
    HELPDESK,
    INVOICE,
    PILOT_PAGE,
    _open_enter_with_url,
    _texts,
    _unescape,
    db,  # noqa: F401  (the fixture: three pilots, AppTest database)
)

PILOT = "Claims triage agent"


def _pilot_in(name: str = PILOT, **kw) -> PilotCreate:
    fields = dict(
        name=name, vendor="Acme AI", start_date=date(2026, 1, 5), decision_date=date(2026, 6, 26)
    )
    fields.update(kw)
    return PilotCreate(**fields)


def _cli(monkeypatch, capsys, url: str, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["pilotgate", "--database-url", url, *args])
    try:
        cli_main()
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    out, err = capsys.readouterr()
    return code, out, err


# =========================================================================== item 1: names


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Claims triage agent", "claims triage agent"),
        ("Claims triage agent", "  Claims   triage\tagent "),
        ("Straße pilot", "STRASSE PILOT"),  # casefold, not lower()
    ],
)
def test_name_key_ignores_case_and_spacing(a, b):
    assert pilot_name_key(a) == pilot_name_key(b)


def test_a_name_is_stored_with_collapsed_spaces():
    assert _pilot_in("  Claims   triage agent ").name == "Claims triage agent"


def test_creating_a_pilot_whose_name_differs_only_in_case_or_spacing_is_refused(session):
    make_pilot(session, PILOT, owner="Dana", cost=1000.0)
    session.commit()
    before = store.data_version(session)
    for other in ("claims triage agent", "Claims  Triage  Agent ", PILOT):
        with pytest.raises(store.StoreError) as exc:
            store.save_pilot(
                session=session,
                actor="tester",
                pilot_in=_pilot_in(other, owner="Mallory", cost=1.0),
                metrics_in=[metric_in("cycle_time", target=20.0)],
                mode="create",
            )
        session.rollback()
        assert f"a pilot named '{PILOT}' already exists" in str(exc.value)
    p = store.pilots_frame(session)
    assert p[["pilot", "owner", "cost"]].values.tolist() == [[PILOT, "Dana", 1000.0]]
    assert store.metrics_frame(session)["key"].tolist() == ["resolution_time"]
    assert store.data_version(session) == before


def test_the_unique_index_refuses_a_second_spelling_even_past_the_store(session):
    make_pilot(session, PILOT)
    session.commit()
    from metrics.models import Pilot

    session.add(
        Pilot(
            name="CLAIMS triage agent",
            name_key=pilot_name_key("CLAIMS triage agent"),
            start_date=date(2026, 1, 5),
            decision_date=date(2026, 6, 26),
        )
    )
    with pytest.raises(sa.exc.IntegrityError):
        session.flush()
    session.rollback()


def test_upsert_by_another_spelling_updates_the_pilot_without_renaming_it(session):
    pid = make_pilot(session, PILOT, owner="Dana")
    res = store.save_pilot(
        session=session,
        actor="tester",
        pilot_in=_pilot_in("claims TRIAGE agent", owner="Eve"),
        metrics_in=[metric_in()],
    )
    assert res.pilot_id == pid and not res.created
    assert res.fields_changed == ("owner", "start_date", "decision_date")
    assert store.pilots_frame(session)[["pilot", "owner"]].values.tolist() == [[PILOT, "Eve"]]


def test_save_result_says_what_really_changed(session):
    make_pilot(session, PILOT, metrics=[metric_in("cycle_time", target=20.0)])
    same = store.save_pilot(
        session=session,
        actor="tester",
        pilot_in=_pilot_in(start_date=date(2012, 1, 2), decision_date=date(2012, 6, 29)),
        metrics_in=[metric_in("cycle_time", target=20.0)],
        mode="update",
    )
    assert not same.changed
    assert same.describe() == f"{PILOT}: nothing changed."
    res = store.save_pilot(
        session=session,
        actor="tester",
        pilot_in=_pilot_in(
            start_date=date(2012, 1, 2), decision_date=date(2012, 6, 29), vendor="Beta", cost=5.0
        ),
        metrics_in=[metric_in("cycle_time", target=18.0), metric_in("error_rate", unit="%")],
        mode="update",
    )
    assert res.describe() == (
        f"Saved {PILOT}: vendor, cost changed; metric added: error_rate; "
        "metric changed: cycle_time (target)."
    )


def test_pilots_import_refuses_a_name_matching_another_pilot_only_by_case(session):
    make_pilot(session, PILOT, owner="Dana")
    session.commit()
    text = (
        "pilot,vendor,owner,start_date,decision_date,metric,direction,target\n"
        "claims triage AGENT,X,Mallory,2026-01-05,2026-06-26,cycle_time,lower_is_better,20\n"
    )
    rep = csvio.import_pilots(session=session, actor="tester", data=text)
    assert not rep.ok
    assert [str(e) for e in rep.errors] == [
        "line 2, column pilot: pilot 'claims triage AGENT' matches the existing pilot "
        f"'{PILOT}' (names are compared ignoring case and spacing): write its name exactly "
        "to update it, or choose another name for a new pilot"
    ]
    session.rollback()
    assert store.pilots_frame(session)["owner"].tolist() == ["Dana"]


def test_pilots_import_refuses_two_spellings_of_one_pilot_in_a_file(session):
    text = (
        "pilot,start_date,decision_date,metric,direction,target\n"
        f"{PILOT},2026-01-05,2026-06-26,cycle_time,lower_is_better,20\n"
        "claims  triage agent,2026-01-05,2026-06-26,error_rate,lower_is_better,3\n"
    )
    rep = csvio.import_pilots(session=session, actor="tester", data=text)
    assert [str(e) for e in rep.errors] == [
        "line 3, column pilot: pilot 'claims  triage agent' is the pilot "
        f"'{PILOT}' of line 2 (names are compared ignoring case and spacing): write it the "
        "same way on every row"
    ]
    assert store.pilots_frame(session).empty


def test_admin_new_pilot_with_an_existing_name_never_overwrites(db):
    """The issue's case: "New pilot" named like an existing one replaced its vendor,
    owner, dates and cost and added a metric, saying "0 metric(s) added"."""
    with Session(db["engine"]) as s:
        before = store.pilots_frame(s).set_index("pilot").loc[HELPDESK]
        n_metrics = len(store.metrics_frame(s))
    at = open_app("dashboard/pages/admin.py", as_of=AS_OF)
    p = "adm-p0"
    at.text_input(key=f"{p}-name").input("  helpdesk   TRIAGE assistant ")
    at.text_input(key=f"{p}-vendor").input("Mallory AI")
    at.text_input(key=f"{p}-owner").input("Mallory")
    at.number_input(key=f"{p}-cost").set_value(1.0)
    at.text_input(key=f"{p}-mnew-key").input("cost_per_ticket")
    at.number_input(key=f"{p}-mnew-target").set_value(5.0)
    at.button(key=f"{p}-save").click().run(timeout=30)
    assert not at.exception
    errors = [_unescape(e.value) for e in at.error]
    assert errors == [
        f"a pilot named '{HELPDESK}' already exists (names are compared ignoring case and "
        f"spacing): pick it to edit it, or choose another name for 'helpdesk TRIAGE "
        "assistant'"
    ]
    assert not at.success
    with Session(db["engine"]) as s:
        after = store.pilots_frame(s).set_index("pilot").loc[HELPDESK]
        assert len(store.metrics_frame(s)) == n_metrics
        assert len(store.pilots_frame(s)) == 3
    assert (after["vendor"], after["owner"]) == (before["vendor"], before["owner"])
    assert pd.isna(before["cost"]) and pd.isna(after["cost"])  # no cost set, none written


# =========================================================================== item 2: archive


def test_rename_and_archive_are_audited_and_keep_every_value(session):
    pid = make_pilot(session, PILOT)
    mid = metric_id(session, PILOT, "resolution_time")
    add_weeks(session, mid, date(2012, 1, 2), [100.0, 90.0])
    other = make_pilot(session, "Invoice copilot")
    with pytest.raises(store.StoreError, match="a pilot named 'Invoice copilot' already exists"):
        store.rename_pilot(session=session, actor="ana", pilot_id=pid, new_name="invoice COPILOT")
    assert store.rename_pilot(
        session=session, actor="ana", pilot_id=pid, new_name=" Claims  agent "
    ) == ("Claims agent")
    assert store.set_pilot_archived(session=session, actor="ana", pilot_id=pid, archived=True)
    assert not store.set_pilot_archived(session=session, actor="ana", pilot_id=pid, archived=True)
    store.rename_metric(session=session, actor="bo", metric_id=mid, new_label="Time to resolve")
    store.set_metric_archived(session=session, actor="bo", metric_id=mid, archived=True)
    session.commit()
    p = store.pilots_frame(session).set_index("pilot_id")
    assert (p.loc[pid, "pilot"], bool(p.loc[pid, "archived"])) == ("Claims agent", True)
    assert not bool(p.loc[other, "archived"])
    # an archived metric leaves the numbers; its values stay
    assert mid not in set(store.metrics_frame(session)["metric_id"])
    assert store.metrics_frame(session, include_archived=True).set_index("metric_id").loc[
        mid, "label"
    ] == ("Time to resolve")
    assert store.measurements_frame(session, pilot_id=pid)["value"].tolist() == [100.0, 90.0]
    h = store.definition_history_frame(session, pilot_id=pid)
    changes = h[h["action"] != "create"][["actor", "entity", "action", "field", "old", "new"]]
    assert changes.values.tolist() == [
        ["ana", "pilot", "rename", "name", PILOT, "Claims agent"],
        ["ana", "pilot", "archive", "archived", False, True],
        ["bo", "metric", "rename", "label", "Resolution time", "Time to resolve"],
        ["bo", "metric", "archive", "archived", False, True],
    ]
    assert set(h["pilot"]) == {"Claims agent"}


def test_every_definition_change_is_in_the_history_and_the_revisions_export(session):
    pid = make_pilot(session, PILOT, cost=100.0, metrics=[metric_in(baseline=120.0)])
    store.save_pilot(
        session=session,
        actor="pmo",
        pilot_in=_pilot_in(
            start_date=date(2012, 1, 9), decision_date=date(2012, 6, 29), cost=150.0
        ),
        metrics_in=[metric_in(baseline=118.0, target=75.0, value_per_unit=12.5)],
    )
    store.set_stage(
        session=session, actor="pmo", pilot_id=pid, stage="stopped", note="x"
    ) if False else None
    session.commit()
    h = store.definition_history_frame(session, pilot_id=pid)
    upd = h[h["action"] == "update"][["actor", "metric", "field", "old", "new"]]
    assert upd.values.tolist() == [
        ["pmo", "", "cost", 100.0, 150.0],
        ["pmo", "", "start_date", "2012-01-02", "2012-01-09"],
        ["pmo", "resolution_time", "baseline", 120.0, 118.0],
        ["pmo", "resolution_time", "target", 80.0, 75.0],
        ["pmo", "resolution_time", "value_per_unit", None, 12.5],
    ]
    rows = list(
        csv.DictReader(io.StringIO(csvio.to_csv_text(store.revisions_export_frame(session))[1:]))
    )
    defs = [
        (r["action"], r["metric"], r["field"], r["old_value"], r["new_value"], r["actor"])
        for r in rows
        if r["action"].endswith("_update")
    ]
    assert defs == [
        ("pilot_update", "", "cost", "100.0", "150.0", "pmo"),
        ("pilot_update", "", "start_date", "2012-01-02", "2012-01-09", "pmo"),
        ("metric_update", "resolution_time", "baseline", "120.0", "118.0", "pmo"),
        ("metric_update", "resolution_time", "target", "80.0", "75.0", "pmo"),
        ("metric_update", "resolution_time", "value_per_unit", "", "12.5", "pmo"),
    ]
    assert {r["pilot"] for r in rows} == {PILOT}


def test_cli_renames_and_archives(engine, monkeypatch, capsys):
    url = engine.url.render_as_string(hide_password=False)
    with session_scope(engine) as s:
        make_pilot(s, PILOT)
    code, out, err = _cli(
        monkeypatch, capsys, url, "pilots", "rename", "claims  TRIAGE agent", "Claims bot"
    )
    assert (code, out, err) == (0, f"renamed '{PILOT}' to 'Claims bot'\n", "")
    code, out, _ = _cli(monkeypatch, capsys, url, "pilots", "archive", "claims bot")
    assert (code, out) == (0, "archived 'Claims bot'\n")
    code, out, _ = _cli(
        monkeypatch, capsys, url, "metrics", "rename", "Claims bot", "resolution_time", "TTR"
    )
    assert (code, out) == (0, "resolution_time: label 'Resolution time' -> 'TTR'\n")
    code, out, err = _cli(monkeypatch, capsys, url, "metrics", "archive", "Claims bot", "nope")
    assert code == 1 and err == "error: no metric 'nope' (its metrics: resolution_time)\n"
    code, out, err = _cli(monkeypatch, capsys, url, "pilots", "unarchive", "Nobody")
    assert code == 1 and err.startswith("error: no pilot named 'Nobody'")
    with Session(engine) as s:
        p = store.pilots_frame(s)
    assert p[["pilot", "archived"]].values.tolist() == [["Claims bot", True]]


def test_portfolio_hides_archived_pilots_unless_asked(db):
    with session_scope(db["engine"]) as s:
        store.set_pilot_archived(session=s, actor="t", pilot_id=db["invoice"], archived=True)
    at = open_app(None, as_of=AS_OF)
    names = " ".join(str(x) for x in at.dataframe[0].value["Pilot"]) if at.dataframe else ""
    assert INVOICE not in names and HELPDESK in names
    at.toggle(key="portfolio-show-archived").set_value(True).run(timeout=30)
    names = " ".join(str(x) for x in at.dataframe[0].value["Pilot"])
    assert INVOICE in names


def test_pilot_page_shows_the_definition_history(db):
    with session_scope(db["engine"]) as s:
        store.rename_metric(
            session=s, actor="ana", metric_id=db["resolution_time"], new_label="TTR"
        )
    at = open_app(PILOT_PAGE, as_of=AS_OF, pilot_id=db["helpdesk"])
    table = next(d.value for d in at.dataframe if "Field" in d.value.columns)
    top = table.iloc[0]
    assert (top["By"], top["What"], top["Change"], top["Field"], top["Old"], top["New"]) == (
        "ana",
        "metric resolution_time",
        "rename",
        "label",
        "Resolution time",
        "TTR",
    )


def test_migration_renames_old_pilots_that_clash_and_audits_it(tmp_path):
    from metrics.db import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    init_db(engine, revision="0002")
    with engine.begin() as conn:
        for i, name in ((1, "Claims agent"), (2, "claims  AGENT"), (3, "Other")):
            conn.execute(
                sa.text(
                    "INSERT INTO pilot (id, name, vendor, use_case, owner, stage, start_date, "
                    "decision_date, trailing_window, min_weeks, created_at, updated_at) VALUES "
                    "(:i, :n, '', '', '', 'pilot', '2026-01-05', '2026-06-26', 4, 4, "
                    "'2026-01-01 00:00:00', '2026-01-01 00:00:00')"
                ),
                {"i": i, "n": name},
            )
    init_db(engine)
    with Session(engine) as s:
        names = store.pilots_frame(s).set_index("pilot_id")["pilot"].to_dict()
        (audit,) = s.exec(select(AuditEvent)).all()
    assert names == {1: "Claims agent", 2: "claims  AGENT (duplicate)", 3: "Other"}
    assert (audit.actor, audit.entity_id, audit.action) == ("migration 0003", 2, "rename")
    assert json.loads(audit.detail)["before"] == {"name": "claims  AGENT"}
    engine.dispose()


# =========================================================================== item 12: links


@pytest.mark.parametrize("raw", ["999", "abc"])
def test_a_link_to_an_unknown_pilot_says_so_and_shows_no_other_pilot(db, raw):
    from streamlit.testing.v1 import AppTest

    from tests.apptest_helpers import APP

    at = AppTest.from_file(APP, default_timeout=30)
    at.session_state["as_of"] = AS_OF
    at.query_params["pilot"] = raw
    at.switch_page(PILOT_PAGE).run(timeout=30)
    assert not at.exception
    assert [_unescape(e.value) for e in at.error] == [
        f"No pilot “{raw}” found: the link's `?pilot=` names a pilot that does not exist "
        "(or no longer does). Choose a pilot in the list."
    ]
    text = _texts(at)
    assert HELPDESK not in [t.value for t in at.title]
    assert "Recommendation" not in text
    assert at.selectbox(key="pilot_page_pilot").value is None
    # picking a pilot by hand shows it
    at.selectbox(key="pilot_page_pilot").set_value(db["invoice"]).run(timeout=30)
    assert not at.error
    assert [t.value for t in at.title][-1] == INVOICE

    at = _open_enter_with_url({"pilot": raw})
    assert len(at.error) == 1 and "found" in at.error[0].value
    assert not at.number_input  # no form of another pilot


# =========================================================================== item 3: typed numbers


@pytest.mark.parametrize(
    ("text", "unit", "value", "as_typed"),
    [
        ("4,2", "h", 4.2, False),
        ("4.2", "h", 4.2, True),
        ("1.234,5", "", 1234.5, False),
        ("1,234.5", "", 1234.5, False),
        ("1 234,5", "", 1234.5, False),
        ("61,2 h", "h", 61.2, False),
        ("61.2h", "h", 61.2, False),
        ("12,5 %", "%", 12.5, False),
        ("-0,5", "pp", -0.5, False),
        ("72", "h", 72.0, True),
        ("", "h", None, True),
    ],
)
def test_typed_numbers_read_as_people_write_them(text, unit, value, as_typed):
    got = csvio.parse_typed_number(text, unit)
    assert (got.value, got.problem, got.as_typed) == (value, None, as_typed)


@pytest.mark.parametrize(
    ("text", "unit", "problem"),
    [
        (
            "1,234",
            "",
            "'1,234' reads two ways: 1.234 or 1234. Type 1234 (no thousands separator) for "
            "1234, or add a decimal digit (1,2340) for 1.234",
        ),
        (
            "1.234",
            "h",
            "'1.234' reads two ways: 1.234 or 1234. Type 1234 (no thousands separator) for "
            "1234, or add a decimal digit (1.2340) for 1.234",
        ),
        (
            "12,5 %",
            "h",
            "'12,5 %' has a percent sign but this metric is measured in h: type the number "
            "without %",
        ),
        ("abc", "h", "'abc' is not a number"),
        ("4,2 kg", "h", "'4,2 kg' is not a number"),
    ],
)
def test_ambiguous_or_wrong_typed_numbers_get_a_clear_message(text, unit, problem):
    got = csvio.parse_typed_number(text, unit)
    assert (got.value, got.problem) == (None, problem)


def _enter_week(db, week: date):
    at = open_app(ENTER_PAGE, as_of=AS_OF, pilot_id=db["helpdesk"])
    at.selectbox(key="enter_week").set_value(week).run(timeout=30)
    return at


def _save(at, db, week: date):
    at.button(key=f"enter-save-{db['helpdesk']}-{week.isoformat()}").click().run(timeout=30)
    assert not at.exception
    return at


def _stored_value(db, metric: str, week: date) -> float | None:
    with Session(db["engine"]) as s:
        m = store.measurements_frame(s)
    hit = m[(m["metric_id"] == db[metric]) & (m["week"] == pd.Timestamp(week))]
    return None if hit.empty else float(hit["value"].iloc[0])


def test_enter_reads_a_decimal_comma_and_shows_it_before_saving(db):
    """The issue's case: "4,2" typed became 42 and was saved at once."""
    week = date(2012, 2, 13)  # nothing stored yet
    at = _enter_week(db, week)
    key = f"enter-value-{db['helpdesk']}-{db['error_rate']}-{week.isoformat()}"
    at.text_input(key=key).input("4,2")
    _save(at, db, week)
    assert _stored_value(db, "error_rate", week) is None  # nothing written yet
    assert [_unescape(i.value) for i in at.info] == ["Read as: Error rate “4,2” = **4.2%**."]
    assert "press **Save** again" in at.warning[-1].value
    changes = next(d.value for d in at.dataframe if "Typed" in d.value.columns)
    assert changes[["Typed", "New"]].values.tolist() == [["4,2", 4.2]]
    _save(at, db, week)
    assert "1 created" in at.success[0].value
    assert _stored_value(db, "error_rate", week) == 4.2


def test_enter_refuses_an_ambiguous_number_and_writes_nothing(db):
    week = date(2012, 2, 13)
    at = _enter_week(db, week)
    key = f"enter-value-{db['helpdesk']}-{db['resolution_time']}-{week.isoformat()}"
    at.text_input(key=key).input("1,234")
    _save(at, db, week)
    assert [_unescape(e.value) for e in at.error] == [
        "Not saved. Resolution time: '1,234' reads two ways: 1.234 or 1234. Type 1234 (no "
        "thousands separator) for 1234, or add a decimal digit (1,2340) for 1.234."
    ]
    assert _stored_value(db, "resolution_time", week) is None


def test_enter_thousands_and_comma_then_unusual_needs_its_tick_box(db):
    week = date(2012, 2, 20)  # the week in progress: no value yet
    at = open_app(ENTER_PAGE, as_of=AS_OF, pilot_id=db["invoice"])
    at.selectbox(key="enter_week").set_value(week).run(timeout=30)
    with Session(db["engine"]) as s:
        mid = metric_id(s, INVOICE, "analyst_productivity")
    at.text_input(key=f"enter-value-{db['invoice']}-{mid}-{week.isoformat()}").input("1.234,5")
    save = f"enter-save-{db['invoice']}-{week.isoformat()}"
    at.button(key=save).click().run(timeout=30)
    assert "“1.234,5” = **1234.5 items/h**" in _unescape(at.info[0].value)
    at.button(key=save).click().run(timeout=30)  # read as shown; but it is unusual
    assert not at.success
    assert _unescape(at.error[0].value).startswith(
        "Not saved: Analyst productivity 1234.5 items/h (unusual: "
    )
    with Session(db["engine"]) as s:
        assert pd.Timestamp(week) not in set(store.measurements_frame(s)["week"])
    at.checkbox(key=f"enter-confirm-unusual-{db['invoice']}-{week.isoformat()}").check()
    at.button(key=save).click().run(timeout=30)
    assert "1 created" in at.success[0].value
    with Session(db["engine"]) as s:
        m = store.measurements_frame(s)
    assert m[(m["metric_id"] == mid) & (m["week"] == pd.Timestamp(week))]["value"].tolist() == [
        1234.5
    ]


# =========================================================================== item 4: distant weeks


def test_distant_weeks_rule_counts_whole_weeks_from_the_mondays():
    mask, reasons = store.distant_weeks(
        pd.Series(pd.to_datetime(["2008-12-29", "2009-01-05", "2013-06-24", "2013-07-01"])),
        pd.Series(pd.to_datetime(["2012-01-04"] * 4)),  # a Wednesday: its Monday 2012-01-02
        pd.Series(pd.to_datetime(["2012-06-29"] * 4)),  # Monday 2012-06-25
    )
    # 2008-12-29 is 157 weeks before 2012-01-02; 2009-01-05 exactly 156 (allowed);
    # 2013-06-24 is 52 weeks after 2012-06-25 (allowed), 2013-07-01 is 53
    assert mask.tolist() == [True, False, False, True]
    assert reasons[0] == (
        "week 2009-W01 is 157 weeks before the pilot's start week 2012-W01 (more than 156): "
        "check the year, or confirm distant weeks"
    )
    assert reasons[3] == (
        "week 2013-W27 is 53 weeks after the pilot's decision week 2012-W26 (more than 52): "
        "check the year, or confirm distant weeks"
    )


def test_cli_import_refuses_a_week_ten_years_off_unless_confirmed(
    engine, tmp_path, monkeypatch, capsys
):
    url = engine.url.render_as_string(hide_password=False)
    with session_scope(engine) as s:
        make_pilot(s, PILOT, start_date=date(2026, 1, 5), decision_date=date(2026, 6, 26))
    f = tmp_path / "weekly.csv"
    f.write_text(f"pilot,metric,week,value\n{PILOT},resolution_time,2016-W05,61.2\n")
    monkeypatch.setattr(csvio.parsing, "_today", lambda: date(2026, 12, 1))
    code, out, err = _cli(monkeypatch, capsys, url, "import", str(f))
    assert code == 1
    assert err.splitlines() == [
        f"{f}: line 2, column week: week 2016-W05 is 518 weeks before the pilot's start week "
        "2026-W02 (more than 156): check the year, or confirm distant weeks",
        f"{f}: if those weeks are right, confirm them: --allow-distant-weeks",
        f"error: {f}: 1 error, nothing written",
    ]
    with Session(engine) as s:
        assert store.measurements_frame(s).empty
    code, out, err = _cli(monkeypatch, capsys, url, "import", str(f), "--allow-distant-weeks")
    assert (code, out) == (0, "1 row: 1 created, 0 updated, 0 unchanged\n")


def test_enter_page_refuses_a_distant_week_unless_ticked(db):
    at = open_app(ENTER_PAGE, as_of=AS_OF, pilot_id=db["helpdesk"])
    at.selectbox(key="enter_week").set_value("other").run(timeout=30)
    at.date_input(key="enter_other_day").set_value(date(2002, 2, 13)).run(timeout=30)
    week = date(2002, 2, 11)
    assert "2002-W07 is 516 weeks before" in _unescape(at.warning[0].value)
    key = f"enter-value-{db['helpdesk']}-{db['resolution_time']}-{week.isoformat()}"
    at.text_input(key=key).input("121")
    _save(at, db, week)
    assert _unescape(at.error[0].value).startswith(
        "Not saved: week 2002-W07 is 516 weeks before the pilot's start week 2012-W01"
    )
    assert _stored_value(db, "resolution_time", week) is None
    at.checkbox(key=f"enter-confirm-distant-{db['helpdesk']}-{week.isoformat()}").check()
    _save(at, db, week)
    assert "1 created" in at.success[0].value
    assert _stored_value(db, "resolution_time", week) == 121.0


# =========================================================================== item 13: icons

#: Pictographs that need a colour-emoji font (they render as empty boxes without one).
EMOJI = __import__("re").compile(
    "[\U0001f000-\U0001faff\u2600-\u26ff\u2700-\u27bf\u2b00-\u2bff\ufe0f]"
)


def test_the_dashboard_needs_no_colour_emoji_font():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    found = []
    for path in [root / "streamlit_app.py", *sorted((root / "dashboard").rglob("*.py"))]:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            if EMOJI.search(code.replace("\u26a0", "")):  # ⚠ is in every text font
                found.append(f"{path.relative_to(root)}:{n}: {line.strip()}")
    assert found == []


def test_gate_conditions_and_recommendations_read_as_words_and_icons(db):
    from dashboard import components as ui

    assert ui.recommendation_text("go") == "go"
    assert ui.status_text("met") == "met"
    assert ui.status_text("breached", "guardrail") == "breached"
    at = open_app(None, as_of=AS_OF)
    labels = {m.label for m in at.metric}
    assert ":material/check_circle: go" in labels and ":material/cancel: no-go" in labels
    assert list(at.dataframe[0].value["Recommendation"])[:1] in (
        ["go"],
        ["extend"],
        ["insufficient data"],
    )


def test_importing_values_of_an_archived_metric_names_it(session):
    make_pilot(session, PILOT, metrics=[metric_in(), metric_in("cycle_time", target=20.0)])
    mid = metric_id(session, PILOT, "cycle_time")
    store.set_metric_archived(session=session, actor="t", metric_id=mid, archived=True)
    session.commit()
    text = (
        "pilot,metric,week,value\n"
        f"{PILOT},cycle_time,2012-W03,21\n"
        f"{PILOT},resolution_time,2012-W03,90\n"
    )
    rep = csvio.import_measurements(session=session, actor="t", data=text)
    assert [str(e) for e in rep.errors] == [
        f"line 2, column metric: metric 'cycle_time' of pilot '{PILOT}' is archived (its "
        "values are kept): unarchive it first (`pilotgate metrics unarchive`) to import values"
    ]
    session.rollback()
    assert store.measurements_frame(session).empty
