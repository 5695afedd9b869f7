"""``churnops data``: the embedded synthetic customers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from churnops.cli.app import app, console, user_errors

data_app = typer.Typer(help="Data helpers: synthetic Telco-like customers.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("sample")
def sample(
    out: Annotated[Path, typer.Option("--out", help="CSV or Parquet file to write.")],
    rows: Annotated[int, typer.Option("--rows", min=1, help="Number of customers.")] = 5000,
    seed: Annotated[int, typer.Option("--seed", help="Seed; same seed, same customers.")] = 0,
) -> None:
    """Write synthetic customers with the IBM Telco schema (not real data)."""
    with user_errors():
        from churnops.data.io import write_table
        from churnops.data.sample import generate_customers

        frame = generate_customers(rows, seed=seed)
        path = write_table(frame, out)
    churn = (frame["Churn"] == "Yes").mean()
    console.print(
        f"wrote {rows} [bold yellow]synthetic[/] customers to {path} "
        f"(seed {seed}, churn rate {churn:.1%})"
    )
