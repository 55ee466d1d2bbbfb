"""``rap-pipeline metrics``: the Prometheus exporter of the pipeline, long-running."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

from rap_pipeline.cli.output import console, fail
from rap_pipeline.core.dagster_home import use_dagster_environment
from rap_pipeline.core.services import ServiceError, services_for_command
from rap_pipeline.core.settings import get_settings

DEFAULT_PORT = 9464  # the port Prometheus's wiki lists for this kind of exporter


def metrics(
    host: Annotated[
        str, typer.Option(help="Interface to listen on (0.0.0.0 in a container).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of /metrics.")] = DEFAULT_PORT,
) -> None:
    """Serve the pipeline's Prometheus metrics: counters the runs left in Redis, the data in
    PostgreSQL and the Dagster instance's runs, read on each scrape."""
    from dagster import DagsterInstance

    from rap_pipeline.exporter import build_collector, serve

    settings = get_settings()
    try:
        with services_for_command(settings) as urls:
            use_dagster_environment(settings, urls)
            with DagsterInstance.get() as instance:
                server, _ = serve(build_collector(settings, urls, lambda: instance), host, port)
                # own handlers: Dagster's code may have remapped SIGTERM (or captured it)
                stop = threading.Event()
                for signum in (signal.SIGTERM, signal.SIGINT):
                    signal.signal(signum, lambda *_: stop.set())
                console.print(f"metrics on http://{host}:{port}/metrics (Ctrl-C stops)")
                stop.wait()
                server.shutdown()
    except (ServiceError, ConnectionError, OSError) as exc:
        raise fail(str(exc)) from None
