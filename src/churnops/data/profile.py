"""Reference profiles: what the training data and the model's scores looked like.

The profile travels in the artifact; drift detection (:mod:`churnops.monitoring.drift`) compares
live traffic with it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from churnops.schema import Schema

QUANTILE_BINS = 10
SCORE_BINS = 10
# Quantiles at 0, 0.01, …, 1: enough to rebuild a sample's distribution within 1 % for tests.
QUANTILE_POINTS = 101


def reference_profile(X: pd.DataFrame, schema: Schema, scores: np.ndarray) -> dict[str, Any]:
    """Summarise cleaned training features and held-out scores for later drift checks.

    Numeric columns get bin edges with the share of rows per bin (so live data can be binned the
    same way for PSI): decile edges, or one bin per value for a column with at most
    ``QUANTILE_BINS`` distinct values (a 0/1 flag would otherwise get a single bin). They also
    get 101 quantiles and the count of present values (for a two-sample test), mean, standard
    deviation, range and missing rate. Categorical columns get the share of each category and
    the count of present values. Scores get a histogram on [0, 1], quantiles and their count.
    """
    features: dict[str, Any] = {}
    for feature in schema.features:
        values = X[feature.name]
        missing = values.isna()
        entry: dict[str, Any] = {"kind": feature.kind, "missing_rate": float(missing.mean())}
        present = values[~missing]
        entry["count"] = len(present)
        if feature.kind == "numeric":
            numbers = present.to_numpy(dtype=np.float64)
            if numbers.size:
                inner = _inner_edges(numbers)
                counts = np.bincount(
                    np.searchsorted(inner, numbers, side="right"), minlength=len(inner) + 1
                )
                entry.update(
                    bin_edges=inner.tolist(),
                    bin_shares=(counts / numbers.size).tolist(),
                    quantiles=_quantiles(numbers),
                    mean=float(numbers.mean()),
                    std=float(numbers.std()),
                    minimum=float(numbers.min()),
                    maximum=float(numbers.max()),
                )
        else:
            shares = present.astype(str).value_counts(normalize=True).sort_index()
            entry["category_shares"] = {str(k): float(v) for k, v in shares.items()}
        features[feature.name] = entry
    score_values = np.asarray(scores, dtype=np.float64)
    score_values = score_values[np.isfinite(score_values)]
    score_counts, score_edges = np.histogram(score_values, bins=SCORE_BINS, range=(0, 1))
    return {
        "rows": len(X),
        "features": features,
        "scores": {
            "bin_edges": score_edges.tolist(),
            "bin_shares": (score_counts / max(score_values.size, 1)).tolist(),
            "mean": float(np.mean(score_values)) if score_values.size else None,
            "count": int(score_values.size),
            "quantiles": _quantiles(score_values) if score_values.size else None,
        },
    }


def _inner_edges(numbers: np.ndarray) -> np.ndarray:
    """Inner bin edges: midpoints between values when few are distinct, else deciles."""
    distinct = np.unique(numbers)
    if len(distinct) <= QUANTILE_BINS:
        midpoints: np.ndarray = (distinct[:-1] + distinct[1:]) / 2
        return midpoints
    edges = np.unique(np.quantile(numbers, np.linspace(0, 1, QUANTILE_BINS + 1)))
    inner: np.ndarray = edges[1:-1]
    return inner


def _quantiles(numbers: np.ndarray) -> list[float]:
    points = np.quantile(numbers, np.linspace(0, 1, QUANTILE_POINTS))
    return [float(v) for v in points]
