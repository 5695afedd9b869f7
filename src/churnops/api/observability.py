"""Access logs as JSON lines, written off the request path, and one lean ASGI middleware that
logs and measures every request (its metrics belong to the app: :mod:`churnops.api.metrics`).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import logging.handlers
import os
import queue
import random
import sys
import threading
import time
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from churnops.api.metrics import Metrics

ROUTES = ("/predict", "/predict/csv", "/ui", "/metadata", "/metrics", "/health/live",
          "/health/ready", "/docs", "/openapi.json", "/admin/reload", "/feedback")  # fmt: skip

access_log = logging.getLogger("churnops.access")


AccessLine = tuple[float, dict[str, Any]]  # (time.time(), the fields of JsonFormatter.FIELDS)


class JsonFormatter(logging.Formatter):
    """One JSON object per log line: time, level, logger, message and any extra fields."""

    FIELDS = ("request_id", "method", "route", "status", "latency_ms", "records", "client",
              "model_version")  # fmt: skip
    _stamp: tuple[int, str] = (-1, "")  # the last second formatted, and its text

    def format(self, record: logging.LogRecord) -> str:
        fields = {name: getattr(record, name) for name in self.FIELDS if hasattr(record, name)}
        if record.exc_info:
            # The whole traceback, in the one line (a log line; never a response).
            fields["error"] = self.formatException(record.exc_info)
        return self.line(record.created, record.levelname, record.name, record.getMessage(), fields)

    def access(self, when: float, fields: dict[str, Any]) -> str:
        """The access line of a request, as ``format`` writes the record ``access_log`` makes."""
        return self.line(when, "INFO", access_log.name, "request", fields)

    def line(
        self, when: float, level: str, logger: str, message: str, fields: dict[str, Any]
    ) -> str:
        """One JSON object: time, level, logger, message, then the fields."""
        second = int(when)
        stamp = self._stamp
        if stamp[0] != second:  # one strftime a second, not one a line
            stamp = self._stamp = (second, time.strftime("%Y-%m-%dT%H:%M:%S", self.converter(when)))
        line = {
            "time": stamp[1],
            "level": level.lower(),
            "logger": logger,
            "message": message,
            **fields,
        }
        return orjson.dumps(line, default=str).decode()


class _QueueHandler(logging.handlers.QueueHandler):
    """Enqueues the record itself: churnops' messages are made before they are logged, so the
    copy and formatting ``QueueHandler.prepare`` does on the request path buy nothing."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record


class _JsonLines:
    """The writer thread: takes every record queued so far, formats them and writes them in one
    call (one flush a batch, not one a line: under load, a system call a request was a
    measurable share of the 1-record throughput)."""

    def __init__(self, records: queue.SimpleQueue[logging.LogRecord | AccessLine | None]) -> None:
        self.records = records
        self.formatter = JsonFormatter()
        self.thread = threading.Thread(target=self._run, name="churnops-log", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch = [self.records.get()]
            while len(batch) < LOG_BATCH:
                try:
                    batch.append(self.records.get_nowait())
                except queue.Empty:
                    break
            lines = []
            for record in batch:
                if record is None:
                    stopping = True
                elif isinstance(record, tuple):  # an access line: (time, fields)
                    lines.append(self.formatter.access(*record) + "\n")
                else:
                    lines.append(self.formatter.format(record) + "\n")
            if lines:
                with contextlib.suppress(OSError, ValueError):  # stderr closed: nothing to do
                    sys.stderr.write("".join(lines))
                    sys.stderr.flush()
            if not stopping:
                # Woken once per interval, not once per request: every wake-up takes the GIL
                # from the event loop.
                time.sleep(LOG_INTERVAL)

    def stop(self) -> None:
        self.records.put(None)
        self.thread.join(5)


LOG_BATCH = 10_000  # lines written at once at most
LOG_INTERVAL = 0.05  # seconds between two batches: a line waits at most this long
_writer: _JsonLines | None = None


@atexit.register
def _stop_listener() -> None:
    global _writer
    if _writer is not None:
        _writer.stop()  # writes what is still queued
        _writer = None


def configure_logging(level: str = "info") -> None:
    """Send churnops' and uvicorn's logs to stderr as JSON lines, written by a background thread.

    Requests only enqueue their log record; formatting and the write happen off the event loop,
    a batch at a time (measured: writing on the request path cost about a third of
    single-record throughput). uvicorn's own lines (start, stop, errors) and Python's warnings
    join the same stream, so a log collector parses every line the server writes; start uvicorn
    with ``log_config=None`` so it adds no handler.
    """
    global _writer
    _stop_listener()
    records: queue.SimpleQueue[logging.LogRecord | AccessLine | None] = queue.SimpleQueue()
    _writer = _JsonLines(records)
    # Python warnings (deprecations from a library, say) join the stream as JSON lines too.
    logging.captureWarnings(True)
    for name in ("churnops", "uvicorn", "py.warnings"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [_QueueHandler(records)]
        logger.setLevel(level.upper())
        logger.propagate = False


class ObservabilityMiddleware:
    """Request id, JSON access log line and metrics for every HTTP request; no payloads."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _header(scope, b"x-request-id") or _new_id()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            path = scope.get("path", "")
            route = path if path in ROUTES else "other"
            metrics = self.metrics
            metrics.child(metrics.requests, route, scope.get("method", ""), str(status)).inc()
            metrics.child(metrics.latency, route).observe(seconds)
            fields = {
                "request_id": request_id,
                "method": scope.get("method"),
                "route": route,
                "status": status,
                "latency_ms": round(seconds * 1000, 3),
                "records": state.get("records"),
                "client": _client(scope),
                "model_version": state.get("model_version"),
            }
            writer = _writer
            if writer is not None and access_log.isEnabledFor(logging.INFO):
                # Straight to the writer thread: a log record costs more than the line is worth
                # on the request path (same line, same format).
                writer.records.put((time.time(), fields))
            else:
                access_log.info("request", extra=fields)


def _new_id() -> str:
    """A fresh request id: 128 random bits as 32 hex digits, like a UUID4's ``hex``.

    From the process's seeded generator, not the system's: ids need to be unique, not secret,
    and ``uuid4`` asks the kernel for bytes on every request.
    """
    return f"{_ids.getrandbits(128):032x}"


# Seeded from the system's randomness when the process starts; ids, not secrets.
_ids = random.Random()  # noqa: S311
os.register_at_fork(after_in_child=_ids.seed)  # a forked worker gets ids of its own


def _client(scope: Scope) -> str | None:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            text = value.decode("latin-1")[:128]
            return text if text.isprintable() else None
    return None
