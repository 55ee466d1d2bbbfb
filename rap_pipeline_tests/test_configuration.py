"""README's configuration table and the code cannot drift: every documented variable, set to a
value of its own, reaches the resource (or the embedded servers) that uses it, and secrets
reach resources as EnvVar, never as their value."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from rap_pipeline.core.kubernetes import executor
from rap_pipeline.core.services import EmbeddedServices
from rap_pipeline.core.settings import Settings
from rap_pipeline.defs.resources import build_resources

README = Path(__file__).resolve().parents[1] / "README.md"


def documented_variables() -> list[str]:
    """The variable names in the first column of README's configuration table."""
    section = README.read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    names: list[str] = []
    for line in section.splitlines():
        if line.startswith("| `"):
            first_column = line.split("|")[1]
            names += re.findall(r"`([A-Z][A-Z0-9_]+)`", first_column)
    return names


def resource(name: str, field: str) -> Callable[[dict[str, Any], Settings], Any]:
    return lambda resources, settings: getattr(resources[name], field)


def servers(read: Callable[[EmbeddedServices], Any]) -> Callable[[dict[str, Any], Settings], Any]:
    return lambda resources, settings: read(EmbeddedServices.from_settings(settings))


SECRET = object()  # the resource must hold an EnvVar naming the variable
# variable → (value to set, where it must arrive, what must arrive there)
WHERE: dict[str, tuple[str, Callable[[dict[str, Any], Settings], Any], Any]] = {
    "RAP_DATA_DIR": ("/tmp/rap-data-x", servers(lambda s: s.data_dir), Path("/tmp/rap-data-x")),
    "RAP_DATABASE_URL": ("postgresql://u:p@db-x/rap", resource("database", "url"), SECRET),
    "RAP_REDIS_URL": ("redis://redis-x:6379/0", resource("redis", "url"), SECRET),
    "RAP_POSTGRES_PORT": ("15432", servers(lambda s: s.requested_ports["postgres"]), 15432),
    "RAP_REDIS_PORT": ("16379", servers(lambda s: s.requested_ports["redis"]), 16379),
    "RAP_POSTGRES_SHARED_BUFFERS": (
        "64MB",
        servers(lambda s: s.postgres_settings["shared_buffers"]),
        "64MB",
    ),
    "RAP_ARTISTS_FILE": ("/tmp/artists-x.yaml", resource("artists_file", "path"), None),
    "RAP_TRACK_SOURCE": ("genius", resource("track_source", "kind"), "genius"),
    "RAP_CORPUS_PATH": ("/tmp/corpus-x", resource("track_source", "corpus_path"), None),
    "RAP_EMBEDDING_MODEL": ("/models/embed-x", resource("embedding_model", "model_id"), None),
    "RAP_TORCH_THREADS": ("3", resource("embedding_model", "torch_threads"), 3),
    "RAP_EMBEDDING_BULK_MIN_TRACKS": (
        "5000",
        resource("embedding_model", "bulk_min_tracks"),
        5000,
    ),
    "GENIUS_ACCESS_TOKEN": ("tok-x", resource("track_source", "genius_access_token"), SECRET),
    "GENIUS_API_ROOT": ("http://g-x/api/", resource("track_source", "genius_api_root"), None),
    "GENIUS_PUBLIC_API_ROOT": (
        "http://g-x/public/",
        resource("track_source", "genius_public_api_root"),
        None,
    ),
    "GENIUS_WEB_ROOT": ("http://g-x/", resource("track_source", "genius_web_root"), None),
    "SPOTIFY_CLIENT_ID": ("id-x", resource("spotify", "client_id"), SECRET),
    "SPOTIFY_CLIENT_SECRET": ("secret-x", resource("spotify", "client_secret"), SECRET),
    "SPOTIFY_API_ROOT": ("http://s-x/v1/", resource("spotify", "api_root"), None),
    "SPOTIFY_TOKEN_URL": ("http://s-x/token", resource("spotify", "token_url"), None),
    "RAP_SPOTIFY_STALE_AFTER_DAYS": ("7", resource("spotify", "stale_after_days"), 7),
    "RAP_EMOTION_MODEL": ("/models/emotion-x", resource("emotion_model", "model_id"), None),
    "RAP_EMOTION_QUANTIZE_INT8": ("true", resource("emotion_model", "quantize_int8"), True),
    "RAP_LLM_BASE_URL": ("http://llm-x/v1", resource("llm", "base_url"), None),
    "RAP_LLM_MODEL": ("model-x", resource("llm", "model"), None),
    "RAP_LLM_API_KEY": ("sk-x-123456", resource("llm", "api_key"), SECRET),
    "RAP_LLM_CONCURRENCY": ("7", resource("llm", "concurrency"), 7),
    "RAP_LLM_REQUESTS_PER_S": ("3.5", resource("llm", "requests_per_s"), 3.5),
    "RAP_LLM_PRICE_INPUT_PER_MTOK": ("0.25", resource("llm", "price_input_per_mtok"), 0.25),
    "RAP_LLM_PRICE_OUTPUT_PER_MTOK": ("1.5", resource("llm", "price_output_per_mtok"), 1.5),
    "RAP_LLM_RESPONSE_FORMAT": ("json_object", resource("llm", "response_format"), "json_object"),
    "RAP_EXECUTOR": ("k8s", lambda resources, settings: executor(settings.executor).name, None),
    "RAP_API_CORS_ORIGINS": (
        "https://a.example, https://b.example",
        lambda resources, settings: settings.cors_origins,
        ["https://a.example", "https://b.example"],
    ),
    "RAP_API_REQUESTS_PER_MINUTE": (
        "42",
        lambda resources, settings: settings.api_requests_per_minute,
        42,
    ),
}
# the same setting under a second name; it must arrive in the same place
ALIASES = {
    "RAP_GENIUS_ACCESS_TOKEN": "GENIUS_ACCESS_TOKEN",
    "RAP_SPOTIFY_CLIENT_ID": "SPOTIFY_CLIENT_ID",
    "RAP_SPOTIFY_CLIENT_SECRET": "SPOTIFY_CLIENT_SECRET",
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in [*WHERE, *ALIASES]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no .env of the developer's checkout


def test_every_documented_variable_is_checked_here():
    documented = documented_variables()
    assert len(documented) >= 25  # the table was found and read
    assert set(documented) == set(WHERE), "README's table and WHERE differ"


@pytest.mark.parametrize("variable", [*WHERE, *ALIASES])
def test_the_variable_reaches_what_uses_it(variable: str, monkeypatch: pytest.MonkeyPatch):
    value, arrived, expected = WHERE[ALIASES.get(variable, variable)]
    monkeypatch.setenv(variable, value)
    settings = Settings()
    got = arrived(build_resources(settings), settings)
    if expected is SECRET:
        assert isinstance(got, dg.EnvVar) and got.env_var_name == variable
        assert value not in repr(got)
    else:
        assert got == (value if expected is None else expected)
