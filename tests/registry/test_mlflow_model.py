"""Every registered version is an MLflow model: pyfunc, ``mlflow models serve``, any alias,
``models list --json``, and the registry version the service reports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from churnops.api.app import create_app
from churnops.artifact import load_artifact
from churnops.errors import ArtifactError, ConfigError
from churnops.registry.models import (
    check_alias,
    list_versions,
    parse_ref,
    promote,
    register,
    resolve,
)
from churnops.registry.pyfunc import (
    PREDICTION_COLUMN,
    PROBABILITY_COLUMN,
    artifact_directory,
    example_frame,
)
from churnops.registry.tracking import client, run_tags
from churnops.workflows.serving import model_location

from ..api.servers import free_port
from ..api.support import AUTH, make_settings, payload
from .conftest import Store, run

pytestmark = pytest.mark.slow
SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture
def tracked(store: Store, monkeypatch: pytest.MonkeyPatch) -> Store:
    """``store`` as the tracking and registry URI of MLflow and of churnops commands."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", store.uri)
    return store


def test_pyfunc_gives_the_probabilities_of_churnops_predict(tracked, customers_csv, tmp_path):
    assert run("models", "promote", "churn", "1", "--alias", "staging-eu").exit_code == 0
    model = mlflow.pyfunc.load_model("models:/churn@staging-eu")
    frame = pd.read_csv(customers_csv)  # pandas' own types: int64, float64 (NaN blanks), str
    got = model.predict(frame)
    assert list(got.columns) == [PROBABILITY_COLUMN, PREDICTION_COLUMN]

    scored = tmp_path / "scored.csv"
    result = run(
        "predict", "--model", "models:/churn@staging-eu", "--data", str(customers_csv),
        "--out", str(scored),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    expected = pd.read_csv(scored)
    delta = np.abs(got[PROBABILITY_COLUMN].to_numpy() - expected["churn_probability"].to_numpy())
    assert len(got) == len(expected) == 900
    assert delta.max() <= 1e-9
    assert got[PREDICTION_COLUMN].tolist() == expected["prediction"].tolist()

    # The signature is the artifact's feature schema; the input example scores.
    artifact = tracked.artifacts[0]
    info = mlflow.models.get_model_info("models:/churn@staging-eu")
    inputs = {c.name: (c.type.name, c.required) for c in info.signature.inputs.inputs}
    assert list(inputs) == list(artifact.schema.feature_names)
    assert inputs["gender"] == ("string", True)
    assert inputs["tenure"] == ("long", True)
    assert inputs["TotalCharges"] == ("double", False)  # blank in training: may be missing
    assert info.signature.outputs.input_names() == [PROBABILITY_COLUMN, PREDICTION_COLUMN]
    assert info.flavors["churnops"]["model_version"] == artifact.version
    example = model.input_example
    assert example is not None
    assert len(example) == 3
    assert model.predict(example)[PROBABILITY_COLUMN].between(0, 1).all()


def test_mlflow_models_serve_answers_invocations(tracked, tmp_path):
    promote("churn", "2", tracked.uri)
    port = free_port()
    bin_dir = str(Path(sys.executable).parent)  # mlflow starts `uvicorn` from the PATH
    env = {
        **os.environ,
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    log = tmp_path / "serve.log"
    records = example_frame(tracked.artifacts[1].schema)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "models", "serve", "--env-manager", "local",
             "-m", "models:/churn@champion", "-h", "127.0.0.1", "-p", str(port)],
            cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "mlflow models serve did not start\n" + (
                log.read_text()
            )
            try:
                if httpx.get(f"{base}/ping", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.3)
        body = {"dataframe_records": json.loads(records.to_json(orient="records"))}
        response = httpx.post(f"{base}/invocations", json=body, timeout=30)
        assert response.status_code == 200, response.text
        answered = response.json()["predictions"]
        body["dataframe_records"][1]["gender"] = None
        refused = httpx.post(f"{base}/invocations", json=body, timeout=30)
        assert refused.status_code == 400
        assert "record 1, field 'gender': a value is required" in refused.text
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    local = mlflow.pyfunc.load_model("models:/churn/2").predict(records)
    assert [row[PREDICTION_COLUMN] for row in answered] == local[PREDICTION_COLUMN].tolist()
    served = np.array([row[PROBABILITY_COLUMN] for row in answered])
    assert np.abs(served - local[PROBABILITY_COLUMN].to_numpy()).max() <= 1e-9


def test_any_valid_alias_can_be_set_used_and_removed(tracked):
    promoted = run("models", "promote", "churn", "2", "--alias", "canary_eu-2")
    assert promoted.exit_code == 0, promoted.output
    assert resolve("models:/churn@canary_eu-2", tracked.uri, tracked.home).version == "2"
    aliases = {v.version: v.aliases for v in list_versions(tracked.uri, "churn")}
    assert "canary_eu-2" in aliases["2"]
    for bad, problem in (
        ("two words", "letters, digits"),
        ("latest", "reserved"),
        ("V3", "reserved"),
        ("x" * 256, "at most 255"),
    ):
        result = run("models", "promote", "churn", "2", "--alias", bad)
        assert result.exit_code == 1
        assert problem in result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
    assert check_alias("v1beta") == "v1beta"
    with pytest.raises(ConfigError, match="letters, digits"):
        parse_ref("models:/churn@oh!no")
    removed = run("models", "unalias", "churn", "canary_eu-2")
    assert removed.exit_code == 0, removed.output
    assert "pointed at version 2" in removed.output
    gone = run("models", "unalias", "churn", "canary_eu-2")
    assert gone.exit_code == 1
    assert "has no alias 'canary_eu-2'" in gone.output


def test_models_list_json(tracked):
    promote("churn", "1", tracked.uri, "challenger")
    result = run("models", "list", "churn", "--json")
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    assert [v["version"] for v in listed] == ["2", "1"]
    first = listed[1]
    assert set(first) == {
        "name", "version", "aliases", "run_id", "created", "metrics", "data_sha256",
        "model_version", "source",
    }  # fmt: skip
    assert first["name"] == "churn"
    assert "challenger" in first["aliases"]
    assert first["run_id"] == tracked.runs[0]
    assert first["model_version"] == tracked.artifacts[0].version
    assert first["data_sha256"] == tracked.artifacts[0].manifest.data.sha256
    assert 0.5 < first["metrics"]["test.roc_auc"] <= 1
    assert first["created"].endswith("Z")
    assert first["created"][:2] == "20"
    assert first["source"].endswith("/model")
    assert json.loads(run("models", "list", "nothing", "--json").output) == []


def test_metadata_and_header_carry_the_registry_version_served(tracked):
    promote("churn", "1", tracked.uri, "blue")
    settings = make_settings(Path("unused"), no_store=True)
    body = payload("chapter_request.json")
    app = create_app(settings, lambda: model_location("models:/churn@blue"))
    with TestClient(app) as http:
        answer = http.post("/predict", json=body, auth=AUTH)
        assert answer.status_code == 200
        assert answer.headers["X-Model-Version"] == "1"
        meta = http.get("/metadata", auth=AUTH)
        assert meta.headers["X-Model-Version"] == "1"
        data = meta.json()
        assert data["registry"] == {"name": "churn", "version": "1", "alias": "blue"}
        assert data["registry_version"] == "models:/churn/1"
        assert data["version"] == tracked.artifacts[0].version

    directory = tracked.artifacts[0].path
    with TestClient(create_app(make_settings(directory, no_store=True))) as http:
        meta = http.get("/metadata", auth=AUTH)
        assert meta.json()["registry"] is None
        assert meta.json()["registry_version"] is None
        assert meta.headers["X-Model-Version"] == tracked.artifacts[0].version


def test_versions_recorded_before_the_mlflow_model_form_still_resolve(tracked, tmp_path):
    """A run that logged the bare artifact directory under model/ (no MLmodel)."""
    from mlflow.entities import RunTag

    artifact = tracked.artifacts[0]
    mlflow_client = client(tracked.uri)
    experiment = mlflow_client.get_run(tracked.runs[0]).info.experiment_id
    old_run = mlflow_client.create_run(experiment)
    run_id = old_run.info.run_id
    tags = [RunTag(k, str(v)) for k, v in run_tags(artifact.manifest).items()]
    mlflow_client.log_batch(run_id, tags=tags)
    mlflow_client.log_artifacts(run_id, str(artifact.path), "model")
    mlflow_client.set_terminated(run_id)
    # Registered the way versions were before: the bare artifact directory as the source.
    mlflow_client.create_registered_model("legacy")
    source = f"{old_run.info.artifact_uri}/model"
    old = mlflow_client.create_model_version("legacy", source, run_id=run_id).version

    found = resolve(f"models:/legacy/{old}", tracked.uri, tmp_path / "home")
    assert load_artifact(found.path).version == artifact.version
    scored = tmp_path / "scored.csv"
    result = run(
        "predict", "--model", f"models:/legacy/{old}", "--data",
        str(artifact.manifest.data.source), "--out", str(scored),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    with pytest.raises(Exception, match="MLmodel"):
        mlflow.pyfunc.load_model(f"models:/legacy/{old}")
    with pytest.raises(ArtifactError, match="no churnops model"):
        artifact_directory(tmp_path)

    # Registering such a run now adds the MLflow model to it (mlflow_model/).
    new = register(run_id, "legacy", tracked.uri)
    assert mlflow_client.get_model_version("legacy", new).source.endswith("/mlflow_model")
    got = mlflow.pyfunc.load_model(f"models:/legacy/{new}").predict(pd.read_csv(scored))
    expected = pd.read_csv(scored)["churn_probability"].to_numpy()
    assert np.abs(got[PROBABILITY_COLUMN].to_numpy() - expected).max() <= 1e-9
    assert load_artifact(resolve(f"models:/legacy/{new}", tracked.uri, tmp_path).path).version == (
        artifact.version
    )
    assert register(run_id, "legacy", tracked.uri) == str(int(new) + 1)  # reuses mlflow_model/
