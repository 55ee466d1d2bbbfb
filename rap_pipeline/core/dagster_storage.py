"""Dagster's PostgreSQL storage with pooled connections, for every process of the instance.

dagster-postgres opens a new connection for each query unless the process asks for a pool
(only the webserver does), and a run writes several events per partition. A run worker
launched by the daemon therefore spent much of a small partition's time connecting. This
class is dagster-postgres' own storage with the webserver's pooling switched on from the
start; dagster.yaml names it, so the daemon, its run workers and ``rap-pipeline run`` all get
it. Each process keeps at most ``1 + MAX_OVERFLOW`` connections per storage (runs, events,
schedules), and the pool recycles a connection after ``POOL_RECYCLE_SECONDS``.

The event log also remembers which of its tables exist: dagster-postgres asks the database
before every write of an event's tags and every read of dynamic partitions, several queries
per partition and asset of a batched run (`rap-pipeline benchmark refresh` measures the
result: Dagster's share of a run). And it stores a run's "materialization planned" events,
one per partition and asset, in one statement: dagster-postgres writes them one by one, two
round trips each, when a run is created.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from itertools import groupby

from dagster import DagsterEventType
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
from dagster._serdes import ConfigurableClassData
from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.event_log import PostgresEventLogStorage
from dagster_postgres.utils import get_token_provider_from_config, pg_url_from_config

POOL_RECYCLE_SECONDS = 3600
MAX_OVERFLOW = 4


class TableCachingEventLogStorage(PostgresEventLogStorage):
    """Remembers the tables it found: Dagster's tables are added by migrations, never dropped
    under a running instance, so a table once present stays present. Inside
    ``partitions_snapshot()`` it also answers dynamic partitions from one read."""

    def __init__(self, *args, **kwargs):
        self._tables_present: set[str] = set()
        # inside partitions_snapshot(): each definition's keys, as read, and as a set
        self._snapshot: dict[str, tuple[Sequence[str], frozenset[str]]] | None = None
        super().__init__(*args, **kwargs)

    @contextmanager
    def partitions_snapshot(self) -> Iterator[None]:
        """Dynamic partitions read once for the block. Dagster re-reads every partition of the
        definition each time a step adds one partition's metadata (1,000 rows, 25 times per
        step, for 1,000 artists, and asks for each key twice); a run's own partitions cannot
        change under it."""
        self._snapshot = {}
        try:
            yield
        finally:
            self._snapshot = None

    def _snapshot_of(self, partitions_def_name: str) -> tuple[Sequence[str], frozenset[str]]:
        assert self._snapshot is not None
        if partitions_def_name not in self._snapshot:
            keys = super().get_dynamic_partitions(partitions_def_name)
            self._snapshot[partitions_def_name] = (keys, frozenset(keys))
        return self._snapshot[partitions_def_name]

    def get_dynamic_partitions(self, partitions_def_name: str) -> Sequence[str]:
        if self._snapshot is None:
            return super().get_dynamic_partitions(partitions_def_name)
        return self._snapshot_of(partitions_def_name)[0]

    def has_dynamic_partition(self, partitions_def_name: str, partition_key: str) -> bool:
        if self._snapshot is None:
            return super().has_dynamic_partition(partitions_def_name, partition_key)
        return partition_key in self._snapshot_of(partitions_def_name)[1]

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """Runs of planned materializations in one insert, the asset's row updated once with
        the last of its events (what storing them one by one leaves there); any other event
        as dagster-postgres stores it, in the same order."""
        for planned, group in groupby(events, key=_is_materialization_planned):
            group = list(group)
            if planned:
                self._store_planned_events(group)
            else:
                super().store_event_batch(group)

    def _store_planned_events(self, events: list[EventLogEntry]) -> None:
        with self._connect() as conn:
            result = conn.execute(
                self.prepare_insert_event_batch(events).returning(SqlEventLogStorageTable.c.id)
            )
            event_ids = [int(row[0]) for row in result.fetchall()]
        last_of_asset = {
            event.get_dagster_event().asset_key: (event, event_id)
            for event, event_id in zip(events, event_ids, strict=True)
        }
        with self.index_transaction() as conn:
            for event, event_id in last_of_asset.values():
                self._store_asset_event(conn, event, event_id)

    def has_table(self, table_name: str) -> bool:
        if table_name not in self._tables_present:
            if not super().has_table(table_name):
                return False
            self._tables_present.add(table_name)
        return True


def _is_materialization_planned(event: EventLogEntry) -> bool:
    return event.get_dagster_event().event_type == DagsterEventType.ASSET_MATERIALIZATION_PLANNED


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
