"""Compiled trees: produced at export, checked, verified, and replaced by the text model with the
reason wherever the library cannot load."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from churnops.artifact import SERVING_SPEC, load_artifact
from churnops.data.dataset import synthetic_dataset
from churnops.data.sample import generate_customers
from churnops.errors import ArtifactError
from churnops.inference import load_scorer
from churnops.inference.runtime import (
    CompiledTreesRuntime,
    LightGBMRuntime,
    load_runtime,
    platform_mismatch,
    platform_tag,
)
from churnops.pipeline import export
from tests.inference.test_resigned_artifact import resign

COMPILED = "serving/model.so"


@pytest.fixture(scope="module")
def lgbm_result():
    from churnops.pipeline.build import AutoMLSettings
    from churnops.pipeline.train import train_model

    settings = AutoMLSettings(time_budget=None, max_iter=3, estimators=("lgbm",), n_jobs=1, seed=2)
    return train_model(synthetic_dataset(1500, seed=8), settings)


@pytest.fixture(scope="module")
def model_dir(lgbm_result, tmp_path_factory) -> Path:
    from churnops.pipeline.train import export_model

    return export_model(lgbm_result, tmp_path_factory.mktemp("compiled") / "m").path


def _spec(path: Path) -> dict:
    return json.loads((path / SERVING_SPEC).read_text())


def test_export_records_the_library_its_platform_and_its_check(model_dir):
    artifact = load_artifact(model_dir)
    spec = _spec(model_dir)
    compiled = spec["compiled"]
    assert spec["runtime"] == LightGBMRuntime.name  # the text model stays the reference
    assert spec["model_file"] in artifact.files
    assert compiled["runtime"] == CompiledTreesRuntime.name
    assert compiled["model_file"] == COMPILED
    assert artifact.manifest.files[COMPILED].sha256  # verified like every file
    assert compiled["platform"] == platform_tag()
    assert compiled["checked_rows"] > 0
    assert compiled["max_abs_difference"] <= export.PARITY_TOLERANCE
    assert artifact.manifest.serving is not None
    assert artifact.manifest.serving.compiled == CompiledTreesRuntime.name


def test_compiled_and_text_runtimes_agree_on_100k_rows(model_dir):
    artifact = load_artifact(model_dir)
    compiled = load_scorer(artifact, allow_fallback=False)
    text = load_scorer(artifact, allow_fallback=False, compiled=False)
    assert compiled.runtime.startswith("compiled trees (lleaves")
    assert compiled.fallback_reason is None
    assert text.runtime.startswith("lightgbm")
    frame = generate_customers(100_000, seed=21).astype("str")
    columns = {c: frame[c] for c in frame.columns}
    a = compiled.score_columns(columns, len(frame)).positive_probability
    b = text.score_columns(columns, len(frame)).positive_probability
    assert np.max(np.abs(a - b)) <= 1e-9
    records = frame.head(300).to_dict("records")
    one_by_one = [compiled.score_records([r]).positive_probability[0] for r in records]
    np.testing.assert_allclose(one_by_one, b[:300], rtol=0, atol=1e-9)


@pytest.mark.parametrize(
    ("platform", "reason"),
    [
        ({"machine": "aarch64"}, "compiled for Linux aarch64"),
        ({"system": "Darwin", "libc": ""}, "compiled for Darwin x86_64"),
        ({"libc_version": "99.1"}, "glibc 99.1"),
    ],
)
def test_a_library_built_elsewhere_falls_back_to_the_text_model(
    model_dir, tmp_path, platform, reason
):
    spec = _spec(model_dir)
    entry = {**spec["compiled"], "platform": {**spec["compiled"]["platform"], **platform}}
    path = resign(model_dir, tmp_path / "elsewhere", {"compiled": entry})
    scorer = load_scorer(load_artifact(path))
    assert scorer.fast
    assert scorer.runtime.startswith("lightgbm")
    assert scorer.fallback_reason is not None
    assert scorer.fallback_reason.startswith("compiled trees not used: ")
    assert reason in scorer.fallback_reason
    assert COMPILED in scorer.fallback_reason


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"not a library at all", "no ELF header"),
        (b"\x7fELF" + b"\x00" * 200, "cannot be loaded"),
    ],
)
def test_a_damaged_library_falls_back_naming_the_reason(model_dir, tmp_path, content, reason):
    # Re-signed, so the artifact verifies: what refuses the library is the loader.
    path = resign(model_dir, tmp_path / "damaged", extra_files={COMPILED: content})
    scorer = load_scorer(load_artifact(path))
    assert scorer.runtime.startswith("lightgbm")
    assert reason in (scorer.fallback_reason or "")
    customer = generate_customers(1, seed=4).drop(columns=["Churn"]).to_dict("records")[0]
    assert 0 <= scorer.score_records([customer]).positive_probability[0] <= 1


def test_a_library_without_the_entry_point_is_refused(tmp_path):
    libm = next(Path(p) for p in ("/lib/x86_64-linux-gnu/libm.so.6", "/usr/lib/libm.so.6")
                if Path(p).exists())  # fmt: skip
    details = {"n_features": 3, "platform": platform_tag()}
    with pytest.raises(ArtifactError, match="has no forest_root function"):
        load_runtime(CompiledTreesRuntime.name, libm.read_bytes(), 1, "serving/x.so", details)


def test_a_changed_library_is_refused_by_the_integrity_check(model_dir, tmp_path):
    import shutil

    copy = tmp_path / "changed"
    shutil.copytree(model_dir, copy)
    (copy / COMPILED).write_bytes((copy / COMPILED).read_bytes() + b"\x00")
    with pytest.raises(ArtifactError, match=r"model\.so: sha256 does not match"):
        load_artifact(copy)


def test_a_spec_naming_a_compiled_file_outside_the_artifact_is_refused(model_dir, tmp_path):
    entry = {**_spec(model_dir)["compiled"], "model_file": "../model.so"}
    path = resign(model_dir, tmp_path / "outside", {"compiled": entry})
    with pytest.raises(ArtifactError, match=r"compiled model_file '\.\./model\.so' is refused"):
        load_artifact(path)


def test_without_a_c_compiler_the_artifact_says_why_and_serves_the_text_model(
    lgbm_result, tmp_path, monkeypatch
):
    from churnops.pipeline.train import export_model

    monkeypatch.setattr(export.shutil, "which", lambda name: None)
    artifact = export_model(lgbm_result, tmp_path / "plain")
    spec = _spec(artifact.path)
    assert spec["compiled"] == {"unavailable": "no C compiler (cc) to link the compiled trees"}
    assert COMPILED not in artifact.files
    assert artifact.manifest.serving is not None
    assert artifact.manifest.serving.compiled_unavailable == spec["compiled"]["unavailable"]
    scorer = load_scorer(artifact)
    assert scorer.runtime.startswith("lightgbm")
    assert (
        scorer.fallback_reason == "no compiled trees: no C compiler (cc) to link the compiled trees"
    )


def test_platform_mismatch_allows_a_newer_c_library_only():
    here = platform_tag()
    assert platform_mismatch(here) is None
    if here["libc_version"]:
        assert platform_mismatch({**here, "libc_version": "2.0"}) is None
        assert platform_mismatch({**here, "libc_version": "999.0"}) is not None


def test_the_compiled_library_loads_without_lleaves_or_llvmlite(model_dir):
    # What the serving image has: the library is loaded with ctypes alone.
    code = f"""
import json, sys
sys.modules["lleaves"] = None
sys.modules["llvmlite"] = None
from churnops.artifact import load_artifact
from churnops.inference import load_scorer
scorer = load_scorer(load_artifact({str(model_dir)!r}), allow_fallback=False)
print(json.dumps({{"runtime": scorer.runtime, "reason": scorer.fallback_reason}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["runtime"].startswith("compiled trees")
    assert report["reason"] is None


@pytest.mark.parametrize(
    ("compile_code", "reason"),
    [
        ("raise RuntimeError('no target for this CPU')", "RuntimeError: no target for this CPU"),
        ("import os; os.abort()", "exit code -6"),  # LLVM crashing: training goes on
    ],
)
def test_a_failed_compile_is_recorded_and_the_text_model_serves(
    lgbm_result, tmp_path, monkeypatch, compile_code, reason
):
    from churnops.pipeline.train import export_model

    monkeypatch.setattr(export, "_COMPILE", compile_code)
    artifact = export_model(lgbm_result, tmp_path / "plain")
    unavailable = _spec(artifact.path)["compiled"]["unavailable"]
    assert unavailable.startswith("lleaves could not compile the model: ")
    assert reason in unavailable
    assert load_scorer(artifact).runtime.startswith("lightgbm")


def _model_text(model_dir: Path) -> tuple[bytes, int]:
    spec = _spec(model_dir)
    return (model_dir / spec["model_file"]).read_bytes(), spec["compiled"]["n_features"]


def test_inlining_follows_what_the_time_budget_leaves(model_dir, monkeypatch):
    text, width = _model_text(model_dir)
    assert export.compile_lightgbm(text, width)[1]["inlined"] is True  # no budget
    assert export.compile_lightgbm(text, width, 600.0)[1]["inlined"] is True
    # Expected to take more than half of what is left: compiled without inlining, and it loads.
    monkeypatch.setattr(export, "INLINED_SECONDS_PER_LEAF", 10.0)
    library, details = export.compile_lightgbm(text, width, 600.0)
    assert details["inlined"] is False
    runtime = load_runtime(CompiledTreesRuntime.name, library, 1, COMPILED, details)
    reference = load_runtime(LightGBMRuntime.name, text, 1)
    rows = np.random.default_rng(3).normal(size=(500, width))
    assert np.max(np.abs(runtime.score(rows) - reference.score(rows))) <= export.PARITY_TOLERANCE


def test_a_compile_longer_than_the_budget_left_is_stopped_and_the_text_model_serves(
    lgbm_result, tmp_path, monkeypatch
):
    import dataclasses
    import time

    from churnops.pipeline.train import export_model

    monkeypatch.setattr(export, "_COMPILE", "import time; time.sleep(60)")
    # The search took the whole budget: one second is all a compile may take.
    spent = dataclasses.replace(
        lgbm_result, settings=dataclasses.replace(lgbm_result.settings, time_budget=1.0)
    )
    started = time.monotonic()
    artifact = export_model(spent, tmp_path / "late")
    assert time.monotonic() - started < 30
    unavailable = _spec(artifact.path)["compiled"]["unavailable"]
    assert "took longer than the 1 s the time budget left" in unavailable
    assert load_scorer(artifact).runtime.startswith("lightgbm")
