"""A local stand-in for Genius, answering what the ``lyricsgenius`` client asks for.

One ``ThreadingHTTPServer`` on 127.0.0.1 and a free port, in a background thread, serves three
roots, like genius.com does:

* ``api_root`` (``/api-v1/``, the authenticated API): ``GET artists/{id}/songs`` with
  ``per_page``/``page``/``sort``; needs ``authorization: Bearer <token>``, else 401.
* ``public_api_root`` (``/api/``): ``GET search/artist?q=``.
* ``web_root`` (``/``): song pages at each song's ``path``, shaped like Genius pages (lyrics in
  ``<div data-lyrics-container="true">`` with ``<br/>`` line breaks, a ``LyricsHeader`` block and
  a "You might also like" block the client removes); 404 page for unknown paths.

Faults are injected per request-path prefix (``fail``, ``fail_always``, ``set_delay``) and every
request is recorded (``requests``, ``count``). All lyrics come from the tests; none are real.

    with FakeGenius(token="test-token") as server:
        server.add_artist(1, "Nova Quill")
        server.add_song(1, 10, "Harbor Lights", "[Verse 1]\\nline one\\nline two")
        server.fail(server.song_path(10), [429, 503], retry_after=1)
"""

from __future__ import annotations

import html
import json
import re
import threading
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from rap_pipeline.core.local_http import LocalHTTPServer

API_PREFIX = "/api-v1/"
PUBLIC_API_PREFIX = "/api/"
CANONICAL_WEB_ROOT = "https://genius.com"
MAX_PER_PAGE = 50  # Genius caps per_page at 50
DEFAULT_PER_PAGE = 20

_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
_INVALID_TOKEN = {
    "error": "invalid_token",
    "error_description": "The access token provided is expired, revoked, malformed or invalid "
    "for other reasons.",
}


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # without the query string, percent-decoded
    query: dict[str, str]
    status: int  # what the server answered; RESET when it dropped the connection
    time: float  # time.monotonic() when the request arrived
    authorized: bool  # whether an authorization header was sent (its value is not recorded)


@dataclass(frozen=True)
class Fault:
    status: int
    retry_after: float | str | None = None
    body: str | None = None
    content_type: str | None = None


@dataclass
class FakeArtist:
    id: int
    name: str

    def as_api(self) -> dict[str, Any]:
        return {
            "api_path": f"/artists/{self.id}",
            "id": self.id,
            "name": self.name,
            "url": f"{CANONICAL_WEB_ROOT}/artists/{_path_words(self.name)}",
            "is_verified": False,
        }


@dataclass
class FakeSong:
    id: int
    title: str
    lyrics: str
    listed_under: int  # the artist whose songs list holds it (besides the primary artist)
    primary_artist_id: int
    path: str
    lyrics_state: str = "complete"
    instrumental: bool = False
    release_date: str | None = None  # "YYYY-MM-DD", "YYYY-MM" or "YYYY"
    album: str | None = None
    split: bool = False  # lyrics across two containers, as on long Genius pages
    has_page: bool = True  # False: the song page answers 404

    @property
    def url(self) -> str:
        return CANONICAL_WEB_ROOT + self.path

    def release_date_components(self) -> dict[str, int | None] | None:
        if not self.release_date:
            return None
        parts = [int(p) for p in self.release_date.split("-")] + [None, None]
        return {"year": parts[0], "month": parts[1], "day": parts[2]}

    def as_api(self, primary: FakeArtist) -> dict[str, Any]:
        return {
            "annotation_count": 0,
            "api_path": f"/songs/{self.id}",
            "artist_names": primary.name,
            "full_title": f"{self.title} by {primary.name}",
            "id": self.id,
            "instrumental": self.instrumental,
            "lyrics_owner_id": 1,
            "lyrics_state": self.lyrics_state,
            "path": self.path,
            "primary_artist": primary.as_api(),
            "release_date_components": self.release_date_components(),
            "release_date_for_display": self.release_date,
            "title": self.title,
            "title_with_featured": self.title,
            "url": self.url,
            "album": {"id": zlib.crc32(self.album.encode()), "name": self.album}
            if self.album
            else None,
        }


@dataclass
class _Queue:
    passes: int  # matching requests still answered normally before the faults start
    faults: list[Fault]


@dataclass
class _Faults:
    queued: dict[str, _Queue] = field(default_factory=dict)
    always: dict[str, Fault] = field(default_factory=dict)
    delays: dict[str, float] = field(default_factory=dict)


def _path_words(text: str) -> str:
    words = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()
    return words[:1].upper() + words[1:]


class FakeGenius(LocalHTTPServer):
    """Genius on localhost: a data model of artists and songs plus fault injection."""

    RESET = -1  # a "status" for fail(): drop the connection without answering

    def __init__(self, token: str = "test-token", host: str = "127.0.0.1"):
        self.token = token
        super().__init__(host)
        self.artists: dict[int, FakeArtist] = {}
        self.songs: dict[int, FakeSong] = {}
        self._faults = _Faults()
        self._requests: list[RecordedRequest] = []
        self._lock = threading.RLock()

    # -- lifecycle -----------------------------------------------------------------------
    name = "fake-genius"

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        return type("Handler", (_Handler,), {"fake": self})

    @property
    def api_root(self) -> str:
        return self.base_url + API_PREFIX

    @property
    def public_api_root(self) -> str:
        return self.base_url + PUBLIC_API_PREFIX

    @property
    def web_root(self) -> str:
        return self.base_url + "/"

    # -- data model ----------------------------------------------------------------------
    def add_artist(self, id: int, name: str) -> FakeArtist:
        with self._lock:
            artist = self.artists[id] = FakeArtist(id, name)
        return artist

    def add_song(
        self,
        artist_id: int,
        id: int,
        title: str,
        lyrics: str,
        *,
        primary_artist_id: int | None = None,
        lyrics_state: str = "complete",
        instrumental: bool = False,
        release_date: str | None = None,
        album: str | None = None,
        path: str | None = None,
        split: bool = False,
        has_page: bool = True,
    ) -> FakeSong:
        """A song in ``artist_id``'s songs list. With ``primary_artist_id`` another artist's
        song the artist features on (listed under both, as Genius does)."""
        with self._lock:
            primary_id = artist_id if primary_artist_id is None else primary_artist_id
            for needed in {artist_id, primary_id}:
                if needed not in self.artists:
                    raise KeyError(f"add artist {needed} before its songs")
            if path is None:
                path = f"/{_path_words(self.artists[primary_id].name + ' ' + title)}-lyrics"
                if any(song.path == path for song in self.songs.values()):
                    path = path.removesuffix("-lyrics") + f"-{id}-lyrics"
            song = FakeSong(
                id=id,
                title=title,
                lyrics=lyrics,
                listed_under=artist_id,
                primary_artist_id=primary_id,
                path=path,
                lyrics_state=lyrics_state,
                instrumental=instrumental,
                release_date=release_date,
                album=album,
                split=split,
                has_page=has_page,
            )
            self.songs[id] = song
        return song

    def song_path(self, song_id: int) -> str:
        """The request path of a song's page, for fail() and count()."""
        return self.songs[song_id].path

    @staticmethod
    def artist_songs_path(artist_id: int) -> str:
        return f"{API_PREFIX}artists/{artist_id}/songs"

    @staticmethod
    def search_path(kind: str = "artist") -> str:
        return f"{PUBLIC_API_PREFIX}search/{kind}"

    # -- faults --------------------------------------------------------------------------
    def fail(
        self,
        path_prefix: str,
        statuses: Iterable[int],
        *,
        retry_after: float | str | None = None,
        body: str | None = None,
        content_type: str | None = None,
        after: int = 0,
    ) -> None:
        """Answers the next requests under ``path_prefix`` with these statuses, in order, then
        normally; with ``after`` only once that many matching requests were answered normally.
        ``RESET`` drops the connection instead of answering. Error bodies are Genius-like JSON
        on the API roots and an HTML page on the web root unless ``body`` is given."""
        with self._lock:
            queue = self._faults.queued.setdefault(path_prefix, _Queue(after, []))
            queue.faults.extend(Fault(s, retry_after, body, content_type) for s in statuses)

    def fail_always(
        self,
        path_prefix: str,
        status: int,
        *,
        retry_after: float | str | None = None,
        body: str | None = None,
        content_type: str | None = None,
    ) -> None:
        with self._lock:
            self._faults.always[path_prefix] = Fault(status, retry_after, body, content_type)

    def set_delay(self, path_prefix: str, seconds: float) -> None:
        """Waits ``seconds`` before answering any request under ``path_prefix``."""
        with self._lock:
            self._faults.delays[path_prefix] = seconds

    def clear_faults(self, path_prefix: str | None = None) -> None:
        with self._lock:
            for table in (self._faults.queued, self._faults.always, self._faults.delays):
                if path_prefix is None:
                    table.clear()
                else:
                    table.pop(path_prefix, None)

    def _take_fault(self, path: str) -> tuple[Fault | None, float]:
        with self._lock:
            delay = max(
                (s for p, s in self._faults.delays.items() if path.startswith(p)), default=0.0
            )
            for prefix, queue in self._faults.queued.items():
                if queue.faults and path.startswith(prefix):
                    if queue.passes > 0:
                        queue.passes -= 1
                        return None, delay
                    return queue.faults.pop(0), delay
            for prefix, fault in self._faults.always.items():
                if path.startswith(prefix):
                    return fault, delay
            return None, delay

    # -- request log ---------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_to(self, path_prefix: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.startswith(path_prefix)]

    def count(self, path_prefix: str, status: int | None = None) -> int:
        return sum(1 for r in self.requests_to(path_prefix) if status is None or r.status == status)

    def forget_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    # -- answers -------------------------------------------------------------------------
    def answer(
        self, path: str, query: dict[str, str], authorization: str | None
    ) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) of a request that no fault intercepted."""
        if path.startswith(API_PREFIX):
            if authorization != f"Bearer {self.token}":
                return _json(401, _INVALID_TOKEN, {"WWW-Authenticate": 'Bearer realm="Genius"'})
            return self._api(path.removeprefix(API_PREFIX), query)
        if path.startswith(PUBLIC_API_PREFIX):
            return self._public_api(path.removeprefix(PUBLIC_API_PREFIX), query)
        return self._web(path)

    def _api(self, route: str, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        match = re.fullmatch(r"artists/(\d+)/songs", route)
        if not match:
            return _json_error(404)
        artist_id = int(match.group(1))
        try:
            per_page = min(int(query.get("per_page") or DEFAULT_PER_PAGE), MAX_PER_PAGE)
            page = int(query.get("page") or 1)
        except ValueError:
            return _json_error(400)
        if per_page < 1 or page < 1:
            return _json_error(400)
        with self._lock:
            if artist_id not in self.artists:
                return _json_error(404)
            listed = [
                s for s in self.songs.values() if artist_id in (s.listed_under, s.primary_artist_id)
            ]
            sort = query.get("sort") or "title"
            if sort == "title":
                listed.sort(key=lambda s: (s.title.casefold(), s.id))
            elif sort == "release_date":
                listed.sort(key=lambda s: (s.release_date or "9999", s.id))
            elif sort != "popularity":
                return _json_error(400)
            start = (page - 1) * per_page
            chunk = listed[start : start + per_page]
            songs = [s.as_api(self.artists[s.primary_artist_id]) for s in chunk]
        next_page = page + 1 if start + per_page < len(listed) else None
        return _json(
            200, {"meta": {"status": 200}, "response": {"songs": songs, "next_page": next_page}}
        )

    def _public_api(self, route: str, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        match = re.fullmatch(r"search/(\w+)", route)
        if not match:
            return _json_error(404)
        kind = match.group(1)
        term = (query.get("q") or "").casefold()
        hits = []
        if kind == "artist" and term:
            with self._lock:
                hits = [
                    {"highlights": [], "index": "artist", "type": "artist", "result": a.as_api()}
                    for a in self.artists.values()
                    if term in a.name.casefold()
                ]
        section = {"type": kind, "hits": hits}
        return _json(200, {"meta": {"status": 200}, "response": {"sections": [section]}})

    def _web(self, path: str) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            song = next((s for s in self.songs.values() if s.path == path), None)
            if song is None or not song.has_page:
                return _html(404, _error_page(404))
            artist = self.artists[song.primary_artist_id]
            return _html(200, render_song_page(song, artist))


# -- HTML ------------------------------------------------------------------------------------
_LYRICS_CLASS = "Lyrics__Container-sc-1ynbvzw-1 kUgSbL"


def _lyrics_header(song: FakeSong) -> str:
    """The block Genius puts at the top of the lyrics; lyricsgenius removes it by class."""
    return (
        '<div class="LyricsHeader__Container-sc-5e4b7146-1 hFsUgz">'
        '<div class="ContributorsCreditSong__Container-sc-12hq27v-0">'
        '<span class="ContributorsCreditSong__Label">3 Contributors</span></div>'
        '<div class="LyricsHeader__TranslationsContainer-sc-5e4b7146-7">Translations'
        "<ul><li>Español</li><li>Português</li></ul></div>"
        f"<h2>{html.escape(song.title)} Lyrics</h2></div>"
    )


_MIGHT_ALSO_LIKE = (
    '<div data-exclude-from-selection="true" class="InreadContainer__Container-sc-19040w5-0">'
    '<div class="SidebarAd__Container">You might also like'
    '<a href="/Someone-else-another-song-lyrics">Another Song</a></div></div>'
)


def _render_lines(song: FakeSong, lines: list[str]) -> str:
    rendered = []
    for number, line in enumerate(lines):
        text = html.escape(line)
        if line.strip() and not line.startswith("[") and number % 4 == 1:
            # an annotated line, as Genius links referents
            text = (
                f'<a href="/{song.id}{number}/{song.path.strip("/")}/{number}" '
                'class="ReferentFragmentdesktop__ClickTarget-sc-110r0d9-0">'
                '<span class="ReferentFragmentdesktop__Highlight-sc-110r0d9-1">'
                f"{text}</span></a>"
            )
        rendered.append(text)
    return "<br/>".join(rendered)


def render_song_page(song: FakeSong, artist: FakeArtist) -> str:
    """A page shaped like a Genius song page (only what lyricsgenius reads, plus noise)."""
    lines = song.lyrics.strip("\n").split("\n")
    if not song.lyrics.strip():
        body = (
            '<div class="LyricsPlaceholder__Container-uen8er-1">'
            '<div class="LyricsPlaceholder__Message-uen8er-3">'
            "This song is an instrumental</div></div>"
        )
    else:
        blanks = [i for i, line in enumerate(lines) if not line.strip()]
        if song.split and blanks:
            cut = min(blanks, key=lambda i: abs(i - len(lines) / 2))
            first, second = lines[:cut], lines[cut + 1 :]
            containers = [
                _lyrics_header(song) + _render_lines(song, first) + "<br/>",
                _MIGHT_ALSO_LIKE + "<br/>" + _render_lines(song, second),
            ]
        else:
            containers = [_lyrics_header(song) + _render_lines(song, lines)]
        ad = '<div class="RightSidebar__Container-pajcl2-0"><div>Advertisement</div></div>'
        body = ad.join(
            f'<div data-lyrics-container="true" class="{_LYRICS_CLASS}">{c}</div>'
            for c in containers
        )
    title = html.escape(f"{artist.name} – {song.title} Lyrics | Genius Lyrics")
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{title}</title></head><body>"
        f'<div class="SongHeaderdesktop__Title"><h1>{html.escape(song.title)}</h1>'
        f'<a href="/artists/{_path_words(artist.name)}">{html.escape(artist.name)}</a></div>'
        f'<div id="lyrics-root" class="Lyrics__Root-sc-1ynbvzw-0">{body}'
        '<div class="LyricsFooter__Container">12Embed</div></div>'
        '<div class="SongPage__Section">You might also like</div>'
        "</body></html>"
    )


def _error_page(status: int) -> str:
    reason = _REASONS.get(status, "Error")
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{status} {reason} | Genius</title></head><body>"
        f'<div class="render_404"><h1>{status}</h1><h2>{reason}</h2>'
        "<p>Oops! Page not found</p></div></body></html>"
    )


# -- HTTP ------------------------------------------------------------------------------------
def _json(
    status: int, document: dict[str, Any], headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    return (
        status,
        {"Content-Type": "application/json; charset=utf-8", **(headers or {})},
        json.dumps(document).encode(),
    )


def _json_error(status: int) -> tuple[int, dict[str, str], bytes]:
    return _json(status, {"meta": {"status": status, "message": _REASONS.get(status, "Error")}})


def _html(status: int, page: str) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "text/html; charset=utf-8"}, page.encode()


def _fault_response(fault: Fault, path: str) -> tuple[int, dict[str, str], bytes]:
    is_api = path.startswith((API_PREFIX, PUBLIC_API_PREFIX))
    if fault.body is not None:
        content_type = fault.content_type or (
            "application/json; charset=utf-8" if is_api else "text/html; charset=utf-8"
        )
        status, headers, body = fault.status, {"Content-Type": content_type}, fault.body.encode()
    elif is_api and fault.content_type is None:
        status, headers, body = _json_error(fault.status)
    else:
        status, headers, body = _html(fault.status, _error_page(fault.status))
    if fault.retry_after is not None:
        headers["Retry-After"] = str(fault.retry_after)
    return status, headers, body


class _Handler(BaseHTTPRequestHandler):
    fake: FakeGenius
    protocol_version = "HTTP/1.1"  # keep-alive, like the client's session expects
    timeout = 10  # idle keep-alive connections end on their own
    server_version = "FakeGenius/1.0"
    disable_nagle_algorithm = True  # else headers and body wait on delayed ACKs (40 ms)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self._handle("POST")

    def _handle(self, method: str) -> None:
        arrived = time.monotonic()
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        authorization = self.headers.get("Authorization")
        fault, delay = self.fake._take_fault(path)
        if fault is not None and fault.status == FakeGenius.RESET:
            status, headers, body = FakeGenius.RESET, {}, b""
        elif fault is not None:
            status, headers, body = _fault_response(fault, path)
        elif method == "POST":
            status, headers, body = _json_error(404)
        else:
            status, headers, body = self.fake.answer(path, query, authorization)
        # recorded before the delay and the answer, so a client that got its answer (or gave
        # up waiting) sees the record
        self.fake._record(
            RecordedRequest(method, path, query, status, arrived, bool(authorization))
        )
        if delay:
            time.sleep(delay)
        if status == FakeGenius.RESET:
            self.close_connection = True
            return
        self.send_response(status, _REASONS.get(status))
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(body)
