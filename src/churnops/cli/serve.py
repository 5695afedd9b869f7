"""``churnops serve``: the prediction API under uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from churnops.cli.app import app, console, err_console, fail, user_errors


def say(text: str, err: bool = False) -> None:
    """Print one console line, never wrapped (URLs and passwords stay copyable)."""
    (err_console if err else console).print(text, soft_wrap=True, highlight=False)


# Addresses that mean "every interface" and the loopback address a local client reaches them by.
_ANY_ADDRESS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # noqa: S104


def listening_line(host: str, port: int) -> str:
    """Where the service listens, as bound, and the URLs to open (local ones for any-address)."""
    bound = f"{_url_host(host)}:{port}"
    local = _ANY_ADDRESS.get(host)
    base = f"http://{_url_host(local or host)}:{port}"
    urls = f"{base}/predict   docs: {base}/docs"
    if local is None:
        return f"listening on {bound}: API {urls}"
    return f"listening on {bound} (all interfaces); on this machine: API {urls}"


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


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
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            help="Prediction log database URL: sqlite:///PATH or "
            "postgresql://USER:PASSWORD@HOST/DB [env CHURN_STORE_URL; default sqlite in "
            ".churnops/monitoring.db].",
        ),
    ] = None,
    no_store: Annotated[
        bool, typer.Option("--no-store", help="Log no predictions [env CHURN_NO_STORE].")
    ] = False,
) -> None:
    """Serve a model over HTTP: POST /predict behind HTTP Basic auth."""
    from churnops.workflows.serving import plan_service, run_service

    if store is not None and no_store:
        fail("--store and --no-store contradict each other: give one")
    # Options left out (None, False) leave the setting to the environment.
    given = {"model": model, "host": host, "port": port, "workers": workers}
    given.update(no_auth=no_auth or None, dev=dev or None, no_store=no_store or None)
    given["store_url"] = store
    with user_errors():
        # Everything is checked before uvicorn starts, so a bad start is one clear line.
        plan = plan_service(given, generate_credentials)
    settings, served = plan.settings, plan.served
    artifact, scorer = served.artifact, served.scorer
    path = "fast data-only path" if scorer.fast else "pipeline fallback"
    ref = served.location.registry_ref
    registry = f" = {ref}" if ref else ""
    say(f"model: {artifact.name} {artifact.version}{registry} — {scorer.runtime} ({path})")
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
    say(listening_line(settings.host, settings.port))
    credentials = settings.credentials()
    if plan.generated_credentials and credentials is not None:
        say(
            f"credentials (generated for this run): user [bold]{credentials[0]}[/] "
            f"password [bold]{credentials[1].get_secret_value()}[/]"
        )
    elif credentials is not None:
        say("credentials: from the environment (CHURN_USER / CHURN_PASSWORD or *_FILE)")
    else:
        say("[bold red]WARNING: authentication is OFF[/]", err=True)
    if plan.password_weakness is not None:
        say(
            "[bold red]WARNING: weak password accepted because of --dev: "
            f"{plan.password_weakness}[/]",
            err=True,
        )
    say(f"prediction log: {plan.store}" if plan.store else "prediction log: off (--no-store)")
    if plan.following:
        say(f"following {settings.model}: checked every {settings.model_poll_seconds:g} s")
    with user_errors():
        run_service(plan, warn=lambda text: say(f"[yellow]note:[/] {text}", err=True))
