"""Dagster's PostgreSQL storage with pooled connections, for every process of the instance.

dagster-postgres opens a new connection for each query unless the process asks for a pool
(only the webserver does), and a run writes several events per partition. A run worker
launched by the daemon therefore spent much of a small partition's time connecting. This
class is dagster-postgres' own storage with the webserver's pooling switched on from the
start; dagster.yaml names it, so the daemon, its run workers and ``rap-pipeline run`` all get
it. Each process keeps at most ``1 + MAX_OVERFLOW`` connections per storage (runs, events,
schedules), and the pool recycles a connection after ``POOL_RECYCLE_SECONDS``.
"""

from __future__ import annotations

from dagster._serdes import ConfigurableClassData
from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.utils import get_token_provider_from_config, pg_url_from_config

POOL_RECYCLE_SECONDS = 3600
MAX_OVERFLOW = 4


class PooledPostgresStorage(DagsterPostgresStorage):
    @classmethod
    def from_config_value(  # ty: ignore[invalid-method-override]
        cls, inst_data: ConfigurableClassData | None, config_value
    ) -> PooledPostgresStorage:
        storage = cls(
            inst_data=inst_data,
            postgres_url=pg_url_from_config(config_value),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            token_provider=get_token_provider_from_config(config_value),
        )
        for part in (storage.run_storage, storage.event_log_storage, storage.schedule_storage):
            # one connection held open, a few more under load; no statement timeout
            part.optimize_for_webserver(
                statement_timeout=0, pool_recycle=POOL_RECYCLE_SECONDS, max_overflow=MAX_OVERFLOW
            )
        return storage
