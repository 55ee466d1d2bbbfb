"""``rap-pipeline services``: the embedded PostgreSQL and Redis."""

from __future__ import annotations

import typer

from rap_pipeline.cli.output import console, fail
from rap_pipeline.core.services import EmbeddedServices, ServiceError
from rap_pipeline.core.settings import get_settings

app = typer.Typer(help="The embedded PostgreSQL and Redis.", no_args_is_help=True)


@app.command("start")
def services_start() -> None:
    """Start the embedded servers (if needed) and leave them running for later commands."""
    try:
        urls = EmbeddedServices.from_settings(get_settings()).start()
    except ServiceError as exc:
        raise fail(str(exc)) from None
    console.print(f"PostgreSQL: {urls.database_url}\nRedis:      {urls.redis_url}")


@app.command("stop")
def services_stop() -> None:
    """Stop the embedded servers cleanly."""
    stopped = EmbeddedServices.from_settings(get_settings()).stop()
    console.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@app.command("status")
def services_status() -> None:
    """Say whether the embedded servers run, and where."""
    settings = get_settings()
    urls = EmbeddedServices.from_settings(settings).running_urls()
    if urls is None:
        console.print(f"not running (data directory {settings.resolved_data_dir})")
        raise typer.Exit(3)
    console.print(f"PostgreSQL: {urls.database_url}\nRedis:      {urls.redis_url}")
