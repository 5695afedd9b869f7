"""``churnops models``, ``churnops reproduce`` and ``churnops ui``: the MLflow registry."""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from churnops.cli.app import (
    app,
    console,
    err_console,
    open_model,
    project_home,
    tracking_uri,
    user_errors,
)

models_app = typer.Typer(help="Registered models: versions and aliases.", no_args_is_help=True)
app.add_typer(models_app, name="models")

UriOption = Annotated[
    str | None,
    typer.Option("--tracking-uri", help="MLflow tracking URI [env MLFLOW_TRACKING_URI]."),
]


def _uri(explicit: str | None) -> str:
    from churnops.registry.tracking import check_tracking

    uri = tracking_uri(explicit)
    check_tracking(uri)
    return uri


@models_app.command("list")
def list_models(
    name: Annotated[str | None, typer.Argument(help="Only this model.")] = None,
    tracking: UriOption = None,
) -> None:
    """List registered versions with their aliases and held-out metrics."""
    with user_errors():
        from churnops.registry.models import list_versions

        versions = list_versions(_uri(tracking), name)
    if not versions:
        console.print("no registered models" + (f" named {name!r}" if name else ""))
        return
    table = Table("model", "version")
    table.add_column("aliases", no_wrap=True, min_width=len("champion, challenger"))
    for name in ("ROC AUC", "log loss", "F1", "data sha256", "created", "run"):
        table.add_column(name)
    for v in versions:
        created = dt.datetime.fromtimestamp(v.created / 1000).strftime("%Y-%m-%d %H:%M")
        table.add_row(
            v.name, v.version, ", ".join(v.aliases) or "-",
            _fmt(v.metrics.get("test.roc_auc")), _fmt(v.metrics.get("test.log_loss")),
            _fmt(v.metrics.get("test.f1")), v.data_sha256[:12], created, v.run_id[:12],
        )  # fmt: skip
    console.print(table)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


@models_app.command("register")
def register(
    run_id: Annotated[str, typer.Argument(help="MLflow run id of a churnops training run.")],
    name: Annotated[str, typer.Option("--name", help="Registered model name.")],
    tracking: UriOption = None,
) -> None:
    """Register a run's artifact as a new version of a model."""
    with user_errors():
        from churnops.registry.models import register as register_version

        version = register_version(run_id, name, _uri(tracking))
    console.print(f"registered run {run_id} as {name} version {version}")


@models_app.command("promote")
def promote(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[str, typer.Argument(help="Version to promote.")],
    alias: Annotated[str, typer.Option("--alias", help="champion or challenger.")] = "champion",
    tracking: UriOption = None,
) -> None:
    """Point an alias (default champion, what gets served) at a version."""
    with user_errors():
        from churnops.registry.models import promote as promote_version

        previous = promote_version(name, version, _uri(tracking), alias)
    was = f" (was version {previous})" if previous else ""
    console.print(f"{name}@{alias} → version {version}{was}")


@models_app.command("rollback")
def rollback(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    tracking: UriOption = None,
) -> None:
    """Move champion back to the version that held it before."""
    with user_errors():
        from churnops.registry.models import rollback as rollback_model

        current, target = rollback_model(name, _uri(tracking))
    console.print(f"{name}@champion: version {current} → version {target}")


@app.command()
def reproduce(
    ref: Annotated[str, typer.Argument(help="MLflow run id, or models:/NAME/VERSION or @ALIAS.")],
    data: Annotated[Path, typer.Option("--data", help="The data file to refit on.")],
    allow_data_change: Annotated[
        bool, typer.Option("--allow-data-change", help="Refit even if the data file changed.")
    ] = False,
    out: Annotated[Path | None, typer.Option("--out", help="Also export the refit here.")] = None,
    tracking: UriOption = None,
) -> None:
    """Refit a recorded configuration and report whether its predictions match."""
    with user_errors():
        from churnops.registry.models import is_registry_ref, run_of
        from churnops.registry.reproduce import MATCH_TOLERANCE
        from churnops.registry.reproduce import reproduce as refit

        uri = _uri(tracking)
        reference = ref if is_registry_ref(ref) else _run_model(ref, uri)
        recorded = open_model(reference, uri)
        console.print(
            f"recorded: {recorded.name} {recorded.version} (run {run_of(reference, uri)}), "
            f"data {recorded.manifest['data']['sha256'][:12]}…"
        )
        report = refit(recorded, data, allow_data_change)
        for warning in report.warnings:
            err_console.print(f"[yellow]warning:[/] {warning}")
        if out is not None:
            from churnops.pipeline.train import export_model

            export_model(report.refit, out, name=recorded.name)
            console.print(f"refit exported to {out}")
    verdict = "MATCH" if report.matches else "DIFFERENT"
    console.print(
        f"{verdict}: max |Δp| {report.max_abs_difference:.3g} over {report.rows_compared} held-out "
        f"rows (tolerance {MATCH_TOLERANCE:g}); "
        f"labels {'equal' if report.labels_equal else 'differ'}"
    )
    if not report.matches:
        raise typer.Exit(3)


def _run_model(run_id: str, uri: str) -> str:
    """Download a run's logged artifact directory; return its local path."""
    import mlflow.artifacts

    from churnops.registry.tracking import ARTIFACT_PATH

    target = project_home() / "cache" / "runs" / run_id
    if not (target / ARTIFACT_PATH / "manifest.json").is_file():
        target.mkdir(parents=True, exist_ok=True)
        mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=ARTIFACT_PATH, dst_path=str(target), tracking_uri=uri
        )
    return str(target / ARTIFACT_PATH)


@app.command()
def ui(
    host: Annotated[str, typer.Option("--host", help="Interface.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port.")] = 5000,
    tracking: UriOption = None,
) -> None:
    """Start the MLflow UI on the configured store (loopback by default)."""
    with user_errors():
        uri = _uri(tracking)
    artifacts = (project_home() / "mlartifacts").resolve().as_uri()
    console.print(f"MLflow UI for {uri}: http://{host}:{port}")
    command = [
        *(sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri),
        *("--default-artifact-root", artifacts, "--host", host, "--port", str(port)),
    ]
    os.execv(sys.executable, command)  # noqa: S606  replaces this process with the MLflow server
