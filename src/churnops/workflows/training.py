"""Train a model, export it as a verified artifact and record it in MLflow."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from churnops.errors import ConfigError

if TYPE_CHECKING:
    from churnops.artifact import ModelArtifact
    from churnops.data.dataset import Dataset, DataSpec
    from churnops.pipeline.build import AutoMLSettings
    from churnops.pipeline.evaluate import ThresholdPolicy
    from churnops.pipeline.train import TrainResult


@dataclass(frozen=True)
class TrainRequest:
    """Everything ``churnops train`` is asked to do.

    ``data`` is a CSV or Parquet table read with ``spec``; without it ``synthetic_rows``
    synthetic customers are generated. ``tracking_uri`` None means the run is not recorded.
    """

    settings: AutoMLSettings
    policy: ThresholdPolicy
    out: Path
    name: str = "churn"
    data: Path | None = None
    spec: DataSpec | None = None
    synthetic_rows: int = 5000
    test_size: float = 0.2
    tracking_uri: str | None = None
    experiment: str = "churnops"
    register: str | None = None


@dataclass(frozen=True)
class TrainOutcome:
    """What training produced: the verified artifact and where it was recorded."""

    artifact: ModelArtifact
    result: TrainResult
    run_id: str | None = None
    registered_version: str | None = None


def check_request(request: TrainRequest) -> None:
    """Check what can be checked in seconds: registration needs tracking, the store answers."""
    if request.register and request.tracking_uri is None:
        raise ConfigError("--register needs tracking; drop --no-tracking")
    if request.tracking_uri is not None:
        from churnops.registry.tracking import check_tracking

        check_tracking(request.tracking_uri)


def load_training_data(request: TrainRequest) -> Dataset:
    """Check the request and read its data, before any search time is spent.

    The tracking store is checked first, so a bad URI costs seconds, not a time budget.
    """
    check_request(request)
    from churnops.data.dataset import DataSpec, load_dataset, synthetic_dataset

    if request.data is None:
        return synthetic_dataset(request.synthetic_rows, seed=request.settings.seed)
    return load_dataset(request.data, request.spec or DataSpec())


def fit(request: TrainRequest, dataset: Dataset) -> TrainResult:
    """Search, fit and evaluate on ``dataset`` (see :func:`churnops.pipeline.train.train_model`)."""
    from churnops.pipeline.train import train_model

    return train_model(dataset, request.settings, request.policy, test_size=request.test_size)


def export_and_record(request: TrainRequest, result: TrainResult) -> TrainOutcome:
    """Export ``result`` as a verified artifact, then record (and register) it if asked.

    Raises
    ------
    TrackingError
        MLflow refused the run; the message says the artifact itself is saved.
    """
    from churnops.pipeline.train import export_model

    artifact = export_model(result, request.out, name=request.name)
    if request.tracking_uri is None:
        return TrainOutcome(artifact, result)
    from churnops.registry.models import register
    from churnops.registry.tracking import TrackingError, log_training
    from churnops.workflows.models import project_home

    try:
        run_id = log_training(artifact, request.tracking_uri, project_home(), request.experiment)
    except TrackingError as exc:
        raise TrackingError(
            f"{exc} (the model itself is saved and verified at {artifact.path})"
        ) from exc
    version = register(run_id, request.register, request.tracking_uri) if request.register else None
    return TrainOutcome(artifact, result, run_id, version)
