"""The ``tracks`` asset: an artist's tracks with cleaned lyrics, one partition per artist."""

import time

import dagster as dg

from rap_pipeline.core.automation import keep_fresh
from rap_pipeline.core.resources import DatabaseResource
from rap_pipeline.defs.artists.batches import (
    PartitionError,
    PartitionOutcome,
    materialize_partitions,
)
from rap_pipeline.defs.artists.partitions import BATCHED_BACKFILLS, artists_partitions
from rap_pipeline.defs.artists.registry import get_artist
from rap_pipeline.defs.tracks.checks import TRACK_CHECK_SPECS, run_track_checks
from rap_pipeline.defs.tracks.resources import TrackSourceResource
from rap_pipeline.defs.tracks.sources import SourceConfigError
from rap_pipeline.defs.tracks.store import partition_counts, prepare_rows, write_partition


def _preview(rows: list, limit: int = 5) -> str:
    lines = ["| title | year | words | first line |", "|---|---|---|---|"]
    for row in rows[:limit]:
        first = (row.lyrics_clean or "").split("\n", 1)[0][:60].replace("|", "/")
        lines.append(f"| {row.title} | {row.release_year or ''} | {row.word_count} | {first} |")
    return "\n".join(lines)


@dg.asset(
    partitions_def=artists_partitions,
    group_name="tracks",
    kinds={"postgres", "python"},
    code_version="1",
    check_specs=TRACK_CHECK_SPECS,
    pool="lyrics_source",
    retry_policy=dg.RetryPolicy(
        max_retries=3, delay=30, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
    ),
    automation_condition=keep_fresh(),
    backfill_policy=BATCHED_BACKFILLS,
)
def tracks(
    context: dg.AssetExecutionContext,
    database: DatabaseResource,
    track_source: TrackSourceResource,
) -> dg.MaterializeResult:
    """An artist's tracks with cleaned lyrics (table ``tracks``), from Genius or a local corpus.

    Every listed track gets a row: ``kept``, ``rejected`` with a reason (skit, remix,
    live_version, not_a_song, instrumental, empty, too_short, oversized, not_lyrics,
    undecodable, duplicate_lyrics), or ``fetch_failed`` (retried next run, never stored as
    empty). Each partition is written in one transaction; unchanged rows are not touched.

    Automation: materialized for a new partition or when its upstream partition was updated,
    never past a failed blocking check.
    """
    source = _build_source(track_source)

    def materialize_one(slug: str) -> PartitionOutcome:
        started = time.monotonic()
        with database.connect() as conn:
            try:
                artist = get_artist(conn, slug)
            except LookupError as exc:
                raise PartitionError(str(exc)) from exc
        try:
            fetched = source.fetch(artist)
        except SourceConfigError as exc:
            raise dg.Failure(str(exc), allow_retries=False) from exc
        fetched_s = time.monotonic() - started
        rows = prepare_rows(slug, fetched)
        with database.connect() as conn:
            written = write_partition(conn, slug, source.name, rows, fetched.failures)
            counts = partition_counts(conn, slug)
            check_results = run_track_checks(conn, slug)
        for problem in fetched.invalid_records[:20]:
            context.log.warning("%s: unreadable corpus record %s", slug, problem)
        kept = [row for row in rows if row.status == "kept"]
        rejected = {k: v for k, v in sorted(counts.items()) if k not in ("kept", "fetch_failed")}
        return PartitionOutcome(
            metadata={
                "artist": artist.name,
                "source": source.name,
                "kept": counts["kept"],
                "rejected": sum(rejected.values()),
                "rejected_by_reason": rejected,
                "fetch_failed": counts["fetch_failed"],
                "invalid_records": len(fetched.invalid_records),
                "rows_inserted": written.inserted,
                "rows_updated": written.updated,
                "rows_unchanged": written.unchanged,
                "rows_deleted": written.deleted,
                "fetch_seconds": round(fetched_s, 3),
                "total_seconds": round(time.monotonic() - started, 3),
                "preview": dg.MetadataValue.md(_preview(kept)),
            },
            check_results=check_results,
        )

    return materialize_partitions(context, database, materialize_one)


def _build_source(track_source: TrackSourceResource):
    try:
        return track_source.build()
    except SourceConfigError as exc:
        # configuration problems: fail now with the message instead of retrying for minutes
        raise dg.Failure(str(exc), allow_retries=False) from exc
