"""The Genius source behind the Redis guard: cached re-runs, shared rate, breaker."""

import uuid
from collections.abc import Iterator

import dagster as dg
import pytest

from rap_pipeline.core.api_guard import ApiGuard
from rap_pipeline.core.resources import DatabaseResource, RedisResource
from rap_pipeline.core.services import ServiceURLs
from rap_pipeline.defs.artists.registry import ArtistSpec
from rap_pipeline.defs.tracks.assets import tracks
from rap_pipeline.defs.tracks.genius import GeniusSource, genius_policy
from rap_pipeline.defs.tracks.resources import TrackSourceResource
from rap_pipeline_tests.conftest import add_artists
from rap_pipeline_tests.defs.tracks.test_genius import ARTIST, ARTIST_ID, TOKEN, invented_lyrics
from rap_pipeline_tests.fakes.genius_server import FakeGenius


@pytest.fixture
def server() -> Iterator[FakeGenius]:
    with FakeGenius(token=TOKEN) as fake:
        fake.add_artist(ARTIST_ID, ARTIST)
        for song_id in range(1, 8):
            fake.add_song(ARTIST_ID, song_id, f"Song {song_id}", invented_lyrics(song_id))
        yield fake


def guarded_source(server: FakeGenius, redis_url: str, **policy) -> GeniusSource:
    guard = ApiGuard(redis_url, genius_policy(**policy), namespace=uuid.uuid4().hex)
    return GeniusSource(
        TOKEN,
        api_root=server.api_root,
        public_api_root=server.public_api_root,
        web_root=server.web_root,
        backoff_initial=0.01,
        backoff_max=0.05,
        max_attempts=3,
        guard=guard,
    )


def test_a_second_materialization_makes_no_http_call(
    server: FakeGenius, embedded: ServiceURLs, database_url: str, instance: dg.DagsterInstance
):
    (slug,) = add_artists(database_url, instance, ARTIST)
    resources = {
        "database": DatabaseResource(url=database_url),
        "track_source": TrackSourceResource(
            kind="genius",
            genius_access_token=TOKEN,
            genius_api_root=server.api_root,
            genius_public_api_root=server.public_api_root,
            genius_web_root=server.web_root,
            genius_requests_per_s=100.0,
            redis=RedisResource(url=embedded.redis_url),
        ),
    }
    # a namespace of its own: flush this test's Genius keys from the shared test Redis first
    client = RedisResource(url=embedded.redis_url).client()
    for key in client.scan_iter("rap:v1:*:genius:*"):
        client.delete(key)
    assert dg.materialize(
        [tracks], partition_key=slug, instance=instance, resources=resources
    ).success
    first = len(server.requests)
    assert first == 1 + 1 + 7  # artist search, one page of songs, seven song pages
    assert dg.materialize(
        [tracks], partition_key=slug, instance=instance, resources=resources
    ).success
    assert len(server.requests) == first  # all from the cache


def test_requests_keep_to_the_shared_rate(server: FakeGenius, embedded: ServiceURLs):
    source = guarded_source(server, embedded.redis_url, requests_per_s=20.0)
    result = source.fetch(ArtistSpec(name=ARTIST))
    assert len(result.tracks) == 7
    times = sorted(r.time for r in server.requests)
    assert len(times) == 9 and times[-1] - times[0] >= 8 * 0.05 * 0.9


def test_an_open_breaker_stops_calls(server: FakeGenius, embedded: ServiceURLs):
    for song_id in range(1, 8):
        server.fail_always(server.song_path(song_id), 503)
    source = guarded_source(server, embedded.redis_url, requests_per_s=1000.0)
    result = source.fetch(ArtistSpec(name=ARTIST))
    assert result.tracks == [] and len(result.failures) == 7
    # 5 failed requests in a row (503s, and resets of the connections the fake drops after
    # them) open the breaker: the later songs fail without reaching the server
    assert source.guard.counters()["breaker_opened"] == 1
    for song_id in range(3, 8):
        assert server.count(server.song_path(song_id)) == 0
    assert any("paused" in failure.reason for failure in result.failures)
