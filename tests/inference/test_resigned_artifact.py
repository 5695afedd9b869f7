"""A re-signed artifact whose serving spec names a wrong model file is refused with one line.

Every sha256 is recomputed after the edit, the way the writer computes them, so the integrity
check passes: what must refuse the artifact is the check of the names, or the runtime's load
wrapped into an ArtifactError, in the library, in ``churnops predict`` and at ``serve`` start-up.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from churnops.artifact import (
    MANIFEST,
    MANIFEST_DIGEST,
    SERVING_MODEL_SUFFIXES,
    SERVING_SPEC,
    load_artifact,
    sha256_bytes,
)
from churnops.artifact.reader import _digest_line
from churnops.cli import app
from churnops.data.dataset import synthetic_dataset
from churnops.data.sample import generate_customers
from churnops.errors import ArtifactError
from churnops.inference import load_scorer
from churnops.inference.runtime import (
    RUNTIMES,
    LightGBMRuntime,
    PipelineRuntime,
    TreeliteRuntime,
    load_runtime,
)

LIGHTGBM, TREELITE = LightGBMRuntime.name, TreeliteRuntime.name

CHURNOPS = str(Path(sys.executable).parent / "churnops")
runner = CliRunner()


@pytest.fixture(scope="module", params=["lgbm", "rf"])
def model_dir(request, tmp_path_factory) -> Path:
    """A small exported model served by LightGBM (lgbm) or treelite (rf)."""
    from churnops.pipeline.build import AutoMLSettings
    from churnops.pipeline.train import export_model, train_model

    settings = AutoMLSettings(
        time_budget=None, max_iter=2, estimators=(request.param,), n_jobs=1, seed=1
    )
    result = train_model(synthetic_dataset(600, seed=5), settings)
    artifact = export_model(result, tmp_path_factory.mktemp("models") / request.param)
    assert SERVING_SPEC in artifact.files, "the model must have a data-only serving form"
    return artifact.path


def resign(
    source: Path,
    target: Path,
    spec_changes: dict[str, Any] | None = None,
    extra_files: dict[str, bytes] | None = None,
) -> Path:
    """Copy ``source``, edit its serving spec and files, and sign it again like the writer."""
    shutil.copytree(source, target)
    spec = json.loads((target / SERVING_SPEC).read_text())
    spec.update(spec_changes or {})
    (target / SERVING_SPEC).write_text(json.dumps(spec, indent=2) + "\n")
    raw = json.loads((target / MANIFEST).read_bytes())
    for name, data in (extra_files or {}).items():
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        (target / name).write_bytes(data)
        raw["files"][name] = {}
    for name, entry in raw["files"].items():
        data = (target / name).read_bytes()
        entry.update(sha256=sha256_bytes(data), bytes=len(data))
    manifest_bytes = (json.dumps(raw, indent=2) + "\n").encode()
    (target / MANIFEST).write_bytes(manifest_bytes)
    (target / MANIFEST_DIGEST).write_bytes(_digest_line(manifest_bytes))
    return target


def _one_line(exc: BaseException) -> str:
    message = str(exc)
    assert "\n" not in message
    return message


def test_resigning_without_changes_still_loads(model_dir, tmp_path):
    path = resign(model_dir, tmp_path / "same")
    assert load_scorer(load_artifact(path)).fast


@pytest.mark.parametrize(
    ("model_file", "problem"),
    [
        ("serving/missing.txt", "not a file of this artifact"),
        ("../elsewhere/serving/model.txt", "'..'"),
        ("/etc/passwd", "absolute path"),
        ("serving\\model.txt", "backslash"),
        ("serving//model.txt", "empty"),
        ("", "not a non-empty string"),
        (None, "not a non-empty string"),
        ("pipeline.joblib", "not a serving model"),
        (SERVING_SPEC, "not a serving model"),
        ("serving/layout.json", "model is a"),
        ("report.md", "model is a"),
    ],
)
def test_a_spec_naming_a_wrong_model_file_is_refused_naming_it(
    model_dir, tmp_path, model_file, problem
):
    path = resign(model_dir, tmp_path / "edited", {"model_file": model_file})
    with pytest.raises(ArtifactError) as raised:
        load_artifact(path)
    message = _one_line(raised.value)
    assert f"model_file {model_file!r}" in message
    assert problem in message
    assert SERVING_SPEC in message


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"runtime": "onnx"}, "unknown serving runtime 'onnx'"),
        ({"positive_index": 7}, "positive_index must be 0 or 1"),
        ({"classes": ["Yes"]}, "classes must list the two classes"),
        ({"layout_file": "../layout.json"}, "layout_file '../layout.json' is refused"),
    ],
)
def test_other_signed_spec_mistakes_are_refused(model_dir, tmp_path, changes, problem):
    path = resign(model_dir, tmp_path / "edited", changes)
    with pytest.raises(ArtifactError, match=problem) as raised:
        load_artifact(path)
    _one_line(raised.value)


def test_a_manifest_listing_a_file_outside_the_directory_is_refused(model_dir, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("not part of the model\n")
    path = resign(model_dir, tmp_path / "edited")
    raw = json.loads((path / MANIFEST).read_bytes())
    data = outside.read_bytes()
    raw["files"]["../outside.txt"] = {"sha256": sha256_bytes(data), "bytes": len(data)}
    manifest_bytes = (json.dumps(raw, indent=2) + "\n").encode()
    (path / MANIFEST).write_bytes(manifest_bytes)
    (path / MANIFEST_DIGEST).write_bytes(_digest_line(manifest_bytes))
    with pytest.raises(ArtifactError, match=r"invalid file name '\.\./outside\.txt'") as raised:
        load_artifact(path)
    _one_line(raised.value)


def _wrong_model(model_dir: Path, target: Path) -> tuple[Path, str]:
    """A signed artifact whose spec names a listed file of the right suffix but wrong content
    (and no compiled model, which would serve first)."""
    spec = json.loads((model_dir / SERVING_SPEC).read_text())
    name = f"serving/other{SERVING_MODEL_SUFFIXES[spec['runtime']]}"
    content = b"tree\nversion=v4\nnot a model at all\n"
    changes = {"model_file": name, "compiled": None}
    return resign(model_dir, target, changes, {name: content}), spec["runtime"]


def test_a_model_file_the_runtime_cannot_load_is_an_artifact_error(model_dir, tmp_path):
    path, runtime = _wrong_model(model_dir, tmp_path / "wrong")
    artifact = load_artifact(path)  # names and hashes are all fine
    with pytest.raises(ArtifactError) as raised:
        load_scorer(artifact)
    message = _one_line(raised.value)
    assert f"cannot be loaded as a {runtime} model" in message
    assert SERVING_SPEC in message


@pytest.mark.parametrize("kind", [LIGHTGBM, TREELITE])
@pytest.mark.parametrize("data", [b"", b"\x00\xff" * 50, b"tree\nversion=v4\nnum_class=3\n\n"])
def test_the_runtimes_wrap_load_failures_naming_the_file(kind, data):
    with pytest.raises(ArtifactError) as raised:
        load_runtime(kind, data, 1, source="serving/x.bin")
    message = _one_line(raised.value)
    assert message.startswith(f"serving/x.bin cannot be loaded as a {kind} model: ")


def test_an_unknown_runtime_is_an_artifact_error():
    with pytest.raises(ArtifactError, match="unknown serving runtime 'onnx'"):
        load_runtime("onnx", b"", 1)


def test_the_writer_and_the_reader_agree_on_the_serving_names():
    # Every runtime a serving spec may name is one the reader accepts, with the same suffix.
    data_only = {n: r.suffix for n, r in RUNTIMES.items() if r is not PipelineRuntime}
    assert data_only == SERVING_MODEL_SUFFIXES


@pytest.mark.parametrize("edit", ["missing", "wrong content"])
def test_predict_refuses_with_one_line(model_dir, tmp_path, edit):
    if edit == "missing":
        path = resign(model_dir, tmp_path / "edited", {"model_file": "serving/gone.txt"})
        expected = "model_file 'serving/gone.txt' is refused"
    else:
        path, runtime = _wrong_model(model_dir, tmp_path / "edited")
        expected = f"cannot be loaded as a {runtime} model"
    data = tmp_path / "customers.csv"
    generate_customers(10, seed=1).to_csv(data, index=False)
    out = tmp_path / "scored.csv"
    result = runner.invoke(
        app, ["predict", "--model", str(path), "--data", str(data), "--out", str(out)]
    )
    assert result.exit_code == 1
    assert expected in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert not out.exists()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_serve_refuses_to_start_with_one_line(model_dir, tmp_path):
    path, runtime = _wrong_model(model_dir, tmp_path / "wrong")
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "CHURN_HOME": str(tmp_path / ".churnops"),
        "CHURN_USER": "analyst",
        "CHURN_PASSWORD": "a-long-and-unguessable-passphrase-42",
    }
    result = subprocess.run(
        [
            CHURNOPS,
            "serve",
            "--model",
            str(path),
            "--host",
            "127.0.0.1",
            "--port",
            str(_free_port()),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert f"cannot be loaded as a {runtime} model" in output
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, output
