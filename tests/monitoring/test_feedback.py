"""Ground truth: POST /feedback and `churnops monitor labels`."""

from __future__ import annotations

import subprocess

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from churnops.api.app import create_app
from churnops.monitoring.store import open_store

from ..api.servers import CHURNOPS, _env
from ..api.support import AUTH, make_settings, payload


def _record(key: str) -> dict:
    return {**payload("chapter_request.json")[0], "customerID": key}


@pytest.fixture
def store_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'monitoring.db'}"


@pytest.fixture
def client(synthetic_model, store_url):
    settings = make_settings(synthetic_model[1].path, store_url=store_url, max_records=20)
    with TestClient(create_app(settings)) as c:
        yield c


def _labels(url: str) -> list[tuple[str, str, str]]:
    import sqlalchemy as sa

    store = open_store(url)
    try:
        with store.engine.connect() as connection:
            query = sa.text("SELECT record_key, label, source FROM labels ORDER BY id")
            return [tuple(row) for row in connection.execute(query)]
    finally:
        store.close()


def test_labels_of_predicted_keys_are_stored_and_unknown_ones_reported(client, store_url):
    response = client.post("/predict", json=[_record("c-1"), _record("c-2")], auth=AUTH)
    assert response.status_code == 200
    # No wait: /feedback writes this worker's queued predictions first.
    feedback = [
        {"key": "c-1", "label": "Yes"},
        {"key": "c-2", "label": "No"},
        {"key": "never-seen", "label": "No"},
    ]
    response = client.post("/feedback", json=feedback, auth=AUTH)
    assert response.status_code == 200, response.text
    assert response.json() == {"stored": 2, "unknown": 1, "unknown_keys": ["never-seen"]}
    assert _labels(store_url) == [("c-1", "Yes", "api"), ("c-2", "No", "api")]


def test_integer_keys_match_integer_ids(client, store_url):
    record = {**_record("x"), "customerID": 12345}
    assert client.post("/predict", json=[record], auth=AUTH).status_code == 200
    response = client.post("/feedback", json=[{"key": 12345, "label": "No"}], auth=AUTH)
    assert response.json()["stored"] == 1
    assert _labels(store_url) == [("12345", "No", "api")]


def test_feedback_needs_the_same_credentials_as_predict(client):
    response = client.post("/feedback", json=[{"key": "c-1", "label": "Yes"}])
    assert response.status_code == 401
    wrong = client.post("/feedback", json=[{"key": "c-1", "label": "Yes"}], auth=("x", "y"))
    assert wrong.status_code == 401


@pytest.mark.parametrize(
    ("body", "status", "expected"),
    [
        ([{"key": "a", "label": "Maybe"}], 422, "'Maybe' is not one of the model's classes"),
        ([{"key": "a"}], 422, "field 'label': missing: send one of"),
        ([{"label": "Yes"}], 422, "field 'key': missing"),
        ([{"key": "", "label": "Yes"}], 422, "a key has 1 to 256 characters"),
        ([{"key": "k" * 300, "label": "Yes"}], 422, "a key has 1 to 256 characters"),
        ([{"key": 1.5, "label": "Yes"}], 422, "expected a string or an integer"),
        ([{"key": "a\u0000b", "label": "Yes"}], 422, "NUL"),
        ([{"key": 2**70, "label": "Yes"}], 422, "64 bits"),
        ([{"key": "a", "label": "Yes", "lable": "No"}], 422, "field 'lable': unknown field"),
        (["a"], 422, "record 0: expected an object"),
        ([], 422, "no labels"),
        ({"key": "a", "label": "Yes"}, 400, "expected a JSON array"),
        ([{"key": "a", "label": "Yes"}] * 21, 413, "exceed the limit of 20"),
    ],
)
def test_bad_feedback_is_refused_naming_the_problem(client, body, status, expected):
    response = client.post("/feedback", json=body, auth=AUTH)
    assert response.status_code == status, response.text
    assert expected in response.json()["detail"]


def test_every_problem_is_named_by_position(client):
    body = [{"key": "a", "label": "Yes"}, {"key": "b", "label": "?"}, {"key": None, "label": "No"}]
    response = client.post("/feedback", json=body, auth=AUTH)
    assert response.status_code == 422
    problems = response.json()["problems"]
    assert [(p["record"], p["field"]) for p in problems] == [(1, "label"), (2, "key")]


def test_not_json_is_400(client):
    response = client.post(
        "/feedback", content=b"key,label", headers={"Content-Type": "application/json"}, auth=AUTH
    )
    assert response.status_code == 400


def test_the_openapi_document_describes_feedback(client):
    document = client.get("/openapi.json").json()
    body = document["paths"]["/feedback"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["maxItems"] == 20
    assert body["schema"]["items"]["properties"]["label"]["enum"] == ["No", "Yes"]


def test_a_store_that_fails_answers_503(client, store_url):
    import sqlite3

    locker = sqlite3.connect(store_url.removeprefix("sqlite:///"), isolation_level=None)
    locker.execute("DROP TABLE labels")  # the store is broken underneath the service
    locker.close()
    assert client.post("/predict", json=[_record("z")], auth=AUTH).status_code == 200
    response = client.post("/feedback", json=[{"key": "z", "label": "No"}], auth=AUTH)
    assert response.status_code == 503
    assert "labels" in response.json()["detail"]


def test_monitor_labels_prints_stored_and_unknown_counts(client, store_url, tmp_path):
    keys = [f"m-{i}" for i in range(4)]
    assert client.post("/predict", json=[_record(k) for k in keys], auth=AUTH).status_code == 200
    client.post("/feedback", json=[{"key": "m-0", "label": "No"}], auth=AUTH)  # flushes the log
    truth = pd.DataFrame(
        {"id": [*keys[:3], "other-1", "other-2"], "churned": ["Yes", "No", "No", "No", "Yes"]}
    )
    path = tmp_path / "truth.csv"
    truth.to_csv(path, index=False)
    result = subprocess.run(
        [CHURNOPS, "monitor", "labels", "--data", str(path), "--key-column", "id",
         "--label-column", "churned", "--store", store_url],
        env=_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "stored 3 labels" in result.stdout
    assert "2 with a key no logged prediction has" in result.stdout
    assert "other-1, other-2" in result.stdout
    assert ("m-1", "No", "truth.csv") in _labels(store_url)


def test_monitor_labels_names_a_missing_column_in_one_line(tmp_path):
    path = tmp_path / "truth.csv"
    pd.DataFrame({"customerID": ["a"], "Churn": ["No"]}).to_csv(path, index=False)
    result = subprocess.run(
        [CHURNOPS, "monitor", "labels", "--data", str(path), "--label-column", "y",
         "--store", f"sqlite:///{tmp_path / 'm.db'}"],
        env=_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1
    assert "no column 'y'" in result.stderr
