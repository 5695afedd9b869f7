"""The Typer application and the one place CLI errors become one-line messages."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from churnops.errors import ChurnopsError

app = typer.Typer(
    name="churnops",
    help="From a customer table to a secure, monitored churn-prediction service.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# --tracking-uri, the same on every command that uses the MLflow store.
UriOption = Annotated[
    str | None,
    typer.Option(
        "--tracking-uri",
        help="MLflow tracking URI [env MLFLOW_TRACKING_URI; default sqlite in .churnops/].",
    ),
]
console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``message`` as one line on stderr and exit with ``code``."""
    # Escaped: a message may hold brackets (an extra such as churnops[dask], a list) that rich
    # would otherwise read as markup and drop.
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn churnops' domain errors into a one-line message and a non-zero exit."""
    try:
        yield
    except ChurnopsError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
