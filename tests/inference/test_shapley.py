"""Baseline Shapley values of LightGBM models with linear leaves, against their definition."""

from __future__ import annotations

import itertools
import math

import lightgbm as lgb
import numpy as np
import pytest

from churnops.inference.shapley import BaselineShapley

# Five fields: four numeric columns and a two-column one-hot block.
FIELD_OF_COLUMN = np.array([0, 1, 2, 3, 4, 4])


def _data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(800, 6))
    X[:, 5] = rng.random(800) > 0.5
    X[:, 4] = 1 - X[:, 5]
    X[::9, 2] = np.nan
    X[::13, 0] = np.nan
    signal = X[:, 0] + X[:, 1] * np.nan_to_num(X[:, 2]) + X[:, 5]
    y = (np.nan_to_num(signal) + rng.normal(size=800) > 0).astype(int)
    return X, y


def _by_definition(booster, x, reference):
    """Shapley values over the five fields, every coalition scored by LightGBM itself."""
    players = 5

    def value(coalition):
        z = reference.copy()
        taken = np.isin(FIELD_OF_COLUMN, list(coalition))
        z[taken] = x[taken]
        return booster.predict(z[None, :], raw_score=True)[0]

    phi = np.zeros(players)
    for p in range(players):
        others = [q for q in range(players) if q != p]
        for size in range(players):
            weight = math.factorial(size) * math.factorial(players - size - 1)
            weight /= math.factorial(players)
            for coalition in itertools.combinations(others, size):
                phi[p] += weight * (value({*coalition, p}) - value(set(coalition)))
    return phi


@pytest.mark.parametrize(
    "params",
    [
        {"linear_tree": True, "num_leaves": 5},
        {"linear_tree": True, "num_leaves": 9, "linear_lambda": 0.1},
        {"num_leaves": 7},  # constant leaves: the same values by the same rules
    ],
)
def test_values_are_baseline_shapley_values(params):
    X, y = _data()
    booster = lgb.train({"objective": "binary", "verbose": -1, **params}, lgb.Dataset(X, y), 30)
    explainer = BaselineShapley(booster.model_to_string(), FIELD_OF_COLUMN, 5)
    reference = np.nanmean(X, axis=0)
    reference[4:] = [1.0, 0.0]
    values, base = explainer(X[:200], reference)
    raw = booster.predict(X[:200], raw_score=True)
    np.testing.assert_allclose(values.sum(axis=1) + base, raw, rtol=0, atol=1e-9)
    assert base == pytest.approx(booster.predict(reference[None, :], raw_score=True)[0], abs=1e-12)
    # Rows with and without missing values (rows 0, 9, 13, 18, 26 lack one or two).
    for i in (0, 1, 9, 13, 18, 26):
        np.testing.assert_allclose(values[i], _by_definition(booster, X[i], reference), atol=1e-9)
