"""The staleness and retry sensors and the weekly re-enrichment schedule, evaluated with
Dagster's own contexts against rows in the real database."""

import datetime as dt

import dagster as dg
import psycopg

from rap_pipeline.core.resources import DatabaseResource
from rap_pipeline.defs.analyses import llm
from rap_pipeline.defs.analyses.sensors import analysis_retry_sensor
from rap_pipeline.defs.artists import due
from rap_pipeline.defs.artists.partitions import PARTITIONS_PER_RUN, range_tags
from rap_pipeline.defs.artists.sensors import failed_partitions_sensor
from rap_pipeline.defs.spotify.resources import SpotifyResource
from rap_pipeline.defs.spotify.sensors import spotify_refresh_sensor, weekly_spotify_reenrichment
from rap_pipeline_tests.conftest import add_artists

SOON = dt.timedelta(hours=1)  # not due during the first ticks, however slow they are
SPOTIFY = SpotifyResource(client_id="id", client_secret="secret", stale_after_days=30)


def _track(conn: psycopg.Connection, slug: str, n: int) -> int:
    return conn.execute(
        "INSERT INTO tracks (artist_slug, source, source_id, title, status, lyrics_clean, "
        "lyrics_hash) VALUES (%s, 'corpus', %s, %s, 'kept', 'words', %s) RETURNING id",
        (slug, f"{slug}/{n}", f"Song {n}", f"hash-{n}"),
    ).fetchone()[0]


def _spotify_row(conn, track_id: int, slug: str, status: str, **times: dt.timedelta) -> None:
    """A spotify_tracks row whose times are given as offsets from now."""
    now = conn.execute("SELECT now()").fetchone()[0]
    at = {name: now + offset for name, offset in times.items()}
    conn.execute(
        "INSERT INTO spotify_tracks (track_id, artist_slug, status, source, payload_version, "
        "checked_at, enriched_at, retry_after, query_title, spotify_track_id, error) "
        "VALUES (%s, %s, %s, 'spotify', 1, %s, %s, %s, 'q', %s, %s)",
        (
            track_id,
            slug,
            status,
            at.get("checked_at", now),
            at.get("enriched_at"),
            at.get("retry_after"),
            "sp1" if status == "matched" else None,
            "boom" if status == "error" else None,
        ),
    )


def _spotify_tick(instance, database_url, cursor=None):
    with dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"database": DatabaseResource(url=database_url), "spotify": SPOTIFY},
    ) as context:
        return spotify_refresh_sensor(context)


def _requested(result) -> list[tuple[list[str], dict]]:
    return [
        (
            [key.to_user_string() for key in request.asset_selection],
            {k: v for k, v in request.tags.items() if k.startswith("dagster/asset_partition")},
        )
        for request in result.run_requests
    ]


def test_spotify_sensor_requests_each_partition_once_when_its_data_comes_due(
    database_url: str, instance: dg.DagsterInstance
):
    fresh, stale, missed, later = add_artists(
        database_url, instance, "Fresh One", "Stale Two", "Missed Three", "Later Four"
    )
    day = dt.timedelta(days=1)
    with psycopg.connect(database_url) as conn:
        _spotify_row(conn, _track(conn, fresh, 1), fresh, "matched", enriched_at=-10 * day)
        _spotify_row(conn, _track(conn, stale, 1), stale, "matched", enriched_at=-31 * day)
        _spotify_row(conn, _track(conn, missed, 1), missed, "not_found", retry_after=-day)
        _spotify_row(conn, _track(conn, later, 1), later, "not_found", retry_after=SOON)

    first = _spotify_tick(instance, database_url)
    # stale and missed are neighbours in the partition order: one run over both
    assert _requested(first) == [(["spotify_tracks"], range_tags(stale, missed))]

    second = _spotify_tick(instance, database_url, first.cursor)
    assert not second.run_requests  # requested once, not on every tick until the run ends
    assert "came due since" in second.skip_reason.skip_message

    with psycopg.connect(database_url) as conn:  # the retry time of "later" comes
        conn.execute(
            "UPDATE spotify_tracks SET retry_after = now() WHERE artist_slug = %s", (later,)
        )
    third = _spotify_tick(instance, database_url, second.cursor)
    assert _requested(third) == [(["spotify_tracks"], range_tags(later, later))]

    # the weekly schedule ignores the cursor: everything due now, in batched runs
    with dg.build_schedule_context(
        instance=instance,
        resources={"database": DatabaseResource(url=database_url), "spotify": SPOTIFY},
    ) as schedule_context:
        weekly = weekly_spotify_reenrichment(schedule_context)
    assert [r.tags["dagster/asset_partition_range_start"] for r in weekly] == [stale]
    assert [r.tags["dagster/asset_partition_range_end"] for r in weekly] == [later]


def test_spotify_sensor_skips_without_credentials(database_url, instance):
    with dg.build_sensor_context(
        instance=instance,
        resources={"database": DatabaseResource(url=database_url), "spotify": SpotifyResource()},
    ) as context:
        result = spotify_refresh_sensor(context)
    assert result.skip_reason.skip_message == "Spotify is not configured"


def test_a_tick_is_capped_and_the_rest_comes_on_the_next_tick(
    database_url: str, instance: dg.DagsterInstance, monkeypatch
):
    names = [f"Artist {n:03d}" for n in range(2 * due.MAX_RUNS_PER_TICK * PARTITIONS_PER_RUN)]
    slugs = add_artists(database_url, instance, *names)
    with psycopg.connect(database_url) as conn:
        for n, slug in enumerate(slugs):  # comes due one after the other, in partition order
            _spotify_row(
                conn,
                _track(conn, slug, 1),
                slug,
                "not_found",
                retry_after=dt.timedelta(minutes=-1000 + n),
            )
    first = _spotify_tick(instance, database_url)
    assert len(first.run_requests) == due.MAX_RUNS_PER_TICK
    covered = due.MAX_RUNS_PER_TICK * PARTITIONS_PER_RUN
    assert first.run_requests[-1].tags["dagster/asset_partition_range_end"] == slugs[covered - 1]
    second = _spotify_tick(instance, database_url, first.cursor)
    assert second.run_requests[0].tags["dagster/asset_partition_range_start"] == slugs[covered]
    assert second.run_requests[-1].tags["dagster/asset_partition_range_end"] == slugs[-1]
    assert not _spotify_tick(instance, database_url, second.cursor).run_requests


def test_analysis_retry_sensor_asks_only_the_analyzer_whose_backoff_expired(
    database_url: str, instance: dg.DagsterInstance
):
    ready, waiting = add_artists(database_url, instance, "Ready One", "Waiting Two")
    with psycopg.connect(database_url) as conn:
        for slug, when in ((ready, "now() - interval '1 minute'"), (waiting, "now() + '1 day'")):
            conn.execute(
                "INSERT INTO analyses (track_id, artist_slug, analyzer, analyzer_version, method,"
                " input_hash, status, error, error_class, next_attempt_at) VALUES "
                f"(%s, %s, 'llm', %s, 'openai:m', 'h', 'failed', 'x', 'outage', {when})",
                (_track(conn, slug, 1), slug, llm.PROMPT_VERSION),
            )
        # a failure of an older analyzer version is not asked again
        conn.execute(
            "INSERT INTO analyses (track_id, artist_slug, analyzer, analyzer_version, method,"
            " input_hash, status, error, error_class, next_attempt_at) VALUES "
            "(%s, %s, 'llm', 'old', 'openai:m', 'h', 'failed', 'x', 'outage', now())",
            (_track(conn, waiting, 2), waiting),
        )
    context = dg.build_sensor_context(
        instance=instance, resources={"database": DatabaseResource(url=database_url)}
    )
    result = analysis_retry_sensor(context)
    assert _requested(result) == [(["llm_analysis"], range_tags(ready, ready))]


def test_failed_partitions_sensor_reruns_only_the_asset_that_failed(
    database_url: str, instance: dg.DagsterInstance
):
    (slug,) = add_artists(database_url, instance, "Broke Once")
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO partition_failures (asset, artist_slug, error_class, message, "
            "next_attempt_at) VALUES ('lyric_embeddings', %s, 'OperationalError', 'x', now())",
            (slug,),
        )
    context = dg.build_sensor_context(
        instance=instance, resources={"database": DatabaseResource(url=database_url)}
    )
    result = failed_partitions_sensor(context)
    assert _requested(result) == [(["lyric_embeddings"], range_tags(slug, slug))]
