"""Resources of the code location, configured from the environment when definitions load."""

from __future__ import annotations

import os

import dagster as dg
from dotenv import load_dotenv

from rap_pipeline.core.resources import DatabaseResource, RedisResource
from rap_pipeline.core.settings import Settings
from rap_pipeline.defs.analyses.resources import EmotionModelResource, LLMResource
from rap_pipeline.defs.artists.sensors import ArtistsFileResource
from rap_pipeline.defs.embeddings.resources import EmbeddingModelResource
from rap_pipeline.defs.spotify.resources import SpotifyResource
from rap_pipeline.defs.tracks.resources import TrackSourceResource


def _secret(name: str) -> dg.EnvVar | None:
    """Secrets go in as EnvVar so the UI shows the variable's name, never its value."""
    return dg.EnvVar(name) if os.environ.get(name) else None


@dg.definitions
def resources() -> dg.Definitions:
    # secrets may sit in .env (as Settings reads them); EnvVar resolves from the environment
    load_dotenv(override=False)
    settings = Settings()
    redis = RedisResource(url=_secret("RAP_REDIS_URL"))
    return dg.Definitions(
        resources={
            "database": DatabaseResource(url=_secret("RAP_DATABASE_URL")),
            "redis": redis,
            "artists_file": ArtistsFileResource(path=str(settings.artists_file)),
            "embedding_model": EmbeddingModelResource(model_id=settings.embedding_model),
            "track_source": TrackSourceResource(
                kind=settings.track_source,
                corpus_path=str(settings.corpus_path) if settings.corpus_path else None,
                genius_access_token=_secret("GENIUS_ACCESS_TOKEN"),
                genius_api_root=settings.genius_api_root,
                genius_public_api_root=settings.genius_public_api_root,
                genius_web_root=settings.genius_web_root,
                redis=redis,
            ),
            "spotify": SpotifyResource(
                client_id=_secret("SPOTIFY_CLIENT_ID") or _secret("RAP_SPOTIFY_CLIENT_ID"),
                client_secret=_secret("SPOTIFY_CLIENT_SECRET")
                or _secret("RAP_SPOTIFY_CLIENT_SECRET"),
                api_root=settings.spotify_api_root,
                token_url=settings.spotify_token_url,
                source_name=settings.spotify_source_name,
                redis=redis,
            ),
            "emotion_model": EmotionModelResource(
                model_id=settings.emotion_model, quantize_int8=settings.emotion_quantize_int8
            ),
            "llm": LLMResource(
                base_url=settings.llm_base_url,
                api_key=_secret("RAP_LLM_API_KEY"),
                model=settings.llm_model,
                concurrency=settings.llm_concurrency,
                requests_per_s=settings.llm_requests_per_s,
                price_input_per_mtok=settings.llm_price_input_per_mtok,
                price_output_per_mtok=settings.llm_price_output_per_mtok,
                response_format=settings.llm_response_format,
                redis=redis,
            ),
        }
    )
