"""The ``spotify_tracks`` asset: Spotify metadata of an artist's kept tracks."""

import time

import dagster as dg

from rap_pipeline.core.automation import keep_fresh
from rap_pipeline.core.resources import DatabaseResource
from rap_pipeline.defs.artists.batches import PartitionOutcome, materialize_partitions
from rap_pipeline.defs.artists.partitions import BATCHED_BACKFILLS, artists_partitions
from rap_pipeline.defs.artists.registry import get_artist
from rap_pipeline.defs.spotify.checks import SPOTIFY_CHECK_SPECS, run_spotify_checks
from rap_pipeline.defs.spotify.client import SpotifyConfigError
from rap_pipeline.defs.spotify.enrichment import PAYLOAD_VERSION, enrich_tracks
from rap_pipeline.defs.spotify.matching import MIN_SCORE
from rap_pipeline.defs.spotify.resources import SpotifyResource
from rap_pipeline.defs.spotify.store import (
    held_spotify_ids,
    pending_tracks,
    status_counts,
    write_enrichment,
)


class SpotifyEnrichmentConfig(dg.Config):
    force: bool = False  # re-enrich every kept track now, bypassing the response cache


def _not_found_preview(run, limit: int = 10) -> str:
    lines = ["| track id | searched title | best candidate | score |", "|---|---|---|---|"]
    for outcome in [o for o in run.outcomes if o.status == "not_found"][:limit]:
        best = outcome.best
        candidate = f"{best.title} – {', '.join(best.artists)}" if best else "no hit"
        score = f"{best.score:.1f}" if best else ""
        lines.append(f"| {outcome.track_id} | {outcome.query_title} | {candidate} | {score} |")
    return "\n".join(lines)


@dg.asset(
    partitions_def=artists_partitions,
    group_name="spotify",
    deps=["tracks"],
    kinds={"postgres", "spotify"},
    code_version=str(PAYLOAD_VERSION),
    check_specs=SPOTIFY_CHECK_SPECS,
    pool="spotify_api",
    automation_condition=keep_fresh(),
    backfill_policy=BATCHED_BACKFILLS,
)
def spotify_tracks(
    context: dg.AssetExecutionContext,
    config: SpotifyEnrichmentConfig,
    database: DatabaseResource,
    spotify: SpotifyResource,
) -> dg.MaterializeResult:
    """Spotify metadata of the artist's kept tracks (table ``spotify_tracks``; artists'
    genres, popularity and followers in ``spotify_artists``), through the real spotipy client.

    Each track is searched (limit 10) and a hit accepted only above a documented fuzzy score;
    otherwise it is ``not_found`` with its best candidate, retried after 1, 7, then 30 days.
    Matches are re-enriched after ``stale_after_days``; ``force`` re-enriches everything.
    Answers are cached in Redis, so a re-run of an unchanged partition makes no HTTP request.
    Without credentials the asset records "not configured" and succeeds.

    Automation: materialized for a new partition or when its upstream partition was updated,
    never past a failed blocking check.
    """
    if not spotify.configured:
        context.log.info("Spotify is not configured (SPOTIFY_CLIENT_ID/SECRET): skipped")

        def not_configured(slug: str) -> PartitionOutcome:
            with database.connect() as conn:
                checks = run_spotify_checks(conn, slug)
            return PartitionOutcome({"status": "not configured"}, checks)

        return materialize_partitions(context, database, not_configured)
    client = spotify.build()
    client.refresh = config.force

    def materialize_one(slug: str) -> PartitionOutcome:
        started = time.monotonic()
        with database.connect() as conn:
            artist = get_artist(conn, slug)
            pending = pending_tracks(conn, slug, spotify.stale_after_days, force=config.force)
            held = held_spotify_ids(conn, slug, pending)
        counters_before = client.guard.counters() if client.guard else {}
        requests_before = client.http_requests
        try:
            run = enrich_tracks(client, artist.name, pending, known_matches=held)
        except SpotifyConfigError as exc:
            raise dg.Failure(str(exc), allow_retries=False) from exc
        with database.connect() as conn:
            write_enrichment(conn, slug, spotify.source_name, run.outcomes, run.artists)
            counts = status_counts(conn, slug)
            check_results = run_spotify_checks(conn, slug)
        counters_after = client.guard.counters() if client.guard else {}
        for feature, why in run.unavailable.items():
            context.log.warning("Spotify %s unavailable this run: %s", feature, why)
        searched = counts["matched"] + counts["not_found"]
        this_run = {
            status: sum(o.status == status for o in run.outcomes)
            for status in ("matched", "not_found", "error", "unavailable")
        }
        return PartitionOutcome(
            metadata={
                "status": "enriched",
                "source": spotify.source_name,
                "tracks_enriched_this_run": len(pending),
                "outcomes_this_run": this_run,
                **counts,
                "match_rate": round(counts["matched"] / searched, 3) if searched else 0.0,
                "min_match_score": MIN_SCORE,
                "artists_fetched": len(run.artists),
                "unavailable_features": dict(run.unavailable) or "none",
                "http_requests": client.http_requests - requests_before,
                "cache_hits": counters_after.get("hits", 0) - counters_before.get("hits", 0),
                "total_seconds": round(time.monotonic() - started, 3),
                "not_found_preview": dg.MetadataValue.md(_not_found_preview(run)),
            },
            check_results=check_results,
        )

    return materialize_partitions(context, database, materialize_one)
