"""Resources of the code location: the one place where settings become resources.

``build_resources(settings)`` turns the settings (environment, ``.env``) into every resource the
assets use. Secrets go in as ``EnvVar`` of the variable that was set, so the UI shows its name,
never its value; a secret that no variable holds (the throwaway credentials of the bundled
sample catalog server) goes in as it is."""

from __future__ import annotations

import os
from typing import Any

import dagster as dg
from pydantic import SecretStr

from rap_pipeline.core.resources import DatabaseResource, RedisResource
from rap_pipeline.core.settings import Settings
from rap_pipeline.defs.analyses.resources import EmotionModelResource, LLMResource
from rap_pipeline.defs.artists.sensors import ArtistsFileResource
from rap_pipeline.defs.embeddings.resources import EmbeddingModelResource
from rap_pipeline.defs.predictors.resources import ArtifactsResource
from rap_pipeline.defs.spotify.resources import SpotifyResource
from rap_pipeline.defs.tracks.resources import TrackSourceResource


def _secret(value: SecretStr | None, *names: str) -> dg.EnvVar | str | None:
    """The first of ``names`` set in the environment, as an EnvVar; else the value itself."""
    for name in names:
        if os.environ.get(name):
            return dg.EnvVar(name)
    return value.get_secret_value() if value is not None else None


def build_resources(settings: Settings) -> dict[str, Any]:
    redis = RedisResource(url=_secret(settings.redis_url, "RAP_REDIS_URL"))
    return {
        "database": DatabaseResource(url=_secret(settings.database_url, "RAP_DATABASE_URL")),
        "redis": redis,
        "artists_file": ArtistsFileResource(path=str(settings.artists_file)),
        "artifacts": ArtifactsResource(directory=str(settings.resolved_data_dir / "artifacts")),
        "embedding_model": EmbeddingModelResource(
            model_id=settings.embedding_model,
            torch_threads=settings.torch_threads,
            bulk_min_tracks=settings.embedding_bulk_min_tracks,
        ),
        "track_source": TrackSourceResource(
            kind=settings.track_source,
            corpus_path=str(settings.corpus_path) if settings.corpus_path else None,
            genius_access_token=_secret(
                settings.genius_access_token, "GENIUS_ACCESS_TOKEN", "RAP_GENIUS_ACCESS_TOKEN"
            ),
            genius_api_root=settings.genius_api_root,
            genius_public_api_root=settings.genius_public_api_root,
            genius_web_root=settings.genius_web_root,
            redis=redis,
        ),
        "spotify": SpotifyResource(
            client_id=_secret(
                settings.spotify_client_id, "SPOTIFY_CLIENT_ID", "RAP_SPOTIFY_CLIENT_ID"
            ),
            client_secret=_secret(
                settings.spotify_client_secret, "SPOTIFY_CLIENT_SECRET", "RAP_SPOTIFY_CLIENT_SECRET"
            ),
            api_root=settings.spotify_api_root,
            token_url=settings.spotify_token_url,
            source_name=settings.spotify_source_name,
            stale_after_days=settings.spotify_stale_after_days,
            redis=redis,
        ),
        "emotion_model": EmotionModelResource(
            model_id=settings.emotion_model,
            quantize_int8=settings.emotion_quantize_int8,
            torch_threads=settings.torch_threads,
        ),
        "llm": LLMResource(
            base_url=settings.llm_base_url,
            api_key=_secret(settings.llm_api_key, "RAP_LLM_API_KEY"),
            model=settings.llm_model,
            concurrency=settings.llm_concurrency,
            requests_per_s=settings.llm_requests_per_s,
            price_input_per_mtok=settings.llm_price_input_per_mtok,
            price_output_per_mtok=settings.llm_price_output_per_mtok,
            response_format=settings.llm_response_format,
            redis=redis,
        ),
    }
