"""``rap-pipeline backfill``: a backfill of chosen assets and partitions, as from the UI, run by
the daemon in batched runs (the assets' backfill policy)."""

from __future__ import annotations

from typing import Annotated

import typer

from rap_pipeline.cli.output import console, fail
from rap_pipeline.cli.run import FORCEABLE_ANALYSES, force_config
from rap_pipeline.core.dagster_home import use_dagster_environment
from rap_pipeline.core.database import connect
from rap_pipeline.core.services import ServiceError, services_for_command
from rap_pipeline.core.settings import Settings, get_settings

# assets whose config has `force` (ask again what the idempotence logic would skip)
FORCEABLE = ("spotify_tracks", *FORCEABLE_ANALYSES)


def backfill(
    assets: Annotated[
        list[str], typer.Argument(help="Asset names, e.g. spotify_tracks llm_analysis.")
    ],
    artists: Annotated[
        str | None, typer.Option(help="Comma-separated partitions (artist slugs).")
    ] = None,
    stale: Annotated[
        bool,
        typer.Option(
            "--stale",
            help="The partitions with something due for these assets: Spotify data past its "
            "TTL or retry time, failed analyses or partitions past their back-off.",
        ),
    ] = False,
    all_partitions: Annotated[bool, typer.Option("--all", help="Every partition.")] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help=f"Redo what would be skipped as done or backing off ({', '.join(FORCEABLE)}).",
        ),
    ] = False,
    ui: Annotated[str, typer.Option(help="Base URL of the Dagster UI, for the link.")] = (
        "http://127.0.0.1:3000"
    ),
) -> None:
    """Launch a backfill of ASSETS for the chosen partitions; the daemon (`rap-pipeline dev`)
    runs it in batched runs. Prints the backfill id and its page in the UI."""
    if sum([artists is not None, stale, all_partitions]) != 1:
        raise fail("choose the partitions: exactly one of --artists, --stale, --all")
    settings = get_settings()
    try:
        with services_for_command(settings) as urls:
            use_dagster_environment(settings, urls)
            backfill_id, slugs = _launch(
                settings, urls.database_url, assets, artists, stale, all_partitions, force
            )
    except (ServiceError, ConnectionError, ValueError) as exc:
        raise fail(str(exc)) from None
    if backfill_id is None:
        console.print("nothing is due for these assets: no backfill launched")
        return
    console.print(f"backfill {backfill_id}: {', '.join(assets)} × {len(slugs)} partition(s)")
    console.print(f"{ui.rstrip('/')}/runs/b/{backfill_id}")


def _launch(
    settings: Settings,
    database_url: str,
    assets: list[str],
    artists: str | None,
    stale: bool,
    all_partitions: bool,
    force: bool,
) -> tuple[str | None, list[str]]:
    from dagster import DagsterInstance

    from rap_pipeline.definitions import build_definitions
    from rap_pipeline.defs.artists.partitions import artists_partitions, launch_backfill

    graph = build_definitions(settings).resolve_asset_graph()
    known = sorted(key.to_user_string() for key in graph.materializable_asset_keys)
    unknown = [name for name in assets if name not in known]
    if unknown:
        raise ValueError(f"unknown asset(s) {', '.join(unknown)}; the assets: {', '.join(known)}")
    with DagsterInstance.get() as instance:
        ordered = instance.get_dynamic_partitions(artists_partitions.name)
        if all_partitions:
            slugs = list(ordered)
        elif stale:
            with connect(database_url) as conn:
                due = _due_slugs(conn, assets, settings.spotify_stale_after_days)
            slugs = [slug for slug in ordered if slug in due]
        else:
            slugs = [slug.strip() for slug in (artists or "").split(",") if slug.strip()]
            missing = [slug for slug in slugs if slug not in ordered]
            if missing:
                raise ValueError(
                    f"not partitions: {', '.join(missing)} (`rap-pipeline artists list`)"
                )
        if not slugs:
            return None, []
        forced = [name for name in assets if name in FORCEABLE] if force else []
        backfill_id = launch_backfill(
            instance,
            graph,
            assets,
            slugs,
            run_config=force_config(forced) if forced else None,
        )
    return backfill_id, slugs


def _due_slugs(conn, assets: list[str], stale_after_days: int) -> set[str]:
    """Partitions where something of ``assets`` is due (what the sensors request as it comes
    due, whenever it came due)."""
    from rap_pipeline.defs.analyses.sensors import DUE_PARAMS as ANALYSES_PARAMS
    from rap_pipeline.defs.analyses.sensors import DUE_SQL as ANALYSES_DUE
    from rap_pipeline.defs.artists.due import due_partitions
    from rap_pipeline.defs.artists.sensors import FAILED_PARTITIONS_SQL
    from rap_pipeline.defs.spotify.sensors import DUE_SQL as SPOTIFY_DUE

    sources = [
        (SPOTIFY_DUE, {"stale_after_days": stale_after_days}),
        (ANALYSES_DUE, ANALYSES_PARAMS),
        (FAILED_PARTITIONS_SQL, {}),
    ]
    due = set()
    for sql, params in sources:
        found, _ = due_partitions(conn, sql, params, since=None)
        due.update(item.slug for item in found if item.asset in assets)
    return due
