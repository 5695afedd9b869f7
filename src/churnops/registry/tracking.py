"""Training runs in MLflow: parameters, held-out metrics, lineage tags and the artifact itself."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from churnops.artifact import ModelArtifact
from churnops.errors import ConfigError

EXPERIMENT = "churnops"
ARTIFACT_PATH = "model"  # where a run keeps its churnops artifact directory
TAG = "churnops."


def default_tracking_uri(home: Path) -> str:
    """The embedded default: a SQLite store inside the project's data directory."""
    return f"sqlite:///{(home / 'mlflow.db').resolve()}"


def resolve_tracking_uri(explicit: str | None, home: Path) -> str:
    """``explicit``, else ``MLFLOW_TRACKING_URI``, else :func:`default_tracking_uri`."""
    return explicit or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri(home)


def check_tracking(uri: str, timeout: float = 3.0) -> None:
    """Fail fast, with one line, when ``uri`` cannot be used as an MLflow tracking store.

    Raises
    ------
    ConfigError
        Unknown scheme, unwritable SQLite location, or a server that does not answer its health
        check within ``timeout`` seconds.
    """
    parsed = urlparse(uri)
    scheme = parsed.scheme.lower()
    if scheme == "sqlite":
        path = Path(uri.split(":///", 1)[-1]) if ":///" in uri else None
        if path is None or not str(path):
            raise ConfigError(f"tracking URI {uri!r}: expected sqlite:///PATH")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"tracking URI {uri!r}: cannot create {path.parent} ({exc.strerror})"
            ) from exc
        if not os.access(path.parent, os.W_OK):
            raise ConfigError(f"tracking URI {uri!r}: {path.parent} is not writable")
        return
    if scheme in ("http", "https"):
        # MLflow's client retries for minutes by default; keep its calls short too.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")
        health = uri.rstrip("/") + "/health"
        try:
            with urllib.request.urlopen(health, timeout=timeout) as response:  # noqa: S310  http(s) only
                if response.status != 200:
                    raise ConfigError(f"MLflow server {uri} answered {response.status} on /health")
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ConfigError(
                f"MLflow tracking server {uri} is unreachable ({reason}); start it, fix "
                "--tracking-uri / MLFLOW_TRACKING_URI, or train with --no-tracking"
            ) from None
        return
    if scheme in ("file", "databricks", "postgresql", "mysql", "mssql"):
        return
    raise ConfigError(
        f"tracking URI {uri!r} is not usable: expected sqlite:///PATH, http(s)://HOST[:PORT], "
        "file:/PATH or a database URI"
    )


def client(uri: str) -> Any:
    """An MLflow client on ``uri`` (MLflow is imported only when tracking is used)."""
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def experiment_id(mlflow: Any, home: Path, name: str = EXPERIMENT) -> str:
    """The id of experiment ``name``, created with its artifacts under ``home`` if new."""
    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    location = (home / "mlartifacts").resolve().as_uri()
    return str(mlflow.create_experiment(name, artifact_location=location))


def log_training(
    artifact: ModelArtifact, uri: str, home: Path, experiment: str = EXPERIMENT
) -> str:
    """Record a trained artifact as an MLflow run; return the run id."""
    from mlflow.entities import Metric, Param, RunTag

    mlflow = client(uri)
    manifest = artifact.manifest
    run = mlflow.create_run(
        experiment_id(mlflow, home, experiment),
        run_name=f"{artifact.name}-{artifact.version}",
    )
    run_id = str(run.info.run_id)
    try:
        now = int(run.info.start_time)
        params = [Param(k, _text(v)) for k, v in _params(manifest).items()]
        metrics = [Metric(k, float(v), now, 0) for k, v in _metrics(manifest).items()]
        for trial in _history(artifact):
            if trial.get("validation_loss") is not None:
                step = int(trial.get("record_id") or 0)
                metrics.append(
                    Metric("search.validation_loss", float(trial["validation_loss"]), now, step)
                )
        tags = [RunTag(k, _text(v)) for k, v in _tags(manifest).items()]
        for start in range(0, len(metrics), 900):  # MLflow's batch limit is 1000 entries
            mlflow.log_batch(run_id, metrics=metrics[start : start + 900])
        mlflow.log_batch(run_id, params=params, tags=tags)
        mlflow.log_artifacts(run_id, str(artifact.path), ARTIFACT_PATH)
        mlflow.log_artifact(run_id, str(artifact.path / "report.md"))
        mlflow.set_terminated(run_id, "FINISHED")
    except Exception:
        mlflow.set_terminated(run_id, "FAILED")
        raise
    return run_id


def _params(manifest: dict[str, Any]) -> dict[str, Any]:
    settings = manifest.get("settings", {})
    schema = manifest.get("schema", {})
    automl = manifest.get("automl", {})
    out: dict[str, Any] = {f"automl.{k}": v for k, v in settings.get("automl", {}).items()}
    out.update({f"threshold.{k}": v for k, v in settings.get("threshold_policy", {}).items()})
    out["test_size"] = settings.get("test_size")
    for key in ("target", "positive_label", "id_columns", "ignored_columns"):
        out[f"data.{key}"] = schema.get(key)
    out["best_estimator"] = automl.get("best_estimator")
    out["estimator_class"] = automl.get("estimator_class")
    out.update({f"best_config.{k}": v for k, v in (automl.get("best_config") or {}).items()})
    return out


def _metrics(manifest: dict[str, Any]) -> dict[str, float]:
    test = manifest.get("metrics", {}).get("test", {})
    out = {f"test.{k}": v for k, v in test.items() if isinstance(v, int | float) and v is not None}
    out.update({f"test.{k}": v for k, v in test.get("confusion_matrix", {}).items()})
    automl = manifest.get("automl", {})
    for key in ("best_loss", "fit_seconds", "trials"):
        if isinstance(automl.get(key), int | float):
            out[f"search.{key}"] = automl[key]
    out["threshold"] = manifest.get("threshold", {}).get("value", 0.5)
    return out


def _tags(manifest: dict[str, Any]) -> dict[str, Any]:
    data = manifest.get("data", {})
    git = manifest.get("git") or {}
    out = {
        f"{TAG}model_name": manifest.get("name"),
        f"{TAG}model_version": manifest.get("version"),
        f"{TAG}data_sha256": data.get("sha256"),
        f"{TAG}data_rows": data.get("rows"),
        f"{TAG}data_source": data.get("source"),
        f"{TAG}synthetic": data.get("synthetic"),
        f"{TAG}git_commit": git.get("commit"),
        f"{TAG}git_dirty": git.get("dirty"),
    }
    out.update({f"{TAG}version.{k}": v for k, v in manifest.get("versions", {}).items()})
    return out


def _history(artifact: ModelArtifact) -> list[dict[str, Any]]:
    name = "search_history.jsonl"
    if name not in artifact.files:
        return []
    return [json.loads(line) for line in artifact.read_bytes(name).decode().splitlines() if line]


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:6000]
