"""`churnops monitor drift / labels / performance` on a real SQLite prediction store."""

from __future__ import annotations

import datetime as dt
import json

import orjson
import pytest
from typer.testing import CliRunner

from churnops.cli import app
from churnops.monitoring.store import open_store

from .support import logged_rows, resample, score, shifted

pytestmark = pytest.mark.slow
runner = CliRunner()
TRAINED = 4000


def log_window(url, artifact, scorer, window, start, key_prefix):
    """Write ``window`` to the store as the API logs it: one row per scored record."""
    p = score(scorer, artifact.schema, window)
    store = open_store(url)
    rows = [  # in INSERT_COLUMNS order
        (
            start + dt.timedelta(minutes=i),
            artifact.name,
            artifact.version,
            f"r{i}",
            f"{key_prefix}{i}",
            orjson.dumps(record).decode(),
            float(p[i]),
            "Yes" if p[i] >= artifact.threshold else "No",
        )
        for i, record in enumerate(window.to_dict("records"))
    ]
    store.insert_predictions(rows)
    store.close()
    return p


@pytest.fixture(scope="module")
def telco_model(telco_path, tmp_path_factory):
    from churnops.artifact import load_artifact
    from churnops.data.dataset import DataSpec, load_dataset
    from churnops.inference import load_scorer
    from churnops.pipeline.build import AutoMLSettings
    from churnops.pipeline.train import export_model, train_model

    # Fitted on the first 4,000 customers; the log holds customers it never saw.
    folder = tmp_path_factory.mktemp("models")
    logged_rows(telco_path).iloc[:TRAINED].to_csv(folder / "train.csv", index=False)
    result = train_model(
        load_dataset(folder / "train.csv", DataSpec()),
        AutoMLSettings(time_budget=None, max_iter=4, n_jobs=1),
    )
    path = folder / "telco"
    export_model(result, path, name="telco")
    artifact = load_artifact(path)
    return path, artifact, load_scorer(artifact)


def test_drift_labels_and_performance_from_the_log(telco_path, telco_model, tmp_path):
    path, artifact, scorer = telco_model
    url = f"sqlite:///{tmp_path / 'monitoring.db'}"
    rows = logged_rows(telco_path).iloc[TRAINED:].reset_index(drop=True)  # unseen customers
    day1 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    day2 = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)
    log_window(url, artifact, scorer, resample(rows, 1000, seed=1), day1, "a")
    log_window(url, artifact, scorer, shifted(rows, 1000, seed=2), day2, "b")
    common = ["--model", str(path), "--store", url]

    quiet = runner.invoke(app, ["monitor", "drift", *common, "--until", "2026-11-02"])
    assert quiet.exit_code == 0, quiet.output
    assert "1000 logged predictions checked" in quiet.output
    assert "no drift" in quiet.output

    report, findings = tmp_path / "drift.html", tmp_path / "drift.json"
    drifted = runner.invoke(
        app,
        ["monitor", "drift", *common, "--since", "2026-11-02", "--report", str(report),
         "--json", str(findings)],
    )  # fmt: skip
    assert drifted.exit_code == 1, drifted.output
    assert "DRIFT: Contract, MonthlyCharges" in drifted.output
    assert report.read_text().startswith("<!DOCTYPE html>")
    stored = json.loads(findings.read_text())
    assert stored["prediction"]["drifted"] is True

    # The service reports the latest check of the model it serves in /metrics.
    from fastapi.testclient import TestClient

    from churnops.api.app import create_app
    from churnops.config import Settings

    settings = Settings(model=str(path), store_url=url, no_auth=True)
    with TestClient(create_app(settings)) as client:
        exposed = client.get("/metrics").text
    assert 'churnops_drift_detected{feature="Contract"} 1.0' in exposed
    assert 'churnops_drift_detected{feature="tenure"} 0.0' in exposed
    assert 'churnops_drift_detected{feature="prediction"} 1.0' in exposed
    contract_psi = stored["features"][[f["name"] for f in stored["features"]].index("Contract")]
    assert f'churnops_drift_psi{{feature="Contract"}} {contract_psi["psi"]}' in exposed
    assert "churnops_drift_check_rows 1000.0" in exposed

    # Ground truth for the first day's customers (and two keys nobody predicted).
    truth = resample(rows, 1000, seed=1)
    labels = tmp_path / "labels.csv"
    truth.assign(customerID=[f"a{i}" for i in range(1000)])[["customerID", "Churn"]].to_csv(
        labels, index=False
    )
    with labels.open("a") as extra:
        extra.write("nobody1,Yes\nnobody2,No\n")
    attached = runner.invoke(app, ["monitor", "labels", "--data", str(labels), "--store", url])
    assert attached.exit_code == 0, attached.output
    assert "stored 1000 labels" in attached.output
    assert "2 with a key no logged prediction has" in attached.output

    out = tmp_path / "performance.json"
    measured = runner.invoke(app, ["monitor", "performance", *common, "--json", str(out)])
    assert measured.exit_code == 0, measured.output
    figures = json.loads(out.read_text())
    assert [f["window"] for f in figures] == ["all", "2026-11-01", "2026-11-02"]
    first_day = figures[1]
    assert first_day["labelled"] == 1000
    assert 0.75 < first_day["realised"]["roc_auc"] < 0.95
    # The estimate assumes calibrated scores (tested in test_performance.py); on real data it is
    # shown beside the realised figures with the calibration error that explains the gap.
    assert 0.6 < first_day["estimated"]["roc_auc"] < 1
    assert 0 < first_day["calibration"]["expected_calibration_error"] < 0.1
    assert "realised" not in figures[2]  # no labels yet: the estimate only


def test_mistakes_are_one_line(tmp_path, synthetic_model):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    model = str(synthetic_model[1].path)
    for args, message in [
        (["--since", "yesterday"], "--since 'yesterday': give an ISO time"),
        (["--since", "1d", "--until", "2d"], "--since must be before --until"),
    ]:
        result = runner.invoke(app, ["monitor", "drift", "--model", model, "--store", url, *args])
        assert result.exit_code == 1
        assert message in result.output
        assert "Traceback" not in result.output
