"""The API fuzzed against its own OpenAPI schema (schemathesis): no input makes it answer 5xx."""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from plurigrid.server.app import create_app, first_operator_token

_DATA = Path(tempfile.mkdtemp(prefix="plurigrid-fuzz-"))
APP = create_app(_DATA)
TOKEN = first_operator_token(APP.state.context)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: schemathesis.Case) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"}, checks=[not_a_server_error])
