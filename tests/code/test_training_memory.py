"""Training's memory savings change nothing in the model it fits."""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnops.data.dataset import synthetic_dataset
from churnops.pipeline import train as train_module
from churnops.pipeline.build import AutoMLSettings
from churnops.pipeline.train import positive_probability, train_model


def test_rows_ordered_for_flaml_give_the_search_flaml_would_run(monkeypatch):
    """The search on rows put in FLAML's shuffled order, with FLAML's splitter, selects the
    same configuration with the same losses and fits the same model as FLAML shuffling."""
    dataset = synthetic_dataset(2000, seed=11)
    settings = AutoMLSettings(time_budget=None, max_iter=5, n_jobs=1, seed=3)
    ordered = train_model(dataset, settings)
    monkeypatch.setattr(train_module, "_FLAML_RARE_CLASS", 10**9)  # FLAML shuffles itself
    shuffled = train_model(dataset, settings)
    assert ordered.search.summary["best_config"] == shuffled.search.summary["best_config"]
    assert [t["validation_loss"] for t in ordered.search.history] == [
        t["validation_loss"] for t in shuffled.search.history
    ]
    rows = dataset.X.head(500)
    np.testing.assert_array_equal(
        positive_probability(ordered.pipeline, rows, "Yes"),
        positive_probability(shuffled.pipeline, rows, "Yes"),
    )


def test_categorical_columns_are_pandas_categoricals():
    dataset = synthetic_dataset(300, seed=1)
    kinds = dataset.kinds
    for name, kind in kinds.items():
        column = dataset.X[name]
        if kind == "categorical":
            assert isinstance(column.dtype, pd.CategoricalDtype)
        else:
            assert column.dtype == np.float64
