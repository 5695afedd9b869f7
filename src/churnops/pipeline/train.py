"""Fit the churn Pipeline, evaluate it on held-out rows and export it as an artifact."""

from __future__ import annotations

import copy
import io
import json
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.pipeline import Pipeline

from churnops.artifact import (
    EVALUATION_FILE,
    HISTORY_FILE,
    PIPELINE_FILE,
    PROFILE_FILE,
    REPORT_FILE,
    REPORT_HTML_FILE,
    ModelArtifact,
    ModelDescription,
    write_artifact,
)
from churnops.data.dataset import Dataset, split_dataset
from churnops.data.profile import reference_profile
from churnops.errors import DataError
from churnops.pipeline.build import AutoMLSettings, automl_fit_params, build_pipeline
from churnops.pipeline.evaluate import (
    ThresholdPolicy,
    baseline_metrics,
    choose_threshold,
    evaluate,
)
from churnops.pipeline.export import serving_files, serving_summary
from churnops.pipeline.html_report import evaluation_data, render_training_report
from churnops.pipeline.importance import column_importance
from churnops.pipeline.progress import FLAML_INFO_VERBOSITY, SearchProgress, follow_search
from churnops.pipeline.report import render_report
from churnops.provenance import git_state, library_versions
from churnops.schema import Schema


@dataclass(frozen=True)
class RowSplits:
    """The rows of a table and what each part was used for."""

    dataset: Dataset  # every row
    train: Dataset  # the search and the evaluated model's fit
    test: Dataset  # the held-out evaluation
    validation: Dataset | None  # the threshold's choice, when it is chosen from data
    fitted_on: Dataset  # the returned pipeline's fit: every row after a refit, else train


@dataclass(frozen=True)
class SearchOutcome:
    """The AutoML search: its summary (the manifest's ``automl``), every trial, the fits."""

    summary: dict[str, Any]
    history: list[dict[str, Any]]
    fitting: dict[str, Any]  # what was fitted on what (the manifest's ``fitting``)
    evaluated_pipeline: Pipeline  # fitted on the train rows; the metrics describe it


@dataclass(frozen=True)
class FullTable:
    """A table too large for memory, of which the in-memory ``Dataset`` is a sample.

    Set when the final model was fitted on every row of the table by a distributed engine
    (:mod:`churnops.pipeline.dask_refit`); the manifest then describes this table.
    """

    source: str
    sha256: str
    rows: int


@dataclass(frozen=True)
class TrainResult:
    """A fitted Pipeline with everything measured while fitting it."""

    pipeline: Pipeline
    schema: Schema
    rows: RowSplits
    settings: AutoMLSettings
    policy: ThresholdPolicy
    test_size: float
    threshold: float
    metrics: dict[str, Any]  # held-out metrics of search.evaluated_pipeline
    test_scores: np.ndarray
    search: SearchOutcome
    full_table: FullTable | None = None  # the whole table, when the Dataset is its sample

    @property
    def train(self) -> Dataset:
        """The training rows."""
        return self.rows.train

    @property
    def test(self) -> Dataset:
        """The held-out rows."""
        return self.rows.test

    @property
    def final_rows(self) -> Dataset:
        """The rows the returned pipeline was fitted on (all of them after a refit)."""
        return self.rows.fitted_on


def positive_probability(pipeline: Pipeline, X: Any, positive_label: str) -> np.ndarray:
    """Return the probability of ``positive_label`` for each row of ``X``."""
    classes = [str(c) for c in pipeline.classes_]
    return np.asarray(pipeline.predict_proba(X)[:, classes.index(positive_label)], dtype=np.float64)


def train_model(
    dataset: Dataset,
    settings: AutoMLSettings,
    policy: ThresholdPolicy | None = None,
    test_size: float = 0.2,
    progress: Callable[[SearchProgress], None] | None = None,
    search_log: logging.Handler | None = None,
) -> TrainResult:
    """Search and fit the Pipeline on a training split; evaluate on the held-out split.

    Rows are split (stratified) into train and test; when the threshold is chosen from data,
    a validation part of train is held out for it. FLAML ranks its trials on the training rows
    (by ``settings.eval_method``); the winner, fitted on the training rows only, is evaluated
    on the test rows, and every metric reported is computed on them. With ``settings.refit``
    the chosen configuration is then fitted again on every row, and that is the pipeline
    returned (``evaluated_pipeline`` keeps the one the metrics describe).

    ``progress`` is called after every trial of the search; ``search_log`` gets FLAML's own
    log lines. Neither changes what is searched.
    """
    started_all = time.perf_counter()
    policy = policy or ThresholdPolicy()
    if not 0.0 < test_size < 1.0:
        raise DataError(f"test size {test_size} must be between 0 and 1")
    train, test = split_dataset(dataset, test_size, settings.seed)
    validation: Dataset | None = None
    if policy.strategy != "fixed":
        train, validation = split_dataset(train, policy.validation_size, settings.seed)

    schema = train.schema()
    pipeline = build_pipeline(schema)
    final, final_schema, fitted_on = pipeline, schema, train
    refit_seconds: float | None = None
    with tempfile.TemporaryDirectory(prefix="churnops-flaml-") as tmp:
        log_file = str(Path(tmp) / "search.log")
        started = time.perf_counter()
        X, y, params = _search_rows(train, schema, settings, log_file)
        with follow_search(settings.metric, progress, search_log):
            pipeline.fit(X, y, **params)
        del X, y
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
        # The refit replays the search log's best trial; a search stopped before its first
        # trial was logged (max_iter=1) has none, and its evaluated model is exported as is.
        refitted = settings.refit and bool(history)
        if refitted:
            started = time.perf_counter()
            final_schema = dataset.schema()
            final = refit_pipeline(pipeline, final_schema, dataset, log_file, settings)
            refit_seconds = time.perf_counter() - started
            fitted_on = dataset
    automl = pipeline.named_steps["automl"]
    state = getattr(automl, "_state", None)
    fitting = {
        "selection": {
            **settings.selection,
            # What FLAML did, which "auto" decides from the table's size and the budget.
            "flaml_eval_method": getattr(state, "eval_method", None),
            "rows": train.rows,
            "finalists": finalists(history),
        },
        "evaluation": {"rows": test.rows, "model_fitted_on_rows": train.rows},
        "threshold": {"rows": validation.rows if validation is not None else 0},
        "final": {
            "refit": refitted,
            "rows": fitted_on.rows,
            "refit_seconds": refit_seconds,
        },
        "search_budget_seconds": settings.search_budget,
        "seconds": time.perf_counter() - started_all,
    }
    summary = {**search_summary(automl, len(history)), "fit_seconds": fit_seconds}
    return TrainResult(
        pipeline=final,
        schema=final_schema,
        rows=RowSplits(dataset, train, test, validation, fitted_on),
        settings=settings,
        policy=policy,
        test_size=test_size,
        threshold=threshold,
        metrics=metrics,
        test_scores=test_scores,
        search=SearchOutcome(summary, history, fitting, evaluated_pipeline=pipeline),
    )


# FLAML shuffles the rows it is given before cross-validation, in a copy of the feature matrix;
# classes this rare make it add rows of their own first.
_FLAML_RARE_CLASS = 20


def _search_rows(
    train: Dataset, schema: Schema, settings: AutoMLSettings, log_file: str
) -> tuple[Any, Any, dict[str, Any]]:
    """``pipeline.fit`` arguments for the search: the rows, labels and FLAML settings.

    With cross-validation FLAML shuffles the encoded rows (``sklearn.utils.shuffle``, its
    fixed seed) and splits them with ``RepeatedStratifiedKFold``. The rows are put in that
    order here, before encoding (the table is small; its encoded matrix is not), and FLAML is
    given the same splitter: it then searches on exactly the rows and folds it would have, with
    one copy of the matrix less (on 500k rows, 144 MB of the peak).
    """
    from flaml.config import RANDOM_SEED
    from sklearn.model_selection import RepeatedStratifiedKFold
    from sklearn.utils import shuffle

    width = len(schema.numeric) + sum(len(f.categories) for f in schema.categorical)
    params = automl_fit_params(
        settings, log_file, verbose=FLAML_INFO_VERBOSITY, shape=(train.rows, width)
    )
    X, y = train.X, train.y
    if settings.eval_method == "cv" and int(y.value_counts().min()) >= _FLAML_RARE_CLASS:
        order = shuffle(np.arange(len(y)), random_state=RANDOM_SEED)
        X, y = X.iloc[order], y.iloc[order].reset_index(drop=True)
        params["automl__split_type"] = RepeatedStratifiedKFold(
            n_splits=settings.n_splits, n_repeats=1, random_state=RANDOM_SEED
        )
    return X, y, params


def search_summary(automl: Any, trials: int) -> dict[str, Any]:
    """The search's winner and what finding it took (the manifest's ``automl``)."""
    return {
        "best_estimator": automl.best_estimator,
        "best_config": automl.best_config,
        "best_loss": automl.best_loss,
        "estimator_class": type(automl.model.estimator).__name__,
        "trials": trials,
        "time_to_find_best_seconds": automl.time_to_find_best_model,
    }


def refit_pipeline(
    searched: Pipeline, schema: Schema, rows: Dataset, log_file: str, settings: AutoMLSettings
) -> Pipeline:
    """Fit the best configuration of a search (its FLAML log) again on ``rows``, no search.

    The ``prepare`` step learns its categories from ``rows`` too, so the refitted pipeline
    knows every category the data has. The AutoML step is a copy of ``searched``'s (it keeps
    the search's best estimator, configuration and loss) whose model is fitted again.
    """
    prepare = build_pipeline(schema).named_steps["prepare"]
    automl = copy.deepcopy(searched.named_steps["automl"])
    pipeline = Pipeline([("prepare", prepare), ("automl", automl)])
    matrix = prepare.fit_transform(rows.X, rows.y)
    automl.retrain_from_log(
        log_file,
        matrix,
        rows.y,
        task="classification",
        eval_method=settings.eval_method if settings.eval_method != "auto" else "holdout",
        n_splits=settings.n_splits,
        split_type="stratified",
        n_jobs=settings.n_jobs,
        train_full=True,  # every row, not the sample size of the trial
    )
    _release_data(automl)
    return pipeline


# What FLAML's fit deletes at its end (keep_search_state=False) and retrain_from_log keeps:
# the training rows, which must not travel inside the artifact's pickle.
_AUTOML_DATA = ("_X_train_all", "_y_train_all", "_sample_weight_full")
_STATE_DATA = (
    "kf",
    "X_train",
    "X_train_all",
    "X_val",
    "y_train",
    "y_train_all",
    "y_val",
    "groups",
    "groups_all",
    "groups_val",
    "fit_kwargs_by_estimator",
    "fit_kwargs",
)


def _release_data(automl: Any) -> None:
    for name in _AUTOML_DATA:
        if hasattr(automl, name):
            delattr(automl, name)
    state = getattr(automl, "_state", None)
    for name in _STATE_DATA:
        if state is not None and hasattr(state, name):
            delattr(state, name)


def finalists(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The best trial of each estimator searched, best first (the search's own scores)."""
    best: dict[str, dict[str, Any]] = {}
    for trial in history:
        loss = trial.get("validation_loss")
        learner = trial.get("learner")
        if learner is None or not isinstance(loss, int | float):
            continue
        if learner not in best or loss < best[learner]["validation_loss"]:
            best[learner] = trial
    ranked = sorted(best.values(), key=lambda t: t["validation_loss"])
    return [
        {
            "estimator": t["learner"],
            "validation_loss": t["validation_loss"],
            "trials": sum(1 for h in history if h.get("learner") == t["learner"]),
            "config": t["config"],
        }
        for t in ranked
    ]


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


def _budget_left(result: TrainResult, export_started: float) -> float | None:
    """Seconds of the time budget the search, evaluation and refit left for the export."""
    budget = result.settings.time_budget
    if budget is None:
        return None
    spent = float(result.search.fitting["seconds"]) + time.perf_counter() - export_started
    return max(0.0, budget - spent)


def export_model(
    result: TrainResult, out_dir: str | Path, name: str = "churn", overwrite: bool = True
) -> ModelArtifact:
    """Write ``result`` as a verified artifact directory (see :mod:`churnops.artifact`).

    With ``overwrite`` false an existing, non-empty ``out_dir`` is refused
    (:class:`~churnops.errors.ArtifactExistsError`), checked atomically as it is written.
    """
    started = time.perf_counter()
    buffer = io.BytesIO()
    joblib.dump(result.pipeline, buffer, compress=3)
    serving = serving_files(
        result.pipeline, result.schema, result.test.X, _budget_left(result, started)
    )
    dataset, validation = result.rows.dataset, result.rows.validation
    positive = result.schema.positive_label
    test_positive = (result.test.y == positive).to_numpy()
    train_rate = float((result.train.y == positive).mean())
    data: dict[str, Any] = {
        "source": dataset.source,
        "sha256": dataset.sha256,
        "rows": dataset.rows,
        "train_rows": result.train.rows,
        "validation_rows": validation.rows if validation is not None else 0,
        "test_rows": result.test.rows,
        # Rows the exported model was fitted on: all of them after a refit.
        "final_fit_rows": result.final_rows.rows,
        "synthetic": dataset.synthetic,
        "notes": list(dataset.notes),
    }
    if result.full_table is not None:
        # Train, validation and test rows are parts of the in-memory sample; the final fit
        # read the whole table.
        full = result.full_table
        data.update(
            source=full.source,
            sha256=full.sha256,
            rows=full.rows,
            final_fit_rows=full.rows,
            sample_rows=dataset.rows,
        )
    description = ModelDescription.model_validate(
        {
            "name": name,
            "data": data,
            "schema": result.schema.to_dict(),
            "settings": {
                "automl": result.settings.to_dict(),
                "threshold_policy": result.policy.to_dict(),
                "test_size": result.test_size,
            },
            "automl": result.search.summary,
            # What was fitted on what: selection (search ranking), held-out evaluation, final fit.
            "fitting": result.search.fitting,
            # Baselines: the references the held-out metrics are judged against, same rows.
            "metrics": {
                "test": result.metrics,
                "baselines": baseline_metrics(test_positive, train_rate, result.threshold),
            },
            "threshold": {"value": result.threshold, "strategy": result.policy.strategy},
            "versions": library_versions(),
            "git": git_state(),
            "serving": serving_summary(serving),
        }
    )
    # The reference for prediction drift is the exported model's scores of the held-out rows:
    # after a refit they differ from the evaluated model's (measured on Telco: KS D 0.13), and
    # the service scores with the exported one.
    scores = result.test_scores
    if result.pipeline is not result.search.evaluated_pipeline:
        scores = positive_probability(result.pipeline, result.test.X, result.schema.positive_label)
    profile = reference_profile(
        result.final_rows.X[list(result.schema.feature_names)], result.schema, scores
    )
    history = "".join(json.dumps(t, default=_plain) + "\n" for t in result.search.history)
    evaluation = evaluation_data(
        test_positive,
        result.test_scores,
        result.threshold,
        {
            "all": float((dataset.y == positive).mean()),
            "train": train_rate,
            "test": float(test_positive.mean()),
        },
        column_importance(result.pipeline, result.schema),
    )
    evaluation_bytes = (json.dumps(evaluation, default=_plain) + "\n").encode()  # one row per value
    files = {
        PIPELINE_FILE: buffer.getvalue(),
        PROFILE_FILE: _json_bytes(profile),
        HISTORY_FILE: history.encode(),
        REPORT_FILE: render_report(description).encode(),
        EVALUATION_FILE: evaluation_bytes,
        # Built from what the artifact stores, as `churnops report` rebuilds it.
        REPORT_HTML_FILE: render_training_report(
            ModelDescription.model_validate(json.loads(_json_bytes(description.to_json()))),
            json.loads(evaluation_bytes),
            [json.loads(line) for line in history.splitlines()],
        ).encode(),
        **serving,
    }
    return write_artifact(out_dir, files, description, overwrite=overwrite)


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=2, default=_plain) + "\n").encode()


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} as JSON")
