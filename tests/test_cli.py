"""The `pilotgate` command line, run in-process through its real entry point."""

from __future__ import annotations

import csv
import io
import sys

import numpy as np
import pytest
from sqlmodel import Session

from metrics import store
from metrics.cli import main
from metrics.db import make_engine

LONG_OK = (
    "pilot,metric,week,value,note\n"
    "Helpdesk triage assistant,resolution_time,2012-W27,61.5,\n"
    "Helpdesk triage assistant,resolution_time,2012-07-10,60.25,checked\n"
)


@pytest.fixture
def db(tmp_path):
    return f"sqlite:///{tmp_path / 'cli.db'}"


@pytest.fixture
def run(db, monkeypatch, capsys):
    """Run ``pilotgate --database-url DB ARGS``; returns (exit code, stdout, stderr)."""

    def _run(*args: str, stdin: str | None = None):
        monkeypatch.setattr(sys, "argv", ["pilotgate", "--database-url", db, *args])
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode())))
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capsys.readouterr()
        return code, out, err

    return _run


def read_csv(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))


@pytest.fixture
def seeded(run, shared_data):
    code, out, err = run("seed", "helpdesk", "--file", str(shared_data / "helpdesk.csv"))
    assert code == 0, err
    assert "50 created" in out
    return run


def test_export_summary_as_of_gives_design_numbers(seeded, tmp_path):
    out_file = tmp_path / "summary.csv"
    code, _, err = seeded("export", "summary", "--as-of", "2012-06-30", "-o", str(out_file))
    assert code == 0, err
    text = out_file.read_text(encoding="utf-8")
    assert text.startswith("\ufeffpilot,vendor,stage,metric,role,unit,direction,baseline,")
    (row,) = read_csv(text)
    assert row["pilot"] == "Helpdesk triage assistant"
    assert float(row["baseline"]) == pytest.approx(121.626894, abs=1e-6)
    assert float(row["current"]) == pytest.approx(56.762187, abs=1e-6)
    assert row["weeks_reported"] == "25"
    assert row["status"] == "met"
    assert row["recommendation"] == "go"
    # Welch 95% interval of the improvement (scipy ttest_ind(equal_var=False) on the 25
    # baseline weeks and the last 4 pilot weeks: 28.5188..101.2107 h, / 121.6269 h)
    assert (row["ci_low_pct"], row["ci_high_pct"]) == ("23.4477439513", "83.2140387748")
    assert row["projected_target_week"] == ""  # trend moves away from the target
    assert row["as_of"] == "2012-06-30"
    # plain numbers, float noise rounded away (12 significant digits)
    assert (row["baseline"], row["current"]) == ("121.626894444", "56.7621875")
    assert row["change_pct"] == "-53.3308913631"


def test_tiny_values_stay_exact_and_plain(run, tmp_path):
    pilots = tmp_path / "p.csv"
    pilots.write_text(
        "pilot,start_date,decision_date,metric,unit,direction,baseline,target\n"
        "Tiny,2026-01-05,2026-12-18,failure_p,p,lower_is_better,0.0000025,0.000001\n"
    )
    assert run("pilots", "import", str(pilots))[0] == 0
    weekly = tmp_path / "w.csv"
    weekly.write_text(
        "pilot,metric,week,value\n"
        + "".join(f"Tiny,failure_p,2026-W{w:02d},0.0000012\n" for w in range(2, 6))
    )
    assert run("import", str(weekly))[0] == 0
    code, out, _ = run("export", "summary", "--as-of", "2026-02-08")
    assert code == 0
    (row,) = read_csv(out)
    assert (row["baseline"], row["target"], row["current"]) == (
        "0.0000025",
        "0.000001",
        "0.0000012",
    )
    assert row["status"] != "met"  # 0.0000012 > 0.000001 (lower is better)
    code, out, _ = run("export", "measurements")
    assert code == 0
    assert [r["value"] for r in read_csv(out)] == ["0.0000012"] * 4


def test_as_of_ignores_later_weeks(seeded):
    code, out, _ = seeded("export", "summary", "--as-of", "2012-02-05")
    assert code == 0
    (row,) = read_csv(out)
    assert row["weeks_reported"] == "5"  # 2012-W01 .. W05
    assert row["status"] == "met"


def test_import_export_round_trip(seeded, tmp_path):
    f = tmp_path / "all.csv"
    assert seeded("export", "measurements", "-o", str(f))[0] == 0
    code, out, err = seeded("import", str(f))
    assert code == 0, err
    assert "0 created, 0 updated, 50 unchanged" in out


def test_import_and_dry_run(seeded, tmp_path):
    f = tmp_path / "new.csv"
    f.write_text(LONG_OK)
    code, out, _ = seeded("import", str(f), "--dry-run")
    assert code == 0
    assert "2 created" in out and "nothing written" in out
    code, out, _ = seeded("import", str(f))
    assert code == 0 and "2 created" in out
    code, out, _ = seeded("export", "measurements")
    rows = read_csv(out)
    assert [(r["week"], r["value"], r["note"]) for r in rows[-2:]] == [
        ("2012-W27", "61.5", ""),
        ("2012-W28", "60.25", "checked"),
    ]


def test_bad_import_reports_every_line_and_writes_nothing(seeded, tmp_path):
    f = tmp_path / "bad.csv"
    f.write_text(
        "pilot,metric,week,value\n"
        "Helpdesk triage assistant,resolution_time,2012-W27,61.5\n"
        "Nope,resolution_time,2012-W27,1\n"
        "Helpdesk triage assistant,resolution_time,2012-W28,abc\n"
        "Helpdesk triage assistant,resolution_time,2012-W29,-4\n"
    )
    code, out, err = seeded("import", str(f))
    assert code == 1
    lines = err.strip().splitlines()
    assert any("line 3" in x and "unknown pilot 'Nope'" in x for x in lines)
    assert any(
        "line 4" in x and "column value" in x and "'abc' is not a number" in x for x in lines
    )
    wanted = "line 5, column value: Resolution time must be at least 0: got -4"
    assert any(wanted in x for x in lines)
    assert "Traceback" not in err
    _, out, _ = seeded("export", "measurements")
    assert len(read_csv(out)) == 50  # nothing written


PILOTS = (
    "pilot,vendor,use_case,owner,start_date,decision_date,stage,metric,label,unit,direction,"
    "role,baseline,target,margin,min,max\n"
    "Invoice copilot,DocuMind,AP,Priya,2026-09-07,2026-12-18,pilot,cycle_time,Cycle time,h,"
    "lower_is_better,primary,,20,,0,\n"
    "Invoice copilot,DocuMind,AP,Priya,2026-09-07,2026-12-18,pilot,error_rate,Error rate,%,"
    "lower_is_better,guardrail,4.0,3.5,1.0,0,100\n"
)


def test_pilots_import(run, tmp_path):
    f = tmp_path / "pilots.csv"
    f.write_text(PILOTS)
    code, out, err = run("pilots", "import", str(f))
    assert code == 0, err
    assert "1 pilot" in out
    bad = tmp_path / "bad.csv"
    bad.write_text(PILOTS.replace("guardrail,4.0,3.5", "guardrail,4.0,5.5"))
    code, _, err = run("pilots", "import", str(bad))
    assert code == 1
    assert "line 3" in err and "wrong side of baseline" in err


def test_pilots_import_reads_cost_and_value_model(run, db, tmp_path):
    f = tmp_path / "pilots.csv"
    f.write_text(
        "pilot,start_date,decision_date,metric,unit,direction,baseline,target,cost,"
        "value_per_unit\n"
        "VP test,2026-01-05,2026-06-26,cycle_time,h,lower_is_better,20,10,5000,120.5\n"
        "VP test,2026-01-05,2026-06-26,error_rate,%,lower_is_better,5,4,5000,\n"
    )
    code, _, err = run("pilots", "import", str(f))
    assert code == 0, err
    engine = make_engine(db)
    with Session(engine) as s:
        m = store.metrics_frame(s).set_index("key")
        assert m.loc["cycle_time", "value_per_unit"] == 120.5
        assert np.isnan(m.loc["error_rate", "value_per_unit"])  # empty: no value model
        assert store.pilots_frame(s)["cost"].tolist() == [5000.0]
    engine.dispose()
    bad = tmp_path / "bad.csv"
    bad.write_text(f.read_text().replace("120.5", "lots"))
    code, _, err = run("pilots", "import", str(bad))
    assert code == 1
    assert "line 2" in err and "value_per_unit" in err and "'lots' is not" in err


def test_derive_writes_weekly_medians(run, tmp_path):
    log = tmp_path / "events.csv"
    log.write_text(
        "case,ts\n"
        "a,2012-01-02 08:00:00\na,2012-01-02 20:00:00\n"  # 12 h, week 2012-W01
        "b,2012-01-03 08:00:00\nb,2012-01-04 08:00:00\n"  # 24 h, week 2012-W01
        "c,2012-01-09 00:00:00\nc,2012-01-09 06:00:00\n"  # 6 h, week 2012-W02
    )
    code, out, err = run(
        "derive",
        str(log),
        "--case",
        "case",
        "--time",
        "ts",
        "--pilot",
        "P",
        "--metric",
        "resolution_time",
    )
    assert code == 0, err
    rows = read_csv(out)
    assert [(r["pilot"], r["metric"], r["week"], float(r["value"])) for r in rows] == [
        ("P", "resolution_time", "2012-W01", 18.0),
        ("P", "resolution_time", "2012-W02", 6.0),
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["export", "summary", "-o", "/nonexistent/dir/x.csv"], "folder /nonexistent/dir does"),
        (["export", "summary", "-o", "/tmp"], "/tmp: is a folder"),
        (["export", "summary", "-o", "/etc/passwd/x.csv"], "folder /etc/passwd does not exist"),
        (["export", "summary", "-o", "/dev/full"], "/dev/full: cannot write"),
        (["import", "/proc/self/mem"], "/proc/self/mem: cannot read"),
        (["export", "measurements", "-o", "/nonexistent/x.csv"], "does not exist"),
        (["derive", "/tmp", "--case", "a", "--time", "b"], "/tmp: is a folder"),
        (["seed", "helpdesk", "--file", "/tmp"], "/tmp: is a folder"),
        (["seed", "demo", "--today", "1600-01-01"], "--today 1600-01-01 is outside 1900..2199"),
        (["seed", "demo", "--today", "1900-01-01"], "use a date from 1901-01-01 up to today"),
        (["seed", "demo", "--today", "2199-12-31"], "use a date from 1901-01-01 up to today"),
        (["export", "summary", "--as-of", "0001-01-01"], "--as-of 0001-01-01 is outside"),
    ],
)
def test_path_and_date_mistakes_are_one_line(run, args, message):
    code, _, err = run(*args)
    assert code == 1
    assert message in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_serve_refuses_a_port_out_of_range(run):
    code, _, err = run("serve", "--port", "99999")
    assert code == 2
    assert "less than or equal to 65535" in err and "Traceback" not in err


def test_a_file_that_is_not_a_database_is_an_error(monkeypatch, capsys, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    url = f"sqlite:///{notes}"
    monkeypatch.setattr(sys, "argv", ["pilotgate", "--database-url", url, "init"])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 2
    assert "file is not a database" in capsys.readouterr().err
    assert notes.read_text() == "hello"


def test_sqlite_url_in_a_missing_folder_is_an_error(monkeypatch, capsys, tmp_path):
    url = f"sqlite:///{tmp_path}/no/such/dir/x.db"
    monkeypatch.setattr(sys, "argv", ["pilotgate", "--database-url", url, "export", "summary"])
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 2
    assert f"folder {tmp_path}/no/such/dir does not exist" in capsys.readouterr().err
    assert not (tmp_path / "no").exists()


def test_derive_reads_stdin(run):
    code, out, err = run(
        "derive",
        "-",
        "--case",
        "case",
        "--time",
        "ts",
        stdin="case,ts\na,2012-01-02 08:00:00\na,2012-01-02 20:00:00\n",
    )
    assert code == 0, err
    assert read_csv(out)[0]["value"] == "12.0"
    assert "pass --pilot and --metric" in err


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["export", "summary", "--as-of", "2012-13-01"], 1, "is not a date: use YYYY-MM-DD"),
        (["import", "/no/such/file.csv"], 1, "no such file"),
        (["derive", "/no/such.csv", "--case", "a", "--time", "b"], 1, "no such file"),
        (["derive", "/no/such.csv", "--case", "a", "--time", "b", "--unit", "w"], 1, "--unit"),
    ],
)
def test_user_mistakes_are_one_line(run, args, code, message):
    got, _, err = run(*args)
    assert got == code
    assert message in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_unreachable_database_masks_password(monkeypatch, capsys):
    monkeypatch.setattr(
        sys,
        "argv",
        ["pilotgate", "--database-url", "postgresql+psycopg://u:s3cret@127.0.0.1:1/x", "init"],
    )
    with pytest.raises(SystemExit) as exc:
        main()
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert "s3cret" not in err and "u:***@127.0.0.1:1/x" in err


def test_init_seed_if_empty_seeds_once(run, shared_data, monkeypatch):
    monkeypatch.setenv("PILOTGATE_SHARED_DATA_DIR", str(shared_data))
    from metrics.settings import get_settings

    get_settings.cache_clear()
    try:
        code, out, err = run("init", "--seed-if-empty")
        assert code == 0, err
        assert "seeded the demo portfolio" in out and "help-desk pilot (50 weekly" in out
        code, out, _ = run("init", "--seed-if-empty")
        assert "already has pilots: nothing seeded" in out
    finally:
        get_settings.cache_clear()


def test_invalid_setting_is_one_line(run, monkeypatch):
    from metrics.settings import get_settings

    monkeypatch.setenv("PILOTGATE_ACTOR", "x" * 201)
    get_settings.cache_clear()
    try:
        code, _, err = run("export", "summary")
    finally:
        monkeypatch.delenv("PILOTGATE_ACTOR")
        get_settings.cache_clear()
    assert code == 2
    assert "error: configuration: actor: String should have at most 200 characters" in err
