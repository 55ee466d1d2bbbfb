"""Freshness checks of the assets people read: they fail when the daemon falls behind, i.e.
when work that automation, the sensors or the weekly schedule should have done by now is
still waiting. They judge every partition at once from the database (and the instance), and
run hourly on their own (``freshness_checks_schedule``), not with the assets: an asset the
daemon no longer materializes would otherwise never be checked."""

import datetime as dt
from collections.abc import Iterator

import dagster as dg

from rap_pipeline.core.resources import DatabaseResource
from rap_pipeline.defs.analyses.resources import LLMResource
from rap_pipeline.defs.analyses.sensors import ANALYZER_ASSETS
from rap_pipeline.defs.artists.partitions import artists_partitions
from rap_pipeline.defs.embeddings.resources import EmbeddingModelResource
from rap_pipeline.defs.spotify.resources import SpotifyResource

# how long the daemon may take before work counts as late
NEW_WORK_GRACE = dt.timedelta(hours=6)  # a new artist or changed lyrics: automation
DUE_WORK_GRACE = dt.timedelta(days=8)  # due Spotify data: sensor, else the weekly schedule
RETRY_GRACE = dt.timedelta(days=1)  # a retry whose back-off expired: the retry sensors
LISTED = 20

SPECS = [
    dg.AssetCheckSpec(
        "tracks_fresh",
        asset="tracks",
        description=f"Every artist added more than {NEW_WORK_GRACE} ago has its tracks.",
    ),
    dg.AssetCheckSpec(
        "spotify_tracks_fresh",
        asset="spotify_tracks",
        description=f"No Spotify match is older than its TTL plus {DUE_WORK_GRACE.days} days, "
        f"no miss or error waits more than {RETRY_GRACE.days} day past its retry time.",
    ),
    dg.AssetCheckSpec(
        "lyric_embeddings_fresh",
        asset="lyric_embeddings",
        description=f"Every kept track whose lyrics are older than {NEW_WORK_GRACE} has a "
        "vector of the configured model.",
    ),
    *[
        dg.AssetCheckSpec(
            f"{asset}_fresh",
            asset=asset,
            description=f"Every kept track whose lyrics are older than {NEW_WORK_GRACE} has a "
            "result or a recorded failure of the current analyzer version, and no failure "
            f"waits more than {RETRY_GRACE.days} day past its next attempt.",
        )
        for asset, _ in ANALYZER_ASSETS.values()
    ],
]


def _result(name: str, asset: str, late: list[tuple[str, int]], **metadata) -> dg.AssetCheckResult:
    """Fails (as a warning: the data is late, not wrong) when some partitions have late work."""
    return dg.AssetCheckResult(
        check_name=name,
        asset_key=asset,
        passed=not late,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "late_partitions": len(late),
            "late_items": sum(count for _, count in late),
            "examples": {slug: count for slug, count in late[:LISTED]} or "none",
            **metadata,
        },
    )


@dg.multi_asset_check(specs=SPECS, can_subset=True)
def freshness_checks(
    context: dg.AssetCheckExecutionContext,
    database: DatabaseResource,
    spotify: SpotifyResource,
    embedding_model: EmbeddingModelResource,
    llm: LLMResource,
) -> Iterator[dg.AssetCheckResult]:
    """Late work per partition, from the pipeline's tables and the instance."""
    selected = {key.name for key in context.selected_asset_check_keys}
    with database.connect() as conn:
        if "tracks_fresh" in selected:
            materialized = context.instance.get_materialized_partitions(dg.AssetKey("tracks"))
            partitions = set(context.instance.get_dynamic_partitions(artists_partitions.name))
            added = conn.execute(
                "SELECT slug FROM artists WHERE created_at < now() - %s ORDER BY slug",
                (NEW_WORK_GRACE,),
            ).fetchall()
            late = [(slug, 1) for (slug,) in added if slug in partitions - materialized]
            yield _result("tracks_fresh", "tracks", late)
        if "spotify_tracks_fresh" in selected:
            late = conn.execute(
                """SELECT artist_slug, count(*) FROM spotify_tracks
                   WHERE (status = 'matched'
                          AND enriched_at < now() - make_interval(days => %s) - %s)
                      OR (status <> 'matched' AND retry_after < now() - %s)
                   GROUP BY artist_slug ORDER BY 2 DESC, 1""",
                (spotify.stale_after_days, DUE_WORK_GRACE, RETRY_GRACE),
            ).fetchall()
            yield _result(
                "spotify_tracks_fresh",
                "spotify_tracks",
                late,
                stale_after_days=spotify.stale_after_days,
                configured=spotify.configured,
            )
        if "lyric_embeddings_fresh" in selected:
            late = conn.execute(
                """SELECT t.artist_slug, count(*) FROM tracks t
                   LEFT JOIN track_embeddings e ON e.track_id = t.id AND e.model_id = %s
                   WHERE t.status = 'kept' AND t.updated_at < now() - %s
                     AND (e.track_id IS NULL OR e.lyrics_hash <> t.lyrics_hash)
                   GROUP BY t.artist_slug ORDER BY 2 DESC, 1""",
                (embedding_model.model_id, NEW_WORK_GRACE),
            ).fetchall()
            yield _result(
                "lyric_embeddings_fresh", "lyric_embeddings", late, model=embedding_model.model_id
            )
        for analyzer, (asset, version) in ANALYZER_ASSETS.items():
            if f"{asset}_fresh" not in selected:
                continue
            if analyzer == "llm" and not llm.configured:
                yield _result(f"{asset}_fresh", asset, [], status="not configured")
                continue
            late = conn.execute(
                """SELECT t.artist_slug, count(*) FROM tracks t
                   WHERE t.status = 'kept' AND t.updated_at < now() - %(grace)s
                     AND NOT EXISTS (
                       SELECT 1 FROM analyses a WHERE a.track_id = t.id
                         AND a.analyzer = %(analyzer)s AND a.analyzer_version = %(version)s
                         AND a.input_hash = t.lyrics_hash
                         AND (a.status = 'ok' OR a.next_attempt_at IS NULL
                              OR a.next_attempt_at > now() - %(retry)s))
                   GROUP BY t.artist_slug ORDER BY 2 DESC, 1""",
                {
                    "grace": NEW_WORK_GRACE,
                    "retry": RETRY_GRACE,
                    "analyzer": analyzer,
                    "version": version,
                },
            ).fetchall()
            yield _result(f"{asset}_fresh", asset, late, analyzer_version=version)


freshness_checks_job = dg.define_asset_job(
    "check_freshness",
    selection=dg.AssetSelection.checks(freshness_checks),
    description="The freshness checks alone, over every partition.",
)
freshness_checks_schedule = dg.ScheduleDefinition(
    name="freshness_checks_schedule",
    job=freshness_checks_job,
    cron_schedule="17 * * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Hourly: the freshness checks, which fail when the daemon falls behind.",
)
