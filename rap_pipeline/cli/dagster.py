"""``rap-pipeline dev`` and ``rap-pipeline dagster``: Dagster's own CLI on the pipeline's
servers and instance."""

from __future__ import annotations

import subprocess
import sys
from typing import Annotated

import typer

from rap_pipeline.cli.output import console, fail
from rap_pipeline.core.dagster_home import apply_pool_limits, use_dagster_environment
from rap_pipeline.core.database import connect, describe_url
from rap_pipeline.core.paths import project_file
from rap_pipeline.core.services import ServiceError, services_for_command
from rap_pipeline.core.settings import get_settings


def run_dagster(args: list[str]) -> int:
    """Runs the dagster CLI with the pipeline's servers and instance (DAGSTER_HOME)."""
    from dagster import DagsterInstance

    settings = get_settings()
    try:
        with services_for_command(settings) as urls:
            use_dagster_environment(settings, urls)
            with connect(urls.database_url):
                pass  # applies migrations, which create the schema Dagster's storage uses
            with DagsterInstance.get() as instance:
                apply_pool_limits(instance)
            console.print(f"PostgreSQL {describe_url(urls.database_url)}")
            try:
                return subprocess.run([sys.executable, "-m", "dagster", *args]).returncode
            except KeyboardInterrupt:
                return 130
    except (ServiceError, ConnectionError) as exc:
        raise fail(str(exc)) from None


def dev(
    host: Annotated[str, typer.Option(help="Interface the UI listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the UI.")] = 3000,
) -> None:
    """Run the Dagster UI and daemon (sensors, schedules, automation) on the pipeline's servers."""
    workspace = project_file("workspace.yaml")
    target = ["-w", str(workspace)] if workspace.exists() else ["-m", "rap_pipeline.definitions"]
    console.print(f"UI on http://{host}:{port}")
    raise typer.Exit(run_dagster(["dev", *target, "-h", host, "-p", str(port)]))


def dagster(ctx: typer.Context) -> None:
    """Any dagster CLI command on the pipeline's instance, e.g.
    `rap-pipeline dagster definitions validate` (plain `dagster` in the repo root reads
    dagster.yaml, which needs the variables this sets)."""
    raise typer.Exit(run_dagster(ctx.args))
