"""The embedded servers: started once, reused, stopped cleanly, clear errors."""

import contextlib
import socket
from pathlib import Path

import psycopg
import pytest
import redis

from rap_pipeline.core.services import (
    EmbeddedServices,
    ServiceError,
    free_port,
    resolve_urls,
    services_for_command,
)
from rap_pipeline.core.settings import Settings


def test_servers_are_reused_and_restart_on_the_same_data(tmp_path: Path):
    services = EmbeddedServices(tmp_path / "data")
    urls = services.start()
    try:
        with psycopg.connect(urls.database_url, autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (x int)")
            assert (
                conn.execute(
                    "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'"
                )
                .fetchone()[0]
                .startswith("0.8")
            )
        redis.Redis.from_url(urls.redis_url).set("k", "v")
        # a second handle (another process, in real use) reuses the running servers
        assert EmbeddedServices(tmp_path / "data").start() == urls
        assert sorted(services.stop()) == ["postgres", "redis"]
        assert services.running_urls() is None

        pg_version = (tmp_path / "data" / "postgres" / "PG_VERSION").stat().st_mtime
        again = services.start()
        assert again == urls  # remembered ports
        assert (tmp_path / "data" / "postgres" / "PG_VERSION").stat().st_mtime == pg_version
        with psycopg.connect(again.database_url) as conn:
            conn.execute("SELECT * FROM kept")  # data survived: no new initdb
        assert redis.Redis.from_url(again.redis_url).get("k") == b"v"
    finally:
        services.stop()


def test_a_busy_configured_port_is_a_clear_error(tmp_path: Path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        services = EmbeddedServices(tmp_path / "data", postgres_port=port, redis_port=free_port())
        with pytest.raises(ServiceError, match=f"Port {port} .*RAP_POSTGRES_PORT"):
            services.start()
    services.stop()


def test_an_unusable_data_directory_is_a_clear_error(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ServiceError, match="RAP_DATA_DIR"):
        EmbeddedServices(blocker / "data").start()


def test_a_command_stops_what_it_started_unless_another_still_uses_it(tmp_path: Path):
    settings = Settings(data_dir=tmp_path / "data", database_url=None, redis_url=None)
    services = EmbeddedServices.from_settings(settings)
    try:
        with services_for_command(settings) as urls:  # had to start both servers
            assert psycopg.connect(urls.database_url).close() is None
        assert services.running_urls() is None  # so it stopped them

        with contextlib.ExitStack() as stack:
            stack.enter_context(services.in_use())  # another command, still running
            with services_for_command(settings):
                pass
            assert services.running_urls() is not None  # left running for the other one
    finally:
        services.stop()


def test_only_the_servers_without_an_external_url_start(tmp_path: Path):
    external = EmbeddedServices(tmp_path / "external")
    urls = external.start()
    try:
        settings = Settings(data_dir=tmp_path / "data", database_url=urls.database_url)
        resolved = resolve_urls(settings)
        assert resolved.database_url == urls.database_url
        assert not (tmp_path / "data" / "postgres").exists()  # no embedded PostgreSQL
        assert resolved.redis_url != urls.redis_url  # the embedded Redis of this data dir
        EmbeddedServices(tmp_path / "data").stop()
    finally:
        external.stop()
