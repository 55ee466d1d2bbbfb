"""``rap-pipeline run``: materialize everything for the artists of the artists file, then a
summary of what the pipeline holds for them."""

from __future__ import annotations

import logging
import secrets
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from pydantic import SecretStr
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from rap_pipeline.cli.artists import add_partitions
from rap_pipeline.cli.output import USER_ERRORS, console, fail
from rap_pipeline.cli.predict import print_predictors
from rap_pipeline.core.dagster_home import (
    apply_pool_limits,
    use_dagster_environment,
)
from rap_pipeline.core.database import connect
from rap_pipeline.core.paths import project_file
from rap_pipeline.core.services import ServiceURLs, services_for_command
from rap_pipeline.core.settings import Settings, get_settings
from rap_pipeline.defs.analyses.store import RUN_HEADLINES, headline_values
from rap_pipeline.defs.artists.partitions import execute_in_batches
from rap_pipeline.defs.artists.registry import ArtistSpec, read_artists_file, register_artists
from rap_pipeline.defs.embeddings.store import embedded_counts
from rap_pipeline.defs.predictors.store import latest_trend_report
from rap_pipeline.defs.spotify.store import match_counts
from rap_pipeline.defs.tracks.store import artist_track_counts, rejection_reasons

_QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
# the assets whose failures have a back-off that `--force` overrides
FORCEABLE_ANALYSES = ("rule_based_analysis", "emotion_analysis", "llm_analysis")
EXAMPLE_QUERY = "songs about losing a brother"


def run(
    artists_file: Annotated[
        Path | None, typer.Option(help="Artists to run (default: RAP_ARTISTS_FILE, artists.yaml).")
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Ask failed analyses again now, even those whose back-off has not expired.",
        ),
    ] = False,
) -> None:
    """Materialize every asset for every artist of the artists file, then print a summary."""
    warnings.filterwarnings("ignore", module="dagster")
    logging.getLogger("dagster").setLevel(logging.WARNING)
    settings = get_settings()
    path = artists_file or settings.artists_file
    if artists_file is None and not path.exists():
        path = project_file("artists.yaml")  # outside a checkout: the bundled sample artists
    started = time.monotonic()
    try:
        specs = read_artists_file(path)
        with services_for_command(settings) as urls, _spotify_for_run(settings) as run_settings:
            console.print(f"Spotify: {_describe_spotify(settings, run_settings)}")
            console.print(
                f"LLM analyzer: {settings.llm_model} at {settings.llm_base_url}"
                if settings.llm_base_url and settings.llm_model
                else "LLM analyzer: not configured (set RAP_LLM_BASE_URL and RAP_LLM_MODEL)"
            )
            failed, definitions = _run_partitions(run_settings, urls, specs, force)
            retrain_error, retrain_notes = _retrain(definitions)
            slugs = [spec.slug for spec in specs]
            with connect(urls.database_url) as conn:
                _print_summary(conn, slugs, time.monotonic() - started, settings.embedding_model)
                _print_analysis_summary(conn, slugs)
                print_predictors(conn)
                for note in retrain_notes:
                    console.print(note)
                _print_trends(conn, settings)
            _print_example_search(settings, urls)
    except USER_ERRORS as exc:
        raise fail(str(exc)) from None
    if failed:
        for slug, error in failed.items():
            console.print(f"[red]{slug}[/red]: {error}")
        raise fail(f"{len(failed)} artist(s) failed; their runs are in `rap-pipeline dev`")
    if retrain_error:
        raise fail(f"retraining failed: {retrain_error}; the run is in `rap-pipeline dev`")


@contextmanager
def _spotify_for_run(settings: Settings) -> Iterator[Settings]:
    """The settings of the run. Without Spotify credentials, for the bundled sample corpus, a
    local server speaking the Spotify Web API over the bundled sample catalog stands in, with
    throwaway credentials, so the real spotipy path runs offline (rows say source =
    sample_catalog). Anything else: the settings as they are."""
    sample_corpus = settings.track_source == "corpus" and settings.corpus_path is None
    if (settings.spotify_client_id and settings.spotify_client_secret) or not sample_corpus:
        yield settings
        return
    from rap_pipeline.samples.spotify_catalog_server import CatalogServer, load_sample_catalog

    client_id, client_secret = secrets.token_hex(8), secrets.token_hex(16)
    with CatalogServer(load_sample_catalog(), client_id, client_secret) as server:
        yield settings.model_copy(
            update={
                "spotify_client_id": SecretStr(client_id),
                "spotify_client_secret": SecretStr(client_secret),
                "spotify_api_root": server.api_root,
                "spotify_token_url": server.token_url,
                "spotify_source_name": "sample_catalog",
            }
        )


def _describe_spotify(settings: Settings, run_settings: Settings) -> str:
    if run_settings.spotify_source_name == "sample_catalog":
        return (
            f"the bundled sample catalog, served at {run_settings.spotify_api_root} "
            "(no credentials set)"
        )
    if settings.spotify_client_id and settings.spotify_client_secret:
        return f"enriching through {settings.spotify_api_root}"
    return "not configured (set SPOTIFY_CLIENT_ID and SPOTIFY_CLIENT_SECRET)"


def _run_partitions(settings: Settings, urls: ServiceURLs, specs: list[ArtistSpec], force: bool):
    """Runs the main job over the artists in batched runs (ranges of up to
    ``PARTITIONS_PER_RUN`` partitions, as a backfill would); returns the failed artists with
    their first error, and the definitions (the retraining runs from them too)."""
    from dagster import DagsterInstance

    from rap_pipeline.definitions import build_definitions

    use_dagster_environment(settings, urls)
    with connect(urls.database_url) as conn:
        register_artists(conn, specs)
    slugs = [spec.slug for spec in specs]
    add_partitions(slugs)
    definitions = build_definitions(settings)
    job = definitions.resolve_job_def("main")
    failed: dict[str, str] = {}
    with (
        DagsterInstance.get() as instance,
        Progress(
            TextColumn("[bold]{task.description:<32}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress,
    ):
        apply_pool_limits(instance)
        task = progress.add_task("artists", total=len(slugs))

        def record(batch: list[str], result, _seconds: float) -> None:
            if not result.success:
                failed.update(dict.fromkeys(batch, _first_error(result)))
            failed.update(_failed_partitions(result))
            progress.update(task, advance=len(batch), description=batch[-1])

        execute_in_batches(job, instance, slugs, run_config(force), on_result=record)
        progress.update(task, description="done")
    return failed, definitions


def _retrain(definitions) -> tuple[str | None, list[str]]:
    """The predictors and trends over every partition, in one run after the partitions' runs
    (what the nightly retraining does): its first error, if it failed, and what each asset
    reported (trained, unchanged, or why it skipped)."""
    from dagster import DagsterInstance

    job = definitions.resolve_job_def("retrain")
    with (
        console.status("training the predictors and computing the trends"),
        DagsterInstance.get() as instance,
    ):
        result = job.execute_in_process(
            instance=instance, run_config=_QUIET_RUN_CONFIG, raise_on_error=False
        )
    notes = []
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        metadata = materialization.metadata
        if "reason" in metadata:
            name = materialization.asset_key.to_user_string()
            notes.append(f"{name}: {metadata['reason'].value}")
    return (None if result.success else _first_error(result)), notes


def run_config(force: bool) -> dict:
    """The run's config: quiet logs; with ``force``, failed analyses are asked again now."""
    return {**_QUIET_RUN_CONFIG, **force_config(FORCEABLE_ANALYSES if force else ())}


def force_config(assets) -> dict:
    """Run config that sets ``force: true`` for ``assets`` (each has a ``force`` field)."""
    return {"ops": {name: {"config": {"force": True}} for name in assets}}


def _first_error(result) -> str:
    """The user-code error behind a failed run (through Dagster's retry wrapper)."""
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data.error:
            error = event.step_failure_data.error
            while error.cause is not None:
                error = error.cause
            return error.message.strip().splitlines()[0]
    return "run failed"


def _failed_partitions(result) -> dict[str, str]:
    """Partitions that failed inside a run that finished the others (see ``batches.py``)."""
    failed = {}
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        metadata = materialization.metadata
        if "partition_status" in metadata and metadata["partition_status"].value == "failed":
            failed[materialization.partition] = metadata["error"].value
    return failed


def _print_summary(conn, slugs: list[str], elapsed_s: float, model_id: str) -> None:
    counts = artist_track_counts(conn, slugs)
    embedded = embedded_counts(conn, slugs, model_id)
    matches = match_counts(conn, slugs)
    reasons = rejection_reasons(conn, slugs)
    table = Table(title="tracks per artist")
    columns = ("artist", "partition", "kept", "rejected", "fetch failed", "embedded", "spotify")
    for column in columns:
        table.add_column(column, justify="left" if column in ("artist", "partition") else "right")
    for row in counts:
        matched, searched = matches.get(row.slug, (0, 0))
        spotify = f"{matched}/{searched} ({matched / searched:.0%})" if searched else "–"
        numbers = (row.kept, row.rejected, row.fetch_failed, embedded.get(row.slug, 0))
        table.add_row(row.display_name, row.slug, *map(str, numbers), spotify)
    console.print(table)
    matched = sum(m for m, _ in matches.values())
    searched = sum(s for _, s in matches.values())
    ordered = sorted(reasons.items(), key=lambda item: (-item[1], item[0]))  # ties by name
    by_reason = ", ".join(f"{reason} {n}" for reason, n in ordered) or "none"
    console.print(
        f"[bold]{len(counts)} artists[/bold], {sum(r.kept for r in counts)} tracks kept, "
        f"{sum(r.rejected for r in counts)} rejected ({by_reason}), in {elapsed_s:.1f} s"
    )
    if searched:
        console.print(
            f"Spotify: {matched} of {searched} searched tracks matched ({matched / searched:.0%})"
        )


def _print_analysis_summary(conn, slugs: list[str]) -> None:
    """Headline numbers per artist from the latest ok analyses of each analyzer."""
    values, methods = headline_values(conn, slugs)
    if not values:
        return
    table = Table(title="analyses per artist (means over kept tracks)")
    table.add_column("partition")
    for headline in RUN_HEADLINES:
        table.add_column(headline.label, justify="right")
    for slug, row in values.items():
        cells = [
            "–"
            if value is None
            else value
            if isinstance(value, str)
            else f"{value:.{headline.digits}f}"
            for headline, value in zip(RUN_HEADLINES, row, strict=True)
        ]
        table.add_row(slug, *cells)
    console.print(table)
    console.print(f"emotion by: {', '.join(methods) or 'none'}")


def _print_trends(conn, settings: Settings) -> None:
    report = latest_trend_report(conn)
    if report is None or not report.plots:
        return
    folder = settings.resolved_data_dir / "artifacts"
    console.print(f"trends: {len(report.plots)} plots (also in the UI, asset trends):")
    for relative in report.plots.values():
        console.print(f"  {folder / relative}")


def _print_example_search(settings: Settings, urls: ServiceURLs) -> None:
    from rap_pipeline.search import search

    hits = search(
        EXAMPLE_QUERY, limit=3, model_id=settings.embedding_model, database_url=urls.database_url
    )
    if not hits:
        return
    console.print(f'\nexample: rap-pipeline search "{EXAMPLE_QUERY}" --limit 3')
    for rank, hit in enumerate(hits, start=1):
        line = hit.matched_lines.split("\n", 1)[0]
        console.print(f"  {rank}. {hit.score:.3f} {hit.artist} – {hit.title} ({hit.year}): {line}")
