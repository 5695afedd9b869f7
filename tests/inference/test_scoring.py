"""The data-only scoring path gives the pipeline's probabilities, record for record."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from churnops.artifact import load_artifact
from churnops.data.dataset import DataSpec, load_dataset
from churnops.data.io import read_table
from churnops.data.sample import generate_customers
from churnops.errors import ArtifactError, RecordError
from churnops.inference import load_scorer
from churnops.pipeline.build import AutoMLSettings
from churnops.pipeline.train import export_model, positive_probability, train_model

TOLERANCE = 1e-6


@pytest.fixture(scope="module", params=["lgbm", "rf"])
def telco_model(request, telco_path, tmp_path_factory):
    dataset = load_dataset(telco_path, DataSpec())
    settings = AutoMLSettings(time_budget=None, max_iter=4, estimators=(request.param,), n_jobs=2)
    result = train_model(dataset, settings)
    artifact = export_model(result, tmp_path_factory.mktemp("m") / request.param)
    return result, artifact


def _records(frame: pd.DataFrame) -> list[dict]:
    return frame.drop(columns=["Churn"], errors="ignore").to_dict("records")


def _assert_parity(scores, pipeline, frame, threshold):
    expected = positive_probability(pipeline, frame, "Yes")
    np.testing.assert_allclose(scores.positive_probability, expected, rtol=0, atol=TOLERANCE)
    assert scores.labels == np.where(expected >= threshold, "Yes", "No").tolist()


def _scorer(artifact, compiled):
    """The scorer of every runtime the artifact has: compiled trees when asked and recorded."""
    scorer = load_scorer(artifact, allow_fallback=False, compiled=compiled)
    has_compiled = "compiled" in json.loads(artifact.read_bytes("serving/serving.json"))
    if compiled and not has_compiled:
        pytest.skip("no compiled form for this model (the other case covers its runtime)")
    assert scorer.fast
    assert scorer.runtime.startswith("compiled trees") == compiled, scorer.fallback_reason
    return scorer


@pytest.mark.slow
@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "spec-runtime"])
def test_parity_on_every_telco_row(telco_model, telco_path, compiled):
    result, artifact = telco_model
    scorer = _scorer(artifact, compiled)
    raw = read_table(telco_path)
    _assert_parity(scorer.score_records(_records(raw)), result.pipeline, raw, artifact.threshold)
    columns = {c: raw[c].to_numpy() for c in raw.columns}
    _assert_parity(
        scorer.score_columns(columns, len(raw)), result.pipeline, raw, artifact.threshold
    )


@pytest.mark.slow
@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "spec-runtime"])
def test_parity_on_100k_synthetic_rows(telco_model, compiled):
    result, artifact = telco_model
    scorer = _scorer(artifact, compiled)
    frame = generate_customers(100_000, seed=99).astype("str")  # Arrow-backed text, as read
    columns = {c: frame[c] for c in frame.columns}
    scores = scorer.score_columns(columns, len(frame))
    _assert_parity(scores, result.pipeline, frame, artifact.threshold)
    head = frame.head(2000)
    _assert_parity(scorer.score_records(_records(head)), result.pipeline, head, artifact.threshold)


@pytest.fixture(scope="module")
def scorer(synthetic_model):
    return load_scorer(synthetic_model[1], allow_fallback=False)


@pytest.fixture
def customer(synthetic_model):
    return _records(synthetic_model[0].test.X.head(1))[0]


def test_numbers_as_strings_or_json_numbers(scorer, customer):
    as_numbers = dict(
        customer, tenure=12, MonthlyCharges=70.35, TotalCharges=844.2, SeniorCitizen=0
    )
    as_text = dict(
        customer, tenure="12", MonthlyCharges="70.35", TotalCharges="844.2", SeniorCitizen="0"
    )
    a, b = scorer.score_records([as_numbers]), scorer.score_records([as_text])
    assert a.positive_probability[0] == b.positive_probability[0]


def test_blank_total_charges_is_missing(scorer, customer, synthetic_model):
    record = dict(customer, tenure="0", TotalCharges=" ")
    got = scorer.score_records([record]).positive_probability[0]
    frame = pd.DataFrame([record], dtype=object)
    assert got == pytest.approx(
        positive_probability(synthetic_model[0].pipeline, frame, "Yes")[0], abs=TOLERANCE
    )


def test_unseen_category_is_scored_with_a_warning(scorer, customer, synthetic_model):
    record = dict(customer, Contract="Three year")
    scores = scorer.score_records([customer, record])
    assert 0 not in scores.warnings
    assert "Contract" in scores.warnings[1][0]
    assert "Three year" in scores.warnings[1][0]
    frame = pd.DataFrame([record], dtype=object)
    expected = positive_probability(synthetic_model[0].pipeline, frame, "Yes")[0]
    assert scores.positive_probability[1] == pytest.approx(expected, abs=TOLERANCE)


def test_alone_and_in_a_batch_are_identical(scorer, synthetic_model):
    records = _records(generate_customers(3000, seed=5))
    together = scorer.score_records(records).positive_probability
    alone = [
        scorer.score_records([records[i]]).positive_probability[0] for i in range(0, 3000, 150)
    ]
    assert alone == together[::150].tolist()


def test_extra_keys_and_ids_are_ignored(scorer, customer):
    a = scorer.score_records([customer]).positive_probability[0]
    b = scorer.score_records(
        [dict(customer, customerID="0000-XXXXX", note="vip")]
    ).positive_probability[0]
    assert a == b


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        ({"tenure": "twelve"}, "tenure", "expected a number, got 'twelve'"),
        ({"tenure": True}, "tenure", "boolean"),
        ({"tenure": [1]}, "tenure", "expected a number, got list"),
        ({"MonthlyCharges": None}, "MonthlyCharges", "a value is required"),
        ({"Contract": {"a": 1}}, "Contract", "expected text, got an object"),
        ({"Contract": ""}, "Contract", "a value is required"),
        ({"tenure": "nan"}, "tenure", "expected a number"),
    ],
)
def test_bad_values_name_record_and_field(scorer, customer, change, field, problem):
    with pytest.raises(RecordError) as info:
        scorer.score_records([customer, dict(customer, **change)])
    first = info.value.problems[0]
    assert first["record"] == 1
    assert first["field"] == field
    assert problem in first["problem"]


def test_missing_field_and_non_objects(scorer, customer):
    partial = {k: v for k, v in customer.items() if k != "Contract"}
    with pytest.raises(RecordError) as info:
        scorer.score_records([partial, "customer", None])
    assert info.value.problems == [
        {"record": 0, "field": "Contract", "problem": "missing field"},
        {"record": 1, "field": None, "problem": "expected an object, got a string"},
        {"record": 2, "field": None, "problem": "expected an object, got null"},
    ]
    with pytest.raises(RecordError, match="no records"):
        scorer.score_records([])


@pytest.mark.parametrize("as_text", [False, True], ids=["objects", "arrow-text"])
def test_batch_errors_and_warnings_name_the_row(scorer, customer, as_text):
    frame = pd.DataFrame([customer] * 4, dtype=object)
    frame.loc[2, "MonthlyCharges"] = "lots"
    frame.loc[3, "Contract"] = "Lifetime"
    if as_text:
        frame = frame.astype("str")
    columns = {c: frame[c] if as_text else frame[c].to_numpy() for c in frame.columns}
    with pytest.raises(RecordError) as info:
        scorer.score_columns(columns, 4)
    assert info.value.problems[0] == {
        "record": 2,
        "field": "MonthlyCharges",
        "problem": "expected a number, got 'lots'",
    }
    frame.loc[2, "MonthlyCharges"] = "70.5"
    columns = {c: frame[c] if as_text else frame[c].to_numpy() for c in frame.columns}
    scores = scorer.score_columns(columns, 4)
    assert list(scores.warnings) == [3]
    assert "Lifetime" in scores.warnings[3][0]


def test_tampered_serving_file_is_refused(synthetic_model, tmp_path):
    copy = tmp_path / "m"
    shutil.copytree(synthetic_model[1].path, copy)
    for name in ("serving/layout.json", "serving/serving.json"):
        path = copy / name
        original = path.read_bytes()
        path.write_bytes(original.replace(b"Yes", b"Oui", 1) + b"\n")
        with pytest.raises(ArtifactError, match=name.split("/")[1].replace(".", r"\.")):
            load_scorer(load_artifact(copy))
        path.write_bytes(original)


def test_fallback_when_no_serving_form(synthetic_model, tmp_path, customer):
    from churnops.artifact import write_artifact

    artifact = synthetic_model[1]
    files = {n: artifact.read_bytes(n) for n in artifact.files if not n.startswith("serving/")}
    files["serving/unavailable.json"] = json.dumps({"reason": "no runtime for SVC"}).encode()
    copy = write_artifact(tmp_path / "m", files, artifact.manifest.description())
    scorer = load_scorer(copy)
    assert not scorer.fast
    assert scorer.fallback_reason == "no runtime for SVC"
    fast = load_scorer(artifact).score_records([customer]).positive_probability[0]
    assert scorer.score_records([customer]).positive_probability[0] == pytest.approx(
        fast, abs=TOLERANCE
    )
    with pytest.raises(ArtifactError, match="no fast scoring path: no runtime for SVC"):
        load_scorer(copy, allow_fallback=False)


def test_fast_path_imports_no_pandas_sklearn_or_pickle(synthetic_model, customer):
    code = f"""
import json, sys, pickle
loaded = []
real_loads = pickle.loads
pickle.loads = lambda *a, **k: loaded.append(1) or real_loads(*a, **k)
from churnops.artifact import load_artifact
from churnops.inference import load_scorer
scorer = load_scorer(load_artifact({str(synthetic_model[1].path)!r}), allow_fallback=False)
scores = scorer.score_records([json.loads({json.dumps(json.dumps(customer))})])
heavy = sorted(m for m in ("pandas", "sklearn", "joblib", "flaml") if m in sys.modules)
p = float(scores.positive_probability[0])
print(json.dumps({{"heavy": heavy, "pickles": len(loaded), "p": p}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["heavy"] == []
    assert report["pickles"] == 0
    assert 0 <= report["p"] <= 1


# A few records are checked in Python, more in numpy, a block of rows at a time.
@pytest.mark.parametrize(("batch", "block"), [(1, None), (3, None), (40, None), (40, 7)])
def test_numbers_outside_the_training_range_are_scored_with_a_warning(
    scorer, customer, synthetic_model, batch, block, monkeypatch
):
    from churnops.inference import scorer as scorer_module

    if block is not None:
        monkeypatch.setattr(scorer_module, "RANGE_BLOCK_ROWS", block)
    tenure = synthetic_model[1].schema.feature("tenure")
    records = [dict(customer) for _ in range(batch)]
    records[-1] = dict(customer, tenure=-5, MonthlyCharges="1e9", TotalCharges=" ")
    scores = scorer.score_records(records)
    assert list(scores.warnings) == [batch - 1]
    low, high = scores.warnings[batch - 1]
    assert low == (
        f"field 'tenure': -5 is below the range seen in training ({tenure.minimum:.15g} to "
        f"{tenure.maximum:.15g}); scored as given"
    )
    assert (low.field, low.kind) == ("tenure", "out_of_range")
    assert high.startswith("field 'MonthlyCharges': 1000000000 is above the range")
    # A missing value is not outside the range; the edges of the range are inside it.
    edges = dict(customer, tenure=tenure.minimum)
    assert scorer.score_records([edges, dict(customer, tenure=tenure.maximum)]).warnings == {}
    frame = pd.DataFrame([records[-1]], dtype=object)
    expected = positive_probability(synthetic_model[0].pipeline, frame, "Yes")[0]
    assert scores.positive_probability[-1] == pytest.approx(expected, abs=TOLERANCE)
