"""Alerts (DESIGN §13): events stored once, signed deliveries sent once per endpoint (two
runs, overlapping runs, a 503 that recovers, a slow endpoint), the weekly e-mail digest,
and the CLI's bad-input lines. A webhook receiver and an SMTP server run in the test on
free loopback ports."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa
from sqlmodel import Session
from standardwebhooks.webhooks import Webhook as Verifier
from standardwebhooks.webhooks import WebhookVerificationError

from metrics import alerts, service
from metrics.models import AlertEvent
from metrics.settings import Settings
from tests.factories import add_weeks, make_pilot, metric_id, metric_in

AS_OF = date(2012, 6, 20)
T0 = datetime(2012, 6, 20, 9, 0, tzinfo=UTC)
SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8GKYo="


# =========================================================================== receiver


class Receiver:
    """An HTTP server on a free loopback port that records every POST.

    Paths: ``/ok`` answers 204; ``/flaky`` answers 503 while ``fail_left`` > 0, then 204;
    ``/slow`` waits ``slow_s`` seconds before answering 200.
    """

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.fail_left = 0
        self.slow_s = 0.0
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                code = 204
                if self.path == "/flaky":
                    with outer.lock:
                        if outer.fail_left > 0:
                            outer.fail_left -= 1
                            code = 503
                if self.path == "/slow" and outer.slow_s:
                    time.sleep(outer.slow_s)
                    code = 200
                with outer.lock:
                    outer.requests.append(
                        {
                            "path": self.path,
                            "headers": dict(self.headers.items()),
                            "body": body,
                            "code": code,
                            "at": time.monotonic(),
                        }
                    )
                self.send_response(code)
                self.send_header("content-length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def received(self, path: str, *, ok_only: bool = True) -> list[dict]:
        """Verified JSON bodies POSTed to ``path`` (answered 2xx unless ``ok_only`` is False)."""
        out = []
        for r in self.requests:
            if r["path"] != path or (ok_only and r["code"] >= 300):
                continue
            out.append(Verifier(SECRET).verify(r["body"], r["headers"]))
        return out

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def settings(**kw) -> Settings:
    return Settings(**{"webhook_timeout_s": 5.0, "digest_recipients": [], "smtp_url": None, **kw})


# =========================================================================== portfolio


def build_portfolio(s: Session) -> dict[str, int]:
    """Three pilots as of 2012-06-20:

    - "Due pilot": decision 2012-06-29 (in 9 days), no decision -> decision.due;
    - "Guarded pilot": guardrail error_rate baseline 5 %, margin 1 pp, last values 8 %
      -> guardrail.breached (decision far ahead);
    - "Quiet pilot": last value in 2012-W14 -> pilot.stale; its decision date
      2012-06-01 has passed without a decision -> decision.overdue.
    """
    weeks = [100 - i for i in range(24)]  # 2012-W01 .. W24
    due = make_pilot(s, "Due pilot", metrics=[metric_in(baseline=120.0)])
    add_weeks(s, metric_id(s, "Due pilot", "resolution_time"), date(2012, 1, 2), weeks)
    guarded = make_pilot(
        s,
        "Guarded pilot",
        decision_date=date(2012, 9, 28),
        metrics=[
            metric_in(baseline=120.0),
            metric_in(
                "error_rate",
                role="guardrail",
                unit="%",
                baseline=5.0,
                margin=1.0,
                target=4.0,
                max_value=100.0,
            ),
        ],
    )
    add_weeks(s, metric_id(s, "Guarded pilot", "resolution_time"), date(2012, 1, 2), weeks)
    add_weeks(s, metric_id(s, "Guarded pilot", "error_rate"), date(2012, 1, 2), [8.0] * 24)
    quiet = make_pilot(
        s, "Quiet pilot", decision_date=date(2012, 6, 1), metrics=[metric_in(baseline=120.0)]
    )
    add_weeks(s, metric_id(s, "Quiet pilot", "resolution_time"), date(2012, 1, 2), weeks[:14])
    s.commit()
    return {"due": due, "guarded": guarded, "quiet": quiet}


def add_hook(engine, url: str, events=()) -> int:
    with Session(engine) as s:
        hook_id, _ = alerts.add_webhook(
            session=s, actor="ada", url=url, secret=SECRET, event_types=list(events)
        )
        s.commit()
    return hook_id


EXPECTED = {
    ("decision.due", "Due pilot"),
    ("guardrail.breached", "Guarded pilot"),
    ("pilot.stale", "Quiet pilot"),
    ("decision.overdue", "Quiet pilot"),
}


def test_events_of_the_portfolio(engine):
    with Session(engine) as s:
        build_portfolio(s)
    rep = alerts.run_alerts(engine=engine, as_of=AS_OF, now=T0, settings=settings())
    with Session(engine) as s:
        rows = s.execute(sa.select(AlertEvent.type, AlertEvent.pilot, AlertEvent.summary)).all()
    assert {(t, p) for t, p, _ in rows} == EXPECTED
    assert len(rep.new_events) == 4 and rep.found == 4
    summaries = {t: text for t, _, text in rows}
    assert summaries["decision.due"] == (
        "Due pilot: go/no-go decision due 2012-06-29 (in 9 days), recommendation go"
    )
    assert summaries["guardrail.breached"] == (
        "Guarded pilot: guardrail Error rate breached: 8% vs baseline 5% "
        "(non-inferiority margin 1 pp)"
    )
    assert summaries["pilot.stale"] == (
        "Quiet pilot: no weekly value since 2012-W14 (stale as of 2012-06-20)"
    )
    # a second run finds the same events and stores none again
    again = alerts.run_alerts(engine=engine, as_of=AS_OF, now=T0, settings=settings())
    assert again.found == 4 and again.new_events == []


def test_recommendation_changed_and_decision_recorded(engine, monkeypatch):
    with Session(engine) as s:
        ids = build_portfolio(s)
    first = alerts.run_alerts(engine=engine, as_of=AS_OF, now=T0, settings=settings())
    assert "recommendation.changed" not in {e.split("_")[0] for e in first.new_events}
    # a bad new week moves "Due pilot" from go (current 78.5 h, target 80 h) to extend
    with Session(engine) as s:
        add_weeks(s, metric_id(s, "Due pilot", "resolution_time"), date(2012, 6, 18), [300.0])
        monkeypatch.setattr(service, "today", lambda: date(2012, 6, 26))
        service.record_decision(
            session=s,
            actor="ada",
            pilot_id=ids["guarded"],
            decision="no_go",
            as_of=date(2012, 6, 26),
        )
        s.commit()
    rep = alerts.run_alerts(
        engine=engine, as_of=date(2012, 6, 26), now=T0 + timedelta(days=6), settings=settings()
    )
    with Session(engine) as s:
        rows = s.execute(
            sa.select(AlertEvent.type, AlertEvent.pilot, AlertEvent.payload).where(
                AlertEvent.event_id.in_(rep.new_events)
            )
        ).all()
    by_type = {(t, p): json.loads(body) for t, p, body in rows}
    changed = by_type[("recommendation.changed", "Due pilot")]
    assert (changed["data"]["from"], changed["data"]["to"]) == ("go", "extend")
    recorded = by_type[("decision.recorded", "Guarded pilot")]
    assert recorded["data"]["decision"] == "no_go" and recorded["data"]["decided_by"] == "ada"
    assert recorded["summary"].startswith("Guarded pilot: decision no_go signed by ada")


def test_delivered_once_across_two_runs_signed_per_standard_webhooks(engine, receiver):
    with Session(engine) as s:
        build_portfolio(s)
    add_hook(engine, receiver.url + "/ok")
    only_due = add_hook(engine, receiver.url + "/flaky", ["decision.due"])
    first = alerts.run_alerts(engine=engine, as_of=AS_OF, now=T0, settings=settings())
    second = alerts.run_alerts(
        engine=engine, as_of=AS_OF, now=T0 + timedelta(hours=1), settings=settings()
    )
    assert (first.delivered, second.delivered) == (5, 0)
    got = receiver.received("/ok")
    assert {(b["type"], b["pilot"]["name"]) for b in got} == EXPECTED
    assert len(got) == 4  # each event exactly once
    assert [b["type"] for b in receiver.received("/flaky")] == ["decision.due"]
    body = next(b for b in got if b["type"] == "decision.due")
    assert set(body) == {"type", "id", "occurred_at", "pilot", "data", "summary"}
    assert body["id"] == alerts.event_id("decision.due", body["pilot"]["id"], "2012-06-29")
    assert body["occurred_at"] == "2012-06-20T09:00:00+00:00"
    assert body["data"]["days_to_decision"] == 9
    req = next(r for r in receiver.requests if r["path"] == "/ok")
    assert req["headers"]["webhook-id"] == json.loads(req["body"])["id"]
    assert req["headers"]["webhook-signature"].startswith("v1,")
    # a wrong secret does not verify
    with pytest.raises(WebhookVerificationError):
        Verifier("whsec_" + "A" * 44).verify(req["body"], req["headers"])
    with Session(engine) as s:
        frame = alerts.deliveries_frame(s, webhook_id=only_due)
    assert frame["status"].tolist() == ["delivered"]
    assert frame["attempts"].tolist() == [1]


def test_overlapping_runs_deliver_each_event_once(engine, receiver):
    """Four runs at once (threads, each its own claim name): every event reaches the
    endpoint exactly once."""
    with Session(engine) as s:
        build_portfolio(s)
    add_hook(engine, receiver.url + "/ok")
    barrier = threading.Barrier(4)
    reports, errors = [], []

    def run():
        try:
            barrier.wait()
            reports.append(
                alerts.run_alerts(engine=engine, as_of=AS_OF, now=T0, settings=settings())
            )
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert sum(r.delivered for r in reports) == 4
    assert sum(len(r.new_events) for r in reports) == 4
    ids = Counter(b["id"] for b in receiver.received("/ok"))
    assert len(ids) == 4 and set(ids.values()) == {1}


def test_overlapping_cli_processes_deliver_each_event_once(sqlite_engine, receiver, tmp_path):
    with Session(sqlite_engine) as s:
        build_portfolio(s)
    add_hook(sqlite_engine, receiver.url + "/ok")
    url = sqlite_engine.url.render_as_string(hide_password=False)
    code = "from metrics.cli import main; main()"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                code,
                "--database-url",
                url,
                "alerts",
                "run",
                "--as-of",
                AS_OF.isoformat(),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    ids = Counter(b["id"] for b in receiver.received("/ok"))
    assert len(ids) == 4 and set(ids.values()) == {1}
    sent = sum(int(out.split("); ")[1].split(" deliveries")[0]) for out, _ in outs)
    assert sent == 4


def test_503_is_recorded_retried_with_backoff_then_delivered_once(engine, receiver):
    with Session(engine) as s:
        build_portfolio(s)
    hook = add_hook(engine, receiver.url + "/flaky", ["decision.due"])
    receiver.fail_left = 2
    r1 = alerts.run_alerts(engine=engine, as_of=AS_OF, now=T0, settings=settings())
    assert [o.status for o in r1.deliveries] == ["failed"]
    assert r1.deliveries[0].status_code == 503
    with Session(engine) as s:
        d = alerts.deliveries_frame(s, webhook_id=hook).iloc[0]
    assert (d["status"], d["attempts"], d["last_status_code"]) == ("pending", 1, 503)
    assert d["last_error"] == "endpoint answered 503 Service Unavailable"
    assert d["next_attempt_at"] == T0 + timedelta(minutes=1)
    # before the backoff has passed nothing is sent
    r2 = alerts.run_alerts(
        engine=engine, as_of=AS_OF, now=T0 + timedelta(seconds=30), settings=settings()
    )
    assert r2.deliveries == []
    r3 = alerts.run_alerts(
        engine=engine, as_of=AS_OF, now=T0 + timedelta(minutes=1), settings=settings()
    )
    assert [o.status_code for o in r3.deliveries] == [503]
    with Session(engine) as s:
        assert alerts.deliveries_frame(s, webhook_id=hook).iloc[0]["next_attempt_at"] == (
            T0 + timedelta(minutes=1) + timedelta(minutes=2)
        )
    r4 = alerts.run_alerts(
        engine=engine, as_of=AS_OF, now=T0 + timedelta(minutes=3), settings=settings()
    )
    assert [o.status for o in r4.deliveries] == ["delivered"]
    r5 = alerts.run_alerts(
        engine=engine, as_of=AS_OF, now=T0 + timedelta(days=1), settings=settings()
    )
    assert r5.deliveries == []
    assert [r["code"] for r in receiver.requests] == [503, 503, 204]
    assert len(receiver.received("/flaky")) == 1
    with Session(engine) as s:
        d = alerts.deliveries_frame(s, webhook_id=hook).iloc[0]
    assert (d["status"], d["attempts"], d["last_status_code"]) == ("delivered", 3, 204)


def test_a_slow_endpoint_does_not_hold_up_the_others(engine, receiver):
    with Session(engine) as s:
        build_portfolio(s)
    fast = add_hook(engine, receiver.url + "/ok")
    slow = add_hook(engine, receiver.url + "/slow")
    receiver.slow_s = 3.0
    rep = alerts.run_alerts(
        engine=engine, as_of=AS_OF, now=T0, settings=settings(webhook_timeout_s=0.5)
    )
    by_url = Counter((o.url.rsplit("/", 1)[1], o.status) for o in rep.deliveries)
    # the fast endpoint got every event; the slow one timed out once, the other three
    # deliveries to it wait for a later run instead of costing a timeout each
    assert by_url == {("ok", "delivered"): 4, ("slow", "failed"): 1, ("slow", "deferred"): 3}
    failed = next(o for o in rep.deliveries if o.status == "failed")
    assert failed.error.startswith("timed out after 0.5 s; retry after 2012-06-20 09:01 UTC")
    with Session(engine) as s:
        slow_rows = alerts.deliveries_frame(s, webhook_id=slow)
        assert set(slow_rows["status"]) == {"pending"}
        assert sorted(slow_rows["attempts"]) == [0, 0, 0, 1]
        assert set(alerts.deliveries_frame(s, webhook_id=fast)["status"]) == {"delivered"}
    receiver.slow_s = 0.0
    later = alerts.run_alerts(
        engine=engine,
        as_of=AS_OF,
        now=T0 + timedelta(minutes=5),
        settings=settings(webhook_timeout_s=0.5),
    )
    assert Counter(o.status for o in later.deliveries) == {"delivered": 4}
    assert len({b["id"] for b in receiver.received("/slow")}) == 4


def test_removed_endpoint_gets_nothing_more(engine, receiver):
    with Session(engine) as s:
        build_portfolio(s)
    hook = add_hook(engine, "http://127.0.0.1:9/never")
    alerts.run_alerts(engine=engine, as_of=AS_OF, now=T0, settings=settings())
    with Session(engine) as s:
        alerts.remove_webhook(session=s, actor="ada", webhook_id=hook)
        s.commit()
        assert alerts.webhooks_frame(s).empty
        assert set(alerts.deliveries_frame(s, webhook_id=hook)["status"]) == {"cancelled"}
    rep = alerts.run_alerts(
        engine=engine, as_of=AS_OF, now=T0 + timedelta(days=1), settings=settings()
    )
    assert rep.deliveries == []


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/x", "is not an http(s) URL"),
        ("example.com/hook", "is not an http(s) URL"),
        ("http://", "is not an http(s) URL"),
        ("javascript:alert(1)", "is not an http(s) URL"),
    ],
)
def test_webhook_url_must_be_http(engine, url, message):
    with Session(engine) as s, pytest.raises(alerts.AlertError, match=re.escape(message)):
        alerts.add_webhook(session=s, actor="ada", url=url)


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("abc", "must start with whsec_"),
        ("whsec_not base64!", "is not valid base64"),
        ("whsec_c2hvcnQ=", "decodes to 5 bytes"),
    ],
)
def test_webhook_secret_must_be_whsec_base64(engine, secret, message):
    with Session(engine) as s, pytest.raises(alerts.AlertError, match=re.escape(message)) as info:
        alerts.add_webhook(session=s, actor="ada", url="https://example.com", secret=secret)
    assert secret.removeprefix("whsec_") not in str(info.value) or len(secret) < 4


def test_generated_secret_verifies():
    secret = alerts.new_secret()
    assert alerts.check_secret(secret) == secret
    signature = Verifier(secret).sign("evt_1", datetime.now(UTC), b"{}")
    now = str(int(datetime.now(UTC).timestamp()))
    headers = {"webhook-id": "evt_1", "webhook-timestamp": now, "webhook-signature": signature}
    assert Verifier(secret).verify(b"{}", headers) == {}


# =========================================================================== CLI


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    from metrics.cli import main

    db = f"sqlite:///{tmp_path / 'alerts.db'}"

    def _run(*args: str):
        monkeypatch.setattr(sys, "argv", ["pilotgate", "--database-url", db, *args])
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capsys.readouterr()
        return code, out, err

    return _run


def test_cli_webhooks_add_list_remove_and_bad_input(cli):
    code, out, err = cli(
        "webhooks",
        "add",
        "https://hooks.example.com/pg",
        "--event",
        "decision.due",
        "--event",
        "guardrail.breached",
    )
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "webhook 1: https://hooks.example.com/pg (decision.due, guardrail.breached)"
    assert alerts.check_secret(lines[-1]) == lines[-1]  # printed once, last line
    code, out, err = cli("webhooks", "add", "https://b.example.com", "--secret", SECRET)
    assert code == 0 and SECRET not in out
    code, out, _ = cli("webhooks", "list")
    assert out.splitlines() == [
        "id\turl\tevents\tdelivered\tpending\tlast_result",
        "1\thttps://hooks.example.com/pg\tdecision.due guardrail.breached\t0\t0\tnever tried",
        "2\thttps://b.example.com\tall\t0\t0\tnever tried",
    ]
    assert "whsec_" not in out
    bad = [
        (("webhooks", "add", "ftp://x.example.com"), "is not an http(s) URL"),
        (("webhooks", "add", "https://x.example.com", "--secret", "s3cret"), "whsec_"),
        (("webhooks", "add", "https://x.example.com", "--secret", "whsec_!!"), "base64"),
        (("webhooks", "add", "https://x.example.com", "--event", "pilot.gone"), "unknown event"),
        (("webhooks", "remove", "7"), "no webhook with id 7"),
    ]
    for args, message in bad:
        code, out, err = cli(*args)
        assert code == 1, (args, err)
        assert message in err and len(err.strip().splitlines()) == 1, err
        assert "Traceback" not in err and "s3cret" not in err
    code, out, _ = cli("webhooks", "remove", "1")
    assert (code, out) == (0, "removed webhook 1 (https://hooks.example.com/pg)\n")


def test_cli_alerts_run_with_an_endpoint_that_never_answers(cli):
    code, _, err = cli("webhooks", "add", "http://127.0.0.1:9/never", "--secret", SECRET)
    assert code == 0, err
    code, out, err = cli("seed", "demo", "--today", "2026-11-16")
    assert code == 0, err
    code, out, err = cli("alerts", "run", "--as-of", "2026-11-16")
    assert code == 0, err
    assert "Traceback" not in err
    warnings = err.strip().splitlines()
    assert warnings[0].startswith("warning: http://127.0.0.1:9/never: event evt_")
    assert "cannot connect" in warnings[0]
    assert warnings[-1].endswith("deliveries to unreachable endpoints wait for a later run")
    summary = out.splitlines()[0]
    assert "0 deliveries sent, 1 failed" in summary
    code, out, _ = cli("webhooks", "list")
    pending = int(out.splitlines()[1].split("\t")[4])
    assert pending >= 2  # nothing lost: every event waits for the endpoint
    code, _, err = cli("alerts", "run", "--as-of", "2026-13-01")
    assert code == 1 and "is not a date" in err


# =========================================================================== digest


@pytest.fixture
def smtp_server():
    from aiosmtpd.controller import Controller

    class Sink:
        def __init__(self):
            self.messages = []

        async def handle_DATA(self, server, session, envelope):
            self.messages.append(envelope)
            return "250 OK"

    sink = Sink()
    with socket.socket() as probe:  # a free loopback port (aiosmtpd needs it named)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    yield sink, f"smtp://127.0.0.1:{port}"
    controller.stop()


def test_weekly_digest_is_sent_once_per_iso_week(engine, smtp_server):
    sink, url = smtp_server
    with Session(engine) as s:
        build_portfolio(s)
    conf = settings(smtp_url=url, digest_recipients=["pmo@example.com", "cfo@example.com"])
    r1 = alerts.run_alerts(engine=engine, as_of=AS_OF, now=T0, settings=conf)
    assert r1.digest == "digest: 2012-W25 sent to 2 recipient(s)"
    r2 = alerts.run_alerts(engine=engine, as_of=date(2012, 6, 24), now=T0, settings=conf)
    assert r2.digest == "digest: 2012-W25 already sent"
    r3 = alerts.run_alerts(engine=engine, as_of=date(2012, 6, 25), now=T0, settings=conf)
    assert r3.digest == "digest: 2012-W26 sent to 2 recipient(s)"
    assert len(sink.messages) == 2
    env = sink.messages[0]
    assert env.rcpt_tos == ["pmo@example.com", "cfo@example.com"]
    msg = message_from_bytes(env.content)
    assert msg["Subject"] == "PilotGate digest 2012-W25: 3 pilots"
    parts = {p.get_content_type(): p for p in msg.walk()}
    assert "Due pilot: go, decision 2012-06-29 (in 9 days)" in (
        parts["text/plain"].get_payload(decode=True).decode()
    )
    pdf = parts["application/pdf"].get_payload(decode=True)
    assert pdf.startswith(b"%PDF-")
    assert parts["application/pdf"].get_filename() == "pilotgate-portfolio-2012-06-20.pdf"


def test_digest_failure_is_recorded_and_retried(engine, smtp_server):
    sink, url = smtp_server
    with Session(engine) as s:
        build_portfolio(s)
    down = settings(
        smtp_url="smtp://127.0.0.1:9", smtp_timeout_s=2, digest_recipients=["pmo@example.com"]
    )
    r1 = alerts.run_alerts(engine=engine, as_of=AS_OF, now=T0, settings=down)
    assert r1.digest.startswith("digest: 2012-W25 not sent through smtp://127.0.0.1:9 (")
    assert r1.digest.endswith("retried on the next run")
    up = settings(smtp_url=url, digest_recipients=["pmo@example.com"])
    r2 = alerts.run_alerts(engine=engine, as_of=AS_OF, now=T0, settings=up)
    assert r2.digest == "digest: 2012-W25 sent to 1 recipient(s)"
    assert len(sink.messages) == 1


def test_as_of_before_every_start_finds_nothing_and_keeps_state(engine):
    with Session(engine) as s:
        build_portfolio(s)
    early = alerts.run_alerts(engine=engine, as_of=date(2011, 12, 1), now=T0, settings=settings())
    assert (early.found, early.new_events) == (0, [])
    # pilots not started yet have no last recommendation stored: the first real run
    # reports no recommendation.changed for them
    rep = alerts.run_alerts(engine=engine, as_of=AS_OF, now=T0, settings=settings())
    assert rep.found == 4


def test_alert_schedule_runs_repeatedly_and_survives_a_failed_run(sqlite_engine):
    """The API's schedule calls the run function every interval with today's as-of day;
    a run that raises is counted and the next run still happens; stop() ends it."""
    import threading

    from metrics.alerts import AlertSchedule

    calls: list[date] = []
    three = threading.Event()

    def run(*, engine, as_of):
        assert engine is sqlite_engine
        calls.append(as_of)
        if len(calls) == 1:
            raise RuntimeError("database went away")
        if len(calls) >= 3:
            three.set()
        return "ok"

    schedule = AlertSchedule(
        engine=sqlite_engine,
        interval_s=0.01,
        first_delay_s=0,
        run=run,
        today=lambda: date(2026, 12, 8),
    )
    schedule.start()
    assert three.wait(30)
    schedule.stop()
    assert not schedule._thread.is_alive()
    assert calls[:3] == [date(2026, 12, 8)] * 3
    assert schedule.failures == 1 and schedule.runs >= 2
