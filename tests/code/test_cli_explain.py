"""``churnops predict --explain``: every field's contribution, next to the probability."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from churnops.artifact import SERVING_DIR, write_artifact
from churnops.cli import app
from churnops.data.dataset import synthetic_dataset
from churnops.data.sample import generate_customers
from churnops.pipeline.build import AutoMLSettings
from churnops.pipeline.train import export_model, train_model

runner = CliRunner()


@pytest.fixture(scope="module")
def lgbm_model(tmp_path_factory):
    settings = AutoMLSettings(time_budget=None, max_iter=2, estimators=("lgbm",), n_jobs=1)
    result = train_model(synthetic_dataset(1000, seed=2), settings)
    return export_model(result, tmp_path_factory.mktemp("m") / "lgbm")


def test_predict_explain_writes_base_value_and_a_column_per_field(lgbm_model, tmp_path):
    data, scored = tmp_path / "customers.csv", tmp_path / "scored.parquet"
    generate_customers(300, seed=4).to_csv(data, index=False)
    args = ["predict", "--model", str(lgbm_model.path), "--data", str(data), "--out"]
    result = runner.invoke(app, [*args, str(scored), "--explain"])
    assert result.exit_code == 0, result.output
    out = pd.read_parquet(scored)
    fields = [f.name for f in lgbm_model.schema.numeric + lgbm_model.schema.categorical]
    contrib = [f"contrib_{f}" for f in fields]
    assert set(contrib) <= set(out.columns)
    p = out["churn_probability"].to_numpy()
    total = out["base_value"].to_numpy() + out[contrib].sum(axis=1).to_numpy()
    np.testing.assert_allclose(total, np.log(p / (1 - p)), rtol=0, atol=1e-6)
    plain = tmp_path / "plain.parquet"
    assert runner.invoke(app, [*args, str(plain)]).exit_code == 0
    without = pd.read_parquet(plain)
    assert not any(c.startswith("contrib_") or c == "base_value" for c in without.columns)
    pd.testing.assert_frame_equal(without, out[without.columns])


def test_predict_explain_on_a_model_that_cannot_is_one_line(synthetic_model, tmp_path):
    artifact = synthetic_model[1]
    files = {n: artifact.read_bytes(n) for n in artifact.files if not n.startswith(SERVING_DIR)}
    pipeline_only_model = write_artifact(tmp_path / "p", files, artifact.manifest.description())
    data = tmp_path / "customers.csv"
    generate_customers(10, seed=4).to_csv(data, index=False)
    args = ["--model", str(pipeline_only_model.path), "--data", str(data), "--out"]
    result = runner.invoke(app, ["predict", *args, str(tmp_path / "o.csv"), "--explain"])
    assert result.exit_code != 0
    assert "computes no feature contributions" in result.output
    assert "Traceback" not in result.output
