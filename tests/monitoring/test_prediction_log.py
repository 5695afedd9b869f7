"""The prediction log's writer: off the request path, bounded, retrying; and under a real server."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from churnops.errors import ConfigError
from churnops.monitoring.store import INSERT_COLUMNS, Answers, PredictionLog, open_store
from churnops.monitoring.writer import PredictionWriter, decode, encode

from ..api.servers import CHURNOPS, _env, serving
from ..api.support import AUTH, payload
from .conftest import PG_URL, reset_postgres

REQUEST_ID = INSERT_COLUMNS.index("request_id")


class FlakyStore:
    """A store that can be down (retryable errors) or refuse particular requests for good."""

    shown = "stub://"

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.down = False
        self.refuse: set[str] = set()
        self.calls = 0
        self.batches: list[int] = []

    def insert_predictions(self, rows):
        self.calls += 1
        self.batches.append(len(rows))
        if self.down:
            raise sa_exc.OperationalError("INSERT", {}, Exception("database is locked"))
        if any(r[REQUEST_ID] in self.refuse for r in rows):
            raise sa_exc.IntegrityError("INSERT", {}, Exception("value refused"))
        self.rows.extend(rows)

    def close(self) -> None:
        pass


def answers(request_id: str, n: int = 1) -> Answers:
    records = [{"customerID": f"{request_id}-{i}", "tenure": i} for i in range(n)]
    body = json.dumps(records).encode()
    return (time.time(), "churn", "v1", request_id, "customerID", body, ("No",) * n, (0.1,) * n)


class Counts:
    def __init__(self) -> None:
        self.logged = self.dropped = 0
        self.queue: list[int] = []

    def log(self, store, **options) -> PredictionLog:
        def logged(n):
            self.logged += n

        def dropped(n):
            self.dropped += n

        return PredictionLog(store, on_logged=logged, on_dropped=dropped,
                             on_queue=self.queue.append, **options)  # fmt: skip


def test_everything_appended_is_written_by_close():
    store, counts = FlakyStore(), Counts()
    log = counts.log(store, batch=7, interval=5.0)
    sizes = [1 + i % 3 for i in range(50)]
    for i, n in enumerate(sizes):
        assert log.append(answers(f"r{i}", n))
    log.close()
    assert len(store.rows) == sum(sizes) == log.logged == counts.logged
    assert max(store.batches) == 7  # executemany in batches of at most `batch` rows
    assert log.queued == 0
    assert counts.dropped == 0
    assert not log.append(answers("late"))  # closed: refused and counted
    assert counts.dropped == 1


def test_the_queue_is_bounded_while_the_store_is_down_then_drains():
    store, counts = FlakyStore(), Counts()
    store.down = True
    log = counts.log(store, capacity=10, interval=0.05, max_backoff=0.1)
    accepted = [log.append(answers(f"r{i}")) for i in range(15)]
    assert accepted == [True] * 10 + [False] * 5
    assert (log.dropped, counts.dropped, log.queued) == (5, 5, 10)
    assert not log.append(answers("big", 2))  # a request is taken whole or not at all
    time.sleep(0.5)
    assert store.calls >= 2  # retried, with backoff
    assert store.rows == []
    assert 10 in counts.queue  # the gauge saw the waiting records
    store.down = False
    assert log.flush(10)
    assert len(store.rows) == 10 == counts.logged
    assert [r[REQUEST_ID] for r in store.rows] == [f"r{i}" for i in range(10)]
    assert log.queued == 0
    assert counts.queue[-1] == 0
    log.close()


def test_a_refused_batch_is_dropped_and_counted_not_retried_forever():
    store, counts = FlakyStore(), Counts()
    store.refuse = {"bad"}
    log = counts.log(store, batch=2, interval=0.05)
    for request_id in ("a", "bad", "b", "c"):
        log.append(answers(request_id))
    log.close()
    # Batches of two: [a, bad] is refused whole, [b, c] written.
    assert [r[REQUEST_ID] for r in store.rows] == ["b", "c"]
    assert (counts.logged, counts.dropped) == (2, 2)


def test_close_gives_up_on_a_store_that_stays_down():
    store, counts = FlakyStore(), Counts()
    store.down = True
    log = counts.log(store, interval=0.05, max_backoff=0.1)
    for i in range(3):
        log.append(answers(f"r{i}", 2))
    started = time.monotonic()
    log.close(timeout=1.0)
    assert time.monotonic() - started < 5
    assert (counts.logged, counts.dropped, log.queued) == (0, 6, 0)


def test_flush_does_not_wait_for_the_interval():
    store = FlakyStore()
    log = PredictionLog(store, interval=30.0)
    log.append(answers("r"))
    started = time.monotonic()
    assert log.flush(10)
    assert time.monotonic() - started < 2
    assert len(store.rows) == 1
    log.close()


def test_appending_is_cheap_and_never_touches_the_store():
    store = FlakyStore()
    log = PredictionLog(store, capacity=1_000_000, interval=30.0, batch=10**9)
    batch = answers("r")
    started = time.perf_counter()
    for _ in range(20_000):
        log.append(batch)
    per_append = (time.perf_counter() - started) / 20_000
    assert store.calls == 0
    assert per_append < 20e-6, per_append
    log.close()
    assert len(store.rows) == 20_000


def test_the_writer_is_woken_for_a_waiting_batch_not_for_every_request():
    """Records being written but not yet confirmed do not wake the writer again: only a batch
    waiting on the queue does (waking it per request cost a tenth of the throughput)."""
    release = threading.Event()

    class SlowStore(FlakyStore):
        def insert_predictions(self, rows):
            release.wait(10)
            super().insert_predictions(rows)

    store = SlowStore()
    log = PredictionLog(store, capacity=1_000, batch=10, interval=30.0)
    for i in range(10):
        log.append(answers(f"a{i}"))  # a batch: the writer takes it and holds it in the store
    deadline = time.monotonic() + 10
    while log._waiting and time.monotonic() < deadline:
        time.sleep(0.01)
    assert (log._waiting, log.queued) == (0, 10)  # taken, unconfirmed
    log._wake.clear()
    for i in range(9):
        log.append(answers(f"b{i}"))
    assert not log._wake.is_set()  # 19 unconfirmed, 9 waiting: less than a batch
    log.append(answers("b9"))
    assert log._wake.is_set()  # 10 waiting
    release.set()
    log.close()
    assert len(store.rows) == 20


# The writer process the service runs (a PredictionLog in a child process).


def test_the_writer_process_writes_everything_by_close(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    counts = Counts()
    writer = PredictionWriter(open_store(url), 1_000, batch=5, interval=60.0,
                              on_logged=lambda n: setattr(counts, "logged", counts.logged + n),
                              on_queue=counts.queue.append)  # fmt: skip
    sizes = [1 + i % 3 for i in range(40)]
    for i, n in enumerate(sizes):
        assert writer.append(answers(f"r{i}", n))
    assert writer.flush(20)  # written without waiting for the child's interval
    assert writer.logged == counts.logged == sum(sizes)
    assert writer.append(answers("last"))
    writer.close()
    assert (writer.logged, writer.dropped, writer.queued) == (sum(sizes) + 1, 0, 0)
    assert counts.queue[-1] == 0
    store = open_store(url)
    try:
        assert store.count() == sum(sizes) + 1
        assert store.known_keys(["r0-0", "last-0"]) == {"r0-0", "last-0"}
    finally:
        store.close()


def test_answers_reach_the_writer_process_exactly_as_answered():
    body = json.dumps([{"customerID": "ü-1", "tenure": 3}, {"customerID": 7}]).encode()
    sent = [
        (1764560000.123456, "churn", "v1", "a-request", None, bytearray(body), ("Oui", "Ναι"),
         (0.1 + 0.2, 5e-324)),
        answers("another", 3),
    ]  # fmt: skip
    got = decode(*encode(sent))
    assert got[0] == (*sent[0][:5], body, *sent[0][6:])  # floats to the last bit, bodies as sent
    assert got[1] == sent[1]
    assert [type(v) for v in got[0][5:]] == [bytes, tuple, tuple]


def test_answers_that_cannot_be_encoded_are_dropped_and_counted(tmp_path, caplog):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    writer = PredictionWriter(open_store(url), 100)
    broken = (*answers("broken", 2)[:6], ("No", "\ud800"), (0.1, 0.2))  # a lone surrogate
    assert writer.append(answers("before"))
    assert writer.append(broken)  # queued: the sender finds it out, off the request path
    assert writer.append(answers("after"))
    assert writer.flush(30)
    writer.close()
    assert (writer.logged, writer.dropped, writer.queued) == (2, 2, 0)
    assert "request 'broken' not logged" in caplog.text
    store = open_store(url)
    try:
        assert store.known_keys(["before-0", "after-0"]) == {"before-0", "after-0"}
    finally:
        store.close()


def test_the_writer_process_yields_the_cpu_to_the_server(tmp_path):
    from churnops.monitoring.writer import WRITER_NICENESS

    writer = PredictionWriter(open_store(f"sqlite:///{tmp_path / 'm.db'}"), 100)
    try:
        server = os.getpriority(os.PRIO_PROCESS, 0)
        expected = min(19, server + WRITER_NICENESS)
        assert os.getpriority(os.PRIO_PROCESS, writer._process.pid) == expected > server
    finally:
        writer.close()


def test_a_dead_writer_process_costs_the_log_not_the_service(tmp_path, caplog):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    writer = PredictionWriter(open_store(url), 1_000, interval=30.0, batch=10**6)
    assert writer.append(answers("held", 3))  # handed to the child, which waits 30 s to write
    _wait_for(lambda: not writer._queue, 10, "the hand-over")
    writer._process.kill()  # what an OOM kill does
    writer._process.join(10)
    _wait_for(lambda: not writer._writing(), 10, "the writer to be seen dead")
    assert (writer.logged, writer.dropped, writer.queued) == (0, 3, 0)  # what it held: lost
    assert not writer.append(answers("after", 2))  # refused at once, counted
    assert writer.dropped == 5
    assert writer.flush(1)  # nothing is left waiting
    writer.close()
    assert "prediction log writer" in caplog.text
    assert "exited" in caplog.text


def test_a_writer_never_closed_does_not_hang_the_exit(tmp_path):
    # An app whose shutdown never ran: the interpreter's exit closes the pipe, the child writes
    # what it was handed and exits, and multiprocessing's join of its children returns.
    url = f"sqlite:///{tmp_path / 'm.db'}"
    code = (
        "import time\n"
        "from churnops.monitoring.store import open_store\n"
        "from churnops.monitoring.writer import PredictionWriter\n"
        "from tests.monitoring.test_prediction_log import answers\n"
        f"writer = PredictionWriter(open_store({url!r}), 100, interval=30.0)\n"
        "writer.append(answers('left', 2))\n"
        "time.sleep(0.5)  # handed over to the child\n"
    )
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60,
                   cwd=Path(__file__).resolve().parents[2])  # fmt: skip
    assert time.monotonic() - started < 30
    store = open_store(url)
    try:
        assert store.count() == 2
    finally:
        store.close()


def test_sigterm_to_the_writer_process_alone_ends_it_after_a_grace(tmp_path):
    writer = PredictionWriter(open_store(f"sqlite:///{tmp_path / 'm.db'}"), 100)
    writer._process.terminate()  # SIGTERM, as a service manager sends it to every process
    writer._process.join(5)
    assert writer._process.is_alive()  # it waits for the server's pipe to close
    writer.close()
    assert not writer._process.is_alive()
    assert writer._process.exitcode == 0


def test_a_store_the_writer_process_cannot_open_is_one_line(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'm.db'}")
    (tmp_path / "m.db").unlink()
    (tmp_path / "m.db").mkdir()  # the child opens the store again and finds a directory
    with pytest.raises(ConfigError, match="prediction log writer") as raised:
        PredictionWriter(store, 10)
    assert len(str(raised.value).splitlines()) == 1
    store.close()


# A real `churnops serve`.


def _metric(base: str, name: str) -> float:
    text = httpx.get(f"{base}/metrics").text
    found = re.search(rf"^{name} ([0-9.e+]+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def _wait_for(condition, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _record(key: str) -> dict:
    return {**payload("chapter_request.json")[0], "customerID": key}


def _server_env() -> dict[str, str]:
    return _env(CHURN_USER=AUTH[0], CHURN_PASSWORD=AUTH[1])


def _store_args(kind: str, tmp_path: Path) -> tuple[list[str], str]:
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path / 'log' / 'monitoring.db'}"
    else:
        if not PG_URL:
            pytest.skip("CHURN_TEST_PG_URL is not set")
        reset_postgres(PG_URL)
        url = PG_URL
    return ["--store", url], url


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_every_prediction_answered_is_in_the_store_after_sigterm(synthetic_model, tmp_path, kind):
    store_args, url = _store_args(kind, tmp_path)
    args = ["--model", str(synthetic_model[1].path), "--host", "127.0.0.1", *store_args]
    answered: list[str] = []  # keys of records answered with 200
    lock = threading.Lock()
    stop = threading.Event()

    def client(worker: int) -> None:
        with httpx.Client(auth=AUTH, timeout=30) as http:
            for i in range(10_000):
                if stop.is_set():
                    return
                keys = [f"w{worker}-{i}-{j}" for j in range(1 + i % 3)]  # 1 to 3 records
                try:
                    response = http.post(f"{base}/predict", json=[_record(k) for k in keys])
                except httpx.HTTPError:
                    return  # the server is going away
                if response.status_code == 200:
                    with lock:
                        answered.extend(keys)

    with serving(args, _server_env(), tmp_path / "out") as server:
        base = server.base
        threads = [threading.Thread(target=client, args=(w,)) for w in range(6)]
        for thread in threads:
            thread.start()
        _wait_for(lambda: len(answered) >= 600, what="600 answered records")
        # SIGTERM under load: requests in flight are answered, and every answer is logged.
        server.process.terminate()
        server.process.wait(timeout=60)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    store = open_store(url)
    try:
        with store.engine.connect() as connection:
            logged = connection.execute(sa.text("SELECT record_key FROM predictions")).scalars()
            keys = list(logged)
    finally:
        store.close()
    assert len(keys) == len(set(keys)), "a prediction was logged twice"
    assert sorted(keys) == sorted(answered)
    print(f"\n{kind}: {len(answered)} records answered, {len(keys)} logged")


def _lock_sqlite(url: str) -> sqlite3.Connection:
    connection = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    connection.execute("BEGIN EXCLUSIVE")
    return connection


def _lock_postgres(url: str):
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    connection = engine.connect()
    connection.execute(sa.text("LOCK TABLE predictions IN ACCESS EXCLUSIVE MODE"))
    return connection, engine


class _Outage:
    """Makes the store unavailable and brings it back: another connection's exclusive lock on
    the table (SQLite, PostgreSQL), or the PostgreSQL server itself stopped and started."""

    def __init__(self, kind: str, url: str, server=None) -> None:
        self.kind, self.url, self.server = kind, url, server

    def begin(self) -> None:
        if self.kind == "sqlite":
            self.holder = _lock_sqlite(self.url)
        elif self.kind == "postgresql":
            self.holder, self.engine = _lock_postgres(self.url)
        else:
            self.server.stop()

    def end(self) -> None:
        if self.kind == "sqlite":
            self.holder.execute("COMMIT")
            self.holder.close()
        elif self.kind == "postgresql":
            self.holder.commit()
            self.holder.close()
            self.engine.dispose()
        else:
            self.server.start()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sqlite", "postgresql", "postgresql-server-stopped"])
def test_the_api_answers_while_the_store_is_unavailable(synthetic_model, tmp_path, kind, request):
    if kind == "postgresql-server-stopped":
        server = request.getfixturevalue("postgres_server")
        store_args, url = ["--store", server.url], server.url
    else:
        server = None
        store_args, url = _store_args(kind, tmp_path)
    outage = _Outage(kind, url, server)
    args = ["--model", str(synthetic_model[1].path), "--host", "127.0.0.1", *store_args]
    env = {**_server_env(), "CHURN_STORE_QUEUE": "50"}
    with serving(args, env, tmp_path / "out") as server, httpx.Client(auth=AUTH) as http:
        base = server.base
        for i in range(20):
            assert http.post(f"{base}/predict", json=[_record(f"before-{i}")]).status_code == 200
        _wait_for(lambda: _metric(base, "churnops_predictions_logged_total") == 20, what="20")
        outage.begin()  # the store becomes unavailable
        try:
            for i in range(100):
                response = http.post(f"{base}/predict", json=[_record(f"during-{i}")])
                assert response.status_code == 200  # the API answers on
            _wait_for(lambda: _metric(base, "churnops_prediction_log_queue") == 50, what="queue")
            assert _metric(base, "churnops_predictions_dropped_total") == 50
            assert _metric(base, "churnops_predictions_logged_total") == 20
        finally:
            outage.end()
        # Back: what waited is written, and the queue is empty again.
        _wait_for(lambda: _metric(base, "churnops_predictions_logged_total") == 70, what="70")
        assert _metric(base, "churnops_prediction_log_queue") == 0
    store = open_store(url)
    try:
        assert store.count() == 70
        assert len(store.known_keys([f"during-{i}" for i in range(100)])) == 50
    finally:
        store.close()


@pytest.mark.slow
def test_no_store_logs_nothing(synthetic_model, tmp_path, project_home):
    args = ["--model", str(synthetic_model[1].path), "--host", "127.0.0.1", "--no-store"]
    with serving(args, _server_env(), tmp_path / "out") as server:
        for i in range(5):
            response = httpx.post(f"{server.base}/predict", json=[_record(f"k{i}")], auth=AUTH)
            assert response.status_code == 200
        assert _metric(server.base, "churnops_predictions_logged_total") == 0
        assert _metric(server.base, "churnops_predictions_dropped_total") == 0
        feedback = httpx.post(
            f"{server.base}/feedback", json=[{"key": "k1", "label": "Yes"}], auth=AUTH
        )
        assert feedback.status_code == 503
        assert "--no-store" in feedback.json()["detail"]
    assert "prediction log: off" in server.output()
    assert not list(project_home.parent.rglob("monitoring.db*"))


@pytest.mark.slow
def test_default_store_is_in_the_project_home(synthetic_model, tmp_path, project_home):
    args = ["--model", str(synthetic_model[1].path), "--host", "127.0.0.1"]
    with serving(args, _server_env(), tmp_path / "out") as server:
        assert httpx.post(f"{server.base}/predict", json=[_record("k")], auth=AUTH).is_success
    database = project_home / "monitoring.db"
    assert f"prediction log: sqlite:///{database.resolve()}" in server.output()
    store = open_store(f"sqlite:///{database}")
    try:
        assert store.known_keys(["k"]) == {"k"}
    finally:
        store.close()


@pytest.mark.parametrize(
    ("store", "expected"),
    [
        ("postgresql://churnops:pw-never-shown@127.0.0.1:1/churnops", "cannot be opened"),
        ("mysql://u@h/db", "mysql is not supported"),
        ("sqlite:///{tmp}", "is a directory"),
    ],
)
def test_a_bad_store_is_one_line_at_start_up(synthetic_model, tmp_path, store, expected):
    result = subprocess.run(
        [CHURNOPS, "serve", "--model", str(synthetic_model[1].path),
         "--store", store.format(tmp=tmp_path)],
        env=_server_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert expected in message
    assert "Traceback" not in message
    assert "pw-never-shown" not in message + result.stdout
    assert "Uvicorn running" not in result.stdout + result.stderr


def test_store_and_no_store_contradict(synthetic_model, tmp_path):
    result = subprocess.run(
        [CHURNOPS, "serve", "--model", str(synthetic_model[1].path), "--no-store",
         "--store", f"sqlite:///{tmp_path / 'm.db'}"],
        env=_server_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1
    assert "contradict" in result.stderr


def test_the_access_log_and_the_store_share_the_request_id(synthetic_model, tmp_path):
    from fastapi.testclient import TestClient

    from churnops.api.app import create_app

    from ..api.support import make_settings

    url = f"sqlite:///{tmp_path / 'm.db'}"
    settings = make_settings(synthetic_model[1].path, store_url=url)
    with TestClient(create_app(settings)) as client:
        response = client.post(
            "/predict", json=[_record("a"), _record("b")], auth=AUTH,
            headers={"X-Request-ID": "trace-123"},
        )  # fmt: skip
        assert response.status_code == 200
        answer = response.json()
    store = open_store(url)
    try:
        with store.engine.connect() as connection:
            rows = (
                connection.execute(sa.text("SELECT * FROM predictions ORDER BY id"))
                .mappings()
                .all()
            )
    finally:
        store.close()
    assert [r["request_id"] for r in rows] == ["trace-123", "trace-123"]
    assert [r["record_key"] for r in rows] == ["a", "b"]
    assert [r["label"] for r in rows] == [answer["0"]["prediction"], answer["1"]["prediction"]]
    positive = synthetic_model[1].schema.positive_label
    for row, key in zip(rows, ("0", "1"), strict=True):
        assert row["probability"] == pytest.approx(answer[key]["probabilities"][positive])
        assert json.loads(row["features"]) == _record(row["record_key"])
        assert row["model_version"] == synthetic_model[1].version


def test_each_lifespan_of_an_app_closes_its_own_writer(synthetic_model, tmp_path):
    """A second lifespan of the same app (a test client may start one) opens a writer of its own;
    each lifespan closes its own, so no writer process outlives them."""
    from fastapi.testclient import TestClient

    from churnops.api.app import create_app

    from ..api.support import make_settings

    url = f"sqlite:///{tmp_path / 'm.db'}"
    app = create_app(make_settings(synthetic_model[1].path, store_url=url))
    with TestClient(app) as outer:
        first = app.state.prediction_log
        with TestClient(app):
            second = app.state.prediction_log
            assert second is not first
        assert outer.post("/predict", json=[_record("k")], auth=AUTH).status_code == 200
    assert app.state.prediction_log is None
    for writer in (first, second):
        assert not writer._process.is_alive()
        assert writer.dropped == 0
