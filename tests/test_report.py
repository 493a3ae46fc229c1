"""The one-page decision report and the portfolio report (DESIGN §12), read back from the
PDF's extracted text (pypdf) and rendered to PNG with Debian's pdftoppm."""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from pypdf import PdfReader
from sqlmodel import Session

from metrics import governance, service
from metrics import report as R
from metrics.cli import main
from metrics.db import make_engine, session_scope
from tests.factories import add_weeks, make_pilot, metric_id, metric_in

AS_OF = date(2012, 6, 30)
HELPDESK = "Helpdesk triage assistant"
A4_W, A4_H = 595.2756, 841.8898


def pdf_text(pdf: bytes) -> str:
    return "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)


def flat(text: str) -> str:
    """Extracted text with line breaks and runs of spaces turned into one space."""
    return " ".join(text.split())


def pages(pdf: bytes) -> int:
    return len(PdfReader(io.BytesIO(pdf)).pages)


def text_positions(pdf: bytes) -> list[tuple[float, float, str]]:
    """(x, y, text) of every text chunk drawn, in page coordinates (points)."""
    out: list[tuple[float, float, str]] = []

    def visit(text, cm, tm, _font, _size):
        if not text.strip():
            return
        x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
        y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
        out.append((x, y, text))

    for page in PdfReader(io.BytesIO(pdf)).pages:
        page.extract_text(visitor_text=visit)
    return out


@pytest.fixture
def db(tmp_path):
    return f"sqlite:///{tmp_path / 'report.db'}"


@pytest.fixture
def run(db, monkeypatch, capsys):
    """Run ``pilotgate --database-url DB ARGS``; returns (exit code, stdout, stderr)."""

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


@pytest.fixture
def helpdesk(run, shared_data):
    code, _, err = run("seed", "helpdesk", "--file", str(shared_data / "helpdesk.csv"))
    assert code == 0, err
    return run


def test_helpdesk_report_prints_the_summary_csv_numbers(helpdesk, tmp_path, db):
    pdf_path, csv_path = tmp_path / "helpdesk.pdf", tmp_path / "summary.csv"
    code, _, err = helpdesk("report", HELPDESK, "--as-of", "2012-06-30", "-o", str(pdf_path))
    assert code == 0, err
    assert f"wrote {pdf_path}" in err
    code, _, err = helpdesk("export", "summary", "--as-of", "2012-06-30", "-o", str(csv_path))
    assert code == 0, err
    row = next(csv.DictReader(io.StringIO(csv_path.read_text("utf-8").removeprefix("\ufeff"))))
    pdf = pdf_path.read_bytes()
    assert pdf.startswith(b"%PDF-")
    assert pages(pdf) == 1
    text = flat(pdf_text(pdf))
    # the summary CSV's cells, character for character
    assert row["recommendation"] == "go"
    assert (row["baseline"], row["current"], row["target"]) == (
        "121.626894444",
        "56.7621875",
        "80.0",
    )
    assert (row["ci_low_pct"], row["ci_high_pct"]) == ("23.4477439513", "83.2140387748")
    assert HELPDESK in text
    assert "Recommendation: GO" in text
    assert "121.626894444 h → 56.7621875 h" in text
    assert f"{row['improvement_pct']}% (95% CI 23.4477439513% to 83.2140387748%)" in text
    assert "target 80.0 h" in text
    assert " met " in text
    # title block, reasons, checklist, decision, footer
    assert "Decision due 1 day ago" in text
    assert "decision date 2012-06-29 (2012-W26)" in text
    assert "Resolution time 56.8 h vs target 80 h: met" in text
    assert "Knowledge-transfer plan agreed" in text
    assert "No decision recorded yet." in text
    assert "as of 2012-06-30 (2012-W26)" in text
    engine = make_engine(db)
    with session_scope(engine) as s:
        inputs = service.report_inputs(
            s, pilot_id=service.pilot_id_by_name(s, HELPDESK), as_of=AS_OF
        )
    engine.dispose()
    digest = R.inputs_hash(inputs)
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert f"Inputs SHA-256: {digest}" in text
    # the same inputs give the same bytes (invariant PDF) and the same hash
    assert R.pilot_report_pdf(inputs) == pdf


def test_report_hash_is_canonical_and_follows_the_evidence(engine):
    with Session(engine) as s:
        pid = make_pilot(s, metrics=[metric_in(baseline=120.0)])
        add_weeks(s, metric_id(s, HELPDESK, "resolution_time"), date(2012, 1, 2), [100, 90, 85, 80])
        s.commit()
        first = service.report_inputs(s, pilot_id=pid, as_of=AS_OF)
        again = service.report_inputs(s, pilot_id=pid, as_of=AS_OF)
        # column order of a frame does not change the canonical form
        shuffled = R.PilotReportInputs(
            **{**first.__dict__, "rows": first.rows[list(reversed(first.rows.columns))]}
        )
        assert R.inputs_hash(first) == R.inputs_hash(again) == R.inputs_hash(shuffled)
        add_weeks(s, metric_id(s, HELPDESK, "resolution_time"), date(2012, 1, 30), [70])
        s.commit()
        changed = service.report_inputs(s, pilot_id=pid, as_of=AS_OF)
        assert R.inputs_hash(changed) != R.inputs_hash(first)


def stored_hashes(s: Session, pilot_id: int) -> list[str | None]:
    from metrics.models import Decision

    stmt = sa.select(Decision.report_hash).where(Decision.pilot_id == pilot_id)
    return list(s.execute(stmt.order_by(Decision.id)).scalars())


def test_decision_stores_the_hash_of_the_report_shown(engine, monkeypatch):
    monkeypatch.setattr(service, "today", lambda: AS_OF)
    with Session(engine) as s:
        pid = make_pilot(s, metrics=[metric_in(baseline=120.0)])
        add_weeks(s, metric_id(s, HELPDESK, "resolution_time"), date(2012, 1, 2), [79, 78, 77, 76])
        s.commit()
        shown = R.inputs_hash(service.report_inputs(s, pilot_id=pid, as_of=AS_OF))
        res = service.record_decision(
            session=s, actor="ada", pilot_id=pid, decision="go", as_of=AS_OF, report_hash=shown
        )
        s.commit()
        assert res.report_hash == shown
        assert stored_hashes(s, pid) == [shown]
        # evidence changed after the person looked: refused, nothing written
        add_weeks(s, metric_id(s, HELPDESK, "resolution_time"), date(2012, 1, 30), [75])
        s.commit()
        with pytest.raises(governance.StoreError, match="changed since"):
            service.record_decision(
                session=s,
                actor="ada",
                pilot_id=pid,
                decision="go",
                as_of=AS_OF,
                rationale="again",
                report_hash=shown,
            )
        s.rollback()
        now = R.inputs_hash(service.report_inputs(s, pilot_id=pid, as_of=AS_OF))
        # without a hash (CLI, API) the store hashes the report as of that day itself
        res2 = service.record_decision(
            session=s, actor="ada", pilot_id=pid, decision="go", as_of=AS_OF, rationale="again"
        )
        assert res2.report_hash == now and res2.report_hash != shown
        s.commit()
        assert stored_hashes(s, pid) == [shown, now]


def test_report_shows_the_latest_decision_with_signer_and_rationale(engine, monkeypatch):
    monkeypatch.setattr(service, "today", lambda: AS_OF)
    with Session(engine) as s:
        pid = make_pilot(s, metrics=[metric_in(baseline=120.0)])
        add_weeks(s, metric_id(s, HELPDESK, "resolution_time"), date(2012, 1, 2), [99, 98, 97, 96])
        s.commit()
        service.record_decision(
            session=s,
            actor="Zoë Ağaoğlu",
            pilot_id=pid,
            decision="extend",
            as_of=AS_OF,
            rationale="Four more weeks: volume dips in June",
        )
        s.commit()
        text = flat(
            pdf_text(R.pilot_report_pdf(service.report_inputs(s, pilot_id=pid, as_of=AS_OF)))
        )
    assert "extend, signed by Zoë Ağaoğlu on" in text
    assert "judged on the evidence as of 2012-06-30" in text
    assert "Rationale: Four more weeks: volume dips in June" in text


HOSTILE = [
    "<b>bold</b> &amp; <script>alert(1)</script> <font size=80>x</font>",
    '=HYPERLINK("http://evil.example","click") +1 -2 @SUM(A1)',
    "W" * 200,  # the longest name the column takes, one word that cannot wrap
    "פיילוט ניתוב פניות עם שם ארוך مساعد فرز التذاكر " * 4,
]


@pytest.mark.parametrize("name", HOSTILE, ids=["markup", "formula", "long-word", "rtl"])
def test_hostile_names_stay_on_one_page(engine, name):
    name = name.strip()[:200]
    long_text = ("Ünïcödé " + "x" * 290)[:300]
    with Session(engine) as s:
        metrics = [
            metric_in(f"m{i}", label=(name + f" {i}")[:200], baseline=100.0 + i, target=50.0)
            for i in range(7)
        ] + [
            metric_in(
                "g",
                role="guardrail",
                label=name[:200],
                baseline=5.0,
                margin=1.0,
                target=4.0,
                unit="%",
            )
        ]
        pid = make_pilot(
            s,
            name,
            metrics=metrics,
            vendor=name[:200],
            owner=name[:200],
            use_case=(name + " " + long_text)[:500],
        )
        for i in range(7):
            add_weeks(s, metric_id(s, name, f"m{i}"), date(2012, 1, 2), [90, 80, 70, None, 60])
        add_weeks(s, metric_id(s, name, "g"), date(2012, 1, 2), [5, 6, 7, 8])
        governance.add_checklist_item(session=s, actor="ada", pilot_id=pid, item=long_text)
        s.commit()
        inputs = service.report_inputs(s, pilot_id=pid, as_of=AS_OF)
        pdf = R.pilot_report_pdf(inputs)
        portfolio = R.portfolio_report_pdf(service.portfolio_report_inputs(s, as_of=AS_OF))
    assert pages(pdf) == 1
    positions = text_positions(pdf)
    assert positions
    for x, y, text in positions:
        assert -1 <= x <= A4_W and 0 <= y <= A4_H, (x, y, text)
    text = pdf_text(pdf)
    if name.startswith("<b>"):
        assert "<b>bold</b>" in flat(text)  # printed as text, not interpreted as markup
    if name.startswith("="):
        assert '=HYPERLINK("http://evil.example","click")' in flat(text)
    assert f"Inputs SHA-256: {R.inputs_hash(inputs)}" in flat(text)
    assert pages(portfolio) == 1
    for x, y, text in text_positions(portfolio):
        assert -1 <= x <= A4_W and 0 <= y <= A4_H, (x, y, text)


def test_right_to_left_text_is_drawn_in_visual_order():
    assert R.visual("Pilot פיילוט ניתוב v2") == "Pilot בותינ טולייפ v2"
    assert R.visual("plain <b>text</b>") == "plain <b>text</b>"  # unchanged
    # escaped after reordering: markup in a right-to-left name is still printed as text
    assert R._t("<i>פיילוט</i>") == "&lt;i&gt;טולייפ&lt;/i&gt;"


def _pdftoppm(pdf: Path, png_base: Path) -> Path:
    exe = shutil.which("pdftoppm")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("pdftoppm (poppler-utils) missing: .ci/run installs it")
        pytest.skip("pdftoppm (poppler-utils) not installed")
    subprocess.run(
        [exe, "-png", "-r", "110", "-singlefile", str(pdf), str(png_base)],
        check=True,
        timeout=60,
    )
    return png_base.with_suffix(".png")


def test_demo_portfolio_and_png_previews(run, shared_data, tmp_path):
    """The demo portfolio and the help-desk pilot: every pilot listed on one portfolio
    page, each pilot's report one page; PNG previews rendered with pdftoppm (saved to
    PILOTGATE_SCREENSHOT_DIR, e.g. docs/, by `make screenshot`)."""
    code, _, err = run("seed", "demo", "--today", "2026-11-16")
    assert code == 0, err
    code, _, err = run("seed", "helpdesk", "--file", str(shared_data / "helpdesk.csv"))
    assert code == 0, err
    out = tmp_path / "portfolio.pdf"
    code, _, err = run("report", "--portfolio", "--as-of", "2026-11-16", "-o", str(out))
    assert code == 0, err
    pdf = out.read_bytes()
    assert pages(pdf) == 1
    text = flat(pdf_text(pdf))
    names = [
        "Claims triage agent",
        "Contract review assistant",
        "Fraud analyst copilot",
        "Helpdesk triage assistant",
        "Invoice extraction copilot",
        "Sales email assistant",
    ]
    for name in names:
        assert name in text
    assert "6 pilots" in text
    for name in names:
        code, _, err = run("report", name, "--as-of", "2026-11-16", "-o", str(tmp_path / "p.pdf"))
        assert code == 0, err
        assert pages((tmp_path / "p.pdf").read_bytes()) == 1
    hd = tmp_path / "helpdesk.pdf"
    code, _, err = run("report", HELPDESK, "--as-of", "2012-06-30", "-o", str(hd))
    assert code == 0, err
    sales = tmp_path / "sales.pdf"
    code, _, err = run("report", "Sales email assistant", "--as-of", "2026-11-16", "-o", str(sales))
    assert code == 0, err
    dest = Path(os.environ.get("PILOTGATE_SCREENSHOT_DIR") or tmp_path)
    for pdf_file, name in (
        (hd, "report-helpdesk"),
        (out, "report-portfolio"),
        (sales, "report-sales"),
    ):
        png = _pdftoppm(pdf_file, dest / name)
        assert png.read_bytes().startswith(b"\x89PNG")


def test_portfolio_of_many_pilots_takes_as_few_pages_as_needed():
    import pandas as pd

    def pf(n: int) -> bytes:
        rows = pd.DataFrame(
            {
                "pilot": [f"Pilot {i:03d}" for i in range(n)],
                "vendor": ["Acme"] * n,
                "stage": ["pilot"] * n,
                "recommendation": ["go", "extend", "no_go", "insufficient_data"] * (n // 4),
                "decision_date": [date(2026, 12, 18)] * n,
                "decision": [None] * n,
                "decided_by": [None] * n,
                "status_counts": [{"met": 1, "at_risk": 2}] * n,
            }
        )
        return R.portfolio_report_pdf(R.PortfolioReportInputs(pilots=rows, as_of=AS_OF))

    one, many = pf(20), pf(200)
    assert pages(one) == 1
    assert 3 <= pages(many) <= 6
    text = flat(pdf_text(many))
    assert "Pilot 000" in text and "Pilot 199" in text
    assert "go 50 · extend 50 · no-go 50 · insufficient data 50" in text
    assert "portfolio page 2" in text  # the footer on every page


def test_report_bad_input_is_one_line_and_non_zero(helpdesk, tmp_path):
    cases = [
        (("report", "No such pilot", "-o", str(tmp_path / "a.pdf")), 1, "no pilot named"),
        (
            ("report", HELPDESK, "--as-of", "2011-06-30", "-o", str(tmp_path / "a.pdf")),
            1,
            "is before the start of 'Helpdesk triage assistant' (2012-01-02)",
        ),
        (("report", HELPDESK, "-o", str(tmp_path)), 1, "is a folder"),
        (("report", HELPDESK, "-o", str(tmp_path / "no" / "a.pdf")), 1, "does not exist"),
        (("report", HELPDESK), 2, "give the PDF file to write with -o FILE.pdf"),
        (("report", "--portfolio", HELPDESK, "-o", "x.pdf"), 2, "one of them"),
        (("report", HELPDESK, "--as-of", "30/06/2012", "-o", "x.pdf"), 1, "is not a date"),
    ]
    for args, want_code, message in cases:
        code, _out, err = helpdesk(*args)
        assert code == want_code, (args, err)
        assert message in err, (args, err)
        assert len(err.strip().splitlines()) == 1, err
        assert "Traceback" not in err
    assert not (tmp_path / "a.pdf").exists()
