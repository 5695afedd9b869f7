"""POST /predict: the chapter's contract, made correct."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnops.data.sample import generate_customers

from .support import AUTH, make_settings, payload


def _predict(client, body, **kwargs):
    return client.post("/predict", json=body, auth=AUTH, **kwargs)


def test_chapter_payload_numbers_or_strings_give_the_pipeline_probabilities(
    client, synthetic_model
):
    numbers = _predict(client, payload("chapter_request.json"))
    strings = _predict(client, payload("chapter_request_strings.json"))
    assert numbers.status_code == strings.status_code == 200
    assert numbers.json() == strings.json()
    result = numbers.json()["0"]
    pipeline = synthetic_model[1].load_pipeline()
    frame = pd.DataFrame(payload("chapter_request.json"), dtype=object)
    classes = [str(c) for c in pipeline.classes_]
    expected = dict(zip(classes, pipeline.predict_proba(frame)[0].tolist(), strict=True))
    assert result["probabilities"] == pytest.approx(expected, abs=1e-9)
    assert result["probability"] == pytest.approx(expected[result["prediction"]], abs=1e-9)
    assert numbers.headers["X-Model-Version"] == synthetic_model[1].version
    assert numbers.headers["X-Request-ID"]


def test_alone_and_in_a_large_batch_are_identical(client):
    records = generate_customers(50, seed=21).drop(columns=["Churn"]).to_dict("records")
    batch = _predict(client, records).json()
    for i in (0, 17, 49):
        alone = _predict(client, [records[i]]).json()["0"]
        assert alone == batch[str(i)]


def test_unseen_category_is_scored_with_a_warning(client):
    record = dict(payload("chapter_request.json")[0], PaymentMethod="Crypto")
    response = _predict(client, [record])
    assert response.status_code == 200
    warnings = response.json()["0"]["warnings"]
    assert len(warnings) == 1
    assert "PaymentMethod" in warnings[0]
    assert "Crypto" in warnings[0]


GOOD = payload("chapter_request.json")[0]
BAD_INPUTS = [
    ("not json", b"{nope", 400, "not valid JSON"),
    ("empty body", b"", 400, "empty body"),
    ("object not array", b'{"tenure": 1}', 400, "expected a JSON array"),
    ("empty array", b"[]", 422, "no records"),
    ("element not object", b"[1]", 422, "record 0: expected an object, got a number"),
    (
        "missing field",
        [{k: v for k, v in GOOD.items() if k != "tenure"}],
        422,
        "record 0, field 'tenure': missing field",
    ),
    (
        "non-numeric",
        [GOOD, dict(GOOD, MonthlyCharges="abc")],
        422,
        "record 1, field 'MonthlyCharges': expected a number, got 'abc'",
    ),
    (
        "wrong JSON type",
        [dict(GOOD, Contract=["Two year"])],
        422,
        "field 'Contract': expected text, got an array",
    ),
    (
        "boolean number",
        [dict(GOOD, tenure=True)],
        422,
        "field 'tenure': expected a number, got a boolean",
    ),
    ("too many records", [GOOD] * 51, 413, "51 records exceed the limit of 50"),
]


@pytest.mark.parametrize(
    ("body", "status", "message"), [c[1:] for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS]
)
def test_bad_input_gets_a_4xx_naming_the_problem(client, body, status, message):
    if isinstance(body, bytes):
        response = client.post(
            "/predict", content=body, auth=AUTH, headers={"Content-Type": "application/json"}
        )
    else:
        response = _predict(client, body)
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]


def test_problems_are_listed_per_record_and_field(client):
    response = _predict(client, [dict(GOOD, tenure="x"), dict(GOOD, TotalCharges="y")])
    assert response.json()["problems"] == [
        {"record": 0, "field": "tenure", "problem": "expected a number, got 'x'"},
        {"record": 1, "field": "TotalCharges", "problem": "expected a number, got 'y'"},
    ]


def test_body_limit_is_counted_on_the_stream(synthetic_model):
    from fastapi.testclient import TestClient

    from churnops.api import create_app

    app = create_app(make_settings(synthetic_model[1].path, max_body_bytes=2048))
    with TestClient(app) as small:
        big = b"[" + b",".join([b'{"tenure": 1}'] * 400) + b"]"
        declared = small.post("/predict", content=big, auth=AUTH)
        assert declared.status_code == 413

        def chunks():  # no Content-Length: chunked transfer
            for start in range(0, len(big), 512):
                yield big[start : start + 512]

        streamed = small.post("/predict", content=chunks(), auth=AUTH)
        assert streamed.status_code == 413
        assert "exceeds the limit of 2048 bytes" in streamed.json()["detail"]


@pytest.mark.parametrize("auth", [None, ("analyst", "wrong"), ("someone", "s3cret-pass")])
def test_401_comes_before_the_body_is_looked_at(client, auth):
    response = client.post("/predict", content=b"{not json", auth=auth)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert "JSON" not in response.text


def test_health_metadata_and_metrics(client, synthetic_model):
    assert client.get("/health/live").json() == {"status": "ok"}
    assert client.get("/health/ready").json()["status"] == "ready"
    assert client.get("/metadata").status_code == 401
    meta = client.get("/metadata", auth=AUTH).json()
    assert meta["version"] == synthetic_model[1].version
    assert meta["synthetic_training_data"] is True
    assert meta["fast_path"] is True
    contract = next(f for f in meta["schema"]["features"] if f["name"] == "Contract")
    assert "Two year" in contract["categories"]
    _predict(client, payload("chapter_request.json"))
    metrics = client.get("/metrics").text
    assert 'churnops_requests_total{method="POST",route="/predict",status="200"}' in metrics
    assert "churnops_request_seconds_bucket" in metrics
    assert "churnops_predictions_total" in metrics
    assert f'version="{synthetic_model[1].version}"' in metrics


def test_openapi_documents_the_chapter_example(client):
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert body["example"] == payload("chapter_request.json")


def test_no_500_for_odd_bodies(client):
    for body in (
        b"null",
        b'"text"',
        b"[[]]",
        b"[null]",
        b'[{"tenure": {}}]',
        b"\xff\xfe",
        b"1e999",
    ):
        response = client.post("/predict", content=body, auth=AUTH)
        assert 400 <= response.status_code < 500, (body, response.text)


def test_probabilities_sum_to_one(client):
    records = generate_customers(20, seed=2).drop(columns=["Churn"]).to_dict("records")
    for result in _predict(client, records).json().values():
        assert sum(result["probabilities"].values()) == pytest.approx(1.0)
        assert result["probability"] >= 0.5 or result["prediction"] == "Yes"
    assert np.isfinite([r["probability"] for r in _predict(client, records).json().values()]).all()
