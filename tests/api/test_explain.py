"""POST /predict?explain=true: each record's top feature contributions, a contract for clients."""

from __future__ import annotations

import math

import orjson
import pytest
from fastapi.testclient import TestClient

from churnops.api.app import create_app
from churnops.data.dataset import synthetic_dataset
from churnops.data.sample import generate_customers
from churnops.pipeline.build import AutoMLSettings
from churnops.pipeline.train import export_model, train_model

from .support import AUTH, make_settings, payload


@pytest.fixture(scope="module", params=["lgbm", "rf", "lgbm_linear"])
def explaining(request, tmp_path_factory):
    """An app serving a model that explains (LightGBM, a random forest, linear leaves)."""
    settings = AutoMLSettings(time_budget=None, max_iter=2, estimators=(request.param,), n_jobs=1)
    result = train_model(synthetic_dataset(1200, seed=11), settings)
    artifact = export_model(result, tmp_path_factory.mktemp("m") / request.param)
    with TestClient(create_app(make_settings(artifact.path))) as client:
        yield client, artifact


def _records(n, seed=3):
    return generate_customers(n, seed=seed).drop(columns=["Churn"]).to_dict("records")


def _post(client, body, query=""):
    return client.post(f"/predict{query}", content=orjson.dumps(body), auth=AUTH)


def _fields(artifact):
    from churnops.inference import load_scorer

    return load_scorer(artifact).layout.fields


def test_default_response_is_unchanged(explaining):
    client, _ = explaining
    body = _records(20)
    plain = _post(client, body)
    assert plain.status_code == 200
    assert _post(client, body, "?explain=false").content == plain.content
    for result in plain.json().values():
        assert set(result) == {
            "prediction",
            "probability",
            "churn_probability",
            "probabilities",
            "warnings",
        }


def test_explanation_shape_order_and_values_as_received(explaining):
    client, artifact = explaining
    record = dict(payload("chapter_request.json")[0], tenure="12", MonthlyCharges=70.35)
    plain = _post(client, [record]).json()["0"]
    response = _post(client, [record], "?explain=true")
    assert response.status_code == 200
    result = response.json()["0"]
    explanation = result.pop("explanation")
    assert result == plain  # the rest of the answer is the plain answer
    assert set(explanation) == {"base_value", "contributions"}
    assert isinstance(explanation["base_value"], float)
    contributions = explanation["contributions"]
    assert len(contributions) == 5
    sizes = [abs(c["contribution"]) for c in contributions]
    assert sizes == sorted(sizes, reverse=True)
    fields = _fields(artifact)
    for item in contributions:
        assert set(item) == {"feature", "value", "contribution"}
        assert item["feature"] in fields
        assert item["value"] == record[item["feature"]]  # as sent: "12" stays a string
    assert len({c["feature"] for c in contributions}) == 5


def test_all_contributions_add_up_to_the_log_odds(explaining):
    client, artifact = explaining
    n = len(_fields(artifact))
    answer = _post(client, _records(100), f"?explain=true&top={n}").json()
    for result in answer.values():
        p = result["probabilities"]["Yes"]
        p = min(max(p, 1e-6), 1 - 1e-6)
        explanation = result["explanation"]
        assert len(explanation["contributions"]) == n
        total = explanation["base_value"] + sum(
            c["contribution"] for c in explanation["contributions"]
        )
        assert total == pytest.approx(math.log(p / (1 - p)), abs=1e-6)


def test_top_is_checked(explaining):
    client, artifact = explaining
    n = len(_fields(artifact))
    body = _records(2)
    assert len(_post(client, body, "?explain=true&top=1").json()["0"]["explanation"][
        "contributions"
    ]) == 1  # fmt: skip
    for query, problem in [
        ("?explain=true&top=0", "between 1 and"),
        (f"?explain=true&top={n + 1}", f"between 1 and {n}"),
        ("?explain=true&top=five", "integer"),
        (f"?top={n + 1}", f"between 1 and {n}"),
        ("?explain=perhaps", "boolean"),
        ("?explian=true", "unknown query parameter"),
    ]:
        response = _post(client, body, query)
        assert response.status_code == 422, query
        detail = response.json()
        assert detail["problems"][0]["field"] in ("query.top", "query.explain", "query.explian")
        assert problem in detail["problems"][0]["problem"], (query, detail)


def test_top_alone_changes_nothing(explaining):
    client, _ = explaining
    body = _records(3)
    assert _post(client, body, "?top=3").content == _post(client, body).content


def test_the_documented_top_bound_is_the_models(explaining):
    client, artifact = explaining
    document = client.get("/openapi.json", auth=AUTH).json()
    parameters = document["paths"]["/predict"]["post"]["parameters"]
    top = next(p for p in parameters if p["name"] == "top")
    assert top["schema"]["maximum"] == len(_fields(artifact))
    result = document["paths"]["/predict"]["post"]["responses"]["200"]["content"]
    properties = result["application/json"]["schema"]["additionalProperties"]["properties"]
    assert set(properties["explanation"]["properties"]) == {"base_value", "contributions"}


def test_bad_records_are_refused_as_without_explain(explaining):
    client, _ = explaining
    response = _post(client, [{"tenure": "x"}], "?explain=true")
    assert response.status_code == 422
    assert response.json()["problems"]


def test_authentication_comes_first(explaining):
    client, _ = explaining
    response = client.post("/predict?explain=true&top=0", content=b"[]")
    assert response.status_code == 401


def test_a_model_that_cannot_explain_says_so(pipeline_only_model):
    with TestClient(create_app(make_settings(pipeline_only_model.path))) as client:
        body = _records(2)
        assert _post(client, body).status_code == 200
        response = _post(client, body, "?explain=true")
    assert response.status_code == 501
    detail = response.json()["detail"]
    assert detail.startswith("this model cannot explain its predictions")
    assert "pickled scikit-learn pipeline" in detail
