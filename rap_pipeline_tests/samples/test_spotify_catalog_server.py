"""The Spotify catalog server and its fault-injecting variant, through the real ``spotipy``
client (client-credentials auth, every request over HTTP), and the bundled sample catalog.

spotipy 2.26 is pointed at the server with ``SpotifyClientCredentials.OAUTH_TOKEN_URL`` (a class
attribute, overridden on the instance) and ``Spotify.prefix``. With only ``retries=0,
status_retries=0``, spotipy's urllib3 ``Retry`` still treats 429/500/502/503/504 as retryable
and, exhausted at once, turns them into ``SpotifyException(429, "Max Retries")`` with no headers
(see ``test_builtin_retry_hides_status_and_retry_after``); a plain ``requests.Session()``
(``requests_session=``) keeps the real status and the ``Retry-After`` header.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import spotipy
from spotipy.cache_handler import MemoryCacheHandler
from spotipy.oauth2 import SpotifyClientCredentials, SpotifyOauthError

from rap_pipeline.core.paths import SAMPLE_CORPUS_DIR
from rap_pipeline.defs.tracks.cleaning import classify, clean_lyrics
from rap_pipeline.samples.spotify_catalog import SAMPLE_CATALOG_PATH, build_sample_catalog
from rap_pipeline.samples.spotify_catalog_server import (
    SEARCH_LIMIT_MAX,
    CatalogServer,
    load_sample_catalog,
)
from rap_pipeline_tests.fakes.spotify_server import (
    CLIENT_ID,
    CLIENT_SECRET,
    FakeSpotify,
    max_requests_in_window,
)

TRACK_KEYS = {
    "album",
    "artists",
    "disc_number",
    "duration_ms",
    "explicit",
    "external_ids",
    "external_urls",
    "href",
    "id",
    "is_local",
    "name",
    "popularity",
    "preview_url",
    "track_number",
    "type",
    "uri",
}


@pytest.fixture(scope="module")
def catalog() -> dict[str, Any]:
    return load_sample_catalog()


@pytest.fixture
def spotify(catalog: dict[str, Any]) -> Iterator[FakeSpotify]:
    with FakeSpotify(catalog) as server:
        yield server


def make_client(
    server: CatalogServer,
    client_id: str = CLIENT_ID,
    client_secret: str = CLIENT_SECRET,
    *,
    timeout: float = 5,
    plain_session: bool = True,
) -> spotipy.Spotify:
    auth = SpotifyClientCredentials(
        client_id, client_secret, cache_handler=MemoryCacheHandler(), requests_timeout=timeout
    )
    auth.OAUTH_TOKEN_URL = server.token_url
    extra: dict[str, Any] = {"requests_session": requests.Session()} if plain_session else {}
    client = spotipy.Spotify(
        auth_manager=auth, retries=0, status_retries=0, requests_timeout=timeout, **extra
    )
    client.prefix = server.api_root
    return client


def _by_name(catalog: dict[str, Any]) -> dict[str, str]:
    return {artist["name"]: artist["id"] for artist in catalog["artists"]}


def _corpus_records() -> list[dict[str, Any]]:
    return [
        json.loads(line)
        for path in sorted(SAMPLE_CORPUS_DIR.glob("*.jsonl"))
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]


def _norm(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", title.casefold()).strip()


# -- token -----------------------------------------------------------------------------------
def test_token_is_obtained_once_and_reused(spotify: FakeSpotify, catalog: dict) -> None:
    client = make_client(spotify)
    track_id = catalog["tracks"][0]["id"]
    client.search('track:"Cold Corners" artist:"Big Tundra"', limit=5)
    client.track(track_id)
    client.artist(catalog["artists"][0]["id"])
    client.search("Kindling", limit=1)
    assert spotify.count("token") == 1
    assert spotify.counts() == {"token": 1, "search": 2, "tracks": 1, "artists": 1}
    assert all(r.status == 200 for r in spotify.requests)


def test_token_answer_and_wrong_credentials(catalog: dict) -> None:
    with CatalogServer(catalog, "id-1", "secret-1", expires_in=120) as server:
        answer = requests.post(
            server.token_url, data={"grant_type": "client_credentials"}, auth=("id-1", "secret-1")
        )
        assert answer.status_code == 200
        token = answer.json()
        assert token["token_type"] == "Bearer" and token["expires_in"] == 120
        assert token["access_token"]

        with pytest.raises(SpotifyOauthError) as raised:
            make_client(server, "id-1", "wrong-secret").search("Thaw", limit=1)
        assert raised.value.error == "invalid_client"
        wrong = requests.post(server.token_url, data={"grant_type": "client_credentials"})
        assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_client"
        no_grant = requests.post(server.token_url, auth=("id-1", "secret-1"))
        assert no_grant.json()["error"] == "unsupported_grant_type"


def test_missing_or_unknown_token_is_401(spotify: FakeSpotify) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic x"}):
        answer = requests.get(spotify.api_root + "search?q=x&type=track", headers=headers)
        assert answer.status_code == 401
        assert answer.json() == {"error": {"status": 401, "message": "Invalid access token"}}


def test_expired_token_is_401_until_a_new_token(spotify: FakeSpotify) -> None:
    client = make_client(spotify)
    client.search("Thaw", limit=1)
    spotify.expire_tokens()
    with pytest.raises(spotipy.SpotifyException) as raised:
        client.search("Thaw", limit=1)
    assert raised.value.http_status == 401
    assert "The access token expired" in raised.value.msg
    client.auth_manager.cache_handler.save_token_to_cache(None)  # what a client does on 401
    assert client.search("Thaw", limit=1)["tracks"]["items"]
    assert spotify.count("token") == 2


def test_server_side_expiry_after_expires_in(catalog: dict) -> None:
    with FakeSpotify(catalog, expires_in=0) as server:
        token = requests.post(
            server.token_url,
            data={"grant_type": "client_credentials"},
            auth=(CLIENT_ID, CLIENT_SECRET),
        ).json()["access_token"]
        answer = requests.get(
            server.api_root + "search?q=x&type=track",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert answer.status_code == 401
        assert answer.json()["error"]["message"] == "The access token expired"


# -- search ----------------------------------------------------------------------------------
def test_search_answers_spotify_shaped_pages(spotify: FakeSpotify) -> None:
    client = make_client(spotify)
    result = client.search('track:"Cold Corners" artist:"Big Tundra"', limit=3)
    page = result["tracks"]
    assert set(page) == {"href", "items", "limit", "next", "offset", "previous", "total"}
    assert page["limit"] == 3 and page["offset"] == 0 and page["previous"] is None
    assert page["total"] > 3 and page["next"]
    first = page["items"][0]
    assert set(first) == TRACK_KEYS
    assert first["name"] == "Cold Corners" and first["type"] == "track"
    assert first["artists"][0]["name"] == "Big Tundra"
    assert first["uri"] == f"spotify:track:{first['id']}"
    assert re.fullmatch(r"[0-9A-Za-z]{22}", first["id"])
    assert {"id", "name", "release_date", "release_date_precision", "album_type", "artists"} <= set(
        first["album"]
    )
    assert re.fullmatch(r"[A-Z]{2}[0-9A-Z]{3}\d{7}", first["external_ids"]["isrc"])
    # loosely related: the live version and other songs of the artist come too
    names = [item["name"] for item in page["items"]]
    assert "Cold Corners - Live" in names

    following = client.next(page)["tracks"]
    assert following["offset"] == 3 and following["previous"]
    assert not {i["id"] for i in following["items"]} & {i["id"] for i in page["items"]}


def test_search_limit_is_capped_at_ten(spotify: FakeSpotify) -> None:
    client = make_client(spotify)
    assert len(client.search("hip hop", limit=SEARCH_LIMIT_MAX)["tracks"]["items"]) <= 10
    for limit in (11, 0, 50):
        with pytest.raises(spotipy.SpotifyException) as raised:
            client.search("Thaw", limit=limit)
        assert raised.value.http_status == 400
        assert "Invalid limit" in raised.value.msg


def test_search_is_not_exact_only(spotify: FakeSpotify, catalog: dict) -> None:
    """For a song absent from the catalog, the top hit is its decoy: close, but wrong."""
    client = make_client(spotify)
    tracks = {t["id"]: t for t in catalog["tracks"]}
    absent = [e for e in catalog["expected"].values() if e["variation"] == "absent"]
    assert {e["decoy"] for e in absent} == {"same_artist_similar_title", "other_artist_same_title"}
    for entry in absent:
        query = f'track:"{entry["title"]}" artist:"{entry["artist"]}"'
        items = client.search(query, limit=10)["tracks"]["items"]
        assert items, query
        assert items[0]["id"] == entry["decoy_track_id"], query
        decoy = tracks[entry["decoy_track_id"]]
        same_artist = _by_name(catalog)[entry["artist"]] in decoy["artist_ids"]
        same_title = _norm(decoy["name"]) == _norm(entry["title"])
        assert same_artist != same_title  # exactly one of the two matches


def test_search_plain_words_and_filters(spotify: FakeSpotify) -> None:
    client = make_client(spotify)
    items = client.search("Mamas Kitchen K.O. the Poet", limit=5)["tracks"]["items"]
    assert items[0]["name"] == "Mamas Kitchen"
    years = client.search("year:1990-1995", limit=10)["tracks"]["items"]
    assert years and all(1990 <= int(i["album"]["release_date"][:4]) <= 1995 for i in years)
    artists = client.search("artist:Lil Ember", type="artist", limit=2)["artists"]["items"]
    assert artists[0]["name"] == "Lil Ember"


# -- lookups ---------------------------------------------------------------------------------
def test_track_and_artist_lookups(spotify: FakeSpotify, catalog: dict) -> None:
    client = make_client(spotify)
    track = catalog["tracks"][0]
    answer = client.track(track["id"])
    assert set(answer) == TRACK_KEYS and answer["name"] == track["name"]
    assert client.track(f"spotify:track:{track['id']}")["id"] == track["id"]

    artist = catalog["artists"][0]
    found = client.artist(artist["id"])
    assert found["name"] == artist["name"] and found["type"] == "artist"
    assert found["followers"]["total"] == artist["followers"]
    assert found["genres"] == artist["genres"] and found["popularity"] == artist["popularity"]
    assert found["uri"] == f"spotify:artist:{artist['id']}"

    for call, bad in ((client.track, "0" * 22), (client.artist, "Z" * 22)):
        with pytest.raises(spotipy.SpotifyException) as raised:
            call(bad)
        assert raised.value.http_status == 404 and "Resource not found" in raised.value.msg
    with pytest.raises(spotipy.SpotifyException) as raised:
        client.track("abc123")
    assert raised.value.http_status == 400 and "Invalid base62 id" in raised.value.msg


def test_removed_endpoints_are_403(spotify: FakeSpotify, catalog: dict) -> None:
    client = make_client(spotify)
    track_id, artist_id = catalog["tracks"][0]["id"], catalog["artists"][0]["id"]
    calls = [
        lambda: client.audio_features([track_id]),
        lambda: client.audio_features(track_id),
        lambda: client.recommendations(seed_tracks=[track_id]),
        lambda: client.tracks([track_id]),
        lambda: client.artists([artist_id]),
        lambda: client.artist_top_tracks(artist_id),
    ]
    for call in calls:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # spotipy marks some deprecated
            with pytest.raises(spotipy.SpotifyException) as raised:
                call()
        assert raised.value.http_status == 403
    assert spotify.count("audio-features", status=403) == 2
    assert spotify.count("tracks-batch") == 1 and spotify.count("artists-batch") == 1
    assert spotify.count("recommendations") == 1


# -- faults ----------------------------------------------------------------------------------
def test_injected_429_carries_retry_after(spotify: FakeSpotify) -> None:
    client = make_client(spotify)
    spotify.fail_next("search", status=429, retry_after=7)
    with pytest.raises(spotipy.SpotifyException) as raised:
        client.search("Thaw", limit=1)
    assert raised.value.http_status == 429
    assert raised.value.headers["Retry-After"] == "7"
    assert "API rate limit exceeded" in raised.value.msg
    assert client.search("Thaw", limit=1)["tracks"]["items"]  # only the next one failed
    assert spotify.count("search", status=429) == 1 and spotify.count("search", status=200) == 1


def test_injected_500_and_forbid(spotify: FakeSpotify, catalog: dict) -> None:
    client = make_client(spotify)
    spotify.fail_next("search", status=500, times=2)
    for _ in range(2):
        with pytest.raises(spotipy.SpotifyException) as raised:
            client.search("Thaw", limit=1)
        assert raised.value.http_status == 500
    spotify.forbid("artists")
    with pytest.raises(spotipy.SpotifyException) as raised:
        client.artist(catalog["artists"][0]["id"])
    assert raised.value.http_status == 403
    assert client.track(catalog["tracks"][0]["id"])  # other endpoints unaffected
    spotify.allow("artists")
    assert client.artist(catalog["artists"][0]["id"])


def test_builtin_retry_hides_status_and_retry_after(spotify: FakeSpotify) -> None:
    """spotipy with its own session and retries=0: 429 and 500 both surface as 429 "Max
    Retries" with no headers, so a client cannot see Retry-After that way."""
    client = make_client(spotify, plain_session=False)
    for status in (429, 500):
        spotify.fail_next("search", status=status, retry_after=3)
        with pytest.raises(spotipy.SpotifyException) as raised:
            client.search("Thaw", limit=1)
        assert raised.value.http_status == 429 and "Max Retries" in raised.value.msg
        assert not raised.value.headers
    assert spotify.count("search") == 2  # no retry was made


def test_delay_and_reset(spotify: FakeSpotify) -> None:
    client = make_client(spotify, timeout=0.2)
    client.search("Thaw", limit=1)  # token first
    spotify.delay("search", 0.5)
    with pytest.raises(requests.exceptions.Timeout):
        client.search("Thaw", limit=1)
    spotify.delay("search", 0)
    spotify.fail_next("search", status=FakeSpotify.RESET)
    with pytest.raises(requests.exceptions.ConnectionError):
        client.search("Thaw", limit=1)
    assert client.search("Thaw", limit=1)["tracks"]["items"]
    assert [r.status for r in spotify.requests_to("search")] == [200, 200, -1, 200]


def test_max_rate_on_a_scripted_log() -> None:
    times = [0.0, 0.125, 0.25, 1.0, 1.125, 1.25, 1.375, 3.0]  # exact in binary
    assert max_requests_in_window(times, 1.0) == 4  # [1.0, 2.0)
    assert max_requests_in_window(times, 1.5) == 7  # [0.0, 1.5)
    assert max_requests_in_window(times, 0.25) == 2  # [1.0, 1.25) holds 1.0 and 1.125
    assert max_requests_in_window([0.0, 1.0], 1.0) == 1  # half-open window
    assert max_requests_in_window(reversed(times), 5.0) == 8
    assert max_requests_in_window([], 1.0) == 0


def test_max_rate_and_reset_log(spotify: FakeSpotify) -> None:
    client = make_client(spotify)
    for _ in range(5):
        client.search("Thaw", limit=1)
    assert spotify.max_rate(60.0) == 5  # the token request is not an API request
    assert spotify.max_rate(60.0, endpoint="token") == 1
    assert spotify.max_rate(1e-9) == 1
    spotify.reset_log()
    assert spotify.requests == [] and spotify.max_rate() == 0


# -- the sample catalog ----------------------------------------------------------------------
def test_sample_catalog_matches_its_builder(catalog: dict) -> None:
    assert build_sample_catalog(SAMPLE_CORPUS_DIR) == catalog, (
        "regenerate with: python -m rap_pipeline.samples.spotify_catalog"
    )
    assert SAMPLE_CATALOG_PATH.stat().st_size < 200_000
    assert set(catalog) == {"version", "artists", "tracks", "expected", "notes"}


def test_every_kept_corpus_song_is_in_the_catalog_but_the_absences(catalog: dict) -> None:
    tracks = {t["id"]: t for t in catalog["tracks"]}
    artist_ids = _by_name(catalog)
    expected = catalog["expected"]
    absent = []
    for record in _corpus_records():
        cleaned = clean_lyrics(record["lyrics"] or "", record["title"])
        kept = classify(record["title"], cleaned, bool(record.get("instrumental"))) is None
        entry = expected[record["source_id"]]
        assert entry["kept"] == kept, record["source_id"]
        if not kept:
            continue
        if entry["variation"] == "absent":
            absent.append(record)
            own = [t for t in tracks.values() if artist_ids[record["artist"]] in t["artist_ids"]]
            assert _norm(record["title"]) not in {_norm(t["name"]) for t in own}
            assert entry["decoy_track_id"] in tracks
            continue
        track = tracks[entry["track_id"]]
        assert track["artist_ids"][0] == artist_ids[record["artist"]]
        assert _norm(record["title"])[:4] in _norm(track["name"])
    assert len(absent) == len({r["artist"] for r in _corpus_records()})  # one per artist
    variations = {e["variation"] for e in expected.values()}
    assert {"exact", "feat", "remaster", "case", "punctuation", "absent"} <= variations
    assert sum(1 for t in tracks.values() if not t["isrc"]) == 2
    assert any(t["album"]["release_date_precision"] == "year" for t in tracks.values())


def test_server_does_not_serve_the_answer_key(spotify: FakeSpotify, catalog: dict) -> None:
    client = make_client(spotify)
    raw = json.dumps(client.search("Cold Corners", limit=10))
    assert "expected" not in raw and "variation" not in raw and "sample:" not in raw
