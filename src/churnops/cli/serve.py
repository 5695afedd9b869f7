"""``churnops serve``: the prediction API under uvicorn."""

from __future__ import annotations

import os
import secrets
import signal
import tempfile
from contextlib import ExitStack
from typing import Annotated

import typer

from churnops.cli.app import app, console, err_console, fail, user_errors


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
) -> None:
    """Serve a model over HTTP: POST /predict behind HTTP Basic auth."""
    import uvicorn

    from churnops.api.observability import configure_logging
    from churnops.config import read_settings

    with user_errors():
        # Everything is checked here, before uvicorn starts, so a bad start is one clear line.
        from churnops.cli.app import model_path

        overrides: dict[str, str] = {}
        reference = model or os.environ.get("CHURN_MODEL")
        if reference is not None:
            # A registry reference is resolved once, here; the workers load the local copy.
            overrides["CHURN_MODEL"] = str(model_path(reference))
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
        from churnops.artifact import load_artifact
        from churnops.inference import load_scorer

        artifact = load_artifact(settings.model)
        scorer = load_scorer(artifact)
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
        uvicorn.run(
            "churnops.api.app:app_from_environment",  # an import string, so workers can import it
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            access_log=False,  # churnops writes its own JSON access log
            log_config=None,  # and uvicorn's lines go to the same JSON stream
            log_level=settings.log_level,
            timeout_graceful_shutdown=20,
        )
