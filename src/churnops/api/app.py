"""The FastAPI application: factory, lifespan, authentication and routes."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import anyio
import anyio.to_thread
import orjson
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import HTTPException
from fastapi.openapi.utils import get_openapi
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from churnops import __version__
from churnops.api import errors
from churnops.api.auth import FailedAuthThrottle, authenticator
from churnops.api.body import (
    BodyBudget,
    BodyHold,
    check_content_type,
    parse_records,
    read_body,
)
from churnops.api.errors import json_response
from churnops.api.observability import (
    MODEL_INFO,
    MODEL_RELOADS,
    PREDICTIONS,
    RECORDS,
    ObservabilityMiddleware,
    metrics_payload,
    worker_exited,
)
from churnops.api.openapi import describe_model, example_record
from churnops.artifact import ModelArtifact, load_artifact
from churnops.config import Settings
from churnops.errors import ArtifactError, ChurnopsError, ConfigError
from churnops.inference import Scorer, load_scorer

log = logging.getLogger("churnops.api")

AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or wrong credentials."},
    429: {"description": "Too many failed logins from this address; see Retry-After."},
    503: {"description": "No model loaded yet."},
}
PREDICT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "One result per record, keyed by position."},
    400: {"description": "The body is not a JSON array of objects."},
    408: {"description": "The body did not arrive within the body timeout."},
    413: {"description": "Too many records or too large a body."},
    415: {"description": "The body is declared as something other than JSON."},
    422: {"description": "A record does not match the model's schema; problems name each field."},
    **AUTH_RESPONSES,
    503: {"description": "No model loaded yet, or too many large bodies in flight (retry)."},
}


# Bodies up to this size (about 70 customer records) are scored on the event loop; larger ones in
# the thread pool, so CPU-bound work never holds the loop for more than about a millisecond.
INLINE_BODY_BYTES = 32 * 1024
LARGE_BODY_WORKERS = 2


@dataclass(frozen=True)
class ModelLocation:
    """Where the model to serve is now: a local artifact directory and, for a registry
    reference, the registry version it resolved to (``models:/churn/3``)."""

    path: Path
    registry_version: str | None = None


ModelSource = Callable[[], ModelLocation]


@dataclass(frozen=True)
class ServedModel:
    """What the routes need: the verified artifact, its scorer and where it came from."""

    artifact: ModelArtifact
    scorer: Scorer
    location: ModelLocation

    @property
    def version(self) -> str:
        """The version that answers: the artifact's own (unique per training run)."""
        return self.artifact.version


async def served_model(request: Request) -> ServedModel:
    """Dependency: the model being served (503 until one is loaded)."""
    model: ServedModel | None = getattr(request.app.state, "model", None)
    if model is None:
        raise HTTPException(503, "model not loaded")
    return model


Served = Annotated[ServedModel, Depends(served_model)]


def load_served_model(location: ModelLocation) -> ServedModel:
    """Load, verify and smoke-test the model at ``location`` (blocking; run it off the loop).

    Raises
    ------
    ArtifactError
        The artifact fails verification, its runtime cannot load, or it cannot score a record
        built from its own schema.
    """
    artifact = load_artifact(location.path)
    scorer = load_scorer(artifact)
    try:
        scores = scorer.score_records([example_record(artifact.schema)])
    except ChurnopsError as exc:
        raise ArtifactError(f"{location.path}: cannot score a probe record ({exc})") from None
    p = float(scores.positive_probability[0])
    if not 0.0 <= p <= 1.0:
        raise ArtifactError(f"{location.path}: scored a probe record as {p}, not a probability")
    return ServedModel(artifact, scorer, location)


class ModelReloader:
    """Loads a new model beside the served one and swaps it in only when it is sound.

    A swap is one assignment of ``app.state.model``: a request holds the model it started with,
    so none fails or mixes two models. A model that fails verification, loading or the probe is
    refused, logged and counted; the old one keeps serving.
    """

    def __init__(self, app: FastAPI, source: ModelSource) -> None:
        self.app = app
        self.source = source
        self._lock = asyncio.Lock()

    async def reload(self, reason: str) -> tuple[str, str]:
        """Reload from the source; return (outcome, message), outcome swapped|unchanged|refused."""
        async with self._lock:
            current: ServedModel | None = getattr(self.app.state, "model", None)
            try:
                location = await run_in_threadpool(self.source)
                if (
                    current is not None
                    and location.registry_version is not None
                    and location == current.location
                ):
                    return "unchanged", f"still serving {current.version}"
                candidate = await run_in_threadpool(load_served_model, location)
            except Exception as exc:  # a bad new model must never stop the service
                MODEL_RELOADS.labels("refused").inc()
                shown = str(exc) if isinstance(exc, ChurnopsError) else repr(exc)
                kept = f"; still serving {current.version}" if current else ""
                log.error(f"model reload ({reason}) refused: {shown}{kept}")
                return "refused", f"new model refused: {shown}{kept}"
            if current is not None and candidate.version == current.version:
                return "unchanged", f"still serving {current.version}"
            self.app.state.model = candidate
            _announce(candidate)
            if current is not None:
                MODEL_INFO.remove(current.artifact.name, current.version, current.scorer.runtime)
            MODEL_RELOADS.labels("swapped").inc()
            was = current.version if current else "none"
            log.info(f"model reload ({reason}): now serving {candidate.version} (was {was})")
            return "swapped", f"now serving {candidate.version} (was {was})"

    async def follow(self, every: float) -> None:
        """Check the source every ``every`` seconds (a registry alias moving to a new version)."""
        while True:
            await asyncio.sleep(every)
            await self.reload("registry poll")


def _announce(model: ServedModel) -> None:
    artifact, scorer = model.artifact, model.scorer
    MODEL_INFO.labels(artifact.name, artifact.version, scorer.runtime).set(1)
    path = "fast data-only path" if scorer.fast else f"FALLBACK pipeline: {scorer.fallback_reason}"
    registry = f" ({model.location.registry_version})" if model.location.registry_version else ""
    log.info(f"serving model {artifact.name} {artifact.version}{registry} with {scorer.runtime} "
             f"({path})")  # fmt: skip
    if artifact.synthetic:
        log.warning("this model was trained on SYNTHETIC data: do not use its predictions")


def create_app(settings: Settings, source: ModelSource | None = None) -> FastAPI:
    """Build the application; the model is loaded and verified in the lifespan.

    Parameters
    ----------
    settings
        The service's settings.
    source
        Where the model is, asked at start-up and at every reload; default: the directory
        ``settings.model``. A registry reference is resolved by the caller's source, so this
        package never imports the registry.

    Raises
    ------
    ConfigError
        No credentials are configured and ``settings.no_auth`` is false, or the password is too
        weak and ``settings.dev`` is false.
    """
    credentials = settings.credentials()
    if credentials is None and not settings.no_auth:
        raise ConfigError(
            "no credentials: set CHURN_USER and CHURN_PASSWORD (or *_FILE), "
            "or start with --no-auth to serve without authentication"
        )
    weakness = settings.password_weakness()
    if weakness is not None and not settings.dev:
        raise ConfigError(
            f"{weakness}: choose a stronger password (for example: python -c "
            "'import secrets; print(secrets.token_urlsafe(18))'), or start with --dev"
        )
    following = source is not None
    model_source: ModelSource = source or (lambda: ModelLocation(Path(settings.model)))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        reloader = ModelReloader(app, model_source)
        app.state.reloader = reloader
        app.state.model = await run_in_threadpool(lambda: load_served_model(model_source()))
        _announce(app.state.model)
        if weakness is not None:
            log.warning(f"WEAK PASSWORD accepted because of --dev: {weakness}")
        if settings.no_auth:
            log.warning("authentication is OFF (--no-auth)")
        tasks: list[asyncio.Task[None]] = []
        if following and settings.model_poll_seconds > 0:
            tasks.append(asyncio.create_task(reloader.follow(settings.model_poll_seconds)))
        loop = asyncio.get_running_loop()
        hangup = _on_sighup(loop, lambda: tasks.append(loop.create_task(_reload(reloader))))
        try:
            yield
        finally:
            if hangup:
                loop.remove_signal_handler(signal.SIGHUP)
            for task in tasks:
                task.cancel()
            worker_exited()

    app = FastAPI(
        title="churnops",
        version=__version__,
        description="Churn predictions for customer records. HTTP Basic authentication.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    errors.install(app)
    app.add_middleware(ObservabilityMiddleware)
    large_bodies = anyio.CapacityLimiter(LARGE_BODY_WORKERS)
    budget = BodyBudget(max(settings.max_bodies_bytes, settings.max_body_bytes))
    # Route-level dependencies run before the route's own, so a request that fails
    # authentication never gets as far as the model or its body.
    authenticate = authenticator(
        credentials, FailedAuthThrottle(settings.auth_failures, settings.auth_window)
    )

    @app.post(
        "/predict",
        dependencies=[Depends(authenticate)],
        responses=PREDICT_RESPONSES,
        summary="Predict churn for customer records",
        description="Send a JSON array of customer records (values as JSON strings or "
        "numbers; extra keys such as an ID are ignored). The request schema below is the "
        "served model's.",
    )
    async def predict(request: Request, model: Served) -> Response:
        # Authentication has passed; only now is the body read.
        check_content_type(request)
        with budget.hold() as hold:
            result, records = await _predict(request, model, hold)
        state = request.scope["state"]
        state["records"] = records
        state["model_version"] = model.version
        return Response(
            result, media_type="application/json", headers={"X-Model-Version": model.version}
        )

    async def _predict(request: Request, model: ServedModel, hold: BodyHold) -> tuple[bytes, int]:
        body = await read_body(request, settings.max_body_bytes, settings.body_timeout, hold)
        if len(body) <= INLINE_BODY_BYTES:
            # A few records score in well under a millisecond, less than handing them to a
            # worker thread costs (measured: 1-record throughput +30%, p99 at concurrency 8
            # halved), so the event loop is never held for long either way.
            return _score(model.scorer, body, settings.max_records)
        else:
            # At most two large bodies are parsed and scored at once (this machine's cores):
            # the CPU is busy anyway, and the memory of parsing stays bounded.
            result, records = await anyio.to_thread.run_sync(
                _score, model.scorer, body, settings.max_records, limiter=large_bodies
            )
        return result, records

    @app.get("/health/live", summary="The process is up")
    async def live() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/health/ready", summary="The model is loaded and verified")
    async def ready(request: Request) -> Response:
        model: ServedModel | None = getattr(request.app.state, "model", None)
        if model is None:
            return json_response(503, {"status": "loading"})
        return json_response(200, {"status": "ready", "model_version": model.version})

    @app.get(
        "/metadata",
        dependencies=[Depends(authenticate)],
        responses=AUTH_RESPONSES,
        summary="The served model",
    )
    async def metadata(model: Served) -> Response:
        artifact, scorer = model.artifact, model.scorer
        manifest = artifact.manifest
        data = manifest.get("data", {})
        source = data.get("source")
        return json_response(
            200,
            {
                "name": artifact.name,
                "version": artifact.version,
                "registry_version": model.location.registry_version,
                "created_at": manifest.get("created_at"),
                "synthetic_training_data": artifact.synthetic,
                "runtime": scorer.runtime,
                "fast_path": scorer.fast,
                "fallback_reason": scorer.fallback_reason,
                "classes": list(scorer.classes),
                "positive_label": scorer.positive_label,
                "threshold": scorer.threshold,
                "schema": manifest["schema"],
                "metrics": artifact.metrics,
                "estimator": manifest.get("automl", {}).get("estimator_class"),
                # The file's name only: where it lay on the training machine is nobody's business.
                "data": {
                    "sha256": data.get("sha256"),
                    "rows": data.get("rows"),
                    "source": Path(str(source)).name if source else None,
                },
            },
            headers={"X-Model-Version": model.version},
        )

    @app.post(
        "/admin/reload",
        dependencies=[Depends(authenticate)],
        summary="Load the model again from its source (directory or registry alias)",
        responses={
            409: {"description": "The new model was refused; the old one still serves."},
            **AUTH_RESPONSES,
        },
    )
    async def admin_reload(request: Request) -> Response:
        reloader: ModelReloader = request.app.state.reloader
        outcome, message = await reloader.reload("admin call")
        served: ServedModel = request.app.state.model
        return json_response(
            409 if outcome == "refused" else 200,
            {"outcome": outcome, "detail": message, "version": served.version},
            headers={"X-Model-Version": served.version},
        )

    @app.get(
        "/metrics",
        summary="Prometheus metrics",
        response_class=PlainTextResponse,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    async def metrics() -> Response:
        payload, content_type = metrics_payload()
        return Response(payload, media_type=content_type)

    documents: dict[str | None, dict[str, Any]] = {}

    def openapi() -> dict[str, Any]:
        # Generated per served model: the request schema is that model's (see api/openapi.py).
        model: ServedModel | None = getattr(app.state, "model", None)
        key = model.version if model else None
        if key not in documents:
            document = get_openapi(
                title=app.title, version=app.version, description=app.description,
                routes=app.routes,
            )  # fmt: skip
            if model is not None:
                describe_model(document, model.artifact.schema, settings.max_records)
            documents.clear()
            documents[key] = document
        return documents[key]

    app.openapi = openapi  # type: ignore[method-assign]
    return app


async def _reload(reloader: ModelReloader) -> None:
    await reloader.reload("SIGHUP")


def _on_sighup(loop: asyncio.AbstractEventLoop, callback: Callable[[], object]) -> bool:
    """Reload on SIGHUP where this process owns its signals (the main thread of a server)."""
    try:
        loop.add_signal_handler(signal.SIGHUP, callback)
    except (ValueError, RuntimeError, NotImplementedError):  # not the main thread (tests)
        return False
    return True


def _score(scorer: Scorer, body: bytes | bytearray, max_records: int) -> tuple[bytes, int]:
    """Parse, validate and score a /predict body; return the response body and record count."""
    records = parse_records(body, max_records)
    scores = scorer.score_records(records)
    positive = scorer.positive_label
    negative = scorer.classes[0] if scorer.classes[1] == positive else scorer.classes[1]
    p = scores.positive_probability.tolist()
    result: dict[str, Any] = {}
    for i, (label, p_positive) in enumerate(zip(scores.labels, p, strict=True)):
        result[str(i)] = {
            "prediction": label,
            "probability": p_positive if label == positive else 1.0 - p_positive,
            "probabilities": {negative: 1.0 - p_positive, positive: p_positive},
            "warnings": scores.warnings.get(i, []),
        }
    positives = sum(1 for label in scores.labels if label == positive)
    if positives:
        PREDICTIONS.labels(positive).inc(positives)
    if len(p) - positives:
        PREDICTIONS.labels(negative).inc(len(p) - positives)
    RECORDS.observe(len(p))
    return orjson.dumps(result), len(p)


def app_from_environment(source: ModelSource | None = None) -> FastAPI:
    """Factory for uvicorn workers: settings from the environment."""
    from churnops.api.observability import configure_logging
    from churnops.config import get_settings

    settings = get_settings()
    configure_logging(settings.log_level)
    return create_app(settings, source)
