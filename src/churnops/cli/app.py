"""The Typer application and the one place CLI errors become one-line messages."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from churnops.errors import ChurnopsError

# Commands in the order of the work: data, a model, its registry, scoring, the service, its
# monitoring, retraining; then the tools around them. Commands not listed follow, as registered.
COMMAND_ORDER = ("data", "train", "report", "models", "predict", "serve", "monitor", "retrain",
                 "reproduce", "ui")  # fmt: skip
# Width given to output that is not a terminal: wide enough that no line or table row wraps.
UNWRAPPED_WIDTH = 1000
# Versions `churnops --version` reports besides churnops' own.
KEY_LIBRARIES = ("flaml", "lightgbm", "scikit-learn", "pandas", "mlflow", "fastapi", "uvicorn",
                 "typer")  # fmt: skip


class WorkflowGroup(TyperGroup):
    """Lists commands in :data:`COMMAND_ORDER` and turns a missing optional library into a line."""

    # ctx is a Context of the click that typer vendors (typer._click, private): Any here.
    def list_commands(self, ctx: Any) -> list[str]:
        rank = {name: index for index, name in enumerate(COMMAND_ORDER)}
        return sorted(super().list_commands(ctx), key=lambda name: rank.get(name, len(rank)))

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] == "churnops":
                raise  # churnops' own module: a bug to report with its traceback
            fail(missing_module_message(exc))


app = typer.Typer(
    name="churnops",
    cls=WorkflowGroup,
    help="From a customer table to a secure, monitored churn-prediction service.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    # Plain help: text shows as written ([default: …], [env …] included), flags as flags.
    rich_markup_mode=None,
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


def missing_module_message(exc: ModuleNotFoundError) -> str:
    """One line naming the missing module and the churnops extra that installs it."""
    module = (exc.name or "").split(".")[0] or str(exc)
    extra = extra_providing(module)
    if extra is not None:
        return (
            f"this command needs the {extra!r} extra (no module {module!r}): "
            f"pip install 'churnops[{extra}]'"
        )
    return (
        f"no module {module!r}: reinstall churnops with its extras, "
        "e.g. pip install 'churnops[train]'"
    )


# Import names that differ from the distribution's name.
_DISTRIBUTION_OF = {"sklearn": "scikit-learn", "xgboost": "xgboost-cpu"}


def extra_providing(module: str) -> str | None:
    """The churnops extra (``train``, ``postgres``) that installs ``module``, if any.

    Read from churnops' own package metadata, so it follows pyproject.toml.
    """
    from importlib.metadata import PackageNotFoundError, requires

    wanted = _normal(_DISTRIBUTION_OF.get(module, module))
    try:
        requirements = requires("churnops") or []
    except PackageNotFoundError:
        return None
    for text in requirements:
        match = _EXTRA_REQUIREMENT.match(text)
        if match and _normal(match["name"]) == wanted and match["extra"] != "dev":
            return match["extra"]
    return None


# A requirement of an extra, as package metadata writes it: 'pandas==3.1.1; extra == "train"'.
_EXTRA_REQUIREMENT = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*).*;\s*extra\s*==\s*[\"'](?P<extra>[^\"']+)[\"']"
)


def _normal(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _show_version(value: bool) -> None:
    if not value:
        return
    from importlib.metadata import PackageNotFoundError, version
    from platform import python_version

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    libraries = ", ".join(f"{name} {installed(name)}" for name in KEY_LIBRARIES)
    console.print(
        f"churnops {installed('churnops')} (Python {python_version()}; {libraries})",
        highlight=False,
        soft_wrap=True,
    )
    raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            is_eager=True,
            callback=_show_version,
            help="Show the version of churnops and of its key libraries, then exit.",
        ),
    ] = False,
) -> None:
    # Output that is not a terminal (a log, a pipe) is never wrapped: long lines (paths, URLs,
    # passwords) and table rows stay whole for whoever reads or parses them.
    for shown in (console, err_console):
        if not shown.is_terminal:
            shown.soft_wrap = True
            shown.width = UNWRAPPED_WIDTH
