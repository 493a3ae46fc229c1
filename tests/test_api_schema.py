"""Property-based run of schemathesis against the API's own OpenAPI document: whatever
the generated requests, no 5xx, and every answer's status, content type and body match
the document (DESIGN §11: "a 5xx is a bug")."""

from __future__ import annotations

from datetime import date

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from metrics.api import create_app
from metrics.db import session_scope
from tests.factories import add_weeks, make_pilot, make_token, metric_id

#: Modest, so the run stays well under a minute on a shared 2-core machine.
EXAMPLES = 40


#: The application whose document is tested; its database is set per test (api_db).
APP = create_app(None)  # type: ignore[arg-type]  (the document needs no database)
schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", APP)


@pytest.fixture
def api_db(sqlite_engine):
    """A database with one pilot, three weeks and an editor token, behind APP."""
    with session_scope(sqlite_engine) as s:
        make_pilot(s, "Helpdesk triage assistant")
        add_weeks(
            s,
            metric_id(s, "Helpdesk triage assistant", "resolution_time"),
            date(2012, 1, 2),
            [90, 85, 80],
        )
        token = make_token(s, "schemathesis", role="editor")
    APP.state.engine = sqlite_engine
    yield token
    APP.state.engine = None


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_api_conforms_to_its_openapi_document(case, api_db):
    case.call_and_validate(
        headers={"Authorization": f"Bearer {api_db}"},
        checks=[
            checks.not_a_server_error,
            checks.status_code_conformance,
            checks.content_type_conformance,
            checks.response_schema_conformance,
        ],
    )
