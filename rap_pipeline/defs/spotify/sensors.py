"""Keeping Spotify data fresh: a sensor for partitions that came due, a weekly sweep."""

import dagster as dg

from rap_pipeline.core.resources import DatabaseResource
from rap_pipeline.defs.artists.due import batched_run_requests, due_partitions, due_partitions_tick
from rap_pipeline.defs.artists.partitions import artists_partitions
from rap_pipeline.defs.spotify.resources import SpotifyResource

SPOTIFY_TRACKS = dg.AssetKey("spotify_tracks")
# When each enriched track's data comes due again: a match when it is older than the TTL,
# anything else when its retry time has come (the rule of ``store.pending_tracks``).
DUE_SQL = """SELECT 'spotify_tracks' AS asset, artist_slug,
                    CASE WHEN status = 'matched'
                         THEN enriched_at + make_interval(days => %(stale_after_days)s)
                         ELSE coalesce(retry_after, checked_at) END AS due_at
             FROM spotify_tracks"""


@dg.sensor(
    target=[SPOTIFY_TRACKS],
    minimum_interval_seconds=600,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def spotify_refresh_sensor(
    context: dg.SensorEvaluationContext, database: DatabaseResource, spotify: SpotifyResource
) -> dg.SensorResult:
    """Re-enriches, in batched runs, the partitions whose Spotify data came due since the last
    tick: matches older than ``stale_after_days`` (RAP_SPOTIFY_STALE_AFTER_DAYS), and misses
    or errors whose retry time has come. Only ``spotify_tracks`` runs; what depends on it
    follows through its automation conditions."""
    if not spotify.configured:
        return dg.SensorResult(skip_reason=dg.SkipReason("Spotify is not configured"))
    with database.connect() as conn:
        return due_partitions_tick(
            context, conn, DUE_SQL, {"stale_after_days": spotify.stale_after_days}, "Spotify data"
        )


@dg.schedule(
    cron_schedule="0 4 * * 1",
    target=[SPOTIFY_TRACKS],
    default_status=dg.DefaultScheduleStatus.RUNNING,
    execution_timezone="UTC",
)
def weekly_spotify_reenrichment(
    context: dg.ScheduleEvaluationContext, database: DatabaseResource, spotify: SpotifyResource
) -> list[dg.RunRequest] | dg.SkipReason:
    """Every Monday at 04:00 UTC: every partition with Spotify data due, whenever it came due
    (catching what a failed run or a stopped daemon left), in batched runs."""
    if not spotify.configured:
        return dg.SkipReason("Spotify is not configured")
    with database.connect() as conn:
        due, _ = due_partitions(
            conn, DUE_SQL, {"stale_after_days": spotify.stale_after_days}, since=None
        )
    ordered = context.instance.get_dynamic_partitions(artists_partitions.name)
    requests, _ = batched_run_requests(due, ordered, "weekly Spotify re-enrichment")
    return requests or dg.SkipReason("no partition has Spotify data due")
