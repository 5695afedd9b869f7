"""Where a model came from: the code's git commit and the library versions in use."""

from __future__ import annotations

import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

TRACKED_LIBRARIES = (
    "churnops",
    "numpy",
    "pandas",
    "scikit-learn",
    "lightgbm",
    "flaml",
    "joblib",
    "scipy",
)


def library_versions(names: tuple[str, ...] = TRACKED_LIBRARIES) -> dict[str, str]:
    """Return the installed version of Python and of each library (absent ones left out)."""
    found = {"python": platform.python_version()}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def git_state(start: Path | None = None) -> dict[str, object]:
    """Return ``{"commit": sha or None, "dirty": bool or None}`` of the code's repository.

    Looks at the repository holding the churnops source (an editable install or a clone);
    an installed wheel has none.
    """
    where = start or Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],  # noqa: S607  git from PATH, as a user runs it
            cwd=where,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],  # noqa: S607
            cwd=where,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit or None, "dirty": bool(status.strip())}
