"""Two sample artists materialized through the graph, once for the API's tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import dagster as dg
import psycopg
import pytest

from rap_pipeline.core.database import close_pool
from rap_pipeline.core.resources import DatabaseResource, RedisResource
from rap_pipeline.core.services import ServiceURLs
from rap_pipeline.core.settings import Settings
from rap_pipeline.defs.analyses.assets import emotion_analysis, rule_based_analysis
from rap_pipeline.defs.analyses.resources import EmotionModelResource
from rap_pipeline.defs.embeddings.assets import lyric_embeddings, similar_tracks
from rap_pipeline.defs.embeddings.resources import EmbeddingModelResource
from rap_pipeline.defs.predictors.assets import trends
from rap_pipeline.defs.predictors.resources import ArtifactsResource
from rap_pipeline.defs.spotify.assets import spotify_tracks
from rap_pipeline.defs.spotify.resources import SpotifyResource
from rap_pipeline.defs.tracks.assets import tracks
from rap_pipeline.defs.tracks.resources import TrackSourceResource
from rap_pipeline_tests.conftest import add_artists
from rap_pipeline_tests.fakes.spotify_server import CLIENT_ID, CLIENT_SECRET, FakeSpotify

ARTISTS = ("K.O. the Poet", "Big Tundra")


@pytest.fixture(scope="package")
def corpus_db(embedded: ServiceURLs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A database with two sample artists materialized through the graph (module-wide)."""
    name = f"api_{uuid.uuid4().hex[:10]}"
    admin_url = embedded.database_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = embedded.database_url.rsplit("/", 1)[0] + f"/{name}"
    data_dir = tmp_path_factory.mktemp("api_data")
    with dg.instance_for_test() as instance, FakeSpotify() as fake:
        slugs = add_artists(url, instance, *ARTISTS)
        resources = {
            "database": DatabaseResource(url=url),
            "track_source": TrackSourceResource(),
            "embedding_model": EmbeddingModelResource(),
            "emotion_model": EmotionModelResource(model_id="example/not-a-model-here"),
            "spotify": SpotifyResource(
                client_id=CLIENT_ID,
                client_secret=CLIENT_SECRET,
                api_root=fake.api_root,
                token_url=fake.token_url,
                requests_per_s=200.0,
                redis=RedisResource(url=embedded.redis_url, namespace=name),
            ),
            "artifacts": ArtifactsResource(directory=str(data_dir / "artifacts")),
        }
        partitioned = [
            tracks,
            spotify_tracks,
            lyric_embeddings,
            similar_tracks,
            rule_based_analysis,
            emotion_analysis,
        ]
        for slug in slugs:
            assert dg.materialize(
                partitioned, partition_key=slug, instance=instance, resources=resources
            ).success
        assert dg.materialize([trends], instance=instance, resources=resources).success
    yield {"url": url, "data_dir": data_dir, "slugs": slugs}
    close_pool(url)
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def settings_for(corpus_db: dict, **overrides) -> Settings:
    return Settings(data_dir=corpus_db["data_dir"], **overrides)
