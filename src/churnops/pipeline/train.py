"""Fit the churn Pipeline, evaluate it on held-out rows and export it as an artifact."""

from __future__ import annotations

import io
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.pipeline import Pipeline

from churnops.artifact import PIPELINE_FILE, ModelArtifact, write_artifact
from churnops.data.dataset import Dataset, split_dataset
from churnops.data.profile import reference_profile
from churnops.errors import DataError
from churnops.inference.export import serving_files
from churnops.pipeline.build import AutoMLSettings, automl_fit_params, build_pipeline
from churnops.pipeline.evaluate import ThresholdPolicy, choose_threshold, evaluate
from churnops.pipeline.report import render_report
from churnops.provenance import git_state, library_versions
from churnops.schema import Schema

PROFILE_FILE = "reference_profile.json"
HISTORY_FILE = "search_history.jsonl"
REPORT_FILE = "report.md"


@dataclass(frozen=True)
class TrainResult:
    """A fitted Pipeline with everything measured while fitting it."""

    pipeline: Pipeline
    schema: Schema
    dataset: Dataset
    train: Dataset
    test: Dataset
    validation: Dataset | None
    settings: AutoMLSettings
    policy: ThresholdPolicy
    test_size: float
    threshold: float
    metrics: dict[str, Any]
    automl: dict[str, Any]
    history: list[dict[str, Any]]
    fit_seconds: float
    test_scores: np.ndarray


def positive_probability(pipeline: Pipeline, X: Any, positive_label: str) -> np.ndarray:
    """Return the probability of ``positive_label`` for each row of ``X``."""
    classes = [str(c) for c in pipeline.classes_]
    return np.asarray(pipeline.predict_proba(X)[:, classes.index(positive_label)], dtype=np.float64)


def train_model(
    dataset: Dataset,
    settings: AutoMLSettings,
    policy: ThresholdPolicy | None = None,
    test_size: float = 0.2,
) -> TrainResult:
    """Search and fit the Pipeline on a training split; evaluate on the held-out split.

    Rows are split (stratified) into train and test; when the threshold is chosen from data,
    a validation part of train is held out for it. The model never sees the test rows, and
    every metric reported is computed on them.
    """
    policy = policy or ThresholdPolicy()
    if not 0.0 < test_size < 1.0:
        raise DataError(f"test size {test_size} must be between 0 and 1")
    train, test = split_dataset(dataset, test_size, settings.seed)
    validation: Dataset | None = None
    if policy.strategy != "fixed":
        train, validation = split_dataset(train, policy.validation_size, settings.seed)

    schema = train.schema()
    pipeline = build_pipeline(schema)
    with tempfile.TemporaryDirectory(prefix="churnops-flaml-") as tmp:
        log_file = str(Path(tmp) / "search.log")
        started = time.perf_counter()
        pipeline.fit(train.X, train.y, **automl_fit_params(settings, log_file))
        fit_seconds = time.perf_counter() - started
        history = _read_history(log_file)

    positive = schema.positive_label
    threshold = policy.value
    if validation is not None:
        threshold = choose_threshold(
            (validation.y == positive).to_numpy(),
            positive_probability(pipeline, validation.X, positive),
            policy,
        )
    test_scores = positive_probability(pipeline, test.X, positive)
    metrics = evaluate((test.y == positive).to_numpy(), test_scores, threshold)
    automl = pipeline.named_steps["automl"]
    return TrainResult(
        pipeline=pipeline,
        schema=schema,
        dataset=dataset,
        train=train,
        test=test,
        validation=validation,
        settings=settings,
        policy=policy,
        test_size=test_size,
        threshold=threshold,
        metrics=metrics,
        automl={
            "best_estimator": automl.best_estimator,
            "best_config": automl.best_config,
            "best_loss": automl.best_loss,
            "estimator_class": type(automl.model.estimator).__name__,
            "trials": len(history),
            "time_to_find_best_seconds": automl.time_to_find_best_model,
        },
        history=history,
        fit_seconds=fit_seconds,
        test_scores=test_scores,
    )


def _read_history(log_file: str) -> list[dict[str, Any]]:
    path = Path(log_file)
    if not path.exists():
        return []
    keep = ("record_id", "learner", "config", "validation_loss", "trial_time", "wall_clock_time")
    trials = []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if "learner" in record:  # the last line is a summary, not a trial
            trials.append({k: record.get(k) for k in keep})
    return trials


def export_model(result: TrainResult, out_dir: str | Path, name: str = "churn") -> ModelArtifact:
    """Write ``result`` as a verified artifact directory (see :mod:`churnops.artifact`)."""
    buffer = io.BytesIO()
    joblib.dump(result.pipeline, buffer, compress=3)
    dataset = result.dataset
    manifest: dict[str, Any] = {
        "name": name,
        "data": {
            "source": dataset.source,
            "sha256": dataset.sha256,
            "rows": dataset.rows,
            "train_rows": result.train.rows,
            "validation_rows": result.validation.rows if result.validation is not None else 0,
            "test_rows": result.test.rows,
            "synthetic": dataset.synthetic,
            "notes": list(dataset.notes),
        },
        "schema": result.schema.to_dict(),
        "settings": {
            "automl": result.settings.to_dict(),
            "threshold_policy": result.policy.to_dict(),
            "test_size": result.test_size,
        },
        "automl": {**result.automl, "fit_seconds": result.fit_seconds},
        "metrics": {"test": result.metrics},
        "threshold": {"value": result.threshold, "strategy": result.policy.strategy},
        "versions": library_versions(),
        "git": git_state(),
    }
    profile = reference_profile(
        result.train.X[list(result.schema.feature_names)], result.schema, result.test_scores
    )
    files = {
        PIPELINE_FILE: buffer.getvalue(),
        PROFILE_FILE: _json_bytes(profile),
        HISTORY_FILE: "".join(
            json.dumps(t, default=_plain) + "\n" for t in result.history
        ).encode(),
        REPORT_FILE: render_report(manifest).encode(),
        **serving_files(result.pipeline, result.schema, result.test.X),
    }
    return write_artifact(out_dir, files, manifest)


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2, default=_plain) + "\n").encode()


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} as JSON")
