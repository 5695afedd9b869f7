"""``--engine dask`` of ``churnops predict`` and ``churnops train``: options and printing.

The work is in :mod:`churnops.workflows.dask_engine`; importing it without dask installed is a
one-line error naming the extra.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Protocol

import typer

from churnops.cli.app import console, err_console

if TYPE_CHECKING:
    from churnops.pipeline.progress import SearchProgress
    from churnops.pipeline.train import TrainResult
    from churnops.workflows.training import TrainRequest


class SearchStatusLike(Protocol):
    """What shows a running search (``cli.train.SearchStatus``): a context and an update."""

    def update(self, progress: SearchProgress) -> None: ...

    def __enter__(self) -> Any: ...

    def __exit__(self, *exc: object) -> None: ...


class Engine(StrEnum):
    """Where batch work runs."""

    LOCAL = "local"
    DASK = "dask"


EngineOption = Annotated[
    Engine,
    typer.Option(
        "--engine",
        help="local: this process. dask: a Dask cluster (--scheduler, else a local cluster "
        "sized to this machine); needs the 'dask' extra.",
    ),
]
SchedulerOption = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        help="Dask scheduler address (e.g. tcp://scheduler:8786) for --engine dask "
        "[default: a local cluster].",
    ),
]
SampleRowsOption = Annotated[
    int,
    typer.Option(
        "--sample-rows",
        min=100,
        help="--engine dask: rows sampled into memory for the search and the held-out "
        "evaluation; the final model is fitted on every row.",
    ),
]
DEFAULT_SAMPLE_ROWS = 100_000


def check_engine(engine: Engine, scheduler: str | None) -> None:
    """Refuse a scheduler address without ``--engine dask`` rather than ignore it."""
    if scheduler and engine is not Engine.DASK:
        from churnops.errors import ConfigError

        raise ConfigError("--scheduler is for --engine dask; add --engine dask or drop it")


def predict_on_dask(model: str, data: Path, out: Path, scheduler: str | None) -> None:
    """Score ``data`` on Dask into the Parquet folder ``out`` and print what was done."""
    from churnops.workflows import dask_engine
    from churnops.workflows.models import open_model

    artifact = open_model(model)
    dask_engine.check_scoring(artifact, data, out)
    with dask_engine.dask_client(dask_engine.ClusterSpec(scheduler=scheduler)) as client:
        done = dask_engine.score_on_dask(artifact, data, out, client)
    rate = done.rows / done.seconds if done.seconds > 0 else float("nan")
    parts = f"{done.parts} Parquet part{'s' if done.parts != 1 else ''}"
    console.print(
        f"scored {done.rows} rows in {done.seconds:.2f} s ({rate:,.0f} rows/s) on "
        f"{done.workers} Dask workers with model {artifact.name} {artifact.version} "
        f"({done.runtime}); wrote {parts} to {done.out}/"
        + (
            f"; {done.warned_rows} rows had warnings (e.g. unseen categories)"
            if done.warned_rows
            else ""
        )
    )


def train_on_dask(
    request: TrainRequest,
    scheduler: str | None,
    sample_rows: int,
    status: SearchStatusLike,
    echo: logging.Handler | None = None,
) -> TrainResult:
    """Sample, search and evaluate in memory, refit on every row on Dask; print the steps."""
    from churnops.workflows import dask_engine
    from churnops.workflows.training import check_request

    check_request(request)
    run = dask_engine.dask_settings(request)
    if tuple(request.settings.estimators) != run.settings.estimators:
        err_console.print(
            "[yellow]note:[/] --engine dask searches LightGBM only (lgbm): its chosen "
            "configuration is refitted on every row with lightgbm.dask"
        )
    with dask_engine.dask_client(dask_engine.ClusterSpec(scheduler=scheduler)) as client:
        data = dask_engine.sample_table(request, client, sample_rows)
        sample = data.sample
        if sample.synthetic:
            err_console.print(
                "[bold yellow]note:[/] no --data given: training on SYNTHETIC customers "
                "(Telco-like, not real). Pass --data FILE to train on your own table."
            )
        for note in sample.notes:
            err_console.print(f"[yellow]note:[/] {note}")
        console.print(
            f"data: {data.full.source} — {data.full.rows} labelled rows on "
            f"{dask_engine.worker_count(client)} Dask workers; searching on a sample of "
            f"{sample.rows} rows, {len(sample.feature_names)} features"
        )
        with status:
            return dask_engine.fit_on_dask(request, data, client, status.update, echo)
