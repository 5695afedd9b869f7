"""`churnops train` records an MLflow run, and a bad tracking store fails before training."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from churnops.artifact import load_artifact
from churnops.errors import ConfigError
from churnops.registry.pyfunc import artifact_directory
from churnops.registry.tracking import (
    artifact_root,
    check_tracking,
    client,
    resolve_tracking_uri,
    search_history,
)
from tests.registry.conftest import run, sqlite_uri


@pytest.mark.slow
def test_train_logs_params_metrics_tags_and_the_artifact(
    customers_csv, tmp_path, project_home, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "model"
    result = run(
        *("train", "--data", str(customers_csv), "--max-iter", "3", "--seed", "5"),
        *("--threshold", "f1", "--out", str(out), "--register", "churn"),
    )
    assert result.exit_code == 0, result.output
    assert "registered as churn version 1" in result.output
    run_id = result.output.split("MLflow run: ")[1].split()[0]
    artifact = load_artifact(out)
    manifest = artifact.manifest
    tracking = client(sqlite_uri(project_home))
    recorded = tracking.get_run(run_id)
    assert recorded.info.status == "FINISHED"

    params = recorded.data.params
    for key, value in manifest.settings.automl.items():
        assert params[f"automl.{key}"] == (value if isinstance(value, str) else json.dumps(value))
    assert params["automl.max_iter"] == "3"
    assert params["automl.time_budget"] == "null"
    assert params["threshold.strategy"] == "f1"
    assert params["data.target"] == "Churn"
    assert params["best_estimator"] == manifest.automl.best_estimator
    for key in manifest.automl.best_config:
        assert f"best_config.{key}" in params

    metrics = recorded.data.metrics
    test = manifest.test_metrics
    assert metrics["test.roc_auc"] == pytest.approx(test["roc_auc"])
    assert metrics["test.log_loss"] == pytest.approx(test["log_loss"])
    assert metrics["test.tp"] == test["confusion_matrix"]["tp"]
    assert metrics["threshold"] == pytest.approx(artifact.threshold)
    prior = manifest.metrics["baselines"]["prior"]
    assert metrics["baseline.prior.log_loss"] == pytest.approx(prior["log_loss"])
    assert metrics["baseline.majority.accuracy"] == pytest.approx(
        manifest.metrics["baselines"]["majority"]["accuracy"]
    )
    trials = tracking.get_metric_history(run_id, "search.validation_loss")
    history = search_history(artifact)
    assert len(history) == 3
    assert sorted((m.step, m.value) for m in trials) == [
        (t["record_id"], pytest.approx(t["validation_loss"])) for t in history
    ]

    tags = recorded.data.tags
    assert tags["churnops.model_version"] == artifact.version
    assert tags["churnops.data_sha256"] == manifest.data.sha256
    assert tags["churnops.data_rows"] == "900"
    assert tags["churnops.data_source"] == str(customers_csv)
    assert tags["churnops.synthetic"] == "false"
    assert tags["churnops.git_commit"] == ((manifest.git or {}).get("commit") or "null")
    assert tags["churnops.version.lightgbm"] == manifest.versions["lightgbm"]
    assert tags["churnops.version.flaml"] == manifest.versions["flaml"]

    # An MLflow model under model/, the whole verified directory inside, the report at the top.
    logged = {f.path for f in tracking.list_artifacts(run_id, "model")}
    assert {"model/MLmodel", "model/input_example.json", "model/data"} <= logged
    inside = {f.path for f in tracking.list_artifacts(run_id, "model/data/churnops")}
    assert {f"model/data/churnops/{name.split('/')[0]}" for name in artifact.files} | {
        "model/data/churnops/manifest.json",
        "model/data/churnops/manifest.sha256",
    } == inside
    assert {"report.md", "report.html"} <= {f.path for f in tracking.list_artifacts(run_id)}
    import mlflow.artifacts

    copy = mlflow.artifacts.download_artifacts(
        run_id=run_id,
        artifact_path="model",
        dst_path=str(tmp_path / "copy"),
        tracking_uri=sqlite_uri(project_home),
    )
    assert load_artifact(artifact_directory(Path(copy))).version == artifact.version  # verified

    # Artifacts live beside the store in .churnops/, never in the working directory's ./mlruns.
    experiment = tracking.get_experiment(recorded.info.experiment_id)
    assert experiment.artifact_location == (project_home / "mlartifacts").resolve().as_uri()
    stored = project_home / "mlartifacts" / run_id / "artifacts" / "model"
    assert (stored / "MLmodel").is_file()
    assert (stored / "data" / "churnops" / "manifest.json").is_file()
    assert not (tmp_path / "mlruns").exists()
    # The artifact on disk was not touched by tracking.
    assert load_artifact(out).version == artifact.version


def test_default_store_is_sqlite_in_the_project_home(project_home, monkeypatch):
    assert resolve_tracking_uri(None, project_home) == sqlite_uri(project_home)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking.example:5000")
    assert resolve_tracking_uri(None, project_home) == "http://tracking.example:5000"
    assert resolve_tracking_uri("sqlite:///x.db", project_home) == "sqlite:///x.db"
    assert artifact_root(sqlite_uri(project_home)) == (
        (project_home / "mlartifacts").resolve().as_uri()
    )
    assert artifact_root("http://tracking.example:5000") is None  # the server decides


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("http://127.0.0.1:9", "is unreachable"),
        ("not a uri", "is not usable"),
        ("sqlite:/relative.db", "expected sqlite:///PATH"),
        ("http://", "expected http(s)://HOST"),
        ("postgresql://user@127.0.0.1:9/mlflow", "is unreachable"),
    ],
)
def test_bad_tracking_uri_fails_before_training(customers_csv, tmp_path, uri, message):
    started = time.monotonic()
    result = run(
        *("train", "--data", str(customers_csv), "--max-iter", "1"),
        *("--out", str(tmp_path / "m"), "--tracking-uri", uri),
    )
    elapsed = time.monotonic() - started
    assert result.exit_code == 1
    assert message in result.output
    # Training never started.
    assert "no --data" not in result.output
    assert "data:" not in result.output
    assert not (tmp_path / "m").exists()
    assert elapsed < 10


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP server that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    listener.close()


def test_a_server_that_never_answers_times_out(silent_server):
    started = time.monotonic()
    with pytest.raises(ConfigError, match="unreachable"):
        check_tracking(silent_server, timeout=1.0)
    assert time.monotonic() - started < 5


def test_a_non_mlflow_server_is_named(tmp_path):
    import http.server

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with pytest.raises(ConfigError, match="does not look like an MLflow tracking server"):
            check_tracking(f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()


def test_sqlite_store_that_cannot_be_used(tmp_path):
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(ConfigError, match="is a directory"):
        check_tracking(f"sqlite:///{tmp_path / 'dir.db'}")
    (tmp_path / "junk.db").write_text("not a database, just text\n" * 100)
    with pytest.raises(ConfigError, match="cannot be opened"):
        check_tracking(f"sqlite:///{tmp_path / 'junk.db'}")


@pytest.mark.slow
def test_no_tracking_trains_without_a_store(customers_csv, tmp_path, project_home):
    result = run(
        *("train", "--data", str(customers_csv), "--max-iter", "1", "--no-tracking"),
        *("--out", str(tmp_path / "m"), "--tracking-uri", "http://127.0.0.1:9"),
    )
    assert result.exit_code == 0, result.output
    assert "not recorded in MLflow" in result.output
    assert "MLflow run" not in result.output
    load_artifact(tmp_path / "m")
    assert not (project_home / "mlflow.db").exists()


def test_register_needs_tracking(customers_csv, tmp_path):
    result = run(
        *("train", "--data", str(customers_csv), "--max-iter", "1", "--no-tracking"),
        *("--register", "churn", "--out", str(tmp_path / "m")),
    )
    assert result.exit_code == 1
    assert "--register needs tracking" in result.output
    assert not Path(tmp_path / "m").exists()
