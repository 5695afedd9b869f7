"""``churnops train`` and ``churnops predict``."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from churnops.cli.app import UriOption, app, console, err_console, user_errors
from churnops.cli.engines import (
    DEFAULT_SAMPLE_ROWS,
    Engine,
    EngineOption,
    SampleRowsOption,
    SchedulerOption,
    check_engine,
)
from churnops.workflows.models import open_model, project_home, tracking_uri

if TYPE_CHECKING:
    from churnops.artifact import ModelArtifact
    from churnops.pipeline.build import AutoMLSettings
    from churnops.pipeline.evaluate import ThresholdPolicy
    from churnops.pipeline.train import TrainResult
    from churnops.workflows.training import TrainRequest

T = TypeVar("T")
DEFAULT_SYNTHETIC_ROWS = 5000
ESTIMATORS_HELP = "Comma-separated: lgbm, rf, extra_tree, lgbm_linear (LightGBM, linear leaves)."
REFIT_HELP = (
    "After the held-out evaluation, fit the chosen configuration again on every row (the "
    "metrics stay the held-out ones). --no-refit exports the evaluated model."
)
EVAL_METHOD_HELP = "How trials are ranked: cv (cross-validation), holdout or auto (FLAML's choice)."


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


@app.command()
def train(
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="CSV or Parquet churn table. Without it, synthetic Telco-like customers are used.",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Artifact directory [default: .churnops/models/NAME]"),
    ] = None,
    name: Annotated[str, typer.Option("--name", help="Model name.")] = "churn",
    target: Annotated[str, typer.Option("--target", help="Target column.")] = "Churn",
    positive_label: Annotated[
        str, typer.Option("--positive-label", help="Target value meaning churn.")
    ] = "Yes",
    id_columns: Annotated[
        str, typer.Option("--id-columns", help="Comma-separated ID columns (dropped in the model).")
    ] = "customerID",
    drop_columns: Annotated[
        str, typer.Option("--drop-columns", help="Comma-separated columns to ignore.")
    ] = "",
    time_budget: Annotated[
        float | None,
        typer.Option(
            "--time-budget", min=1, help="Search seconds [default: 60 unless --max-iter]."
        ),
    ] = None,
    max_iter: Annotated[
        int | None,
        typer.Option(
            "--max-iter", min=1, help="Number of trials; alone it makes training repeatable."
        ),
    ] = None,
    metric: Annotated[
        str | None, typer.Option("--metric", help="FLAML metric to optimise.")
    ] = None,
    estimators: Annotated[str | None, typer.Option("--estimators", help=ESTIMATORS_HELP)] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of split and search.")] = 42,
    refit: Annotated[bool, typer.Option("--refit/--no-refit", help=REFIT_HELP)] = True,
    eval_method: Annotated[str, typer.Option("--eval-method", help=EVAL_METHOD_HELP)] = "cv",
    test_size: Annotated[float, typer.Option("--test-size", help="Held-out share.")] = 0.2,
    threshold: Annotated[
        str,
        typer.Option(
            "--threshold",
            help="Decision threshold: a number (default 0.5), 'f1' (best F1 on validation rows) "
            "or 'cost' (least cost on validation rows, see --cost-fp/--cost-fn).",
        ),
    ] = "0.5",
    cost_fp: Annotated[float, typer.Option("--cost-fp", help="Cost of a false alarm.")] = 1.0,
    cost_fn: Annotated[float, typer.Option("--cost-fn", help="Cost of a missed churner.")] = 5.0,
    rows: Annotated[
        int, typer.Option("--rows", min=100, help="Synthetic customers when --data is not given.")
    ] = DEFAULT_SYNTHETIC_ROWS,
    verbose: Annotated[bool, typer.Option("--verbose", help="Show FLAML's search log.")] = False,
    tracking_uri_option: UriOption = None,
    no_tracking: Annotated[
        bool, typer.Option("--no-tracking", help="Do not record the run in MLflow.")
    ] = False,
    register: Annotated[
        str | None, typer.Option("--register", help="Register the model under this name.")
    ] = None,
    experiment: Annotated[
        str, typer.Option("--experiment", help="MLflow experiment.")
    ] = "churnops",
    engine: EngineOption = Engine.LOCAL,
    scheduler: SchedulerOption = None,
    sample_rows: SampleRowsOption = DEFAULT_SAMPLE_ROWS,
) -> None:
    """Search, fit and evaluate a churn model; export it as a verified artifact."""
    from churnops.data.dataset import DataSpec
    from churnops.workflows import training

    with user_errors():
        check_engine(engine, scheduler)
        if no_tracking and not register:
            err_console.print("[yellow]note:[/] --no-tracking: this run is not recorded in MLflow")
        request = training.TrainRequest(
            settings=automl_settings(
                time_budget, max_iter, metric, estimators, seed, refit, eval_method
            ),
            policy=_threshold_policy(threshold, cost_fp, cost_fn),
            out=out or project_home() / "models" / name,
            name=name,
            data=data,
            spec=DataSpec(target, positive_label, _split(id_columns), _split(drop_columns)),
            synthetic_rows=rows,
            test_size=test_size,
            tracking_uri=None if no_tracking else tracking_uri(tracking_uri_option),
            experiment=experiment,
            register=register,
        )
        if not verbose:
            logging.getLogger("flaml.automl.logger").setLevel(logging.WARNING)
        if engine is Engine.DASK:
            from churnops.cli.engines import train_on_dask

            result = train_on_dask(request, scheduler, sample_rows, _with_progress)
        else:
            result = _train_locally(request, rows)
        outcome = training.export_and_record(request, result)
        _print_summary(outcome.artifact)
        if outcome.run_id is not None:
            console.print(
                f"MLflow run: {outcome.run_id} ({request.tracking_uri}, experiment {experiment!r})"
            )
        if outcome.registered_version is not None:
            console.print(
                f"registered as {register} version {outcome.registered_version} "
                f"(promote: churnops models promote {register} {outcome.registered_version})"
            )


def _train_locally(request: TrainRequest, rows: int) -> TrainResult:
    from churnops.workflows import training

    dataset = training.load_training_data(request)
    if dataset.synthetic:
        err_console.print(
            f"[bold yellow]note:[/] no --data given: training on {rows} SYNTHETIC customers "
            "(Telco-like, not real). Pass --data FILE to train on your own table."
        )
    for note in dataset.notes:
        err_console.print(f"[yellow]note:[/] {note}")
    console.print(
        f"data: {dataset.source} — {dataset.rows} rows, {len(dataset.feature_names)} features"
    )
    budget = request.settings.time_budget
    return _with_progress(lambda: training.fit(request, dataset), budget)


def automl_settings(
    time_budget: float | None,
    max_iter: int | None,
    metric: str | None,
    estimators: str | None,
    seed: int,
    refit: bool = True,
    eval_method: str = "cv",
) -> AutoMLSettings:
    from churnops.pipeline.build import AutoMLSettings

    kwargs: dict[str, Any] = {
        "seed": seed,
        "max_iter": max_iter,
        "refit": refit,
        "eval_method": eval_method,
    }
    kwargs["time_budget"] = time_budget if time_budget or max_iter else 60.0
    if metric:
        kwargs["metric"] = metric
    if estimators:
        kwargs["estimators"] = _split(estimators)
    return AutoMLSettings(**kwargs)


def _threshold_policy(threshold: str, cost_fp: float, cost_fn: float) -> ThresholdPolicy:
    from churnops.errors import ConfigError
    from churnops.pipeline.evaluate import ThresholdPolicy

    if threshold == "f1":
        return ThresholdPolicy(strategy="f1")
    if threshold == "cost":
        return ThresholdPolicy(
            strategy="cost", cost_false_positive=cost_fp, cost_false_negative=cost_fn
        )
    try:
        value = float(threshold)
    except ValueError:
        raise ConfigError(
            f"--threshold must be a number between 0 and 1, 'f1' or 'cost'; got {threshold!r}"
        ) from None
    return ThresholdPolicy(strategy="fixed", value=value)


def _with_progress(work: Callable[[], T], budget: float | None) -> T:
    """Run ``work`` while a bar shows the time spent against the search budget."""
    columns = [TextColumn("searching"), BarColumn(), TimeElapsedColumn()]
    if budget is not None:
        columns.insert(2, TextColumn(f"of {budget:.0f} s budget"))
    done = threading.Event()
    with Progress(*columns, console=err_console, transient=True) as progress:
        task = progress.add_task("search", total=budget)

        def tick() -> None:
            started = time.monotonic()
            while not done.wait(0.25):
                progress.update(task, completed=time.monotonic() - started)

        ticker = threading.Thread(target=tick, daemon=True)
        ticker.start()
        try:
            return work()
        finally:
            done.set()
            ticker.join()


def _print_summary(artifact: ModelArtifact) -> None:
    manifest = artifact.manifest
    search, test = manifest.automl, manifest.test_metrics
    selection, final = manifest.fitting.selection, manifest.fitting.final
    if selection is not None:
        method = selection.flaml_eval_method or selection.method
        ranked = f"{selection.n_splits}-fold CV" if method == "cv" else method
        how = f", ranked by {ranked} on {selection.rows} rows"
    else:
        how = ""
    console.print(
        f"best estimator: {search.best_estimator} after {search.trials} trials "
        f"({search.estimator_class}){how}"
    )
    console.print(
        "held-out test: "
        + ", ".join(
            f"{k} {test[k]:.3f}"
            for k in ("roc_auc", "log_loss", "f1", "accuracy", "precision", "recall")
            if test.get(k) is not None
        )
        + f" (threshold {artifact.threshold:.3f}, {test['rows']} rows)"
    )
    if final.refit:
        console.print(
            f"exported model: refitted on all {final.rows} rows "
            "(the metrics above are the held-out model's)"
        )
    if artifact.synthetic:
        err_console.print("[bold yellow]note:[/] this model was trained on SYNTHETIC data.")
    console.print(f"artifact: [bold]{artifact.path}[/] (version {artifact.version}, verified)")


@app.command()
def predict(
    model: Annotated[
        str, typer.Option("--model", help="Artifact directory or models:/NAME@ALIAS.")
    ],
    data: Annotated[
        Path,
        typer.Option(
            "--data", help="CSV or Parquet file of customers (dask: or a folder of them)."
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", help="CSV or Parquet file to write (dask: a new folder).")
    ],
    engine: EngineOption = Engine.LOCAL,
    scheduler: SchedulerOption = None,
) -> None:
    """Score a file: each row gets churn_probability and prediction.

    With --engine dask, --data may be a file or a folder of CSV or Parquet files larger than
    memory, and --out is a new folder receiving one Parquet part per partition, in input order.
    """
    if engine is Engine.DASK:
        from churnops.cli.engines import predict_on_dask

        with user_errors():
            predict_on_dask(model, data, out, scheduler)
        return
    with user_errors():
        check_engine(engine, scheduler)
        from churnops.data.io import read_table, write_table
        from churnops.inference import load_scorer

        artifact = open_model(model)
        scorer = load_scorer(artifact)
        if not scorer.fast:
            err_console.print(
                f"[yellow]note:[/] scoring with the pipeline: {scorer.fallback_reason}"
            )
        frame = read_table(data)
        started = time.perf_counter()
        columns = {name: frame[name] for name in frame.columns}
        scores = scorer.score_columns(columns, len(frame))
        seconds = time.perf_counter() - started
        frame["churn_probability"] = scores.positive_probability
        frame["prediction"] = scores.labels
        path = write_table(frame, out)
    warned = len(scores.warnings)
    console.print(
        f"scored {len(frame)} rows in {seconds:.2f} s with model {artifact.name} "
        f"{artifact.version} ({scorer.runtime}); wrote {path}"
        + (f"; {warned} rows had warnings (e.g. unseen categories)" if warned else "")
    )
