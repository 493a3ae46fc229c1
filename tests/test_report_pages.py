"""Report downloads on the Pilot and Export pages, the decision form's report hash, and the
Admin page's Webhooks section (Streamlit AppTest; fixtures of tests/test_governance_pages)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Session

from metrics import alerts, service
from metrics import report as R
from tests import test_governance_pages as gov
from tests.test_governance_pages import (
    AS_OF,
    EXPORT_PAGE,
    PILOT_PAGE,
    _app,
    _button,
    _decisions,
    _texts,
)

# the governance page tests' fixtures: three pilots, judged "today" = AS_OF
db = gov.db
_today_is_as_of = gov._today_is_as_of

ADMIN_PAGE = "dashboard/pages/admin.py"


def _downloads(at) -> dict[str, object]:
    return {b.label: b for b in at.get("download_button")}


def _hash(db, pilot: str = "helpdesk") -> str:
    with Session(db["engine"]) as s:
        return R.inputs_hash(service.report_inputs(s, pilot_id=db[pilot], as_of=AS_OF))


def test_pilot_page_offers_the_decision_report(db):
    at = _app(PILOT_PAGE, pilot_id=db["helpdesk"])
    button = _downloads(at)["Download decision report (PDF)"]
    assert f"Inputs SHA-256 {_hash(db)[:16]}" in button.help


def test_pilot_page_before_the_start_says_why_there_is_no_report(db):
    from datetime import date

    at = _app(PILOT_PAGE, pilot_id=db["helpdesk"], as_of=date(2011, 12, 1))
    assert "Download decision report (PDF)" not in _downloads(at)
    assert "No decision report: the as-of date 2011-12-01 is before the start of" in _texts(at)


def test_export_page_offers_portfolio_and_pilot_reports(db):
    at = _app(EXPORT_PAGE, pilot_id=db["invoice"])
    labels = _downloads(at)
    assert "Download portfolio report (PDF)" in labels
    assert f"Inputs SHA-256 {_hash(db, 'invoice')[:16]}" in (
        labels["Download decision report (PDF)"].help
    )
    assert at.selectbox(key="export_card_pilot").value == db["invoice"]


def test_decision_form_stores_the_hash_of_the_report_shown(db):
    pid = db["helpdesk"]
    shown = _hash(db)
    at = _app(EXPORT_PAGE, pilot_id=pid)
    assert f"with the SHA-256 of its decision report ({shown[:16]}…)" in _texts(at)
    _button(at, "Save decision").click().run(timeout=30)
    assert not at.exception
    (d,) = _decisions(db)
    assert d.report_hash == shown


def test_admin_webhooks_section_adds_lists_and_removes(db):
    at = _app(ADMIN_PAGE)
    assert "Webhooks" in [h.value for h in at.subheader]
    assert "No webhooks yet." in _texts(at)
    form_inputs = [t for t in at.text_input if t.label == "URL"]
    form_inputs[0].set_value("ftp://nope.example.com")
    _button(at, "Add webhook").click().run(timeout=30)
    assert "is not an http(s) URL" in _texts(at)
    next(t for t in at.text_input if t.label == "URL").set_value("http://127.0.0.1:9/hook")
    _button(at, "Add webhook").click().run(timeout=30)
    assert not at.exception
    (secret,) = [c.value for c in at.code]
    assert alerts.check_secret(secret) == secret
    # a run with an endpoint that is down: the delivery shows with its error
    alerts.run_alerts(engine=db["engine"], as_of=AS_OF, now=datetime(2012, 2, 20, tzinfo=UTC))
    at = _app(ADMIN_PAGE)
    assert not at.code  # the secret is shown once only
    labels = [gov._unescape(e.label) for e in at.expander]
    assert [x for x in labels if x.startswith("#1 http://127.0.0.1:9/hook · 0 delivered")]
    deliveries = [d.value for d in at.dataframe if "Next retry (UTC)" in d.value.columns]
    assert len(deliveries) == 1
    assert set(deliveries[0]["Status"]) == {"pending"}
    # the first delivery failed (connection refused); the endpoint's others were not
    # attempted in that run and wait for the same retry time
    tried = deliveries[0][deliveries[0]["Attempts"] == 1]
    assert len(tried) == 1 and tried["Error"].iloc[0].startswith("cannot connect")
    assert deliveries[0]["Next retry (UTC)"].nunique() == 1
    _button(at, "Remove webhook").click().run(timeout=30)
    assert not at.exception
    assert "Webhook #1 removed." in _texts(at)
    with Session(db["engine"]) as s:
        assert alerts.webhooks_frame(s).empty
