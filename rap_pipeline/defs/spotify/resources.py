"""Spotify credentials, endpoints and pacing for the ``spotify_tracks`` asset."""

from __future__ import annotations

import dagster as dg

from rap_pipeline.core.resources import RedisResource, guard_for
from rap_pipeline.defs.spotify.client import (
    DEFAULT_API_ROOT,
    DEFAULT_TOKEN_URL,
    SpotifyClient,
    spotify_policy,
)


class SpotifyResource(dg.ConfigurableResource):
    """Client credentials (SPOTIFY_CLIENT_ID / SPOTIFY_CLIENT_SECRET); without them the asset
    records "not configured" and succeeds. ``api_root`` / ``token_url`` (SPOTIFY_API_ROOT,
    SPOTIFY_TOKEN_URL) point at proxies or local servers; ``source_name`` is what rows say
    they came from."""

    client_id: str | None = None
    client_secret: str | None = None
    api_root: str = DEFAULT_API_ROOT
    token_url: str = DEFAULT_TOKEN_URL
    source_name: str = "spotify"
    timeout_s: float = 10
    max_attempts: int = 5
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    requests_per_s: float = 5.0
    stale_after_days: int = 30
    # Redis for the response cache, the shared rate limit and the breaker; None: no guard
    redis: RedisResource | None = None

    @property
    def configured(self) -> bool:
        return bool(self.client_id and self.client_secret)

    def build(self) -> SpotifyClient:
        return SpotifyClient(
            client_id=self.client_id or "",
            client_secret=self.client_secret or "",
            api_root=self.api_root,
            token_url=self.token_url,
            timeout=self.timeout_s,
            max_attempts=self.max_attempts,
            backoff_initial=self.backoff_initial_s,
            backoff_max=self.backoff_max_s,
            guard=guard_for(self.redis, spotify_policy(self.requests_per_s)),
        )
