"""PilotGate dashboard entry point: page config and navigation only (DESIGN §2)."""

from pathlib import Path

import streamlit as st

#: The favicon: a file in the repository, served by this server (/media/…). A
#: ":material/…:" page icon makes the browser fetch an SVG from fonts.gstatic.com,
#: which fails offline and leaks the visit to a third party.
PAGE_ICON = Path(__file__).resolve().parent / "dashboard" / "static" / "pilotgate-icon.png"

st.set_page_config(page_title="PilotGate", page_icon=str(PAGE_ICON), layout="wide")

st.navigation(
    [
        st.Page(
            "dashboard/pages/portfolio.py",
            title="Portfolio",
            icon=":material/dashboard:",
            default=True,
        ),
        st.Page("dashboard/pages/pilot.py", title="Pilot", icon=":material/query_stats:"),
        st.Page("dashboard/pages/enter.py", title="Enter", icon=":material/edit_note:"),
        st.Page("dashboard/pages/import_csv.py", title="Import", icon=":material/upload_file:"),
        st.Page("dashboard/pages/export.py", title="Export", icon=":material/download:"),
    ]
).run()
