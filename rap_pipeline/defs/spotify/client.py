"""Spotify through the real ``spotipy`` client, behind the shared Redis guard.

- Client-credentials auth; the token lives in memory (``MemoryCacheHandler``), never in
  spotipy's default ``.cache`` file in the working directory. The API prefix and the token URL
  are settable (``SPOTIFY_API_ROOT``, ``SPOTIFY_TOKEN_URL``) for proxies and local servers.
- Only what a new Spotify app may call in 2026: search with ``limit ≤ 10`` and single-item
  lookups. A 403/404 on a whole endpoint raises ``EndpointUnavailable``; the caller marks the
  feature unavailable for the run.
- spotipy's own retries are off (they would hide 429s and ``Retry-After``). Retries are ours,
  with tenacity: exponential backoff with jitter on 429/5xx/timeouts, honouring Retry-After
  (which also pauses every other process through the guard); no retry on other 4xx. A 401
  "token expired" drops the token and retries once with a new one.
- The token endpoint is an API like the others: a token request goes through the same guard
  (rate, breaker) and retries. Only a rejected credential (400 or 401, e.g. ``invalid_client``)
  is a configuration error; a 429, 5xx, proxy page, timeout or dropped connection there is an
  outage, retried, and after the retries a per-track error, not a failed partition.
- Every answer is cached in Redis per endpoint (7 days, shorter than the 30 days after which
  a match is stale), so re-running a partition makes no HTTP request at all.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import requests
import spotipy
from spotipy.cache_handler import MemoryCacheHandler
from spotipy.oauth2 import SpotifyClientCredentials, SpotifyOauthError

from rap_pipeline.core.api_guard import ApiGuard, ProviderPolicy
from rap_pipeline.core.backoff import call_with_retries

# spotipy logs request headers (the Basic credentials of the token request) at DEBUG
logging.getLogger("spotipy").setLevel(logging.INFO)

DEFAULT_API_ROOT = "https://api.spotify.com/v1/"
DEFAULT_TOKEN_URL = "https://accounts.spotify.com/api/token"
SEARCH_LIMIT = 10  # the most a development-mode app may ask for since 2026
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
DAY_S = 86_400


def spotify_policy(requests_per_s: float = 5.0) -> ProviderPolicy:
    """Spotify publishes no number (a rolling 30-second window per app): 5 requests/s shared
    by all runs is a conservative default, not a measured one."""
    return ProviderPolicy(
        name="spotify",
        requests_per_s=requests_per_s,
        cache_ttl_s={"search": 7 * DAY_S, "artist": 7 * DAY_S},
        not_found_ttl_s=DAY_S,
    )


class SpotifyConfigError(RuntimeError):
    """Credentials or URLs are wrong: retrying cannot help."""


class EndpointUnavailable(RuntimeError):
    """This app may not call the endpoint (403, or 404 for the whole endpoint)."""


class SpotifyCallError(RuntimeError):
    def __init__(self, status: int | None, what: str, retry_after: float | None = None):
        super().__init__(f"Spotify {what} failed: " + (f"HTTP {status}" if status else "timeout"))
        self.status = status
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.status is None or self.status in RETRYABLE_STATUSES


def _retry_after(headers: Any) -> float | None:
    value = (headers or {}).get("Retry-After") or (headers or {}).get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class TokenUnavailable(SpotifyCallError):
    """The token endpoint still failed after its retries: an outage, not bad credentials."""


def _token_error(exc: SpotifyOauthError) -> SpotifyConfigError | SpotifyCallError:
    """What a failed token request means. spotipy raises SpotifyOauthError for every HTTP
    error of the token endpoint, from inside its handler of the requests HTTPError, which
    carries the status and headers."""
    response = getattr(exc.__context__, "response", None)
    status = getattr(response, "status_code", None)
    if status in (400, 401):
        # the OAuth error code only: a careless server may echo credentials in its text
        code = exc.error if re.fullmatch(r"[a-z_]{1,40}", str(exc.error or "")) else "refused"
        return SpotifyConfigError(
            f"Spotify refused the credentials (HTTP {status}, {code}): check "
            "SPOTIFY_CLIENT_ID, SPOTIFY_CLIENT_SECRET and SPOTIFY_TOKEN_URL"
        )
    headers = getattr(response, "headers", None)
    return SpotifyCallError(status, "token request", _retry_after(headers))


def _is_retryable(exc: BaseException) -> bool:
    return (
        isinstance(exc, SpotifyCallError)
        and exc.retryable
        and not isinstance(exc, TokenUnavailable)  # its own retries are spent
    )


class SpotifyClient:
    def __init__(
        self,
        client_id: str,
        client_secret: str,
        api_root: str = DEFAULT_API_ROOT,
        token_url: str = DEFAULT_TOKEN_URL,
        timeout: float = 10,
        max_attempts: int = 5,
        backoff_initial: float = 1.0,
        backoff_max: float = 60.0,
        guard: ApiGuard | None = None,
    ):
        if not client_id or not client_secret:
            raise SpotifyConfigError("Spotify needs SPOTIFY_CLIENT_ID and SPOTIFY_CLIENT_SECRET")
        self.auth = SpotifyClientCredentials(
            client_id, client_secret, cache_handler=MemoryCacheHandler(), requests_timeout=timeout
        )
        self.auth.OAUTH_TOKEN_URL = token_url
        # a plain session: spotipy's own retry adapter turns 429/5xx into "Max Retries"
        # errors without status or Retry-After, even with retries=0
        self.client = spotipy.Spotify(
            auth_manager=self.auth,
            requests_session=requests.Session(),
            requests_timeout=timeout,
            retries=0,
            status_retries=0,
        )
        self.client.prefix = api_root if api_root.endswith("/") else api_root + "/"
        self.guard = guard
        self.max_attempts = max_attempts
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.http_requests = 0  # API requests this client made (tokens not included)
        self.token_requests = 0
        self.refresh = False  # True: skip cached answers (a forced re-enrichment)

    # -- one request, with retries -------------------------------------------------------
    def _request(self, what: str, function: Any, *args: Any, **kwargs: Any) -> Any:
        """Calls spotipy; raises SpotifyCallError, EndpointUnavailable or SpotifyConfigError."""
        refreshed_token = False

        def once() -> Any:
            nonlocal refreshed_token
            self.http_requests += 1
            try:
                return function(*args, **kwargs)
            except spotipy.SpotifyException as exc:
                if exc.http_status == 401 and not refreshed_token:
                    refreshed_token = True  # expired or revoked: one retry with a new token
                    self.auth.cache_handler.save_token_to_cache(None)
                    raise SpotifyCallError(None, f"{what} (token expired)") from None
                if exc.http_status == 401:
                    raise SpotifyConfigError(
                        f"Spotify refused the credentials for {what} (HTTP 401)"
                    ) from None
                if exc.http_status in (403, 404):
                    raise EndpointUnavailable(
                        f"Spotify {what}: HTTP {exc.http_status} (not available to this app)"
                    ) from None
                raise SpotifyCallError(exc.http_status, what, _retry_after(exc.headers)) from None
            except SpotifyOauthError as exc:  # spotipy renewed the token inside the call
                raise _token_error(exc) from None
            except (requests.Timeout, requests.ConnectionError) as exc:
                raise SpotifyCallError(None, f"{what} ({type(exc).__name__})") from None

        return call_with_retries(
            once,
            prepare=self._ensure_token,  # outside the rate slot: the API call follows its grant
            guard=self.guard,
            is_retryable=_is_retryable,
            max_attempts=self.max_attempts,
            initial=self.backoff_initial,
            maximum=self.backoff_max,
        )

    def _ensure_token(self) -> None:
        """A valid token in spotipy's cache: the cached one, else one fetched under the guard
        with its own retries (raises SpotifyConfigError or TokenUnavailable)."""
        cached = self.auth.cache_handler.get_cached_token()
        if cached and not self.auth.is_token_expired(cached):
            return
        try:
            call_with_retries(
                self._fetch_token,
                guard=self.guard,
                is_retryable=_is_retryable,
                max_attempts=self.max_attempts,
                initial=self.backoff_initial,
                maximum=self.backoff_max,
            )
        except SpotifyCallError as exc:
            raise TokenUnavailable(exc.status, "token request", exc.retry_after) from None

    def _fetch_token(self) -> None:
        self.token_requests += 1
        try:
            self.auth.get_access_token(as_dict=False)
        except SpotifyOauthError as exc:
            raise _token_error(exc) from None
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise SpotifyCallError(None, f"token request ({type(exc).__name__})") from None

    def _cached(self, endpoint: str, request: Any, fetch: Any) -> Any:
        if self.guard is None:
            return fetch()
        return self.guard.cached(endpoint, request, fetch, refresh=self.refresh)

    # -- endpoints -----------------------------------------------------------------------
    def search_tracks(self, query: str, limit: int = SEARCH_LIMIT) -> list[dict[str, Any]]:
        limit = min(limit, SEARCH_LIMIT)
        response = self._cached(
            "search",
            {"q": query, "type": "track", "limit": limit},
            lambda: self._request("search", self.client.search, q=query, limit=limit, type="track"),
        )
        return list(((response or {}).get("tracks") or {}).get("items") or [])

    def artist(self, artist_id: str) -> dict[str, Any] | None:
        """One artist (genres, popularity, followers)."""
        return self._cached(
            "artist",
            artist_id,
            lambda: self._request(f"artist {artist_id}", self.client.artist, artist_id),
        )
