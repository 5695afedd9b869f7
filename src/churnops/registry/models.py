"""Registered models: versions, aliases, rollback, resolution.

Any alias MLflow accepts can be set (:func:`check_alias`); ``champion`` is what gets served and
retrained against by default, and the only one with a history to roll back.

A version's source is the MLflow model logged with its run (``model/``: a pyfunc holding the
churnops artifact, see :mod:`churnops.registry.pyfunc`), or for runs recorded before that form,
the bare artifact directory. Resolving ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``
downloads it once into a local cache, keeping the artifact in ``HOME/cache/NAME/VERSION``, and
verifies every file against its manifest (:func:`churnops.artifact.load_artifact`), so a
registry or cache that was tampered with is refused like any other changed artifact.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from churnops.artifact import MANIFEST, load_artifact
from churnops.errors import ArtifactError, ConfigError, IntegrityError
from churnops.registry.pyfunc import MLMODEL, artifact_directory, save_mlflow_model
from churnops.registry.tracking import (
    ARTIFACT_PATH,
    DEFAULT_HOME,
    MODEL_VERSION_TAG,
    TAG,
    check_tracking,
    client,
    mlflow_errors,
    resolve_tracking_uri,
)

UPGRADE_PATH = "mlflow_model"  # the MLflow model added to a run recorded before that form
CHAMPION = "champion"
HISTORY_TAG = f"{TAG}champion_history"  # registered-model tag: versions that held champion
HISTORY_LIMIT = 50
_REF = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]*)|/(?P<version>\d+))$")
# MLflow's rules for an alias (mlflow.utils.validation): letters, digits, _ and -, at most 255
# characters; "latest" and "v<number>" are reserved, as they name versions.
_ALIAS = re.compile(r"^[\w-]+$")
_VERSION_ALIAS = re.compile(r"^[vV]\d+$")
ALIAS_MAX_LENGTH = 255


@dataclass(frozen=True)
class ModelRef:
    """A parsed ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION`` reference."""

    name: str
    alias: str | None = None
    version: str | None = None


@dataclass(frozen=True)
class VersionInfo:
    """One registered model version, as ``churnops models list`` shows it."""

    name: str
    version: str
    aliases: tuple[str, ...]
    run_id: str
    created: int  # milliseconds since the epoch
    metrics: dict[str, float]
    data_sha256: str
    model_version: str
    source: str = ""  # where the registry keeps the version's model

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``churnops models list --json``); ``created`` in ISO 8601 UTC."""
        created = dt.datetime.fromtimestamp(self.created / 1000, dt.UTC)
        return {
            "name": self.name,
            "version": self.version,
            "aliases": list(self.aliases),
            "run_id": self.run_id,
            "created": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "metrics": dict(sorted(self.metrics.items())),
            "data_sha256": self.data_sha256 or None,
            "model_version": self.model_version or None,
            "source": self.source,
        }


def check_alias(alias: str) -> str:
    """Return ``alias`` if MLflow accepts it as an alias name; raise ConfigError otherwise."""
    if not _ALIAS.match(alias):
        raise ConfigError(
            f"alias {alias!r}: use letters, digits, '_' and '-' only (e.g. champion, staging-eu)"
        )
    if len(alias) > ALIAS_MAX_LENGTH:
        raise ConfigError(f"alias {alias[:20]!r}…: at most {ALIAS_MAX_LENGTH} characters")
    if alias.lower() == "latest" or _VERSION_ALIAS.match(alias):
        raise ConfigError(f"alias {alias!r} is reserved by MLflow (it would read as a version)")
    return alias


def is_registry_ref(ref: str) -> bool:
    """True for ``models:/…`` references."""
    return ref.startswith("models:/")


def parse_ref(ref: str) -> ModelRef:
    """Parse ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``; raise ConfigError otherwise."""
    match = _REF.match(ref)
    if match is None or match["name"] in (".", ".."):
        raise ConfigError(f"{ref!r}: expected models:/NAME@ALIAS or models:/NAME/VERSION")
    alias = match["alias"]
    if alias is not None:
        try:
            check_alias(alias)
        except ConfigError as exc:
            raise ConfigError(f"{ref!r}: {exc}") from None
    return ModelRef(match["name"], alias, match["version"])


def register(run_id: str, name: str, uri: str) -> str:
    """Register the artifact of run ``run_id`` as a new version of ``name``; return the version.

    Raises
    ------
    ConfigError
        The run does not exist or is not a churnops training run.
    """
    mlflow = client(uri)
    run = _run(mlflow, run_id, uri)
    tags = run.data.tags
    if MODEL_VERSION_TAG not in tags:
        raise ConfigError(f"run {run_id} has no churnops model (no {MODEL_VERSION_TAG} tag)")
    with mlflow_errors(f"registering run {run_id} as {name!r}"):
        if not _exists(mlflow, name):
            try:
                mlflow.create_registered_model(name, description="churnops churn model")
            except Exception:
                if not _exists(mlflow, name):  # not a concurrent creation: a real failure
                    raise
        version = mlflow.create_model_version(
            name,
            _mlflow_model_source(mlflow, run, uri),
            run_id=run_id,
            tags={k: v for k, v in tags.items() if k.startswith(TAG) and "version." not in k},
            description=f"churnops model {tags[MODEL_VERSION_TAG]}",
        )
    return str(version.version)


def _mlflow_model_source(mlflow: Any, run: Any, uri: str) -> str:
    """Where the run keeps its MLflow model: ``model/``, or for a run recorded before the MLflow
    model form (the bare artifact in ``model/``), ``mlflow_model/``, written now from the
    verified artifact."""
    run_id, root = run.info.run_id, run.info.artifact_uri.rstrip("/")
    for path in (ARTIFACT_PATH, UPGRADE_PATH):
        if any(f.path == f"{path}/{MLMODEL}" for f in mlflow.list_artifacts(run_id, path)):
            return f"{root}/{path}"
    from mlflow.artifacts import download_artifacts

    with tempfile.TemporaryDirectory(prefix="churnops-register-") as staging:
        local = download_artifacts(
            run_id=run_id, artifact_path=ARTIFACT_PATH, dst_path=staging, tracking_uri=uri
        )
        artifact = load_artifact(Path(local))
        if artifact.version != run.data.tags[MODEL_VERSION_TAG]:
            raise IntegrityError(
                f"run {run_id}: its model/ holds {artifact.version}, "
                f"but the run recorded {run.data.tags[MODEL_VERSION_TAG]}"
            )
        save_mlflow_model(artifact, Path(staging) / UPGRADE_PATH)
        mlflow.log_artifacts(run_id, str(Path(staging) / UPGRADE_PATH), UPGRADE_PATH)
    return f"{root}/{UPGRADE_PATH}"


def list_versions(uri: str, name: str | None = None) -> list[VersionInfo]:
    """Registered versions (of ``name``, or of every model), by name and newest first."""
    mlflow = client(uri)
    out = []
    aliases: dict[str, dict[str, list[str]]] = {}
    with mlflow_errors(f"listing models in {uri}"):
        query = f"name='{_quote(name)}'" if name else ""
        for version in mlflow.search_model_versions(query):
            if version.name not in aliases:
                aliases[version.name] = {}
                model_aliases = mlflow.get_registered_model(version.name).aliases or {}
                for alias, number in model_aliases.items():
                    aliases[version.name].setdefault(str(number), []).append(alias)
            run = mlflow.get_run(version.run_id) if version.run_id else None
            metrics = dict(run.data.metrics) if run else {}
            tags = {**(dict(run.data.tags) if run else {}), **(version.tags or {})}
            out.append(
                VersionInfo(
                    name=version.name,
                    version=str(version.version),
                    aliases=tuple(sorted(aliases[version.name].get(str(version.version), []))),
                    run_id=str(version.run_id or ""),
                    created=int(version.creation_timestamp or 0),
                    metrics={k: v for k, v in metrics.items() if k.startswith("test.")},
                    data_sha256=tags.get(f"{TAG}data_sha256", ""),
                    model_version=tags.get(MODEL_VERSION_TAG, ""),
                    source=str(version.source or ""),
                )
            )
    return sorted(out, key=lambda v: (v.name, -int(v.version)))


def promote(name: str, version: str, uri: str, alias: str = CHAMPION) -> str | None:
    """Point ``alias`` (any name :func:`check_alias` accepts) at ``version``; return the version
    it pointed at before, if any.

    Each version that loses ``champion`` is appended to the registered model's
    ``churnops.champion_history`` tag, which :func:`rollback` walks back.
    """
    check_alias(alias)
    mlflow = client(uri)
    _version(mlflow, name, version)  # exists?
    previous = _alias_version(mlflow, name, alias)
    with mlflow_errors(f"promoting {name} version {version} to {alias}"):
        mlflow.set_registered_model_alias(name, alias, version)
        if alias == CHAMPION and previous is not None and previous != version:
            history = [*_history(mlflow, name), previous][-HISTORY_LIMIT:]
            mlflow.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history))
    return previous


def remove_alias(name: str, alias: str, uri: str) -> str:
    """Remove ``alias`` from model ``name``; return the version it pointed at.

    Raises
    ------
    ArtifactError
        No such model, or the model has no such alias.
    """
    check_alias(alias)
    mlflow = client(uri)
    version = _alias_version(mlflow, name, alias)
    if version is None:
        raise ArtifactError(f"model {name!r} has no alias {alias!r}")
    with mlflow_errors(f"removing alias {alias} of {name}"):
        mlflow.delete_registered_model_alias(name, alias)
    return version


def rollback(name: str, uri: str) -> tuple[str, str]:
    """Move ``champion`` back to the version that held it before; return (from, to).

    Raises
    ------
    ConfigError
        No champion, or no earlier champion still registered.
    """
    mlflow = client(uri)
    current = _alias_version(mlflow, name, CHAMPION)
    if current is None:
        raise ConfigError(f"model {name!r} has no champion to roll back")
    history = _history(mlflow, name)
    with mlflow_errors(f"rolling back {name}"):
        while history:
            target = history.pop()
            if target != current and _version_exists(mlflow, name, target):
                mlflow.set_registered_model_alias(name, CHAMPION, target)
                mlflow.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history))
                return current, target
    raise ConfigError(
        f"model {name!r}: no earlier champion to roll back to (champion is version {current})"
    )


@dataclass(frozen=True)
class ResolvedModel:
    """A verified local artifact directory and, for a registry reference, what it resolved to:
    the registered model's name, the version and the alias followed (None for ``/VERSION``)."""

    path: Path
    name: str | None = None
    version: str | None = None
    alias: str | None = None


def resolve_model(
    ref: str, tracking_uri: str | None = None, home: str | Path = DEFAULT_HOME
) -> Path:
    """Return a verified local artifact directory for ``ref`` (see :func:`resolve`)."""
    return resolve(ref, tracking_uri, home).path


def resolve(
    ref: str, tracking_uri: str | None = None, home: str | Path = DEFAULT_HOME
) -> ResolvedModel:
    """Return a verified local artifact directory for ``ref``, and the registry version.

    ``ref`` is a local directory (returned as is) or ``models:/NAME@ALIAS`` /
    ``models:/NAME/VERSION``, resolved through the MLflow registry at ``tracking_uri`` (default:
    ``MLFLOW_TRACKING_URI``, else the SQLite store in ``home``). The version's artifact is
    downloaded once to ``home/cache/NAME/VERSION`` and reused from there; it must be the model
    the registry records (its ``churnops.model_version`` tag) and pass
    :func:`churnops.artifact.load_artifact`, which callers run again when they load it.

    Raises
    ------
    ConfigError
        A malformed reference or unusable tracking URI.
    ArtifactError
        No such model, alias or version, or the version holds no churnops model.
    IntegrityError
        A downloaded or cached file differs from the manifest; the message names it.
    """
    if not is_registry_ref(ref):
        return ResolvedModel(Path(ref))
    parsed = parse_ref(ref)
    uri = resolve_tracking_uri(tracking_uri, home)
    check_tracking(uri)
    mlflow = client(uri)
    version = _ref_version(mlflow, parsed, ref)
    info = _version(mlflow, parsed.name, version)
    expected = _recorded_model_version(mlflow, info)
    target = Path(home) / "cache" / parsed.name / version
    if not (target / MANIFEST).is_file():
        with mlflow_errors(f"downloading {parsed.name} version {version}"):
            source = mlflow.get_model_version_download_uri(parsed.name, version)
            _download(source, uri, target)
    cached = load_artifact(target)
    if cached.version != expected:
        raise IntegrityError(
            f"{target}: holds model {cached.version}, but {parsed.name} version {version} is "
            f"{expected} in {uri}; remove {target} to download it again"
        )
    return ResolvedModel(target, parsed.name, version, parsed.alias)


def run_of(ref: str, uri: str) -> str:
    """The run id of ``models:/NAME/VERSION`` or ``models:/NAME@ALIAS``."""
    parsed = parse_ref(ref)
    mlflow = client(uri)
    return str(_version(mlflow, parsed.name, _ref_version(mlflow, parsed, ref)).run_id)


def _ref_version(mlflow: Any, parsed: ModelRef, ref: str) -> str:
    if parsed.alias is None:
        return str(parsed.version)
    version = _alias_version(mlflow, parsed.name, parsed.alias)
    if version is None:
        raise ArtifactError(f"{ref}: model {parsed.name!r} has no alias {parsed.alias!r}")
    return version


def _download(source: str, uri: str, target: Path) -> None:
    """Download ``source`` into ``target`` through a staging directory swapped in at the end."""
    import mlflow.artifacts

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        local = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=source, dst_path=str(staging), tracking_uri=uri
            )
        )
        try:
            inside = artifact_directory(local)
        except ArtifactError as exc:
            raise ArtifactError(f"{source}: {exc}") from None
        shutil.rmtree(target, ignore_errors=True)  # an incomplete earlier download
        try:
            inside.rename(target)
        except OSError:
            if not (target / MANIFEST).is_file():  # not a concurrent download of the same
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _recorded_model_version(mlflow: Any, info: Any) -> str:
    tags = dict(info.tags or {})
    if MODEL_VERSION_TAG not in tags and info.run_id:
        with mlflow_errors(f"reading run {info.run_id}"):
            tags.update(mlflow.get_run(info.run_id).data.tags)
    if MODEL_VERSION_TAG not in tags:
        raise ArtifactError(
            f"{info.name} version {info.version} is not a churnops model "
            f"(no {MODEL_VERSION_TAG} tag on the version or its run)"
        )
    return str(tags[MODEL_VERSION_TAG])


def _run(mlflow: Any, run_id: str, uri: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return mlflow.get_run(run_id)
    except MlflowException:
        raise ConfigError(f"run {run_id!r} not found in {uri}") from None


def _exists(mlflow: Any, name: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        mlflow.get_registered_model(name)
    except MlflowException:
        return False
    return True


def _version(mlflow: Any, name: str, version: str) -> Any:
    from mlflow.exceptions import MlflowException

    if not _exists(mlflow, name):
        raise ArtifactError(f"no registered model named {name!r}")
    try:
        return mlflow.get_model_version(name, version)
    except MlflowException:
        raise ArtifactError(f"model {name!r} has no version {version}") from None


def _version_exists(mlflow: Any, name: str, version: str) -> bool:
    try:
        _version(mlflow, name, version)
    except ArtifactError:
        return False
    return True


def _alias_version(mlflow: Any, name: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    if not _exists(mlflow, name):
        raise ArtifactError(f"no registered model named {name!r}")
    try:
        return str(mlflow.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def _history(mlflow: Any, name: str) -> list[str]:
    tags = mlflow.get_registered_model(name).tags or {}
    try:
        return [str(v) for v in json.loads(tags.get(HISTORY_TAG, "[]"))]
    except ValueError:
        return []


def _quote(text: str | None) -> str:
    return (text or "").replace("'", "\\'")
