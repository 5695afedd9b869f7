"""The Prometheus metrics of one application, in a registry of its own.

Each app owns its metrics (several apps in one process, as in tests, never collide). With
``PROMETHEUS_MULTIPROC_DIR`` set (``churnops serve --workers N`` sets it to a fresh directory it
removes on exit), every worker writes its samples there and ``/metrics`` reports the sum over all
workers, whichever worker answers; the model-info gauge then carries a ``pid`` label per live
worker. Without it, each process reports its own.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
RECORD_BUCKETS = (1, 2, 5, 10, 50, 100, 500, 1000, 5000, 10000)


class Metrics:
    """Every metric the API reports."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
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
        self.input_warnings = Counter(
            "churnops_input_warnings_total",
            "Values scored with a warning: a category unseen in training (unseen_category) or "
            "a number outside the range seen in training (out_of_range)",
            ["field", "kind"],
            registry=r,
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

    def child(self, metric: Counter | Histogram, *values: str) -> Any:
        """``metric.labels(*values)``, looked up once per label values (the library checks the
        values and takes a lock at every call; the metrics counted per request use this)."""
        key = (id(metric), values)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*values)
        return found

    def exposition(self) -> tuple[bytes, str]:
        """The Prometheus text of this app, or of all workers in multiprocess mode."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            combined = CollectorRegistry()
            multiprocess.MultiProcessCollector(combined)
            return generate_latest(combined), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _Families:
    """A collector of metric families made once, for one exposition."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


def drift_exposition(summary: Mapping[str, Any]) -> bytes:
    """Prometheus text of the latest drift check of the served model (see monitor drift).

    Plain families, not metric objects: their values come from the store, the same for every
    worker, and never go through the multiprocess files.
    """
    psi = GaugeMetricFamily(
        "churnops_drift_psi", "PSI of each feature in the latest drift check", labels=["feature"]
    )
    drifted = GaugeMetricFamily(
        "churnops_drift_detected",
        "1 when the latest drift check found the feature (or 'prediction') drifted",
        labels=["feature"],
    )
    for name, feature in summary.get("features", {}).items():
        if feature.get("psi") is not None:
            psi.add_metric([str(name)], float(feature["psi"]))
        drifted.add_metric([str(name)], 1.0 if feature.get("drifted") else 0.0)
    prediction = summary.get("prediction") or {}
    if prediction.get("psi") is not None:
        psi.add_metric(["prediction"], float(prediction["psi"]))
        drifted.add_metric(["prediction"], 1.0 if prediction.get("drifted") else 0.0)
    families: list[Metric] = [psi, drifted]
    for name, help_text, key in (
        ("churnops_drift_check_timestamp_seconds", "When the latest drift check ran", "checked_at"),
        ("churnops_drift_check_rows", "Logged predictions the latest drift check read", "rows"),
    ):
        if summary.get(key) is not None:
            families.append(GaugeMetricFamily(name, help_text, value=float(summary[key])))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    return generate_latest(registry)


def worker_exited() -> None:
    """Drop this process's live gauges from the shared multiprocess metrics (worker shutdown)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())
