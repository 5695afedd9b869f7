"""The fitted model's own feature importances, per column of its feature matrix."""

from __future__ import annotations

from typing import Any

import numpy as np

from churnops.inference.layout import FeatureLayout
from churnops.pipeline.export import UnsupportedModelError, layout_from_pipeline
from churnops.schema import Schema


def column_importance(pipeline: Any, schema: Schema) -> dict[str, Any] | None:
    """Importance of each matrix column, named by the input field it came from.

    LightGBM models give the total gain of the splits on a column; scikit-learn forests their
    impurity decrease. A one-hot category is one column (``field=category``); summing a field's
    columns gives the field's importance. None when the model reports no importance.

    Returns
    -------
    dict or None
        ``{"kind": "gain" | "impurity", "estimator": class name, "columns": [{"field",
        "column", "importance"}, ...]}`` in matrix order.
    """
    estimator = pipeline.named_steps["automl"].model.estimator
    booster = getattr(estimator, "booster_", None)
    if booster is not None:
        kind = "gain"
        values = np.asarray(booster.feature_importance(importance_type="gain"), dtype=float)
    elif hasattr(estimator, "feature_importances_"):
        kind = "impurity"
        values = np.asarray(estimator.feature_importances_, dtype=float)
    else:
        return None
    try:
        names = column_names(layout_from_pipeline(pipeline, schema))
    except UnsupportedModelError:
        return None
    if len(names) != len(values):
        return None
    return {
        "kind": kind,
        "estimator": type(estimator).__name__,
        "columns": [
            {"field": field, "column": column, "importance": float(value)}
            for (field, column), value in zip(names, values, strict=True)
        ],
    }


def column_names(layout: FeatureLayout) -> list[tuple[str, str]]:
    """(field, column) of each matrix column: numeric fields, then one-hot categories."""
    names = [(c.name, c.name) for c in layout.numeric]
    for block in layout.categorical:
        names += [(block.name, f"{block.name}={category}") for category in block.categories]
        if block.missing_is_category:
            names.append((block.name, f"{block.name}=(missing)"))
    return names


def field_importance(columns: list[dict[str, Any]]) -> dict[str, float]:
    """Columns' importances summed per input field, as shares of the total, largest first."""
    totals: dict[str, float] = {}
    for column in columns:
        totals[column["field"]] = totals.get(column["field"], 0.0) + float(column["importance"])
    grand = sum(totals.values())
    shares = {k: (v / grand if grand > 0 else 0.0) for k, v in totals.items()}
    return dict(sorted(shares.items(), key=lambda item: -item[1]))
