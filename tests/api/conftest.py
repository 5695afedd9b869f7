"""Apps over tiny synthetic models, with their credentials."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from churnops.api.app import create_app
from churnops.artifact import SERVING_DIR, ModelArtifact, write_artifact

from .support import make_settings


@pytest.fixture(scope="module")
def client(synthetic_model):
    with TestClient(create_app(make_settings(synthetic_model[1].path, max_records=50))) as c:
        yield c


@pytest.fixture(scope="module")
def large_client(synthetic_model):
    """Default limits: batches large enough to be scored in the thread pool."""
    with TestClient(create_app(make_settings(synthetic_model[1].path))) as c:
        yield c


@pytest.fixture(scope="session")
def pipeline_only_model(synthetic_model, tmp_path_factory) -> ModelArtifact:
    """The synthetic model without its data-only serving form: served by the pickled pipeline."""
    artifact: ModelArtifact = synthetic_model[1]
    files = {
        name: artifact.read_bytes(name)
        for name in artifact.files
        if not name.startswith(f"{SERVING_DIR}/")
    }
    description = artifact.manifest.description()
    return write_artifact(tmp_path_factory.mktemp("models") / "pipeline-only", files, description)
