"""Local database files churnops creates: their folder made ready, their creation locked."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from churnops.errors import ConfigError


def prepare_database_file(path: Path, what: str) -> None:
    """Create ``path``'s folder; raise one ConfigError, starting with ``what``, if it cannot be."""
    if path.is_dir():
        raise ConfigError(f"{what}: {path} is a directory, not a database file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{what}: cannot create {path.parent} ({exc.strerror})") from None
    if not os.access(path.parent, os.W_OK):
        raise ConfigError(f"{what}: {path.parent} is not writable")


@contextmanager
def creation_lock(path: Path, what: str, timeout: float) -> Iterator[None]:
    """Hold the inter-process lock file ``path`` while ``what`` is created or migrated.

    Raises one ConfigError, starting with ``what``, when another process keeps it longer than
    ``timeout`` seconds or the lock file cannot be made.
    """
    from filelock import FileLock, Timeout

    lock = FileLock(str(path), timeout=timeout)
    try:
        lock.acquire()
    except Timeout:
        raise ConfigError(
            f"{what}: another process has held its lock {path} for over {timeout:.0f} s while "
            "creating it; try again when it has finished"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{what}: cannot lock {path} ({exc})") from None
    try:
        yield
    finally:
        lock.release()
