"""Shared fixtures: the real Telco file when present, and tiny models fitted into tmp dirs."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TELCO = REPO.parent / "shared" / "data" / "telco-churn-train.csv"


def pytest_configure(config: pytest.Config) -> None:
    """A home for what module- and session-scoped fixtures start (apps, prediction logs): they
    are set up before the per-test home below, and would otherwise write into the working tree."""
    os.environ["CHURN_HOME"] = str(Path(tempfile.mkdtemp(prefix="churnops-tests-")) / ".churnops")


@pytest.fixture(autouse=True)
def project_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep every test's MLflow store, caches and models out of the working tree."""
    home = tmp_path_factory.mktemp("home") / ".churnops"
    monkeypatch.setenv("CHURN_HOME", str(home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return home


@pytest.fixture(scope="session")
def telco_path() -> Path:
    """The real IBM Telco training file; tests that need it skip without it."""
    if not TELCO.is_file():
        pytest.skip(f"real Telco data not found at {TELCO}")
    return TELCO


@pytest.fixture(scope="session")
def synthetic_model(tmp_path_factory: pytest.TempPathFactory):
    """A small LightGBM+RF search on synthetic customers, exported as an artifact."""
    from churnops.data.dataset import synthetic_dataset
    from churnops.pipeline.build import AutoMLSettings
    from churnops.pipeline.train import export_model, train_model

    dataset = synthetic_dataset(1500, seed=3)
    result = train_model(dataset, AutoMLSettings(time_budget=None, max_iter=4, n_jobs=1))
    artifact = export_model(result, tmp_path_factory.mktemp("models") / "synthetic")
    return result, artifact
