"""Batch scoring of hostile files: the same number rules as the API, one line per mistake."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from churnops.cli import app
from churnops.data.sample import generate_customers

runner = CliRunner()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1e309", "field 'tenure': expected a finite number, got '1e309'"),
        ("-1e400", "expected a finite number"),
        ("1" * 37_000 + "x", "field 'tenure': expected a number, got text of 37001 characters"),
    ],
)
def test_predict_refuses_hostile_numbers_with_one_line(synthetic_model, tmp_path, value, message):
    data = tmp_path / "customers.csv"
    frame = generate_customers(20, seed=2).astype({"tenure": object})
    frame.loc[3, "tenure"] = value
    frame.to_csv(data, index=False)
    result = runner.invoke(
        app,
        ["predict", "--model", str(synthetic_model[1].path), "--data", str(data),
         "--out", str(tmp_path / "scored.csv")],
    )  # fmt: skip
    assert result.exit_code == 1
    assert message in result.output
    assert "record 3" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "scored.csv").exists()


def test_training_reads_long_digit_strings_as_text_not_as_a_broken_number(tmp_path):
    from churnops.data.cleaning import infer_kind

    assert infer_kind(pd.Series(["1" * 101, "2"])) == "categorical"
    assert infer_kind(pd.Series(["1" * 100, "2", " "])) == "numeric"
