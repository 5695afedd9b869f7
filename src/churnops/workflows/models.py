"""Resolve and load a model: an artifact directory or a registry reference."""

from __future__ import annotations

from pathlib import Path

from churnops.artifact import ModelArtifact, load_artifact
from churnops.config import Settings


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
    from churnops.registry.models import is_registry_ref, resolve_model

    if not is_registry_ref(ref):
        return Path(ref)
    return resolve_model(ref, tracking_uri(uri), project_home())


def open_model(ref: str, uri: str | None = None) -> ModelArtifact:
    """Load and verify the model ``ref`` names (a directory or a registry reference)."""
    return load_artifact(model_path(ref, uri))
