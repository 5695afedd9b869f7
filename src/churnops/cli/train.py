"""``churnops train`` and ``churnops predict``."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn

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
    from churnops.pipeline.progress import SearchProgress
    from churnops.pipeline.train import TrainResult
    from churnops.workflows.training import TrainRequest

DEFAULT_SYNTHETIC_ROWS = 5000
ESTIMATORS_HELP = "Comma-separated: lgbm, rf, extra_tree, lgbm_linear (LightGBM, linear leaves)."
REFIT_HELP = (
    "After the held-out evaluation, fit the chosen configuration again on every row (the "
    "metrics stay the held-out ones). --no-refit exports the evaluated model."
)
METRIC_HELP = (
    "FLAML metric ranking the trials: log_loss, roc_auc, f1, accuracy, ap… [default: log_loss]."
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
        typer.Option("--out", help="Artifact directory [default: .churnops/models/NAME]."),
    ] = None,
    name: Annotated[str, typer.Option("--name", help="Model name.")] = "churn",
    force: Annotated[
        bool, typer.Option("--force", help="Replace a model already at the artifact directory.")
    ] = False,
    target: Annotated[str, typer.Option("--target", help="Target column.")] = "Churn",
    positive_label: Annotated[
        str, typer.Option("--positive-label", help="Target value meaning churn.")
    ] = "Yes",
    id_columns: Annotated[
        str | None,
        typer.Option(
            "--id-columns",
            help="Comma-separated ID columns, dropped in the model; each must be in the table "
            "[default: customerID, when the table has it].",
        ),
    ] = None,
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
    metric: Annotated[str | None, typer.Option("--metric", help=METRIC_HELP)] = None,
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
    status_every: Annotated[
        float,
        typer.Option(
            "--status-every",
            min=0.1,
            help="Seconds between status lines of the search when output is not a terminal.",
        ),
    ] = 10.0,
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
    """Search, fit and evaluate a churn model; export it as a verified artifact.

    Every option is checked, and the table's columns against them, before the search starts.
    """
    with user_errors():
        check_engine(engine, scheduler)
        if data is not None and engine is Engine.LOCAL:
            from churnops.data.io import table_file

            table_file(data)  # a wrong path is one line at once, before the libraries load
        from churnops.data.dataset import DataSpec
        from churnops.workflows import training

        spec = DataSpec(
            target,
            positive_label,
            _split(id_columns) if id_columns is not None else DataSpec.id_columns,
            _split(drop_columns),
            require_id_columns=id_columns is not None,
        )
        request = training.TrainRequest(
            settings=automl_settings(
                time_budget, max_iter, metric, estimators, seed, refit, eval_method
            ),
            policy=_threshold_policy(threshold, cost_fp, cost_fn),
            out=out or project_home() / "models" / name,
            name=name,
            data=data,
            spec=spec,
            synthetic_rows=rows,
            test_size=test_size,
            tracking_uri=None if no_tracking else tracking_uri(tracking_uri_option),
            experiment=experiment,
            register=register,
            force=force,
        )
        status = SearchStatus(request.settings, status_every)
        echo = _flaml_echo() if verbose else None
        if engine is Engine.DASK:
            from churnops.cli.engines import train_on_dask

            result = train_on_dask(request, scheduler, sample_rows, status, echo)
        else:
            result = _train_locally(request, rows, status, echo)
        outcome = training.export_and_record(request, result)
        if no_tracking and not register:
            err_console.print("[yellow]note:[/] --no-tracking: this run is not recorded in MLflow")
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


def _flaml_echo() -> logging.Handler:
    """FLAML's own log lines (--verbose), on stderr in FLAML's format."""
    from flaml.automl.logger import logger_formatter

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logger_formatter)
    return handler


def _train_locally(
    request: TrainRequest, rows: int, status: SearchStatus, echo: logging.Handler | None
) -> TrainResult:
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
    with status:
        return training.fit(request, dataset, status.update, echo)


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


class SearchStatus:
    """Shows a running search: trials, best score so far (with its metric), time left.

    In a terminal, one live line on stderr; otherwise (a log, a pipe) a plain status line every
    ``every`` seconds and one when the search ends, so a log shows the search as it goes.
    """

    def __init__(self, settings: AutoMLSettings, every: float = 10.0) -> None:
        from churnops.pipeline.progress import SearchProgress

        self.budget = settings.time_budget
        self.max_iter = settings.max_iter
        self.every = every
        self.progress = SearchProgress(settings.metric)
        self.started = time.monotonic()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._live: Progress | None = None

    def update(self, progress: SearchProgress) -> None:
        """Record the search's state after a trial (FLAML calls this between trials)."""
        self.progress = progress

    def line(self) -> str:
        """The status as one line of text."""
        elapsed = time.monotonic() - self.started
        progress = self.progress
        trials = f"{progress.trials} trial{'s' if progress.trials != 1 else ''}"
        if self.max_iter is not None:
            trials += f" of {self.max_iter}"
        parts = [trials]
        score = progress.best_score
        if score is not None:
            parts.append(f"best {progress.metric} {score:.4f} ({progress.best_estimator})")
        parts.append(f"{elapsed:.0f} s elapsed")
        if self.budget is not None:
            parts.append(f"{max(0.0, self.budget - elapsed):.0f} s left")
        return ", ".join(parts)

    def __enter__(self) -> SearchStatus:
        self.started = time.monotonic()
        if err_console.is_terminal:
            self._live = Progress(
                SpinnerColumn(), TextColumn("searching: {task.description}"),
                console=err_console, transient=True,
            )  # fmt: skip
            self._live.start()
            task = self._live.add_task(self.line())
            live = self._live
            self._thread = threading.Thread(
                target=self._tick, args=(0.25, lambda: live.update(task, description=self.line()))
            )
        else:
            self._thread = threading.Thread(target=self._tick, args=(self.every, self._print))
        self._thread.daemon = True
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()
        if self._live is not None:
            self._live.stop()
        elif exc[0] is None:
            err_console.print(f"search done: {self.line()}", highlight=False, soft_wrap=True)

    def _print(self) -> None:
        err_console.print(f"search: {self.line()}", highlight=False, soft_wrap=True)

    def _tick(self, seconds: float, show: Callable[[], object]) -> None:
        while not self._done.wait(seconds):
            show()


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
        str,
        typer.Option(
            "--out",
            help="File to write (.csv, .parquet or .jsonl), or - for standard output "
            "(dask: a new folder of Parquet parts).",
        ),
    ],
    output_format: Annotated[
        str | None,
        typer.Option(
            "--format", help="csv, parquet or jsonl [default: by the --out suffix; csv for -]."
        ),
    ] = None,
    batch_rows: Annotated[
        int,
        typer.Option("--batch-rows", min=1, help="Rows read, scored and written at a time."),
    ] = 100_000,
    explain: Annotated[
        bool,
        typer.Option(
            "--explain",
            help="Also write each row's feature contributions (TreeSHAP, log-odds of the "
            "positive class): base_value and one contrib_<field> column per input field; "
            "base_value plus the contrib_ columns is the log-odds of churn_probability.",
        ),
    ] = False,
    engine: EngineOption = Engine.LOCAL,
    scheduler: SchedulerOption = None,
) -> None:
    """Score a file: each row gets churn_probability and prediction (and, with --explain,
    base_value and contrib_<field> columns).

    The file is read, scored and written in batches of rows, so memory stays bounded. With
    --engine dask, --data may be a file or a folder of CSV or Parquet files larger than memory,
    and --out is a new folder receiving one Parquet part per partition, in input order.
    """
    if engine is Engine.DASK:
        from churnops.cli.engines import predict_on_dask

        with user_errors():
            if explain or output_format is not None or out == "-":
                from churnops.errors import ConfigError

                raise ConfigError(
                    "--engine dask writes a folder of Parquet parts; "
                    "--explain, --format and --out - are for the local engine"
                )
            predict_on_dask(model, data, Path(out), scheduler)
        return
    with user_errors():
        check_engine(engine, scheduler)
        from churnops.data.batches import STDOUT
        from churnops.data.batches import output_format as check_format
        from churnops.inference import load_scorer
        from churnops.workflows.scoring import score_file

        check_format(out, output_format)  # an unknown suffix fails before the model loads
        artifact = open_model(model)
        scorer = load_scorer(artifact)
        if not scorer.fast:
            err_console.print(
                f"[yellow]note:[/] scoring with the pipeline: {scorer.fallback_reason}"
            )
        with err_console.status("scoring…") as status:  # shown on a terminal only
            result = score_file(
                scorer, data, out, output=output_format, rows=batch_rows, explain=explain,
                on_batch=lambda rows: status.update(f"scored {rows:,} rows…"),
            )  # fmt: skip
    # With the scores on standard output, the summary goes to standard error.
    say = err_console if out == STDOUT else console
    say.print(
        f"scored {result.rows} rows in {result.seconds:.2f} s with model {artifact.name} "
        f"{artifact.version} ({result.runtime}); wrote {result.written}"
        + (
            f"; {result.warned_rows} rows had warnings (unseen categories or numbers outside "
            "the training range)"
            if result.warned_rows
            else ""
        ),
        highlight=False,
        soft_wrap=True,
    )
