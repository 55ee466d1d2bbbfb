"""GeniusSource and the ``tracks`` asset with the real ``lyricsgenius`` client, against a local
fake Genius (rap_pipeline_tests/fakes/genius_server.py). Nothing of the client is patched: every
request goes over HTTP, so paging, status handling, retries and page scraping are the real ones.
All lyrics here are invented for the tests."""

from __future__ import annotations

import traceback
from collections.abc import Iterator

import dagster as dg
import psycopg
import pytest

from rap_pipeline.core.resources import DatabaseResource
from rap_pipeline.defs.artists.registry import ArtistSpec
from rap_pipeline.defs.tracks.assets import tracks
from rap_pipeline.defs.tracks.genius import GeniusSource
from rap_pipeline.defs.tracks.resources import TrackSourceResource
from rap_pipeline.defs.tracks.sources import FetchResult, TrackSourceError
from rap_pipeline_tests.conftest import add_artists
from rap_pipeline_tests.fakes.genius_server import FakeGenius

TOKEN = "tok-7f3c9a-fake-genius-secret"
ARTIST_ID = 101
ARTIST = "Nova Quill"
OTHER_ID = 202  # another artist Nova Quill features on
DECOY_ID = 303  # found by the search too, but not the artist

_PLACES = ["harbor", "rooftop", "night bus", "corner store", "laundromat", "stairwell", "ferry"]
_THINGS = ["paper crown", "borrowed jacket", "cracked phone", "silver kettle", "spare key"]
_COLORS = ["amber", "violet", "cobalt", "rust", "mint", "charcoal"]


def invented_lyrics(seed: int, performer: str = ARTIST) -> str:
    """Distinct, made-up lyrics (three sections, enough words to be kept)."""
    place = _PLACES[seed % len(_PLACES)]
    thing = _THINGS[seed % len(_THINGS)]
    color = _COLORS[seed % len(_COLORS)]
    return "\n".join(
        [
            "[Verse 1]",
            f"Woke up early by the {place}, counting every {thing} twice",
            f"Take {seed} steps to the {color} light & I'm paying any price",
            f"Mama said the {place} don't wait for nobody moving slow",
            f"So I laced my shoes at {seed} and I let the {color} glow",
            "",
            "[Chorus]",
            f"We keep it moving, keep it moving, through the {place} at night",
            f"Every {thing} is a promise and the {color} feels right",
            "",
            f"[Verse 2: {performer}]",
            f"Second verse for the {thing}, written on a paper plate",
            f"Page {seed} of the notebook and I'm never running late",
        ]
    )


def cleaned(lyrics: str) -> str:
    """What cleaning keeps of invented_lyrics: the lines without headers, stanza breaks kept."""
    return "\n".join(line for line in lyrics.split("\n") if not line.startswith("["))


@pytest.fixture
def server() -> Iterator[FakeGenius]:
    with FakeGenius(token=TOKEN) as fake:
        fake.add_artist(DECOY_ID, "Nova Quill & The Tide")  # first hit of the search
        fake.add_artist(ARTIST_ID, ARTIST)
        fake.add_artist(OTHER_ID, "Basil Ortega")
        fake.add_song(DECOY_ID, 9001, "Not Ours", invented_lyrics(9001))
        yield fake


def source(server: FakeGenius, **overrides) -> GeniusSource:
    settings = {
        "access_token": TOKEN,
        "api_root": server.api_root,
        "public_api_root": server.public_api_root,
        "web_root": server.web_root,
        "sleep_time": 0,
        "max_attempts": 3,
        "backoff_initial": 0.01,
        "backoff_max": 0.05,
        "timeout": 5,
    }
    return GeniusSource(**(settings | overrides))


def fetch(server: FakeGenius, **overrides) -> FetchResult:
    return source(server, **overrides).fetch(ArtistSpec(name=ARTIST))


def by_id(result: FetchResult) -> dict:
    return {int(track.source_id): track for track in result.tracks}


def statuses(server: FakeGenius, path: str) -> list[int]:
    return [request.status for request in server.requests_to(path)]


def add_catalogue(server: FakeGenius, n: int = 3) -> list[int]:
    ids = [1000 + i for i in range(n)]
    for song_id in ids:
        server.add_song(ARTIST_ID, song_id, f"Track {song_id}", invented_lyrics(song_id))
    return ids


# -- listing ---------------------------------------------------------------------------------
def test_fetches_every_page_and_skips_features_and_unreleased(server: FakeGenius) -> None:
    ids = add_catalogue(server, 120)
    server.add_song(
        ARTIST_ID, 5001, "Guest Spot", invented_lyrics(5001), primary_artist_id=OTHER_ID
    )
    server.add_song(
        ARTIST_ID, 5002, "Ferry Talk", invented_lyrics(5002), primary_artist_id=OTHER_ID
    )
    server.add_song(ARTIST_ID, 5003, "Unfinished", invented_lyrics(5003), lyrics_state="unreleased")
    server.add_song(ARTIST_ID, 5004, "Soon Come", "", lyrics_state="unreleased")

    result = fetch(server)

    assert sorted(by_id(result)) == ids
    assert result.failures == []
    for song_id, track in by_id(result).items():
        assert track.lyrics == invented_lyrics(song_id)
        assert track.title == f"Track {song_id}"
        assert track.url == server.songs[song_id].url
    listing = server.requests_to(server.artist_songs_path(ARTIST_ID))
    assert [(r.query["page"], r.query["per_page"]) for r in listing] == [
        ("1", "50"),
        ("2", "50"),
        ("3", "50"),
    ]
    # one page request per kept song; none for features, unreleased songs or the decoy
    pages = [r.path for r in server.requests if not r.path.startswith("/api")]
    assert sorted(pages) == sorted(server.song_path(i) for i in ids)
    assert server.count(server.artist_songs_path(DECOY_ID)) == 0


def test_song_page_is_scraped_like_genius(server: FakeGenius) -> None:
    lyrics = invented_lyrics(7)
    server.add_song(
        ARTIST_ID, 1, "Harbor Lights", lyrics, split=True, release_date="2019-05-03", album="Tides"
    )
    server.add_song(ARTIST_ID, 2, "Quiet Part", "", instrumental=True)
    server.add_song(ARTIST_ID, 3, "Blank Page", "")  # a page without a lyrics section

    tracks_by_id = by_id(fetch(server))

    harbor = tracks_by_id[1]
    # the page header, "You might also like" block and split containers leave no trace
    assert harbor.lyrics == lyrics
    assert (harbor.album, harbor.release_year, harbor.instrumental) == ("Tides", 2019, False)
    assert tracks_by_id[2].instrumental and tracks_by_id[2].lyrics == ""
    assert server.count(server.song_path(2)) == 0  # instrumental: no page fetched
    assert tracks_by_id[3].lyrics == ""  # answered 200 but holds no lyrics: an empty song


def test_token_is_sent_to_the_api_only(server: FakeGenius) -> None:
    add_catalogue(server, 2)
    fetch(server)
    authorized = {r.path: r.authorized for r in server.requests}
    assert authorized[server.artist_songs_path(ARTIST_ID)] is True
    assert not any(ok for path, ok in authorized.items() if not path.startswith("/api-v1/"))


def test_artist_songs_429_and_503_are_retried(server: FakeGenius) -> None:
    ids = add_catalogue(server, 3)
    listing = server.artist_songs_path(ARTIST_ID)
    server.fail(listing, [429, 503], retry_after=1)

    result = fetch(server)

    assert sorted(by_id(result)) == ids
    assert statuses(server, listing) == [429, 503, 200]


def test_error_on_a_later_listing_page_is_retried_without_losing_pages(
    server: FakeGenius,
) -> None:
    ids = add_catalogue(server, 60)
    listing = server.artist_songs_path(ARTIST_ID)
    server.fail(listing, [502], after=1)  # page 1 answers, page 2 fails once

    result = fetch(server)

    assert sorted(by_id(result)) == ids
    assert [(r.query["page"], r.status) for r in server.requests_to(listing)] == [
        ("1", 200),
        ("2", 502),
        ("2", 200),
    ]


def test_retry_after_is_honoured(server: FakeGenius) -> None:
    add_catalogue(server, 1)
    listing = server.artist_songs_path(ARTIST_ID)
    server.fail(listing, [429], retry_after=2)

    # backoff alone waits at most initial + 1 s of jitter; Retry-After asks for 2 s
    fetch(server, backoff_max=2.5)

    first, second = server.requests_to(listing)
    assert (first.status, second.status) == (429, 200)
    assert second.time - first.time >= 1.9


def test_listing_that_keeps_failing_is_a_source_error(server: FakeGenius) -> None:
    add_catalogue(server, 2)
    listing = server.artist_songs_path(ARTIST_ID)
    server.fail_always(listing, 503)

    with pytest.raises(TrackSourceError, match="503"):
        fetch(server)
    assert statuses(server, listing) == [503, 503, 503]


# -- song pages ------------------------------------------------------------------------------
def test_song_page_429_and_500_are_retried(server: FakeGenius) -> None:
    ids = add_catalogue(server, 3)
    page = server.song_path(ids[1])
    server.fail(page, [429, 500], retry_after=1)

    result = fetch(server)

    assert result.failures == []
    assert by_id(result)[ids[1]].lyrics == invented_lyrics(ids[1])
    assert statuses(server, page) == [429, 500, 200]


def test_song_page_connection_reset_is_retried(server: FakeGenius) -> None:
    ids = add_catalogue(server, 2)
    page = server.song_path(ids[0])
    server.fail(page, [FakeGenius.RESET])

    result = fetch(server)

    assert by_id(result)[ids[0]].lyrics == invented_lyrics(ids[0])
    assert statuses(server, page) == [FakeGenius.RESET, 200]


def test_song_page_that_keeps_failing_is_a_fetch_failure(server: FakeGenius) -> None:
    ids = add_catalogue(server, 3)
    page = server.song_path(ids[2])
    server.fail_always(page, 503)

    result = fetch(server)

    assert sorted(by_id(result)) == ids[:2]  # not a track with empty lyrics
    [failure] = result.failures
    assert (failure.source, failure.source_id) == ("genius", str(ids[2]))
    assert failure.title == f"Track {ids[2]}"
    assert failure.url == server.songs[ids[2]].url
    assert "503" in failure.reason
    assert statuses(server, page) == [503, 503, 503]
    assert TOKEN not in repr(result.failures)


def test_song_page_timeout_is_retried_then_a_fetch_failure(server: FakeGenius) -> None:
    ids = add_catalogue(server, 2)
    page = server.song_path(ids[0])
    server.set_delay(page, 0.6)

    result = fetch(server, timeout=0.2)

    assert [f.source_id for f in result.failures] == [str(ids[0])]
    assert sorted(by_id(result)) == ids[1:]
    assert server.count(page) == 3


def test_song_page_404_is_not_retried(server: FakeGenius) -> None:
    ids = add_catalogue(server, 2)
    server.add_song(ARTIST_ID, 4040, "Moved Away", invented_lyrics(4040), has_page=False)

    result = fetch(server)

    assert sorted(by_id(result)) == ids
    [failure] = result.failures
    assert failure.source_id == "4040" and "404" in failure.reason
    assert statuses(server, server.song_path(4040)) == [404]


# -- the token -------------------------------------------------------------------------------
def test_invalid_token_is_a_source_error_that_does_not_leak_it(server: FakeGenius) -> None:
    add_catalogue(server, 2)
    wrong = "wrong-tok-91b2e4-do-not-print"

    with pytest.raises(TrackSourceError) as caught:
        fetch(server, access_token=wrong)

    message = str(caught.value)
    assert "401" in message
    everything = "".join(traceback.format_exception(caught.value))  # with the cause chain
    for secret in (wrong, TOKEN):
        assert secret not in message
        assert secret not in everything
    listing = server.requests_to(server.artist_songs_path(ARTIST_ID))
    assert [(r.status, r.authorized) for r in listing] == [(401, True)]  # not retried
    assert server.count("/", status=200) == 1  # only the artist search answered


def test_missing_token_is_a_source_error(server: FakeGenius) -> None:
    with pytest.raises(TrackSourceError, match="GENIUS_ACCESS_TOKEN"):
        source(server, access_token="")
    with pytest.raises(TrackSourceError, match="GENIUS_ACCESS_TOKEN"):
        TrackSourceResource(kind="genius", genius_api_root=server.api_root).build()
    assert server.requests == []


# -- the tracks asset ------------------------------------------------------------------------
def materialize(server: FakeGenius, database_url: str, instance, slug: str):
    track_source = TrackSourceResource(
        kind="genius",
        genius_access_token=TOKEN,
        genius_api_root=server.api_root,
        genius_public_api_root=server.public_api_root,
        genius_web_root=server.web_root,
        genius_sleep_time_s=0,
        genius_backoff_initial_s=0.01,
        genius_max_attempts=3,
    )
    # A step that raises is retried by the asset's RetryPolicy (30 s, 60 s, 120 s delays, and
    # execute_in_process ignores executor retry config): building the source here first makes
    # a broken source fail the test at once with its own error.
    track_source.build()
    result = dg.materialize(
        [tracks],
        partition_key=slug,
        instance=instance,
        resources={"database": DatabaseResource(url=database_url), "track_source": track_source},
    )
    assert result.success
    [materialization] = result.asset_materializations_for_node("tracks")
    return {key: value.value for key, value in materialization.metadata.items()}


def stored(database_url: str, slug: str) -> dict[str, dict]:
    with psycopg.connect(database_url) as conn:
        cursor = conn.execute(
            "SELECT source_id, title, status, status_reason, lyrics_raw, lyrics_clean, "
            "structure, updated_at FROM tracks WHERE artist_slug = %s AND source = 'genius'",
            (slug,),
        )
        names = [column.name for column in cursor.description]
        return {row[0]: dict(zip(names, row, strict=True)) for row in cursor}


@pytest.mark.timeout(90)  # a failing run would otherwise sit out the RetryPolicy delays
def test_tracks_asset_records_failures_and_refetches_them(
    server: FakeGenius, database_url: str, instance
) -> None:
    [slug] = add_artists(database_url, instance, ARTIST)
    server.add_song(ARTIST_ID, 1, "Harbor Lights", invented_lyrics(1), split=True)
    server.add_song(ARTIST_ID, 2, "Paper Crowns", invented_lyrics(2), release_date="2020-02-02")
    server.add_song(ARTIST_ID, 3, "Static Bloom", invented_lyrics(3))
    server.add_song(ARTIST_ID, 4, "Lobby Talk (Skit)", invented_lyrics(4))
    server.add_song(ARTIST_ID, 5, "Guest Spot", invented_lyrics(5), primary_artist_id=OTHER_ID)
    server.add_song(ARTIST_ID, 6, "Unfinished", invented_lyrics(6), lyrics_state="unreleased")
    server.fail_always(server.song_path(3), 503)

    first = materialize(server, database_url, instance, slug)

    rows = stored(database_url, slug)
    assert {i: (r["status"], r["status_reason"]) for i, r in rows.items() if i != "3"} == {
        "1": ("kept", None),
        "2": ("kept", None),
        "4": ("rejected", "skit"),
    }
    failed = rows["3"]
    assert failed["status"] == "fetch_failed"
    assert "503" in failed["status_reason"] and TOKEN not in failed["status_reason"]
    assert failed["lyrics_raw"] is None and failed["lyrics_clean"] is None
    for song_id in ("1", "2"):
        row = rows[song_id]
        assert row["lyrics_raw"] == invented_lyrics(int(song_id))
        assert row["lyrics_clean"] == cleaned(invented_lyrics(int(song_id)))
        assert "[" not in row["lyrics_clean"]
        assert [s["kind"] for s in row["structure"]] == ["verse", "chorus", "verse"]
    assert (first["kept"], first["rejected"], first["fetch_failed"]) == (2, 1, 1)
    assert statuses(server, server.song_path(3)) == [503, 503, 503]

    server.clear_faults()
    second = materialize(server, database_url, instance, slug)

    again = stored(database_url, slug)
    assert again["3"]["status"] == "kept"
    assert again["3"]["lyrics_clean"] == cleaned(invented_lyrics(3))
    for song_id in ("1", "2", "4"):
        assert again[song_id]["updated_at"] == rows[song_id]["updated_at"]
    assert (second["kept"], second["fetch_failed"]) == (3, 0)
    assert (second["rows_inserted"], second["rows_updated"], second["rows_unchanged"]) == (0, 1, 3)


@pytest.mark.timeout(90)
def test_tracks_asset_keeps_stored_lyrics_when_a_page_fails_later(
    server: FakeGenius, database_url: str, instance
) -> None:
    [slug] = add_artists(database_url, instance, ARTIST)
    server.add_song(ARTIST_ID, 1, "Harbor Lights", invented_lyrics(1))
    server.add_song(ARTIST_ID, 2, "Paper Crowns", invented_lyrics(2))
    materialize(server, database_url, instance, slug)
    before = stored(database_url, slug)
    assert {r["status"] for r in before.values()} == {"kept"}

    server.fail_always(server.song_path(1), 503)
    second = materialize(server, database_url, instance, slug)

    after = stored(database_url, slug)
    assert after == before  # status, lyrics and updated_at untouched
    assert (second["kept"], second["fetch_failed"], second["rows_deleted"]) == (2, 0, 0)
    assert statuses(server, server.song_path(1)) == [200, 503, 503, 503]


# -- Cloudflare in front of the song pages --------------------------------------------------
# The shape of Cloudflare's challenge page (markers only; written for this test).
CLOUDFLARE_PAGE = (
    "<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>"
    '<script src="/cdn-cgi/challenge-platform/h/g/orchestrate/chl_page/v1"></script>'
    "</body></html>"
)


def test_song_page_cloudflare_challenge_is_retried(server: FakeGenius) -> None:
    ids = add_catalogue(server, 2)
    page = server.song_path(ids[0])
    server.fail(page, [403], body=CLOUDFLARE_PAGE, content_type="text/html")

    result = fetch(server)

    assert sorted(by_id(result)) == ids and not result.failures
    assert statuses(server, page) == [403, 200]


def test_a_200_challenge_page_is_a_fetch_failure_not_empty_lyrics(server: FakeGenius) -> None:
    ids = add_catalogue(server, 2)
    page = server.song_path(ids[1])
    server.fail_always(page, 200, body=CLOUDFLARE_PAGE, content_type="text/html")

    result = fetch(server)

    assert sorted(by_id(result)) == ids[:1]  # the song is not stored with empty lyrics
    [failure] = result.failures
    assert failure.source_id == str(ids[1]) and "Cloudflare" in failure.reason
    assert statuses(server, page) == [200, 200, 200]  # retried, then recorded
