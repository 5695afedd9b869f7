"""An app over a tiny synthetic model, with its credentials."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from churnops.api import create_app

from .support import make_settings


@pytest.fixture(scope="module")
def client(synthetic_model):
    with TestClient(create_app(make_settings(synthetic_model[1].path, max_records=50))) as c:
        yield c
