"""Tracking, registry, serving by alias and reproducibility against a real MLflow SQLite store."""

from __future__ import annotations

import shutil
import time

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from churnops.artifact import load_artifact
from churnops.cli import app
from churnops.data.sample import generate_customers
from churnops.errors import ArtifactError, ConfigError
from churnops.registry.models import list_versions, resolve_model
from churnops.registry.tracking import check_tracking, client

pytestmark = pytest.mark.slow
runner = CliRunner()


def run(*args: str):
    result = runner.invoke(app, list(args))
    return result


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "customers.csv"
    generate_customers(900, seed=4).to_csv(path, index=False)
    return path


def _train(data, out, *extra):
    result = run(
        "train", "--data", str(data), "--max-iter", "3", "--seed", "5", "--out", str(out), *extra
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_training_is_tracked_registered_promoted_and_rolled_back(data, tmp_path, project_home):
    out = _train(data, tmp_path / "m1", "--register", "churn")
    uri = f"sqlite:///{(project_home / 'mlflow.db').resolve()}"
    mlflow = client(uri)
    run_id = out.split("MLflow run: ")[1].split()[0]
    recorded = mlflow.get_run(run_id)
    assert recorded.data.params["automl.max_iter"] == "3"
    assert recorded.data.params["data.target"] == "Churn"
    assert "best_estimator" in recorded.data.params
    assert 0.5 < recorded.data.metrics["test.roc_auc"] <= 1
    artifact = load_artifact(tmp_path / "m1")
    assert recorded.data.tags["churnops.data_sha256"] == artifact.manifest.data.sha256
    assert recorded.data.tags["churnops.model_version"] == artifact.version
    assert recorded.data.tags["churnops.version.lightgbm"]
    logged = {f.path for f in mlflow.list_artifacts(run_id, "model")}
    assert "model/MLmodel" in logged
    assert mlflow.get_metric_history(run_id, "search.validation_loss")

    _train(data, tmp_path / "m2", "--register", "churn")
    assert run("models", "promote", "churn", "1").exit_code == 0
    assert run("models", "promote", "churn", "2").exit_code == 0
    assert run("models", "promote", "churn", "1", "--alias", "challenger").exit_code == 0
    versions = {v.version: v.aliases for v in list_versions(uri, "churn")}
    assert versions == {"2": ("champion",), "1": ("challenger",)}
    listing = run("models", "list", "churn")
    assert "champion" in listing.output
    back = run("models", "rollback", "churn")
    assert back.exit_code == 0, back.output
    assert "version 2 → version 1" in back.output
    again = run("models", "rollback", "churn")
    assert again.exit_code == 1
    assert "no earlier champion" in again.output

    # Serving by alias resolves through the registry to a verified artifact.
    scored = tmp_path / "scored.csv"
    result = run(
        "predict", "--model", "models:/churn@champion", "--data", str(data), "--out", str(scored)
    )
    assert result.exit_code == 0, result.output
    assert pd.read_csv(scored)["churn_probability"].between(0, 1).all()
    path = resolve_model("models:/churn@champion", uri, project_home)
    assert load_artifact(path).version == load_artifact(tmp_path / "m1").version

    missing = run(
        "predict", "--model", "models:/churn@nobody", "--data", str(data), "--out", str(scored)
    )
    assert missing.exit_code == 1
    assert "has no alias 'nobody'" in missing.output

    # A tampered download is refused, naming the file.
    (path / "report.md").write_text("edited")
    tampered = run(
        "predict", "--model", "models:/churn@champion", "--data", str(data), "--out", str(scored)
    )
    assert tampered.exit_code == 1
    assert "report.md" in tampered.output
    shutil.rmtree(path)


def test_same_trials_and_seed_give_identical_models_and_reproduce_matches(data, tmp_path):
    out = _train(data, tmp_path / "a")
    _train(data, tmp_path / "b", "--no-tracking")
    frame = generate_customers(2000, seed=77)
    p = [load_artifact(tmp_path / m).load_pipeline().predict_proba(frame)[:, 1] for m in "ab"]
    np.testing.assert_allclose(p[0], p[1], rtol=0, atol=1e-12)

    run_id = out.split("MLflow run: ")[1].split()[0]
    result = run("reproduce", run_id, "--data", str(data))
    assert result.exit_code == 0, result.output
    assert "MATCH" in result.output

    changed = tmp_path / "changed.csv"
    pd.read_csv(data, dtype=str, keep_default_na=False).head(800).to_csv(changed, index=False)
    refused = run("reproduce", run_id, "--data", str(changed))
    assert refused.exit_code == 1
    assert "differs from the recorded data" in refused.output


def test_bad_tracking_uri_fails_fast_and_no_tracking_trains(data, tmp_path):
    started = time.monotonic()
    result = run(
        "train", "--data", str(data), "--max-iter", "1", "--tracking-uri", "http://127.0.0.1:9"
    )
    assert result.exit_code == 1
    assert "unreachable" in result.output
    assert time.monotonic() - started < 15
    with pytest.raises(ConfigError, match="not usable"):
        check_tracking("ftp://example")
    ok = run(
        "train",
        "--data",
        str(data),
        "--max-iter",
        "1",
        "--no-tracking",
        "--out",
        str(tmp_path / "m"),
    )
    assert ok.exit_code == 0, ok.output
    assert "not recorded in MLflow" in ok.output


def test_unknown_model_is_a_clear_error(project_home):
    uri = f"sqlite:///{(project_home / 'mlflow.db').resolve()}"
    check_tracking(uri)
    with pytest.raises(ArtifactError, match="no registered model named 'ghost'"):
        resolve_model("models:/ghost@champion", uri, project_home / "cache")
