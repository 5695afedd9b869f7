"""Resolve and load a model: an artifact directory or a registry reference."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from churnops.artifact import ModelArtifact, load_artifact
from churnops.config import Settings

if TYPE_CHECKING:
    from churnops.registry.models import ResolvedModel


def project_home() -> Path:
    """The project's data directory (``CHURN_HOME``, default ``.churnops``)."""
    return Settings().home


def tracking_uri(explicit: str | None = None) -> str:
    """``explicit``, else ``MLFLOW_TRACKING_URI``, else the project's SQLite store."""
    from churnops.registry.tracking import resolve_tracking_uri

    return resolve_tracking_uri(explicit, project_home())


def model_path(ref: str, uri: str | None = None) -> Path:
    """A local artifact directory for ``ref``: a directory, or ``models:/NAME@ALIAS|/VERSION``.

    Registry references resolve through MLflow (``uri``, else :func:`tracking_uri`) to a
    verified copy cached under ``HOME/cache/NAME/VERSION``.
    """
    return locate_model(ref, uri).path


def locate_model(ref: str, uri: str | None = None) -> ResolvedModel:
    """Like :func:`model_path`, with the registry name, version and alias ``ref`` resolved to
    (all None for a directory)."""
    from churnops.registry.models import ResolvedModel, is_registry_ref, resolve

    if not is_registry_ref(ref):
        return ResolvedModel(Path(ref))
    return resolve(ref, tracking_uri(uri), project_home())


def open_model(ref: str, uri: str | None = None) -> ModelArtifact:
    """Load and verify the model ``ref`` names (a directory or a registry reference)."""
    return load_artifact(model_path(ref, uri))
