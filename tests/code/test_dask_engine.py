"""--engine dask on a real dask.distributed LocalCluster (2 worker processes)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from churnops.cli import app
from churnops.data.io import read_table
from churnops.data.sample import generate_customers
from churnops.errors import ArtifactError, ConfigError, DataError
from churnops.inference import load_scorer

pytest.importorskip("distributed")

from churnops.workflows.dask_engine import (
    ClusterSpec,
    dask_client,
    score_on_dask,
)

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.fixture(scope="module")
def client():
    spec = ClusterSpec(workers=2, threads_per_worker=1, memory_limit="1GB")
    with dask_client(spec) as dask:
        yield dask


def _local_scores(artifact, path: Path) -> pd.DataFrame:
    """What the local `churnops predict` writes for ``path``."""
    frame = read_table(path)
    scores = load_scorer(artifact).score_columns(
        {name: frame[name] for name in frame.columns}, len(frame)
    )
    frame["churn_probability"] = scores.positive_probability
    frame["prediction"] = scores.labels
    return frame


def _assert_same_rows(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    assert list(got.columns) == list(expected.columns)
    assert len(got) == len(expected)
    assert got["customerID"].tolist() == expected["customerID"].tolist()  # same order
    delta = np.abs(got["churn_probability"].to_numpy() - expected["churn_probability"].to_numpy())
    assert float(delta.max()) <= 1e-9
    assert got["prediction"].tolist() == expected["prediction"].tolist()


def test_csv_scoring_matches_the_local_path_row_for_row(client, synthetic_model, tmp_path):
    _, artifact = synthetic_model
    data = tmp_path / "customers.csv"
    generate_customers(3000, seed=11).to_csv(data, index=False)
    out = tmp_path / "scored"
    done = score_on_dask(artifact, data, out, client, blocksize=60_000)
    assert done.parts > 3  # several partitions, scored on the workers
    assert done.rows == 3000
    assert sorted(p.name for p in out.iterdir())[0] == "part.000000.parquet"
    _assert_same_rows(pd.read_parquet(out), _local_scores(artifact, data))


def test_a_folder_of_parquet_files_is_scored_in_order(client, synthetic_model, tmp_path):
    _, artifact = synthetic_model
    folder = tmp_path / "table"
    folder.mkdir()
    frame = generate_customers(2400, seed=12)
    for i, part in enumerate(np.array_split(np.arange(len(frame)), 3)):
        frame.iloc[part].to_parquet(folder / f"customers-{i}.parquet", index=False)
    whole = tmp_path / "whole.parquet"
    frame.to_parquet(whole, index=False)
    out = tmp_path / "scored"
    done = score_on_dask(artifact, folder, out, client)
    assert done.parts == 3
    _assert_same_rows(pd.read_parquet(out), _local_scores(artifact, whole))


def test_bad_records_and_outputs_are_one_line_errors(client, synthetic_model, tmp_path):
    _, artifact = synthetic_model
    data = tmp_path / "customers.csv"
    frame = generate_customers(300, seed=13)
    frame.drop(columns=["tenure"]).to_csv(data, index=False)
    with pytest.raises(DataError, match="tenure"):
        score_on_dask(artifact, data, tmp_path / "out", client)
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    with pytest.raises(DataError, match="new or empty folder"):
        score_on_dask(artifact, data, taken, client)
    assert (taken / "keep.txt").read_text() == "mine"


def test_a_model_without_a_pickle_free_form_is_refused(client, synthetic_model, tmp_path):
    from churnops.artifact import write_artifact

    _, artifact = synthetic_model
    files = {n: artifact.read_bytes(n) for n in artifact.files if not n.startswith("serving/")}
    files["serving/unavailable.json"] = b'{"reason": "no runtime for SVC"}'
    pickled_only = write_artifact(tmp_path / "m", files, artifact.manifest.description())
    data = tmp_path / "customers.csv"
    generate_customers(50, seed=1).to_csv(data, index=False)
    with pytest.raises(ArtifactError, match="no fast scoring path: no runtime for SVC"):
        score_on_dask(pickled_only, data, tmp_path / "out", client)
    assert not (tmp_path / "out").exists()


def test_an_unreachable_scheduler_fails_within_the_timeout():
    started = time.monotonic()
    with (
        pytest.raises(ConfigError, match=r"cannot reach the Dask scheduler at tcp://127\.0\.0\.1"),
        dask_client(ClusterSpec(scheduler="tcp://127.0.0.1:9", connect_timeout=2)),
    ):
        pass
    assert time.monotonic() - started < 6


@pytest.mark.slow
def test_cli_with_a_bad_scheduler_prints_one_line(synthetic_model, tmp_path):
    _, artifact = synthetic_model
    data = tmp_path / "customers.csv"
    generate_customers(50, seed=1).to_csv(data, index=False)
    started = time.monotonic()
    result = runner.invoke(
        app,
        [
            *("predict", "--engine", "dask", "--scheduler", "tcp://127.0.0.1:9"),
            *("--model", str(artifact.path), "--data", str(data), "--out", str(tmp_path / "o")),
        ],
    )
    assert time.monotonic() - started < 20  # the 10 s connect timeout, then out
    assert result.exit_code == 1
    assert "cannot reach the Dask scheduler" in result.output
    assert "Traceback" not in result.output


def test_a_scheduler_without_the_dask_engine_is_refused(tmp_path):
    result = runner.invoke(
        app,
        [
            *("predict", "--scheduler", "tcp://127.0.0.1:9", "--model", "m"),
            *("--data", "d.csv", "--out", "o.csv"),
        ],
    )
    assert result.exit_code == 1
    assert "--scheduler is for --engine dask" in result.output


@pytest.mark.parametrize("command", ["predict", "train"])
def test_without_dask_the_engine_names_the_extra(command, tmp_path):
    args = (
        ["predict", "--model", "m", "--data", "d.csv", "--out", "o"]
        if command == "predict"
        else ["train", "--no-tracking"]
    )
    code = (
        "import sys\n"
        "sys.modules['dask'] = None\n"  # import dask now fails as if it were not installed
        "sys.modules['distributed'] = None\n"
        "from churnops.cli import main\n"
        f"sys.argv = ['churnops', *{args!r}, '--engine', 'dask']\n"
        "main()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "CHURN_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: --engine dask needs the 'dask' extra (dask is not installed): "
        "pip install 'churnops[dask]'"
    ]


@pytest.mark.slow
def test_dask_training_gives_a_servable_model_as_good_as_local_training(tmp_path):
    from churnops.artifact import load_artifact
    from churnops.data.dataset import DataSpec, load_dataset
    from churnops.pipeline.build import AutoMLSettings
    from churnops.pipeline.train import export_model, train_model

    folder = tmp_path / "table"
    folder.mkdir()
    frame = generate_customers(16000, seed=21)
    for i, part in enumerate(np.array_split(np.arange(len(frame)), 4)):
        frame.iloc[part].to_parquet(folder / f"customers-{i}.parquet", index=False)
    held_out = generate_customers(5000, seed=99)
    is_churn = (held_out["Churn"] == "Yes").to_numpy()
    columns = {name: held_out[name] for name in held_out.columns if name != "Churn"}

    model = tmp_path / "dask-model"
    result = runner.invoke(
        app,
        [
            *("train", "--engine", "dask", "--data", str(folder), "--sample-rows", "4000"),
            *("--max-iter", "4", "--out", str(model), "--register", "churn-dask"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "searches LightGBM only" in result.output
    assert "registered as churn-dask version 1" in result.output
    artifact = load_artifact(model)  # verified
    manifest = artifact.manifest
    assert manifest.data.rows == 16000
    assert manifest.data.final_fit_rows == 16000
    assert manifest.fitting.final.model_dump()["engine"] == "dask"
    assert manifest.automl.best_estimator == "lgbm"
    scorer = load_scorer(artifact, allow_fallback=False)  # pickle-free, as served
    dask_auc = roc_auc_score(
        is_churn, scorer.score_columns(columns, len(held_out)).positive_probability
    )

    whole = tmp_path / "whole.parquet"
    frame.to_parquet(whole, index=False)
    local = train_model(
        load_dataset(whole, DataSpec()),
        AutoMLSettings(time_budget=None, max_iter=4, estimators=("lgbm",)),
    )
    local_artifact = export_model(local, tmp_path / "local-model")
    local_scores = load_scorer(local_artifact).score_columns(columns, len(held_out))
    local_auc = roc_auc_score(is_churn, local_scores.positive_probability)
    print(f"held-out ROC AUC: dask {dask_auc:.4f}, local {local_auc:.4f}")
    assert abs(dask_auc - local_auc) <= 0.01, (dask_auc, local_auc)
