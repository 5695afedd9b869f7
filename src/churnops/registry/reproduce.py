"""Refit a recorded training configuration and compare with the recorded model."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from churnops.artifact import ModelArtifact
from churnops.errors import DataError

MATCH_TOLERANCE = 1e-12


@dataclass
class Reproduction:
    """What a refit found."""

    max_abs_difference: float
    labels_equal: bool
    rows_compared: int
    warnings: list[str] = field(default_factory=list)
    refit: Any = None  # the TrainResult

    @property
    def matches(self) -> bool:
        """Predictions equal within ``MATCH_TOLERANCE`` and the same labels."""
        return self.labels_equal and self.max_abs_difference <= MATCH_TOLERANCE


def reproduce(recorded: ModelArtifact, data: Path, allow_data_change: bool = False) -> Reproduction:
    """Refit ``recorded``'s configuration on ``data`` and compare held-out predictions.

    Raises
    ------
    DataError
        ``data`` is not the recorded file (sha256 differs) and ``allow_data_change`` is false.
    """
    from churnops.data.dataset import DataSpec, load_dataset
    from churnops.pipeline.build import AutoMLSettings
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
    if dataset.sha256 != manifest["data"]["sha256"]:
        message = (
            f"{data}: sha256 {dataset.sha256[:12]}… differs from the recorded data "
            f"{manifest['data']['sha256'][:12]}… ({manifest['data'].get('source')})"
        )
        if not allow_data_change:
            raise DataError(message + "; pass --allow-data-change to refit anyway")
        warnings.append(message)
    stored = dict(manifest["settings"]["automl"])
    stored["estimators"] = tuple(stored["estimators"])
    stored["n_estimators"] = tuple(stored["n_estimators"])
    settings = AutoMLSettings(**stored)
    if settings.max_iter is None or settings.time_budget is not None:
        warnings.append(
            "the recorded run used a time budget: its search depends on machine speed, so a refit "
            "need not match (train with --max-iter N alone for reproducible runs)"
        )
    changed = {
        name: (old, new)
        for name, new in library_versions().items()
        if (old := manifest.get("versions", {}).get(name)) is not None and old != new
    }
    for name, (old, new) in sorted(changed.items()):
        warnings.append(f"{name} {new} differs from the recorded {old}")
    policy = ThresholdPolicy(**manifest["settings"]["threshold_policy"])
    result = train_model(dataset, settings, policy, test_size=manifest["settings"]["test_size"])
    positive = schema.positive_label
    p_new = positive_probability(result.pipeline, result.test.X, positive)
    p_old = positive_probability(recorded.load_pipeline(), result.test.X, positive)
    new_labels = p_new >= result.threshold
    old_labels = p_old >= recorded.threshold
    return Reproduction(
        max_abs_difference=float(np.max(np.abs(p_new - p_old))) if len(p_new) else 0.0,
        labels_equal=bool(np.array_equal(new_labels, old_labels)),
        rows_compared=len(p_new),
        warnings=warnings,
        refit=result,
    )
