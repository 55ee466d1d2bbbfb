import time
from collections.abc import Callable, Collection, Sequence

import dagster as dg
from dagster._core.storage.tags import (  # the tags of Dagster's own single-run backfills
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

# The one partitions definition of the pipeline: a partition per artist, keyed by slug
# (see slugs.py); the display name lives in the `artists` table.
artists_partitions = dg.DynamicPartitionsDefinition(name="artists")

# Partitions per run of a backfill (UI, sensors, schedules, `rap-pipeline run`): a run costs
# seconds of Dagster overhead, one partition's work is often milliseconds. See README
# "Refresh" (`rap-pipeline benchmark refresh`) for the measurement behind the number.
PARTITIONS_PER_RUN = 50
BATCHED_BACKFILLS = dg.BackfillPolicy.multi_run(max_partitions_per_run=PARTITIONS_PER_RUN)


def partition_batches(
    ordered: Sequence[str], wanted: Collection[str], size: int = PARTITIONS_PER_RUN
) -> list[list[str]]:
    """The ``wanted`` partitions in batches of at most ``size`` that are contiguous in the
    instance's order (``ordered``): what one run each materializes, since a run covers a range
    of partitions (first … last), not a set."""
    batches: list[list[str]] = []
    previous_wanted = False
    for key in ordered:
        if key not in wanted:
            previous_wanted = False
            continue
        if previous_wanted and len(batches[-1]) < size:
            batches[-1].append(key)
        else:
            batches.append([key])
        previous_wanted = True
    return batches


def range_tags(first: str, last: str) -> dict[str, str]:
    """The run tags of a run over the partitions ``first`` … ``last``."""
    return {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last}


def execute_in_batches(
    job: dg.JobDefinition,
    instance: dg.DagsterInstance,
    slugs: Collection[str],
    run_config: dict,
    size: int = PARTITIONS_PER_RUN,
    on_result: Callable[[list[str], dg.ExecuteInProcessResult, float], None] | None = None,
) -> list[dg.ExecuteInProcessResult]:
    """``job`` in process over ``slugs``, one run per range of at most ``size`` partitions (what
    the backfill policy gives the daemon's runs); ``on_result(partitions, result, seconds)``
    after each run."""
    ordered = instance.get_dynamic_partitions(artists_partitions.name)
    results = []
    for batch in partition_batches(ordered, set(slugs), size):
        started = time.perf_counter()
        result = job.execute_in_process(
            instance=instance,
            tags=range_tags(batch[0], batch[-1]),
            run_config=run_config,
            raise_on_error=False,
        )
        if on_result is not None:
            on_result(batch, result, time.perf_counter() - started)
        results.append(result)
    return results


def launch_backfill(
    instance: dg.DagsterInstance,
    graph,
    assets: Sequence[str],
    slugs: Sequence[str],
    run_config: dict | None = None,
    reason: str = "rap-pipeline backfill",
) -> str:
    """Adds a backfill of ``assets`` × ``slugs`` to the instance, as the UI's "materialize
    partitions" does; the daemon runs it in batched runs. Returns its id."""
    from dagster._core.execution.backfill import PartitionBackfill
    from dagster._core.utils import make_new_backfill_id
    from dagster._time import get_current_timestamp

    title = f"{reason}: {' '.join(assets)}"
    backfill = PartitionBackfill.from_asset_partitions(
        backfill_id=make_new_backfill_id(),
        asset_graph=graph,
        partition_names=list(slugs),
        asset_selection=[dg.AssetKey(name) for name in assets],
        backfill_timestamp=get_current_timestamp(),
        tags={"rap_pipeline/reason": reason},
        dynamic_partitions_store=instance,
        all_partitions=False,
        title=title if len(title) <= 100 else reason,  # Dagster's limit
        description=None,
        run_config=run_config,
    )
    instance.add_backfill(backfill)
    return backfill.backfill_id
