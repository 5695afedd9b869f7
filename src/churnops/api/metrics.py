"""The Prometheus metrics of one application, in a registry of its own.

Each app owns its metrics (several apps in one process, as in tests, never collide). With
``PROMETHEUS_MULTIPROC_DIR`` set (``churnops serve --workers N`` sets it to a fresh directory it
removes on exit), every worker writes its samples there and ``/metrics`` reports the sum over all
workers, whichever worker answers; the model-info gauge then carries a ``pid`` label per live
worker. Without it, each process reports its own.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
RECORD_BUCKETS = (1, 2, 5, 10, 50, 100, 500, 1000, 5000, 10000)


class Metrics:
    """Every metric the API reports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "churnops_requests_total", "HTTP requests", ["route", "method", "status"], registry=r
        )
        self.latency = Histogram(
            "churnops_request_seconds", "HTTP request latency", ["route"],
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.records = Histogram(
            "churnops_records_per_request", "Customer records per /predict request",
            buckets=RECORD_BUCKETS, registry=r,
        )  # fmt: skip
        self.predictions = Counter(
            "churnops_predictions_total", "Predictions by class", ["label"], registry=r
        )
        self.throttled = Counter(
            "churnops_auth_throttled_total",
            "Requests refused (429) after repeated failed logins",
            registry=r,
        )
        self.model_reloads = Counter(
            "churnops_model_reloads_total",
            "Attempts to load a new model while serving",
            ["outcome"],
            registry=r,
        )
        self.predictions_logged = Counter(
            "churnops_predictions_logged_total",
            "Predictions written to the prediction store",
            registry=r,
        )
        self.predictions_dropped = Counter(
            "churnops_predictions_dropped_total",
            "Predictions not logged: the queue was full, or the store refused or stayed down",
            registry=r,
        )
        self.prediction_log_queue = Gauge(
            "churnops_prediction_log_queue", "Predictions waiting to be written to the store",
            multiprocess_mode="livesum", registry=r,
        )  # fmt: skip
        self.model_info = Gauge(
            "churnops_model_info", "The model being served (value 1)",
            ["name", "version", "runtime"], multiprocess_mode="liveall", registry=r,
        )  # fmt: skip

    def exposition(self) -> tuple[bytes, str]:
        """The Prometheus text of this app, or of all workers in multiprocess mode."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            combined = CollectorRegistry()
            multiprocess.MultiProcessCollector(combined)
            return generate_latest(combined), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def worker_exited() -> None:
    """Drop this process's live gauges from the shared multiprocess metrics (worker shutdown)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())
