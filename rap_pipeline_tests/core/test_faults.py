"""Faults on real servers: a PostgreSQL restarted under the pipeline. (A run process killed
mid-partition: defs/tracks/test_assets.py; Redis killed mid-run: defs/spotify/test_assets.py.)"""

from __future__ import annotations

import threading
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from rap_pipeline.core.database import close_pool, connect
from rap_pipeline.core.services import EmbeddedServices, free_port
from rap_pipeline_tests.conftest import add_artists
from rap_pipeline_tests.defs.tracks.test_assets import (
    materialize,
    song,
    stored,
    wait_inside_the_write,
    write_jsonl,
)


@pytest.fixture
def restartable(tmp_path: Path):
    """A PostgreSQL of this test's own, which it may restart."""
    services = EmbeddedServices(
        tmp_path / "services",
        postgres_port=free_port(),
        redis_port=free_port(),
        postgres_shared_buffers="128MB",
    )
    urls = services.start()
    yield services, urls.database_url
    close_pool(urls.database_url)
    services.stop()


def restart_postgres(services: EmbeddedServices) -> None:
    services.stop(("postgres",))
    services.start()


def test_after_a_restart_the_pool_hands_out_live_connections(restartable):
    services, url = restartable
    with connect(url) as conn:
        before = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    restart_postgres(services)
    with connect(url) as conn:  # the pooled connection died with the server: replaced
        assert conn.execute("SELECT pg_backend_pid()").fetchone()[0] != before


@pytest.mark.slow
def test_postgres_restarted_mid_write_the_step_fails_and_its_retry_completes(
    restartable, instance: dg.DagsterInstance, tmp_path: Path
):
    services, url = restartable
    (slug,) = add_artists(url, instance, "Big Tundra")
    count = 6000
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_jsonl(
        corpus / "big.jsonl",
        [
            {
                "artist": "Big Tundra",
                "title": f"T{i}",
                "lyrics": song(i, f"theme {i}"),
                "id": str(i),
            }
            for i in range(count)
        ],
    )
    outcome = {}
    run = threading.Thread(
        target=lambda: outcome.setdefault("result", materialize(url, instance, corpus, slug))
    )
    run.start()
    wait_inside_the_write(url, slug, run.is_alive)
    restart_postgres(services)
    with psycopg.connect(url) as conn:  # the interrupted transaction left nothing
        assert conn.execute("SELECT count(*) FROM tracks").fetchone()[0] == 0
    run.join(timeout=300)
    result = outcome["result"]

    assert result.success  # the retry policy ran the step again, on a new connection
    assert [e.event_type_value for e in result.all_events if e.is_step_up_for_retry]
    rows = stored(url, slug)
    assert len(rows) == count and len({row[0] for row in rows}) == count  # none twice
