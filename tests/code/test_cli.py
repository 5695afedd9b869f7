"""The CLI end to end: synthetic data, training, batch scoring and one-line errors."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from churnops.cli import app
from churnops.data.io import read_table
from churnops.data.sample import generate_customers

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, list(args))


def test_data_sample_is_deterministic(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.parquet"
    assert run("data", "sample", "--rows", "50", "--seed", "7", "--out", str(a)).exit_code == 0
    assert run("data", "sample", "--rows", "50", "--seed", "7", "--out", str(b)).exit_code == 0
    pd.testing.assert_frame_equal(read_table(a), read_table(b).astype(str), check_dtype=False)


@pytest.mark.slow
def test_train_then_predict(tmp_path):
    data = tmp_path / "customers.csv"
    generate_customers(800, seed=1).to_csv(data, index=False)
    model = tmp_path / "model"
    result = run(
        "train", "--data", str(data), "--max-iter", "3", "--out", str(model), "--no-tracking"
    )
    assert result.exit_code == 0, result.output
    assert "artifact:" in result.output
    scored = tmp_path / "scored.parquet"
    result = run("predict", "--model", str(model), "--data", str(data), "--out", str(scored))
    assert result.exit_code == 0, result.output
    out = pd.read_parquet(scored)
    assert len(out) == 800
    assert out["churn_probability"].between(0, 1).all()
    assert set(out["prediction"]) <= {"Yes", "No"}
    assert (out["prediction"] == "Yes").tolist() == (out["churn_probability"] >= 0.5).tolist()


@pytest.mark.slow
def test_train_without_data_says_synthetic(tmp_path):
    result = run(
        "train", "--rows", "400", "--max-iter", "2", "--out", str(tmp_path / "m"), "--no-tracking"
    )
    assert result.exit_code == 0, result.output
    assert "SYNTHETIC" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--data", "missing.csv"], "data file not found: missing.csv"),
        (["train", "--data", "x.xlsx"], "unsupported file type"),
        (["train", "--threshold", "2", "--max-iter", "1"], "between 0 and 1"),
        (["train", "--max-iter", "1", "--tracking-uri", "bogus://x"], "is not usable"),
        (["train", "--threshold", "best", "--max-iter", "1"], "--threshold must be"),
        (["train", "--estimators", "svm", "--max-iter", "1"], "estimators must be among"),
        (["predict", "--model", "nowhere", "--data", "a.csv", "--out", "b.csv"], "nowhere"),
    ],
)
def test_errors_are_one_line(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run(*args)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


@pytest.mark.slow
def test_another_churn_table_with_its_own_target_label_and_ids(tmp_path):
    frame = generate_customers(900, seed=12).rename(
        columns={"Churn": "left", "customerID": "account", "Contract": "plan"}
    )
    frame["left"] = frame["left"].map({"Yes": "gone", "No": "stayed"})
    frame["region"] = ["north", "south", "east"] * 300
    frame["signup_note"] = "web"
    data = tmp_path / "accounts.parquet"
    frame.to_parquet(data, index=False)
    model = tmp_path / "model"
    result = run(
        "train", "--data", str(data), "--target", "left", "--positive-label", "gone",
        "--id-columns", "account", "--drop-columns", "signup_note", "--max-iter", "3",
        "--out", str(model), "--no-tracking",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    from churnops.artifact import load_artifact

    schema = load_artifact(model).schema
    assert (schema.target, schema.positive_label) == ("left", "gone")
    assert "region" in schema.feature_names
    assert "signup_note" not in schema.feature_names
    scored = tmp_path / "scored.csv"
    result = run("predict", "--model", str(model), "--data", str(data), "--out", str(scored))
    assert result.exit_code == 0, result.output
    assert set(pd.read_csv(scored)["prediction"]) <= {"gone", "stayed"}
