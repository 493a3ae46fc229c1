"""Tests for metrics.csvio against the database (SQLite, and PostgreSQL when set)."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from metrics import csvio, store
from metrics.csvio import (
    export_measurements_frame,
    import_measurements,
    import_pilots,
    to_csv_text,
)
from tests.factories import add_weeks, make_pilot, metric_id, metric_in

HD = "Helpdesk triage assistant"
ODD = 'Café, "Zoë" =test'
ODD_CSV = '"Café, ""Zoë"" =test"'  # as written in a CSV file
HEADER = "pilot,metric,week,value,note\n"


@pytest.fixture
def helpdesk(session) -> dict[str, int]:
    """One pilot with resolution_time (h, >= 0) and error_rate (%, 0..100); committed."""
    make_pilot(
        session,
        HD,
        metrics=[
            metric_in("resolution_time"),
            metric_in("error_rate", unit="%", target=4.0, max_value=100.0),
        ],
    )
    session.commit()
    return {k: metric_id(session, HD, k) for k in ("resolution_time", "error_rate")}


def stored(session) -> pd.DataFrame:
    m = store.measurements_frame(session)
    return m.sort_values(["metric_id", "week"]).reset_index(drop=True)


def counts(session) -> tuple[int, int]:
    return len(store.measurements_frame(session)), len(store.revisions_frame(session))


def run(session, text, **kw):
    rep = import_measurements(session=session, actor="ann", data=text, **kw)
    if rep.ok:
        session.commit()
    else:
        session.rollback()
    return rep


def test_import_writes_exactly_the_values(session, helpdesk):
    text = (
        HEADER + f"{HD},resolution_time,2012-W01,101.5,before start\n"
        f"{HD},resolution_time,2012-01-11,97.25,\n"
        f'{HD},error_rate,2012-W02,4.75,"checked, twice"\n'
        f"{HD},resolution_time,2012-W03,0,\n"
    )
    rep = run(session, text.encode("utf-8-sig"), source="week1.csv")
    assert rep.ok, rep.errors
    assert (rep.created, rep.updated, rep.unchanged, rep.written) == (4, 0, 0, True)
    assert rep.summary_line() == "4 rows: 4 created, 0 updated, 0 unchanged"
    got = stored(session)
    rt, er = helpdesk["resolution_time"], helpdesk["error_rate"]
    assert got[["metric_id", "week", "value", "note", "entered_by", "version"]].values.tolist() == [
        [rt, pd.Timestamp("2012-01-02"), 101.5, "before start", "ann", 1],
        [rt, pd.Timestamp("2012-01-09"), 97.25, "", "ann", 1],
        [rt, pd.Timestamp("2012-01-16"), 0.0, "", "ann", 1],
        [er, pd.Timestamp("2012-01-09"), 4.75, "checked, twice", "ann", 1],
    ]
    rev = store.revisions_frame(session)
    assert rev["action"].tolist() == ["create"] * 4
    assert set(rev["reason"]) == {"import week1.csv"}
    assert set(rev["actor"]) == {"ann"}


def test_wide_form_import(session, helpdesk):
    text = f"pilot,week,resolution_time,error_rate\n{HD},2012-W01,100,5\n{HD},2012-W02,,4.5\n"
    rep = run(session, text)
    assert rep.ok and rep.form == "wide"
    assert rep.created == 3
    got = stored(session)
    assert got["value"].tolist() == [100.0, 5.0, 4.5]


def test_reimport_is_unchanged(session, helpdesk):
    text = "".join(f"{HD},resolution_time,2012-W{w:02d},{100 - w * 1.5},\n" for w in range(1, 11))
    first = run(session, HEADER + text)
    assert (first.created, first.updated, first.unchanged) == (10, 0, 0)
    before = counts(session)
    again = run(session, HEADER + text)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 10)
    assert again.rows["action"].tolist() == ["unchanged"] * 10
    assert counts(session) == before


def test_changed_value_updates_with_a_new_version(session, helpdesk):
    run(
        session, HEADER + f"{HD},resolution_time,2012-W01,100,\n{HD},resolution_time,2012-W02,90,\n"
    )
    rep = run(
        session,
        HEADER
        + f"{HD},resolution_time,2012-W01,100,\n{HD},resolution_time,2012-W02,85.5,typo fixed\n",
        update=True,
    )
    assert (rep.created, rep.updated, rep.unchanged) == (0, 1, 1)
    got = stored(session)
    assert got[["value", "note", "version"]].values.tolist() == [
        [100.0, "", 1],
        [85.5, "typo fixed", 2],
    ]
    upd = store.revisions_frame(session).query("action == 'update'")
    assert upd[["old_value", "new_value", "new_note"]].values.tolist() == [
        [90.0, 85.5, "typo fixed"]
    ]


@pytest.mark.parametrize("bad_at", ["first", "middle", "last"])
def test_bad_file_writes_nothing(session, helpdesk, bad_at):
    add_weeks(session, helpdesk["resolution_time"], date(2011, 12, 26), [120.0])
    session.commit()
    before = counts(session)
    rows = [f"{HD},resolution_time,2012-W{w:02d},{w},\n" for w in range(1, 21)]
    rows.append(f"{HD},resolution_time,2011-W52,119,\n")  # an update that must not happen
    bad = f"{HD},error_rate,2012-W05,150,\n"
    pos = {"first": 0, "middle": 10, "last": len(rows)}[bad_at]
    rows.insert(pos, bad)
    rep = run(session, HEADER + "".join(rows))
    assert not rep.ok
    assert [(e.line, e.column) for e in rep.errors] == [(pos + 2, "value")]
    assert rep.written is False and rep.rows.empty
    assert counts(session) == before
    assert stored(session)["value"].tolist() == [120.0]


def test_dry_run_reports_counts_and_writes_nothing(session, helpdesk):
    add_weeks(session, helpdesk["resolution_time"], date(2012, 1, 2), [100.0, 90.0])
    session.commit()
    before = counts(session)
    text = (
        HEADER + f"{HD},resolution_time,2012-W01,100,\n"
        f"{HD},resolution_time,2012-W02,91,\n"
        f"{HD},resolution_time,2012-W03,80,\n"
    )
    rep = run(session, text, dry_run=True, update=True)
    assert rep.ok
    assert (rep.created, rep.updated, rep.unchanged, rep.written) == (1, 1, 1, False)
    assert rep.summary_line() == (
        "3 rows: 1 created, 1 updated, 1 unchanged (dry run, nothing written)"
    )
    assert counts(session) == before


def test_store_error_becomes_a_file_error(session, helpdesk, monkeypatch):
    def refuse(**kw):
        raise store.StoreError("row 1: something the store refused")

    monkeypatch.setattr(store, "write_measurements", refuse)
    rep = run(session, HEADER + f"{HD},resolution_time,2012-W01,100,\n")
    assert [(e.line, e.column, e.reason) for e in rep.errors] == [
        (None, None, "row 1: something the store refused")
    ]
    assert rep.summary_line() == "1 error, nothing written"
    assert counts(session) == (0, 0)


# =========================================================================== export


def test_export_frame_shape_and_order(session, helpdesk):
    make_pilot(session, "Claims intake", metrics=[metric_in("cycle_time", target=10.0)])
    session.flush()
    add_weeks(
        session, metric_id(session, "Claims intake", "cycle_time"), date(2020, 12, 28), [12.0]
    )
    add_weeks(session, helpdesk["resolution_time"], date(2012, 1, 9), [90.0, None, 85.0])
    add_weeks(session, helpdesk["error_rate"], date(2012, 1, 2), [5.0])
    session.commit()
    df = export_measurements_frame(session)
    assert list(df.columns) == ["pilot", "metric", "week", "value", "note"]
    assert df.dtypes.astype(str).tolist() == ["object", "object", "object", "float64", "object"]
    assert df.values.tolist() == [
        ["Claims intake", "cycle_time", "2020-W53", 12.0, ""],
        [HD, "error_rate", "2012-W01", 5.0, ""],
        [HD, "resolution_time", "2012-W02", 90.0, ""],
        [HD, "resolution_time", "2012-W04", 85.0, ""],
    ]
    assert to_csv_text(df).splitlines()[:2] == [
        "\ufeffpilot,metric,week,value,note",
        "Claims intake,cycle_time,2020-W53,12.0,",
    ]


def test_export_import_round_trip(session):
    make_pilot(session, ODD, metrics=[metric_in("resolution_time"), metric_in("trust", unit="pts")])
    make_pilot(session, "=SUM(A1)", metrics=[metric_in("cycle_time", target=3.0, min_value=None)])
    session.flush()
    rt = metric_id(session, ODD, "resolution_time")
    trust = metric_id(session, ODD, "trust")
    ct = metric_id(session, "=SUM(A1)", "cycle_time")
    notes = [
        'late, "approx"',
        "-3 vs last week",
        "'=quoted already",
        "two\nlines",
        "Zoë's",
        "@team",
    ]
    rows = [
        {
            "metric_id": rt,
            "week": date(2012, 1, 2) + pd.Timedelta(weeks=i).to_pytimedelta(),
            "value": 100 - i * 0.1,
            "note": n,
        }
        for i, n in enumerate(notes)
    ]
    rows += [
        {"metric_id": trust, "week": date(2020, 12, 28), "value": 0.1 + 0.2, "note": ""},
        {"metric_id": ct, "week": date(2012, 1, 2), "value": -25.0, "note": "=1+1"},
        {"metric_id": ct, "week": date(2012, 1, 9), "value": 1e-05, "note": "+"},
    ]
    store.write_measurements(session=session, actor="seed", rows=pd.DataFrame(rows))
    session.commit()
    before = stored(session)

    text = to_csv_text(export_measurements_frame(session))
    assert "'=SUM(A1),cycle_time,2012-W01,-25.0,'=1+1" in text
    rep = run(session, text.encode("utf-8"), source="export.csv")
    assert rep.ok, rep.errors
    assert (rep.created, rep.updated, rep.unchanged) == (0, 0, len(rows))
    after = stored(session)
    pd.testing.assert_frame_equal(before, after)
    assert sorted(rep.rows["pilot"].unique()) == sorted([ODD, "=SUM(A1)"])


# =========================================================================== pilots

PH = (
    "pilot,vendor,use_case,owner,start_date,decision_date,stage,metric,label,unit,"
    "direction,role,baseline,target,margin,min,max\n"
)


def pilots_file(target: float = 80) -> str:
    return (
        PH + f"{HD},Acme AI,Triage,Ann,2012-01-02,2012-06-29,pilot,resolution_time,,h,"
        f"lower_is_better,primary,120,{target},,0,\n"
        f"{HD},Acme AI,Triage,Ann,2012-01-02,2012-06-29,pilot,error_rate,,%,"
        "lower_is_better,guardrail,5,4,0.5,0,100\n"
        f"{ODD_CSV},Beta,,,2012-02-06,2012-08-31,discovery,conversion_lift,,pp,"
        "higher_is_better,primary,,2,,,\n"
    )


def run_pilots(session, text, **kw):
    rep = import_pilots(session=session, actor="admin", data=text, **kw)
    if rep.ok:
        session.commit()
    else:
        session.rollback()
    return rep


def test_import_pilots_creates_then_updates(session):
    rep = run_pilots(session, pilots_file())
    assert rep.ok, rep.errors
    assert (rep.created, rep.updated, rep.metrics_created, rep.metrics_updated) == (2, 0, 3, 0)
    assert rep.summary_line() == "2 pilots: 2 created, 0 updated; metrics: 3 created, 0 updated"
    p = store.pilots_frame(session).set_index("pilot")
    assert p.loc[ODD, "stage"] == "discovery" and p.loc[HD, "vendor"] == "Acme AI"
    m = store.metrics_frame(session)
    assert m[["pilot", "key", "target", "baseline"]].fillna(-1).values.tolist() == [
        [ODD, "conversion_lift", 2.0, -1.0],
        [HD, "error_rate", 4.0, 5.0],
        [HD, "resolution_time", 80.0, 120.0],
    ]
    again = run_pilots(session, pilots_file(target=70))
    # only what really changed counts: one pilot's metric target; the other is unchanged
    assert (again.created, again.updated, again.metrics_created, again.metrics_updated) == (
        0,
        1,
        0,
        1,
    )
    assert again.unchanged == 1
    assert again.summary_line() == (
        "2 pilots: 0 created, 1 updated, 1 unchanged; metrics: 0 created, 1 updated"
    )
    assert sorted(again.details) == sorted(
        [f"{ODD}: nothing changed.", f"Saved {HD}: metric changed: resolution_time (target)."]
    )
    m = store.metrics_frame(session)
    assert m.set_index("key").loc["resolution_time", "target"] == 70.0
    assert len(store.pilots_frame(session)) == 2


def test_import_pilots_dry_run(session):
    run_pilots(session, PH + pilots_file().splitlines()[1] + "\n")
    before = store.metrics_frame(session)
    rep = run_pilots(session, pilots_file(target=75), dry_run=True)
    assert rep.ok and rep.written is False
    assert (rep.created, rep.updated, rep.metrics_created, rep.metrics_updated) == (1, 1, 2, 1)
    assert rep.summary_line().endswith("(dry run, nothing written)")
    pd.testing.assert_frame_equal(store.metrics_frame(session), before)


def test_bad_pilot_file_writes_nothing(session):
    bad = pilots_file() + (
        f"{ODD_CSV},Beta,,,2012-02-06,2012-08-31,discovery,trust,,pts,lower_is_better,primary,3,4,,,\n"
    )
    rep = run_pilots(session, bad)
    assert [(e.line, e.column) for e in rep.errors] == [(5, None)]
    assert "wrong side of baseline 3" in rep.errors[0].reason
    assert store.pilots_frame(session).empty and store.metrics_frame(session).empty


def test_store_error_on_second_pilot_rolls_back_the_first(session, monkeypatch):
    real = store.save_pilot
    calls = []

    def flaky(**kw):
        calls.append(kw["pilot_in"].name)
        if len(calls) == 2:
            raise store.StoreError("refused")
        return real(**kw)

    monkeypatch.setattr(store, "save_pilot", flaky)
    rep = import_pilots(session=session, actor="admin", data=pilots_file())
    assert [(e.line, e.reason) for e in rep.errors] == [(4, f"pilot '{ODD}': refused")]
    assert rep.written is False
    session.commit()  # what a careless caller might do: still nothing to keep
    assert store.pilots_frame(session).empty


def test_measurements_for_imported_pilots(session):
    run_pilots(session, pilots_file())
    rep = run(session, HEADER + f"{ODD_CSV},conversion_lift,2012-W06,1.5,\n")
    assert rep.ok and rep.created == 1
    assert (
        csvio.parse_measurements_csv(
            HEADER + f"{ODD_CSV},conversion_lift,2012-W06,1.5,\n",
            store.metrics_frame(session),
            existing=store.measurements_frame(session),
        ).unchanged
        == 1
    )


# =========================================================================== overwriting


def fix_file() -> str:
    return (
        HEADER + f"{HD},resolution_time,2012-W01,100,\n"  # unchanged
        f"{HD},resolution_time,2012-W02,85.5,typo fixed\n"  # changes 90 -> 85.5
        f"{HD},resolution_time,2012-W03,80,\n"  # new
    )


@pytest.fixture
def two_weeks(session, helpdesk) -> int:
    """resolution_time 2012-W01 = 100, 2012-W02 = 90 (committed); returns its metric id."""
    add_weeks(session, helpdesk["resolution_time"], date(2012, 1, 2), [100.0, 90.0])
    session.commit()
    return helpdesk["resolution_time"]


@pytest.mark.parametrize("dry_run", [False, True])
def test_changes_are_refused_without_update(session, two_weeks, dry_run):
    before = counts(session)
    rep = run(session, fix_file(), update=False, dry_run=dry_run, source="fix.csv")
    assert rep.needs_confirmation and not rep.ok and rep.errors == []
    assert rep.written is False
    assert (rep.created, rep.updated, rep.unchanged) == (1, 1, 1)
    assert rep.changes.to_dict("records") == [
        {
            "line": 3,
            "pilot": HD,
            "metric": "resolution_time",
            "week": date(2012, 1, 9),
            "week_label": "2012-W02",
            "metric_id": two_weeks,
            "old_value": 90.0,
            "value": 85.5,
            "old_note": "",
            "note": "typo fixed",
        }
    ]
    assert rep.change_lines() == [
        f"line 3: {HD}, resolution_time, 2012-W02: 90 -> 85.5; note '' -> 'typo fixed'"
    ]
    assert rep.summary_line() == (
        "3 rows: 1 created, 1 updated, 1 unchanged; nothing written: 1 stored value would "
        "change and the overwrite was not confirmed"
    )
    assert counts(session) == before


def test_update_writes_the_changes_with_the_reason(session, two_weeks):
    rep = run(session, fix_file(), update=True, reason="vendor resent W02", source="fix.csv")
    assert rep.ok and rep.written
    assert (rep.created, rep.updated, rep.unchanged, rep.reason) == (1, 1, 1, "vendor resent W02")
    assert stored(session)[["value", "note", "version"]].values.tolist() == [
        [100.0, "", 1],
        [85.5, "typo fixed", 2],
        [80.0, "", 1],
    ]
    rev = store.revisions_frame(session)
    rev = rev[rev["actor"] == "ann"]
    assert rev[["action", "old_value", "new_value", "reason"]].fillna(-1).values.tolist() == [
        ["create", -1, 80.0, "vendor resent W02"],
        ["update", 90.0, 85.5, "vendor resent W02"],
    ]


@pytest.mark.parametrize(
    ("reason", "stored_reason"), [(None, "import fix.csv"), ("  ", "import fix.csv")]
)
def test_default_reason_is_the_file_name(session, two_weeks, reason, stored_reason):
    rep = run(session, fix_file(), update=True, reason=reason, source="fix.csv")
    assert rep.reason == stored_reason
    rev = store.revisions_frame(session)
    assert set(rev.loc[rev["actor"] == "ann", "reason"]) == {stored_reason}


def test_without_changes_update_false_writes(session, two_weeks):
    rep = run(session, HEADER + f"{HD},resolution_time,2012-W03,80,\n", update=False)
    assert rep.ok and rep.written and (rep.created, rep.updated) == (1, 0)
    assert rep.changes.empty


def test_reimport_of_an_updated_file_is_all_unchanged(session, two_weeks):
    run(session, fix_file(), update=True)
    before = counts(session)
    again = run(session, fix_file(), update=False)
    assert again.ok and again.written
    assert again.summary_line() == "3 rows: 0 created, 0 updated, 3 unchanged"
    assert counts(session) == before


def test_confirmed_changes_must_still_be_the_changes(session, two_weeks):
    """The person confirmed 90 -> 85.5; someone else stored 95 meanwhile: refused."""
    preview = run(session, fix_file(), dry_run=True)
    add_weeks(session, two_weeks, date(2012, 1, 9), [95.0], actor="bob")
    session.commit()
    before = counts(session)
    rep = run(session, fix_file(), update=True, expected_changes=preview.changes)
    # issue 10: the refusal names who changed what (store.conflict_message)
    ((line, reason),) = [(e.line, e.reason) for e in rep.errors]
    assert line is None
    assert reason.startswith(
        "the stored values changed since the preview; nothing written: Resolution time "
        "2012-W02 was changed by bob to 95.0 h at "
    )
    assert reason.endswith(
        "while you were editing; your value 85.5 (line 3) was not saved. Reload to see it."
    )
    assert counts(session) == before
    ok = run(
        session,
        fix_file(),
        update=True,
        expected_changes=run(session, fix_file(), dry_run=True).changes,
    )
    assert ok.ok and ok.updated == 1
    assert stored(session)["value"].tolist() == [100.0, 85.5, 80.0]


def test_week_written_by_someone_else_between_check_and_write(session, two_weeks, monkeypatch):
    """Without --update nothing stored may change, even when another writer stores one of
    the file's weeks after the file was checked (simulated: the check sees none stored)."""
    before = counts(session)
    real = store.measurements_frame
    monkeypatch.setattr(store, "measurements_frame", lambda s, **kw: real(s, **kw).iloc[:0])
    rep = run(session, fix_file(), update=False)
    assert [(e.line, e.reason) for e in rep.errors] == [
        (
            None,
            "1 stored value of this file's weeks was written by someone else while it was "
            "checked; nothing written: try again to see what would change",
        )
    ]
    monkeypatch.undo()
    assert counts(session) == before
    assert stored(session)["value"].tolist() == [100.0, 90.0]


# =========================================================================== formats, stored


def test_spreadsheet_formats_are_stored_exactly(session, helpdesk):
    text = (
        "sep=;\r\n"
        "Pilot;Metric;Week;Value;Note\r\n"
        f"{HD};resolution_time;02.01.2012;1.061,25;\r\n"
        f'{HD};error_rate;16/01/2012;"4,75 %";"checked; twice"\r\n'
        ";;;;\r\n"
        "pilot;metric;week;value;note\r\n"
        f"{HD};resolution_time;2012-W03;0,5;\r\n"
    )
    rep = run(session, text.encode("utf-8-sig"), source="excel.csv")
    assert rep.ok, rep.errors
    assert [str(n) for n in rep.notices] == [
        "line 6: the header is repeated here (as on line 2): line skipped"
    ]
    rt, er = helpdesk["resolution_time"], helpdesk["error_rate"]
    assert stored(session)[["metric_id", "week", "value", "note"]].values.tolist() == [
        [rt, pd.Timestamp("2012-01-02"), 1061.25, ""],
        [rt, pd.Timestamp("2012-01-16"), 0.5, ""],
        [er, pd.Timestamp("2012-01-16"), 4.75, "checked; twice"],  # never 0.0475
    ]


# =========================================================================== as the store

STORE_REFUSES = [
    # (id, value cell, note, fragment of the parser's reason)
    ("above the maximum", "100.5", "", "Error rate must be between 0 and 100: got 100.5"),
    ("below the minimum", "-0,5", "", "Error rate must be between 0 and 100: got -0.5"),
    ("too large", "1e16", "", "'1e16' is too large (limit ±1e+15)"),
    ("control character in the note", "4", "a\x00b", "note contains control characters"),
]


@pytest.mark.parametrize(
    ("cell", "note", "reason"), [c[1:] for c in STORE_REFUSES], ids=[c[0] for c in STORE_REFUSES]
)
def test_import_refuses_what_the_store_refuses(session, helpdesk, cell, note, reason):
    text = f'pilot;metric;week;value;note\n{HD};error_rate;2012-W03;"{cell}";{note}\n'
    rep = run(session, text)
    assert [(e.line, e.column) for e in rep.errors] == [(2, "note" if note else "value")]
    assert reason in rep.errors[0].reason
    assert counts(session) == (0, 0)
    # the store, given the same row, refuses it too
    value = float(cell.replace(",", "."))
    row = pd.DataFrame(
        {
            "metric_id": [helpdesk["error_rate"]],
            "week": [date(2012, 1, 16)],
            "value": [value],
            "note": [note],
        }
    )
    with pytest.raises(store.StoreError):
        store.write_measurements(session=session, actor="ann", rows=row)
    session.rollback()


# =========================================================================== notes kept


@pytest.mark.parametrize(
    ("text", "update", "expected"),
    [
        # same value, wide form (no notes possible): unchanged, note kept
        (
            f"pilot,week,resolution_time\n{HD},2012-W02,73.26208333333334\n",
            False,
            (0, 0, 1, 73.26208333333334, "median of 70 tickets"),
        ),
        # same value, long form without a note column: unchanged, note kept
        (
            f"pilot,metric,week,value\n{HD},resolution_time,2012-W02,73.26208333333334\n",
            False,
            (0, 0, 1, 73.26208333333334, "median of 70 tickets"),
        ),
        # a new value without a note column: updated, note still kept
        (
            f"pilot,metric,week,value\n{HD},resolution_time,2012-W02,70\n",
            True,
            (0, 1, 0, 70.0, "median of 70 tickets"),
        ),
        # an explicit empty note cell clears the note (the file says so)
        (
            HEADER + f"{HD},resolution_time,2012-W02,73.26208333333334,\n",
            True,
            (0, 1, 0, 73.26208333333334, ""),
        ),
    ],
    ids=["wide-same", "long-no-note-column-same", "long-no-note-column-new-value", "empty-note"],
)
def test_a_file_without_notes_keeps_the_stored_notes(session, helpdesk, text, update, expected):
    """QA: re-importing a vendor's wide sheet (no notes) erased every stored note and
    an identical file was refused as a change."""
    rows = pd.DataFrame(
        {
            "metric_id": [helpdesk["resolution_time"]],
            "week": [date(2012, 1, 9)],
            "value": [73.26208333333334],
            "note": ["median of 70 tickets"],
        }
    )
    store.write_measurements(session=session, actor="seed", rows=rows)
    session.commit()
    rep = run(session, text, update=update)
    assert rep.ok, [e.reason for e in rep.errors]
    got = stored(session).iloc[0]
    assert (rep.created, rep.updated, rep.unchanged, got["value"], got["note"]) == expected


def test_bulk_written_rows_read_back_like_orm_rows(session, helpdesk):
    """Measurements and revisions go in through the driver's bulk path (executemany /
    COPY): read through the ORM they have the same types and values as rows written
    one at a time: a date week, an aware UTC timestamp, NULL (never NaN) old values."""
    from datetime import UTC, datetime

    from sqlmodel import select

    from metrics.models import Measurement, MeasurementRevision

    mid = helpdesk["resolution_time"]
    before = datetime.now(UTC)
    rows = pd.DataFrame(
        {
            "metric_id": [mid, mid],
            "week": [date(2026, 1, 5), date(2026, 1, 12)],
            "value": [61.2, 0.0000012],
            "note": ['Zoë\'s = note, "quoted"\ttab', ""],
        }
    )
    counts = store.write_measurements(session=session, actor="Zoë", rows=rows, reason="bulk")
    session.commit()
    assert counts == store.WriteCounts(created=2)
    got = session.exec(select(Measurement).order_by(Measurement.week)).all()
    assert [(m.week, m.value, m.note, m.version, m.entered_by) for m in got] == [
        (date(2026, 1, 5), 61.2, 'Zoë\'s = note, "quoted"\ttab', 1, "Zoë"),
        (date(2026, 1, 12), 0.0000012, "", 1, "Zoë"),
    ]
    assert all(m.entered_at.tzinfo is not None and m.entered_at >= before for m in got)
    revs = session.exec(select(MeasurementRevision).order_by(MeasurementRevision.week)).all()
    assert [
        (r.week, r.action, r.old_value, r.new_value, r.old_note, r.new_note, r.reason) for r in revs
    ] == [
        (date(2026, 1, 5), "create", None, 61.2, None, 'Zoë\'s = note, "quoted"\ttab', "bulk"),
        (date(2026, 1, 12), "create", None, 0.0000012, None, "", "bulk"),
    ]
    assert revs[0].at == got[0].entered_at
    # an update through the same path keeps the old value and note on its revision
    rows2 = rows.assign(value=[62.5, 0.0000012])
    counts = store.write_measurements(session=session, actor="Ana", rows=rows2, reason="fix")
    session.commit()
    assert counts == store.WriteCounts(updated=1, unchanged=1)
    last = session.exec(select(MeasurementRevision).order_by(MeasurementRevision.id)).all()[-1]
    assert (last.action, last.old_value, last.new_value, last.actor) == (
        "update",
        61.2,
        62.5,
        "Ana",
    )
