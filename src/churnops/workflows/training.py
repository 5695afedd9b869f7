"""Train a model, export it as a verified artifact and record it in MLflow."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from churnops.errors import ArtifactExistsError, ConfigError

if TYPE_CHECKING:
    from churnops.artifact import ModelArtifact
    from churnops.data.dataset import Dataset, DataSpec
    from churnops.pipeline.build import AutoMLSettings
    from churnops.pipeline.evaluate import ThresholdPolicy
    from churnops.pipeline.progress import SearchProgress
    from churnops.pipeline.train import TrainResult


@dataclass(frozen=True)
class TrainRequest:
    """Everything ``churnops train`` is asked to do.

    ``data`` is a CSV or Parquet table read with ``spec``; without it ``synthetic_rows``
    synthetic customers are generated. ``tracking_uri`` None means the run is not recorded.
    An existing model at ``out`` is replaced only with ``force``.
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
    force: bool = False


@dataclass(frozen=True)
class TrainOutcome:
    """What training produced: the verified artifact and where it was recorded."""

    artifact: ModelArtifact
    result: TrainResult
    run_id: str | None = None
    registered_version: str | None = None


def check_request(request: TrainRequest) -> None:
    """Check what can be checked in seconds: the output directory is free (or ``force``),
    registration needs tracking, the tracking store answers."""
    from churnops.artifact.writer import occupied

    if not request.force and occupied(request.out):
        raise ConfigError(
            f"{request.out} already exists; pass --force to replace it, or choose another "
            "--name or --out"
        )
    if request.register and request.tracking_uri is None:
        raise ConfigError("--register needs tracking; drop --no-tracking")
    if request.tracking_uri is not None:
        from churnops.registry.tracking import check_tracking

        check_tracking(request.tracking_uri)


def load_training_data(request: TrainRequest) -> Dataset:
    """Check the request and read its data, before any search time is spent.

    The output directory and the tracking store are checked first, so a model in the way or a
    bad URI costs seconds, not a time budget.
    """
    check_request(request)
    from churnops.data.dataset import DataSpec, load_dataset, synthetic_dataset

    _return_freed_memory()
    if request.data is None:
        return synthetic_dataset(request.synthetic_rows, request.settings.seed, request.spec)
    return load_dataset(request.data, request.spec or DataSpec())


def _return_freed_memory() -> None:
    """Have the C library's allocator give freed memory back to the system (glibc only).

    glibc keeps freed blocks for reuse, raises its thresholds as large arrays come and go and
    gives each core's threads arenas of their own: training's copies of the feature matrix
    then leave memory the process holds but never uses again (on 500k rows, about 170 MB of
    the peak; ``bench/train_memory.py``). Fixed thresholds (blocks from 128 KiB on are mapped
    and unmapped, not kept) and two arenas make the peak follow the arrays alive. Elsewhere
    (musl, macOS) there is no ``mallopt`` and nothing is changed.
    """
    import ctypes

    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is None:
        return
    trim_threshold, mmap_threshold, arena_max = -1, -3, -8  # glibc's M_* parameter numbers
    mallopt(arena_max, 2)
    mallopt(mmap_threshold, 128 * 1024)
    mallopt(trim_threshold, 128 * 1024)


def fit(
    request: TrainRequest,
    dataset: Dataset,
    progress: Callable[[SearchProgress], None] | None = None,
    search_log: logging.Handler | None = None,
) -> TrainResult:
    """Search, fit and evaluate on ``dataset`` (see :func:`churnops.pipeline.train.train_model`)."""
    from churnops.pipeline.train import train_model

    return train_model(
        dataset,
        request.settings,
        request.policy,
        test_size=request.test_size,
        progress=progress,
        search_log=search_log,
    )


def export_and_record(request: TrainRequest, result: TrainResult) -> TrainOutcome:
    """Export ``result`` as a verified artifact, then record (and register) it if asked.

    Raises
    ------
    TrackingError
        MLflow refused the run; the message says the artifact itself is saved.
    """
    from churnops.pipeline.train import export_model

    try:
        artifact = export_model(result, request.out, name=request.name, overwrite=request.force)
    except ArtifactExistsError as exc:
        raise ArtifactExistsError(f"{exc}; pass --force to replace it") from None
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
