"""``churnops monitor``: the prediction log and the truth about what it predicted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from churnops.cli.app import app, console, user_errors

monitor_app = typer.Typer(
    help="Monitoring: the prediction log and the ground truth.", no_args_is_help=True
)
app.add_typer(monitor_app, name="monitor")

StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        help="Prediction store URL [env CHURN_STORE_URL; default: sqlite, HOME/monitoring.db].",
    ),
]
ModelOption = Annotated[
    str, typer.Option("--model", help="The served model: a directory or models:/NAME@ALIAS.")
]
SinceOption = Annotated[
    str | None,
    typer.Option("--since", help="From this time (ISO, UTC by default) or age (7d, 12h)."),
]
UntilOption = Annotated[str | None, typer.Option("--until", help="Up to this time or age.")]
AllVersionsOption = Annotated[
    bool,
    typer.Option("--all-versions", help="Every version of the model's name, not only this one."),
]

KEY_HELP = "The record key (the ID column sent to /predict)."


def _store_url(store: str | None) -> str:
    from churnops.config import read_settings
    from churnops.monitoring.store import default_store_url

    settings = read_settings(store_url=store) if store else read_settings()
    return settings.store_url or default_store_url(settings.home)


@monitor_app.command("labels")
def labels(
    data: Annotated[Path, typer.Option("--data", help="CSV or Parquet file with keys and labels.")],
    key_column: Annotated[str, typer.Option("--key-column", help=KEY_HELP)] = "customerID",
    label_column: Annotated[str, typer.Option("--label-column", help="Actual label.")] = "Churn",
    store: StoreOption = None,
) -> None:
    """Attach actual labels to logged predictions; print how many were stored and unknown."""
    with user_errors():
        from churnops.data.io import read_table
        from churnops.monitoring.labels import attach_labels
        from churnops.monitoring.store import shown_url

        url = _store_url(store)
        frame = read_table(data)
        outcome = attach_labels(url, frame, key_column, label_column, source=data.name)
    console.print(
        f"stored {outcome.stored} labels in {shown_url(url)}; {outcome.unknown} with a key no "
        "logged prediction has (not stored)",
        highlight=False,
        soft_wrap=True,
    )
    if outcome.unknown_keys:
        console.print(
            "unknown keys: " + ", ".join(outcome.unknown_keys)
            + (" …" if outcome.unknown > len(outcome.unknown_keys) else ""),
            highlight=False,
            soft_wrap=True,
        )  # fmt: skip


def _span(store: str | None, model: str, since: str | None, until: str | None, every: bool) -> Any:
    from churnops.workflows.monitoring import Span, parse_time

    return Span(
        _store_url(store), model, parse_time(since, "--since"), parse_time(until, "--until"), every
    )


@monitor_app.command("drift")
def drift(
    model: ModelOption,
    store: StoreOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    all_versions: AllVersionsOption = False,
    report: Annotated[
        Path | None, typer.Option("--report", help="Write a self-contained HTML report here.")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the findings as JSON.")
    ] = None,
    psi: Annotated[float, typer.Option("--psi", help="PSI from which a feature drifts.")] = 0.2,
    alpha: Annotated[
        float, typer.Option("--alpha", help="Significance level, shared by all tests.")
    ] = 0.01,
) -> None:
    """Compare logged requests with the model's training profile; exit 1 when anything drifts.

    A feature drifts when its PSI reaches --psi and its test (KS for numbers, chi² for
    categories) is significant at --alpha shared over all features; unseen categories, missing
    values and values out of the training range are data-quality findings.
    """
    with user_errors():
        from dataclasses import replace

        from churnops.monitoring.drift import DriftThresholds
        from churnops.workflows.monitoring import drift as check

        thresholds = replace(DriftThresholds(), psi_alarm=psi, alpha=alpha)
        found, html, window = check(_span(store, model, since, until, all_versions), thresholds)
        if report is not None:
            report.write_text(html, encoding="utf-8")
        if json_out is not None:
            json_out.write_text(json.dumps(found.to_json(), indent=2) + "\n", encoding="utf-8")
    console.print(f"{window.rows} logged predictions checked", highlight=False)
    for finding in found.findings:
        console.print(f"  {finding.severity}: {finding.message}", highlight=False, soft_wrap=True)
    if report is not None:
        console.print(f"report: {report}")
    if found.any_alarm:
        console.print(f"DRIFT: {', '.join(found.flagged) or 'see the findings'}", highlight=False)
        raise typer.Exit(1)
    console.print("no drift")


@monitor_app.command("performance")
def performance(
    model: ModelOption,
    period: Annotated[
        str, typer.Option("--period", help="Group by: D (day), W (week), h (hour), none.")
    ] = "D",
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the figures as JSON.")
    ] = None,
    store: StoreOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    all_versions: AllVersionsOption = False,
) -> None:
    """ROC AUC, log loss, F1 and calibration on logged predictions, per period, against training.

    Realised figures need labels (churnops monitor labels, POST /feedback); the estimate beside
    them comes from the probabilities alone and is there before any label arrives.
    """
    with user_errors():
        from churnops.monitoring.performance import frame
        from churnops.workflows.monitoring import performance as measure

        span = _span(store, model, since, until, all_versions)
        artifact, rows = measure(span, None if period.lower() == "none" else period)
        if json_out is not None:
            json_out.write_text(json.dumps(rows, indent=2, default=str) + "\n", encoding="utf-8")
    trained = artifact.manifest.test_metrics
    console.print(
        "training (held-out): "
        + ", ".join(f"{k} {trained[k]:.4f}" for k in ("roc_auc", "log_loss", "f1") if k in trained),
        highlight=False,
    )
    figures = frame(rows)
    table = Table(*figures.columns)
    for values in figures.itertuples(index=False):
        table.add_row(
            *(
                "-" if v is None or v != v else f"{v:.4f}" if isinstance(v, float) else str(v)
                for v in values
            )
        )
    console.print(table)
