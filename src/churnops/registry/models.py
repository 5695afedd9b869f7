"""Registered models: versions, the ``champion`` / ``challenger`` aliases, rollback, resolution.

A version's source is the churnops artifact directory logged with its run. Resolving
``models:/NAME@ALIAS`` or ``models:/NAME/VERSION`` downloads that directory once into a local
cache; :func:`churnops.artifact.load_artifact` then verifies every file against its manifest, so a
registry or cache that was tampered with is refused like any other changed artifact.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from churnops.errors import ArtifactError, ConfigError
from churnops.registry.tracking import ARTIFACT_PATH, TAG, client

ALIASES = ("champion", "challenger")
HISTORY_TAG = f"{TAG}champion_history"  # versions that held `champion`, oldest first
_REF = re.compile(r"^models:/(?P<name>[^/@]+)(?:@(?P<alias>[\w-]+)|/(?P<version>\d+))$")


@dataclass(frozen=True)
class VersionInfo:
    """One registered model version, as `churnops models list` shows it."""

    name: str
    version: str
    aliases: tuple[str, ...]
    run_id: str
    created: int
    metrics: dict[str, float]
    data_sha256: str
    model_version: str


def is_registry_ref(ref: str) -> bool:
    """True for ``models:/…`` references."""
    return ref.startswith("models:/")


def register(run_id: str, name: str, uri: str) -> str:
    """Register the artifact of run ``run_id`` as a new version of ``name``; return the version."""
    from mlflow.exceptions import MlflowException

    mlflow = client(uri)
    try:
        run = mlflow.get_run(run_id)
    except MlflowException as exc:
        raise ConfigError(f"run {run_id!r} not found in {uri}") from exc
    try:
        mlflow.get_registered_model(name)
    except MlflowException:
        mlflow.create_registered_model(name, description="churnops churn model")
    source = f"{run.info.artifact_uri.rstrip('/')}/{ARTIFACT_PATH}"
    version = mlflow.create_model_version(name, source, run_id=run_id)
    return str(version.version)


def list_versions(uri: str, name: str | None = None) -> list[VersionInfo]:
    """Registered versions (of ``name``, or of every model), newest first."""
    mlflow = client(uri)
    query = f"name='{_quote(name)}'" if name else ""
    out = []
    aliases: dict[str, dict[str, list[str]]] = {}
    for version in mlflow.search_model_versions(query):
        if version.name not in aliases:
            aliases[version.name] = {}
            for alias, number in (mlflow.get_registered_model(version.name).aliases or {}).items():
                aliases[version.name].setdefault(str(number), []).append(alias)
        run = mlflow.get_run(version.run_id) if version.run_id else None
        metrics = dict(run.data.metrics) if run else {}
        tags = dict(run.data.tags) if run else {}
        out.append(
            VersionInfo(
                name=version.name,
                version=str(version.version),
                aliases=tuple(sorted(aliases[version.name].get(str(version.version), []))),
                run_id=str(version.run_id or ""),
                created=int(version.creation_timestamp or 0),
                metrics={k: v for k, v in metrics.items() if k.startswith("test.")},
                data_sha256=tags.get(f"{TAG}data_sha256", ""),
                model_version=tags.get(f"{TAG}model_version", ""),
            )
        )
    return sorted(out, key=lambda v: (v.name, -int(v.version)))


def promote(name: str, version: str, uri: str, alias: str = "champion") -> str | None:
    """Point ``alias`` at ``version``; return the version it pointed at before, if any."""
    if alias not in ALIASES:
        raise ConfigError(f"alias must be one of {', '.join(ALIASES)}; got {alias!r}")
    mlflow = client(uri)
    _version(mlflow, name, version)  # exists?
    previous = _alias_version(mlflow, name, alias)
    mlflow.set_registered_model_alias(name, alias, version)
    if alias == "champion" and previous != version:
        history = _history(mlflow, name)
        if previous is not None:
            history.append(previous)
        mlflow.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history[-50:]))
    return previous


def rollback(name: str, uri: str) -> tuple[str, str]:
    """Move ``champion`` back to the version that held it before; return (from, to)."""
    mlflow = client(uri)
    current = _alias_version(mlflow, name, "champion")
    if current is None:
        raise ConfigError(f"model {name!r} has no champion to roll back")
    history = [v for v in _history(mlflow, name) if v != current]
    if not history:
        raise ConfigError(f"model {name!r}: no earlier champion to roll back to")
    target = history.pop()
    mlflow.set_registered_model_alias(name, "champion", target)
    mlflow.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history))
    return current, target


def resolve_model(ref: str, uri: str, cache: Path) -> Path:
    """Return a local artifact directory for ``ref`` (``models:/NAME@ALIAS`` or ``/VERSION``).

    The directory is downloaded once into ``cache/NAME/VERSION``; callers verify it with
    :func:`churnops.artifact.load_artifact`.
    """
    match = _REF.match(ref)
    if match is None:
        raise ConfigError(f"{ref!r}: expected models:/NAME@ALIAS or models:/NAME/VERSION")
    name = match["name"]
    mlflow = client(uri)
    if match["alias"]:
        version = _alias_version(mlflow, name, match["alias"])
        if version is None:
            raise ArtifactError(f"{ref}: model {name!r} has no alias {match['alias']!r} in {uri}")
    else:
        version = match["version"]
    info = _version(mlflow, name, version)
    target = cache / name / version
    if not (target / "manifest.json").is_file():
        import mlflow.artifacts

        staging = cache / name / f".{version}.download"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        local = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=info.source, dst_path=str(staging), tracking_uri=uri
            )
        )
        shutil.rmtree(target, ignore_errors=True)
        local.rename(target)
        shutil.rmtree(staging, ignore_errors=True)
    return target


def run_of(ref: str, uri: str) -> str:
    """The run id behind ``ref``: a run id itself, or ``models:/NAME/VERSION`` / ``@ALIAS``."""
    match = _REF.match(ref)
    if match is None:
        return ref
    mlflow = client(uri)
    version = match["version"] or _alias_version(mlflow, match["name"], match["alias"])
    if version is None:
        raise ArtifactError(f"{ref}: no such alias")
    return str(_version(mlflow, match["name"], version).run_id)


def _version(mlflow: Any, name: str, version: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return mlflow.get_model_version(name, version)
    except MlflowException:
        raise ArtifactError(f"model {name!r} has no version {version}") from None


def _alias_version(mlflow: Any, name: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        mlflow.get_registered_model(name)
    except MlflowException:
        raise ArtifactError(f"no registered model named {name!r}") from None
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
