"""A local server speaking the part of the Spotify Web API a new (2026, development-mode)
Spotify app can still use, serving a catalog from a dict (by default the bundled sample).

One ``ThreadingHTTPServer`` on ``host`` and a free (or given) port, in a background thread.
The ranking of search results is in ``spotify_catalog_search.py``; the rest (routes, token,
paging, Spotify's objects, the HTTP handler) stays in this one module, past our ~450-line
guide, so the whole protocol a client sees reads in one place:

* ``POST /api/token`` (``token_url``): the client-credentials flow. Credentials as HTTP Basic
  (what spotipy sends) or as ``client_id``/``client_secret`` form fields; form body
  ``grant_type=client_credentials``. Wrong credentials: 400 ``{"error": "invalid_client"}``.
  Answers ``{"access_token", "token_type": "Bearer", "expires_in"}``; the server itself expires
  tokens after ``expires_in`` seconds.
* ``GET /v1/search?q=&type=track&limit=&offset=`` (under ``api_root``): ``limit`` 1–10 (the
  development-mode cap since 2026, default 5), else 400 "Invalid limit". ``q`` understands the
  field filters (``track:"…" artist:"…" album:… year:1997 year:1990-1999 isrc:… genre:…``) and
  plain words; ``year``/``isrc``/``genre`` filter, the rest rank. Ranking is a loose relevance
  (token overlap on track name, artist names and album), and like the real service it answers
  loosely related tracks too (any shared word, or just the artist), never exact matches only:
  clients must score candidates themselves. ``type=artist`` searches artists.
* ``GET /v1/tracks/{id}``, ``GET /v1/artists/{id}``: 404 "Resource not found" for an unknown
  id, 400 "Invalid base62 id" for one that is not 22 base62 characters.
* Gone for new apps, 403: ``audio-features`` (single and ``?ids=``), ``audio-analysis``,
  ``recommendations``, batch ``tracks?ids=`` / ``artists?ids=`` (spotipy calls these
  ``tracks/?ids=``), ``artists/{id}/top-tracks``, ``artists/{id}/related-artists``,
  ``browse/new-releases``. The body is what Spotify sends there: ``{"error": {"status": 403}}``
  (no message). Unknown API paths: 404 "Service not found".
* Every API path needs ``Authorization: Bearer <token>`` from ``/api/token``: missing, unknown
  or malformed → 401 "Invalid access token"; expired (server-side) → 401 "The access token
  expired". Errors have Spotify's shape ``{"error": {"status": N, "message": "…"}}``.

Every request is logged (``requests``: monotonic arrival time, method, path, query, status and
endpoint name, see ``endpoint_of``), thread-safely. Subclasses inject faults through
``_intercept`` (see ``rap_pipeline_tests/fakes/spotify_server.py``).

Catalog format: see ``spotify_catalog.py``. Only ``artists`` and ``tracks`` are served;
``expected`` and ``notes`` never are. Pointing spotipy (2.26) at a server::

    auth = SpotifyClientCredentials(client_id, client_secret, cache_handler=MemoryCacheHandler())
    auth.OAUTH_TOKEN_URL = server.token_url      # a class attribute; set it on the instance
    sp = spotipy.Spotify(auth_manager=auth, requests_session=requests.Session(), ...)
    sp.prefix = server.api_root                  # "http://127.0.0.1:PORT/v1/", trailing slash

    with CatalogServer(load_sample_catalog(), "id", "secret") as server:
        ...
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

from rap_pipeline.core.local_http import LocalHTTPServer
from rap_pipeline.samples.spotify_catalog import SAMPLE_CATALOG_PATH
from rap_pipeline.samples.spotify_catalog_search import CatalogIndex, Query

API_PREFIX = "/v1/"
TOKEN_PATH = "/api/token"
SEARCH_LIMIT_MAX = 10  # development mode, 2026 (was 50)
SEARCH_LIMIT_DEFAULT = 5
SEARCH_OFFSET_MAX = 1000
DEFAULT_EXPIRES_IN = 3600
WEB_ROOT = "https://open.spotify.com"

# endpoint names, for the request log and for fault injection
TOKEN = "token"
SEARCH = "search"
TRACKS = "tracks"  # GET /v1/tracks/{id}
ARTISTS = "artists"  # GET /v1/artists/{id}
TRACKS_BATCH = "tracks-batch"
ARTISTS_BATCH = "artists-batch"
AUDIO_FEATURES = "audio-features"
AUDIO_ANALYSIS = "audio-analysis"
RECOMMENDATIONS = "recommendations"
TOP_TRACKS = "artist-top-tracks"
RELATED_ARTISTS = "related-artists"
NEW_RELEASES = "new-releases"
OTHER = "other"
REMOVED_ENDPOINTS = frozenset(
    {
        TRACKS_BATCH,
        ARTISTS_BATCH,
        AUDIO_FEATURES,
        AUDIO_ANALYSIS,
        RECOMMENDATIONS,
        TOP_TRACKS,
        RELATED_ARTISTS,
        NEW_RELEASES,
    }
)
_ROUTES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"search/?"), SEARCH),
    (re.compile(r"tracks/?"), TRACKS_BATCH),
    (re.compile(r"tracks/([^/]+)/?"), TRACKS),
    (re.compile(r"artists/?"), ARTISTS_BATCH),
    (re.compile(r"artists/([^/]+)/top-tracks/?"), TOP_TRACKS),
    (re.compile(r"artists/([^/]+)/related-artists/?"), RELATED_ARTISTS),
    (re.compile(r"artists/([^/]+)/?"), ARTISTS),
    (re.compile(r"audio-features(?:/.*)?"), AUDIO_FEATURES),
    (re.compile(r"audio-analysis(?:/.*)?"), AUDIO_ANALYSIS),
    (re.compile(r"recommendations(?:/.*)?"), RECOMMENDATIONS),
    (re.compile(r"browse/new-releases/?"), NEW_RELEASES),
]

REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
# the messages Spotify puts in error bodies
MESSAGES = {
    400: "Bad request",
    401: "Invalid access token",
    404: "Resource not found",
    405: "Method not allowed",
    429: "API rate limit exceeded",
    500: "Server error.",
    502: "Bad gateway.",
    503: "Service unavailable",
    504: "Gateway timeout",
}
EXPIRED_TOKEN = "The access token expired"
INVALID_TOKEN = "Invalid access token"

_BASE62_ID = re.compile(r"[0-9A-Za-z]{22}")
_SEARCH_TYPES = frozenset({"album", "artist", "playlist", "track", "show", "episode", "audiobook"})

Response = tuple[int, dict[str, str], bytes]


@dataclass(frozen=True)
class RecordedRequest:
    time: float  # time.monotonic() when the request arrived
    method: str
    path: str  # without the query string, percent-decoded
    query: dict[str, str]
    status: int  # what the server answered; -1 when it dropped the connection
    endpoint: str  # see endpoint_of


def max_requests_in_window(times: Iterable[float], window_s: float) -> int:
    """The most timestamps in any half-open window ``[t, t + window_s)``."""
    ordered = sorted(times)
    best = start = 0
    for end, moment in enumerate(ordered):
        while moment - ordered[start] >= window_s:
            start += 1
        best = max(best, end - start + 1)
    return best


def load_sample_catalog(path: Path = SAMPLE_CATALOG_PATH) -> dict[str, Any]:
    """The bundled sample catalog (``rap_pipeline/samples/data/spotify_sample_catalog.json``)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def endpoint_of(method: str, path: str) -> str:
    """The endpoint name of a request: ``token``, ``search``, ``tracks`` / ``artists`` (single
    lookups), ``tracks-batch``, ``artists-batch``, ``audio-features``, ``audio-analysis``,
    ``recommendations``, ``artist-top-tracks``, ``related-artists``, ``new-releases`` or
    ``other``."""
    if path.rstrip("/") == TOKEN_PATH:
        return TOKEN
    if path.startswith(API_PREFIX):
        route = path.removeprefix(API_PREFIX)
        for pattern, name in _ROUTES:
            if pattern.fullmatch(route):
                return name
    return OTHER


class CatalogServer(LocalHTTPServer):
    """The Spotify Web API subset a new app may use, on localhost, over a catalog dict."""

    RESET = -1  # a status for _intercept: drop the connection without answering

    def __init__(
        self,
        catalog: dict[str, Any],
        client_id: str,
        client_secret: str,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        expires_in: int = DEFAULT_EXPIRES_IN,
    ):
        super().__init__(host, port)
        self.client_id = client_id
        self.client_secret = client_secret
        self.expires_in = expires_in
        self._lock = threading.RLock()
        self._log: list[RecordedRequest] = []
        self._tokens: dict[str, float] = {}  # token -> monotonic expiry
        self._load(catalog)

    # -- catalog -------------------------------------------------------------------------
    def _load(self, catalog: dict[str, Any]) -> None:
        self.artists: dict[str, dict[str, Any]] = {a["id"]: a for a in catalog.get("artists", [])}
        self.tracks: dict[str, dict[str, Any]] = {t["id"]: t for t in catalog.get("tracks", [])}
        self._album_sizes: dict[str, int] = {}
        for track in self.tracks.values():
            named = [*track["artist_ids"], *track["album"]["artist_ids"]]
            missing = [i for i in named if i not in self.artists]
            if missing:
                raise ValueError(f"track {track['id']} names unknown artists {missing}")
            album_id = track["album"]["id"]
            self._album_sizes[album_id] = self._album_sizes.get(album_id, 0) + 1
        self.index = CatalogIndex(self.artists, self.tracks)

    # -- lifecycle -----------------------------------------------------------------------
    name = "spotify-catalog"

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        return type("Handler", (_Handler,), {"catalog_server": self})

    @property
    def api_root(self) -> str:
        """What spotipy's ``Spotify.prefix`` must be (with its trailing slash)."""
        return self.base_url + API_PREFIX

    @property
    def token_url(self) -> str:
        """What ``SpotifyClientCredentials.OAUTH_TOKEN_URL`` must be."""
        return self.base_url + TOKEN_PATH

    # -- request log ---------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._log)

    def reset_log(self) -> None:
        with self._lock:
            self._log.clear()

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._log.append(request)

    # -- hooks for fault injection -------------------------------------------------------
    def _intercept(self, endpoint: str, path: str) -> tuple[Response | None, float]:
        """(a response that replaces the normal answer or None, seconds to wait before
        answering). ``RESET`` as the status drops the connection."""
        return None, 0.0

    def _forbidden(self, endpoint: str) -> bool:
        """Whether an authorized request to ``endpoint`` answers 403."""
        return endpoint in REMOVED_ENDPOINTS

    # -- answers -------------------------------------------------------------------------
    def respond(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
        endpoint: str,
    ) -> tuple[Response, float]:
        """(status, headers, body) and the delay before sending it."""
        intercepted, delay = self._intercept(endpoint, path)
        if intercepted is not None:
            return intercepted, delay
        try:
            return self._answer(method, path, query, headers, body, endpoint), delay
        except Exception:  # a bug here must not look like a dropped connection
            return error_response(500), delay

    def _answer(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
        endpoint: str,
    ) -> Response:
        if endpoint == TOKEN:
            if method != "POST":
                return error_response(405)
            return self._token(headers.get("authorization"), body)
        if not path.startswith(API_PREFIX):
            return error_response(404, "Service not found")
        problem = self._check_bearer(headers.get("authorization"))
        if problem is not None:
            return error_response(
                401,
                problem,
                {
                    "WWW-Authenticate": 'Bearer realm="spotify", error="invalid_token", '
                    f'error_description="{problem}"'
                },
            )
        if method not in {"GET", "HEAD"}:
            return error_response(405)
        if self._forbidden(endpoint):
            return _json(403, {"error": {"status": 403}})
        route = path.removeprefix(API_PREFIX)
        if endpoint == SEARCH:
            return self._search(query)
        if endpoint in (TRACKS, ARTISTS):
            item_id = route.split("/")[1]
            if not _BASE62_ID.fullmatch(item_id):
                return error_response(400, "Invalid base62 id")
            if endpoint == TRACKS:
                track = self.tracks.get(item_id)
                return (
                    error_response(404) if track is None else _json(200, self.track_object(track))
                )
            artist = self.artists.get(item_id)
            return error_response(404) if artist is None else _json(200, self.artist_object(artist))
        return error_response(404, "Service not found")

    # -- token ---------------------------------------------------------------------------
    def _token(self, authorization: str | None, body: bytes) -> Response:
        form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
                client_id, _, client_secret = decoded.partition(":")
            except (binascii.Error, UnicodeDecodeError):
                client_id = client_secret = None
        grant_type = form.get("grant_type")
        if not grant_type:
            return _oauth_error("unsupported_grant_type", "grant_type parameter is missing")
        if grant_type != "client_credentials":
            return _oauth_error(
                "unsupported_grant_type",
                "grant_type must be client_credentials, authorization_code or refresh_token",
            )
        if not client_id or not hmac.compare_digest(client_id, self.client_id):
            return _oauth_error("invalid_client", "Invalid client")
        if not hmac.compare_digest(client_secret or "", self.client_secret):
            return _oauth_error("invalid_client", "Invalid client secret")
        token = "BQ" + secrets.token_urlsafe(72)
        with self._lock:
            self._tokens[token] = time.monotonic() + self.expires_in
        return _json(
            200, {"access_token": token, "token_type": "Bearer", "expires_in": self.expires_in}
        )

    def _check_bearer(self, authorization: str | None) -> str | None:
        """None when the token is good, else the 401 message."""
        if not authorization or not authorization.startswith("Bearer "):
            return INVALID_TOKEN
        with self._lock:
            expires = self._tokens.get(authorization.removeprefix("Bearer ").strip())
        if expires is None:
            return INVALID_TOKEN
        if time.monotonic() >= expires:
            return EXPIRED_TOKEN
        return None

    # -- search --------------------------------------------------------------------------
    def _search(self, query: dict[str, str]) -> Response:
        q = (query.get("q") or query.get("query") or "").strip()  # "query" in next/href
        if not q:
            return error_response(400, "No search query")
        types = [t.strip() for t in (query.get("type") or "").split(",") if t.strip()]
        if not types:
            return error_response(400, "Missing parameter type")
        if any(t not in _SEARCH_TYPES for t in types):
            return error_response(400, "Bad search type field")
        try:
            limit = int(query.get("limit") or SEARCH_LIMIT_DEFAULT)
        except ValueError:
            return error_response(400, "Invalid limit")
        if not 1 <= limit <= SEARCH_LIMIT_MAX:
            return error_response(400, "Invalid limit")
        try:
            offset = int(query.get("offset") or 0)
        except ValueError:
            return error_response(400, "Invalid offset")
        if not 0 <= offset <= SEARCH_OFFSET_MAX:
            return error_response(400, "Invalid offset")
        parsed = Query.parse(q)
        document: dict[str, Any] = {}
        for kind in types:
            if kind == "track":
                ranked = [self.track_object(self.tracks[i]) for i in self.index.rank_tracks(parsed)]
            elif kind == "artist":
                ranked = [
                    self.artist_object(self.artists[i]) for i in self.index.rank_artists(parsed)
                ]
            else:
                ranked = []
            document[kind + "s"] = self._page(kind, query, ranked, limit, offset)
        return _json(200, document)

    def _page(
        self, kind: str, query: dict[str, str], items: list[Any], limit: int, offset: int
    ) -> dict[str, Any]:
        def href(at: int) -> str:
            q = query.get("q") or query.get("query") or ""
            params = {"offset": at, "limit": limit, "query": q, "type": kind}
            if query.get("market"):
                params["market"] = query["market"]
            return f"{self.api_root}search?{urlencode(params, quote_via=quote)}"

        total = len(items)
        return {
            "href": href(offset),
            "items": items[offset : offset + limit],
            "limit": limit,
            "next": href(offset + limit) if offset + limit < total else None,
            "offset": offset,
            "previous": href(max(0, offset - limit)) if offset > 0 else None,
            "total": total,
        }

    # -- Spotify objects -----------------------------------------------------------------
    def _urls(self, kind: str, item_id: str) -> dict[str, Any]:
        return {
            "external_urls": {"spotify": f"{WEB_ROOT}/{kind}/{item_id}"},
            "href": f"{self.api_root}{kind}s/{item_id}",
            "id": item_id,
            "type": kind,
            "uri": f"spotify:{kind}:{item_id}",
        }

    def simple_artist(self, artist_id: str) -> dict[str, Any]:
        return {**self._urls("artist", artist_id), "name": self.artists[artist_id]["name"]}

    def artist_object(self, artist: dict[str, Any]) -> dict[str, Any]:
        return {
            **self._urls("artist", artist["id"]),
            "followers": {"href": None, "total": artist["followers"]},
            "genres": list(artist["genres"]),
            "images": [],
            "name": artist["name"],
            "popularity": artist["popularity"],
        }

    def album_object(self, album: dict[str, Any]) -> dict[str, Any]:
        return {
            **self._urls("album", album["id"]),
            "album_type": album["album_type"],
            "artists": [self.simple_artist(a) for a in album["artist_ids"]],
            "images": [],
            "name": album["name"],
            "release_date": album["release_date"],
            "release_date_precision": album["release_date_precision"],
            "total_tracks": self._album_sizes.get(album["id"], 1),
        }

    def track_object(self, track: dict[str, Any]) -> dict[str, Any]:
        return {
            **self._urls("track", track["id"]),
            "album": self.album_object(track["album"]),
            "artists": [self.simple_artist(a) for a in track["artist_ids"]],
            "disc_number": track.get("disc_number", 1),
            "duration_ms": track["duration_ms"],
            "explicit": track["explicit"],
            "external_ids": {"isrc": track["isrc"]} if track.get("isrc") else {},
            "is_local": False,
            "name": track["name"],
            "popularity": track["popularity"],
            "preview_url": None,  # gone for new apps since November 2024
            "track_number": track["track_number"],
        }


# -- HTTP ------------------------------------------------------------------------------------
def _json(status: int, document: Any, headers: dict[str, str] | None = None) -> Response:
    return (
        status,
        {"Content-Type": "application/json; charset=utf-8", **(headers or {})},
        json.dumps(document, ensure_ascii=False).encode(),
    )


def error_response(
    status: int, message: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    """A Web API error answer: ``{"error": {"status": N, "message": "..."}}``."""
    text = message or MESSAGES.get(status) or REASONS.get(status, "Error")
    return _json(status, {"error": {"status": status, "message": text}}, headers)


def _oauth_error(code: str, description: str) -> Response:
    """An accounts-service error answer (400), as spotipy's SpotifyOauthError reads it."""
    return _json(400, {"error": code, "error_description": description})


class _Handler(BaseHTTPRequestHandler):
    catalog_server: CatalogServer
    protocol_version = "HTTP/1.1"  # keep-alive, as requests' sessions expect
    timeout = 10  # idle keep-alive connections end on their own
    server_version = "SpotifyCatalog/1.0"
    disable_nagle_algorithm = True  # else headers and body wait on delayed ACKs (40 ms)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        arrived = time.monotonic()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        headers = {k.lower(): v for k, v in self.headers.items()}
        endpoint = endpoint_of(method, path)
        server = self.catalog_server
        (status, answer_headers, payload), delay = server.respond(
            method, path, query, headers, body, endpoint
        )
        # recorded before the delay and the answer, so a client that got its answer (or gave
        # up waiting) sees the record
        server._record(RecordedRequest(arrived, method, path, query, status, endpoint))
        if delay:
            time.sleep(delay)
        if status == CatalogServer.RESET:
            self.close_connection = True
            return
        self.send_response(status, REASONS.get(status))
        for name, value in answer_headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(payload)
