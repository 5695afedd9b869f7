"""Refit a recorded training configuration and compare it with the recorded model.

A trial-bounded search (``max_iter`` without a time budget) is deterministic: the same data,
settings and library versions give the same model, so the refit's held-out probabilities equal
the recorded model's. A time-budgeted search depends on the machine's speed and need not.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from churnops.artifact import MANIFEST, Manifest, ModelArtifact, load_artifact
from churnops.errors import ArtifactError, ConfigError, DataError, IntegrityError
from churnops.registry.models import is_registry_ref, resolve_model, run_of
from churnops.registry.pyfunc import artifact_directory
from churnops.registry.tracking import (
    ARTIFACT_PATH,
    DEFAULT_HOME,
    MODEL_VERSION_TAG,
    client,
    mlflow_errors,
)

MATCH_TOLERANCE = 1e-12
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass
class Reproduction:
    """What a refit found.

    Attributes
    ----------
    max_abs_difference
        Largest difference between the refit's and the recorded model's probability of the
        positive label over the held-out rows.
    labels_equal
        Whether both predict the same label for every held-out row (each with its threshold).
    rows_compared
        Held-out rows compared.
    warnings
        Why the refit may legitimately differ (time budget, data or library versions changed).
    refit
        The refit's :class:`churnops.pipeline.train.TrainResult`.
    """

    max_abs_difference: float
    labels_equal: bool
    rows_compared: int
    warnings: list[str] = field(default_factory=list)
    refit: Any = None

    @property
    def matches(self) -> bool:
        """Predictions equal within ``MATCH_TOLERANCE`` and the same labels."""
        return self.labels_equal and self.max_abs_difference <= MATCH_TOLERANCE


def find_run(ref: str, uri: str) -> str:
    """The MLflow run id ``ref`` names: a run id, ``models:/NAME/VERSION`` or ``@ALIAS``, or a
    churnops model version (the ``churnops.model_version`` tag, e.g. ``20250101120000-ab12cd34``).
    """
    if is_registry_ref(ref):
        return run_of(ref, uri)
    if _RUN_ID.match(ref):
        return ref
    store = client(uri)
    with mlflow_errors(f"looking up model version {ref} in {uri}"):
        experiments = [e.experiment_id for e in store.search_experiments()]
        runs = (
            store.search_runs(
                experiments,
                filter_string=f"tags.`{MODEL_VERSION_TAG}` = '{ref.replace(chr(39), '')}'",
                max_results=2,
            )
            if experiments
            else []
        )
    if not runs:
        raise ConfigError(f"{ref!r}: no MLflow run id and no run of churnops model version {ref}")
    return str(runs[0].info.run_id)


def recorded_model(
    ref: str, tracking_uri: str, home: str | Path = DEFAULT_HOME
) -> tuple[str, ModelArtifact]:
    """The run id and the verified artifact of a recorded training run (see :func:`find_run`).

    A run's artifact is downloaded once to ``home/cache/runs/RUN_ID``.
    """
    run_id = find_run(ref, tracking_uri)
    if is_registry_ref(ref):
        return run_id, load_artifact(resolve_model(ref, tracking_uri, home))
    from mlflow.exceptions import MlflowException

    try:
        run = client(tracking_uri).get_run(run_id)
    except MlflowException:
        raise ConfigError(f"run {run_id} not found in {tracking_uri}") from None
    expected = run.data.tags.get(MODEL_VERSION_TAG)
    if expected is None:
        raise ArtifactError(f"run {run_id} is not a churnops training run (no model recorded)")
    target = Path(home) / "cache" / "runs" / run_id
    if not (target / MANIFEST).is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{run_id}.", dir=target.parent))
        try:
            with mlflow_errors(f"downloading the model of run {run_id}"):
                import mlflow.artifacts

                local = mlflow.artifacts.download_artifacts(
                    run_id=run_id,
                    artifact_path=ARTIFACT_PATH,
                    dst_path=str(staging),
                    tracking_uri=tracking_uri,
                )
            shutil.rmtree(target, ignore_errors=True)
            artifact_directory(Path(local)).rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    artifact = load_artifact(target)
    if artifact.version != expected:
        raise IntegrityError(
            f"{target}: holds model {artifact.version}, but run {run_id} recorded {expected}; "
            f"remove {target} to download it again"
        )
    return run_id, artifact


def recorded_settings(manifest: Manifest) -> Any:
    """The :class:`~churnops.pipeline.build.AutoMLSettings` a manifest records."""
    from churnops.pipeline.build import AutoMLSettings

    stored = dict(manifest.settings.automl)
    known = {f.name for f in dataclasses.fields(AutoMLSettings)}
    unknown = sorted(set(stored) - known)
    if unknown:
        raise ConfigError(
            f"the recorded settings have fields this churnops does not know: {', '.join(unknown)}"
        )
    stored["estimators"] = tuple(stored["estimators"])
    stored["n_estimators"] = tuple(stored["n_estimators"])
    return AutoMLSettings(**stored)


def reproduce(recorded: ModelArtifact, data: Path, allow_data_change: bool = False) -> Reproduction:
    """Refit ``recorded``'s configuration on ``data`` and compare held-out predictions.

    The recorded data spec (target, positive label, ID and ignored columns), AutoML settings
    (seed, trials or time budget, estimators), threshold policy and test share are reused; the
    held-out rows are those the recorded split chose on the same data.

    Raises
    ------
    DataError
        ``data`` is not the recorded data (sha256 differs) and ``allow_data_change`` is false.
    """
    from churnops.data.dataset import DataSpec, load_dataset
    from churnops.pipeline.evaluate import ThresholdPolicy
    from churnops.pipeline.train import positive_probability, train_model
    from churnops.provenance import library_versions

    manifest = recorded.manifest
    schema = recorded.schema
    spec = DataSpec(
        target=schema.target,
        positive_label=schema.positive_label,
        id_columns=tuple(schema.id_columns),
        drop_columns=tuple(schema.ignored_columns),
    )
    dataset = load_dataset(data, spec)
    warnings: list[str] = []
    recorded_sha = manifest.data.sha256
    if dataset.sha256 != recorded_sha:
        message = (
            f"{data}: sha256 {dataset.sha256[:12]}… differs from the recorded data "
            f"{recorded_sha[:12]}… ({manifest.data.source})"
        )
        if not allow_data_change:
            raise DataError(message + "; pass --allow-data-change to refit anyway")
        warnings.append(message)
    settings = recorded_settings(manifest)
    if settings.time_budget is not None:
        warnings.append(
            f"the recorded run searched with a {settings.time_budget:g} s time budget: what it "
            "found depends on the machine's speed, so a refit need not match (train with "
            "--max-iter N and no --time-budget for reproducible runs)"
        )
    recorded_versions = manifest.versions
    for name, now in sorted(library_versions().items()):
        then = recorded_versions.get(name)
        if then is not None and then != now:
            warnings.append(f"{name} {now} is installed; the recorded run used {then}")
    policy = ThresholdPolicy(**manifest.settings.threshold_policy)
    result = train_model(dataset, settings, policy, test_size=manifest.settings.test_size)
    positive = schema.positive_label
    p_new = positive_probability(result.pipeline, result.test.X, positive)
    p_old = positive_probability(recorded.load_pipeline(), result.test.X, positive)
    return Reproduction(
        max_abs_difference=float(np.max(np.abs(p_new - p_old))) if len(p_new) else 0.0,
        labels_equal=bool(np.array_equal(p_new >= result.threshold, p_old >= recorded.threshold)),
        rows_compared=len(p_new),
        warnings=warnings,
        refit=result,
    )
