"""The chapter's pipeline defects, kept out by regression tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnops.data.dataset import synthetic_dataset
from churnops.pipeline.build import AutoMLSettings, automl_fit_params, build_pipeline
from churnops.pipeline.evaluate import ThresholdPolicy, choose_threshold, evaluate
from churnops.pipeline.train import positive_probability, train_model


def test_total_charges_is_numeric_with_blanks_missing(synthetic_model):
    result, _ = synthetic_model
    feature = result.schema.feature("TotalCharges")
    assert feature.kind == "numeric"
    assert feature.allows_missing  # tenure-0 customers have a blank TotalCharges
    prepare = result.pipeline.named_steps["prepare"]
    total_columns = [n for n in prepare.get_feature_names_out() if "TotalCharges" in n]
    assert len(total_columns) == 1  # one number, not one indicator per distinct amount


def test_new_amounts_and_unseen_categories_are_scored(synthetic_model):
    result, _ = synthetic_model
    rows = result.test.X.head(3).copy()
    rows["TotalCharges"] = ["123456.78", "", "0.01"]  # amounts nobody had in training
    rows["Contract"] = ["Three year", "Month-to-month", "Lifetime"]  # unseen categories
    p = positive_probability(result.pipeline, rows, "Yes")
    assert p.shape == (3,)
    assert np.all((p >= 0) & (p <= 1))


def test_a_record_scores_the_same_alone_and_in_a_batch(synthetic_model):
    result, _ = synthetic_model
    batch = result.test.X.head(200)
    together = positive_probability(result.pipeline, batch, "Yes")
    alone = np.array(
        [
            positive_probability(result.pipeline, batch.iloc[[i]], "Yes")[0]
            for i in range(0, 200, 20)
        ]
    )
    np.testing.assert_array_equal(alone, together[::20])


def test_n_estimators_range_takes_effect_for_every_estimator():
    # FLAML ignores an unkeyed custom_hp; the chapter's range therefore never applied.
    dataset = synthetic_dataset(600, seed=5)
    settings = AutoMLSettings(
        time_budget=None, max_iter=6, estimators=("lgbm", "rf"), n_estimators=(30, 40), n_jobs=1
    )
    result = train_model(dataset, settings)
    searched = {}
    for trial in result.search.history:
        searched.setdefault(trial["learner"], []).append(trial["config"]["n_estimators"])
    assert set(searched) == {"lgbm", "rf"}
    for values in searched.values():
        assert all(30 <= v <= 40 for v in values), searched
    final = result.pipeline.named_steps["automl"].model.estimator
    assert 30 <= final.get_params()["n_estimators"] <= 40


def test_custom_hp_is_keyed_by_estimator():
    params = automl_fit_params(AutoMLSettings(estimators=("lgbm", "rf")))
    assert set(params["automl__custom_hp"]) == {"lgbm", "rf"}
    assert params["automl__estimator_list"] == ["lgbm", "rf"]


def test_pipeline_drops_id_columns(synthetic_model):
    result, _ = synthetic_model
    names = result.pipeline.named_steps["prepare"].get_feature_names_out()
    assert not any("customerID" in n for n in names)
    assert "customerID" in result.schema.id_columns


def test_evaluation_uses_held_out_rows_only(synthetic_model):
    result, _ = synthetic_model
    assert set(result.train.X.index).isdisjoint(result.test.X.index)
    assert result.metrics["rows"] == result.test.rows
    # The metrics describe the model fitted without the test rows, not the refit on all rows.
    expected = evaluate(
        (result.test.y == "Yes").to_numpy(),
        positive_probability(result.search.evaluated_pipeline, result.test.X, "Yes"),
        result.threshold,
    )
    assert result.metrics == expected


def test_metrics_agree_with_scikit_learn():
    from sklearn.metrics import f1_score, log_loss, roc_auc_score

    rng = np.random.default_rng(0)
    y = rng.random(500) < 0.3
    p = np.clip(y * 0.3 + rng.random(500) * 0.7, 0.001, 0.999)
    got = evaluate(y, p, 0.5)
    assert got["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert got["log_loss"] == pytest.approx(log_loss(y, p))
    assert got["f1"] == pytest.approx(f1_score(y, p >= 0.5))
    cm = got["confusion_matrix"]
    assert cm["tp"] + cm["fn"] == int(y.sum())


def test_thresholds_from_validation_rows():
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1], dtype=bool)
    p = np.array([0.1, 0.2, 0.3, 0.45, 0.4, 0.6, 0.7, 0.9])
    f1 = choose_threshold(y, p, ThresholdPolicy(strategy="f1"))
    assert evaluate(y, p, f1)["f1"] >= evaluate(y, p, 0.5)["f1"]
    # Missing a churner costs 100×: the cost threshold flags every churner.
    costly = choose_threshold(
        y, p, ThresholdPolicy(strategy="cost", cost_false_positive=1, cost_false_negative=100)
    )
    assert evaluate(y, p, costly)["recall"] == 1.0


def test_build_pipeline_matches_the_schema(synthetic_model):
    result, _ = synthetic_model
    pipeline = build_pipeline(result.schema)
    assert [name for name, _ in pipeline.steps] == ["prepare", "automl"]


def test_categorical_numbers_in_a_frame_are_read_as_text(synthetic_model):
    result, _ = synthetic_model
    rows = result.test.X.head(2).copy()
    as_objects = rows.astype(object)
    p1 = positive_probability(result.pipeline, rows, "Yes")
    p2 = positive_probability(result.pipeline, pd.DataFrame(as_objects), "Yes")
    np.testing.assert_array_equal(p1, p2)
