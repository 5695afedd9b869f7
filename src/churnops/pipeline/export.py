"""Derive the data-only serving form from a fitted Pipeline (at export time, never when serving).

Each serving runtime of :data:`churnops.inference.runtime.RUNTIMES` that can be produced from a
fitted estimator has a converter here, registered under the runtime's name in
:data:`CONVERTERS`. Adding a runtime is one class there and one converter here.

A LightGBM model is also compiled to machine code (:func:`compile_lightgbm`) when lleaves and
a C linker are at hand: the library is checked like every serving form and recorded in the
spec's ``compiled`` entry beside the text model, or the entry says why there is none.
"""

from __future__ import annotations

import importlib.util
import json
import math
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from churnops.artifact.manifest import LAYOUT_FILE, SERVING_DIR, SERVING_SPEC, UNAVAILABLE_FILE
from churnops.errors import ArtifactError, RecordError
from churnops.inference.layout import CategoricalColumn, FeatureLayout, NumericColumn
from churnops.inference.runtime import (
    RUNTIMES,
    CompiledTreesRuntime,
    LightGBMRuntime,
    Runtime,
    TreeliteRuntime,
    load_runtime,
    platform_tag,
)
from churnops.schema import Schema

# Largest |p_fast - p_pipeline| accepted when the serving form is checked at export.
PARITY_TOLERANCE = 1e-9


class UnsupportedModelError(Exception):
    """The fitted pipeline cannot be expressed in the data-only serving form."""


def _lightgbm(estimator: Any) -> bytes | None:
    if type(estimator).__name__ != "LGBMClassifier":
        return None
    return bytes(estimator.booster_.model_to_string().encode())


def _treelite(estimator: Any) -> bytes | None:
    if type(estimator).__name__ not in ("RandomForestClassifier", "ExtraTreesClassifier"):
        return None
    try:
        import treelite
    except ImportError as exc:  # pragma: no cover - treelite is a base dependency
        raise UnsupportedModelError(f"treelite is not installed ({exc})") from exc
    return bytes(treelite.sklearn.import_model(estimator).serialize_bytes())


CONVERTERS: dict[str, Callable[[Any], bytes | None]] = {
    LightGBMRuntime.name: _lightgbm,
    TreeliteRuntime.name: _treelite,
}
"""Runtime name → converter: the runtime's model file for a fitted estimator, or None when the
converter does not handle that kind of estimator. Tried in order; the first that handles it wins."""


def convert(estimator: Any) -> tuple[str, bytes]:
    """Return the name of the runtime that serves ``estimator`` and its model file's bytes.

    Raises
    ------
    UnsupportedModelError
        No registered converter handles this kind of estimator.
    """
    for name, converter in CONVERTERS.items():
        data = converter(estimator)
        if data is not None:
            return name, data
    raise UnsupportedModelError(f"no data-only runtime for {type(estimator).__name__}")


def layout_from_pipeline(pipeline: Any, schema: Schema) -> FeatureLayout:
    """Read the exact column layout the fitted ``prepare`` step produces."""
    prepare = pipeline.named_steps["prepare"]
    numeric: list[NumericColumn] = []
    categorical: list[CategoricalColumn] = []
    for name, transformer, columns in prepare.transformers_:
        if name == "numeric":
            numeric += [NumericColumn(c, schema.feature(c).allows_missing) for c in columns]
        elif name == "categorical":
            encoder = transformer[-1]
            if encoder.drop is not None or encoder.handle_unknown != "ignore":
                raise UnsupportedModelError(
                    "the one-hot encoder drops categories or rejects unknown ones"
                )
            for column, categories in zip(columns, encoder.categories_, strict=True):
                known = [c for c in categories if not _is_missing(c)]
                categorical.append(
                    CategoricalColumn(
                        column,
                        tuple(str(c) for c in known),
                        schema.feature(column).allows_missing,
                        missing_is_category=len(known) < len(categories),
                    )
                )
        elif name not in ("ids", "remainder"):
            raise UnsupportedModelError(f"unknown prepare step {name!r}")
    optional = (*schema.id_columns, *schema.ignored_columns)
    return FeatureLayout(tuple(numeric), tuple(categorical), optional)


def serving_files(
    pipeline: Any, schema: Schema, check_rows: Any, compile_seconds: float | None = None
) -> dict[str, bytes]:
    """Return the artifact files of the serving form, or a file saying why there is none.

    The form is checked before it is written: on ``check_rows`` (a DataFrame of held-out
    customers) its probabilities must equal the pipeline's within ``PARITY_TOLERANCE``.
    ``compile_seconds``: what a time budget leaves for compiling trees (see
    :func:`compile_lightgbm`); None, no limit.
    """
    try:
        layout = layout_from_pipeline(pipeline, schema)
    except UnsupportedModelError as exc:
        return {UNAVAILABLE_FILE: _json({"reason": str(exc)})}
    try:
        classes = [str(c) for c in pipeline.classes_]
        positive_index = classes.index(schema.positive_label)
        kind, model_bytes = convert(pipeline.named_steps["automl"].model.estimator)
        model = load_runtime(kind, model_bytes, positive_index)
        check_rows = _valid_rows(layout, check_rows)
        expected = pipeline.predict_proba(check_rows)[:, positive_index]
        matrix = layout.encode_columns(_columns(check_rows), len(check_rows)).matrix
        worst = _parity(model, matrix, expected)
    except UnsupportedModelError as exc:
        return {
            UNAVAILABLE_FILE: _json({"reason": str(exc)}),
            LAYOUT_FILE: _json(layout.to_dict()),
        }
    model_file = f"{SERVING_DIR}/model{RUNTIMES[kind].suffix}"
    spec = {
        "runtime": kind,
        "model_file": model_file,
        "layout_file": LAYOUT_FILE,
        "classes": classes,
        "positive_index": positive_index,
        "checked_rows": len(expected),
        "max_abs_difference": worst,
    }
    files = {LAYOUT_FILE: _json(layout.to_dict()), model_file: model_bytes}
    if kind == LightGBMRuntime.name:
        compiled_file = f"{SERVING_DIR}/model{CompiledTreesRuntime.suffix}"
        try:
            library, details = compile_lightgbm(model_bytes, layout.width, compile_seconds)
            compiled = load_runtime(
                CompiledTreesRuntime.name, library, positive_index, compiled_file, details
            )
            spec["compiled"] = {
                "runtime": CompiledTreesRuntime.name,
                "model_file": compiled_file,
                **details,
                "checked_rows": len(expected),
                "max_abs_difference": _parity(compiled, matrix, expected),
            }
            files[compiled_file] = library
        except (UnsupportedModelError, ArtifactError) as exc:
            spec["compiled"] = {"unavailable": str(exc)}
    return {SERVING_SPEC: _json(spec), **files}


def serving_summary(files: dict[str, bytes]) -> dict[str, str | None]:
    """What the manifest records of :func:`serving_files`' result (its ``serving`` field)."""
    if SERVING_SPEC not in files:
        reason = json.loads(files[UNAVAILABLE_FILE]).get("reason")
        return {"runtime": None, "unavailable": reason}
    spec = json.loads(files[SERVING_SPEC])
    compiled = spec.get("compiled") or {}
    return {
        "runtime": spec["runtime"],
        "compiled": compiled.get("runtime"),
        "compiled_unavailable": compiled.get("unavailable"),
    }


# Run by compile_lightgbm in a child process: argv = model text file, object file to write,
# "1" to inline the trees' functions.
_COMPILE = """
import sys
import lleaves
model = lleaves.Model(model_file=sys.argv[1])
model.compile(cache=sys.argv[2], finline=sys.argv[3] == "1", target_cpu="generic",
              target_cpu_features="")
print(model.num_feature())
"""
# lleaves' compile time a leaf with its functions inlined, on the 2-core development machine
# (2026-12-01, 124 trees of 85 leaves): 16.7 s inlined, 3.0 s not. Inlined code scores large
# batches twice as fast (2.1M against 0.92M rows/s), single rows alike (9.2 and 9.7 µs).
INLINED_SECONDS_PER_LEAF = 0.0016
COMPILE_TIMEOUT = 1800.0  # seconds, without a time budget


def compile_lightgbm(
    model_text: bytes, n_features: int, seconds: float | None = None
) -> tuple[bytes, dict[str, Any]]:
    """Compile a LightGBM text model into a shared library for :class:`CompiledTreesRuntime`.

    lleaves turns the trees into LLVM machine code for a generic CPU of this architecture (no
    instruction set extension the serving machine might lack); the system's C compiler links it
    into a shared library. Returns the library's bytes and what the spec records about it.

    ``seconds`` is what a time budget leaves for it: the trees' functions are inlined (the
    faster code, the slower compile) only when that is expected to take at most half of it, and
    a compile still running after ``seconds`` is stopped (the artifact then serves the text
    model, bit-identical and slower). None: inlined, and up to :data:`COMPILE_TIMEOUT`.

    Raises
    ------
    UnsupportedModelError
        lleaves or a C compiler is missing, compiling or linking failed, or compiling took
        longer than ``seconds``; the message says which.
    """
    if importlib.util.find_spec("lleaves") is None:
        raise UnsupportedModelError("lleaves is not installed (the train extra)")
    linker = shutil.which("cc") or shutil.which("gcc")
    if linker is None:
        raise UnsupportedModelError("no C compiler (cc) to link the compiled trees")
    with tempfile.TemporaryDirectory(prefix="churnops-compile-") as folder:
        text, obj, library = (Path(folder) / n for n in ("model.txt", "model.o", "model.so"))
        text.write_bytes(model_text)
        leaves = sum(int(n) for n in re.findall(rb"^num_leaves=(\d+)", model_text, re.MULTILINE))
        inline = seconds is None or leaves * INLINED_SECONDS_PER_LEAF <= seconds / 2
        timeout = COMPILE_TIMEOUT if seconds is None else max(seconds, 1.0)
        # In a process of its own: LLVM's memory (about 85 MB) is not added to training's, and
        # a crash inside LLVM ends that process, not the training run.
        try:
            done = subprocess.run(  # noqa: S603  this interpreter, on files this function wrote
                [sys.executable, "-c", _COMPILE, str(text), str(obj), "1" if inline else "0"],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise UnsupportedModelError(
                f"compiling the trees ({leaves} leaves) took longer than the {timeout:.0f} s "
                "the time budget left"
            ) from exc
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines() or [f"exit code {done.returncode}"]
            raise UnsupportedModelError(f"lleaves could not compile the model: {lines[-1]}")
        features = int(done.stdout.strip().splitlines()[-1])
        if features != n_features:
            raise UnsupportedModelError(
                f"the compiled model reads {features} features, the layout gives {n_features}"
            )
        # noexecstack: LLVM's object file has no stack note, and without it the linker asks for
        # an executable stack, which recent C libraries refuse to load.
        command = [linker, "-shared", "-Wl,-z,noexecstack", "-o", str(library), str(obj), "-lm"]
        done = subprocess.run(  # noqa: S603  the system's cc on files this function wrote
            command, capture_output=True, text=True, timeout=600, check=False
        )
        if done.returncode != 0:
            reason = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[0]
            raise UnsupportedModelError(f"linking the compiled trees failed: {reason}")
        data = library.read_bytes()
    details = {
        "n_features": n_features,
        "platform": platform_tag(),
        "compiler": f"lleaves {version('lleaves')}, llvmlite {version('llvmlite')}",
        "target_cpu": "generic",
        "inlined": inline,
    }
    return data, details


def _parity(model: Runtime, matrix: np.ndarray, expected: np.ndarray) -> float:
    """Largest difference between ``model``'s scores and the pipeline's; refused above
    ``PARITY_TOLERANCE``."""
    got = model.score(matrix)
    worst = float(np.max(np.abs(got - expected))) if len(expected) else 0.0
    if not worst <= PARITY_TOLERANCE:
        raise UnsupportedModelError(
            f"{model.name} serving form differs from the pipeline by {worst:.2e}"
        )
    return worst


def _valid_rows(layout: FeatureLayout, frame: Any) -> Any:
    """Drop the rows validation refuses (e.g. a blank where training had none)."""
    for _ in range(len(frame)):
        try:
            layout.encode_columns(_columns(frame), len(frame))
            return frame
        except RecordError as exc:
            bad = {r for p in exc.problems if isinstance(r := p.get("record"), int)}
            if not bad:
                raise UnsupportedModelError(f"cannot check the serving form: {exc}") from exc
            frame = frame.drop(index=frame.index[sorted(bad)])
    return frame


def _columns(frame: Any) -> dict[str, Any]:
    return {str(name): frame[name].to_numpy() for name in frame.columns}


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _json(value: Any) -> bytes:
    return (json.dumps(value, indent=2) + "\n").encode()
