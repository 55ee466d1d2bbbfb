import os
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import dagster as dg
import psycopg
import pytest
from dagster_postgres.event_log import PostgresEventLogStorage
from sqlalchemy.pool import QueuePool

from rap_pipeline.core.dagster_home import dagster_environment
from rap_pipeline.core.dagster_storage import PooledPostgresStorage, TableCachingEventLogStorage
from rap_pipeline.core.services import ServiceURLs
from rap_pipeline.core.settings import Settings
from rap_pipeline.defs.artists.partitions import range_tags


def _sessions_opened(database_url: str) -> int:
    """Connections ever opened to the database (this one included)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        return conn.execute(
            "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()[0]


def _calls_to(method: str):
    """Records the calls to dagster-postgres' own ``method``, which still does its work."""
    original = getattr(PostgresEventLogStorage, method)
    return mock.patch.object(PostgresEventLogStorage, method, autospec=True, side_effect=original)


@pytest.fixture
def environment(tmp_path: Path, database_url: str, embedded: ServiceURLs) -> dict[str, str]:
    """What every process of the project's Dagster instance gets, on the test's database."""
    urls = ServiceURLs(database_url=database_url, redis_url=embedded.redis_url)
    return dagster_environment(Settings(data_dir=tmp_path), urls)


@pytest.fixture
def instance(environment: dict[str, str]) -> Iterator[dg.DagsterInstance]:
    """The project's instance (dagster.yaml) as `rap-pipeline dev` / `run` open it."""
    with mock.patch.dict(os.environ, environment), dg.DagsterInstance.get() as opened:
        yield opened


def test_every_process_of_the_instance_keeps_its_storage_connections(
    instance: dg.DagsterInstance, database_url: str
):
    # a run worker launched by the daemon rebuilds the instance from its ref
    with dg.DagsterInstance.from_ref(instance.get_ref()) as worker:
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


def test_a_multi_partition_step_stores_each_partition_in_batched_writes(
    environment: dict[str, str], instance: dg.DagsterInstance
):
    """The instance's environment turns on Dagster's batch writes; every partition still gets
    its own materialization with its own metadata, and tables are looked up once."""
    assert int(environment["DAGSTER_EVENT_BATCH_SIZE"]) > 0
    letters = dg.StaticPartitionsDefinition(["a", "b", "c"])

    @dg.asset(partitions_def=letters, backfill_policy=dg.BackfillPolicy.single_run())
    def lettered(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        for key in context.partition_keys:
            context.add_asset_metadata({"letter": key}, partition_key=key)
        return dg.MaterializeResult()

    assert isinstance(instance.event_log_storage, TableCachingEventLogStorage)
    with _calls_to("has_table") as looked_up:
        for _ in range(2):
            result = dg.materialize([lettered], instance=instance, tags=range_tags("a", "c"))
            assert result.success
    assert looked_up.call_count <= 3  # per table, once per process, not per event
    events = result.get_asset_materialization_events()
    assert {e.partition: e.materialization.metadata["letter"].value for e in events} == {
        key: key for key in "abc"
    }
    assert instance.get_materialized_partitions(dg.AssetKey("lettered")) == {"a", "b", "c"}


def test_inside_a_partitions_snapshot_dynamic_partitions_are_read_once(
    instance: dg.DagsterInstance,
):
    with dg.DagsterInstance.from_ref(instance.get_ref()) as other_process:
        instance.add_dynamic_partitions("letters", ["a", "b"])
        storage = instance.event_log_storage
        with storage.partitions_snapshot():
            assert instance.get_dynamic_partitions("letters") == ["a", "b"]
            other_process.add_dynamic_partitions("letters", ["c"])
            # answered from the one read: neither list nor membership asks the database again
            assert instance.get_dynamic_partitions("letters") == ["a", "b"]
            assert instance.has_dynamic_partition("letters", "b")
            assert not instance.has_dynamic_partition("letters", "c")
        assert instance.get_dynamic_partitions("letters") == ["a", "b", "c"]
        assert instance.has_dynamic_partition("letters", "c")


def test_a_runs_planned_materializations_are_stored_together_and_read_as_dagster_reads_them(
    instance: dg.DagsterInstance,
):
    letters = dg.StaticPartitionsDefinition(["a", "b", "c"])
    batched = dg.BackfillPolicy.single_run()

    @dg.asset(partitions_def=letters, backfill_policy=batched)
    def first(context: dg.AssetExecutionContext) -> None:
        pass

    @dg.asset(partitions_def=letters, backfill_policy=batched, deps=[first])
    def second(context: dg.AssetExecutionContext) -> None:
        pass

    with _calls_to("store_event") as stored_alone:
        result = dg.materialize([first, second], instance=instance, tags=range_tags("a", "c"))
    assert result.success
    alone = [call.args[1].dagster_event_type for call in stored_alone.call_args_list]
    assert dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED not in alone
    assert dg.DagsterEventType.RUN_START in alone  # other events are stored as before

    planned = instance.get_records_for_run(
        result.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED
    ).records
    assert sorted((r.asset_key.to_user_string(), r.partition_key) for r in planned) == [
        (asset, letter) for asset in ("first", "second") for letter in "abc"
    ]
    for key in (dg.AssetKey("first"), dg.AssetKey("second")):
        (record,) = instance.get_asset_records([key])
        assert record.asset_entry.last_run_id == result.run_id
        for letter in "abc":
            info = instance.event_log_storage.get_latest_planned_materialization_info(
                key, partition=letter
            )
            assert info is not None and info.run_id == result.run_id
