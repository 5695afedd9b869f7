"""Reading an artifact: every file verified against the manifest before anything is parsed.

Every file is hashed and compared with the manifest before anything is deserialized; any
difference (changed, missing or unlisted file) refuses the whole artifact. Nothing here imports
pandas or scikit-learn, so the serving process can verify and read artifacts cheaply.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from churnops.artifact.manifest import (
    MANIFEST,
    MANIFEST_DIGEST,
    PIPELINE_FILE,
    SERVING_MODEL_SUFFIXES,
    SERVING_SPEC,
    FileEntry,
    Manifest,
    parse_manifest,
)
from churnops.errors import ArtifactError, IntegrityError
from churnops.schema import Schema


def sha256_bytes(data: bytes) -> str:
    """Return the hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class ModelArtifact:
    """A verified model directory.

    Obtain one from :func:`load_artifact` (verifies) or :func:`write_artifact`.
    """

    path: Path
    manifest: Manifest
    schema: Schema
    # Read from the manifest once: the model's name, its version (creation time and a digest of
    # the files), the threshold on the positive label's probability, the held-out metrics,
    # whether it learned from generated customers, and its files with their sha256 and size.
    name: str
    version: str
    threshold: float
    metrics: dict[str, Any]
    synthetic: bool
    files: dict[str, FileEntry]

    @classmethod
    def of(cls, path: Path, manifest: Manifest) -> ModelArtifact:
        """The artifact at ``path`` described by the (verified) ``manifest``."""
        return cls(
            path, manifest, Schema.from_dict(manifest.schema_), manifest.name, manifest.version,
            manifest.threshold.value, dict(manifest.metrics), manifest.data.synthetic,
            dict(manifest.files),
        )  # fmt: skip

    def read_bytes(self, name: str) -> bytes:
        """Return a listed file's bytes after checking them against the manifest again.

        Reading and checking the same bytes means what is deserialized is what was verified.
        """
        entry = self.files.get(name)
        if entry is None:
            raise ArtifactError(f"{self.path}: {name} is not part of this artifact")
        data = _read(self.path / name)
        if sha256_bytes(data) != entry.sha256:
            raise IntegrityError(f"{self.path / name}: sha256 does not match the manifest")
        return data

    def read_json(self, name: str) -> Any:
        """Return a listed JSON file, verified."""
        return json.loads(self.read_bytes(name))

    def load_pipeline(self) -> Any:
        """Deserialize the fitted scikit-learn Pipeline (joblib), from verified bytes.

        Needs the training extra (scikit-learn, FLAML, LightGBM) installed.
        """
        import joblib  # only here: the serving fast path never unpickles

        return joblib.load(io.BytesIO(self.read_bytes(PIPELINE_FILE)))


def load_artifact(path: str | Path) -> ModelArtifact:
    """Open a model directory after verifying every file against its manifest.

    Raises
    ------
    ArtifactError
        The directory is missing or is not a churnops model.
    IntegrityError
        A file was changed, removed or added since the model was written; the message names it.
    """
    root = Path(path)
    if not root.is_dir():
        raise ArtifactError(f"model directory not found: {root}")
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        raise ArtifactError(f"{root}: no {MANIFEST}; not a churnops model directory")
    manifest_bytes = _read(manifest_path)
    _check_manifest_digest(root, manifest_bytes)
    try:
        raw = json.loads(manifest_bytes)
    except ValueError as exc:
        raise ArtifactError(f"{manifest_path}: not valid JSON ({exc})") from exc
    listed = raw.get("files", {}) if isinstance(raw, dict) else None
    if not isinstance(listed, dict) or not all(isinstance(e, dict) for e in listed.values()):
        raise ArtifactError(f"{manifest_path}: 'files' is not a mapping of file entries")
    manifest = parse_manifest(raw, str(manifest_path))
    for name in sorted(listed):
        problem = _name_problem(name)
        if problem is not None:
            raise ArtifactError(f"{manifest_path}: invalid file name {name!r} ({problem})")
    for name, entry in sorted(listed.items()):
        file = root / name
        if not file.is_file():
            raise IntegrityError(f"{file}: listed in the manifest but missing")
        if sha256_bytes(_read(file)) != entry.get("sha256"):
            raise IntegrityError(f"{file}: sha256 does not match the manifest (file was changed)")
    on_disk = {
        p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() or p.is_symlink()
    }
    unlisted = sorted(on_disk - set(listed) - {MANIFEST, MANIFEST_DIGEST})
    if unlisted:
        raise IntegrityError(f"{root / unlisted[0]}: file not listed in the manifest")
    if SERVING_SPEC in listed:
        _check_serving_spec(root, listed)
    return ModelArtifact.of(root, manifest)


def _name_problem(name: object) -> str | None:
    """Why ``name`` cannot be an artifact file name, or None when it can.

    Names are relative POSIX paths inside the directory: no absolute paths, backslashes, empty,
    ``.`` or ``..`` parts, so a manifest can never make the reader open a file elsewhere.
    """
    if not isinstance(name, str) or not name:
        return "not a non-empty string"
    if name in (MANIFEST, MANIFEST_DIGEST):
        return "reserved for the manifest"
    if "\\" in name or "\x00" in name:
        return "backslash or NUL in the name"
    if name.startswith("/"):
        return "absolute path"
    if any(part in ("", ".", "..") for part in name.split("/")):
        return "empty, '.' or '..' path component"
    return None


def _check_serving_spec(root: Path, listed: Mapping[str, Any]) -> None:
    """Check the file names in the serving spec before any runtime reads what they name.

    The spec is already verified against the manifest; this refuses a spec that is signed but
    wrong: a model file that is not part of the artifact, or not of its runtime's kind.
    """
    spec_path = root / SERVING_SPEC
    try:
        spec = json.loads(_read(spec_path))
    except ValueError as exc:
        raise ArtifactError(f"{spec_path}: not valid JSON ({exc})") from None
    if not isinstance(spec, dict):
        raise ArtifactError(f"{spec_path}: not a serving spec (expected a JSON object)")
    _check_model_entry(spec_path, spec, listed, spec.get("layout_file"))
    compiled = spec.get("compiled")
    if compiled is not None:
        if not isinstance(compiled, dict):
            raise ArtifactError(f"{spec_path}: compiled must be an object, got {compiled!r}")
        if "unavailable" not in compiled:
            _check_model_entry(spec_path, compiled, listed, spec.get("layout_file"), "compiled ")
            if compiled["model_file"] == spec["model_file"]:
                raise ArtifactError(f"{spec_path}: compiled model_file is the text model")
    positive = spec.get("positive_index")
    if type(positive) is not int or positive not in (0, 1):
        raise ArtifactError(f"{spec_path}: positive_index must be 0 or 1, got {positive!r}")
    classes = spec.get("classes")
    if not isinstance(classes, list) or len(classes) != 2:
        raise ArtifactError(f"{spec_path}: classes must list the two classes, got {classes!r}")


def _check_model_entry(
    spec_path: Path,
    entry: Mapping[str, Any],
    listed: Mapping[str, Any],
    layout_file: object,
    prefix: str = "",
) -> None:
    """Check one runtime and model file named by the spec (the main one or the compiled one)."""
    runtime = entry.get("runtime")
    if runtime not in SERVING_MODEL_SUFFIXES:
        known = ", ".join(SERVING_MODEL_SUFFIXES)
        raise ArtifactError(
            f"{spec_path}: unknown {prefix}serving runtime {runtime!r} (known: {known})"
        )
    for key, name in (("model_file", entry.get("model_file")), ("layout_file", layout_file)):
        if name is None and key == "layout_file":
            continue
        problem = _name_problem(name)
        if problem is None and name not in listed:
            problem = "not a file of this artifact"
        elif problem is None and name in (SERVING_SPEC, PIPELINE_FILE):
            problem = "not a serving model or layout file"
        if problem is not None:
            raise ArtifactError(f"{spec_path}: {prefix}{key} {name!r} is refused: {problem}")
    model_file = str(entry["model_file"])
    suffix = SERVING_MODEL_SUFFIXES[runtime]
    if not model_file.endswith(suffix) or model_file == layout_file:
        raise ArtifactError(
            f"{spec_path}: {prefix}model_file {model_file!r} is refused: a {runtime} model is a "
            f"{suffix} file"
        )


def _digest_line(manifest_bytes: bytes) -> bytes:
    """The manifest's digest in ``sha256sum`` format, so ``sha256sum -c`` can check it too."""
    return f"{sha256_bytes(manifest_bytes)}  {MANIFEST}\n".encode()


def _check_manifest_digest(root: Path, manifest_bytes: bytes) -> None:
    digest_path = root / MANIFEST_DIGEST
    if not digest_path.is_file():
        raise IntegrityError(f"{digest_path}: missing; the manifest cannot be verified")
    recorded = _read(digest_path)
    if recorded != _digest_line(manifest_bytes):
        if recorded.split()[:1] == _digest_line(manifest_bytes).split()[:1]:
            raise IntegrityError(f"{digest_path}: altered (expected exactly one sha256sum line)")
        raise IntegrityError(
            f"{root / MANIFEST}: sha256 does not match {MANIFEST_DIGEST} (file was changed)"
        )


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ArtifactError(f"{path}: cannot read ({exc.strerror})") from exc
