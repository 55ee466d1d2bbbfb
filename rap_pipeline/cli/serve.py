"""``rap-pipeline serve``: the HTTP API over what the pipeline built."""

from __future__ import annotations

from typing import Annotated

import typer

from rap_pipeline.cli.output import console, fail
from rap_pipeline.core.services import ServiceError, services_for_command
from rap_pipeline.core.settings import get_settings


def serve(
    host: Annotated[
        str, typer.Option(help="Interface to listen on (0.0.0.0 exposes it).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
) -> None:
    """Serve the HTTP API (JSON; OpenAPI at /docs) on the pipeline's servers."""
    import uvicorn

    from rap_pipeline.api.app import create_app

    settings = get_settings()
    try:
        with services_for_command(settings) as urls:
            console.print(f"API on http://{host}:{port} (OpenAPI at /docs)")
            uvicorn.run(
                create_app(settings, urls.database_url, urls.redis_url),
                host=host,
                port=port,
                log_level="info",
                proxy_headers=False,
            )
    except (ServiceError, ConnectionError) as exc:
        raise fail(str(exc)) from None
