"""``churnops serve``: the prediction API under uvicorn."""

from __future__ import annotations

import os
import secrets
import signal
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from churnops.cli.app import app, console, err_console, fail, model_path, user_errors

if TYPE_CHECKING:
    from fastapi import FastAPI


def say(text: str, err: bool = False) -> None:
    """Print one console line, never wrapped (URLs and passwords stay copyable)."""
    (err_console if err else console).print(text, soft_wrap=True, highlight=False)


@app.command()
def serve(
    model: Annotated[
        str | None, typer.Option("--model", help="Model artifact directory [env CHURN_MODEL].")
    ] = None,
    host: Annotated[
        str | None,
        typer.Option("--host", help="Interface [default 0.0.0.0; 127.0.0.1 with --no-auth]."),
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", help="Port [env CHURN_PORT or PORT, else 8080].")
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", min=1, help="uvicorn workers.")
    ] = None,
    no_auth: Annotated[
        bool, typer.Option("--no-auth", help="Serve WITHOUT authentication (loopback by default).")
    ] = False,
    generate_credentials: Annotated[
        bool,
        typer.Option(
            "--generate-credentials",
            help="When CHURN_USER/CHURN_PASSWORD are unset, make a strong password and print it.",
        ),
    ] = False,
    dev: Annotated[
        bool,
        typer.Option("--dev", help="Development: accept a weak password, with a loud warning."),
    ] = False,
) -> None:
    """Serve a model over HTTP: POST /predict behind HTTP Basic auth."""
    import uvicorn

    from churnops.api.observability import configure_logging
    from churnops.api.server import uvicorn_options
    from churnops.config import read_settings
    from churnops.registry.models import is_registry_ref

    with user_errors():
        # Everything is checked here, before uvicorn starts, so a bad start is one clear line.
        overrides: dict[str, str] = {}
        reference = model or os.environ.get("CHURN_MODEL")
        local = None
        if reference is not None:
            # Resolved here once so a bad reference is one line before uvicorn starts; the
            # workers get the reference itself and follow it (a registry alias moves).
            local = model_path(reference)
            overrides["CHURN_MODEL"] = reference
        if dev:
            overrides["CHURN_DEV"] = "true"
        if port is not None:
            overrides["CHURN_PORT"] = str(port)
        if workers is not None:
            overrides["CHURN_WORKERS"] = str(workers)
        if no_auth:
            overrides["CHURN_NO_AUTH"] = "true"
            overrides["CHURN_HOST"] = host or "127.0.0.1"
        elif host is not None:
            overrides["CHURN_HOST"] = host
        os.environ.update(overrides)  # the workers read their settings from the environment
        settings = read_settings()
        credentials = settings.credentials()
        generated = False
        if credentials is None and generate_credentials and not settings.no_auth:
            os.environ["CHURN_USER"] = "churn"
            os.environ["CHURN_PASSWORD"] = secrets.token_urlsafe(18)
            settings = read_settings()
            credentials = settings.credentials()
            generated = True
        if credentials is None and not settings.no_auth:
            fail(
                "no credentials: set CHURN_USER and CHURN_PASSWORD (or CHURN_USER_FILE and "
                "CHURN_PASSWORD_FILE), or pass --generate-credentials, or --no-auth"
            )
        weakness = settings.password_weakness()
        if weakness is not None and not settings.dev:
            fail(
                f"{weakness}: choose a stronger password (python -c 'import secrets; "
                "print(secrets.token_urlsafe(18))'), or start with --dev"
            )
        from churnops.api.serving import ModelLocation, load_served_model

        served = load_served_model(ModelLocation(local or Path(settings.model)))
        artifact, scorer = served.artifact, served.scorer
    shown = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host  # noqa: S104
    path = "fast data-only path" if scorer.fast else "pipeline fallback"
    say(f"model: {artifact.name} {artifact.version} — {scorer.runtime} ({path})")
    if not scorer.fast:
        say(
            f"[yellow]note:[/] no fast path, serving the pipeline: {scorer.fallback_reason}",
            err=True,
        )
    if artifact.synthetic:
        say(
            "[bold red]WARNING: this model was trained on SYNTHETIC data; its predictions say "
            "nothing about real customers.[/]",
            err=True,
        )
    say(f"API: http://{shown}:{settings.port}/predict   docs: http://{shown}:{settings.port}/docs")
    if generated and credentials is not None:
        say(
            f"credentials (generated for this run): user [bold]{credentials[0]}[/] "
            f"password [bold]{credentials[1].get_secret_value()}[/]"
        )
    elif credentials is not None:
        say("credentials: from the environment (CHURN_USER / CHURN_PASSWORD or *_FILE)")
    else:
        say("[bold red]WARNING: authentication is OFF[/]", err=True)
    if weakness is not None:
        say(f"[bold red]WARNING: weak password accepted because of --dev: {weakness}[/]", err=True)
    if is_registry_ref(settings.model) and settings.model_poll_seconds > 0:
        say(f"following {settings.model}: checked every {settings.model_poll_seconds:g} s")
    with ExitStack() as cleanup:
        if settings.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            # One /metrics view over all workers: each writes its samples to files here and
            # /metrics, whichever worker answers, adds them up. A directory set by the user is
            # used as is (it must be emptied between runs, as prometheus-client requires).
            metrics_dir = cleanup.enter_context(
                tempfile.TemporaryDirectory(prefix="churnops-metrics-")
            )
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        configure_logging(settings.log_level)
        # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal to the handler that
        # was installed before it: a no-op one makes the normal stop (Cloud Run, podman stop)
        # exit 0.
        signal.signal(signal.SIGTERM, lambda *_: None)
        raise_file_limit(settings.max_connections)
        uvicorn.run(
            "churnops.cli.serve:serving_app",  # an import string, so workers can import it
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


def serving_app() -> FastAPI:
    """uvicorn's factory (in every worker): the app, following a registry reference if given."""
    from churnops.api.app import app_from_environment
    from churnops.api.serving import ModelLocation
    from churnops.config import get_settings
    from churnops.registry.models import is_registry_ref

    settings = get_settings()
    if not is_registry_ref(settings.model):
        return app_from_environment()
    reference = settings.model

    def locate() -> ModelLocation:
        # models:/NAME@ALIAS → the verified copy of the version it names now,
        # HOME/cache/NAME/VERSION (see churnops.registry.models.resolve_model).
        path = model_path(reference)
        return ModelLocation(path, f"models:/{path.parent.name}/{path.name}")

    return app_from_environment(locate)


def raise_file_limit(connections: int) -> None:
    """Let the process hold ``connections`` sockets: raise the soft open-file limit to the hard."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard == resource.RLIM_INFINITY else max(soft, hard)
    if wanted != soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    if wanted != resource.RLIM_INFINITY and wanted < connections + 64:
        say(
            f"[yellow]note:[/] open-file limit {wanted} is below CHURN_MAX_CONNECTIONS "
            f"({connections}); connections beyond it will be refused by the system",
            err=True,
        )
