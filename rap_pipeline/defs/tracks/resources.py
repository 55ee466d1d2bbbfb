"""The configurable source of tracks: a local corpus (default) or Genius."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import dagster as dg

from rap_pipeline.core.paths import SAMPLE_CORPUS_DIR
from rap_pipeline.core.resources import RedisResource, guard_for
from rap_pipeline.defs.tracks.corpus import CorpusSource
from rap_pipeline.defs.tracks.genius import GeniusSource, genius_policy
from rap_pipeline.defs.tracks.sources import SourceConfigError, TrackSource


class TrackSourceResource(dg.ConfigurableResource):
    """Where the ``tracks`` asset gets lyrics. ``kind`` is RAP_TRACK_SOURCE; a corpus path of
    None means the sample corpus bundled with the package."""

    kind: Literal["corpus", "genius"] = "corpus"
    corpus_path: str | None = None
    genius_access_token: str | None = None
    genius_api_root: str = "https://api.genius.com/"
    genius_public_api_root: str = "https://genius.com/api/"
    genius_web_root: str = "https://genius.com/"
    genius_timeout_s: float = 10
    genius_sleep_time_s: float = 0.2
    genius_max_attempts: int = 5
    genius_backoff_initial_s: float = 1.0
    genius_backoff_max_s: float = 60.0
    genius_requests_per_s: float = 5.0
    # Redis for the response cache, the shared rate limit and the breaker; None: no guard
    redis: RedisResource | None = None

    def build(self) -> TrackSource:
        if self.kind == "corpus":
            return CorpusSource(Path(self.corpus_path) if self.corpus_path else SAMPLE_CORPUS_DIR)
        if not self.genius_access_token:  # before the guard, which may start the servers
            raise SourceConfigError("Genius needs an access token: set GENIUS_ACCESS_TOKEN")
        return GeniusSource(
            access_token=self.genius_access_token,
            api_root=self.genius_api_root,
            public_api_root=self.genius_public_api_root,
            web_root=self.genius_web_root,
            timeout=self.genius_timeout_s,
            sleep_time=self.genius_sleep_time_s,
            max_attempts=self.genius_max_attempts,
            backoff_initial=self.genius_backoff_initial_s,
            backoff_max=self.genius_backoff_max_s,
            guard=guard_for(self.redis, genius_policy(self.genius_requests_per_s)),
        )
