"""The FastAPI application: factory, lifespan, routers, OpenAPI of the served model."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from fastapi import Depends, FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from churnops import __version__
from churnops.api import errors
from churnops.api.auth import FailedAuthThrottle, authenticator
from churnops.api.body import BodyBudget
from churnops.api.metrics import Metrics, worker_exited
from churnops.api.observability import ObservabilityMiddleware
from churnops.api.openapi import describe_model
from churnops.api.routes import feedback, operations, report, scoring, ui
from churnops.api.serving import ModelHolder, ModelLocation, ModelSource
from churnops.config import Settings
from churnops.monitoring.store import open_store, settings_store_url
from churnops.monitoring.writer import PredictionWriter

log = logging.getLogger("churnops.api")

# Large bodies parsed and scored at once (the cores of the machine this was measured on).
LARGE_BODY_WORKERS = 2


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
        The settings are unsafe to serve with (see :meth:`Settings.serving_credentials`).
    """
    credentials = settings.serving_credentials()
    weakness = settings.password_weakness()
    following = source is not None
    metrics = Metrics()
    holder = ModelHolder(source or (lambda: ModelLocation(Path(settings.model))), metrics)
    store_url = settings_store_url(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await holder.load()
        # This lifespan's own writer: closed by this lifespan whatever the app holds by then (a
        # second lifespan of the same app, as a test client may start, opens one of its own).
        writer: PredictionWriter | None = None
        if store_url is not None:
            writer = await run_in_threadpool(
                _prediction_log, store_url, settings.store_queue, metrics
            )
            app.state.prediction_log = writer
        if weakness is not None:
            log.warning(f"WEAK PASSWORD accepted because of --dev: {weakness}")
        if settings.no_auth:
            log.warning("authentication is OFF (--no-auth)")
        tasks: list[asyncio.Task[None]] = []
        if following and settings.model_poll_seconds > 0:
            tasks.append(asyncio.create_task(holder.follow(settings.model_poll_seconds)))
        loop = asyncio.get_running_loop()
        hangup = _on_sighup(loop, lambda: tasks.append(loop.create_task(_reload(holder))))
        try:
            yield
        finally:
            if hangup:
                loop.remove_signal_handler(signal.SIGHUP)
            for task in tasks:
                task.cancel()
            if writer is not None:
                # Every prediction answered is written before the worker exits.
                await run_in_threadpool(writer.close)
                if app.state.prediction_log is writer:
                    app.state.prediction_log = None
            worker_exited()

    app = ChurnopsApp(
        title="churnops",
        version=__version__,
        description="Churn predictions for customer records. HTTP Basic authentication.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.holder = holder
    app.state.prediction_log = None  # opened in the lifespan, unless settings.no_store
    app.state.body_budget = BodyBudget(max(settings.max_bodies_bytes, settings.max_body_bytes))
    app.state.large_bodies = anyio.CapacityLimiter(LARGE_BODY_WORKERS)
    errors.install(app)
    app.add_middleware(ObservabilityMiddleware, metrics=metrics)
    # Dependencies of the router run before the route's own, so a request that fails
    # authentication never gets as far as the model or its body.
    authenticate = authenticator(
        credentials, FailedAuthThrottle(settings.auth_failures, settings.auth_window), metrics
    )
    app.state.authenticate = authenticate
    app.include_router(scoring.predict_router)  # authenticates in the route (routes/scoring.py)
    # POST /predict is also answered ahead of the framework's layers (see ChurnopsApp).
    app.direct[("POST", "/predict")] = ObservabilityMiddleware(
        Direct(app, scoring.predict), metrics=metrics
    )
    app.include_router(scoring.router, dependencies=[Depends(authenticate)])
    app.include_router(feedback.router, dependencies=[Depends(authenticate)])
    app.include_router(ui.router, dependencies=[Depends(authenticate)])
    app.include_router(report.router, dependencies=[Depends(authenticate)])
    app.include_router(operations.router)
    documents: dict[str | None, dict[str, Any]] = {}

    def openapi() -> dict[str, Any]:
        # Generated per served model: the request schema is that model's (see api/openapi.py).
        model = holder.model
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


class ChurnopsApp(FastAPI):
    """FastAPI, with a few routes answered straight from the ASGI call.

    A request to a route in :attr:`direct` (method and path) goes to its handler without
    passing Starlette's and FastAPI's middleware, routing and dependency layers (profiled on a
    1-record /predict under load: more time than the scoring). The handler runs the route's own
    endpoint with the app's exception handlers and the same observability middleware, so
    answers, errors, logs and metrics are those of the framework's path, which still serves
    the route wherever the direct path does not match (a ``root_path``, say) and documents it.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.direct: dict[tuple[str, str], ASGIApp] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            handler = self.direct.get((scope["method"], scope["path"]))
            if handler is not None:
                scope["app"] = self
                await handler(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


class Direct:
    """An endpoint ``(Request) -> Response`` as an ASGI app, its errors answered by the app's
    exception handlers (looked up along the exception's class hierarchy, as Starlette does).

    An exception without a handler of its own gets the app's ``Exception`` handler (500) and is
    raised again after the answer, for the server to log, as Starlette's outermost middleware
    does.
    """

    def __init__(self, app: FastAPI, endpoint: Callable[[Request], Any]) -> None:
        self.app = app
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        try:
            response = await self.endpoint(request)
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                raise
            response = await handler(request, exc)
            if handler is self.app.exception_handlers.get(Exception):
                await response(scope, receive, send)
                raise
        await response(scope, receive, send)

    def _handler(self, exc: Exception) -> Callable[..., Any] | None:
        handlers = self.app.exception_handlers
        for kind in type(exc).__mro__:
            if kind in handlers:
                handler: Callable[..., Any] = handlers[kind]
                return handler
        return None


def _prediction_log(url: str, capacity: int, metrics: Metrics) -> PredictionWriter:
    store = open_store(url)  # creates or migrates the tables; ConfigError: one line
    log.info(f"prediction log: {store.shown}")
    return PredictionWriter(
        store,
        capacity,
        on_logged=metrics.predictions_logged.inc,
        on_dropped=metrics.predictions_dropped.inc,
        on_queue=metrics.prediction_log_queue.set,
    )


async def _reload(holder: ModelHolder) -> None:
    await holder.reload("SIGHUP")


def _on_sighup(loop: asyncio.AbstractEventLoop, callback: Callable[[], object]) -> bool:
    """Reload on SIGHUP where this process owns its signals (the main thread of a server)."""
    try:
        loop.add_signal_handler(signal.SIGHUP, callback)
    except (ValueError, RuntimeError, NotImplementedError):  # not the main thread (tests)
        return False
    return True
