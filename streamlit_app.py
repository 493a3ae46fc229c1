"""PilotGate dashboard entry point: page config, the sign-in gate and navigation (DESIGN §2).

Pages are shown by role (docs/auth.md): viewers read and export; editors also enter
and import; admins also get the Admin page. Hiding a page is only convenience: the
store refuses every write the actor's role does not allow.
"""

from pathlib import Path

import streamlit as st

from dashboard import auth, state
from metrics.access import allowed
from metrics.models import Role

#: The favicon: a file in the repository, served by this server (/media/…). A
#: ":material/…:" page icon makes the browser fetch an SVG from fonts.gstatic.com,
#: which fails offline and leaks the visit to a third party.
PAGE_ICON = Path(__file__).resolve().parent / "dashboard" / "static" / "pilotgate-icon.png"

st.set_page_config(page_title="PilotGate", page_icon=str(PAGE_ICON), layout="wide")
# Streamlit's own "Download as CSV" and copy on tables write cells raw, so a pilot named
# =cmd|' /C calc'!A0 would reach a spreadsheet as a formula. They are off (here and in
# .streamlit/config.toml, read before the first run); PilotGate's own CSV downloads,
# which neutralise such cells (metrics.csvio.to_csv_text), sit next to the tables.
st.set_option("client.disableDataExport", True)

PORTFOLIO = st.Page(
    "dashboard/pages/portfolio.py", title="Portfolio", icon=":material/dashboard:", default=True
)
PILOT = st.Page("dashboard/pages/pilot.py", title="Pilot", icon=":material/query_stats:")
ENTER = st.Page("dashboard/pages/enter.py", title="Enter", icon=":material/edit_note:")
IMPORT = st.Page("dashboard/pages/import_csv.py", title="Import", icon=":material/upload_file:")
VENDORS = st.Page("dashboard/pages/vendors.py", title="Vendors", icon=":material/storefront:")
EXPORT = st.Page("dashboard/pages/export.py", title="Export", icon=":material/download:")
ADMIN = st.Page("dashboard/pages/admin.py", title="Admin", icon=":material/admin_panel_settings:")

identity = state.current_identity()  # stops with one line when the settings are invalid
refusal = auth.startup_refusal()
if refusal is not None:
    # Unsafe to serve anyone (a non-loopback address in mode none, a weak OIDC cookie
    # secret, ...): no page runs, whoever reached the port learns only why.
    auth.refused_page(refusal)
    st.stop()
role = state.current_role() if identity.signed_in else None

pages = [PORTFOLIO, PILOT, VENDORS]
if allowed(role, Role.editor):
    pages += [ENTER, IMPORT]
pages.append(EXPORT)
if allowed(role, Role.admin):
    pages.append(ADMIN)

if not identity.signed_in or role is None:
    # The gate: the pages stay registered (so a shared address keeps its path) but
    # hidden, and none of them runs.
    st.navigation(pages, position="hidden")
    if identity.signed_in:
        auth.sidebar_identity(identity, role)
        auth.no_access_page(identity)
    else:
        auth.sign_in_page(identity)
    st.stop()

page = st.navigation(pages)
auth.sidebar_identity(identity, role)
page.run()
