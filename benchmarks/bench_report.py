"""Decision report speed: one pilot's one-page PDF (the real help-desk pilot as of
2012-06-30) and the portfolio report of a large synthetic portfolio (``--pilots``,
default 200 pilots x 4 metrics x 104 weeks), each split into gathering the inputs
(service: the summary and the pilot's frames) and rendering the PDF (metrics.report),
against a raw baseline measured in the same run (``pandas.read_sql`` of the three
tables).

Run: ``make bench`` or ``.venv/bin/python benchmarks/bench_report.py``.
Prints timings and ratios; asserts nothing.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bench_portfolio_page import big_portfolio, raw_read  # noqa: E402
from metrics import report, service  # noqa: E402
from metrics.db import init_db, make_engine, session_scope  # noqa: E402
from metrics.settings import get_settings  # noqa: E402
from seed.helpdesk import PILOT_NAME, seed_helpdesk  # noqa: E402


def _time(fn, runs: int = 5) -> tuple[float, object]:
    times, out = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def _pages(pdf: bytes) -> int:
    from pypdf import PdfReader

    return len(PdfReader(io.BytesIO(pdf)).pages)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--pilots", type=int, default=200)
    ap.add_argument("--weeks", type=int, default=104)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = get_settings().shared_data_dir / "helpdesk.csv"
        if path.exists():
            url = f"sqlite:///{Path(tmp) / 'helpdesk.db'}"
            engine = make_engine(url)
            init_db(engine)
            with session_scope(engine) as s:
                seed_helpdesk(session=s, actor="bench", path=path)
            as_of = date(2012, 6, 30)
            with session_scope(engine) as s:
                pid = service.pilot_id_by_name(s, PILOT_NAME)
                gather, inputs = _time(
                    lambda s=s: service.report_inputs(s, pilot_id=pid, as_of=as_of)
                )
            render, pdf = _time(lambda: report.pilot_report_pdf(inputs))
            raw = min(raw_read(url) for _ in range(3))
            print(f"one pilot ({PILOT_NAME}, as of {as_of}, {_pages(pdf)} page):")
            print(f"  raw pandas.read_sql of pilot+metric+measurement: {raw * 1000:.1f} ms")
            print(
                f"  gather inputs {gather * 1000:.0f} ms + render PDF {render * 1000:.0f} ms "
                f"= {(gather + render) * 1000:.0f} ms ({(gather + render) / raw:.0f}x raw), "
                f"{len(pdf) / 1024:.0f} KiB"
            )
            engine.dispose()
        else:
            print(f"{path} not found: one-pilot timing skipped")

        url = f"sqlite:///{Path(tmp) / 'big.db'}"
        n = big_portfolio(url, args.pilots, args.weeks)
        engine = make_engine(url)
        today = date.today()
        with session_scope(engine) as s:
            gather, inputs = _time(
                lambda s=s: service.portfolio_report_inputs(s, as_of=today), runs=3
            )
            pid = service.pilot_id_by_name(s, "Pilot 0000")
            one_gather, one_inputs = _time(
                lambda s=s: service.report_inputs(s, pilot_id=pid, as_of=today), runs=3
            )
        render, pdf = _time(lambda: report.portfolio_report_pdf(inputs), runs=3)
        one_render, _ = _time(lambda: report.pilot_report_pdf(one_inputs), runs=3)
        raw = min(raw_read(url) for _ in range(3))
        print(f"portfolio of {args.pilots} pilots ({n} weekly values, {_pages(pdf)} pages):")
        print(f"  raw pandas.read_sql of pilot+metric+measurement: {raw * 1000:.1f} ms")
        print(
            f"  portfolio report: gather inputs {gather * 1000:.0f} ms + render PDF "
            f"{render * 1000:.0f} ms = {(gather + render) * 1000:.0f} ms "
            f"({(gather + render) / raw:.0f}x raw), {len(pdf) / 1024:.0f} KiB"
        )
        print(
            f"  one pilot's report in that portfolio: gather {one_gather * 1000:.0f} ms + "
            f"render {one_render * 1000:.0f} ms (the summary is computed for the portfolio)"
        )
        engine.dispose()


if __name__ == "__main__":
    main()
