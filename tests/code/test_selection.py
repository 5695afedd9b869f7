"""Model selection and the final fit: what the manifest says is what happened (issue 11)."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from churnops.artifact import load_artifact
from churnops.cli import app
from churnops.data.sample import generate_customers
from churnops.pipeline.build import AutoMLSettings, automl_fit_params
from churnops.pipeline.train import positive_probability

runner = CliRunner()
TELCO_ROWS = 5608  # rows of the shared Telco training file


def train(tmp_path, rows: int, *extra: str):
    data = tmp_path / "customers.csv"
    generate_customers(rows, seed=3).to_csv(data, index=False)
    out = tmp_path / "model"
    result = runner.invoke(
        app,
        ["train", "--data", str(data), "--out", str(out), "--no-tracking", *extra],
    )
    assert result.exit_code == 0, result.output
    return load_artifact(out), result.output


def test_cv_ranking_is_the_default_whatever_the_budget():
    params = automl_fit_params(AutoMLSettings(time_budget=60))
    assert params["automl__eval_method"] == "cv"
    assert params["automl__n_splits"] == 5
    assert params["automl__split_type"] == "stratified"
    # Part of the budget is kept for the final fits.
    assert params["automl__time_budget"] < 60


@pytest.mark.parametrize("shape", [(30, 1), (450, 12), (4486, 46), (20_000, 400)])
def test_forest_starting_points_lie_in_flaml_search_space(shape):
    # FLAML silently drops a starting point outside its space: the deep forests would never
    # be tried. Each value must be in the domain FLAML builds for a matrix of this shape.
    from flaml.automl.model import ExtraTreesEstimator, RandomForestEstimator
    from flaml.automl.task.factory import task_factory

    settings = AutoMLSettings(estimators=("lgbm", "rf", "extra_tree"))
    points = automl_fit_params(settings, shape=shape)["automl__starting_points"]
    task = task_factory("classification")
    for name, learner in (("rf", RandomForestEstimator), ("extra_tree", ExtraTreesEstimator)):
        space = learner.search_space(shape, task)
        shallow, deep = points[name]
        assert set(shallow) == set(deep) == set(space)
        assert shallow["max_leaves"] == 4 < deep["max_leaves"]
        for point in (shallow, deep):
            for key, value in point.items():
                domain = space[key]["domain"]
                if key == "criterion":
                    assert value in domain.categories
                elif key == "n_estimators":  # churnops' own range replaces FLAML's
                    assert settings.n_estimators[0] <= value <= settings.n_estimators[1]
                else:
                    assert domain.lower <= value <= domain.upper, (name, key, value, domain)
    # Without the shape (a caller that does not know it), or on a larger table, the forests
    # start where FLAML does.
    assert set(automl_fit_params(settings)["automl__starting_points"]) == {"lgbm"}
    larger = automl_fit_params(settings, shape=(20_001, shape[1]))["automl__starting_points"]
    assert set(larger) == {"lgbm"}


def test_a_search_tries_the_deep_forest_first():
    # Not only in FLAML's space: FLAML runs it. The second extra-trees trial is the deep start.
    from churnops.data.dataset import synthetic_dataset
    from churnops.pipeline.train import train_model

    settings = AutoMLSettings(
        time_budget=None, max_iter=2, estimators=("extra_tree",), n_jobs=1, refit=False
    )
    result = train_model(synthetic_dataset(600, seed=4), settings)
    configs = [trial["config"] for trial in result.search.history]
    assert [c["max_leaves"] for c in configs[:2]] == [4, 480 // 2]  # 480 training rows
    assert configs[1]["n_estimators"] == 100


@pytest.mark.slow
@pytest.mark.parametrize(
    ("rows", "max_iter"), [(TELCO_ROWS // 10, "4"), (TELCO_ROWS * 10, "2")], ids=["tenth", "10x"]
)
def test_manifest_records_cv_selection_and_the_refit(tmp_path, rows, max_iter):
    artifact, output = train(tmp_path, rows, "--max-iter", max_iter, "--estimators", "lgbm,rf")
    manifest = artifact.manifest
    selection, data = manifest.fitting.selection, manifest.data
    assert selection is not None
    assert selection.method == "cv"
    # What FLAML actually did, not only what was asked: CV on both sizes.
    assert selection.flaml_eval_method == "cv"
    assert selection.n_splits == 5
    assert selection.rows == data.train_rows
    assert {f.estimator for f in selection.finalists} <= {"lgbm", "rf"}
    assert manifest.fitting.evaluation.rows == data.test_rows
    assert data.train_rows + data.test_rows == rows
    assert manifest.fitting.final.refit is True
    assert manifest.fitting.final.rows == rows == data.final_fit_rows
    assert "refitted on all" in output

    # The exported pipeline really was fitted on every row: its encoder and its trees.
    pipeline = artifact.load_pipeline()
    assert pipeline.named_steps["automl"]._state.data_size[0] == rows
    assert pipeline.named_steps["automl"].best_estimator == manifest.automl.best_estimator
    # The serving form was checked against the refitted pipeline.
    assert artifact.read_json("serving/serving.json")["checked_rows"] > 0
    report = artifact.read_bytes("report.md").decode()
    assert "cross-validation" in report
    assert "Finalists" in report


@pytest.mark.slow
def test_no_refit_keeps_the_evaluated_model(tmp_path):
    artifact, _ = train(tmp_path, 400, "--max-iter", "3", "--no-refit")
    manifest = artifact.manifest
    assert manifest.fitting.final.refit is False
    assert manifest.data.final_fit_rows == manifest.data.train_rows
    assert manifest.settings.automl["refit"] is False


def test_refit_is_the_evaluated_configuration_on_all_rows():
    from churnops.data.dataset import synthetic_dataset
    from churnops.pipeline.train import train_model

    dataset = synthetic_dataset(500, seed=4)
    settings = AutoMLSettings(time_budget=None, max_iter=3, n_jobs=1, n_estimators=(20, 30))
    result = train_model(dataset, settings)
    assert result.pipeline is not result.search.evaluated_pipeline
    assert result.final_rows.rows == dataset.rows
    evaluated = result.search.evaluated_pipeline.named_steps["automl"]
    final = result.pipeline.named_steps["automl"]
    assert final.best_estimator == evaluated.best_estimator
    assert final._state.data_size[0] == dataset.rows
    assert evaluated._state.data_size[0] == result.train.rows
    assert type(final.model.estimator) is type(evaluated.model.estimator)
    assert final.model.estimator.get_params() == evaluated.model.estimator.get_params()
    # Metrics are the held-out ones of the evaluated model.
    scores = positive_probability(result.search.evaluated_pipeline, result.test.X, "Yes")
    np.testing.assert_allclose(scores, result.test_scores)


@pytest.mark.slow
def test_all_blank_column_does_not_crash_training(tmp_path):
    # Issue 10: the report formatted the minimum of a column blank on every row.
    frame = generate_customers(300, seed=2)
    frame["Notes"] = ""
    data = tmp_path / "blank.csv"
    frame.to_csv(data, index=False)
    args = ["train", "--data", str(data), "--max-iter", "3", "--no-tracking"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    report = (tmp_path / "m" / "report.md").read_text()
    assert "`Notes`" in report


def test_report_names_the_selection_method():
    from churnops.artifact.manifest import Fitting
    from churnops.pipeline.report import _selection

    fitting = Fitting.model_validate(
        {
            "selection": {
                "method": "cv",
                "n_splits": 5,
                "split_type": "stratified",
                "rows": 8,
                "metric": "log_loss",
                "finalists": [
                    {"estimator": "lgbm", "validation_loss": 0.41, "trials": 3, "config": {}},
                    {"estimator": "rf", "validation_loss": 0.42, "trials": 2, "config": {}},
                ],
            },
            "evaluation": {"rows": 2, "model_fitted_on_rows": 8},
            "final": {"refit": True, "rows": 10},
        }
    )
    text = "\n".join(_selection(fitting))
    assert "5-fold stratified cross-validation" in text
    assert "| `lgbm` | 0.4100 | 3 |" in text
    assert "refitted on all 10 rows" in text
    assert _selection(Fitting()) == []  # an artifact written before selection was recorded


def test_linear_leaves_candidate_is_served_exactly_by_lightgbm(tmp_path):
    from churnops.data.dataset import synthetic_dataset
    from churnops.inference import load_scorer
    from churnops.pipeline.train import export_model, train_model

    dataset = synthetic_dataset(600, seed=6)
    settings = AutoMLSettings(time_budget=None, max_iter=2, estimators=("lgbm_linear",), n_jobs=1)
    result = train_model(dataset, settings)
    estimator = result.pipeline.named_steps["automl"].model.estimator
    assert estimator.get_params()["linear_tree"] is True
    artifact = export_model(result, tmp_path / "linear")
    scorer = load_scorer(artifact, allow_fallback=False)
    assert scorer.fast
    frame = dataset.X.head(200)
    scores = scorer.score_columns({c: frame[c].to_numpy() for c in frame.columns}, len(frame))
    expected = positive_probability(result.pipeline, frame, "Yes")
    np.testing.assert_allclose(scores.positive_probability, expected, rtol=0, atol=1e-9)


def test_a_search_with_no_logged_trial_exports_the_evaluated_model():
    from churnops.data.dataset import synthetic_dataset
    from churnops.pipeline.train import train_model

    # FLAML logs no trial when max_iter=1 stops it after its initial fit: nothing to refit from.
    dataset = synthetic_dataset(400, seed=1)
    result = train_model(dataset, AutoMLSettings(time_budget=None, max_iter=1, n_jobs=1))
    assert result.search.history == []
    assert result.pipeline is result.search.evaluated_pipeline
    assert result.search.fitting["final"] == {
        "refit": False,
        "rows": result.train.rows,
        "refit_seconds": None,
    }
    assert positive_probability(result.pipeline, dataset.X.head(5), "Yes").shape == (5,)
