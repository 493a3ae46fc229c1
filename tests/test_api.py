"""The HTTP API (DESIGN §11, docs/api.md) through FastAPI's TestClient, on SQLite and on
PostgreSQL when its URL is set: tokens and their scope, every status code, hostile
input (always a 4xx with JSON, nothing written), the byte-for-byte CSV export and two
clients writing the same cells at once."""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import date

import pandas as pd
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlmodel import Session

from metrics import store
from metrics.api import create_app
from metrics.cli import main
from metrics.db import session_scope
from metrics.errors import PermissionDenied, StoreError
from metrics.models import ApiToken, ApiTokenCreate, MeasurementRevision
from metrics.settings import Settings
from tests.factories import add_weeks, make_pilot, make_token, make_user, metric_id

HELPDESK = "Helpdesk triage assistant"
OTHER = "Invoice copilot"
MEASUREMENTS = "/api/v1/measurements"


def row(week: str = "2012-W03", value: float = 61.2, pilot: str = HELPDESK, **kw) -> dict:
    return {"pilot": pilot, "metric": "resolution_time", "week": week, "value": value, **kw}


@pytest.fixture
def world(engine):
    """Two pilots (one with 3 stored weeks) and four tokens; yields (client, tokens)."""
    with session_scope(engine) as s:
        make_pilot(s, HELPDESK)
        make_pilot(s, OTHER, vendor="DocuMind")
        add_weeks(s, metric_id(s, HELPDESK, "resolution_time"), date(2012, 1, 2), [90, 85, 80])
        tokens = {
            "editor": make_token(s, "acme-nightly", role="editor"),
            "viewer": make_token(s, "bi-reader", role="viewer"),
            "scoped": make_token(s, "helpdesk-vendor", role="editor", pilots=[HELPDESK]),
            "revoked": make_token(s, "old-job", role="editor"),
        }
        store.revoke_api_token(session=s, actor="tester", name="old-job")
    with TestClient(create_app(engine)) as client:
        yield client, tokens


def auth(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def revision_count(engine) -> int:
    with Session(engine) as s:
        return s.execute(sa.select(sa.func.count(MeasurementRevision.id))).scalar_one()


def stored(engine, pilot: str = HELPDESK) -> dict[str, tuple[float, str]]:
    """{week label: (value, note)} of a pilot's resolution_time."""
    with Session(engine) as s:
        m = metric_id(s, pilot, "resolution_time")
        df = store.measurements_frame(s)
    df = df[df["metric_id"] == m]
    return {
        f"{w.isocalendar().year}-W{w.isocalendar().week:02d}": (v, n)
        for w, v, n in zip(df["week"], df["value"], df["note"], strict=True)
    }


# =========================================================================== the documents


def test_openapi_document_and_docs_are_served(world):
    client, _ = world
    doc = client.get("/api/v1/openapi.json")
    assert doc.status_code == 200
    paths = doc.json()["paths"]
    assert set(paths) == {
        "/api/v1/measurements",
        "/api/v1/pilots",
        "/api/v1/summary",
        "/api/v1/summary.csv",
        "/api/v1/pilots/{pilot_id}/report.pdf",
    }
    body = paths["/api/v1/measurements"]["post"]["requestBody"]["content"]
    assert set(body) == {"application/json", "text/csv"}
    assert "MeasurementsIn" in doc.json()["components"]["schemas"]
    assert client.get("/api/v1/docs").status_code == 200


# =========================================================================== 401 / 403


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer pgt_not-a-real-token"},
        {"Authorization": "Bearer " + "x" * 5000},
    ],
    ids=["missing", "empty", "basic", "unknown", "huge"],
)
def test_missing_or_unknown_token_is_401(world, headers):
    client, _ = world
    for method, path in (("get", "/api/v1/pilots"), ("get", "/api/v1/summary")):
        r = client.request(method, path, headers=headers)
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == "Bearer"
        assert isinstance(r.json()["detail"], str)


def test_revoked_token_is_401_and_its_secret_is_never_echoed(world):
    client, tokens = world
    r = client.get("/api/v1/pilots", headers=auth(tokens["revoked"]))
    assert r.status_code == 401
    assert r.json() == {"detail": "unknown or revoked API token"}
    assert tokens["revoked"] not in r.text


def test_viewer_revoked_and_other_pilot_tokens_each_write_nothing(world, engine):
    client, tokens = world
    before, values = revision_count(engine), stored(engine)
    attempts = [
        ("viewer", [row("2012-W04", 70)], 403, "viewer token"),
        ("revoked", [row("2012-W04", 70)], 401, "revoked"),
        ("scoped", [row("2012-W04", 70, pilot=OTHER)], 403, "outside its scope"),
        # one in-scope row does not let an out-of-scope row through
        ("scoped", [row("2012-W04", 70), row("2012-W04", 70, pilot=OTHER)], 403, OTHER),
    ]
    for who, rows, status, words in attempts:
        r = client.post(MEASUREMENTS, json={"rows": rows}, headers=auth(tokens[who]))
        assert r.status_code == status, (who, r.text)
        assert words in r.json()["detail"]
    csv_body = f"pilot,metric,week,value\n{OTHER},resolution_time,2012-W04,70\n"
    r = client.post(
        MEASUREMENTS,
        content=csv_body,
        headers={**auth(tokens["scoped"]), "Content-Type": "text/csv"},
    )
    assert r.status_code == 403
    assert revision_count(engine) == before
    assert stored(engine) == values
    assert stored(engine, OTHER) == {}


def test_scoped_token_403_never_tells_whether_another_pilot_exists(world):
    client, tokens = world
    answers = {}
    for name in (OTHER, "No such pilot"):
        r = client.post(
            MEASUREMENTS, json={"rows": [row(pilot=name)]}, headers=auth(tokens["scoped"])
        )
        answers[name] = (r.status_code, r.json()["detail"].replace(name, "NAME"))
    assert answers[OTHER] == answers["No such pilot"]
    assert answers[OTHER][0] == 403


def test_scoped_token_reads_only_its_pilots(world):
    client, tokens = world
    pilots = client.get("/api/v1/pilots", headers=auth(tokens["scoped"])).json()
    assert [p["name"] for p in pilots] == [HELPDESK]
    assert [m["key"] for m in pilots[0]["metrics"]] == ["resolution_time"]
    everyone = client.get("/api/v1/pilots", headers=auth(tokens["viewer"])).json()
    assert [p["name"] for p in everyone] == [HELPDESK, OTHER]
    summary = client.get(
        "/api/v1/summary", params={"as_of": "2012-06-30"}, headers=auth(tokens["scoped"])
    ).json()
    assert {r["pilot"] for r in summary["rows"]} == {HELPDESK}
    text = client.get(
        "/api/v1/summary.csv", params={"as_of": "2012-06-30"}, headers=auth(tokens["scoped"])
    ).text
    assert HELPDESK in text
    assert OTHER not in text


# =========================================================================== pushing


def test_push_writes_with_the_token_name_as_actor(world, engine):
    client, tokens = world
    r = client.post(
        MEASUREMENTS,
        json={"rows": [row("2012-W04", 75.5, note="vendor run 17"), row("2012-W05", 70, note="")]},
        headers=auth(tokens["scoped"]),
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "rows": 2,
        "created": 2,
        "updated": 0,
        "unchanged": 0,
        "dry_run": False,
        "written": True,
        "summary": "2 rows: 2 created, 0 updated, 0 unchanged",
        "notices": [],
    }
    assert stored(engine)["2012-W04"] == (75.5, "vendor run 17")
    assert stored(engine)["2012-W05"] == (70.0, "")
    with Session(engine) as s:
        audit = store.revisions_export_frame(s)
    new = audit.tail(2)
    assert list(new["actor"]) == ["token:helpdesk-vendor"] * 2
    assert list(new["reason"]) == ["import via API"] * 2
    # the revisions export names the token, never its secret
    assert not any(t in audit.to_csv() for t in tokens.values())


def test_reposting_identical_rows_is_a_no_op(world, engine):
    client, tokens = world
    body = {"rows": [row("2012-W04", 75.5), row("2012-W05", 70)]}
    assert client.post(MEASUREMENTS, json=body, headers=auth(tokens["editor"])).status_code == 200
    before = revision_count(engine)
    again = client.post(MEASUREMENTS, json=body, headers=auth(tokens["editor"]))
    assert again.status_code == 200
    assert (again.json()["created"], again.json()["unchanged"]) == (0, 2)
    assert revision_count(engine) == before


def test_changing_a_stored_value_needs_update_and_reason(world, engine):
    client, tokens = world
    h = auth(tokens["editor"])
    before = revision_count(engine)
    fix = [row("2012-W01", 88)]  # stored: 90
    for extra in ({}, {"update": True}, {"update": True, "reason": "  "}, {"reason": "x"}):
        r = client.post(MEASUREMENTS, json={"rows": fix, **extra}, headers=h)
        assert r.status_code == 409, (extra, r.text)
        assert r.json()["changes"] == [
            {
                "row": 0,
                "line": None,
                "pilot": HELPDESK,
                "metric": "resolution_time",
                "week": "2012-W01",
                "old_value": 90.0,
                "value": 88.0,
                "old_note": "",
                "note": "",
            }
        ]
        assert "update=true and a reason" in r.json()["detail"]
    assert revision_count(engine) == before
    r = client.post(
        MEASUREMENTS, json={"rows": fix, "update": True, "reason": "vendor re-ran W01"}, headers=h
    )
    assert r.status_code == 200
    assert r.json()["updated"] == 1
    assert stored(engine)["2012-W01"] == (88.0, "")
    with Session(engine) as s:
        last = store.revisions_export_frame(s).iloc[-1]
    assert (last["action"], last["old_value"], last["new_value"]) == ("update", 90.0, 88.0)
    assert (last["actor"], last["reason"]) == ("token:acme-nightly", "vendor re-ran W01")


def test_dry_run_reports_and_writes_nothing(world, engine):
    client, tokens = world
    before = revision_count(engine)
    r = client.post(
        MEASUREMENTS,
        json={"rows": [row("2012-W04", 1)], "dry_run": True},
        headers=auth(tokens["editor"]),
    )
    assert r.status_code == 200
    assert r.json()["written"] is False
    assert r.json()["created"] == 1
    assert r.json()["summary"].endswith("(dry run, nothing written)")
    assert revision_count(engine) == before


def test_csv_body_with_query_parameters(world, engine):
    client, tokens = world
    h = {**auth(tokens["editor"]), "Content-Type": "text/csv; charset=utf-8"}
    body = (
        "pilot;metric;week;value;note\n"
        f"{HELPDESK};resolution_time;2012-W01;89,5;typo\n"
        f"{HELPDESK};resolution_time;2012-W04;70,25;\n"
    )
    r = client.post(MEASUREMENTS, content=body, headers=h)
    assert r.status_code == 409
    assert r.json()["changes"][0]["line"] == 2
    r = client.post(
        MEASUREMENTS, params={"update": "true", "reason": "typo"}, content=body, headers=h
    )
    assert r.status_code == 200, r.text
    assert (r.json()["created"], r.json()["updated"]) == (1, 1)
    assert stored(engine)["2012-W01"] == (89.5, "typo")
    assert stored(engine)["2012-W04"] == (70.25, "")


def test_422_lists_every_bad_row_and_writes_nothing(world, engine):
    client, tokens = world
    before = revision_count(engine)
    rows = [
        row("2012-W04", 70),  # fine
        row("2026-W54", 70),  # no such week
        row("2012-W05", -3),  # below the allowed minimum 0
        {**row("2012-W06", 1), "metric": "nope"},
        row("2012-W07", 1e300),  # too large
    ]
    r = client.post(MEASUREMENTS, json={"rows": rows}, headers=auth(tokens["editor"]))
    assert r.status_code == 422
    problems = r.json()["detail"]
    assert [(p["row"], p["field"]) for p in problems] == [
        (1, "week"),
        (2, "value"),
        (3, "metric"),
        (4, "value"),
    ]
    assert "2026-W54" in problems[0]["reason"]
    assert "between 0" in problems[1]["reason"] or "at least 0" in problems[1]["reason"]
    assert "no metric 'nope'" in problems[2]["reason"]
    assert "too large" in problems[3]["reason"]
    assert revision_count(engine) == before


def test_row_index_survives_notes_spanning_lines(world):
    client, tokens = world
    rows = [
        row("2012-W04", 1, note="line one\nline two\r\nthree\rfour"),
        row("2012-W05", 1, note='quote " and, comma'),
        row("2026-W54", 1, note=""),
    ]
    r = client.post(MEASUREMENTS, json={"rows": rows}, headers=auth(tokens["editor"]))
    assert r.status_code == 422
    assert [(p["row"], p["field"]) for p in r.json()["detail"]] == [(2, "week")]


def test_formula_text_round_trips_through_a_push(world, engine):
    client, tokens = world
    note = '=HYPERLINK("http://x")'
    r = client.post(
        MEASUREMENTS, json={"rows": [row("2012-W04", 1, note=note)]}, headers=auth(tokens["editor"])
    )
    assert r.status_code == 200
    assert stored(engine)["2012-W04"] == (1.0, note)


# =========================================================================== hostile input

TOO_MANY = 100_000


def _hostile_cases():
    big_row = {"pilot": HELPDESK, "metric": "resolution_time", "week": "2012-W04", "value": 1}
    j = "application/json"
    return [
        ("malformed json", j, b'{"rows": [', 400, "not valid JSON"),
        ("not utf-8 json", j, b"\xff\xfe{", 400, "not valid JSON"),
        ("wrong content type", "text/plain", b"pilot,metric\n", 415, "content type"),
        ("form content type", "application/x-www-form-urlencoded", b"a=1", 415, "content type"),
        ("no content type", None, b"{}", 415, "content type"),
        ("NaN", j, b'{"rows": [' + _raw_row(b"NaN") + b"]}", 422, "finite"),
        ("Infinity", j, b'{"rows": [' + _raw_row(b"Infinity") + b"]}", 422, "finite"),
        ("-Infinity", j, b'{"rows": [' + _raw_row(b"-Infinity") + b"]}", 422, "finite"),
        ("1e400", j, b'{"rows": [' + _raw_row(b"1e400") + b"]}", 422, "finite"),
        ("huge integer", j, b'{"rows": [' + _raw_row(b"1" + b"0" * 400) + b"]}", 422, ""),
        ("value as text", j, b'{"rows": [' + _raw_row(b'"12"') + b"]}", 422, "number"),
        ("value true", j, b'{"rows": [' + _raw_row(b"true") + b"]}", 422, "number"),
        (
            "unknown row field",
            j,
            json.dumps({"rows": [{**big_row, "x": 1}]}).encode(),
            422,
            "unknown",
        ),
        (
            "unknown top field",
            j,
            json.dumps({"rows": [big_row], "force": True}).encode(),
            422,
            "unknown",
        ),
        ("top-level list", j, b"[]", 422, "object"),
        ("no rows", j, b'{"rows": []}', 422, "at least 1"),
        (
            "missing value",
            j,
            b'{"rows": [{"pilot": "a", "metric": "b", "week": "c"}]}',
            422,
            "missing",
        ),
        (
            "dry_run as text",
            j,
            json.dumps({"rows": [big_row], "dry_run": "yes"}).encode(),
            422,
            "bool",
        ),
        (
            "week 54",
            j,
            json.dumps({"rows": [{**big_row, "week": "2026-W54"}]}).encode(),
            422,
            "W54",
        ),
        (
            "formula pilot",
            j,
            json.dumps({"rows": [{**big_row, "pilot": "=1+1"}]}).encode(),
            422,
            "unknown pilot",
        ),
        (
            "markup pilot",
            j,
            json.dumps({"rows": [{**big_row, "pilot": "<b>x</b>"}]}).encode(),
            422,
            "unknown pilot",
        ),
        (
            "NUL in note",
            j,
            json.dumps({"rows": [{**big_row, "note": "a\x00b"}]}).encode(),
            422,
            "control",
        ),
        (
            "mixed notes",
            j,
            json.dumps(
                {"rows": [{**big_row, "note": "x"}, {**big_row, "week": "2012-W05"}]}
            ).encode(),
            422,
            "every row",
        ),
        (
            "reason with NUL",
            j,
            json.dumps({"rows": [big_row], "update": True, "reason": "a\x00b"}).encode(),
            422,
            "control characters",
        ),
        (
            "reason too long",
            j,
            json.dumps({"rows": [big_row], "update": True, "reason": "x" * 5000}).encode(),
            422,
            "shorten it",
        ),
        (
            "100,000 rows",
            j,
            json.dumps({"rows": [big_row] * TOO_MANY}).encode(),
            413,
            "100,000 rows",
        ),
        (
            "100,000 CSV lines",
            "text/csv",
            b"pilot,metric,week,value\n" + b"a,b,2012-W04,1\n" * TOO_MANY,
            413,
            "data lines",
        ),
        (
            "csv not utf-8",
            "text/csv",
            b"pilot,metric,week,value\n\xff,b,2012-W04,1\n",
            422,
            "UTF-8",
        ),
        ("csv garbage", "text/csv", b"\x00\x01\x02", 422, ""),
        ("csv empty", "text/csv", b"", 422, "no rows"),
        (
            "csv formula pilot",
            "text/csv",
            b"pilot,metric,week,value\n=cmd|' /C calc'!A0,m,2012-W04,1\n",
            422,
            "unknown pilot",
        ),
        ("deeply nested", j, b'{"rows": ' + b"[" * 5000 + b"]" * 5000 + b"}", 400, "recursion"),
    ]


def _raw_row(value: bytes) -> bytes:
    return (
        b'{"pilot": "' + HELPDESK.encode() + b'", "metric": "resolution_time", '
        b'"week": "2012-W04", "value": ' + value + b"}"
    )


@pytest.mark.parametrize(
    ("content_type", "body", "status", "words"),
    [c[1:] for c in _hostile_cases()],
    ids=[c[0] for c in _hostile_cases()],
)
def test_hostile_push_is_a_4xx_with_json_and_writes_nothing(
    world, engine, content_type, body, status, words
):
    client, tokens = world
    before, values = revision_count(engine), stored(engine)
    headers = auth(tokens["editor"])
    if content_type:
        headers["Content-Type"] = content_type
    r = client.post(MEASUREMENTS, content=body, headers=headers)
    assert r.status_code == status, r.text[:500]
    assert r.headers["content-type"] == "application/json"
    detail = r.json()["detail"]
    text = detail if isinstance(detail, str) else json.dumps(detail)
    assert words in text
    assert "Traceback" not in r.text
    assert revision_count(engine) == before
    assert stored(engine) == values


def test_body_over_the_limit_is_413_by_header_and_by_stream(engine):
    with session_scope(engine) as s:
        token = make_token(s)
    app = create_app(engine, Settings(api_max_body_bytes=2048))
    h = {**auth(token), "Content-Type": "text/csv"}
    with TestClient(app) as client:
        r = client.post(MEASUREMENTS, content=b"x" * 4096, headers=h)
        assert r.status_code == 413
        assert r.json() == {"detail": "body larger than 2,048 bytes: split the upload"}

        def chunks():  # no Content-Length: chunked transfer
            for _ in range(10):
                yield b"y" * 1000

        r = client.post(MEASUREMENTS, content=chunks(), headers=h)
        assert r.status_code == 413
        lying = {**h, "Content-Length": "10"}
        r = client.post(MEASUREMENTS, content=chunks(), headers=lying)
        assert r.status_code in (400, 413)


def test_json_query_parameters_are_refused_not_ignored(world, engine):
    client, tokens = world
    before = revision_count(engine)
    r = client.post(
        MEASUREMENTS,
        params={"dry_run": "true"},
        json={"rows": [row("2012-W04", 1)]},
        headers=auth(tokens["editor"]),
    )
    assert r.status_code == 422
    assert r.json()["detail"][0]["field"] == "dry_run"
    assert revision_count(engine) == before


@pytest.mark.parametrize(
    ("as_of", "words"),
    [("yesterday", "date"), ("2012-02-30", "date"), ("1850-01-01", "1900"), ("'; drop", "date")],
)
def test_bad_as_of_is_422(world, as_of, words):
    client, tokens = world
    for path in ("/api/v1/summary", "/api/v1/summary.csv"):
        r = client.get(path, params={"as_of": as_of}, headers=auth(tokens["viewer"]))
        assert r.status_code == 422
        assert r.json()["detail"][0]["field"] == "as_of"
        assert words in r.json()["detail"][0]["reason"]


def test_unknown_route_and_method_are_json(world):
    client, tokens = world
    assert client.get("/api/v1/nope", headers=auth(tokens["viewer"])).json() == {
        "detail": "Not Found"
    }
    r = client.delete("/api/v1/pilots", headers=auth(tokens["viewer"]))
    assert r.status_code == 405
    assert "detail" in r.json()


# =========================================================================== reading


def test_summary_csv_is_byte_for_byte_the_cli_export(world, engine, tmp_path, monkeypatch):
    client, tokens = world
    with session_scope(engine) as s:  # a decision-free pilot with numbers
        add_weeks(s, metric_id(s, HELPDESK, "resolution_time"), date(2012, 1, 23), [70, 65, 60])
    out = tmp_path / "summary.csv"
    url = engine.url.render_as_string(hide_password=False)
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "pilotgate",
            "--database-url",
            url,
            "export",
            "summary",
            "--as-of",
            "2012-06-30",
            "-o",
            str(out),
        ],
    )
    try:
        main()
    except SystemExit as exc:
        assert exc.code in (0, None)
    r = client.get(
        "/api/v1/summary.csv", params={"as_of": "2012-06-30"}, headers=auth(tokens["viewer"])
    )
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.content == out.read_bytes()
    assert r.content.startswith(b"\xef\xbb\xbfpilot,vendor,stage,")


def test_summary_json_rows_are_the_export_rows(world, engine):
    client, tokens = world
    from metrics import service

    r = client.get(
        "/api/v1/summary", params={"as_of": "2012-06-30"}, headers=auth(tokens["viewer"])
    )
    assert r.status_code == 200
    body = r.json()
    with Session(engine) as s:
        frame = service.summary_export_frame(s, as_of=date(2012, 6, 30))
    assert body["as_of"] == "2012-06-30"
    assert body["columns"] == list(frame.columns)
    assert len(body["rows"]) == len(frame) == 2
    helpdesk = next(x for x in body["rows"] if x["pilot"] == HELPDESK)
    assert helpdesk["weeks_reported"] == 3
    assert helpdesk["target"] == 80.0
    assert helpdesk["baseline"] is None  # no explicit baseline and no baseline weeks
    assert helpdesk["as_of"] == "2012-06-30"


def test_summary_follows_every_write(world):
    """The API caches summaries by data version: a push is seen by the next read."""
    client, tokens = world

    def weeks() -> int:
        r = client.get(
            "/api/v1/summary", params={"as_of": "2012-06-30"}, headers=auth(tokens["viewer"])
        )
        return next(x for x in r.json()["rows"] if x["pilot"] == HELPDESK)["weeks_reported"]

    assert weeks() == 3
    r = client.post(
        MEASUREMENTS, json={"rows": [row("2012-W04", 70)]}, headers=auth(tokens["editor"])
    )
    assert r.status_code == 200
    assert weeks() == 4
    assert weeks() == 4


def test_pilots_lists_metrics_a_vendor_needs(world):
    client, tokens = world
    (p,) = client.get("/api/v1/pilots", headers=auth(tokens["scoped"])).json()
    assert (p["name"], p["vendor"], p["start_date"], p["decision_date"]) == (
        HELPDESK,
        "Acme AI",
        "2012-01-02",
        "2012-06-29",
    )
    (m,) = p["metrics"]
    assert (m["key"], m["unit"], m["direction"], m["target"], m["min_value"]) == (
        "resolution_time",
        "h",
        "lower_is_better",
        80.0,
        0.0,
    )


def test_last_use_is_recorded(world, engine):
    client, tokens = world
    with Session(engine) as s:
        assert (
            s.exec(sa.select(ApiToken.last_used_at).where(ApiToken.name == "bi-reader")).one()[0]
            is None
        )
    client.get("/api/v1/pilots", headers=auth(tokens["viewer"]))
    with Session(engine) as s:
        (used,) = s.exec(sa.select(ApiToken.last_used_at).where(ApiToken.name == "bi-reader")).one()
    assert used is not None and used.tzinfo is not None


def test_secrets_never_reach_logs_or_answers(world, caplog):
    client, tokens = world
    caplog.set_level(logging.DEBUG)
    answers = []
    for t in tokens.values():
        h = auth(t)
        answers.append(client.get("/api/v1/pilots", headers=h).text)
        answers.append(
            client.post(
                MEASUREMENTS, content=b"{bad", headers={**h, "Content-Type": "application/json"}
            ).text
        )
        answers.append(
            client.post(MEASUREMENTS, json={"rows": [row(pilot="Nope")]}, headers=h).text
        )
        answers.append(
            client.post(MEASUREMENTS, json={"rows": [row("2012-W01", 1)]}, headers=h).text
        )
    assert len(caplog.records) > 0
    for t in tokens.values():
        assert t not in caplog.text
        assert t.removeprefix("pgt_") not in "".join(answers)


# =========================================================================== two writers at once


def test_a_write_refused_by_the_store_is_409_not_422(world, engine, monkeypatch):
    """When the rows are valid but the write itself is refused (another writer changed
    the weeks meanwhile, a busy database), the answer says "try again" with 409."""
    client, tokens = world
    before = revision_count(engine)

    def refuse(**_kw):
        raise StoreError("someone else changed Resolution time 2012-W04 meanwhile")

    monkeypatch.setattr(store, "write_measurements", refuse)
    r = client.post(
        MEASUREMENTS, json={"rows": [row("2012-W04", 1)]}, headers=auth(tokens["editor"])
    )
    assert r.status_code == 409
    assert r.json() == {"detail": "someone else changed Resolution time 2012-W04 meanwhile"}
    assert revision_count(engine) == before


def test_two_clients_posting_the_same_cells_leave_one_value_and_an_unbroken_chain(world, engine):
    client, tokens = world
    weeks = ["2012-W04", "2012-W05", "2012-W06"]
    statuses: list[int] = []
    for round_ in range(4):
        barrier = threading.Barrier(2)

        def push(value: float, barrier=barrier, round_=round_) -> None:
            body = {
                "rows": [row(w, value) for w in weeks],
                "update": True,
                "reason": f"round {round_}",
            }
            barrier.wait()
            r = client.post(MEASUREMENTS, json=body, headers=auth(tokens["editor"]))
            statuses.append(r.status_code)

        threads = [
            threading.Thread(target=push, args=(100.0 + round_,)),
            threading.Thread(target=push, args=(200.0 + round_,)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        values = stored(engine)
        # one consistent value: the three weeks hold the same writer's value
        assert len({values[w][0] for w in weeks}) == 1, values
        assert values[weeks[0]][0] in (100.0 + round_, 200.0 + round_)
    assert set(statuses) <= {200, 409}
    assert statuses.count(200) >= 4
    with Session(engine) as s:
        m = metric_id(s, HELPDESK, "resolution_time")
        revs = store.revisions_frame(s, metric_id=m)
        now = store.measurements_frame(s)
    for w in weeks:
        wk = pd.Timestamp(date.fromisocalendar(2012, int(w[-2:]), 1))
        chain = revs[revs["week"] == wk].sort_values("revision_id")
        assert chain["action"].iloc[0] == "create"
        assert pd.isna(chain["old_value"].iloc[0])
        olds = chain["old_value"].iloc[1:].tolist()
        news = chain["new_value"].iloc[:-1].tolist()
        assert olds == news  # every revision starts where the previous one ended
        cur = now[(now["metric_id"] == m) & (now["week"] == wk)].iloc[0]
        assert chain["new_value"].iloc[-1] == cur["value"]
        assert cur["version"] == len(chain)


# =========================================================================== store and CLI


def test_token_store_functions_are_admin_only_and_keep_only_a_hash(engine):
    with session_scope(engine) as s:
        make_user(s, "admin@example.com", role="admin", bootstrap=True)
        make_user(s, "ed@example.com", role="editor", actor="admin@example.com")
        make_pilot(s, HELPDESK)
    with (
        session_scope(engine) as s,
        pytest.raises(PermissionDenied, match="needs the admin role"),
    ):
        make_token(s, "x", actor="ed@example.com")
    with session_scope(engine) as s:
        secret = make_token(s, "x", actor="admin@example.com", pilots=[HELPDESK])
    assert secret.startswith("pgt_") and len(secret) >= 4 + 43
    with Session(engine) as s:
        (h,) = s.exec(sa.select(ApiToken.token_hash)).one()
        frame = store.api_tokens_frame(s)
    import hashlib

    assert h == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in frame.to_csv()
    assert list(frame.columns) == store.API_TOKEN_COLUMNS
    assert frame.iloc[0][["name", "role", "pilots", "created_by"]].tolist() == [
        "x",
        "editor",
        HELPDESK,
        "admin@example.com",
    ]
    with session_scope(engine) as s, pytest.raises(StoreError, match="exists already"):
        make_token(s, "x", actor="admin@example.com")
    with session_scope(engine) as s, pytest.raises(StoreError, match="unknown pilot"):
        make_token(s, "y", actor="admin@example.com", pilots=["Nope"])
    with session_scope(engine) as s, pytest.raises(PermissionDenied):
        store.revoke_api_token(session=s, actor="ed@example.com", name="x")
    with session_scope(engine) as s:
        assert store.revoke_api_token(session=s, actor="admin@example.com", name="x") is True
        assert store.revoke_api_token(session=s, actor="admin@example.com", name="x") is False
    with session_scope(engine) as s:
        assert store.authenticate_api_token(session=s, token=secret) is None


def test_a_revoked_or_viewer_token_actor_cannot_write_through_the_store_either(engine):
    """The store checks the token's role again (defence in depth behind the API)."""
    with session_scope(engine) as s:
        make_pilot(s, HELPDESK)
        make_token(s, "reader", role="viewer")
        make_token(s, "gone", role="editor")
        store.revoke_api_token(session=s, actor="tester", name="gone")
    for actor in ("token:reader", "token:gone", "token:never-created"):
        with session_scope(engine) as s, pytest.raises(PermissionDenied):
            add_weeks(
                s, metric_id(s, HELPDESK, "resolution_time"), date(2012, 1, 2), [1], actor=actor
            )


def test_token_names_are_safe_in_exports():
    for bad in ("=cmd", "a b", "", "x" * 65, "-x", "<b>"):
        with pytest.raises(ValueError, match=r"token name|at least 1 character|at most 64"):
            ApiTokenCreate(name=bad, role="editor")
    with pytest.raises(ValueError):
        ApiTokenCreate(name="ok", role="admin")


def test_cli_tokens_create_list_revoke(tmp_path, monkeypatch, capsys):
    url = f"sqlite:///{tmp_path / 'cli.db'}"

    def run(*args):
        monkeypatch.setattr(sys, "argv", ["pilotgate", "--database-url", url, *args])
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code
        out, err = capsys.readouterr()
        return code, out, err

    assert run("init")[0] == 0
    code, out, err = run("tokens", "create", "acme-nightly", "--role", "editor")
    assert code == 0, err
    secret = out.strip().splitlines()[-1]
    assert secret.startswith("pgt_") and len(secret) == 47
    assert out.count(secret) == 1
    code, out, _ = run("tokens", "list")
    assert out.splitlines()[0] == "name\trole\tpilots\tcreated_at\tlast_used_at\trevoked_at"
    assert out.splitlines()[1].startswith("acme-nightly\teditor\tall\t")
    assert secret not in out
    assert run("tokens", "revoke", "acme-nightly")[1] == "revoked acme-nightly\n"
    assert run("tokens", "list")[1].splitlines()[1].endswith("Z")
    code, _, err = run("tokens", "create", "x", "--role", "editor", "--pilot", "Nope")
    assert code == 1
    assert err == "error: unknown pilot(s) for the token's scope: 'Nope'\n"


def test_cli_api_refuses_a_public_address_with_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "pilotgate",
            "--database-url",
            f"sqlite:///{tmp_path / 'a.db'}",
            "api",
            "--host",
            "0.0.0.0",
        ],
    )
    with pytest.raises(SystemExit) as exc:
        main()
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith(
        "error: refusing to listen on 0.0.0.0: API tokens would travel without TLS"
    )
    assert len(err.strip().splitlines()) == 1


# =========================================================================== report.pdf


def test_report_pdf_is_the_one_page_report_within_the_scope(world, engine):
    """GET /pilots/{id}/report.pdf: the pilot's one-page report as of the day asked;
    403 outside the token's scope (existing or not), 404 for an unknown pilot, 422 for
    an as-of day before the pilot's start or outside the accepted dates."""
    import io

    from pypdf import PdfReader

    client, tokens = world
    with Session(engine) as s:
        pilots = store.pilots_frame(s).set_index("pilot")["pilot_id"]
    helpdesk, other = int(pilots[HELPDESK]), int(pilots[OTHER])
    url = f"/api/v1/pilots/{helpdesk}/report.pdf"
    got = client.get(url, params={"as_of": "2012-02-01"}, headers=auth(tokens["viewer"]))
    assert got.status_code == 200, got.text
    assert got.headers["content-type"] == "application/pdf"
    assert (
        f'filename="pilotgate-report-{helpdesk}-2012-02-01.pdf"'
        in got.headers["content-disposition"]
    )
    pdf = PdfReader(io.BytesIO(got.content))
    assert len(pdf.pages) == 1
    text = pdf.pages[0].extract_text()
    assert HELPDESK in text and "2012-02-01" in text

    scoped = auth(tokens["scoped"])
    assert client.get(url, params={"as_of": "2012-02-01"}, headers=scoped).status_code == 200
    for pid in (other, 999_999):
        answer = client.get(f"/api/v1/pilots/{pid}/report.pdf", headers=scoped)
        assert answer.status_code == 403, answer.text
        assert "outside its scope" in answer.json()["detail"]
    missing = client.get("/api/v1/pilots/999999/report.pdf", headers=auth(tokens["viewer"]))
    assert (missing.status_code, missing.json()["detail"]) == (404, "no pilot with id 999999")
    early = client.get(url, params={"as_of": "2011-06-01"}, headers=auth(tokens["viewer"]))
    assert early.status_code == 422
    assert early.json()["detail"][0]["field"] == "as_of"
    assert "before the start" in early.json()["detail"][0]["reason"]
    far = client.get(url, params={"as_of": "2300-01-01"}, headers=auth(tokens["viewer"]))
    assert far.status_code == 422
    assert client.get(url).status_code == 401


# =========================================================================== alerts schedule


def test_the_api_process_runs_alerts_on_its_schedule(engine):
    """create_app(schedule_alerts=True) (what `pilotgate api` serves) starts the alert
    schedule with the interval from the settings and stops it when the app stops."""
    settings = Settings(alerts_interval_s=120)
    app = create_app(engine, settings, schedule_alerts=True)
    with TestClient(app):
        schedule = app.state.alert_schedule
        assert schedule is not None and schedule.interval_s == 120
        assert schedule._thread.is_alive()
    assert not schedule._thread.is_alive()
    with TestClient(create_app(engine)) as client:
        assert client.app.state.alert_schedule is None
