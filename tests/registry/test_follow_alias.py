"""`churnops serve --model models:/NAME@ALIAS` follows the alias to each new champion."""

from __future__ import annotations

import time

import httpx
import pytest

from churnops.registry.models import promote

from ..api.servers import _env, serving
from ..api.support import AUTH, payload

pytestmark = pytest.mark.slow


def test_serving_follows_the_champion_alias(store, tmp_path):
    promote("churn", "1", store.uri)
    env = _env(
        CHURN_USER=AUTH[0],
        CHURN_PASSWORD=AUTH[1],
        CHURN_HOME=str(store.home),
        MLFLOW_TRACKING_URI=store.uri,
        MLFLOW_DISABLE_TELEMETRY="true",
        CHURN_MODEL_POLL_SECONDS="0.5",
    )
    args = ["--model", "models:/churn@champion", "--host", "127.0.0.1"]
    with serving(args, env, tmp_path / "log") as server, httpx.Client(auth=AUTH) as client:
        body = payload("chapter_request.json")
        first = client.post(f"{server.base}/predict", json=body)
        assert first.headers["X-Model-Version"] == "1"  # the registry version served
        meta = client.get(f"{server.base}/metadata")
        assert meta.headers["X-Model-Version"] == "1"
        assert meta.json()["registry_version"] == "models:/churn/1"
        assert meta.json()["registry"] == {"name": "churn", "version": "1", "alias": "champion"}
        assert meta.json()["version"] == store.artifacts[0].version  # the artifact's identity

        promote("churn", "2", store.uri)
        deadline = time.monotonic() + 30
        while True:
            response = client.post(f"{server.base}/predict", json=body)
            assert response.status_code == 200
            if response.headers["X-Model-Version"] == "2":
                break
            assert time.monotonic() < deadline, "the new champion was not picked up"
            time.sleep(0.2)
        meta = client.get(f"{server.base}/metadata").json()
        assert meta["registry"] == {"name": "churn", "version": "2", "alias": "champion"}
        assert meta["version"] == store.artifacts[1].version
    assert "following models:/churn@champion" in server.output()
    assert f"model: churn {store.artifacts[0].version} = models:/churn/1" in server.output()
    assert "model reload (registry poll): now serving" in server.output()
