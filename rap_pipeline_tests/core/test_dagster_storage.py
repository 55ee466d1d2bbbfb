import os
from pathlib import Path
from unittest import mock

import dagster as dg
import psycopg
from sqlalchemy.pool import QueuePool

from rap_pipeline.core.dagster_home import dagster_environment
from rap_pipeline.core.dagster_storage import PooledPostgresStorage
from rap_pipeline.core.services import ServiceURLs
from rap_pipeline.core.settings import Settings


def _sessions_opened(database_url: str) -> int:
    """Connections ever opened to the database (this one included)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        return conn.execute(
            "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()[0]


def test_every_process_of_the_instance_keeps_its_storage_connections(
    tmp_path: Path, database_url: str, embedded: ServiceURLs
):
    urls = ServiceURLs(database_url=database_url, redis_url=embedded.redis_url)
    environment = dagster_environment(Settings(data_dir=tmp_path), urls)
    with (
        mock.patch.dict(os.environ, environment),
        dg.DagsterInstance.get() as instance,
        # a run worker launched by the daemon rebuilds the instance from its ref
        dg.DagsterInstance.from_ref(instance.get_ref()) as worker,
    ):
        assert worker.get_ref().storage_data.class_name == PooledPostgresStorage.__name__
        for each in (instance, worker):
            for part in (each.run_storage, each.event_log_storage):
                assert isinstance(part._engine.pool, QueuePool)  # noqa: SLF001

        @dg.asset
        def small() -> int:
            return 1

        before = _sessions_opened(database_url)
        for _ in range(3):
            assert dg.materialize([small], instance=worker).success
        # three runs' events (dozens of writes) over the same few pooled connections
        assert _sessions_opened(database_url) - before <= 8
        assert len(worker.get_runs()) == 3
