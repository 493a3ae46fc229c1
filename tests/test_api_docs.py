"""docs/api.md cannot rot: every `curl` example that follows a `# -> STATUS` line is
parsed and run against the API (TestClient), in page order, and must answer STATUS."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from metrics.api import create_app
from metrics.db import session_scope
from tests.factories import make_pilot, make_token

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"
BASE = "http://127.0.0.1:8502"


def examples() -> list[tuple[int, str]]:
    """(expected status, the curl command) for every marked example, in page order."""
    blocks = re.findall(r"```sh\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    out = []
    for block in blocks:
        parts = re.split(r"^# -> (\d{3})\n", block, flags=re.MULTILINE)
        for status, command in zip(parts[1::2], parts[2::2], strict=True):
            out.append((int(status), command.strip()))
    return out


def as_request(command: str, token: str) -> dict:
    """The TestClient request equivalent to a curl command line."""
    args = shlex.split(command.replace("$TOKEN", token).replace("\\\n", " "))
    assert args[0] == "curl", command
    req: dict = {"method": None, "url": None, "headers": {}, "content": None}
    it = iter(args[1:])
    for a in it:
        if a in ("-s", "-sS", "-S", "--fail-with-body"):
            continue
        if a == "-X":
            req["method"] = next(it)
        elif a == "-H":
            name, _, value = next(it).partition(":")
            req["headers"][name.strip()] = value.strip()
        elif a in ("-d", "--data", "--data-binary"):
            data = next(it)
            assert not data.startswith("@"), "file bodies cannot run here"
            req["content"] = data.encode("utf-8")
        elif a == "-o":
            next(it)
        elif a.startswith("http"):
            assert a.startswith(BASE), a
            req["url"] = a.removeprefix(BASE)
        else:
            raise AssertionError(f"curl option {a!r} not understood by this test")
    req["method"] = req["method"] or ("POST" if req["content"] is not None else "GET")
    return req


def test_the_page_has_an_example_for_every_endpoint():
    paths = {as_request(cmd, "T")["url"].split("?")[0] for _, cmd in examples()}
    assert paths == {
        "/api/v1/pilots",
        "/api/v1/measurements",
        "/api/v1/summary",
        "/api/v1/summary.csv",
        "/api/v1/pilots/1/report.pdf",
    }
    statuses = {status for status, _ in examples()}
    assert {200, 401, 403, 409, 415, 422} <= statuses
    text = DOC.read_text(encoding="utf-8")
    assert "## A vendor's nightly job" in text
    assert "**Scope**" in text


@pytest.fixture
def client_and_token(engine):
    with session_scope(engine) as s:
        make_pilot(s, "Helpdesk triage assistant")
        make_pilot(s, "Invoice copilot")
        token = make_token(s, "acme-nightly", pilots=["Helpdesk triage assistant"])
    with TestClient(create_app(engine)) as client:
        yield client, token


def test_every_curl_example_answers_as_documented(client_and_token):
    client, token = client_and_token
    assert len(examples()) >= 12
    for status, command in examples():
        r = client.request(**as_request(command, token))
        assert r.status_code == status, (command, r.text)
