"""Writing an artifact: files and the manifest listing their hashes, swapped in at once."""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from churnops.artifact.manifest import (
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    MANIFEST_DIGEST,
    REPORT_FILE,
    REPORT_HTML_FILE,
    ModelDescription,
)
from churnops.artifact.reader import (
    ModelArtifact,
    _digest_line,
    _name_problem,
    load_artifact,
    sha256_bytes,
)
from churnops.errors import ArtifactError, ArtifactExistsError

# The files that describe a model without changing what it does: they may be rewritten in place.
REPORT_FILES = (REPORT_FILE, REPORT_HTML_FILE)


def write_artifact(
    out_dir: str | Path,
    files: Mapping[str, bytes],
    description: ModelDescription,
    overwrite: bool = True,
) -> ModelArtifact:
    """Write ``files`` and a manifest listing their hashes to ``out_dir``.

    ``description`` gives everything but ``format``, ``version``, ``created_at`` and ``files``,
    which are filled in here. The directory is built beside ``out_dir`` and swapped in at the
    end, so a failure leaves an existing artifact at ``out_dir`` untouched. With ``overwrite``
    false, an ``out_dir`` that holds anything when the new directory is moved in is left as it
    is (one rename, which fails if it is there: no check-then-write race).

    Raises
    ------
    ArtifactExistsError
        ``overwrite`` is false and ``out_dir`` exists and is not empty.
    """
    return _write(Path(out_dir), files, description, None, overwrite)


def rewrite_reports(artifact: ModelArtifact, reports: Mapping[str, bytes]) -> ModelArtifact:
    """Write ``artifact`` again in place with its reports (``REPORT_FILES``) added or replaced.

    Every other file is copied from its verified bytes and the manifest lists the new hashes.
    The model's version and creation time are kept: a report describes the model, it does not
    change what the model answers, so the prediction log, drift history and registry tags that
    name this version still name it.
    """
    refused = sorted(set(reports) - set(REPORT_FILES))
    if refused:
        raise ArtifactError(f"{refused[0]} is not a report file; only reports can be rewritten")
    files = {name: artifact.read_bytes(name) for name in artifact.files}
    files.update(reports)
    manifest = artifact.manifest
    return _write(
        artifact.path,
        files,
        manifest.description(),
        (manifest.version, manifest.created_at),
        overwrite=True,
    )


def _write(
    out: Path,
    files: Mapping[str, bytes],
    description: ModelDescription,
    identity: tuple[str, str] | None,
    overwrite: bool,
) -> ModelArtifact:
    for name in files:
        problem = _name_problem(name)
        if problem is not None:
            raise ArtifactError(f"invalid artifact file name {name!r}: {problem}")
    if not overwrite and occupied(out):
        raise ArtifactExistsError(f"{out} already exists; not replacing it")
    if out.exists() and not (
        out.is_dir() and (not any(out.iterdir()) or (out / MANIFEST).exists())
    ):
        raise ArtifactError(f"{out} exists and is not a churnops model directory; not overwriting")
    listing = {
        name: {"sha256": sha256_bytes(data), "bytes": len(data)}
        for name, data in sorted(files.items())
    }
    if identity is None:
        created = datetime.now(UTC)
        content_digest = sha256_bytes(json.dumps(listing, sort_keys=True).encode())
        identity = (
            f"{created:%Y%m%d%H%M%S}-{content_digest[:8]}",
            created.isoformat(timespec="seconds").replace("+00:00", "Z"),
        )
    full: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "version": identity[0],
        "created_at": identity[1],
    }
    described = description.to_json()
    full.update({k: v for k, v in described.items() if k not in full and k != "files"})
    full["files"] = listing
    manifest_bytes = (
        json.dumps(full, indent=2, sort_keys=False, default=_json_default) + "\n"
    ).encode()

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for name, data in files.items():
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        (staging / MANIFEST).write_bytes(manifest_bytes)
        (staging / MANIFEST_DIGEST).write_bytes(_digest_line(manifest_bytes))
        os.chmod(staging, 0o755)  # noqa: S103  mkdtemp's 0700 would hide the model from a server user
        if overwrite:
            _swap_in(staging, out)
        else:
            _move_in(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return load_artifact(out)


def occupied(path: Path) -> bool:
    """Whether ``path`` exists and is not an empty directory."""
    return path.exists() and not (path.is_dir() and not any(path.iterdir()))


def _move_in(staging: Path, out: Path) -> None:
    # rename(2) replaces an empty directory and fails on anything else: atomic "create only".
    try:
        staging.rename(out)
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
            raise ArtifactExistsError(
                f"{out} appeared while the model was being written; not replacing it"
            ) from None
        raise


def _swap_in(staging: Path, out: Path) -> None:
    if not out.exists():
        staging.rename(out)
        return
    retired = out.with_name(f".{out.name}.old-{os.getpid()}")
    out.rename(retired)
    try:
        staging.rename(out)
    except BaseException:
        retired.rename(out)
        raise
    shutil.rmtree(retired, ignore_errors=True)


def _json_default(value: Any) -> Any:
    # numpy scalars and arrays from FLAML configs and metrics
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in a manifest")
