"""Reference profiles: what the training data and the model's scores looked like.

The profile travels in the artifact; drift detection compares live traffic with it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from churnops.schema import Schema

QUANTILE_BINS = 10
SCORE_BINS = 10


def reference_profile(X: pd.DataFrame, schema: Schema, scores: np.ndarray) -> dict[str, Any]:
    """Summarise cleaned training features and held-out scores for later drift checks.

    Numeric columns get decile bin edges with the share of rows per bin (so live data can be
    binned the same way for PSI), mean, standard deviation and missing rate; categorical
    columns get the share of each category; scores get a histogram on [0, 1].
    """
    features: dict[str, Any] = {}
    for feature in schema.features:
        values = X[feature.name]
        missing = values.isna()
        entry: dict[str, Any] = {"kind": feature.kind, "missing_rate": float(missing.mean())}
        present = values[~missing]
        if feature.kind == "numeric":
            numbers = present.to_numpy(dtype=np.float64)
            if numbers.size:
                edges = np.unique(np.quantile(numbers, np.linspace(0, 1, QUANTILE_BINS + 1)))
                inner = edges[1:-1]
                counts = np.bincount(
                    np.searchsorted(inner, numbers, side="right"), minlength=len(inner) + 1
                )
                entry.update(
                    bin_edges=inner.tolist(),
                    bin_shares=(counts / numbers.size).tolist(),
                    mean=float(numbers.mean()),
                    std=float(numbers.std()),
                    minimum=float(numbers.min()),
                    maximum=float(numbers.max()),
                )
        else:
            shares = present.astype(str).value_counts(normalize=True).sort_index()
            entry["category_shares"] = {str(k): float(v) for k, v in shares.items()}
        features[feature.name] = entry
    score_counts, score_edges = np.histogram(
        np.asarray(scores, dtype=np.float64), bins=SCORE_BINS, range=(0, 1)
    )
    return {
        "rows": len(X),
        "features": features,
        "scores": {
            "bin_edges": score_edges.tolist(),
            "bin_shares": (score_counts / max(len(scores), 1)).tolist(),
            "mean": float(np.mean(scores)) if len(scores) else None,
        },
    }
