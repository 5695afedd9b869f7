"""Serving runtimes: each evaluates one kind of model file, without pickle where it can.

A runtime is one class: its ``name`` (the ``runtime`` of the serving spec), the ``suffix`` of the
model file it reads, ``load`` from that file's verified bytes, and ``score`` giving the positive
class's probabilities. All runtimes are registered in :data:`RUNTIMES`; the one that serves an
artifact is chosen in :func:`churnops.inference.scorer.load_scorer`. Turning a fitted pipeline
into a runtime's file is export-time work, in :mod:`churnops.pipeline.export`.

Measured on the 2-core development machine (2026-11-24), 300-tree ensembles, 40 features,
one record: LightGBM's ``Booster`` on its text model 56 µs (its C API called directly: see
below); treelite GTIL 144 µs (LightGBM)
and 126 µs (random forest); ONNX Runtime 26 µs but it computes in float32 (|Δp| up to 3e-3
against scikit-learn's forest), too far from the pipeline for a drop-in replacement. So:

- LightGBM models are served by LightGBM's C library from its text format: bit-identical.
  When the model could be compiled at export (lleaves: LLVM machine code, 5 µs a row, measured
  2026-11-30, 300 trees), the compiled library serves instead (within 1e-15 of LightGBM, checked
  at export within 1e-9); the text model stays in the artifact, the reference for explanations
  and what serves wherever the library cannot load (another platform, a damaged file).
- Random forests and extra trees (scikit-learn) are served by treelite's GTIL from a treelite
  checkpoint; scikit-learn compares float32 inputs with its thresholds, so inputs are rounded to
  float32 first, which makes the results identical too.
- Anything else is served by the fitted scikit-learn pipeline itself (the pickled fallback).
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import io
import os
import platform
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from churnops.artifact import PIPELINE_FILE, SERVING_SPEC
from churnops.errors import ArtifactError, ExplainError
from churnops.inference.layout import usable_cpus

SMALL_BATCH = 1024


@dataclass(frozen=True)
class Players:
    """The input fields contributions are given for.

    ``of_column[k]`` is the field (0 to ``count - 1``) that column ``k`` of the feature matrix
    encodes: a numeric field is one column, a categorical field its one-hot block. Models
    explained against a reference customer (:class:`churnops.inference.shapley.BaselineShapley`)
    also need ``reference``, that customer's encoded row.
    """

    of_column: np.ndarray
    count: int
    reference: np.ndarray | None = None

    def sum(self, columns: np.ndarray) -> np.ndarray:
        """Rows × fields: each field's columns summed (a categorical field's one-hot block)."""
        out = np.zeros((columns.shape[0], self.count), dtype=np.float64)
        present, starts = np.unique(self.of_column, return_index=True)
        if len(present):
            out[:, present] = np.add.reduceat(columns, starts, axis=1)
        return out


@dataclass(frozen=True)
class Contributions:
    """Each field's contribution to each row's log-odds of the served probability.

    ``base_value + values.sum(axis=1)`` is the log-odds (logit) of the positive class's
    probability, as :meth:`Runtime.score` gives it, for each row.
    """

    values: np.ndarray
    """Rows × fields (:class:`Players`)."""
    base_value: np.ndarray
    """Per row: the log-odds the contributions start from."""


class Runtime(ABC):
    """A model file loaded for scoring.

    Subclasses set ``name`` and ``suffix``, implement :meth:`load` and :meth:`score`, and are
    added to :data:`RUNTIMES`.
    """

    name: ClassVar[str]
    """Registry key, stored as ``runtime`` in the serving spec."""
    suffix: ClassVar[str]
    """Extension of the model file this runtime reads."""
    reads: ClassVar[Literal["matrix", "table"]] = "matrix"
    """What :meth:`score` takes: the encoded feature matrix, or the raw input table."""
    description: str
    """The library and its version, as reported by the server."""
    positive_index: int
    """Position of the positive class among the model's classes."""

    @classmethod
    @abstractmethod
    def load(
        cls, data: bytes, positive_index: int, details: Mapping[str, Any] | None = None
    ) -> Runtime:
        """Load a model file's bytes; ``positive_index`` is the positive class's position.

        ``details`` is what the serving spec records about the file beyond its name (the
        compiled runtime's feature count and platform); most runtimes need none.
        """

    @abstractmethod
    def score(self, X: Any) -> np.ndarray:
        """Probability of the positive class for each row of ``X``."""

    def cannot_explain(self) -> str | None:
        """Why :meth:`contributions` is unavailable for this model, or None when it is not."""
        return f"the {self.description} runtime computes no feature contributions"

    @property
    def needs_reference(self) -> bool:
        """Whether :meth:`contributions` needs :attr:`Players.reference`."""
        return False

    def contributions(self, X: Any, players: Players) -> Contributions:
        """Each field's contribution to the log-odds of :meth:`score`'s output.

        Raises
        ------
        ExplainError
            The model cannot be explained (:meth:`cannot_explain` says why).
        """
        raise ExplainError(self.cannot_explain() or "no feature contributions")


class LightGBMRuntime(Runtime):
    """A LightGBM binary classifier loaded from its text model, evaluated by LightGBM's C library.

    The library is called through its C API (``LGBM_BoosterLoadModelFromString``,
    ``LGBM_BoosterPredictForMat``), exactly as the ``lightgbm`` Python package does, because that
    package imports pandas and scikit-learn whenever they are installed and the serving process
    must stay free of both. The results are the package's results, bit for bit.
    """

    name = "lightgbm-text"
    suffix = ".txt"

    _FLOAT64 = 1  # C_API_DTYPE_FLOAT64
    _PREDICT_NORMAL = 0  # C_API_PREDICT_NORMAL
    _PREDICT_CONTRIB = 3  # C_API_PREDICT_CONTRIB: SHAP values, then the expected value

    def __init__(self, model_text: bytes, positive_index: int) -> None:
        header = _check_lightgbm_header(model_text)
        self._lib = _lightgbm_library()
        self.positive_index = positive_index
        self._handle = ctypes.c_void_p()
        iterations = ctypes.c_int()
        self._check(
            self._lib.LGBM_BoosterLoadModelFromString(
                ctypes.c_char_p(model_text), ctypes.byref(iterations), ctypes.byref(self._handle)
            )
        )
        features = ctypes.c_int()
        self._check(self._lib.LGBM_BoosterGetNumFeature(self._handle, ctypes.byref(features)))
        self.n_features = features.value
        self.description = f"lightgbm {_version('lightgbm')} (C API)"
        self.sigmoid_scale, self._unexplainable = _lightgbm_link(header)
        # Trees with linear leaves: LightGBM computes no TreeSHAP for them (see shapley.py).
        linear = b"\nis_linear=1" in model_text
        self._linear_text = model_text.decode() if linear else None
        self._baseline: tuple[Players, Any] | None = None

    @classmethod
    def load(
        cls, data: bytes, positive_index: int, details: Mapping[str, Any] | None = None
    ) -> LightGBMRuntime:
        return cls(data, positive_index)

    def score(self, X: np.ndarray) -> np.ndarray:
        out = self._predict(X, self._PREDICT_NORMAL, 1)[:, 0]
        # scikit-learn's predict_proba for a binary booster is [1 - p, p].
        return out if self.positive_index == 1 else 1.0 - out

    def cannot_explain(self) -> str | None:
        return self._unexplainable

    @property
    def needs_reference(self) -> bool:
        return self._linear_text is not None

    def contributions(self, X: np.ndarray, players: Players) -> Contributions:
        if self._unexplainable is not None:
            raise ExplainError(self._unexplainable)
        # The raw score r gives p = sigmoid(sigmoid_scale * r), so logit(p) = sigmoid_scale * r;
        # the negative class's log-odds are the opposite.
        scale = self.sigmoid_scale if self.positive_index == 1 else -self.sigmoid_scale
        if self._linear_text is None:
            out = self._predict(X, self._PREDICT_CONTRIB, self.n_features + 1)  # TreeSHAP
            return Contributions(players.sum(out[:, :-1]) * scale, out[:, -1] * scale)
        if players.reference is None:
            raise ExplainError("a model with linear leaves is explained against a reference")
        if self._baseline is None or self._baseline[0] is not players:
            from churnops.inference.shapley import BaselineShapley

            try:
                explainer = BaselineShapley(self._linear_text, players.of_column, players.count)
            except ValueError as exc:
                self._unexplainable = f"the model's trees cannot be explained: {exc}"
                raise ExplainError(self._unexplainable) from exc
            self._baseline = (players, explainer)
        values, base = self._baseline[1](np.asarray(X, dtype=np.float64), players.reference)
        return Contributions(values * scale, np.full(len(values), base * scale))

    def _predict(self, X: np.ndarray, kind: int, width: int) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        row_major = not (X.flags.f_contiguous and not X.flags.c_contiguous)
        X = np.ascontiguousarray(X) if row_major else X
        if X.ndim != 2 or X.shape[1] != self.n_features:
            # The layout and the model file of one artifact disagree: the artifact is wrong.
            raise ArtifactError(
                f"the serving model expects {self.n_features} features, its layout gives "
                f"{X.shape[1] if X.ndim == 2 else X.shape}"
            )
        out = np.empty((X.shape[0], width), dtype=np.float64)
        written = ctypes.c_int64()
        self._check(
            self._lib.LGBM_BoosterPredictForMat(
                self._handle,
                X.ctypes.data_as(ctypes.c_void_p),
                ctypes.c_int(self._FLOAT64),
                ctypes.c_int32(X.shape[0]),
                ctypes.c_int32(X.shape[1]),
                ctypes.c_int(1 if row_major else 0),
                ctypes.c_int(kind),
                ctypes.c_int(0),  # start iteration
                ctypes.c_int(-1),  # all iterations
                # Small batches on one thread: waking OpenMP workers costs more than the trees,
                # and idle ones spin on the cores the server's event loop needs.
                ctypes.c_char_p(b"num_threads=1" if X.shape[0] < SMALL_BATCH else b""),
                ctypes.byref(written),
                out.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
            )
        )
        return out

    def _check(self, code: int) -> None:
        if code != 0:
            raise RuntimeError(self._lib.LGBM_GetLastError().decode())

    def __del__(self) -> None:
        handle = getattr(self, "_handle", None)
        if handle is not None and handle.value:
            self._lib.LGBM_BoosterFree(handle)


@functools.cache
def _lightgbm_library() -> ctypes.CDLL:
    spec = importlib.util.find_spec("lightgbm")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("LightGBM is not installed")
    for folder in spec.submodule_search_locations:
        for name in ("lib_lightgbm.so", "lib_lightgbm.dylib", "lib_lightgbm.dll"):
            path = Path(folder) / "lib" / name
            if path.exists():
                lib = ctypes.cdll.LoadLibrary(str(path))
                lib.LGBM_GetLastError.restype = ctypes.c_char_p
                return lib
    raise ImportError("LightGBM's shared library was not found")


def _check_lightgbm_header(model_text: bytes) -> dict[bytes, bytes]:
    """Refuse bytes that are not a binary classifier in LightGBM's text format.

    Checked here because LightGBM writes its own ``[LightGBM] [Fatal]`` line to stderr before
    it reports a model it cannot parse; most wrong files are caught before it sees them.
    """
    header: dict[bytes, bytes] = {}
    lines = model_text[:4096].split(b"\n")
    for line in lines[1:]:
        if not line.strip():
            break
        key, _, value = line.partition(b"=")
        header[key.strip()] = value.strip()
    if lines[0].strip() != b"tree" or b"version" not in header:
        raise ValueError("not a LightGBM text model (no 'tree' and 'version' header)")
    if header.get(b"num_class") != b"1":
        raise ValueError(
            f"not a binary LightGBM model (num_class={header.get(b'num_class', b'?').decode()})"
        )
    return header


def _lightgbm_link(header: dict[bytes, bytes]) -> tuple[float, str | None]:
    """The scale ``s`` of the model's sigmoid (p = 1 / (1 + exp(-s * raw score))), and why its
    predictions cannot be explained, if they cannot."""
    objective = header.get(b"objective", b"").decode(errors="replace").split()
    if objective[:1] in (["cross_entropy"], ["xentropy"]):
        scale = 1.0
    elif objective[:1] == ["binary"]:
        options = dict(o.partition(":")[::2] for o in objective[1:])
        scale = float(options.get("sigmoid", "1"))
    else:
        return 1.0, f"LightGBM objective {' '.join(objective) or '?'!r} has no log-odds to explain"
    return scale, None


def _version(distribution: str) -> str:
    from importlib.metadata import version

    return version(distribution)


class CompiledTreesRuntime(Runtime):
    """A LightGBM model compiled to machine code at export (lleaves), loaded with ctypes.

    The model file is a shared library exporting ``forest_root(const double *rows, double *out,
    int32 start, int32 end)``: it scores rows ``[start, end)`` of a row-major float64 matrix,
    sigmoid included, as LightGBM's ``predict`` does. Loading it needs neither lleaves nor LLVM,
    only the C library, so the serving image carries nothing more. The library is native code:
    it is loaded only from a verified artifact, from the verified bytes themselves (an anonymous
    in-memory file, never a path that could change after the check), and only on the platform
    it was built for (``details["platform"]``, recorded at export); anywhere else loading fails
    with the reason and the scorer serves the LightGBM text model of the same artifact instead.
    """

    name = "lightgbm-compiled"
    suffix = ".so"
    ENTRY = "forest_root"

    def __init__(
        self, library: ctypes.CDLL, n_features: int, positive_index: int, description: str
    ) -> None:
        self._library = library  # keeps the code mapped while the entry point is in use
        self._entry = library[self.ENTRY]
        self._entry.restype = None
        self._entry.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int32, ctypes.c_int32]
        self.n_features = n_features
        self.positive_index = positive_index
        self.description = description
        self._threads = usable_cpus()
        self._pool: Any = None

    @classmethod
    def load(
        cls, data: bytes, positive_index: int, details: Mapping[str, Any] | None = None
    ) -> CompiledTreesRuntime:
        details = details or {}
        n_features = details.get("n_features")
        if type(n_features) is not int or n_features < 1:
            raise ValueError("the serving spec records no feature count for the compiled model")
        built = details.get("platform")
        if not isinstance(built, Mapping):
            raise ValueError("the serving spec records no platform for the compiled model")
        mismatch = platform_mismatch(built)
        if mismatch is not None:
            raise ValueError(mismatch)
        if not data.startswith(b"\x7fELF"):
            raise ValueError("not a shared library (no ELF header)")
        library = _open_library(data)
        if not hasattr(library, cls.ENTRY):
            raise ValueError(f"the library has no {cls.ENTRY} function")
        compiler = str(details.get("compiler", "unknown compiler"))
        return cls(library, n_features, positive_index, f"compiled trees ({compiler}, ctypes)")

    def score(self, X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=np.float64)  # the library reads rows
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ArtifactError(
                f"the compiled model expects {self.n_features} features, its layout gives "
                f"{X.shape[1] if X.ndim == 2 else X.shape}"
            )
        rows = X.shape[0]
        out = np.empty(rows, dtype=np.float64)
        if rows < SMALL_BATCH or self._threads == 1:
            self._run(X, out, 0, rows)
        else:  # the call releases the GIL: one slice of rows per core
            if self._pool is None:
                from concurrent.futures import ThreadPoolExecutor

                self._pool = ThreadPoolExecutor(self._threads, "churnops-trees")
            step = -(-rows // self._threads)
            slices = [(start, min(start + step, rows)) for start in range(0, rows, step)]
            for done in [self._pool.submit(self._run, X, out, a, b) for a, b in slices]:
                done.result()
        return out if self.positive_index == 1 else 1.0 - out

    def _run(self, X: np.ndarray, out: np.ndarray, start: int, end: int) -> None:
        # The entry point counts rows in int32: larger slices go in pieces, each from its own
        # offset so no index passed to the library exceeds a piece.
        piece = 1 << 30
        if end - start < piece:  # one call; the common case, kept short for single records
            self._entry(X.ctypes.data, out.ctypes.data, start, end)
            return
        for a in range(start, end, piece):
            b = min(a + piece, end)
            self._entry(X[a:b].ctypes.data, out[a:b].ctypes.data, 0, b - a)


def platform_tag() -> dict[str, str]:
    """This process's platform, as recorded with a compiled model and checked when loading one."""
    libc, libc_version = platform.libc_ver()
    return {
        "system": platform.system(),
        "machine": platform.machine(),
        "libc": libc,
        "libc_version": libc_version,
    }


def platform_mismatch(built: Mapping[str, Any]) -> str | None:
    """Why a library built on ``built`` cannot load here, or None when it can.

    System, machine and C library must be the same; the C library here may be newer (glibc
    keeps old symbols), never older.
    """
    here = platform_tag()

    def shown(tag: Mapping[str, Any]) -> str:
        libc = f" {tag.get('libc')} {tag.get('libc_version')}" if tag.get("libc") else ""
        return f"{tag.get('system')} {tag.get('machine')}{libc}"

    same = all(str(built.get(key, "")) == here[key] for key in ("system", "machine", "libc"))
    if same and _numbers_of(str(built.get("libc_version", ""))) <= _numbers_of(
        here["libc_version"]
    ):
        return None
    return f"compiled for {shown(built)}, this is {shown(here)}"


def _numbers_of(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def _open_library(data: bytes) -> ctypes.CDLL:
    """Load a shared library from its bytes: through an anonymous in-memory file on Linux (no
    path another process could change between the check and the load), else a private temporary
    file removed at once.

    The in-memory file stays open for the life of the process, as the library stays loaded (a
    library is never unloaded): the C library's loader knows a library by its path, and a
    closed descriptor's number, given to the next model's file, would name the old library.
    """
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("churnops-model", os.MFD_CLOEXEC)
        try:
            _write_all(fd, data)
            return ctypes.CDLL(f"/proc/self/fd/{fd}", mode=os.RTLD_LOCAL)
        except BaseException:
            os.close(fd)
            raise
    import tempfile

    with tempfile.TemporaryDirectory(prefix="churnops-") as folder:
        path = Path(folder) / "model.so"
        path.write_bytes(data)
        return ctypes.CDLL(str(path), mode=os.RTLD_LOCAL)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class TreeliteRuntime(Runtime):
    """A scikit-learn forest converted to a treelite checkpoint, evaluated by GTIL.

    Its contributions are TreeSHAP values computed by LightGBM's C library on the same trees
    (rewritten in LightGBM's text format, once, when first asked): exact path-dependent
    TreeSHAP of the forest's averaged probability, with the trees' weighted sample counts as
    cover, as ``shap.TreeExplainer`` computes it. A forest averages probabilities, not
    log-odds, so the values are then carried to log-odds: each is multiplied by
    ``(logit(p) - logit(E[p])) / (p - E[p])``, which keeps TreeSHAP's signs and ranking and
    makes them sum exactly to the log-odds of the served probability (clipped to
    ``[PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR]``: a forest may answer exactly 0 or 1).
    """

    name = "treelite-checkpoint"
    suffix = ".treelite"

    def __init__(self, model: object, positive_index: int, description: str) -> None:
        self.model = model
        self.positive_index = positive_index
        self.description = description
        self._explainer: LightGBMRuntime | str | None = None

    @classmethod
    def load(
        cls, data: bytes, positive_index: int, details: Mapping[str, Any] | None = None
    ) -> TreeliteRuntime:
        import treelite

        model = treelite.Model.deserialize_bytes(data)
        return cls(model, positive_index, f"treelite {treelite.__version__} (GTIL)")

    def score(self, X: np.ndarray) -> np.ndarray:
        import treelite

        # Small batches on one thread: GTIL otherwise starts a thread per core for each call,
        # which on a busy machine costs far more than the trees (measured: 0.3 ms against 0.13 s
        # for one record, 2 cores under load).
        threads = 1 if len(X) < SMALL_BATCH else 0
        out = treelite.gtil.predict(self.model, _as_float32(X), nthread=threads)  # type: ignore[arg-type]
        return np.asarray(out, dtype=np.float64).reshape(len(X), -1)[:, self.positive_index]

    def cannot_explain(self) -> str | None:
        explainer = self._tree_shap()
        return explainer if isinstance(explainer, str) else None

    def contributions(self, X: np.ndarray, players: Players) -> Contributions:
        explainer = self._tree_shap()
        if isinstance(explainer, str):
            raise ExplainError(explainer)
        out = explainer._predict(_as_float32(X), explainer._PREDICT_CONTRIB, X.shape[1] + 1)
        phi, expected = out[:, :-1], out[:, -1]  # in probability
        gap = phi.sum(axis=1)
        p = _clip(expected + gap)
        base = _logit(_clip(expected))
        slope = 1.0 / (p * (1.0 - p))  # d logit / dp: the limit where p = E[p]
        moved = np.abs(gap) > 1e-12
        ratio = np.divide(_logit(p) - base, gap, out=slope, where=moved)
        return Contributions(players.sum(phi) * ratio[:, None], base)

    def _tree_shap(self) -> LightGBMRuntime | str:
        if self._explainer is None:
            try:
                text = forest_as_lightgbm(self.model, self.positive_index)
            except ValueError as exc:
                self._explainer = f"the forest cannot be explained: {exc}"
            else:
                self._explainer = LightGBMRuntime(text, positive_index=1)
        return self._explainer


PROBABILITY_FLOOR = 1e-6
"""Probabilities are clipped to [floor, 1 - floor] before their log-odds are taken."""


def _as_float32(X: np.ndarray) -> np.ndarray:
    # scikit-learn trees compare float32 inputs with their thresholds.
    return np.asarray(X).astype(np.float32).astype(np.float64)


def _clip(p: np.ndarray) -> np.ndarray:
    return np.asarray(np.clip(p, PROBABILITY_FLOOR, 1.0 - PROBABILITY_FLOOR), dtype=np.float64)


def _logit(p: np.ndarray) -> np.ndarray:
    return np.asarray(np.log(p) - np.log1p(-p), dtype=np.float64)


def forest_as_lightgbm(model: Any, positive_index: int) -> bytes:
    """A treelite forest of binary classifiers as a LightGBM text model of the same trees.

    Each leaf holds the positive class's probability divided by the number of trees, so the
    raw score is the forest's average; node and leaf counts are the trees' sample weights
    (``sum_hess``, scikit-learn's ``weighted_n_node_samples``), the cover of TreeSHAP.

    Raises
    ------
    ValueError
        The forest uses what LightGBM's trees cannot express (categorical splits, a
        comparison other than ``<=`` or ``<``, another kind of output).
    """
    header = model.get_header_accessor()
    shape = [int(v) for v in header.get_field("leaf_vector_shape")]
    if not int(header.get_field("average_tree_output")[0]) or shape != [1, 2]:
        raise ValueError("it is not an average of binary class probabilities")
    n_features, n_trees = int(model.num_feature), int(model.num_tree)
    lines = [
        "tree",
        "version=v4",
        "num_class=1",
        "num_tree_per_iteration=1",
        "label_index=0",
        f"max_feature_idx={n_features - 1}",
        "objective=regression",
        "feature_names=" + " ".join(f"Column_{j}" for j in range(n_features)),
        "feature_infos=" + " ".join(["none"] * n_features),
        "",
    ]
    for t in range(n_trees):
        tree = _lightgbm_tree(model.get_tree_accessor(t), positive_index, n_trees)
        lines += [f"Tree={t}", *tree, "", ""]
    lines += ["end of trees", ""]
    return "\n".join(lines).encode()


_LEAF, _NUMERICAL = 0, 1  # treelite's node types
_LT, _LE = 2, 3  # treelite's comparison operators


def _lightgbm_tree(tree: Any, positive_index: int, n_trees: int) -> list[str]:
    """One treelite tree in LightGBM's text form (internal nodes 0.., leaves ~0, ~1..)."""
    kind = tree.get_field("node_type")
    if np.any((kind != _LEAF) & (kind != _NUMERICAL)):
        raise ValueError("it has categorical splits")
    if not tree.get_field("sum_hess_present").all():
        raise ValueError("its trees record no sample weights (the cover TreeSHAP needs)")
    left, right = tree.get_field("cleft"), tree.get_field("cright")
    is_leaf = kind == _LEAF
    # LightGBM's number of each node: its rank among the splits or, bit-inverted, the leaves.
    number = np.where(is_leaf, ~(np.cumsum(is_leaf) - 1), np.cumsum(~is_leaf) - 1)
    splits, leaves = np.flatnonzero(~is_leaf), np.flatnonzero(is_leaf)
    cover = tree.get_field("sum_hess")
    if not np.all((cover == np.round(cover)) & (cover < 2**31)):
        cover = cover * (2.0**30 / cover.max())  # LightGBM reads counts as integers
    counts = np.round(cover).astype(np.int64)
    begin = tree.get_field("leaf_vector_begin")[leaves].astype(np.int64)
    end = tree.get_field("leaf_vector_end")[leaves].astype(np.int64)
    if np.any(end - begin != 2):
        raise ValueError("a leaf does not hold two class probabilities")
    values = tree.get_field("leaf_vector")[begin + positive_index] / n_trees
    comparison = tree.get_field("cmp")[splits]
    if np.any((comparison != _LE) & (comparison != _LT)):
        raise ValueError("a split compares other than with <= or <")
    threshold = tree.get_field("threshold")[splits]
    # x < t is x <= the float below t; an infinite threshold is the largest float (x is finite).
    threshold = np.where(comparison == _LT, np.nextafter(threshold, -np.inf), threshold)
    threshold = np.clip(threshold, -np.finfo(np.float64).max, np.finfo(np.float64).max)
    # Missing values (NaN) go the node's default way, as in treelite and scikit-learn.
    decision = (tree.get_field("default_left")[splits].astype(np.int64) * 2) | (2 << 2)

    def row(key: str, items: Any) -> str:
        return f"{key}=" + " ".join(repr(float(v)) if key in FLOATS else str(v) for v in items)

    zeros = np.zeros(len(splits), dtype=np.int64)
    return [
        f"num_leaves={len(leaves)}",
        "num_cat=0",
        row("split_feature", tree.get_field("split_index")[splits]),
        row("split_gain", zeros),
        row("threshold", threshold),
        row("decision_type", decision),
        row("left_child", number[left[splits]]),
        row("right_child", number[right[splits]]),
        row("leaf_value", values),
        row("leaf_weight", np.zeros(len(leaves), dtype=np.int64)),
        row("leaf_count", counts[leaves]),
        row("internal_value", zeros),
        row("internal_weight", zeros),
        row("internal_count", counts[splits]),
        "is_linear=0",
        "shrinkage=1",
    ]


FLOATS = frozenset({"threshold", "leaf_value"})


class PipelineRuntime(Runtime):
    """The fitted scikit-learn pipeline (pickled): the fallback when there is no serving form.

    It reads the raw input table, not the encoded matrix, and needs the training extra.
    """

    name = "pipeline"
    suffix = Path(PIPELINE_FILE).suffix
    reads = "table"

    def __init__(self, pipeline: Any, positive_index: int) -> None:
        self.pipeline = pipeline
        self.positive_index = positive_index
        self.classes = tuple(str(c) for c in pipeline.classes_)
        self.description = f"scikit-learn {_version('scikit-learn')} pipeline"

    @classmethod
    def load(
        cls, data: bytes, positive_index: int, details: Mapping[str, Any] | None = None
    ) -> PipelineRuntime:
        import joblib  # only here: the fast runtimes never unpickle

        return cls(joblib.load(io.BytesIO(data)), positive_index)

    def score(self, X: Any) -> np.ndarray:
        return np.asarray(self.pipeline.predict_proba(X)[:, self.positive_index], dtype=np.float64)

    def cannot_explain(self) -> str | None:
        return (
            "the model is served by its pickled scikit-learn pipeline (it has no data-only "
            "serving form), which computes no feature contributions"
        )


RUNTIMES: dict[str, type[Runtime]] = {
    runtime.name: runtime
    for runtime in (LightGBMRuntime, CompiledTreesRuntime, TreeliteRuntime, PipelineRuntime)
}
"""Every runtime, by name: the one place a new runtime is registered."""


def load_runtime(
    name: str,
    data: bytes,
    positive_index: int,
    source: str = f"the model_file of {SERVING_SPEC}",
    details: Mapping[str, Any] | None = None,
) -> Runtime:
    """Load a model file with the runtime called ``name``.

    Raises
    ------
    ArtifactError
        Unknown runtime, or the bytes are not a model the runtime can load (a signed artifact
        whose spec names the wrong file); the message names ``source`` and the library's reason.
    """
    runtime = RUNTIMES.get(name)
    if runtime is None:
        raise ArtifactError(f"unknown serving runtime {name!r}")
    try:
        return runtime.load(data, positive_index, details)
    except ImportError:
        raise  # a missing library is an installation problem, not a bad artifact
    except Exception as exc:  # the libraries raise RuntimeError, ValueError, their own errors
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ArtifactError(f"{source} cannot be loaded as a {name} model: {reason}") from exc
