"""Feature contributions: they add up to the served log-odds, for every runtime.

For each runtime the base value plus every field's contribution must give the log-odds of the
probability the runtime serves (|Δ| ≤ 1e-6); a forest's values must be TreeSHAP's, checked
against Shapley values computed from their definition on a small forest.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from churnops.data.dataset import DataSpec, load_dataset, synthetic_dataset
from churnops.data.io import read_table
from churnops.data.sample import generate_customers
from churnops.errors import ExplainError
from churnops.inference import load_scorer
from churnops.inference.layout import CategoricalColumn, FeatureLayout, NumericColumn
from churnops.inference.runtime import PROBABILITY_FLOOR, Players, TreeliteRuntime
from churnops.pipeline.build import AutoMLSettings
from churnops.pipeline.train import export_model, train_model

TOLERANCE = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)
    return np.log(p / (1 - p))


def _fit(dataset, estimator, folder):
    settings = AutoMLSettings(time_budget=None, max_iter=2, estimators=(estimator,), n_jobs=1)
    return export_model(train_model(dataset, settings), folder / estimator)


@pytest.fixture(scope="module", params=["lgbm", "rf", "extra_tree"])
def synthetic_artifact(request, tmp_path_factory):
    return _fit(synthetic_dataset(1500, seed=3), request.param, tmp_path_factory.mktemp("x"))


def _records(frame):
    return frame.drop(columns=["Churn"], errors="ignore").to_dict("records")


def _check_sums(scores):
    explained = scores.explanation
    total = explained.base_value + explained.contributions.sum(axis=1)
    np.testing.assert_allclose(total, _logit(scores.positive_probability), rtol=0, atol=TOLERANCE)


def test_contributions_add_up_to_the_served_log_odds(synthetic_artifact):
    scorer = load_scorer(synthetic_artifact, allow_fallback=False)
    assert scorer.cannot_explain() is None
    frame = generate_customers(3000, seed=21)
    scores = scorer.score_records(_records(frame), explain=True)
    assert scores.explanation.fields == scorer.layout.fields
    assert scores.explanation.contributions.shape == (3000, len(scorer.layout.fields))
    _check_sums(scores)
    # Not a constant: the model's features move its output.
    assert np.abs(scores.explanation.contributions).max() > 0.01
    plain = scorer.score_records(_records(frame))
    assert plain.explanation is None
    assert plain.positive_probability.tolist() == scores.positive_probability.tolist()


def test_the_other_class_as_positive_negates_the_log_odds(synthetic_artifact):
    import json

    from churnops.artifact import SERVING_SPEC

    scorer = load_scorer(synthetic_artifact, allow_fallback=False)
    spec = json.loads(synthetic_artifact.read_bytes(SERVING_SPEC))
    data = synthetic_artifact.read_bytes(spec["model_file"])
    flipped = type(scorer.explainer).load(data, 1 - int(spec["positive_index"]))
    matrix = scorer.layout.encode_records(_records(generate_customers(300, seed=2))).matrix
    got = flipped.contributions(matrix, scorer.players)
    total = got.base_value + got.values.sum(axis=1)
    np.testing.assert_allclose(total, _logit(flipped.score(matrix)), rtol=0, atol=TOLERANCE)
    usual = scorer.explainer.contributions(matrix, scorer.players)
    np.testing.assert_allclose(got.values, -usual.values, rtol=0, atol=1e-12)


def test_columns_and_records_explain_alike(synthetic_artifact):
    scorer = load_scorer(synthetic_artifact, allow_fallback=False)
    frame = generate_customers(500, seed=8).astype("str")
    columns = {c: frame[c] for c in frame.columns}
    by_columns = scorer.score_columns(columns, len(frame), explain=True)
    by_records = scorer.score_records(_records(frame), explain=True)
    _check_sums(by_columns)
    np.testing.assert_allclose(
        by_columns.explanation.contributions,
        by_records.explanation.contributions,
        rtol=0,
        atol=1e-12,
    )


def test_one_hot_columns_are_summed_back_to_their_field(synthetic_artifact):
    scorer = load_scorer(synthetic_artifact, allow_fallback=False)
    records = _records(generate_customers(200, seed=4))
    matrix = scorer.layout.encode_records(records).matrix
    width = matrix.shape[1]
    by_column = scorer.explainer.contributions(matrix, Players(np.arange(width), width)).values
    by_field = scorer.score_records(records, explain=True).explanation.contributions
    offset = len(scorer.layout.numeric)
    np.testing.assert_array_equal(by_field[:, :offset], by_column[:, :offset])
    for j, block in enumerate(scorer.layout.categorical, start=offset):
        np.testing.assert_allclose(
            by_field[:, j], by_column[:, offset : offset + block.width].sum(axis=1), atol=1e-12
        )
        offset += block.width
    np.testing.assert_allclose(by_field.sum(axis=1), by_column.sum(axis=1), rtol=0, atol=1e-9)


def test_players_sum_the_layouts_blocks():
    layout = FeatureLayout(
        (NumericColumn("a", False), NumericColumn("b", True)),
        (
            CategoricalColumn("c", ("x", "y"), False, False),
            CategoricalColumn("d", ("u",), True, True),
        ),
    )
    columns = np.array([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]])
    assert layout.fields == ("a", "b", "c", "d")
    assert layout.field_of_column.tolist() == [0, 1, 2, 2, 3, 3]
    players = Players(layout.field_of_column, len(layout.fields))
    assert players.sum(columns).tolist() == [[1.0, 2.0, 7.0, 11.0]]


@pytest.fixture(scope="module")
def linear_artifact(tmp_path_factory):
    return _fit(synthetic_dataset(1500, seed=5), "lgbm_linear", tmp_path_factory.mktemp("lin"))


def test_linear_leaves_are_explained_against_the_typical_customer(linear_artifact):
    scorer = load_scorer(linear_artifact, allow_fallback=False)
    assert scorer.explainer.needs_reference
    assert scorer.cannot_explain() is None
    frame = generate_customers(500, seed=12)
    frame.loc[::7, "TotalCharges"] = " "  # missing: a linear leaf then answers its constant
    scores = scorer.score_records(_records(frame), explain=True)
    _check_sums(scores)
    assert np.abs(scores.explanation.contributions).max() > 0.01
    # The base value is the reference customer's own log-odds, the same for every record.
    reference = scorer.players.reference
    expected = _logit(scorer.model.score(reference[None, :]))[0]
    np.testing.assert_allclose(scores.explanation.base_value, expected, rtol=0, atol=1e-9)
    columns = {c: frame[c].astype("str") for c in frame.columns}
    _check_sums(scorer.score_columns(columns, len(frame), explain=True))


def test_linear_leaves_without_a_reference_profile_cannot_explain(linear_artifact, tmp_path):
    from churnops.artifact import PROFILE_FILE, write_artifact

    files = {n: linear_artifact.read_bytes(n) for n in linear_artifact.files if n != PROFILE_FILE}
    artifact = write_artifact(tmp_path / "a", files, linear_artifact.manifest.description())
    scorer = load_scorer(artifact, allow_fallback=False)
    assert "reference profile" in scorer.cannot_explain()
    record = _records(generate_customers(1, seed=1))
    with pytest.raises(ExplainError, match="reference profile"):
        scorer.score_records(record, explain=True)
    assert scorer.score_records(record).explanation is None  # scoring itself is unaffected


def test_the_pickled_pipeline_cannot_explain(synthetic_model, tmp_path):
    from churnops.artifact import SERVING_DIR, write_artifact

    artifact = synthetic_model[1]
    files = {n: artifact.read_bytes(n) for n in artifact.files if not n.startswith(SERVING_DIR)}
    fallback = write_artifact(tmp_path / "p", files, artifact.manifest.description())
    scorer = load_scorer(fallback)
    assert not scorer.fast
    with pytest.raises(ExplainError, match="pickled scikit-learn pipeline"):
        scorer.score_records(_records(generate_customers(2, seed=1)), explain=True)


# -- the forest's values are TreeSHAP's -----------------------------------------------------


def _path_expectation(tree, x, known, node=0):
    """E[tree(x)] given the features in ``known``, others integrated out by cover (TreeSHAP's
    path-dependent value function), from scikit-learn's own tree."""
    t = tree.tree_
    if t.children_left[node] < 0:
        value = t.value[node][0]
        return value[1] / value.sum()
    feature = t.feature[node]
    left, right = t.children_left[node], t.children_right[node]
    if feature in known:
        go_left = x[feature] <= t.threshold[node]
        return _path_expectation(tree, x, known, left if go_left else right)
    w = t.weighted_n_node_samples
    return (
        w[left] * _path_expectation(tree, x, known, left)
        + w[right] * _path_expectation(tree, x, known, right)
    ) / w[node]


def _shapley(forest, x, n_features):
    """Exact Shapley values of the forest's probability, by enumerating every coalition."""

    def value(known):
        return np.mean([_path_expectation(t, x, known) for t in forest.estimators_])

    phi = np.zeros(n_features)
    for i in range(n_features):
        others = [j for j in range(n_features) if j != i]
        for size in range(n_features):
            weight = math.factorial(size) * math.factorial(n_features - size - 1)
            weight /= math.factorial(n_features)
            for subset in itertools.combinations(others, size):
                phi[i] += weight * (value({*subset, i}) - value(set(subset)))
    return phi, value(set())


@pytest.mark.parametrize("kind", ["RandomForestClassifier", "ExtraTreesClassifier"])
def test_forest_contributions_are_tree_shap(kind):
    import sklearn.ensemble
    import treelite

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 4)).astype(np.float32).astype(np.float64)
    y = (X[:, 0] + X[:, 1] * X[:, 2] + rng.normal(size=400) > 0).astype(int)
    forest = getattr(sklearn.ensemble, kind)(n_estimators=5, max_depth=4, random_state=0)
    forest.fit(X, y)
    runtime = TreeliteRuntime.load(treelite.sklearn.import_model(forest).serialize_bytes(), 1)
    rows = X[:5]
    got = runtime.contributions(rows, Players(np.arange(4), 4))
    p = runtime.score(rows)
    np.testing.assert_allclose(p, forest.predict_proba(rows)[:, 1], atol=1e-12)
    for k, x in enumerate(rows):
        phi, expected = _shapley(forest, x, 4)
        # TreeSHAP in probability, carried to log-odds by one factor per row.
        ratio = (_logit(p[k]) - _logit(expected)) / (p[k] - expected)
        np.testing.assert_allclose(got.values[k], phi * ratio, rtol=0, atol=1e-9)
        assert got.base_value[k] == pytest.approx(_logit(expected), abs=1e-9)


def test_forest_answering_zero_or_one_is_clipped():
    import sklearn.ensemble
    import treelite

    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    forest = sklearn.ensemble.RandomForestClassifier(n_estimators=3, bootstrap=False)
    forest.fit(X, [0, 0, 1, 1])
    runtime = TreeliteRuntime.load(treelite.sklearn.import_model(forest).serialize_bytes(), 1)
    got = runtime.contributions(X, Players(np.arange(1), 1))
    assert runtime.score(X).tolist() == [0.0, 0.0, 1.0, 1.0]
    total = got.base_value + got.values.sum(axis=1)
    np.testing.assert_allclose(total, _logit(runtime.score(X)), rtol=0, atol=TOLERANCE)
    assert np.isfinite(total).all()


# -- real customers -----------------------------------------------------------------------


@pytest.fixture(scope="module", params=["lgbm", "rf", "lgbm_linear"])
def telco_artifact(request, telco_path, tmp_path_factory):
    dataset = load_dataset(telco_path, DataSpec())
    return _fit(dataset, request.param, tmp_path_factory.mktemp("telco"))


@pytest.mark.slow
def test_contributions_add_up_on_every_telco_row(telco_artifact, telco_path):
    scorer = load_scorer(telco_artifact, allow_fallback=False)
    raw = read_table(telco_path)
    _check_sums(scorer.score_records(_records(raw), explain=True))
    columns = {c: raw[c].to_numpy() for c in raw.columns}
    _check_sums(scorer.score_columns(columns, len(raw), explain=True))
