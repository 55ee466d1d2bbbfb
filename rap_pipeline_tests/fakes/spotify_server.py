"""``FakeSpotify``: the Spotify catalog server (``rap_pipeline.samples.spotify_catalog_server``)
plus fault injection and request accounting, for tests.

Faults are keyed by endpoint name (``token``, ``search``, ``tracks`` and ``artists`` for
single lookups, ``tracks-batch``, ``audio-features``, …; see ``endpoint_of``; ``track`` and
``artist`` are accepted as aliases) or by a request-path prefix starting with ``/``:

* ``fail_next(key, status=500, retry_after=..., times=1)``: the next ``times`` matching
  requests answer ``status`` with Spotify's error body (429 "API rate limit exceeded" with a
  ``Retry-After`` header, 1 s unless given; ``retry_after=None`` sends none). ``RESET`` as the
  status drops the connection instead. Queued faults are used in order.
* ``fail_always(key, status, ...)``: every matching request, until ``clear_faults``.
* ``delay(key, seconds)``: waits before answering (0 removes the delay).
* ``forbid(key)`` / ``allow(key)``: authorized requests answer 403, as a removed endpoint does.
* ``expire_tokens()``: every token issued so far is expired server-side, so the next API call
  answers 401 "The access token expired"; tokens requested afterwards work.

Accounting: ``count(key, status=None)``, ``counts()``, ``max_rate(window_s)`` (the most API
requests, token requests excluded, seen in any sliding window of ``window_s`` seconds) and
``reset_log()``.

    with FakeSpotify() as spotify:  # the bundled sample catalog
        spotify.fail_next("search", status=429, retry_after=1)
        ...
        assert spotify.count("search", status=200) == 3
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from rap_pipeline.samples.spotify_catalog_server import (
    API_PREFIX,
    ARTISTS,
    TRACKS,
    CatalogServer,
    RecordedRequest,
    Response,
    error_response,
    load_sample_catalog,
    max_requests_in_window,
)

CLIENT_ID = "fake-spotify-client-id"
CLIENT_SECRET = "fake-spotify-client-secret"
_ALIASES = {"track": TRACKS, "artist": ARTISTS}
_DEFAULT = object()  # retry_after not given: 1 s on a 429, no header otherwise


@dataclass(frozen=True)
class Fault:
    status: int
    retry_after: float | str | None = None
    message: str | None = None
    body: str | None = None  # replaces the JSON error body

    def response(self) -> Response:
        if self.body is not None:
            status, headers, body = (
                self.status,
                {"Content-Type": "application/json; charset=utf-8"},
                self.body.encode(),
            )
        else:
            status, headers, body = error_response(self.status, self.message)
        if self.retry_after is not None:
            headers = {**headers, "Retry-After": str(self.retry_after)}
        return status, headers, body


@dataclass
class _Faults:
    queued: dict[str, list[Fault]] = field(default_factory=dict)
    always: dict[str, Fault] = field(default_factory=dict)
    delays: dict[str, float] = field(default_factory=dict)
    forbidden: set[str] = field(default_factory=set)


def _key(key: str) -> str:
    return _ALIASES.get(key, key)


def _matches(key: str, endpoint: str, path: str) -> bool:
    return path.startswith(key) if key.startswith("/") else key == endpoint


class FakeSpotify(CatalogServer):
    """The catalog server with scripted faults, delays, forbidden endpoints and counters."""

    RESET = CatalogServer.RESET

    def __init__(
        self,
        catalog: dict[str, Any] | None = None,
        client_id: str = CLIENT_ID,
        client_secret: str = CLIENT_SECRET,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        expires_in: int = 3600,
    ):
        super().__init__(
            load_sample_catalog() if catalog is None else catalog,
            client_id,
            client_secret,
            host,
            port,
            expires_in=expires_in,
        )
        self._faults = _Faults()
        self._fault_lock = threading.Lock()

    def start(self) -> FakeSpotify:
        super().start()
        return self

    def __enter__(self) -> FakeSpotify:
        return self.start()

    # -- faults --------------------------------------------------------------------------
    def fail_next(
        self,
        endpoint: str,
        status: int = 500,
        *,
        retry_after: Any = _DEFAULT,
        times: int = 1,
        message: str | None = None,
        body: str | None = None,
    ) -> None:
        """The next ``times`` requests to ``endpoint`` answer ``status`` (after any faults
        already queued for it)."""
        fault = self._fault(status, retry_after, message, body)
        with self._fault_lock:
            self._faults.queued.setdefault(_key(endpoint), []).extend([fault] * times)

    def fail_always(
        self,
        endpoint: str,
        status: int,
        *,
        retry_after: Any = _DEFAULT,
        message: str | None = None,
        body: str | None = None,
    ) -> None:
        """Every request to ``endpoint`` answers ``status`` until ``clear_faults``."""
        with self._fault_lock:
            self._faults.always[_key(endpoint)] = self._fault(status, retry_after, message, body)

    def delay(self, endpoint: str, seconds: float) -> None:
        """Waits ``seconds`` before answering each request to ``endpoint`` (0: no delay)."""
        with self._fault_lock:
            if seconds > 0:
                self._faults.delays[_key(endpoint)] = seconds
            else:
                self._faults.delays.pop(_key(endpoint), None)

    def forbid(self, endpoint: str) -> None:
        """Authorized requests to ``endpoint`` answer 403, as for a removed endpoint."""
        with self._fault_lock:
            self._faults.forbidden.add(_key(endpoint))

    def allow(self, endpoint: str) -> None:
        with self._fault_lock:
            self._faults.forbidden.discard(_key(endpoint))

    def expire_tokens(self) -> None:
        """Expires every token issued so far: the next API call answers 401 "The access token
        expired" (spotipy still thinks its cached token is good)."""
        with self._lock:
            for token in self._tokens:
                self._tokens[token] = float("-inf")

    def clear_faults(self) -> None:
        with self._fault_lock:
            self._faults = _Faults()

    @staticmethod
    def _fault(status: int, retry_after: Any, message: str | None, body: str | None) -> Fault:
        if retry_after is _DEFAULT:
            retry_after = 1 if status == 429 else None
        return Fault(status, retry_after, message, body)

    def _intercept(self, endpoint: str, path: str) -> tuple[Response | None, float]:
        with self._fault_lock:
            delay = max(
                (s for k, s in self._faults.delays.items() if _matches(k, endpoint, path)),
                default=0.0,
            )
            for key, queue in self._faults.queued.items():
                if queue and _matches(key, endpoint, path):
                    fault = queue.pop(0)
                    break
            else:
                fault = next(
                    (f for k, f in self._faults.always.items() if _matches(k, endpoint, path)),
                    None,
                )
        if fault is None:
            return None, delay
        if fault.status == self.RESET:
            return (self.RESET, {}, b""), delay
        return fault.response(), delay

    def _forbidden(self, endpoint: str) -> bool:
        with self._fault_lock:
            forbidden = endpoint in self._faults.forbidden
        return forbidden or super()._forbidden(endpoint)

    # -- accounting ----------------------------------------------------------------------
    def requests_to(self, endpoint: str) -> list[RecordedRequest]:
        key = _key(endpoint)
        return [r for r in self.requests if _matches(key, r.endpoint, r.path)]

    def count(self, endpoint: str, status: int | None = None) -> int:
        return sum(1 for r in self.requests_to(endpoint) if status is None or r.status == status)

    def counts(self) -> dict[str, int]:
        """Requests per endpoint name."""
        return dict(Counter(r.endpoint for r in self.requests))

    def max_rate(self, window_s: float = 1.0, endpoint: str | None = None) -> int:
        """The most API requests (under ``/v1/``; token requests excluded), or requests to
        ``endpoint``, that arrived within any sliding window of ``window_s`` seconds."""
        chosen = (
            self.requests_to(endpoint)
            if endpoint is not None
            else [r for r in self.requests if r.path.startswith(API_PREFIX)]
        )
        return max_requests_in_window((r.time for r in chosen), window_s)
