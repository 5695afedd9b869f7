"""The prediction log: every prediction the API served and, later, the truth about it.

A store is a database named by a SQLAlchemy URL (``CHURN_STORE_URL``, ``churnops serve
--store URL``): by default the SQLite file ``HOME/monitoring.db`` (write-ahead log, so readers
never block the writer), or PostgreSQL (``postgresql://USER:PASSWORD@HOST[:PORT]/DB``, through
psycopg). Two tables:

``predictions``
    one row per scored record: when (UTC), which model (name, version), which request (the
    ``X-Request-ID`` the API answered with), the record's key (the value of the schema's first
    ID column, when the record has it), the record as received (JSON text), the probability of
    the *positive* class and the label the service answered with.
``labels``
    the truth learned later: a record key, its actual label, when and from where it came.

The schema is created and migrated by Alembic (revisions shipped in
``churnops/monitoring/migrations``), run programmatically whenever a store is opened: each
process that opens a store brings it to the current revision, one at a time (a file lock
beside a SQLite file; a transaction-scoped advisory lock on PostgreSQL, whose DDL is
transactional, so a second process waits, then finds the tables there).

:class:`PredictionLog` keeps writes off the request path: ``/predict`` only appends to a bounded
queue; a background thread (in the writer process of :mod:`churnops.monitoring.writer`, for the
API) inserts in batches and retries, with backoff, while the store is
unavailable. This module imports no training or data-frame library: the API imports it.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from churnops.config import Settings
from churnops.errors import ConfigError, StoreError
from churnops.files import creation_lock, prepare_database_file

log = logging.getLogger("churnops.monitoring")

STORE_FILE = "monitoring.db"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
LOCK_TIMEOUT = 120.0  # seconds to wait for another process creating the same store
CONNECT_TIMEOUT = 5  # seconds: a PostgreSQL server that does not answer; SQLite's busy wait
ADVISORY_LOCK = 0x43_48_55_52_4E  # "CHURN": PostgreSQL advisory lock key of schema creation
MAX_KEY_CHARS = 256  # longer "keys" are not keys (and would not fit a B-tree index entry)
UNKNOWN_SHOWN = 20  # unknown keys listed in a feedback answer (all are counted)
RETRYABLE = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DisconnectionError, OSError)

# The tables as the current revision leaves them (migrations/versions); queries use these.
metadata = sa.MetaData()
predictions = sa.Table(
    "predictions",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("logged_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("model_name", sa.Text(), nullable=False),
    sa.Column("model_version", sa.Text(), nullable=False),
    sa.Column("request_id", sa.Text(), nullable=False),
    sa.Column("record_key", sa.Text(), nullable=True),
    sa.Column("features", sa.Text(), nullable=False),
    sa.Column("probability", sa.Float(), nullable=False),
    sa.Column("label", sa.Text(), nullable=False),
    sa.Index("ix_predictions_record_key", "record_key"),
    sa.Index("ix_predictions_logged_at", "logged_at"),
)
labels = sa.Table(
    "labels",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("record_key", sa.Text(), nullable=False),
    sa.Column("label", sa.Text(), nullable=False),
    sa.Column("labelled_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("source", sa.Text(), nullable=False),
    sa.Index("ix_labels_record_key", "record_key"),
)

# One row per drift check: a summary (JSON) of its scores for /metrics (migrations/v0002).
drift_checks = sa.Table(
    "drift_checks",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
    sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("model_name", sa.Text(), nullable=False),
    sa.Column("model_version", sa.Text(), nullable=False),
    sa.Column("summary", sa.Text(), nullable=False),
    sa.Index("ix_drift_checks_model", "model_name", "model_version"),
)
DRIFT_SUMMARY_BYTES = 1_000_000  # a summary is a few numbers per feature; larger is not one


INSERT_COLUMNS = ("logged_at", "model_name", "model_version", "request_id", "record_key",
                  "features", "probability", "label")  # fmt: skip
_INSERT = f"INSERT INTO predictions ({', '.join(INSERT_COLUMNS)}) VALUES "  # noqa: S608  constants
# 8 parameters a row: 800 a statement, below SQLite's oldest limit of 999 variables.
ROWS_PER_STATEMENT = 100
# A row of ``predictions`` as inserted: values in INSERT_COLUMNS order.
Row = tuple[dt.datetime, str, str, str, str | None, str, float, str]


def default_store_url(home: str | Path) -> str:
    """The embedded default: a SQLite file in the project's data directory."""
    return f"sqlite:///{(Path(home) / STORE_FILE).resolve()}"


def settings_store_url(settings: Settings) -> str | None:
    """The store ``settings`` name (``store_url``, else the default), or None with ``no_store``."""
    if settings.no_store:
        return None
    return settings.store_url or default_store_url(settings.home)


def shown_url(url: str) -> str:
    """``url`` with its password masked, for messages and logs."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa_exc.ArgumentError:
        return re.sub(r"//([^:/@]*):[^@/]*@", r"//\1:***@", url)


def _engine_url(url: str) -> sa.URL:
    expected = (
        "expected sqlite:///PATH (absolute: sqlite:////PATH) or "
        "postgresql://USER:PASSWORD@HOST[:PORT]/DATABASE"
    )
    try:
        parsed = sa.make_url(url)
    except sa_exc.ArgumentError:
        raise ConfigError(
            f"store URL {shown_url(url)!r} is not a database URL: {expected}"
        ) from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise ConfigError(f"store URL {shown_url(url)!r} names no database file: {expected}")
        return parsed
    if backend == "postgresql":
        if not parsed.host:
            raise ConfigError(f"store URL {shown_url(url)!r} names no database host: {expected}")
        if parsed.drivername == "postgresql":  # SQLAlchemy's default would be psycopg2
            parsed = parsed.set(drivername="postgresql+psycopg")
        return parsed
    raise ConfigError(f"store URL {shown_url(url)!r}: {backend} is not supported; {expected}")


@dataclass(frozen=True)
class LabelOutcome:
    """What became of labels sent for storage."""

    stored: int
    unknown: int
    unknown_keys: list[str] = field(default_factory=list)


def _sqlite_time(when: dt.datetime, texts: dict[dt.datetime, str]) -> str:
    """``when`` as SQLAlchemy's SQLite ``DateTime`` stores and reads it back
    (``YYYY-MM-DD HH:MM:SS.ffffff``), cached in ``texts`` (the rows of a request share it).
    Formatted from the fields: ``strftime`` took a tenth of the writer's CPU."""
    text = texts.get(when)
    if text is None:
        text = texts[when] = "%04d-%02d-%02d %02d:%02d:%02d.%06d" % (  # noqa: UP031  faster
            when.year, when.month, when.day, when.hour, when.minute, when.second, when.microsecond
        )  # fmt: skip
    return text


class PredictionStore:
    """An open, migrated store: inserts and the few queries the service and commands need.

    Open one with :func:`open_store`. Thread-safe (SQLAlchemy's engine pools connections).
    """

    def __init__(self, url: str, engine: sa.Engine) -> None:
        self.url = url
        self.engine = engine

    @property
    def shown(self) -> str:
        """The URL with its password masked."""
        return shown_url(self.url)

    def insert_predictions(self, rows: Sequence[Row]) -> None:
        """Insert prediction rows (tuples in :data:`INSERT_COLUMNS` order) in one transaction.

        Rows go in as multi-row ``INSERT … VALUES (…), (…)`` statements of up to
        :data:`ROWS_PER_STATEMENT` rows, with the driver's own parameters: an executemany
        steps the database once per row, and SQLite's driver lets go of the GIL at every step;
        on a busy server each step then waits for the event loop's thread to hand the GIL back.
        """
        if not rows:
            return
        sqlite = self.engine.dialect.name == "sqlite"
        mark = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        group = "(" + ", ".join([mark] * len(INSERT_COLUMNS)) + ")"
        times: dict[dt.datetime, str] = {}
        with self.engine.begin() as connection:
            for start in range(0, len(rows), ROWS_PER_STATEMENT):
                chunk = rows[start : start + ROWS_PER_STATEMENT]
                params: list[object] = []
                for row in chunk:
                    if sqlite:
                        params.append(_sqlite_time(row[0], times))
                        params.extend(row[1:])
                    else:
                        params.extend(row)
                statement = _INSERT + ", ".join([group] * len(chunk))
                connection.exec_driver_sql(statement, tuple(params))

    def known_keys(self, keys: Iterable[str]) -> set[str]:
        """The keys among ``keys`` that some logged prediction has."""
        wanted = sorted(set(keys))
        found: set[str] = set()
        column = predictions.c.record_key
        with self.engine.connect() as connection:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                query = sa.select(column).where(column.in_(chunk)).distinct()
                found.update(str(key) for key in connection.execute(query).scalars())
        return found

    def store_labels(self, pairs: Sequence[tuple[str, str]], source: str) -> LabelOutcome:
        """Store the labels of keys with a logged prediction; count and name the others.

        A label for a key no prediction has is not stored: it could never be joined to what the
        model said. Several labels for one key are all kept (the latest is the truth).

        Raises
        ------
        StoreError
            The store is unavailable.
        """
        try:
            known = self.known_keys(key for key, _ in pairs)
            now = dt.datetime.now(dt.UTC)
            rows = [
                {"record_key": key, "label": label, "labelled_at": now, "source": source}
                for key, label in pairs
                if key in known
            ]
            if rows:
                with self.engine.begin() as connection:
                    connection.execute(labels.insert(), rows)
        except sa_exc.SQLAlchemyError as exc:
            raise StoreError(f"prediction store {self.shown}: {_first_line(exc)}") from None
        unknown = [key for key, _ in pairs if key not in known]
        shown = list(dict.fromkeys(unknown))[:UNKNOWN_SHOWN]
        return LabelOutcome(len(rows), len(unknown), shown)

    def record_drift(self, model_name: str, version: str, summary: dict[str, Any]) -> None:
        """Keep the summary of a drift check of ``model_name`` ``version``."""
        text = orjson.dumps(summary).decode()
        if len(text) > DRIFT_SUMMARY_BYTES:
            raise StoreError(f"drift summary of {len(text)} bytes is too large to keep")
        row = {"checked_at": dt.datetime.now(dt.UTC), "model_name": model_name,
               "model_version": version, "summary": text}  # fmt: skip
        try:
            with self.engine.begin() as connection:
                connection.execute(drift_checks.insert(), [row])
        except sa_exc.SQLAlchemyError as exc:
            raise StoreError(f"prediction store {self.shown}: {_first_line(exc)}") from None

    def latest_drift(self, model_name: str, version: str) -> dict[str, Any] | None:
        """The summary of the latest drift check of ``model_name`` ``version``, if any."""
        c = drift_checks.c
        query = (
            sa.select(c.checked_at, c.summary)
            .where(c.model_name == model_name, c.model_version == version)
            .order_by(c.id.desc())
            .limit(1)
        )
        with self.engine.connect() as connection:
            found = connection.execute(query).first()
        if found is None:
            return None
        summary: dict[str, Any] = orjson.loads(found[1])
        checked = found[0] if found[0].tzinfo else found[0].replace(tzinfo=dt.UTC)
        return {**summary, "checked_at": checked.timestamp()}

    def count(self, table: str = "predictions") -> int:
        """Rows in ``table`` (``predictions`` or ``labels``)."""
        chosen = {"predictions": predictions, "labels": labels}[table]
        with self.engine.connect() as connection:
            return int(
                connection.execute(sa.select(sa.func.count()).select_from(chosen)).scalar_one()
            )

    def close(self) -> None:
        """Close the store's pooled connections."""
        self.engine.dispose()


def open_store(url: str) -> PredictionStore:
    """Open the store at ``url``: create its database file or tables, or migrate them.

    Raises
    ------
    ConfigError
        A malformed or unsupported URL, an unusable SQLite location, a database that refuses or
        does not answer within a few seconds; one line, the password masked.
    """
    parsed = _engine_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = _sqlite_engine(url, parsed)
        lock: Callable[[], Any] = lambda: _file_lock(url, Path(str(parsed.database)))  # noqa: E731
    else:
        engine = sa.create_engine(
            parsed, pool_pre_ping=True, connect_args={"connect_timeout": CONNECT_TIMEOUT}
        )
        lock = _no_lock
    try:
        with lock():
            _migrate(engine)
    except ConfigError:
        engine.dispose()
        raise
    except Exception as exc:  # any failure to open the store is the same error for the user
        engine.dispose()
        raise ConfigError(
            f"prediction store {shown_url(url)} cannot be opened: {_first_line(exc)}"
        ) from None
    return PredictionStore(url, engine)


def _sqlite_engine(url: str, parsed: sa.URL) -> sa.Engine:
    path = Path(str(parsed.database))
    prepare_database_file(path, f"store URL {url!r}")
    engine = sa.create_engine(parsed, connect_args={"timeout": CONNECT_TIMEOUT})

    @sa.event.listens_for(engine, "connect")
    def _pragmas(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {CONNECT_TIMEOUT * 1000}")
        cursor.execute("PRAGMA journal_mode = WAL")  # kept in the file: readers never block
        cursor.execute("PRAGMA synchronous = NORMAL")  # durable at checkpoints; safe with WAL
        cursor.close()

    return engine


_MIGRATING = threading.Lock()  # Alembic's context is process-global: one migration at a time


def _migrate(engine: sa.Engine) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with _MIGRATING, engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            # Held until this transaction ends: concurrent first uses create the tables once.
            connection.execute(
                sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK}
            )
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def _file_lock(url: str, database: Path) -> AbstractContextManager[None]:
    """The lock beside a SQLite file: one process at a time creates or migrates it."""
    path = database.with_name(database.name + ".lock")
    return creation_lock(path, f"prediction store {url}", LOCK_TIMEOUT)


@contextmanager
def _no_lock() -> Iterator[None]:
    yield


def _first_line(exc: BaseException) -> str:
    original = getattr(exc, "orig", None) or exc  # the driver's message, not SQLAlchemy's wrap
    text = str(original).strip() or type(original).__name__
    return text.splitlines()[0]


# One /predict request as the hot path hands it over: (time.time(), model name, model version,
# request id, key column, the body as received, the labels answered, the probabilities of the
# positive class). A plain tuple of strings, numbers and bytes, on purpose: the garbage collector
# stops tracking such a tuple, so the requests waiting in the queue never lengthen its full
# collections (measured with the parsed records queued instead: p99 latency x4 under load).
# The records are parsed again, and their JSON made, by the writer thread.
Answers = tuple[
    float, str, str, str, str | None, bytes | bytearray, tuple[str, ...], tuple[float, ...]
]


def record_key(record: Any, column: str | None) -> str | None:
    """The record's key: its value in ``column`` when it is a string or integer, else None."""
    if column is None or not isinstance(record, dict):
        return None
    value = record.get(column)
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value)
    if not 0 < len(text) <= MAX_KEY_CHARS or "\x00" in text:
        return None
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate (read by the large-body parser): not storable
        return None
    return text


def rows_of(answers: Answers) -> list[Row]:
    """The ``predictions`` rows of one request (made by the writer thread, off the loop)."""
    logged_at, model_name, model_version, request_id, column, body, labels, probabilities = answers
    when = dt.datetime.fromtimestamp(logged_at, dt.UTC)
    records = _records(body, len(labels))
    return [
        (when, model_name, model_version, request_id, record_key(record, column), _json(record),
         probability, label)
        for record, label, probability in zip(records, labels, probabilities, strict=True)
    ]  # fmt: skip


def _records(body: bytes | bytearray, n: int) -> list[Any]:
    try:
        records = orjson.loads(body)
    except orjson.JSONDecodeError:  # what only the API's large-body parser reads (lone surrogates)
        records = json.loads(body)
    if not isinstance(records, list) or len(records) != n:  # not what was scored: keep nothing
        return [None] * n
    return records


def _json(record: Any) -> str:
    try:
        return orjson.dumps(record).decode()
    except TypeError:  # orjson.JSONEncodeError: a lone surrogate, kept escaped
        return json.dumps(record)


Count = Callable[[int], object]


def _ignore(_: int) -> None:
    return None


class BoundedLog:
    """The bookkeeping a prediction log shares with every writer: a bounded queue and counts.

    :meth:`append` only puts the request's answers on a queue holding at most ``capacity``
    records (queued or being written); a request that does not fit is dropped and counted
    (``on_dropped``). A subclass takes answers off ``_queue`` and reports each batch's fate
    with :meth:`_settle`; :meth:`flush` waits for that.

    ``on_logged(n)``, ``on_dropped(n)`` and ``on_queue(size)`` report to the owner's metrics.
    """

    def __init__(
        self,
        capacity: int,
        batch: int,
        on_logged: Count = _ignore,
        on_dropped: Count = _ignore,
        on_queue: Count = _ignore,
    ) -> None:
        self.capacity = capacity
        self.batch = batch
        self._on_logged, self._on_dropped, self._on_queue = on_logged, on_dropped, on_queue
        self._queue: collections.deque[Answers] = collections.deque()
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)
        self._size = 0  # records accepted and neither written nor dropped yet
        self._waiting = 0  # records on the queue, not yet taken by the writer
        self._accepted = 0  # records ever accepted
        self._settled = 0  # records ever written or dropped by the writer
        self.logged = 0
        self.dropped = 0
        self._closed = False
        self._wake = threading.Event()

    @property
    def queued(self) -> int:
        """Records waiting to be written."""
        return self._size

    def append(self, answers: Answers) -> bool:
        """Queue one request's predictions; False (and counted as dropped) when full or closed."""
        n = len(answers[6])
        with self._lock:
            accepted = not self._closed and self._size + n <= self.capacity
            if accepted:
                self._queue.append(answers)
                self._size += n
                self._waiting += n
                self._accepted += n
            else:
                self.dropped += n
            full = self._waiting >= self.batch
        if not accepted:
            self._on_dropped(n)
            self._on_queue(self._size)
            return False
        # A batch is waiting: the writer takes it now rather than at its next interval. Counted
        # on the queue, not on what is written but unconfirmed: waking the writer for every
        # request until a confirmation arrives took a tenth of the 1-record throughput.
        if full:
            self._wake.set()
        return True

    def _take(self) -> Answers | None:
        """The oldest answers on the queue (for the writer), or None when it is empty."""
        with self._lock:
            if not self._queue:
                return None
            answers = self._queue.popleft()
            self._waiting -= len(answers[6])
        return answers

    def _take_all(self) -> list[Answers]:
        """Every answers on the queue (for the writer), oldest first."""
        with self._lock:
            taken = list(self._queue)
            self._queue.clear()
            self._waiting = 0
        return taken

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is written (or dropped); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            target = self._accepted
            self._nudge()
            while self._settled < target:
                left = deadline - time.monotonic()
                if left <= 0 or not self._writing():
                    return False
                self._done.wait(min(left, 0.1))
                self._nudge()
        return True

    def _nudge(self) -> None:
        """Have the writer write what is queued now rather than at its next interval."""
        self._wake.set()

    def _writing(self) -> bool:
        """Whether a writer is still there to settle what is queued."""
        raise NotImplementedError

    def _settle(self, n: int, written: bool) -> None:
        with self._lock:
            self._size -= n
            self._settled += n
            if written:
                self.logged += n
            else:
                self.dropped += n
            self._done.notify_all()
        (self._on_logged if written else self._on_dropped)(n)
        self._on_queue(self._size)


class PredictionLog(BoundedLog):
    """Writes served predictions to a store from a background thread, never from a request.

    The thread inserts up to ``batch`` rows at a time, at least every ``interval`` seconds.
    While the store is unavailable it keeps what it has, retries with exponential backoff (up
    to ``max_backoff`` seconds) and lets the queue fill; a batch the store refuses for another
    reason (a constraint, a bad value) is dropped and counted, so one bad row never blocks the
    log. :meth:`close` writes everything still queued (graceful shutdown). The counts are
    reported from the writer thread (see :class:`BoundedLog`).
    """

    def __init__(
        self,
        store: PredictionStore,
        capacity: int = 100_000,
        *,
        batch: int = 1_000,
        interval: float = 0.5,
        max_backoff: float = 5.0,
        on_logged: Count = _ignore,
        on_dropped: Count = _ignore,
        on_queue: Count = _ignore,
    ) -> None:
        super().__init__(capacity, batch, on_logged, on_dropped, on_queue)
        self.store = store
        self.interval = interval
        self.max_backoff = max_backoff
        self._stop = threading.Event()
        self._deadline = float("inf")
        self._thread = threading.Thread(
            target=self._run, name="churnops-prediction-log", daemon=True
        )
        self._thread.start()

    def _writing(self) -> bool:
        return self._thread.is_alive()

    def close(self, timeout: float = 15.0) -> None:
        """Stop taking predictions, write what is queued, stop the thread.

        What the store has not taken after ``timeout`` seconds (it is down) is dropped, counted
        and logged as an error.
        """
        with self._lock:
            self._closed = True
        self._deadline = time.monotonic() + timeout
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout + 5)
        self.store.close()

    # The writer thread.

    def _run(self) -> None:
        rows: list[Row] = []  # built, not yet written (kept across failures)
        failures = 0
        while True:
            while len(rows) < self.batch and (answers := self._take()) is not None:
                rows.extend(rows_of(answers))
            if rows:
                chunk = rows[: self.batch]
                outcome = self._write(chunk)
                if outcome == "retry":
                    failures += 1
                    if self._stop.is_set() and time.monotonic() >= self._deadline:
                        self._give_up(rows)
                        rows = []
                        break
                    self._on_queue(self._size)
                    self._pause(min(self.max_backoff, self.interval * 2 ** (failures - 1)))
                    continue
                failures = 0
                del rows[: len(chunk)]
                self._settle(len(chunk), written=outcome == "written")
                # At once again only for a full batch (or to empty the queue at shutdown):
                # under steady load something is always queued, and writing it row by row
                # would cost a transaction each (measured: 4x the writer's CPU).
                if rows or self._size >= self.batch or (self._stop.is_set() and self._queue):
                    continue
            if self._stop.is_set() and not self._queue:
                break
            self._on_queue(self._size)
            self._wake.wait(self.interval)
            self._wake.clear()
        self._on_queue(self._size)

    def _write(self, chunk: list[Row]) -> str:
        try:
            self.store.insert_predictions(chunk)
        except RETRYABLE as exc:
            log.warning(
                f"prediction store {self.store.shown} unavailable ({_first_line(exc)}); "
                f"{self._size} records wait, retrying"
            )
            return "retry"
        except Exception as exc:  # refused for good: never let one batch block the log
            log.error(
                f"prediction store {self.store.shown} refused {len(chunk)} records, dropped: "
                f"{_first_line(exc)}"
            )
            return "refused"
        return "written"

    def _give_up(self, rows: list[Row]) -> None:
        lost = len(rows) + sum(len(answers[6]) for answers in self._take_all())
        log.error(
            f"prediction store {self.store.shown} still unavailable at shutdown: "
            f"{lost} records not logged"
        )
        self._settle(lost, written=False)

    def _pause(self, seconds: float) -> None:
        if self._stop.is_set():  # shutting down: keep retrying until the deadline
            time.sleep(max(0.0, min(seconds, self._deadline - time.monotonic())))
        else:
            self._stop.wait(seconds)
