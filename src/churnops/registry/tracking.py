"""Training runs in MLflow: parameters, held-out metrics, lineage tags and the artifact itself.

The run is written after training with :class:`mlflow.MlflowClient`, never through an active
(fluent) run: FLAML changes how it fits when an MLflow run is active, so training never sees one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from churnops.artifact import HISTORY_FILE, REPORT_FILE, REPORT_HTML_FILE, Manifest, ModelArtifact
from churnops.errors import ChurnopsError, ConfigError
from churnops.files import creation_lock, prepare_database_file

EXPERIMENT = "churnops"
ARTIFACT_PATH = "model"  # where a run keeps its MLflow model (the churnops artifact inside)
TAG = "churnops."
MODEL_VERSION_TAG = f"{TAG}model_version"
DEFAULT_HOME = Path(".churnops")
CHECK_TIMEOUT = 3.0  # seconds to wait for a tracking server before giving up
STORE_LOCK_TIMEOUT = 300.0  # seconds to wait for another process creating the same store
_DATABASE_PORTS = {"postgresql": 5432, "mysql": 3306, "mssql": 1433}


class TrackingError(ChurnopsError):
    """The MLflow tracking store or model registry refused or failed a request."""


def default_tracking_uri(home: Path) -> str:
    """The embedded default: a SQLite store inside the project's data directory."""
    return f"sqlite:///{(home / 'mlflow.db').resolve()}"


def resolve_tracking_uri(explicit: str | None, home: str | Path = DEFAULT_HOME) -> str:
    """``explicit``, else ``MLFLOW_TRACKING_URI``, else :func:`default_tracking_uri`."""
    return explicit or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri(Path(home))


def artifact_root(uri: str, home: str | Path = DEFAULT_HOME) -> str | None:
    """Where runs of a new experiment keep their artifacts, or None to let the server decide.

    A SQLite store keeps them in ``mlartifacts`` beside the database file (so the default store
    keeps everything in ``.churnops/``); other database stores in ``HOME/mlartifacts``; a
    tracking server and a file store choose for themselves. Never the working directory's
    ``./mlruns``, MLflow's own default for database stores.
    """
    scheme = _scheme(uri)
    if scheme == "sqlite":
        return (_sqlite_path(uri).parent / "mlartifacts").resolve().as_uri()
    if scheme in _DATABASE_PORTS:
        return (Path(home) / "mlartifacts").resolve().as_uri()
    return None


def check_tracking(uri: str, timeout: float = CHECK_TIMEOUT) -> None:
    """Fail fast, with one line, when ``uri`` cannot be used as an MLflow tracking store.

    Nothing here waits longer than ``timeout`` seconds for a server; a SQLite store is opened
    (and created when new). MLflow's own HTTP client retries for minutes by default, so its
    retries and timeout are shortened here unless set in the environment.

    Raises
    ------
    ConfigError
        A malformed or unsupported URI, an unusable SQLite location, a server or database that
        does not answer within ``timeout``.
    """
    scheme = _scheme(uri)
    if scheme == "sqlite":
        _check_sqlite(uri)
    elif scheme in ("http", "https"):
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")
        _check_server(uri, timeout)
    elif scheme in _DATABASE_PORTS:
        _check_database(uri, scheme, timeout)
    elif scheme == "file":
        path = Path(urlparse(uri).path)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"tracking URI {uri!r}: cannot create {path} ({exc.strerror})"
            ) from None
    elif scheme != "databricks":
        raise ConfigError(
            f"tracking URI {uri!r} is not usable: expected sqlite:///PATH, http(s)://HOST[:PORT], "
            "file:///PATH or a database URI (postgresql://, mysql://, mssql://)"
        )


def _scheme(uri: str) -> str:
    return urlparse(uri).scheme.lower().split("+", 1)[0]


def _sqlite_path(uri: str) -> Path:
    if not uri.lower().startswith("sqlite:///") or len(uri) <= len("sqlite:///"):
        raise ConfigError(
            f"tracking URI {uri!r}: expected sqlite:///PATH (absolute: sqlite:////PATH)"
        )
    return Path(uri[len("sqlite:///") :])


def _check_sqlite(uri: str) -> None:
    path = _sqlite_path(uri)
    prepare_database_file(path, f"tracking URI {uri!r}")
    open_store(uri)


def _check_server(uri: str, timeout: float) -> None:
    if not urlparse(uri).hostname:
        raise ConfigError(f"tracking URI {uri!r}: expected http(s)://HOST[:PORT]")
    health = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(health, timeout=timeout):  # noqa: S310  http(s) only
            return
    except urllib.error.HTTPError as exc:
        raise ConfigError(
            f"{uri} does not look like an MLflow tracking server (/health answered HTTP "
            f"{exc.code}); fix --tracking-uri / MLFLOW_TRACKING_URI, or train with --no-tracking"
        ) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ConfigError(
            f"MLflow tracking server {uri} is unreachable ({reason}); start it, fix "
            "--tracking-uri / MLFLOW_TRACKING_URI, or train with --no-tracking"
        ) from None


def _check_database(uri: str, scheme: str, timeout: float) -> None:
    parsed = urlparse(uri)
    try:
        host, port = parsed.hostname, parsed.port or _DATABASE_PORTS[scheme]
    except ValueError as exc:  # a port that is not a number
        raise ConfigError(f"tracking URI {uri!r}: {exc}") from None
    if not host:
        raise ConfigError(f"tracking URI {uri!r}: no database host")
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        raise ConfigError(
            f"tracking database {host}:{port} is unreachable ({exc.strerror or exc}); "
            "fix --tracking-uri / MLFLOW_TRACKING_URI, or train with --no-tracking"
        ) from None


def quiet_mlflow() -> None:
    """Keep MLflow's and its database migrations' INFO lines out of the command's output."""
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


def client(uri: str) -> Any:
    """An MLflow client on ``uri`` (MLflow is imported only when tracking is used).

    A database store is opened first through :func:`open_store`, so its tables are created or
    migrated by one process at a time.
    """
    from mlflow import MlflowClient

    quiet_mlflow()  # after the import: importing MLflow sets its logger to INFO
    open_store(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


_OPENED: set[str] = set()  # database stores this process has opened (under the lock)


def open_store(uri: str) -> None:
    """Open a database tracking store, creating or migrating its tables, under a lock.

    MLflow creates a new store's tables on first use, and two processes doing it at once
    corrupt it (``table _alembic_tmp_metrics already exists``, a half-migrated schema). The
    first process to take the lock creates the store; the others wait, then find it ready.
    Other stores (servers, files) need no lock and are left alone.

    Raises
    ------
    ConfigError
        The store cannot be opened, or another process held its lock for longer than
        ``STORE_LOCK_TIMEOUT`` seconds.
    """
    if uri in _OPENED or _scheme(uri) not in ("sqlite", *_DATABASE_PORTS):
        return
    from mlflow import MlflowClient

    quiet_mlflow()
    with store_lock(uri):
        try:
            mlflow = MlflowClient(tracking_uri=uri, registry_uri=uri)  # opens the tracking store
            mlflow.search_experiments(max_results=1)  # creates or migrates the tables
            mlflow.search_registered_models(max_results=1)  # and the registry's view of them
        except Exception as exc:  # any failure to open the store is the same error for the user
            raise ConfigError(
                f"tracking store {uri} cannot be opened: {_first_line(exc)}"
            ) from None
    _OPENED.add(uri)


def store_lock_path(uri: str) -> Path:
    """The lock file guarding the creation of the store at ``uri``.

    A SQLite store's lock sits beside its database file, so every process using that file, on
    this machine or through a shared volume, takes the same lock. A server database
    (PostgreSQL, MySQL, SQL Server) is locked by a file in this machine's temporary directory
    keyed on a hash of the URI: it keeps concurrent runs on one machine (a developer, one CI
    runner) from racing, but a file lock cannot reach processes on other machines; create such a
    store once (``mlflow db upgrade URI``) before several machines share it.
    """
    if _scheme(uri) == "sqlite":
        database = _sqlite_path(uri)
        return database.with_name(database.name + ".lock")
    key = hashlib.sha256(uri.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"churnops-mlflow-{key}.lock"


def store_lock(uri: str, timeout: float = STORE_LOCK_TIMEOUT) -> AbstractContextManager[None]:
    """Hold the inter-process lock of the store at ``uri`` (see :func:`store_lock_path`)."""
    return creation_lock(store_lock_path(uri), f"tracking store {uri}", timeout)


@contextmanager
def mlflow_errors(what: str) -> Iterator[None]:
    """Report MLflow's exceptions as one-line :class:`TrackingError` naming ``what`` failed."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        raise TrackingError(f"{what}: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return str(message).strip().splitlines()[0]


def experiment_id(mlflow: Any, uri: str, home: str | Path, name: str = EXPERIMENT) -> str:
    """The id of experiment ``name``, created with an explicit artifact location if new."""
    found = mlflow.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    try:
        return str(mlflow.create_experiment(name, artifact_location=artifact_root(uri, home)))
    except Exception:
        found = mlflow.get_experiment_by_name(name)  # created by a concurrent run meanwhile?
        if found is None:
            raise
        return str(found.experiment_id)


def log_training(
    artifact: ModelArtifact, uri: str, home: str | Path = DEFAULT_HOME, experiment: str = EXPERIMENT
) -> str:
    """Record a trained artifact as a finished MLflow run; return the run id.

    Parameters are the AutoML settings, threshold policy, data spec and chosen configuration;
    metrics the held-out ones and each search trial's validation loss (step: trial number);
    tags the data fingerprint, code commit, library versions and the artifact's version. An
    MLflow model is logged under ``model/``: a pyfunc with a signature and an input example,
    holding the whole verified directory in ``model/data/churnops``
    (:mod:`churnops.registry.pyfunc`); its reports (Markdown and HTML) are also logged at the
    top. The artifact itself is not changed.
    """
    from mlflow.entities import Metric, Param, RunTag

    from churnops.registry.pyfunc import save_mlflow_model

    mlflow = client(uri)
    manifest = artifact.manifest
    with mlflow_errors(f"recording the run in {uri}"):
        run = mlflow.create_run(
            experiment_id(mlflow, uri, home, experiment),
            run_name=f"{artifact.name}-{artifact.version}",
        )
        run_id = str(run.info.run_id)
        try:
            now = int(run.info.start_time)
            params = [Param(k, _text(v)) for k, v in run_params(manifest).items()]
            metrics = [Metric(k, float(v), now, 0) for k, v in run_metrics(manifest).items()]
            for trial in search_history(artifact):
                if trial.get("validation_loss") is not None:
                    step = int(trial.get("record_id") or 0)
                    loss = float(trial["validation_loss"])
                    metrics.append(Metric("search.validation_loss", loss, now, step))
            tags = [RunTag(k, _text(v)) for k, v in run_tags(manifest).items()]
            # MLflow accepts at most 1000 metrics and 100 params or tags per batch.
            for start in range(0, len(metrics), 1000):
                mlflow.log_batch(run_id, metrics=metrics[start : start + 1000])
            for start in range(0, max(len(params), len(tags)), 100):
                chunk_params, chunk_tags = params[start : start + 100], tags[start : start + 100]
                mlflow.log_batch(run_id, params=chunk_params, tags=chunk_tags)
            with tempfile.TemporaryDirectory(prefix="churnops-run-") as staging:
                save_mlflow_model(artifact, Path(staging) / ARTIFACT_PATH)
                mlflow.log_artifacts(run_id, str(Path(staging) / ARTIFACT_PATH), ARTIFACT_PATH)
            for report in (REPORT_FILE, REPORT_HTML_FILE):
                if report in artifact.files:  # artifacts written before the HTML report lack it
                    mlflow.log_artifact(run_id, str(artifact.path / report))
        except BaseException:
            mlflow.set_terminated(run_id, "FAILED")
            raise
        mlflow.set_terminated(run_id, "FINISHED")
    return run_id


def log_outcome(uri: str, run_id: str, metrics: dict[str, float], tags: dict[str, str]) -> None:
    """Add metrics and tags to a recorded run (a retraining decision, for example)."""
    from mlflow.entities import Metric, RunTag

    mlflow = client(uri)
    with mlflow_errors(f"recording the outcome of run {run_id} in {uri}"):
        now = int(mlflow.get_run(run_id).info.start_time)
        mlflow.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )


def run_params(manifest: Manifest) -> dict[str, Any]:
    """Flat MLflow parameters of a manifest: ``automl.*``, ``threshold.*``, ``data.*``..."""
    settings, schema, automl = manifest.settings, manifest.schema_, manifest.automl
    out: dict[str, Any] = {f"automl.{k}": v for k, v in settings.automl.items()}
    out.update({f"threshold.{k}": v for k, v in settings.threshold_policy.items()})
    out["test_size"] = settings.test_size
    for key in ("target", "positive_label", "id_columns", "ignored_columns"):
        out[f"data.{key}"] = schema.get(key)
    out["best_estimator"] = automl.best_estimator
    out["estimator_class"] = automl.estimator_class
    out.update({f"best_config.{k}": v for k, v in automl.best_config.items()})
    return out


def run_metrics(manifest: Manifest) -> dict[str, float]:
    """MLflow metrics of a manifest: ``test.*`` (held-out), ``baseline.*``, ``search.*`` and
    ``threshold``."""
    test = manifest.test_metrics
    out: dict[str, float] = {
        f"test.{k}": float(v)
        for k, v in test.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }
    out.update({f"test.{k}": float(v) for k, v in test.get("confusion_matrix", {}).items()})
    # The baselines measured on the same rows, when the artifact records them.
    for name, reference in (manifest.metrics.get("baselines") or {}).items():
        out.update(
            {
                f"baseline.{name}.{k}": float(v)
                for k, v in reference.items()
                if isinstance(v, int | float) and not isinstance(v, bool)
            }
        )
    search = manifest.automl.model_dump(
        include={"best_loss", "fit_seconds", "trials", "time_to_find_best_seconds"}
    )
    out.update({f"search.{k}": float(v) for k, v in search.items() if v is not None})
    out["threshold"] = manifest.threshold.value
    return out


def run_tags(manifest: Manifest) -> dict[str, Any]:
    """Lineage tags of a manifest: data fingerprint and source, code commit, library versions."""
    data, git = manifest.data, manifest.git or {}
    out = {
        f"{TAG}model_name": manifest.name,
        MODEL_VERSION_TAG: manifest.version,
        f"{TAG}data_sha256": data.sha256,
        f"{TAG}data_rows": data.rows,
        f"{TAG}data_source": data.source,
        f"{TAG}synthetic": data.synthetic,
        f"{TAG}git_commit": git.get("commit"),
        f"{TAG}git_dirty": git.get("dirty"),
    }
    if git.get("commit"):
        out["mlflow.source.git.commit"] = git["commit"]  # shown by the MLflow UI
    out.update({f"{TAG}version.{k}": v for k, v in manifest.versions.items()})
    return out


def search_history(artifact: ModelArtifact) -> list[dict[str, Any]]:
    """The artifact's FLAML trials, one dict per trial (verified bytes)."""
    if HISTORY_FILE not in artifact.files:
        return []
    text = artifact.read_bytes(HISTORY_FILE).decode()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:6000]  # MLflow's limit on a parameter or tag value
