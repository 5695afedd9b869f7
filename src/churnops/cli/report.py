"""``churnops report``: (re)build a model's self-contained HTML training report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from churnops.cli.app import UriOption, app, console, user_errors


@app.command("report")
def report(
    ref: Annotated[
        str,
        typer.Argument(help="Model directory, or models:/NAME@ALIAS (or /VERSION) with --out."),
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write the page to this file and leave the artifact as it is."),
    ] = None,
    tracking: UriOption = None,
) -> None:
    """Build the model's HTML training report again from what its artifact stores.

    Without --out the artifact's report.html is replaced and its manifest updated, so the
    artifact still verifies (its version is kept). A tampered artifact, or one written before
    reports were, is refused.
    """
    with user_errors():
        from churnops.workflows.reports import build_report

        outcome = build_report(ref, out, tracking)
    what = "rebuilt" if outcome.changed else "rebuilt, unchanged"
    where = " (artifact verified)" if outcome.in_artifact else ""
    console.print(
        f"report {what}: {outcome.path}{where} — model {outcome.model} version {outcome.version}",
        highlight=False,
        soft_wrap=True,
    )
