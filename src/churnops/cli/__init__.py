"""Command-line interface: thin commands over library functions.

Each module registers its commands on :data:`churnops.cli.app.app`.
"""

from __future__ import annotations

from churnops.cli import data, models, monitor, report, serve, train  # noqa: F401  (register)
from churnops.cli.app import app


def main() -> None:
    """Entry point of the ``churnops`` console script."""
    app()
