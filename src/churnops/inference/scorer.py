"""Score customer records: the fast data-only path, or the pickled pipeline as a fallback."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from churnops.artifact import ModelArtifact
from churnops.errors import ArtifactError
from churnops.inference.export import LAYOUT_FILE, SPEC_FILE, UNAVAILABLE_FILE
from churnops.inference.layout import Encoded, FeatureLayout
from churnops.inference.runtime import TreeModel, load_tree_model


@dataclass(frozen=True)
class Scores:
    """Scores of a batch of records, in input order."""

    positive_probability: np.ndarray
    labels: list[str]
    warnings: dict[int, list[str]]
    positive_label: str

    def probability_of_label(self) -> np.ndarray:
        """Probability of each record's predicted label."""
        is_positive = np.array([label == self.positive_label for label in self.labels], dtype=bool)
        p = self.positive_probability
        return np.where(is_positive, p, 1.0 - p)


class Scorer(Protocol):
    """What the API and batch scoring need from a model."""

    fast: bool
    runtime: str
    fallback_reason: str | None
    classes: tuple[str, str]
    positive_label: str
    threshold: float

    def score_records(self, records: Sequence[Any]) -> Scores: ...

    def score_columns(self, columns: Mapping[str, Any], rows: int) -> Scores: ...


class _Base:
    classes: tuple[str, str]
    positive_label: str
    threshold: float
    layout: FeatureLayout

    def _scores(self, p: np.ndarray, encoded: Encoded) -> Scores:
        negative = self.classes[0] if self.classes[1] == self.positive_label else self.classes[1]
        labels = np.where(p >= self.threshold, self.positive_label, negative).tolist()
        return Scores(p, labels, encoded.warnings, self.positive_label)


class FastScorer(_Base):
    """Records → feature matrix → tree ensemble, with no pandas, scikit-learn or pickle."""

    fast: bool = True
    fallback_reason: str | None = None

    def __init__(self, artifact: ModelArtifact, spec: Mapping[str, Any]) -> None:
        self.layout = FeatureLayout.from_dict(artifact.read_json(LAYOUT_FILE))
        self.model: TreeModel = load_tree_model(
            spec["runtime"],
            artifact.read_bytes(spec["model_file"]),
            int(spec["positive_index"]),
            source=str(artifact.path / spec["model_file"]),
        )
        self.runtime = self.model.name
        self.classes = (str(spec["classes"][0]), str(spec["classes"][1]))
        self.positive_label = artifact.schema.positive_label
        self.threshold = artifact.threshold

    def score_records(self, records: Sequence[Any]) -> Scores:
        encoded = self.layout.encode_records(records)
        return self._scores(self.model.positive_probability(encoded.matrix), encoded)

    def score_columns(self, columns: Mapping[str, Any], rows: int) -> Scores:
        encoded = self.layout.encode_columns(columns, rows)
        return self._scores(self.model.positive_probability(encoded.matrix), encoded)


class PipelineScorer(_Base):
    """The fitted scikit-learn pipeline (pickled), used when no serving form is available."""

    fast: bool = False

    def __init__(self, artifact: ModelArtifact, reason: str) -> None:
        self.fallback_reason: str | None = reason
        self.pipeline = artifact.load_pipeline()
        import sklearn

        self.runtime = f"scikit-learn {sklearn.__version__} pipeline"
        self.classes = (str(self.pipeline.classes_[0]), str(self.pipeline.classes_[1]))
        self.positive_label = artifact.schema.positive_label
        self.threshold = artifact.threshold
        self._positive = list(self.classes).index(self.positive_label)
        if LAYOUT_FILE in artifact.files:
            self.layout = FeatureLayout.from_dict(artifact.read_json(LAYOUT_FILE))
        else:  # validation from the schema alone: categories as learned, one block each
            from churnops.inference.layout import CategoricalColumn, NumericColumn

            schema = artifact.schema
            self.layout = FeatureLayout(
                tuple(NumericColumn(f.name, f.allows_missing) for f in schema.numeric),
                tuple(
                    CategoricalColumn(f.name, f.categories, f.allows_missing, False)
                    for f in schema.categorical
                ),
            )
        self._names = [c.name for c in self.layout.numeric] + [
            c.name for c in self.layout.categorical
        ]

    def score_records(self, records: Sequence[Any]) -> Scores:
        import pandas as pd

        encoded = self.layout.encode_records(records)  # same validation as the fast path
        frame = pd.DataFrame([{n: r.get(n) for n in self._names} for r in records], dtype=object)
        return self._scores(self.pipeline.predict_proba(frame)[:, self._positive], encoded)

    def score_columns(self, columns: Mapping[str, Any], rows: int) -> Scores:
        import pandas as pd

        encoded = self.layout.encode_columns(columns, rows)
        frame = pd.DataFrame({n: columns[n] for n in self._names})
        return self._scores(self.pipeline.predict_proba(frame)[:, self._positive], encoded)


def load_scorer(artifact: ModelArtifact, *, allow_fallback: bool = True) -> Scorer:
    """Return the fastest scorer ``artifact`` supports.

    Raises
    ------
    ArtifactError
        When there is no serving form and ``allow_fallback`` is false.
    """
    files = artifact.files
    if SPEC_FILE in files:
        return FastScorer(artifact, artifact.read_json(SPEC_FILE))
    if UNAVAILABLE_FILE in files:
        reason = str(artifact.read_json(UNAVAILABLE_FILE).get("reason", "unknown reason"))
    else:
        reason = "the artifact has no serving form (written by an older churnops)"
    if not allow_fallback:
        raise ArtifactError(f"{artifact.path}: no fast scoring path: {reason}")
    return PipelineScorer(artifact, reason)
