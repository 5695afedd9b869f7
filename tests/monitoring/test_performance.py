"""Performance on logged predictions: the estimate from calibrated scores, realised figures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score, log_loss, roc_auc_score

from churnops.monitoring.performance import calibration, estimated, performance
from churnops.monitoring.window import Window


def scores(rows: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.round(rng.beta(1.2, 3.0, size=rows), 2)  # rounded: many ties, as trees give


def test_estimate_matches_what_calibrated_scores_realise_on_average():
    p = scores(20_000)
    guess = estimated(p, 0.5)
    rng = np.random.default_rng(1)
    realised = {"roc_auc": [], "log_loss": [], "f1": []}
    for _ in range(20):
        y = rng.random(len(p)) < p  # labels drawn as the scores say: calibrated
        realised["roc_auc"].append(roc_auc_score(y, p))
        realised["log_loss"].append(log_loss(y, p))
        realised["f1"].append(f1_score(y, p >= 0.5))
    for key, values in realised.items():
        assert guess[key] == pytest.approx(np.mean(values), abs=0.005), key


def test_estimate_is_not_the_truth_when_scores_are_not_calibrated():
    p = scores(20_000)
    y = np.random.default_rng(2).random(len(p)) < p**3  # fewer churners than the scores say
    assert abs(estimated(p, 0.5)["log_loss"] - log_loss(y, p)) > 0.05
    assert calibration(y, p)["expected_calibration_error"] > 0.1


def window(rows: int, labelled: float, seed: int = 3) -> Window:
    rng = np.random.default_rng(seed)
    p = scores(rows, seed)
    truth = np.where(rng.random(rows) < p, "Yes", "No")
    known = rng.random(rows) < labelled
    stamps = pd.Timestamp("2026-11-01", tz="UTC") + pd.to_timedelta(
        np.sort(rng.integers(0, 3 * 86_400, rows)), unit="s"
    )
    return Window(
        features=pd.DataFrame(index=range(rows)),
        probabilities=p,
        predicted=pd.Series(np.where(p >= 0.5, "Yes", "No")),
        actual=pd.Series(np.where(known, truth, None), dtype=object),
        logged_at=pd.Series(stamps),
        versions=("1",),
    )


def test_performance_per_day_realised_beside_estimated():
    w = window(6_000, labelled=0.5)
    rows = performance(w, "Yes", 0.5, period="D")
    assert [r["window"] for r in rows] == ["all", "2026-11-01", "2026-11-02", "2026-11-03"]
    assert sum(r["rows"] for r in rows[1:]) == rows[0]["rows"] == 6_000
    whole = rows[0]
    known = w.actual.notna().to_numpy()
    truth = (w.actual[known] == "Yes").to_numpy()
    assert whole["labelled"] == known.sum()
    assert whole["realised"]["roc_auc"] == pytest.approx(
        roc_auc_score(truth, w.probabilities[known])
    )
    assert whole["realised"]["roc_auc"] == pytest.approx(whole["estimated"]["roc_auc"], abs=0.03)


def test_without_labels_only_the_estimate_is_given():
    rows = performance(window(500, labelled=0.0), "Yes", 0.5, period=None)
    assert len(rows) == 1
    assert "realised" not in rows[0]
    assert 0.5 < rows[0]["estimated"]["roc_auc"] < 1
