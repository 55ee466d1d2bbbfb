"""``rap-pipeline doctor``: is every part the pipeline needs there and working?"""

from __future__ import annotations

import typer
from rich.table import Table

from rap_pipeline.cli.output import console
from rap_pipeline.core.dagster_home import use_dagster_environment
from rap_pipeline.core.services import ServiceError, services_for_command
from rap_pipeline.core.settings import get_settings

STYLE = {"ok": "green", "warn": "yellow", "fail": "red"}


def doctor() -> None:
    """Check the database and pgvector, migrations, Redis, the models, Dagster's storage and
    daemon, and which credentials are set (never their values). Exits 1 if a check fails."""
    from rap_pipeline.doctor import Check, run_checks

    settings = get_settings()
    try:
        with services_for_command(settings) as urls:
            use_dagster_environment(settings, urls)
            checks = run_checks(settings, urls.database_url, urls.redis_url)
    except (ServiceError, ConnectionError) as exc:
        checks = [Check("servers", "fail", str(exc).splitlines()[0])]
    table = Table(title="rap-pipeline doctor")
    for column in ("check", "status", "detail"):
        table.add_column(column, overflow="fold")
    for check in checks:
        style = STYLE[check.status]
        table.add_row(check.name, f"[{style}]{check.status}[/{style}]", check.detail)
    console.print(table)
    failed = [c.name for c in checks if c.status == "fail"]
    if failed:
        console.print(f"[red]{len(failed)} check(s) failed:[/red] {', '.join(failed)}")
        raise typer.Exit(1)
