"""Serve a model: check the settings and the model before anything listens, then run uvicorn.

The settings are read once, in the command's process, from the environment and the command's
options, and handed to every uvicorn worker inside the (pickled) application factory: no
worker reads options from ``os.environ``, and this process's environment is never changed.
"""

from __future__ import annotations

import functools
import os
import secrets
import signal
import tempfile
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import SecretStr

from churnops.config import Settings, read_settings
from churnops.errors import StartupError

if TYPE_CHECKING:
    from fastapi import FastAPI

    from churnops.api.serving import ModelLocation, ServedModel

GENERATED_USER = "churn"


@dataclass(frozen=True)
class ServePlan:
    """A checked service: its settings and the model it starts with."""

    settings: Settings
    served: ServedModel
    generated_credentials: bool
    password_weakness: str | None
    store: str | None = None  # the prediction store, password masked; None with no_store

    @property
    def following(self) -> bool:
        """Whether the service follows a registry alias (checks it for new versions)."""
        from churnops.registry.models import is_registry_ref

        return is_registry_ref(self.settings.model) and self.settings.model_poll_seconds > 0


def plan_service(overrides: Mapping[str, object], generate_credentials: bool = False) -> ServePlan:
    """Check settings, credentials and the model; raise one :class:`ChurnopsError` if wrong.

    ``overrides`` are :class:`Settings` fields given on the command line (``None`` values leave
    a field to the environment). With ``no_auth`` the host defaults to loopback. With
    ``generate_credentials`` and no credentials configured, a strong password is made for this
    run. A registry reference is resolved (and its model verified) here, so a bad reference is
    one line before uvicorn starts; the workers get the reference itself and follow it. The
    prediction store is opened (created or migrated) here too, so a bad ``store_url`` is one
    line as well; each worker opens it again when it starts.
    """
    given = {name: value for name, value in overrides.items() if value is not None}
    if given.get("no_auth"):
        given.setdefault("host", "127.0.0.1")
    settings = read_settings(**given)
    generated = False
    if generate_credentials and settings.credentials() is None and not settings.no_auth:
        password = SecretStr(secrets.token_urlsafe(18))
        settings = settings.model_copy(update={"user": GENERATED_USER, "password": password})
        generated = True
    settings.serving_credentials()
    from churnops.api.serving import load_served_model

    served = load_served_model(model_location(settings.model))
    return ServePlan(
        settings, served, generated, settings.password_weakness(), check_store(settings)
    )


def check_store(settings: Settings) -> str | None:
    """Open the prediction store ``settings`` name (creating it); its masked URL, or None.

    Raises
    ------
    ConfigError
        The store cannot be opened (one line).
    """
    from churnops.monitoring.store import open_store, settings_store_url

    url = settings_store_url(settings)
    if url is None:
        return None
    store = open_store(url)
    store.close()
    return store.shown


def run_service(plan: ServePlan, warn: Callable[[str], object] = print) -> None:
    """Run the service under uvicorn until it is stopped (SIGTERM or Ctrl-C exits 0).

    Raises
    ------
    StartupError
        The server did not start (the port is taken, for example; uvicorn has logged why).
    """
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    from churnops.api.observability import configure_logging
    from churnops.api.server import uvicorn_options

    settings = plan.settings
    with ExitStack() as cleanup:
        metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if settings.workers > 1 and not metrics_dir:
            # One /metrics view over all workers: each writes its samples to files here and
            # /metrics, whichever worker answers, adds them up. A directory set by the user is
            # used as is (it must be emptied between runs, as prometheus-client requires).
            metrics_dir = cleanup.enter_context(
                tempfile.TemporaryDirectory(prefix="churnops-metrics-")
            )
        configure_logging(settings.log_level)
        # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal to the handler that
        # was installed before it: a no-op one makes the normal stop (Cloud Run, podman stop)
        # exit 0.
        signal.signal(signal.SIGTERM, lambda *_: None)
        limit_warning = raise_file_limit(settings.max_connections)
        if limit_warning is not None:
            warn(limit_warning)
        config = uvicorn.Config(
            # The factory and its arguments travel to each worker process (pickled by uvicorn).
            functools.partial(worker_app, settings, metrics_dir if settings.workers > 1 else None),
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            access_log=False,  # churnops writes its own JSON access log
            log_config=None,  # and uvicorn's lines go to the same JSON stream
            log_level=settings.log_level,
            timeout_graceful_shutdown=20,
            **uvicorn_options(settings),
        )
        server = uvicorn.Server(config)
        try:
            if settings.workers > 1:
                Multiprocess(config, sockets=[config.bind_socket()]).run()
                return
            server.run()
        except KeyboardInterrupt:
            return
        if not server.started:
            raise StartupError(f"the server did not start on {settings.host}:{settings.port}")


def worker_app(settings: Settings, metrics_dir: str | None = None) -> FastAPI:
    """uvicorn's application factory, called in every worker with the command's settings."""
    if metrics_dir is not None:
        # prometheus-client reads this when it is first imported, which is next (api.app), in
        # this worker process; the command's own environment is left as it is.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    from churnops.api.app import create_app
    from churnops.api.observability import configure_logging
    from churnops.registry.models import is_registry_ref

    configure_logging(settings.log_level)
    if not is_registry_ref(settings.model):
        return create_app(settings)
    reference = settings.model
    return create_app(settings, lambda: model_location(reference))


def model_location(ref: str) -> ModelLocation:
    """Where the model ``ref`` names is now, as the service takes it: for ``models:/NAME@ALIAS``
    the verified copy of the version the alias names now (``HOME/cache/NAME/VERSION``, see
    :func:`churnops.registry.models.resolve`) with the registry name, version and alias."""
    from churnops.api.serving import ModelLocation
    from churnops.workflows.models import locate_model

    found = locate_model(ref)
    return ModelLocation(found.path, found.name, found.version, found.alias)


def raise_file_limit(connections: int) -> str | None:
    """Let the process hold ``connections`` sockets: raise the soft open-file limit to the hard.

    Returns a warning when the limit stays below ``connections``, else None.
    """
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard == resource.RLIM_INFINITY else max(soft, hard)
    if wanted != soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    if wanted != resource.RLIM_INFINITY and wanted < connections + 64:
        return (
            f"open-file limit {wanted} is below CHURN_MAX_CONNECTIONS ({connections}); "
            "connections beyond it will be refused by the system"
        )
    return None
