"""``rap-pipeline artists``: the artists (partitions) the pipeline collects."""

from __future__ import annotations

from typing import Annotated

import typer

from rap_pipeline.cli.output import console, fail
from rap_pipeline.core.dagster_home import use_dagster_environment
from rap_pipeline.core.database import connect
from rap_pipeline.core.services import ServiceError, services_for_command
from rap_pipeline.core.settings import get_settings
from rap_pipeline.defs.artists.registry import ArtistSpec, SlugCollisionError, register_artists

app = typer.Typer(help="The artists (partitions) the pipeline collects.", no_args_is_help=True)


def add_partitions(slugs: list[str]) -> None:
    """Adds the slugs that are not partitions yet (on the instance of DAGSTER_HOME)."""
    from dagster import DagsterInstance

    from rap_pipeline.defs.artists.partitions import artists_partitions

    with DagsterInstance.get() as instance:
        known = set(instance.get_dynamic_partitions(artists_partitions.name))
        new = [slug for slug in slugs if slug not in known]
        if new:
            instance.add_dynamic_partitions(artists_partitions.name, new)


@app.command("add")
def artists_add(
    names: Annotated[list[str], typer.Argument(help="Display names, e.g. 'Tyler, The Creator'.")],
    slug: Annotated[
        str | None, typer.Option(help="Explicit partition key (only with a single name).")
    ] = None,
) -> None:
    """Add artists as partitions (their runs start from the UI, a sensor or `run`)."""
    if slug and len(names) != 1:
        raise fail("--slug goes with exactly one name")
    settings = get_settings()
    try:
        specs = [ArtistSpec(name=name, slug=slug or "") for name in names]
        with services_for_command(settings) as urls:
            use_dagster_environment(settings, urls)
            with connect(urls.database_url) as conn:
                new = register_artists(conn, specs)
            add_partitions([spec.slug for spec in specs])
    except (SlugCollisionError, ServiceError, ConnectionError, ValueError) as exc:
        raise fail(str(exc)) from None
    for spec in specs:
        state = "added" if spec.slug in new else "already known"
        console.print(f"{spec.name!r} → partition {spec.slug!r} ({state})")


@app.command("list")
def artists_list() -> None:
    """List the artists and their partition keys."""
    settings = get_settings()
    with services_for_command(settings) as urls, connect(urls.database_url) as conn:
        rows = conn.execute("SELECT slug, display_name FROM artists ORDER BY slug").fetchall()
    for slug, name in rows:
        console.print(f"{slug:<40} {name}")
