"""Tracks from Genius through the real ``lyricsgenius`` client.

lyricsgenius does not check HTTP status codes: an API error surfaces as an ``AssertionError``
("Unexpected response status code") and an error page in place of a song page as missing
lyrics (``None``). A response hook on the client's requests session records the status of
every response, so both cases are recognised here, retried with exponential backoff (honouring
``Retry-After``), and a song that still fails is reported as a fetch failure, never as an
empty or rejected song.

Which songs are collected: every song the artist is the primary artist of, all pages of
``/artists/:id/songs``; songs whose lyrics Genius marks as not complete (``lyrics_state``
other than "complete") are skipped as unreleased. Skits, remixes, live versions and non-song
pages are then rejected by the title rules in ``cleaning.py``, so they are recorded, not lost.
"""

from __future__ import annotations

import functools
import logging
import threading
from dataclasses import dataclass
from typing import Any

import lyricsgenius
import requests

from rap_pipeline.core.api_guard import ApiGuard, CircuitOpenError, ProviderPolicy
from rap_pipeline.core.backoff import call_with_retries
from rap_pipeline.defs.artists.registry import ArtistSpec
from rap_pipeline.defs.artists.slugs import slugify
from rap_pipeline.defs.tracks.sources import (
    FetchFailure,
    FetchResult,
    RawTrack,
    SourceConfigError,
    TrackSource,
    TrackSourceError,
    parse_release_date,
)

log = logging.getLogger(__name__)

# lyricsgenius turns a song URL into a page path by removing this prefix, whatever WEB_ROOT is.
_CANONICAL_WEB_ROOT = "https://genius.com/"
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
DAY_S = 86_400


def genius_policy(requests_per_s: float = 5.0) -> ProviderPolicy:
    """Genius publishes no rate limit: 5 requests/s shared by all runs is a conservative
    default (TrackSourceResource.genius_requests_per_s), not a measured one."""
    return ProviderPolicy(
        name="genius",
        requests_per_s=requests_per_s,
        cache_ttl_s={"search_artist": 7 * DAY_S, "artist_songs": DAY_S, "song_page": 30 * DAY_S},
    )


class GeniusHTTPError(RuntimeError):
    def __init__(
        self, status: int, what: str, retry_after: float | None = None, cloudflare: bool = False
    ):
        by = " (a Cloudflare challenge page)" if cloudflare else ""
        super().__init__(f"Genius answered HTTP {status} for {what}{by}")
        self.status = status
        self.retry_after = retry_after
        self.cloudflare = cloudflare

    @property
    def retryable(self) -> bool:
        # Cloudflare challenges a client now and then (a 403, or a 200 "Just a moment..."
        # page); another try later usually passes. A plain 403 from Genius itself does not.
        return self.status in RETRYABLE_STATUSES or self.cloudflare


def _is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, GeniusHTTPError):
        return exc.retryable
    return isinstance(exc, requests.Timeout | requests.ConnectionError)


@dataclass
class _LastResponse:
    status: int = 0
    retry_after: float | None = None
    cloudflare: bool = False


def _is_cloudflare_challenge(response: requests.Response) -> bool:
    """Cloudflare's bot check, which answers instead of the site (header documented by
    Cloudflare; the page markers are those of its challenge and block pages)."""
    if response.headers.get("cf-mitigated") == "challenge":
        return True
    if "html" not in response.headers.get("Content-Type", ""):
        return False
    head = response.text[:4000]
    return "challenge-platform" in head or "<title>Just a moment...</title>" in head


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class GeniusSource(TrackSource):
    name = "genius"

    def __init__(
        self,
        access_token: str,
        api_root: str = "https://api.genius.com/",
        public_api_root: str = "https://genius.com/api/",
        web_root: str = "https://genius.com/",
        timeout: float = 10,
        sleep_time: float = 0.2,
        max_attempts: int = 5,
        backoff_initial: float = 1.0,
        backoff_max: float = 60.0,
        guard: ApiGuard | None = None,
    ):
        if not access_token:
            raise SourceConfigError("Genius needs an access token: set GENIUS_ACCESS_TOKEN")
        self.client = lyricsgenius.Genius(
            access_token,
            timeout=timeout,
            sleep_time=sleep_time,
            retries=0,  # retries are ours: lyricsgenius cannot see 429s
            remove_section_headers=False,
            skip_non_songs=False,
        )
        self.client.API_ROOT = _with_slash(api_root)
        self.client.PUBLIC_API_ROOT = _with_slash(public_api_root)
        self.client.WEB_ROOT = _with_slash(web_root)
        self._local = threading.local()
        # the client's own requests session; hooks are public requests API
        self.client._session.hooks["response"].append(self._remember)
        # with a guard, the shared Redis limiter paces requests instead of lyricsgenius' sleep
        self.guard = guard
        if guard is not None:
            self.client.sleep_time = 0
        self.max_attempts = max_attempts
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max

    # -- HTTP status bookkeeping ---------------------------------------------------------
    def _remember(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._local.last = _LastResponse(
            response.status_code, _retry_after(response), _is_cloudflare_challenge(response)
        )

    def _last(self) -> _LastResponse:
        return getattr(self._local, "last", _LastResponse())

    def _call(self, what: str, function: Any, *args: Any, **kwargs: Any) -> Any:
        """One client call with retries; raises GeniusHTTPError for an error status."""

        def request() -> Any:
            self._local.last = _LastResponse()
            try:
                value = function(*args, **kwargs)
            except AssertionError as exc:  # lyricsgenius' way of saying "not 200"
                last = self._last()
                raise GeniusHTTPError(
                    last.status or 0, what, last.retry_after, last.cloudflare
                ) from exc
            last = self._last()
            if last.status >= 400 or last.cloudflare:
                raise GeniusHTTPError(last.status, what, last.retry_after, last.cloudflare)
            return value

        return call_with_retries(
            request,
            guard=self.guard,
            is_retryable=_is_retryable,
            max_attempts=self.max_attempts,
            initial=self.backoff_initial,
            maximum=self.backoff_max,
        )

    def _cached(self, endpoint: str, request: Any, fetch: Any) -> Any:
        """Cache-aside through the guard (successful answers only), or a plain call."""
        if self.guard is None:
            return fetch()
        return self.guard.cached(endpoint, request, fetch, is_not_found=lambda value: False)

    # -- listing -------------------------------------------------------------------------
    def find_artist_id(self, artist: ArtistSpec) -> int:
        if artist.genius_artist_id:
            return artist.genius_artist_id
        found = self._cached(
            "search_artist",
            artist.name,
            lambda: self._call(
                f"artist search {artist.name!r}", self.client.search_artists, artist.name
            ),
        )
        for section in found.get("sections", []):
            for hit in section.get("hits", []):
                result = hit.get("result", {})
                if result.get("name") and slugify(result["name"]) == artist.slug:
                    return int(result["id"])
        raise SourceConfigError(
            f"Genius has no artist named {artist.name!r}; set genius_artist_id in the artists file"
        )

    def list_songs(self, artist_id: int) -> list[dict[str, Any]]:
        songs: list[dict[str, Any]] = []
        page: int | None = 1
        while page:
            response = self._cached(
                "artist_songs",
                [artist_id, page],
                functools.partial(
                    self._call,
                    f"songs of artist {artist_id}, page {page}",
                    self.client.artist_songs,
                    artist_id,
                    per_page=50,
                    page=page,
                    sort="title",
                ),
            )
            songs.extend(response.get("songs") or [])
            page = response.get("next_page")
        # a listing that shifts while it is paged can repeat a song: keep its first copy
        unique: dict[Any, dict[str, Any]] = {}
        for song in songs:
            unique.setdefault(song["id"], song)
        return list(unique.values())

    # -- songs ---------------------------------------------------------------------------
    def fetch_lyrics(self, song: dict[str, Any]) -> str:
        path = str(song.get("path") or "").lstrip("/")
        lyrics = self._cached(
            "song_page",
            path,
            lambda: self._call(
                f"song page {path}", self.client.lyrics, song_url=_CANONICAL_WEB_ROOT + path
            ),
        )
        # Status 200 but no lyrics section: the page really has no lyrics.
        return lyrics or ""

    def fetch(self, artist: ArtistSpec) -> FetchResult:
        try:
            artist_id = self.find_artist_id(artist)
            songs = self.list_songs(artist_id)
        except (GeniusHTTPError, requests.RequestException, CircuitOpenError) as exc:
            message = f"Genius listing for {artist.name!r} failed: {exc}"
            if isinstance(exc, GeniusHTTPError) and not exc.retryable:
                raise SourceConfigError(message) from exc  # 401, 403, 404: retrying won't help
            raise TrackSourceError(message) from exc
        result = FetchResult()
        for song in songs:
            if (song.get("primary_artist") or {}).get("id") not in (None, artist_id):
                continue  # a feature on someone else's song
            if song.get("lyrics_state", "complete") != "complete":
                continue  # unreleased: Genius has no lyrics yet
            source_id, title = str(song["id"]), str(song.get("title") or "").strip()
            try:
                lyrics = "" if song.get("instrumental") else self.fetch_lyrics(song)
            except (GeniusHTTPError, requests.RequestException, CircuitOpenError) as exc:
                result.failures.append(
                    FetchFailure("genius", source_id, title, str(exc), song.get("url"))
                )
                continue
            release_date, release_year = parse_release_date(
                song.get("release_date") or _components_date(song.get("release_date_components"))
            )
            result.tracks.append(
                RawTrack(
                    source="genius",
                    source_id=source_id,
                    title=title,
                    lyrics=lyrics,
                    album=((song.get("album") or {}).get("name")),
                    release_date=release_date,
                    release_year=release_year,
                    url=song.get("url"),
                    instrumental=bool(song.get("instrumental")),
                )
            )
        return result


def _components_date(components: dict[str, Any] | None) -> str | None:
    """{"year": 2019, "month": 5, "day": 3} → "2019-05-03"; a year alone → "2019"."""
    components = components or {}
    year, month, day = (components.get(k) for k in ("year", "month", "day"))
    if not year:
        return None
    return f"{year:04d}-{month:02d}-{day:02d}" if month and day else f"{year:04d}"


def _with_slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"
