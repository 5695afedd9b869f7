"""Access logs as JSON lines, written off the request path, and one lean ASGI middleware that
logs and measures every request (its metrics belong to the app: :mod:`churnops.api.metrics`).
"""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import queue
import time
import uuid
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from churnops.api.metrics import Metrics

ROUTES = ("/predict", "/predict/csv", "/ui", "/metadata", "/metrics", "/health/live",
          "/health/ready", "/docs", "/openapi.json", "/admin/reload", "/feedback")  # fmt: skip

access_log = logging.getLogger("churnops.access")


class JsonFormatter(logging.Formatter):
    """One JSON object per log line: time, level, logger, message and any extra fields."""

    FIELDS = ("request_id", "method", "route", "status", "latency_ms", "records", "client",
              "model_version")  # fmt: skip

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in self.FIELDS:
            if hasattr(record, name):
                line[name] = getattr(record, name)
        if record.exc_info:
            # The whole traceback, in the one line (a log line; never a response).
            line["error"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


_listener: logging.handlers.QueueListener | None = None


@atexit.register
def _stop_listener() -> None:
    global _listener
    if _listener is not None:
        _listener.stop()  # writes what is still queued
        _listener = None


def configure_logging(level: str = "info") -> None:
    """Send churnops' and uvicorn's logs to stderr as JSON lines, written by a background thread.

    Requests only enqueue their log record; formatting and the write happen off the event loop
    (measured: writing on the request path cost about a third of single-record throughput).
    uvicorn's own lines (start, stop, errors) and Python's warnings join the same stream, so a
    log collector parses every line the server writes; start uvicorn with ``log_config=None``
    so it adds no handler.
    """
    global _listener
    _stop_listener()
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    _listener = logging.handlers.QueueListener(records, handler)
    _listener.start()
    # Python warnings (deprecations from a library, say) join the stream as JSON lines too.
    logging.captureWarnings(True)
    for name in ("churnops", "uvicorn", "py.warnings"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [logging.handlers.QueueHandler(records)]
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
        request_id = _header(scope, b"x-request-id") or uuid.uuid4().hex
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
            self.metrics.requests.labels(route, scope.get("method", ""), str(status)).inc()
            self.metrics.latency.labels(route).observe(seconds)
            access_log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": scope.get("method"),
                    "route": route,
                    "status": status,
                    "latency_ms": round(seconds * 1000, 3),
                    "records": state.get("records"),
                    "client": _client(scope),
                    "model_version": state.get("model_version"),
                },
            )


def _client(scope: Scope) -> str | None:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            text = value.decode("latin-1")[:128]
            return text if text.isprintable() else None
    return None
