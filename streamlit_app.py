"""PilotGate dashboard entry point: page config and navigation only (DESIGN §2)."""

import streamlit as st

st.set_page_config(page_title="PilotGate", page_icon=":material/fact_check:", layout="wide")

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
