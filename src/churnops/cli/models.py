"""``churnops models``, ``churnops reproduce`` and ``churnops ui``: the MLflow registry."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from churnops.cli.app import UriOption, app, console, err_console, fail, user_errors
from churnops.workflows.models import project_home, tracking_uri

models_app = typer.Typer(
    help="Registered models: versions and aliases (champion is what gets served).",
    no_args_is_help=True,
)
app.add_typer(models_app, name="models")

EXIT_DIFFERENT = 3


def _uri(explicit: str | None) -> str:
    from churnops.registry.tracking import check_tracking

    uri = tracking_uri(explicit)
    check_tracking(uri)
    return uri


@models_app.command("list")
def list_models(
    name: Annotated[str | None, typer.Argument(help="Only this model.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON array (one object per version).")
    ] = False,
    tracking: UriOption = None,
) -> None:
    """List registered versions with their aliases, held-out metrics and data."""
    with user_errors():
        from churnops.registry.models import list_versions

        versions = list_versions(_uri(tracking), name)
    if as_json:
        typer.echo(json.dumps([v.to_dict() for v in versions], indent=2))
        return
    if not versions:
        console.print("no registered models" + (f" named {name!r}" if name else ""))
        return
    table = Table("model", "version")
    table.add_column("aliases", no_wrap=True, min_width=len("champion, challenger"))
    for column in ("ROC AUC", "log loss", "F1", "data sha256", "created", "run"):
        table.add_column(column, no_wrap=column in ("created", "run"))
    for v in versions:
        created = dt.datetime.fromtimestamp(v.created / 1000).strftime("%Y-%m-%d %H:%M")
        table.add_row(
            v.name, v.version, ", ".join(v.aliases) or "-",
            _fmt(v.metrics.get("test.roc_auc")), _fmt(v.metrics.get("test.log_loss")),
            _fmt(v.metrics.get("test.f1")), v.data_sha256[:12] or "-", created, v.run_id[:12],
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
    console.print(
        f"registered run {run_id} as {name} version {version} "
        f"(promote: churnops models promote {name} {version})"
    )


@models_app.command("promote")
def promote(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[str, typer.Argument(help="Version to promote.")],
    alias: Annotated[
        str,
        typer.Option(
            "--alias",
            help="Any alias (letters, digits, _ and -): champion is what gets served, "
            "challenger the usual contender, or your own such as staging.",
        ),
    ] = "champion",
    tracking: UriOption = None,
) -> None:
    """Point an alias (default champion, what gets served) at a version."""
    with user_errors():
        from churnops.registry.models import promote as promote_version

        previous = promote_version(name, version, _uri(tracking), alias)
    was = f" (was version {previous})" if previous else ""
    console.print(f"{name}@{alias} → version {version}{was}")


@models_app.command("unalias")
def unalias(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    alias: Annotated[str, typer.Argument(help="The alias to remove.")],
    tracking: UriOption = None,
) -> None:
    """Remove an alias from a model (its version stays registered)."""
    with user_errors():
        from churnops.registry.models import remove_alias

        version = remove_alias(name, alias, _uri(tracking))
    console.print(f"{name}@{alias} removed (it pointed at version {version})")


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
    ref: Annotated[
        str,
        typer.Argument(
            help="MLflow run id, churnops model version, or models:/NAME/VERSION or @ALIAS."
        ),
    ],
    data: Annotated[Path, typer.Option("--data", help="The data file to refit on.")],
    allow_data_change: Annotated[
        bool,
        typer.Option("--allow-data-change", help="Refit even if the file is not the recorded one."),
    ] = False,
    out: Annotated[
        Path | None, typer.Option("--out", help="Also export the refit as an artifact here.")
    ] = None,
    tracking: UriOption = None,
) -> None:
    """Refit a recorded configuration on DATA and report whether its predictions match.

    Exits with status 3 when the refit's held-out predictions differ from the recorded model's.
    """
    with user_errors():
        from churnops.registry.reproduce import MATCH_TOLERANCE, recorded_model
        from churnops.registry.reproduce import reproduce as refit

        uri = _uri(tracking)
        run_id, recorded = recorded_model(ref, uri, project_home())
        settings = recorded.manifest.settings.automl
        console.print(
            f"recorded: {recorded.name} {recorded.version} (run {run_id}), "
            f"data {recorded.manifest.data.sha256[:12]}…, seed {settings.get('seed')}, "
            f"max_iter {settings.get('max_iter')}, time budget {settings.get('time_budget')}"
        )
        report = refit(recorded, data, allow_data_change)
        for warning in report.warnings:
            err_console.print(f"[yellow]warning:[/] {warning}", highlight=False)
        if out is not None:
            from churnops.pipeline.train import export_model

            exported = export_model(report.refit, out, name=recorded.name)
            console.print(f"refit exported to {exported.path} (version {exported.version})")
    then = recorded.metrics.get("test", {})
    now = report.refit.metrics
    console.print(
        "held-out ROC AUC / log loss: recorded "
        f"{then.get('roc_auc', float('nan')):.6f} / {then.get('log_loss', float('nan')):.6f}, "
        f"refit {now.get('roc_auc', float('nan')):.6f} / {now.get('log_loss', float('nan')):.6f}"
    )
    verdict = "MATCH" if report.matches else "DIFFERENT"
    console.print(
        f"{verdict}: max |Δp| {report.max_abs_difference:.3g} over {report.rows_compared} "
        f"held-out rows (tolerance {MATCH_TOLERANCE:g}); "
        f"labels {'equal' if report.labels_equal else 'differ'}"
    )
    if not report.matches:
        raise typer.Exit(EXIT_DIFFERENT)


@app.command()
def ui(
    host: Annotated[str, typer.Option("--host", help="Interface (loopback by default).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option("--port", help="Port.")] = 5000,
    tracking: UriOption = None,
) -> None:
    """Start the MLflow UI on the configured tracking store."""
    with user_errors():
        from churnops.registry.tracking import artifact_root

        uri = _uri(tracking)
        if uri.startswith(("http://", "https://")):
            fail(f"{uri} is a tracking server already: open it in a browser")
        root = (
            artifact_root(uri, project_home())
            or (project_home() / "mlartifacts").resolve().as_uri()
        )
    if host not in ("127.0.0.1", "localhost", "::1"):
        err_console.print(
            f"[bold yellow]warning:[/] the MLflow UI has no authentication; it listens on {host}"
        )
    console.print(f"MLflow UI for {uri}: http://{host}:{port}")
    command = [
        *(sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri),
        *("--default-artifact-root", str(root), "--host", host, "--port", str(port)),
    ]
    sys.stdout.flush()
    os.execv(sys.executable, command)  # noqa: S606  replaces this process with the MLflow UI


@app.command()
def retrain(
    data: Annotated[Path, typer.Option("--data", help="Fresh churn table (CSV or Parquet).")],
    model: Annotated[
        str, typer.Option("--model", help="The alias to challenge: models:/NAME@champion.")
    ],
    metric: Annotated[
        str, typer.Option("--metric", help="Compared on the fresh rows: roc_auc or log_loss.")
    ] = "roc_auc",
    margin: Annotated[
        float, typer.Option("--margin", help="How much better the challenger must be.")
    ] = 0.0,
    force: Annotated[
        bool, typer.Option("--force", help="Promote the challenger whatever its figures.")
    ] = False,
    holdout: Annotated[
        float, typer.Option("--holdout", help="Share of rows set aside to compare both.")
    ] = 0.2,
    time_budget: Annotated[
        float | None, typer.Option("--time-budget", min=1, help="Search seconds [default 60].")
    ] = None,
    max_iter: Annotated[int | None, typer.Option("--max-iter", min=1, help="Trials.")] = None,
    estimators: Annotated[str | None, typer.Option("--estimators", help="As for train.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of splits and search.")] = 42,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Challenger artifact [default: HOME/models/NAME-challenger]."),
    ] = None,
    tracking: UriOption = None,
) -> None:
    """Train a challenger on DATA; promote it over the champion only if it does better.

    Both are scored on the same fresh rows (set aside before training, never fitted on). The
    challenger is registered either way; the decision and both models' figures are recorded on
    its MLflow run.
    """
    from churnops.cli.train import automl_settings

    with user_errors():
        from churnops.workflows.retraining import RetrainRequest
        from churnops.workflows.retraining import retrain as run_retrain

        uri = _uri(tracking)
        settings = automl_settings(time_budget, max_iter, None, estimators, seed)
        request = RetrainRequest(
            data=data,
            model=model,
            settings=settings,
            tracking_uri=uri,
            out=out,
            metric=metric,
            margin=margin,
            force=force,
            holdout=holdout,
        )
        outcome = run_retrain(request)
    console.print(f"compared on {outcome.rows} fresh rows neither model was fitted on:")
    for key in ("roc_auc", "log_loss", "f1"):
        console.print(
            f"  {key}: champion (version {outcome.champion_version}) "
            f"{outcome.champion[key]:.4f}, challenger (version {outcome.challenger_version}) "
            f"{outcome.challenger[key]:.4f}"
        )
    verdict = "PROMOTED" if outcome.promoted else "KEPT the champion"
    console.print(
        f"{verdict}: {outcome.reason}; {outcome.name}@{outcome.alias} → version "
        f"{outcome.challenger_version if outcome.promoted else outcome.champion_version} "
        f"(MLflow run {outcome.run_id})"
    )
