"""Behavioural tests of a model trained on the real Telco data."""

from __future__ import annotations

import numpy as np
import pytest

from churnops.data.dataset import DataSpec, load_dataset
from churnops.pipeline.build import AutoMLSettings
from churnops.pipeline.train import positive_probability, train_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def telco_model(telco_path):
    dataset = load_dataset(telco_path, DataSpec())
    return train_model(dataset, AutoMLSettings(time_budget=None, max_iter=12, n_jobs=2))


def test_minimum_quality_on_held_out_rows(telco_model):
    metrics = telco_model.metrics
    assert metrics["rows"] == telco_model.test.rows
    assert metrics["roc_auc"] >= 0.80
    assert metrics["log_loss"] <= 0.46
    assert metrics["accuracy"] >= 0.77


def test_customer_id_does_not_matter(telco_model):
    rows = telco_model.test.X.head(300).copy()
    before = positive_probability(telco_model.pipeline, rows, "Yes")
    rows["customerID"] = [f"{i:04d}-ZZZZZ" for i in range(len(rows))]
    after = positive_probability(telco_model.pipeline, rows, "Yes")
    np.testing.assert_array_equal(before, after)


def test_month_to_month_does_not_lower_risk_versus_two_year(telco_model):
    rows = telco_model.test.X.copy()
    monthly = rows.assign(Contract="Month-to-month")
    two_year = rows.assign(Contract="Two year")
    p_monthly = positive_probability(telco_model.pipeline, monthly, "Yes")
    p_two_year = positive_probability(telco_model.pipeline, two_year, "Yes")
    assert p_monthly.mean() > p_two_year.mean() + 0.05
    assert np.mean(p_monthly >= p_two_year) >= 0.95


def test_longer_tenure_does_not_raise_risk_on_average(telco_model):
    rows = telco_model.test.X.copy()
    short = positive_probability(telco_model.pipeline, rows.assign(tenure=2.0), "Yes")
    long = positive_probability(telco_model.pipeline, rows.assign(tenure=60.0), "Yes")
    assert short.mean() > long.mean()
