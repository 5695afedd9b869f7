"""Batch scoring and training on a Dask cluster (``--engine dask``).

The same calls run on a laptop and on a real cluster: without a scheduler address a
``LocalCluster`` sized to the machine is started; with one, the client connects to it (failing
within ``connect_timeout`` seconds). Workers need churnops installed with the ``dask`` extra
(and ``train`` for training) and must reach the data and output paths under the same names
as the client.

Scoring reads the table in partitions (CSV blocks or Parquet files/row groups), scores each
partition on a worker with the artifact's pickle-free scorer (loaded once per worker by a
worker plugin, from the verified artifact's bytes sent by the client) and writes one Parquet
part per partition: ``OUT/part.000000.parquet``, ``part.000001.parquet``, … in input order.

Training samples the table into memory, runs the ordinary search and held-out evaluation on
the sample (LightGBM only), then refits the chosen configuration on every row with
``lightgbm.dask`` (:mod:`churnops.pipeline.dask_refit`).

Importing this module without dask installed raises :class:`ConfigError` naming the extra.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

from churnops.artifact import MANIFEST, MANIFEST_DIGEST, ModelArtifact, load_artifact
from churnops.data.io import CSV_SUFFIXES, PARQUET_SUFFIXES, file_sha256, frame_sha256
from churnops.errors import ConfigError, DataError, RecordError
from churnops.inference import Scorer, load_scorer
from churnops.schema import as_category

DASK_EXTRA = "pip install 'churnops[dask]'"

try:
    import dask
    import dask.dataframe as dd
    import pyarrow as pa
    import pyarrow.parquet as pq
    from distributed import Client, LocalCluster, WorkerPlugin, get_worker
except ImportError as exc:  # pragma: no cover - exercised in a subprocess without dask
    raise ConfigError(
        f"--engine dask needs the 'dask' extra ({exc.name} is not installed): {DASK_EXTRA}"
    ) from None

if TYPE_CHECKING:
    from churnops.data.dataset import Dataset
    from churnops.pipeline.progress import SearchProgress
    from churnops.pipeline.train import FullTable, TrainResult
    from churnops.workflows.training import TrainRequest

CONNECT_TIMEOUT = 10.0
# CSV bytes per partition: with the text columns as Python strings and the float64 feature
# matrix, a partition takes a few times this in a worker's memory.
CSV_BLOCKSIZE = "64MB"
SCORED_COLUMNS = ("churn_probability", "prediction")


@dataclass(frozen=True)
class ClusterSpec:
    """Where to compute: a scheduler's address, or a local cluster (sized to the machine).

    ``workers``, ``threads_per_worker`` and ``memory_limit`` (bytes or text such as ``"2GB"``,
    per worker) apply to the local cluster only; ``None`` lets Dask size it.
    """

    scheduler: str | None = None
    workers: int | None = None
    threads_per_worker: int | None = None
    memory_limit: str | int | None = None
    connect_timeout: float = CONNECT_TIMEOUT


@contextmanager
def dask_client(spec: ClusterSpec) -> Iterator[Client]:
    """A Dask client, set as the default scheduler while the block runs.

    Raises
    ------
    ConfigError
        The scheduler cannot be reached within ``spec.connect_timeout`` seconds.
    """
    if spec.scheduler:
        try:
            client = Client(spec.scheduler, timeout=spec.connect_timeout)
        except (OSError, TimeoutError, ValueError) as exc:
            reason = _first_line(exc)
            raise ConfigError(
                f"cannot reach the Dask scheduler at {spec.scheduler} within "
                f"{spec.connect_timeout:g} s ({reason})"
            ) from None
        with client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=spec.workers,
            threads_per_worker=spec.threads_per_worker,
            memory_limit=spec.memory_limit if spec.memory_limit is not None else "auto",
            processes=True,  # LightGBM's distributed training needs one process per worker
            # The scheduler serves HTTP (health, and the dashboard when bokeh is installed)
            # even without a dashboard: on a free port, never colliding with another cluster.
            dashboard_address=":0",
            silence_logs=logging.ERROR,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def worker_count(client: Client) -> int:
    """Number of workers connected to the client's scheduler."""
    return len(client.scheduler_info(n_workers=-1)["workers"])


# -- reading -------------------------------------------------------------------------------


def read_partitions(path: Path, blocksize: str | int = CSV_BLOCKSIZE) -> Any:
    """A CSV or Parquet file, or a folder of them, as a Dask DataFrame (nothing read yet).

    CSV cells are read as text, exactly as :func:`churnops.data.io.read_table` reads them; the
    path is made absolute, since workers resolve it, not the client.
    """
    path = path.absolute()
    kind, pattern = _source(path)
    try:
        if kind == "csv":
            return dd.read_csv(
                pattern,
                dtype=str,
                keep_default_na=False,
                na_filter=False,
                blocksize=blocksize,
            )
        return dd.read_parquet(pattern)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read {kind.upper()}: {_first_line(exc)}") from None


def _source(path: Path) -> tuple[str, str]:
    """The format of a file or folder, and what Dask is asked to read."""
    if path.is_dir():
        kinds = {_kind(p) for p in path.iterdir() if p.is_file() and _kind(p)}
        if len(kinds) != 1:
            found = "both CSV and Parquet files" if kinds else "no CSV or Parquet file"
            raise DataError(
                f"{path}: a folder to read must hold files of one format; found {found}"
            )
        kind = kinds.pop()
        suffixes = CSV_SUFFIXES if kind == "csv" else PARQUET_SUFFIXES
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in suffixes)
        return kind, str(path / f"*{files[0].suffix}")
    if not path.exists():
        raise DataError(f"data file not found: {path}")
    kind = _kind(path)
    if not kind:
        raise DataError(f"{path}: unsupported file type {path.suffix!r}; use .csv or .parquet")
    return kind, str(path)


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    return "csv" if suffix in CSV_SUFFIXES else "parquet" if suffix in PARQUET_SUFFIXES else ""


def table_sha256(path: Path) -> str:
    """sha256 of a file, or of a folder's data files (each file's name and sha256, in order)."""
    if path.is_file():
        return file_sha256(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in path.iterdir() if p.is_file() and _kind(p)):
        digest.update(f"{file.name} {file_sha256(file)}\n".encode())
    return digest.hexdigest()


# -- scoring -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DaskScoring:
    """What scoring on Dask did."""

    out: Path
    rows: int
    parts: int
    warned_rows: int
    seconds: float
    workers: int
    runtime: str


class ScorerPlugin(WorkerPlugin):
    """Loads the artifact's fast scorer once on each worker (also on workers that join later).

    The client sends the verified artifact's files; each worker writes them to a temporary
    folder and loads them through the same verified reader as the server, so a worker never
    depends on the client's paths and never unpickles anything.
    """

    def __init__(self, files: dict[str, bytes], key: str) -> None:
        self.files = files
        # Unique per run: two runs of one model on a shared cluster do not remove each other's.
        self.name = f"churnops-scorer-{key}-{uuid.uuid4().hex[:8]}"
        self.scorer: Scorer | None = None
        self._folder: str | None = None

    def setup(self, worker: Any) -> None:
        self._folder = tempfile.mkdtemp(prefix="churnops-model-")
        for name, data in self.files.items():
            target = Path(self._folder) / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        self.scorer = load_scorer(load_artifact(self._folder), allow_fallback=False)

    def teardown(self, worker: Any) -> None:
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)


def _artifact_files(artifact: ModelArtifact) -> dict[str, bytes]:
    """Every file of the artifact (each checked again against the manifest) and the manifest."""
    files = {name: artifact.read_bytes(name) for name in artifact.files}
    for name in (MANIFEST, MANIFEST_DIGEST):
        files[name] = (artifact.path / name).read_bytes()
    return files


def check_scoring(artifact: ModelArtifact, data: Path, out: Path) -> str:
    """Refuse, in seconds and before a cluster starts, what :func:`score_on_dask` would refuse.

    Returns the name of the runtime that will score.
    """
    runtime = load_scorer(artifact, allow_fallback=False).runtime  # pickle-free, or refused
    _source(data.absolute())
    out = out.absolute()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(
            f"{out}: the output must be a new or empty folder (it receives Parquet parts)"
        )
    return runtime


def score_on_dask(
    artifact: ModelArtifact,
    data: Path,
    out: Path,
    client: Client,
    blocksize: str | int = CSV_BLOCKSIZE,
) -> DaskScoring:
    """Score ``data`` (file or folder) partition by partition; write Parquet parts to ``out``.

    Each output row is its input row with ``churn_probability`` and ``prediction`` added, as
    ``churnops predict`` writes them; parts are numbered in input order.

    Raises
    ------
    ArtifactError
        The model has no pickle-free serving form.
    DataError
        Unreadable input, ``out`` not a new or empty folder, or a record the model refuses
        (the message names the partition and the record within it).
    """
    runtime = check_scoring(artifact, data, out)
    out = out.absolute()
    table = read_partitions(data, blocksize)
    meta = table._meta.assign(
        churn_probability=np.array([], dtype=np.float64),
        prediction=pd.array([], dtype="str"),
    )
    schema = pa.Schema.from_pandas(meta, preserve_index=False)
    out.mkdir(parents=True, exist_ok=True)
    plugin = ScorerPlugin(_artifact_files(artifact), artifact.version)
    client.register_plugin(plugin, name=plugin.name)
    started = time.perf_counter()
    try:
        counts = table.map_partitions(
            _score_partition,
            plugin.name,
            str(out),
            schema,
            meta=pd.DataFrame(
                {"rows": pd.Series(dtype=np.int64), "warned": pd.Series(dtype=np.int64)}
            ),
            enforce_metadata=False,
        ).compute()
    finally:
        client.unregister_worker_plugin(plugin.name)
    seconds = time.perf_counter() - started
    return DaskScoring(
        out=out,
        rows=int(counts["rows"].sum()),
        parts=len(counts),
        warned_rows=int(counts["warned"].sum()),
        seconds=seconds,
        workers=worker_count(client),
        runtime=runtime,
    )


def _score_partition(
    part: pd.DataFrame,
    plugin_name: str,
    out: str,
    schema: Any,
    partition_info: dict[str, Any] | None = None,
) -> pd.DataFrame:
    number = partition_info["number"] if partition_info else 0
    scorer = cast(ScorerPlugin, get_worker().plugins[plugin_name]).scorer
    if scorer is None:  # pragma: no cover - setup runs before any task on a worker
        raise RuntimeError(f"{plugin_name} is not set up on this worker")
    warned = 0
    if len(part):
        columns = {str(name): part[name] for name in part.columns}
        try:
            scores = scorer.score_columns(columns, len(part))
        except RecordError as exc:
            # Re-raised as a plain error: it travels back to the client as one line.
            raise DataError(f"partition {number}, {exc}") from None
        part = part.assign(churn_probability=scores.positive_probability, prediction=scores.labels)
        warned = len(scores.warnings)
    else:
        part = part.assign(churn_probability=np.array([], dtype=np.float64), prediction=[])
    table = pa.Table.from_pandas(part, schema=schema, preserve_index=False)
    # Without pandas' metadata, readers give the types the local path's file gives (pandas'
    # default text type, not the partitions' Arrow-backed one).
    pq.write_table(table.replace_schema_metadata(None), f"{out}/part.{number:06d}.parquet")
    return pd.DataFrame({"rows": [len(part)], "warned": [warned]})


# -- training ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DaskTable:
    """The whole table on the cluster and the sample of it held in memory."""

    table: Any  # dask DataFrame of the raw rows
    full: FullTable
    sample: Dataset


def sample_table(request: TrainRequest, client: Client, sample_rows: int) -> DaskTable:
    """Count the table's labelled rows and draw a random sample of about ``sample_rows``.

    Without ``request.data``, ``request.synthetic_rows`` synthetic customers are generated and
    spread over the workers.
    """
    from churnops.data.dataset import DataSpec, dataset_from_frame
    from churnops.pipeline.train import FullTable

    spec = request.spec or DataSpec()
    seed = request.settings.seed
    if request.data is None:
        from churnops.data.sample import generate_customers

        frame = generate_customers(request.synthetic_rows, seed=seed)
        source = f"synthetic Telco-like customers (rows={request.synthetic_rows}, seed={seed})"
        sha256, synthetic = frame_sha256(frame), True
        table = dd.from_pandas(frame, npartitions=max(2, worker_count(client)))
    else:
        table = read_partitions(request.data)
        source, sha256, synthetic = str(request.data), table_sha256(request.data), False
    if spec.target not in table.columns:
        raise DataError(f"{source}: target column {spec.target!r} not found")
    total, labelled = dask.compute(
        table.shape[0],
        table[spec.target].map_partitions(_labelled, meta=(spec.target, np.int64)).sum(),
    )
    if labelled == 0:
        raise DataError(f"{source}: target column {spec.target!r} is empty")
    fraction = min(1.0, sample_rows / int(total))
    drawn = table.sample(frac=fraction, random_state=seed) if fraction < 1.0 else table
    frame = drawn.compute().reset_index(drop=True)
    sample = dataset_from_frame(
        frame,
        spec,
        source=f"{source} (a random sample of {len(frame)} of its {int(total)} rows)",
        sha256=sha256,
        synthetic=synthetic,
    )
    return DaskTable(table, FullTable(source, sha256, int(labelled)), sample)


def _labelled(values: pd.Series) -> pd.Series:
    count = sum(
        as_category(v.item() if isinstance(v, np.generic) else v) is not None for v in values
    )
    return pd.Series([count], dtype=np.int64)


def dask_settings(request: TrainRequest) -> TrainRequest:
    """The request as the Dask engine runs it: LightGBM only, and no in-memory refit.

    Raises
    ------
    ConfigError
        ``refit`` is off: the Dask engine exists to fit the final model on every row.
    """
    if not request.settings.refit:
        raise ConfigError(
            "--engine dask fits the final model on every row of the table; drop --no-refit"
        )
    settings = replace(request.settings, estimators=("lgbm",), refit=False)
    return replace(request, settings=settings)


def fit_on_dask(
    request: TrainRequest,
    data: DaskTable,
    client: Client,
    progress: Callable[[SearchProgress], None] | None = None,
    search_log: logging.Handler | None = None,
) -> TrainResult:
    """Search and evaluate on the sample, then refit the winner on every row on the cluster.

    ``progress`` and ``search_log`` follow the search as in ``workflows.training.fit``.
    """
    from churnops.pipeline.dask_refit import refit_on_dask
    from churnops.pipeline.train import train_model

    request = dask_settings(request)
    result = train_model(
        data.sample, request.settings, request.policy, test_size=request.test_size,
        progress=progress, search_log=search_log,
    )  # fmt: skip
    final, _ = refit_on_dask(result, data.table, data.full, client)
    return final


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
