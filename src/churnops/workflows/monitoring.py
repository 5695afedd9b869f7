"""Monitoring use cases: drift and performance of a served model, read from the prediction log."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from churnops.errors import ConfigError

if TYPE_CHECKING:
    from churnops.artifact import ModelArtifact
    from churnops.monitoring.drift import DriftReport, DriftThresholds
    from churnops.monitoring.store import PredictionStore
    from churnops.monitoring.window import Window


@dataclass(frozen=True)
class Span:
    """Which logged predictions to read: a model, its version (or all), a time span."""

    store_url: str
    model: str  # an artifact directory or models:/NAME@ALIAS
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    all_versions: bool = False


def parse_time(text: str | None, option: str) -> dt.datetime | None:
    """An ISO 8601 time (UTC when no zone is given), or a age such as ``7d``, ``12h``, ``30m``."""
    if text is None:
        return None
    units = {"d": "days", "h": "hours", "m": "minutes"}
    if text[:-1].isdigit() and text[-1:] in units:
        return dt.datetime.now(dt.UTC) - dt.timedelta(**{units[text[-1]]: int(text[:-1])})
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(
            f"{option} {text!r}: give an ISO time (2026-11-30T12:00) or an age (7d, 12h, 30m)"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def read_span(span: Span, store: PredictionStore) -> tuple[ModelArtifact, Window]:
    """The model (verified) and its logged predictions in the span, read from ``store``."""
    from churnops.monitoring.window import read_window
    from churnops.workflows.models import open_model

    if span.since and span.until and span.since >= span.until:
        raise ConfigError("--since must be before --until")
    artifact = open_model(span.model)
    version = None if span.all_versions else artifact.version
    return artifact, read_window(store, artifact.name, version, span.since, span.until)


@contextmanager
def opened(span: Span) -> Iterator[PredictionStore]:
    """The span's store, opened (created or migrated) once for a whole use case."""
    from churnops.monitoring.store import open_store

    store = open_store(span.store_url)
    try:
        yield store
    finally:
        store.close()


def drift(span: Span, thresholds: DriftThresholds | None = None) -> tuple[DriftReport, str, Window]:
    """Check the span's records against the model's reference profile, render the HTML report
    and keep the scores in the store (for ``/metrics``)."""
    from churnops.artifact import PROFILE_FILE
    from churnops.monitoring.drift import check_drift
    from churnops.monitoring.report import render_html

    with opened(span) as store:
        artifact, window = read_span(span, store)
        profile = artifact.read_json(PROFILE_FILE)
        report = check_drift(profile, window.features, window.probabilities, artifact.schema,
                             thresholds)  # fmt: skip
        store.record_drift(artifact.name, artifact.version, drift_summary(report))
    context = {
        "model": f"{artifact.name} {artifact.version}",
        "logged predictions": f"{window.rows} (versions: {', '.join(window.versions) or 'none'})",
        "from": str(window.logged_at.min()) if window.rows else "-",
        "to": str(window.logged_at.max()) if window.rows else "-",
    }
    html = render_html(report, profile, title=f"Drift: {artifact.name}", context=context)
    return report, html, window


def drift_summary(report: DriftReport) -> dict[str, Any]:
    """The scores of a check the service's ``/metrics`` reports (kept in the store)."""
    prediction = report.prediction
    return {
        "rows": report.rows,
        "any_alarm": report.any_alarm,
        "features": {
            f.name: {"psi": f.psi, "p_value": f.p_value, "drifted": f.drifted}
            for f in report.features
        },
        "prediction": None
        if prediction is None
        else {"psi": prediction.psi, "p_value": prediction.p_value, "drifted": prediction.drifted},
    }


def performance(span: Span, period: str | None = "D") -> tuple[ModelArtifact, list[dict[str, Any]]]:
    """Realised (labelled rows) and estimated figures per period, and the training evaluation."""
    from churnops.monitoring.performance import performance as measure

    with opened(span) as store:
        artifact, window = read_span(span, store)
    schema = artifact.schema
    return artifact, measure(window, schema.positive_label, artifact.threshold, period)
