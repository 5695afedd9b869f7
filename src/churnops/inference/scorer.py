"""Score customer records: the fast data-only path, or the pickled pipeline as a fallback."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from churnops.artifact import (
    LAYOUT_FILE,
    PIPELINE_FILE,
    PROFILE_FILE,
    SERVING_SPEC,
    UNAVAILABLE_FILE,
    ModelArtifact,
)
from churnops.errors import ArtifactError, ExplainError
from churnops.inference.layout import (
    CategoricalColumn,
    Encoded,
    FeatureLayout,
    InputWarning,
    NumericColumn,
)
from churnops.inference.runtime import RUNTIMES, PipelineRuntime, Players, Runtime, load_runtime
from churnops.schema import Schema


@dataclass(frozen=True)
class Explanation:
    """Each field's contribution (Shapley values, in log-odds) to each record's positive class.

    For record ``i``, ``base_value[i] + contributions[i].sum()`` is the log-odds
    ``log(p / (1 - p))`` of its served probability ``p`` of the positive class.
    """

    fields: tuple[str, ...]
    """The model's input fields, in the layout's order."""
    contributions: np.ndarray
    """Records × fields; a categorical field's one-hot columns are summed."""
    base_value: np.ndarray
    """Per record: the log-odds contributions start from: the model's expected output
    (TreeSHAP) or its reference customer's (baseline Shapley, for linear leaves)."""


@dataclass(frozen=True)
class Scores:
    """Scores of a batch of records, in input order."""

    positive_probability: np.ndarray
    is_positive: np.ndarray
    """Booleans: whether each record's predicted label is ``positive_label``."""
    warnings: dict[int, list[InputWarning]]
    positive_label: str
    negative_label: str
    explanation: Explanation | None = None
    """Only when asked for (``explain=True``)."""

    @functools.cached_property
    def labels(self) -> list[str]:
        """Each record's predicted label (made when asked: a million labels take 50 ms)."""
        labels: list[str] = np.where(
            self.is_positive, self.positive_label, self.negative_label
        ).tolist()
        return labels

    def probability_of_label(self) -> np.ndarray:
        """Probability of each record's predicted label."""
        p = self.positive_probability
        return np.where(self.is_positive, p, 1.0 - p)


class Scorer(Protocol):
    """What the API and batch scoring need from a model."""

    fast: bool
    runtime: str
    fallback_reason: str | None
    classes: tuple[str, str]
    positive_label: str
    threshold: float
    layout: FeatureLayout

    def score_records(self, records: Sequence[Any], *, explain: bool = False) -> Scores: ...

    def score_columns(
        self, columns: Mapping[str, Any], rows: int, *, explain: bool = False
    ) -> Scores: ...

    def cannot_explain(self) -> str | None: ...


class _Base:
    classes: tuple[str, str]
    positive_label: str
    negative_label: str
    threshold: float
    layout: FeatureLayout
    ranges: TrainingRanges
    model: Runtime

    def __init__(self, artifact: ModelArtifact, model: Runtime, classes: Sequence[Any]) -> None:
        self.model = model
        self.runtime = model.description
        self.classes = (str(classes[0]), str(classes[1]))
        self.positive_label = artifact.schema.positive_label
        self.negative_label = (
            self.classes[0] if self.classes[1] == self.positive_label else self.classes[1]
        )
        self.threshold = artifact.threshold

    def _scores(
        self, p: np.ndarray, encoded: Encoded, explanation: Explanation | None = None
    ) -> Scores:
        self.ranges.check(encoded)
        return Scores(
            p, p >= self.threshold, encoded.warnings, self.positive_label, self.negative_label,
            explanation,
        )  # fmt: skip

    def cannot_explain(self) -> str | None:
        """Why this model's predictions cannot be explained, or None when they can."""
        return self.model.cannot_explain()


# Batches up to this many records are checked against the training ranges in plain Python.
FEW_RECORDS = 4
# Larger ones are checked this many rows at a time.
RANGE_BLOCK_ROWS = 16_384


class TrainingRanges:
    """The range of each numeric column seen in training, to flag values outside it.

    Such a value is scored as given (the model never saw one like it, so its score is an
    extrapolation) and reported as an ``out_of_range`` warning of its record.
    """

    def __init__(self, layout: FeatureLayout, schema: Schema) -> None:
        features = {f.name: f for f in schema.numeric}
        self.names = [c.name for c in layout.numeric]
        lows, highs = [], []
        for name in self.names:
            feature = features.get(name)
            low = feature.minimum if feature is not None else None
            high = feature.maximum if feature is not None else None
            lows.append(-np.inf if low is None else low)
            highs.append(np.inf if high is None else high)
        self.low = np.array(lows, dtype=np.float64)
        self.high = np.array(highs, dtype=np.float64)
        self.bounds = list(zip(self.low.tolist(), self.high.tolist(), strict=True))

    def check(self, encoded: Encoded) -> None:
        """Add a warning to ``encoded`` for every numeric value outside its training range."""
        block = encoded.matrix[:, : len(self.names)]
        if len(block) <= FEW_RECORDS:
            # A few records (the API's common case): compared in Python, several times faster
            # than numpy's per-call overhead. NaN (missing) compares false either way.
            bounds = self.bounds
            outside: list[Any] = [
                (i, j)
                for i, row in enumerate(block.tolist())
                for j, (value, (low, high)) in enumerate(zip(row, bounds, strict=True))
                if value < low or value > high
            ]
        else:
            # A block of rows at a time: its comparisons stay in cache (1M rows: 73 to 55 ms).
            outside = []
            for a in range(0, len(block), RANGE_BLOCK_ROWS):
                part = block[a : a + RANGE_BLOCK_ROWS]
                found = np.argwhere((part < self.low) | (part > self.high))
                if len(found):
                    found[:, 0] += a
                    outside += found.tolist()
        for i, j in outside:
            value, low, high = float(block[i, j]), float(self.low[j]), float(self.high[j])
            side = "below" if value < low else "above"
            encoded.warnings.setdefault(i, []).append(
                InputWarning(
                    f"field '{self.names[j]}': {value:.15g} is {side} the range seen in "
                    f"training ({low:.15g} to {high:.15g}); scored as given",
                    self.names[j],
                    "out_of_range",
                )
            )


class FastScorer(_Base):
    """Records → feature matrix → a data-only runtime, with no pandas, scikit-learn or pickle."""

    fast: bool = True
    fallback_reason: str | None = None

    def __init__(
        self,
        artifact: ModelArtifact,
        spec: Mapping[str, Any],
        model: Runtime,
        explainer: Runtime | None = None,
    ) -> None:
        super().__init__(artifact, model, spec["classes"])
        # What computes contributions: the scoring runtime itself, or for compiled trees the
        # spec's own runtime on the same model (native code has no TreeSHAP).
        self.explainer = explainer or model
        self.layout = FeatureLayout.from_dict(artifact.read_json(LAYOUT_FILE))
        self._no_reference: str | None = None
        reference = None
        if self.explainer.needs_reference:
            try:
                reference = reference_customer(self.layout, artifact)
            except ExplainError as exc:
                self._no_reference = str(exc)
        self.players = Players(self.layout.field_of_column, len(self.layout.fields), reference)
        self.ranges = TrainingRanges(self.layout, artifact.schema)

    def cannot_explain(self) -> str | None:
        return self.explainer.cannot_explain() or self._no_reference

    def score_records(self, records: Sequence[Any], *, explain: bool = False) -> Scores:
        return self._score(self.layout.encode_records(records), explain)

    def score_columns(
        self, columns: Mapping[str, Any], rows: int, *, explain: bool = False
    ) -> Scores:
        return self._score(self.layout.encode_columns(columns, rows), explain)

    def _score(self, encoded: Encoded, explain: bool) -> Scores:
        p = self.model.score(encoded.matrix)
        if not explain:
            return self._scores(p, encoded)
        reason = self.cannot_explain()
        if reason is not None:
            raise ExplainError(reason)
        contributions = self.explainer.contributions(encoded.matrix, self.players)
        explanation = Explanation(
            self.layout.fields, contributions.values, contributions.base_value
        )
        return self._scores(p, encoded, explanation)


class PipelineScorer(_Base):
    """A runtime that reads the input table (the pickled pipeline), validated like the fast path."""

    fast: bool = False

    def __init__(self, artifact: ModelArtifact, model: Runtime, reason: str) -> None:
        super().__init__(artifact, model, getattr(model, "classes", artifact.schema.classes))
        # The pickled pipeline's own order of its classes decides which column is positive.
        model.positive_index = self.classes.index(self.positive_label)
        self.fallback_reason: str | None = reason
        if LAYOUT_FILE in artifact.files:
            self.layout = FeatureLayout.from_dict(artifact.read_json(LAYOUT_FILE))
        else:  # validation from the schema alone: categories as learned, one block each
            schema = artifact.schema
            self.layout = FeatureLayout(
                tuple(NumericColumn(f.name, f.allows_missing) for f in schema.numeric),
                tuple(
                    CategoricalColumn(f.name, f.categories, f.allows_missing, False)
                    for f in schema.categorical
                ),
            )
        self.ranges = TrainingRanges(self.layout, artifact.schema)
        self._names = [c.name for c in self.layout.numeric] + [
            c.name for c in self.layout.categorical
        ]

    def score_records(self, records: Sequence[Any], *, explain: bool = False) -> Scores:
        import pandas as pd

        self._check_explain(explain)
        encoded = self.layout.encode_records(records)  # same validation as the fast path
        frame = pd.DataFrame([{n: r.get(n) for n in self._names} for r in records], dtype=object)
        return self._scores(self.model.score(frame), encoded)

    def score_columns(
        self, columns: Mapping[str, Any], rows: int, *, explain: bool = False
    ) -> Scores:
        import pandas as pd

        self._check_explain(explain)
        encoded = self.layout.encode_columns(columns, rows)
        frame = pd.DataFrame({n: columns[n] for n in self._names})
        return self._scores(self.model.score(frame), encoded)

    def cannot_explain(self) -> str | None:
        return (
            f"{self.model.cannot_explain()}; why there is no serving form: {self.fallback_reason}"
        )

    def _check_explain(self, explain: bool) -> None:
        reason = self.cannot_explain()
        if explain and reason is not None:
            raise ExplainError(reason)


def reference_customer(layout: FeatureLayout, artifact: ModelArtifact) -> np.ndarray:
    """The encoded row of the artifact's typical customer, from its reference profile: the
    mean of each numeric field and the most common category of each categorical field in the
    training data.

    Raises
    ------
    ExplainError
        The artifact has no reference profile, or it lacks a field's mean or categories.
    """
    if PROFILE_FILE not in artifact.files:
        raise ExplainError("the artifact has no reference profile to take a reference from")
    features = artifact.read_json(PROFILE_FILE).get("features", {})
    record: dict[str, Any] = {}
    for numeric in layout.numeric:
        mean = features.get(numeric.name, {}).get("mean")
        if mean is None:
            raise ExplainError(f"the reference profile has no mean of {numeric.name!r}")
        record[numeric.name] = float(mean)
    for categorical in layout.categorical:
        shares = features.get(categorical.name, {}).get("category_shares") or {}
        known = {c: v for c, v in shares.items() if c in categorical.index}
        if not known:
            raise ExplainError(f"the reference profile has no categories of {categorical.name!r}")
        record[categorical.name] = max(known, key=lambda c: known[c])
    return np.asarray(layout.encode_records([record]).matrix[0], dtype=np.float64)


def load_scorer(
    artifact: ModelArtifact, *, allow_fallback: bool = True, compiled: bool = True
) -> Scorer:
    """Return the fastest scorer ``artifact`` supports: the one place a runtime is chosen.

    The serving spec names the runtime and its model file; without one, the pickled pipeline
    serves (unless ``allow_fallback`` is false). A compiled model recorded beside it serves
    first (unless ``compiled`` is false); when it cannot load here (another platform, a library
    that does not load), the spec's own runtime serves and ``fallback_reason`` says why.

    Raises
    ------
    ArtifactError
        When there is no serving form and ``allow_fallback`` is false, or a model file cannot
        be loaded by its runtime.
    """
    files = artifact.files
    if SERVING_SPEC in files:
        spec = artifact.read_json(SERVING_SPEC)
        name, model_file, reason = str(spec["runtime"]), str(spec["model_file"]), ""
        positive = int(spec["positive_index"])
        source = f"{artifact.path / model_file} (the model_file of {SERVING_SPEC})"
    else:
        if UNAVAILABLE_FILE in files:
            reason = str(artifact.read_json(UNAVAILABLE_FILE).get("reason", "unknown reason"))
        else:
            reason = "the artifact has no serving form (written by an older churnops)"
        if not allow_fallback:
            raise ArtifactError(f"{artifact.path}: no fast scoring path: {reason}")
        spec, name, model_file = {}, PipelineRuntime.name, PIPELINE_FILE
        schema = artifact.schema
        positive = schema.classes.index(schema.positive_label)
        source = str(artifact.path / model_file)
    model = load_runtime(name, artifact.read_bytes(model_file), positive, source=source)
    if compiled and spec.get("compiled"):
        fast, reason = _compiled(artifact, spec, positive)
        if fast is not None:
            return FastScorer(artifact, spec, fast, explainer=model)
    if RUNTIMES[name].reads == "table":
        return PipelineScorer(artifact, model, reason)
    scorer = FastScorer(artifact, spec, model)
    scorer.fallback_reason = reason or None
    return scorer


def _compiled(
    artifact: ModelArtifact, spec: Mapping[str, Any], positive: int
) -> tuple[Runtime | None, str]:
    """The compiled model of ``spec``, or None and why it cannot serve here."""
    entry = spec["compiled"]
    if "unavailable" in entry:
        return None, f"no compiled trees: {entry['unavailable']}"
    model_file = str(entry["model_file"])
    source = f"{artifact.path / model_file} (the compiled model_file of {SERVING_SPEC})"
    try:
        data = artifact.read_bytes(model_file)
        return load_runtime(str(entry["runtime"]), data, positive, source, entry), ""
    except ArtifactError as exc:
        return None, f"compiled trees not used: {exc}"
