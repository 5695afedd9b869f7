"""Every metric churnops accepts is one FLAML can rank a two-class search by."""

from __future__ import annotations

import pytest

from churnops.data.dataset import synthetic_dataset
from churnops.errors import ConfigError
from churnops.pipeline.build import CLASSIFICATION_METRICS, AutoMLSettings
from churnops.pipeline.train import train_model


def test_the_metrics_come_from_flaml_and_leave_out_regression_and_multiclass():
    assert {"log_loss", "roc_auc", "f1", "accuracy", "ap"} <= set(CLASSIFICATION_METRICS)
    assert not {"r2", "rmse", "mae", "mse", "mape", "roc_auc_ovr"} & set(CLASSIFICATION_METRICS)
    with pytest.raises(ConfigError, match=r"unknown metric 'rmse'; FLAML's classification"):
        AutoMLSettings(metric="rmse")


@pytest.mark.slow
@pytest.mark.parametrize("metric", CLASSIFICATION_METRICS)
def test_a_search_ranks_trials_by_each_accepted_metric(metric):
    dataset = synthetic_dataset(300, seed=1)
    seen = []
    settings = AutoMLSettings(time_budget=None, max_iter=2, n_jobs=1, metric=metric, refit=False)
    result = train_model(dataset, settings, progress=seen.append)
    assert result.search.summary["trials"] >= 1
    assert seen
    assert seen[-1].metric == metric
    assert seen[-1].best_score is not None
