"""POST /predict: the chapter's contract, made correct."""

from __future__ import annotations

import base64
import dataclasses
import json
import logging

import numpy as np
import orjson
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from churnops.api.app import create_app
from churnops.api.observability import JsonFormatter
from churnops.api.routes.scoring import INLINE_BODY_BYTES
from churnops.config import Settings
from churnops.data.sample import generate_customers
from churnops.errors import ArtifactError, ConfigError

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


def test_openapi_request_schema_is_the_served_models(client, synthetic_model):
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    record = body["schema"]["items"]
    schema = synthetic_model[1].schema
    assert set(record["required"]) == set(schema.feature_names)
    assert set(record["properties"]) == set(schema.feature_names)
    assert body["schema"]["maxItems"] == 50
    contract = record["properties"]["Contract"]
    assert set(contract["examples"]) <= set(schema.feature("Contract").categories)
    # The generated example is a valid request.
    response = client.post("/predict", json=body["example"], auth=AUTH)
    assert response.status_code == 200, response.text
    result = spec["paths"]["/predict"]["post"]["responses"]["200"]["content"]["application/json"]
    assert "prediction" in result["schema"]["additionalProperties"]["properties"]


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


def test_large_batch_in_the_thread_pool_matches_records_scored_alone(large_client):
    customers = generate_customers(2000, seed=5).drop(columns=["Churn"]).to_dict("records")
    # The tiny model saw no blank TotalCharges, so it refuses them; keep the rest.
    records = [r for r in customers if str(r["TotalCharges"]).strip()]
    assert len(orjson.dumps(records)) > INLINE_BODY_BYTES  # so the batch leaves the event loop
    batch = _predict(large_client, records)
    assert batch.status_code == 200
    results = batch.json()
    assert list(results) == [str(i) for i in range(len(records))]
    for i in (0, 1, 777, len(records) - 1):
        assert _predict(large_client, [records[i]]).json()["0"] == results[str(i)]


def test_pipeline_fallback_serves_the_same_predictions(client, pipeline_only_model):
    records = generate_customers(30, seed=9).drop(columns=["Churn"]).to_dict("records")
    records[3]["Contract"] = "Ten year"  # unseen: the fallback validates like the fast path
    with TestClient(create_app(make_settings(pipeline_only_model.path))) as fallback:
        meta = fallback.get("/metadata", auth=AUTH).json()
        slow = _predict(fallback, records)
    assert meta["fast_path"] is False
    assert "no serving form" in meta["fallback_reason"]
    assert slow.status_code == 200
    fast = _predict(client, records).json()
    for i, result in slow.json().items():
        assert result["prediction"] == fast[i]["prediction"]
        assert result["warnings"] == fast[i]["warnings"]
        assert result["probabilities"] == pytest.approx(fast[i]["probabilities"], abs=1e-9)
    assert fast["3"]["warnings"]


class _BrokenScorer:
    """A scorer with a bug: any request that reaches it fails unexpectedly."""

    def __init__(self, scorer) -> None:
        self._scorer = scorer

    def __getattr__(self, name):
        return getattr(self._scorer, name)

    def score_records(self, records):
        raise RuntimeError("internal detail 42")


def test_a_bug_is_a_json_500_without_internals(synthetic_model):
    app = create_app(make_settings(synthetic_model[1].path))
    with TestClient(app, raise_server_exceptions=False) as broken:
        holder = app.state.holder
        holder.model = dataclasses.replace(holder.model, scorer=_BrokenScorer(holder.model.scorer))
        response = broken.post(
            "/predict",
            json=payload("chapter_request.json"),
            auth=AUTH,
            headers={"X-Request-ID": "bug-1"},
        )
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"detail": "internal error", "request_id": "bug-1"}


@pytest.fixture
def access_lines():
    """The access log records written while the test runs."""
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("churnops.access")
    handler, level = Collect(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield records
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_request_id_is_echoed_and_the_access_line_holds_no_payload(client, access_lines):
    response = client.post(
        "/predict",
        json=payload("chapter_request.json"),
        auth=AUTH,
        headers={"X-Request-ID": "req-abc-1"},
    )
    assert response.headers["X-Request-ID"] == "req-abc-1"
    assert len(client.get("/health/live").headers["X-Request-ID"]) == 32  # generated
    record = next(r for r in access_lines if getattr(r, "request_id", None) == "req-abc-1")
    text = JsonFormatter().format(record)
    line = json.loads(text)
    assert line["method"] == "POST"
    assert line["route"] == "/predict"
    assert line["status"] == 200
    assert line["records"] == 1
    assert line["latency_ms"] > 0
    for secret in ("7590-VHVEG", "Electronic check", AUTH[0], AUTH[1], "Basic "):
        assert secret not in text


def test_unknown_paths_share_one_metrics_label(client):
    response = client.get("/wp-login.php")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}
    metrics = client.get("/metrics").text
    assert 'route="other",status="404"' in metrics
    assert "wp-login" not in metrics


@pytest.mark.parametrize(
    "authorization",
    ["Basic !!!", "Bearer abc", "Basic " + base64.b64encode(b"no-colon").decode(), "Basic"],
)
def test_malformed_authorization_is_a_401(client, authorization):
    response = client.post(
        "/predict", json=payload("chapter_request.json"), headers={"Authorization": authorization}
    )
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_non_ascii_credentials(synthetic_model):
    settings = make_settings(synthetic_model[1].path, user="zoë", password="pässwörd ✓ ünïcode")
    with TestClient(create_app(settings)) as c:
        body = payload("chapter_request.json")
        assert c.post("/predict", json=body, auth=("zoë", "pässwörd ✓ ünïcode")).status_code == 200
        assert c.post("/predict", json=body, auth=("zoë", "passwörd ✓")).status_code == 401


def test_openapi_declares_basic_auth_on_the_protected_routes(client):
    spec = client.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"] == {
        "HTTPBasic": {"type": "http", "scheme": "basic"}
    }
    assert spec["paths"]["/predict"]["post"]["security"] == [{"HTTPBasic": []}]
    assert spec["paths"]["/metadata"]["get"]["security"] == [{"HTTPBasic": []}]
    assert "security" not in spec["paths"]["/health/ready"]["get"]
    assert client.get("/docs").status_code == 200


def test_no_credentials_means_no_app_unless_auth_is_off(synthetic_model):
    path = synthetic_model[1].path
    with pytest.raises(ConfigError, match="no credentials"):
        create_app(Settings(model=str(path)))
    with TestClient(create_app(Settings(model=str(path), no_auth=True))) as open_app:
        assert open_app.post("/predict", json=payload("chapter_request.json")).status_code == 200
        assert open_app.get("/metadata").status_code == 200
        spec = open_app.get("/openapi.json").json()
    assert "securitySchemes" not in spec.get("components", {})


def test_a_missing_model_fails_the_start_naming_it(tmp_path):
    app = create_app(make_settings(tmp_path / "nowhere"))
    with pytest.raises(ArtifactError, match="nowhere"), TestClient(app):
        pass
