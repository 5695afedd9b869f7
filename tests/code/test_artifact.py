"""An artifact is verified file by file before anything is deserialized."""

from __future__ import annotations

import json
import shutil

import pytest

from churnops.artifact import ModelDescription, load_artifact, write_artifact
from churnops.errors import ArtifactError


@pytest.fixture
def copy(synthetic_model, tmp_path):
    _, artifact = synthetic_model
    target = tmp_path / "model"
    shutil.copytree(artifact.path, target)
    return target


def test_a_fresh_artifact_loads_and_predicts(copy, synthetic_model):
    result, _ = synthetic_model
    artifact = load_artifact(copy)
    pipeline = artifact.load_pipeline()
    assert pipeline.predict_proba(result.test.X.head(5)).shape == (5, 2)
    assert artifact.synthetic is True
    manifest = artifact.manifest.to_json()
    for key in ("name", "version", "created_at", "data", "schema", "settings", "automl"):
        assert key in manifest
    assert artifact.manifest.data.rows == result.rows.dataset.rows
    assert len(artifact.manifest.data.sha256) == 64
    assert set(artifact.manifest.versions) >= {"flaml", "lightgbm", "scikit-learn"}


def test_every_file_is_listed_with_its_hash(copy):
    raw = json.loads((copy / "manifest.json").read_text())
    on_disk = {p.name for p in copy.rglob("*") if p.is_file()} - {
        "manifest.json",
        "manifest.sha256",
    }
    listed = {name.rsplit("/", 1)[-1] for name in raw["files"]}
    assert on_disk == listed
    assert all(len(entry["sha256"]) == 64 for entry in raw["files"].values())


def _all_files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_tampering_with_any_file_is_refused_naming_it(copy):
    for name in _all_files(copy):
        path = copy / name
        original = path.read_bytes()
        path.write_bytes(original + b" ")
        with pytest.raises(ArtifactError, match=name.rsplit("/", 1)[-1].replace(".", r"\.")):
            load_artifact(copy)
        path.write_bytes(original)
    load_artifact(copy)  # restored: loads again


def test_a_missing_file_is_refused(copy):
    (copy / "report.md").unlink()
    with pytest.raises(ArtifactError, match=r"report\.md"):
        load_artifact(copy)


def test_an_unlisted_file_is_refused(copy):
    (copy / "extra.pkl").write_bytes(b"not part of the model")
    with pytest.raises(ArtifactError, match=r"extra\.pkl"):
        load_artifact(copy)


def test_tampering_after_load_is_caught_before_unpickling(copy):
    artifact = load_artifact(copy)
    (copy / "pipeline.joblib").write_bytes(b"evil")
    with pytest.raises(ArtifactError, match=r"pipeline\.joblib"):
        artifact.load_pipeline()


def test_not_an_artifact(tmp_path):
    with pytest.raises(ArtifactError, match="manifest"):
        load_artifact(tmp_path)


def test_rewriting_replaces_the_directory_atomically(tmp_path, synthetic_model):
    meta = ModelDescription(name="x", schema=synthetic_model[1].manifest.schema_)
    first = write_artifact(tmp_path / "m", {"a.txt": b"1"}, meta)
    second = write_artifact(tmp_path / "m", {"b.txt": b"2"}, meta)
    assert set(second.files) == {"b.txt"}
    assert first.path == second.path
    assert not (tmp_path / "m" / "a.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # no staging leftovers
