"""The Typer application and the one place CLI errors become one-line messages."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console

from churnops.artifact import ModelArtifact
from churnops.errors import ChurnopsError

app = typer.Typer(
    name="churnops",
    help="From a customer table to a secure, monitored churn-prediction service.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``message`` as one line on stderr and exit with ``code``."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
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


Command = Callable[..., None]


def project_home() -> Path:
    """The project's data directory (``CHURN_HOME``, default ``.churnops``)."""
    from churnops.config import Settings

    return Settings().home


def tracking_uri(explicit: str | None = None) -> str:
    """``--tracking-uri``, else ``MLFLOW_TRACKING_URI``, else the local SQLite store."""
    from churnops.registry.tracking import resolve_tracking_uri

    return resolve_tracking_uri(explicit, project_home())


def model_path(ref: str, uri: str | None = None) -> Path:
    """A local artifact directory for ``ref``: a directory, or ``models:/NAME@ALIAS|/VERSION``.

    Registry references resolve through MLflow (``uri``, else :func:`tracking_uri`) to a
    verified copy cached under ``HOME/cache/NAME/VERSION``.
    """
    from churnops.registry.models import is_registry_ref, resolve_model

    if not is_registry_ref(ref):
        return Path(ref)
    return resolve_model(ref, tracking_uri(uri), project_home())


def open_model(ref: str, uri: str | None = None) -> ModelArtifact:
    """Load and verify the model ``ref`` names (a directory or a registry reference)."""
    from churnops.artifact import load_artifact

    return load_artifact(model_path(ref, uri))
