"""``churnops monitor``: the prediction log and the truth about what it predicted."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from churnops.cli.app import app, console, user_errors

monitor_app = typer.Typer(
    help="Monitoring: the prediction log and the ground truth.", no_args_is_help=True
)
app.add_typer(monitor_app, name="monitor")


@monitor_app.command("labels")
def labels(
    data: Annotated[Path, typer.Option("--data", help="CSV or Parquet file with keys and labels.")],
    key_column: Annotated[
        str, typer.Option("--key-column", help="The record key (the ID sent to /predict).")
    ] = "customerID",
    label_column: Annotated[
        str, typer.Option("--label-column", help="The actual label.")
    ] = "Churn",
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            help="Prediction store URL [env CHURN_STORE_URL; default sqlite in "
            ".churnops/monitoring.db].",
        ),
    ] = None,
) -> None:
    """Attach actual labels to logged predictions; print how many were stored and unknown."""
    with user_errors():
        from churnops.config import read_settings
        from churnops.data.io import read_table
        from churnops.monitoring.labels import attach_labels
        from churnops.monitoring.store import default_store_url, shown_url

        settings = read_settings(store_url=store) if store else read_settings()
        url = settings.store_url or default_store_url(settings.home)
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
