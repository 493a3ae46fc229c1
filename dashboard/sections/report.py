"""Decision report downloads (DESIGN §12) for the Pilot and Export pages.

- :func:`render_pilot_download`: "Download decision report (PDF)" for one pilot.
- :func:`render_portfolio_download`: the portfolio report (Export page; the pilot report
  sits in the Export page's decision card).
- :func:`report_hash`: the SHA-256 of the report of a pilot as of a day, which the
  decision form sends with a decision (the report as the person saw it).

PDFs are built on click (Streamlit's deferred download data) from cached inputs, so a
page that is only looked at never renders a PDF.
"""

from __future__ import annotations

import re
from datetime import date

import streamlit as st

from dashboard import state
from metrics import report, service
from metrics.db import session_scope


@st.cache_data(ttl=state.CACHE_TTL, show_spinner=False)
def _pilot_inputs(version: tuple, as_of: date, pilot_id: int):
    """:func:`metrics.service.report_inputs`, or the refusal's message (str)."""
    with session_scope(state.get_engine()) as s:
        try:
            return service.report_inputs(s, pilot_id=pilot_id, as_of=as_of)
        except service.ReportError as exc:
            return str(exc).replace("--as-of", "the as-of date")


@st.cache_data(ttl=state.CACHE_TTL, show_spinner=False)
def _portfolio_pdf(version: tuple, as_of: date) -> bytes:
    with session_scope(state.get_engine()) as s:
        return report.portfolio_report_pdf(service.portfolio_report_inputs(s, as_of=as_of))


def report_hash(version: tuple, as_of: date, pilot_id: int) -> str | None:
    """SHA-256 of the pilot's decision report as of ``as_of`` (None when there is none)."""
    inputs = _pilot_inputs(version, as_of, pilot_id)
    return None if isinstance(inputs, str) else report.inputs_hash(inputs)


def _file_name(name: str, as_of: date) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()[:60] or "pilot"
    return f"pilotgate-report-{slug}-{as_of.isoformat()}.pdf"


def render_pilot_download(*, pilot_id: int, as_of: date, version: tuple, key: str) -> None:
    """A download button for the pilot's one-page decision report as of ``as_of``; a
    caption instead when no report can be made (as-of before the pilot's start)."""
    inputs = _pilot_inputs(version, as_of, pilot_id)
    if isinstance(inputs, str):
        st.caption(f"No decision report: {inputs}.")
        return
    st.download_button(
        "Download decision report (PDF)",
        data=lambda: report.pilot_report_pdf(inputs),
        file_name=_file_name(str(inputs.pilot["pilot"]), as_of),
        mime="application/pdf",
        on_click="ignore",
        key=key,
        icon=":material/picture_as_pdf:",
        help="One printable page: recommendation and reasons, every metric with its 95% "
        f"interval and chart, open checklist items, the latest decision. Inputs SHA-256 "
        f"{report.inputs_hash(inputs)[:16]}…",
    )


def render_portfolio_download(*, as_of: date, version: tuple) -> None:
    """The portfolio report's download button (built only when clicked)."""
    st.download_button(
        "Download portfolio report (PDF)",
        data=lambda: _portfolio_pdf(version, as_of),
        file_name=f"pilotgate-portfolio-{as_of.isoformat()}.pdf",
        mime="application/pdf",
        on_click="ignore",
        key="download-portfolio-report",
        icon=":material/picture_as_pdf:",
        help="Every pilot with its recommendation, decision date and metric statuses.",
    )
