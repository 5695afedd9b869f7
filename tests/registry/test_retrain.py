"""Retraining: the challenger is promoted only when it beats the champion on fresh rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from churnops.data.dataset import synthetic_dataset
from churnops.data.sample import generate_customers
from churnops.pipeline.build import AutoMLSettings
from churnops.pipeline.train import export_model, train_model
from churnops.registry.models import promote, register, resolve_model
from churnops.registry.tracking import check_tracking, client, log_training

from .conftest import run, sqlite_uri

pytestmark = pytest.mark.slow


def champion(home: Path, rows: int, settings: AutoMLSettings) -> str:
    """Train, record, register and promote a champion; return the tracking URI."""
    uri = sqlite_uri(home)
    check_tracking(uri)
    artifact = export_model(train_model(synthetic_dataset(rows, seed=11), settings), home / "c")
    version = register(log_training(artifact, uri, home), "churn", uri)
    promote("churn", version, uri)
    return uri


def fresh_data(tmp_path: Path, rows: int, flipped: float = 0.0) -> Path:
    """Fresh customers; ``flipped`` of their labels are swapped (a worse table to learn from)."""
    frame = generate_customers(rows, seed=12)
    if flipped:
        rng = np.random.default_rng(5)
        flip = rng.random(rows) < flipped
        frame.loc[flip, "Churn"] = frame.loc[flip, "Churn"].map({"Yes": "No", "No": "Yes"})
    path = tmp_path / "fresh.csv"
    frame.to_csv(path, index=False)
    return path


def test_a_better_challenger_is_promoted(tmp_path, project_home):
    weak = AutoMLSettings(
        time_budget=None, max_iter=2, estimators=("rf",), n_estimators=(4, 4), n_jobs=1
    )
    uri = champion(project_home, 300, weak)
    data = fresh_data(tmp_path, 3000)
    result = run(
        *("retrain", "--data", str(data), "--model", "models:/churn@champion"),
        *("--max-iter", "4", "--estimators", "lgbm", "--tracking-uri", uri),
    )
    assert result.exit_code == 0, result.output
    assert "PROMOTED" in result.output
    assert "compared on 600 fresh rows" in result.output
    assert resolve_model("models:/churn@champion", uri, project_home).name == "2"
    recorded = client(uri).get_run(client(uri).get_model_version("churn", "2").run_id)
    assert recorded.data.tags["churnops.retrain.decision"] == "promoted"
    assert recorded.data.tags["churnops.retrain.champion_version"] == "1"
    metrics = recorded.data.metrics
    assert metrics["retrain.challenger.roc_auc"] > metrics["retrain.champion.roc_auc"]
    assert metrics["retrain.fresh_rows"] == 600


def test_a_worse_challenger_is_registered_but_not_promoted(tmp_path, project_home):
    strong = AutoMLSettings(time_budget=None, max_iter=6, estimators=("lgbm",), n_jobs=1)
    uri = champion(project_home, 3000, strong)
    data = fresh_data(tmp_path, 1000, flipped=0.3)
    result = run(
        *("retrain", "--data", str(data), "--model", "models:/churn@champion"),
        *("--max-iter", "2", "--estimators", "rf", "--tracking-uri", uri),
    )
    assert result.exit_code == 0, result.output
    assert "KEPT the champion" in result.output
    assert resolve_model("models:/churn@champion", uri, project_home).name == "1"
    version = client(uri).get_model_version("churn", "2")  # registered all the same
    recorded = client(uri).get_run(version.run_id)
    assert recorded.data.tags["churnops.retrain.decision"] == "kept champion"
    metrics = recorded.data.metrics
    assert metrics["retrain.challenger.roc_auc"] < metrics["retrain.champion.roc_auc"]

    # The same challenger with --force is promoted, and says so.
    forced = run(
        *("retrain", "--data", str(data), "--model", "models:/churn@champion"),
        *("--max-iter", "2", "--estimators", "rf", "--tracking-uri", uri, "--force"),
    )
    assert forced.exit_code == 0, forced.output
    assert "PROMOTED: forced" in forced.output
    assert resolve_model("models:/churn@champion", uri, project_home).name == "3"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "some/dir"], "must name a registry alias"),
        (["--model", "models:/churn@champion", "--metric", "f2"], "--metric must be one of"),
        (["--model", "models:/churn@champion", "--margin", "-1"], "--margin must not be negative"),
    ],
)
def test_mistakes_are_one_line_before_training(tmp_path, args, message):
    data = fresh_data(tmp_path, 200)
    result = run("retrain", "--data", str(data), *args)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
