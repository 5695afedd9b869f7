"""The OpenAPI document: valid OpenAPI 3.1, generated from the served model's schema."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from openapi_spec_validator import validate
from openapi_spec_validator.versions import consts, get_spec_version

from churnops.api.app import create_app
from churnops.artifact import ModelArtifact

from .support import AUTH, make_settings, payload


@pytest.fixture(scope="module")
def other_model(tmp_path_factory) -> ModelArtifact:
    """A churn table with nothing of Telco's columns: its own target, labels, ID and features."""
    from churnops.data.dataset import DataSpec, dataset_from_frame
    from churnops.pipeline.build import AutoMLSettings
    from churnops.pipeline.train import export_model, train_model

    rng = np.random.default_rng(7)
    rows = 600
    frame = pd.DataFrame(
        {
            "account": [f"A{i:05d}" for i in range(rows)],
            "seats": rng.integers(1, 200, rows).astype(float),
            "monthly_spend_eur": rng.uniform(10, 900, rows).round(2),
            "region": rng.choice(["north", "south", "east", "west"], rows),
            "plan tier": rng.choice(["free", "team", "enterprise"], rows),
        }
    )
    frame.loc[rng.random(rows) < 0.1, "monthly_spend_eur"] = np.nan  # missing values allowed
    odds = (frame["plan tier"] == "free") * 1.5 - frame["seats"] / 100
    frame["left"] = np.where(rng.random(rows) < 1 / (1 + np.exp(-odds)), "gone", "stayed")
    spec = DataSpec(target="left", positive_label="gone", id_columns=("account",))
    dataset = dataset_from_frame(frame, spec, source="accounts", sha256="0" * 64)
    result = train_model(dataset, AutoMLSettings(time_budget=None, max_iter=2, n_jobs=1))
    return export_model(result, tmp_path_factory.mktemp("models") / "accounts")


@pytest.fixture(params=["telco", "other"])
def served(request, synthetic_model, other_model):
    artifact = synthetic_model[1] if request.param == "telco" else other_model
    with TestClient(create_app(make_settings(artifact.path, max_records=50))) as client:
        yield client, artifact


def test_openapi_is_valid_31_and_names_every_feature_of_the_served_model(served):
    client, artifact = served
    spec = client.get("/openapi.json").json()
    assert get_spec_version(spec) == consts.OPENAPIV31
    validate(spec)  # raises on any violation of the OpenAPI 3.1 schema
    schema = artifact.schema
    operation = spec["paths"]["/predict"]["post"]
    record = operation["requestBody"]["content"]["application/json"]["schema"]["items"]
    assert set(record["required"]) == set(schema.feature_names)
    assert set(record["properties"]) == set(schema.feature_names)
    for feature in schema.features:
        choices = record["properties"][feature.name]["anyOf"]
        types = [c.get("type") for c in choices]
        assert ("null" in types) == feature.allows_missing, feature.name
        if feature.kind == "categorical":
            assert choices[0]["enum"] == list(feature.categories)
        else:
            assert "number" in types
    answer = operation["responses"]["200"]["content"]["application/json"]["schema"]
    fields = answer["additionalProperties"]["properties"]
    assert fields["prediction"]["enum"] == list(schema.classes)
    assert {"probability", "churn_probability", "probabilities", "warnings"} <= set(fields)
    for status in ("400", "401", "413", "422", "503"):
        error = operation["responses"][status]["content"]["application/json"]["schema"]
        assert error["required"] == ["detail"], status
    metrics = spec["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain"]
    # The example of the document is a request the model answers, with the documented fields.
    example = operation["requestBody"]["content"]["application/json"]["example"]
    response = client.post("/predict", json=example, auth=AUTH)
    assert response.status_code == 200, response.text
    assert set(response.json()["0"]) == set(fields) - {"explanation"}  # only with explain=true
    explained = client.post("/predict?explain=true", json=example, auth=AUTH)
    assert set(explained.json()["0"]) == set(fields)


def test_the_docs_page_offers_a_basic_login(client):
    spec = client.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["HTTPBasic"] == {"type": "http", "scheme": "basic"}
    assert spec["paths"]["/predict"]["post"]["security"] == [{"HTTPBasic": []}]
    page = client.get("/docs")
    assert page.status_code == 200
    assert "swagger-ui" in page.text
    assert "/openapi.json" in page.text


def test_the_document_follows_a_swapped_model(synthetic_model, other_model, tmp_path):
    served = tmp_path / "served"
    shutil.copytree(synthetic_model[1].path, served)
    with TestClient(create_app(make_settings(served))) as client:
        before = client.get("/openapi.json").json()
        shutil.rmtree(served)
        shutil.copytree(other_model.path, served)
        assert client.post("/admin/reload", auth=AUTH).json()["outcome"] == "swapped"
        after = client.get("/openapi.json").json()
    names = lambda spec: set(  # noqa: E731
        spec["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"][
            "items"
        ]["properties"]
    )
    assert names(before) == set(synthetic_model[1].schema.feature_names)
    assert names(after) == set(other_model.schema.feature_names)


# -- warnings: scored, named per record, counted --------------------------------------------


def _customer() -> dict:
    return dict(payload("chapter_request.json")[0])


def _warnings_metric(client, field: str, kind: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("churnops_input_warnings_total{") and (
            f'field="{field}"' in line and f'kind="{kind}"' in line
        ):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("tenure", -5, ["field 'tenure': -5 is below the range seen in training (0 to "]),
        ("MonthlyCharges", 1e9, ["field 'MonthlyCharges': 1000000000 is above the range"]),
        ("MonthlyCharges", "1e9", ["field 'MonthlyCharges': 1000000000 is above the range"]),
        ("PaymentMethod", "Crypto", ["category 'Crypto' was not seen in training (known: "]),
    ],
)
def test_values_unlike_training_are_scored_with_a_warning_and_counted(
    client, synthetic_model, field, value, expected
):
    kind = "unseen_category" if field == "PaymentMethod" else "out_of_range"
    counted = _warnings_metric(client, field, kind)
    record = _customer()
    record[field] = value
    response = client.post("/predict", json=[_customer(), record], auth=AUTH)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["0"]["warnings"] == []
    (warning,) = answer["1"]["warnings"]
    assert warning.startswith(expected[0]) or expected[0] in warning
    if kind == "out_of_range":
        feature = synthetic_model[1].schema.feature(field)
        assert f"({feature.minimum:.15g} to {feature.maximum:.15g}); scored as given" in warning
    else:
        assert "'Electronic check'" in warning
    assert 0 <= answer["1"]["churn_probability"] <= 1
    assert _warnings_metric(client, field, kind) == counted + 1


def test_probability_is_the_predicted_class_churn_probability_the_positive_one(client):
    answer = client.post("/predict", json=payload("chapter_request.json"), auth=AUTH).json()
    for result in answer.values():
        churn = result["churn_probability"]
        assert churn == result["probabilities"]["Yes"]
        assert result["probability"] == pytest.approx(
            churn if result["prediction"] == "Yes" else 1 - churn
        )
