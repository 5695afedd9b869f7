"""The prediction log's writer process: the store's work off the serving process.

A :class:`~churnops.monitoring.store.PredictionLog` running in the serving process parses the
queued request bodies, builds rows and talks to the database on a thread that takes the GIL
from the event loop (measured with ``bench/prediction_log.py``: about a sixth of the 1-record
throughput). :class:`PredictionWriter` keeps only the bounded queue and the counts in the serving
process; a sender thread hands what is queued, in batches, to a child process (``spawn``:
nothing of the server is inherited) that runs a ``PredictionLog`` against its own connection to
the store and reports back what it wrote, what it dropped and what it logged. A batch crosses
as one JSON array of every field but the bodies, and the list of bodies (:func:`encode`: one
orjson call, where pickling the answer tuples took 3 µs of the server's CPU a request and
encoding each request's answers on the request path 2.5–4 µs).

The child reads until its pipe closes: when the server dies, the child writes what it has
(for up to ``shutdown_timeout`` seconds) and exits. When the child dies, what it held is counted
as dropped and further predictions are dropped and counted; the service keeps answering.
This module imports no training or data-frame library: the API imports it.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.util
import os
import signal
import socket
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

import orjson

from churnops.errors import ConfigError
from churnops.monitoring.store import (
    Answers,
    BoundedLog,
    Count,
    PredictionLog,
    PredictionStore,
    _ignore,
    open_store,
)

log = logging.getLogger("churnops.monitoring")

START_TIMEOUT = 60.0  # seconds for the child to start and open the store
SEND_INTERVAL = 0.05  # seconds between two hand-overs of queued answers to the child
TERM_GRACE = 10.0  # seconds the child waits for the server's pipe to close after SIGTERM
POLL_SECONDS = 0.5  # the child's wait for a message, between two looks at its deadline
WRITER_NICENESS = 10  # added to the writer process's niceness: a lower CPU priority


class PredictionWriter(BoundedLog):
    """A prediction log whose rows are built and written by a child process.

    The same contract as :class:`~churnops.monitoring.store.PredictionLog` (``append``,
    ``flush``, ``close``, the counts, ``store`` for the service's own reads); the options are
    handed to the ``PredictionLog`` in the child.

    Raises
    ------
    ConfigError
        The child could not open the store, or did not start within a minute.
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
        context = multiprocessing.get_context("spawn")
        self._pipe, child_end = context.Pipe()
        options = {"capacity": capacity, "batch": batch, "interval": interval,
                   "max_backoff": max_backoff}  # fmt: skip
        self._process = context.Process(
            target=_child, args=(store.url, child_end, options), name="churnops-prediction-writer",
            daemon=True,
        )  # fmt: skip
        self._process.start()
        child_end.close()
        # At interpreter exit, before multiprocessing joins its children: closing the pipe is
        # what lets the child finish (an app whose shutdown never ran must not hang the exit).
        multiprocessing.util.Finalize(self, _hang_up, (self._pipe,), exitpriority=100)
        self._await_ready()
        self._send_lock = threading.Lock()
        self._flush_wanted = False
        self._alive = True
        self._close_timeout: float | None = None
        self._sender = threading.Thread(target=self._send_loop, name="churnops-log-sender",
                                        daemon=True)  # fmt: skip
        self._receiver = threading.Thread(target=self._receive_loop, name="churnops-log-receiver",
                                          daemon=True)  # fmt: skip
        self._sender.start()
        self._receiver.start()

    def _await_ready(self) -> None:
        failure = "did not start"
        if self._pipe.poll(START_TIMEOUT):
            try:
                message = self._pipe.recv()
            except (EOFError, OSError):
                message = ("failed", "exited while starting")
            if message[0] == "ready":
                return
            failure = str(message[1])
        self._process.kill()
        self._process.join(5)
        self._pipe.close()
        raise ConfigError(f"prediction log writer for {self.store.shown}: {failure}")

    def _writing(self) -> bool:
        return self._alive

    def _nudge(self) -> None:
        self._flush_wanted = True
        self._wake.set()

    def close(self, timeout: float = 15.0) -> None:
        """Stop taking predictions, have the child write what is queued, wait for it to exit.

        What the store has not taken after ``timeout`` seconds is dropped, counted and logged.
        """
        with self._lock:
            self._closed = True
        self._close_timeout = timeout
        self._wake.set()
        self._sender.join(timeout + 5)
        self._receiver.join(timeout + 10)
        self._process.join(5)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5)
        self._pipe.close()
        self._lose("exited at shutdown")
        self.store.close()

    # The sender and receiver threads of the serving process.

    def _send_loop(self) -> None:
        while True:
            self._wake.wait(SEND_INTERVAL)
            self._wake.clear()
            pending = self._take_all()
            flush, self._flush_wanted = self._flush_wanted, False
            closing = self._close_timeout
            try:
                if pending:
                    self._pipe.send(("answers", *self._encoded(pending)))
                if flush:
                    self._pipe.send(("flush",))
                if closing is not None and not self._queue:
                    self._pipe.send(("close", closing))
                    return
            except (OSError, ValueError):  # the child is gone; the receiver counts the loss
                return

    def _encoded(self, pending: list[Answers]) -> tuple[bytes, list[bytes]]:
        """:func:`encode` ``pending``; answers holding a string it cannot encode are dropped."""
        try:
            return encode(pending)
        except TypeError:  # orjson.JSONEncodeError: find the answers at fault, keep the rest
            kept = []
            for answers in pending:
                try:
                    encode([answers])
                except TypeError as exc:
                    log.error(f"prediction log: request {answers[3]!r} not logged: {exc}")
                    self._settle(len(answers[6]), written=False)
                else:
                    kept.append(answers)
            return encode(kept)

    def _receive_loop(self) -> None:
        while True:
            try:
                message = self._pipe.recv()
            except (EOFError, OSError):
                if self._close_timeout is None:
                    log.error(f"prediction log writer for {self.store.shown} exited")
                    self._lose("exited")
                self._alive = False  # after the loss is counted: who sees it gone sees the count
                return
            kind = message[0]
            if kind == "settled":
                self._settle(message[1], written=message[2])
            elif kind == "log":
                log.log(message[1], message[2])
            elif kind == "closed":
                self._alive = False
                return

    def _lose(self, why: str) -> None:
        """Count what the child never settled (it is gone) as dropped; refuse the rest."""
        with self._lock:
            self._closed = True
        self._take_all()  # never sent: counted below with what the child held
        with self._lock:
            lost = self._size
        if lost:
            log.error(
                f"prediction log writer for {self.store.shown} {why}: {lost} records not logged"
            )
            self._settle(lost, written=False)


def encode(batch: list[Answers]) -> tuple[bytes, list[bytes]]:
    """A batch of answers as the child takes it: every field but the bodies in one JSON array
    (floats round-trip exactly), and the bodies as received (:func:`decode` reverses it). One
    orjson call a batch, off the request path.

    Raises
    ------
    TypeError
        A string that is not valid Unicode (orjson's JSONEncodeError).
    """
    fields = orjson.dumps([(a[0], a[1], a[2], a[3], a[4], a[6], a[7]) for a in batch])
    return fields, [bytes(a[5]) for a in batch]


def decode(fields: bytes, bodies: list[bytes]) -> list[Answers]:
    """The answers :func:`encode` made ``fields`` and ``bodies`` of."""
    return [
        (logged_at, name, version, request_id, column, body, tuple(labels), tuple(probabilities))
        for (logged_at, name, version, request_id, column, labels, probabilities), body in zip(
            orjson.loads(fields), bodies, strict=True
        )
    ]


def _hang_up(pipe: Connection) -> None:
    """End the pipe for both sides: the child reads EOF, and so does the receiver thread."""
    try:
        end = socket.socket(fileno=os.dup(pipe.fileno()))
    except (OSError, ValueError):  # already closed
        return
    with end, contextlib.suppress(OSError):
        end.shutdown(socket.SHUT_RDWR)


# The child process.


class _Forward(logging.Handler):
    """Hands the child's log records to the serving process, which logs them in its format."""

    def __init__(self, send: Any) -> None:
        super().__init__(logging.INFO)
        self._send = send

    def emit(self, record: logging.LogRecord) -> None:
        self._send(("log", record.levelno, record.getMessage()))


def _child(url: str, pipe: Connection, options: dict[str, Any]) -> None:
    # A terminal's Ctrl-C reaches the whole process group, and a service manager may send SIGTERM
    # to every process of the service: the server shuts down gracefully and closes the pipe,
    # which is what ends this process (after writing what it holds). After SIGTERM it waits at
    # most TERM_GRACE seconds for that.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Answering comes before logging: on a machine whose cores are all busy the scheduler gives
    # this process about a tenth of a core's share against a server's (its weight at nice 10);
    # idle cores it takes whole, and what waits meanwhile waits on the bounded queue.
    with contextlib.suppress(OSError, AttributeError):  # AttributeError: no os.nice (Windows)
        os.nice(WRITER_NICENESS)
    stop_at = [float("inf")]

    def terminated(_signal: int, _frame: Any) -> None:
        stop_at[0] = min(stop_at[0], time.monotonic() + TERM_GRACE)

    signal.signal(signal.SIGTERM, terminated)
    lock = threading.Lock()

    def send(message: tuple[Any, ...]) -> None:
        # OSError, ValueError: the server is gone; what is written stays written.
        with lock, contextlib.suppress(OSError, ValueError):
            pipe.send(message)

    churnops_log = logging.getLogger("churnops")
    churnops_log.handlers[:] = [_Forward(send)]
    churnops_log.setLevel(logging.INFO)
    churnops_log.propagate = False
    try:
        store = open_store(url)
    except Exception as exc:  # ConfigError, one line; anything else is the same failure here
        send(("failed", str(exc).splitlines()[0] if str(exc) else type(exc).__name__))
        return
    writer = PredictionLog(
        store,
        options["capacity"],
        batch=options["batch"],
        interval=options["interval"],
        max_backoff=options["max_backoff"],
        on_logged=lambda n: send(("settled", n, True)),
        on_dropped=lambda n: send(("settled", n, False)),
    )
    send(("ready",))
    timeout = 15.0
    while time.monotonic() < stop_at[0]:
        try:
            if not pipe.poll(POLL_SECONDS):
                continue
            message = pipe.recv()
        except (EOFError, OSError):  # the server closed the pipe or died: write what is here, go
            break
        if message[0] == "answers":
            for answers in decode(message[1], message[2]):
                writer.append(answers)
        elif message[0] == "flush":
            writer.flush(0.0)  # wakes the writer thread; the counts come back as it settles
        elif message[0] == "close":
            timeout = float(message[1])
            break
    writer.close(timeout)
    send(("closed",))
    pipe.close()
