"""Real servers for the tests: one embedded PostgreSQL and Redis per session on free ports,
a fresh database per test that needs isolation."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from rap_pipeline.core.database import close_pool, connect
from rap_pipeline.core.services import EmbeddedServices, ServiceURLs, free_port
from rap_pipeline.defs.artists.partitions import artists_partitions
from rap_pipeline.defs.artists.registry import ArtistSpec, register_artists


@pytest.fixture(scope="session")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceURLs]:
    services = EmbeddedServices(
        tmp_path_factory.mktemp("services"), postgres_port=free_port(), redis_port=free_port()
    )
    urls = services.start()
    yield urls
    services.stop()


def _server_url(database_url: str, database: str) -> str:
    return database_url.rsplit("/", 1)[0] + f"/{database}"


@pytest.fixture
def database_url(embedded: ServiceURLs) -> Iterator[str]:
    """A new, migrated database on the session's server, dropped after the test."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    admin_url = _server_url(embedded.database_url, "postgres")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = _server_url(embedded.database_url, name)
    with connect(url):
        pass  # migrates
    yield url
    close_pool(url)
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


def add_artists(database_url: str, instance: dg.DagsterInstance, *names: str) -> list[str]:
    """Registers artists in the database and as partitions; returns their slugs."""
    specs = [ArtistSpec(name=name) for name in names]
    with connect(database_url) as conn:
        register_artists(conn, specs)
    slugs = [spec.slug for spec in specs]
    instance.add_dynamic_partitions(artists_partitions.name, slugs)
    return slugs


@pytest.fixture
def corpus_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "corpus"
    directory.mkdir()
    return directory
