"""Dagster's PostgreSQL storage with pooled connections, for every process of the instance.

dagster-postgres opens a new connection for each query unless the process asks for a pool
(only the webserver does), and a run writes several events per partition. A run worker
launched by the daemon therefore spent much of a small partition's time connecting. This
class is dagster-postgres' own storage with the webserver's pooling switched on from the
start; dagster.yaml names it, so the daemon, its run workers and ``rap-pipeline run`` all get
it. Each process keeps at most ``1 + MAX_OVERFLOW`` connections per storage (runs, events,
schedules), and the pool recycles a connection after ``POOL_RECYCLE_SECONDS``.

The event log also remembers which of its tables exist: dagster-postgres asks the database
before every write of an event's tags and every read of dynamic partitions (a profile of a
no-op batched run found ~5 such queries per partition and asset, a fifth of the run).
"""

from __future__ import annotations

from dagster._serdes import ConfigurableClassData
from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.event_log import PostgresEventLogStorage
from dagster_postgres.utils import get_token_provider_from_config, pg_url_from_config

POOL_RECYCLE_SECONDS = 3600
MAX_OVERFLOW = 4


class TableCachingEventLogStorage(PostgresEventLogStorage):
    """Remembers the tables it found: Dagster's tables are added by migrations, never dropped
    under a running instance, so a table once present stays present."""

    def __init__(self, *args, **kwargs):
        self._tables_present: set[str] = set()
        super().__init__(*args, **kwargs)

    def has_table(self, table_name: str) -> bool:
        if table_name not in self._tables_present:
            if not super().has_table(table_name):
                return False
            self._tables_present.add(table_name)
        return True


class PooledPostgresStorage(DagsterPostgresStorage):
    def __init__(self, postgres_url: str, should_autocreate_tables: bool = True, **kwargs):
        super().__init__(postgres_url, should_autocreate_tables, **kwargs)
        self._event_log_storage = TableCachingEventLogStorage(
            postgres_url, should_autocreate_tables, token_provider=kwargs.get("token_provider")
        )

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
