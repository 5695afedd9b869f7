"""Registry fixtures: a real MLflow SQLite store in a temporary directory, tiny trained runs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from churnops.artifact import ModelArtifact
from churnops.cli import app
from churnops.data.sample import generate_customers

runner = CliRunner()


def run(*args: str) -> Result:
    """Invoke the ``churnops`` CLI in-process."""
    return runner.invoke(app, list(args))


def sqlite_uri(home: Path) -> str:
    return f"sqlite:///{(home / 'mlflow.db').resolve()}"


@pytest.fixture(autouse=True, scope="session")
def _no_telemetry() -> Iterator[None]:
    """MLflow reports usage over the network unless told not to; tests use no network."""
    saved = os.environ.get("MLFLOW_DISABLE_TELEMETRY")
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    yield
    if saved is None:
        os.environ.pop("MLFLOW_DISABLE_TELEMETRY", None)
    else:
        os.environ["MLFLOW_DISABLE_TELEMETRY"] = saved


@pytest.fixture(scope="session")
def customers_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """900 synthetic customers as a CSV file (the data a run records the sha256 of)."""
    path = tmp_path_factory.mktemp("data") / "customers.csv"
    generate_customers(900, seed=4).to_csv(path, index=False)
    return path


@dataclass(frozen=True)
class Store:
    """A tracking store with two runs registered as versions 1 and 2 of ``churn``."""

    uri: str
    home: Path
    runs: tuple[str, str]
    artifacts: tuple[ModelArtifact, ModelArtifact]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, customers_csv: Path) -> Store:
    from churnops.data.dataset import DataSpec, load_dataset
    from churnops.pipeline.build import AutoMLSettings
    from churnops.pipeline.train import export_model, train_model
    from churnops.registry.models import register
    from churnops.registry.tracking import check_tracking, log_training

    home = tmp_path_factory.mktemp("store") / ".churnops"
    uri = sqlite_uri(home)
    check_tracking(uri)
    dataset = load_dataset(customers_csv, DataSpec())
    runs, artifacts = [], []
    for seed in (1, 2):
        settings = AutoMLSettings(time_budget=None, max_iter=3, seed=seed, n_jobs=1)
        artifact = export_model(train_model(dataset, settings), home / "models" / f"m{seed}")
        run_id = log_training(artifact, uri, home)
        assert register(run_id, "churn", uri) == str(seed)
        runs.append(run_id)
        artifacts.append(artifact)
    return Store(uri, home, (runs[0], runs[1]), (artifacts[0], artifacts[1]))
