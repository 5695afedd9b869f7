"""Property-based fuzzing of the whole API from its own OpenAPI document (schemathesis)."""

from __future__ import annotations

import base64

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings

from churnops.api.app import create_app

from .support import AUTH, make_settings

AUTHORIZATION = "Basic " + base64.b64encode(f"{AUTH[0]}:{AUTH[1]}".encode()).decode()


@pytest.fixture(scope="module")
def api_schema(synthetic_model):
    app = create_app(make_settings(synthetic_model[1].path, max_records=50))
    with TestClient(app):  # runs the lifespan: the model is loaded for the whole module
        yield schemathesis.openapi.from_asgi("/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_request_gets_a_server_error_or_breaks_the_documented_contract(case):
    case.call_and_validate(headers={"Authorization": AUTHORIZATION})
