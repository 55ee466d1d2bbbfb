"""Running a partitioned asset over every partition of its run.

A backfill (from the UI, a sensor, a schedule or ``rap-pipeline run``) gives each run up to
``PARTITIONS_PER_RUN`` artist partitions, because a run costs seconds of Dagster overhead and
a partition's work is often milliseconds. Dagster records a multi-partition step as one
outcome, so the partitions are isolated here: a partition that raises is logged, recorded in
``partition_failures`` (and retried later by ``failed_partitions_sensor``), and the others
are materialized. Only a run whose every partition failed fails, so a one-partition run
behaves as before (its step retry policy applies). An error that concerns every partition
(``dg.Failure`` with ``allow_retries=False``: configuration) stops the run at once.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field

import dagster as dg
import psycopg

from rap_pipeline.core.dagster_storage import TableCachingEventLogStorage
from rap_pipeline.core.database import refresh_stale_statistics
from rap_pipeline.core.resources import DatabaseResource

# a failed partition is run again after 10 minutes, then 1 h, 6 h, and daily
RETRY_DELAYS = (dt.timedelta(minutes=10), dt.timedelta(hours=1), dt.timedelta(hours=6))
MAX_RETRY_DELAY = dt.timedelta(days=1)
FAILED_PARTITIONS_LISTED = 20


class PartitionError(Exception):
    """A problem of one partition that a retry cannot fix (e.g. an unregistered artist)."""


@dataclass
class PartitionOutcome:
    """What one partition's materialization says: its metadata and its checks' results."""

    metadata: dict = field(default_factory=dict)
    check_results: list[dg.AssetCheckResult] = field(default_factory=list)


def materialize_partitions(
    context: dg.AssetExecutionContext,
    database: DatabaseResource,
    materialize_one: Callable[[str], PartitionOutcome],
    run_checks: Callable[[], list[dg.AssetCheckResult]] | None = None,
    finish: Callable[[list[str]], dict[str, PartitionOutcome | Exception]] | None = None,
) -> dg.MaterializeResult:
    """``materialize_one(slug)`` for every partition of the run, each partition's metadata on
    its own materialization, and each check's results merged into one per check. ``finish``,
    given the partitions that succeeded, completes them together (writes and checks done once
    per run): what it returns for a partition is added to its outcome, or fails it. Checks
    that judge all partitions together (``run_checks``) run once, after the partitions."""
    asset_name = context.asset_key.path[-1]
    slugs = list(context.partition_keys)
    with database.connect() as conn:
        refresh_stale_statistics(conn)  # what earlier runs wrote, so the planner knows
    outcomes: dict[str, PartitionOutcome] = {}
    errors: dict[str, Exception] = {}

    def failed(slug: str, exc: Exception) -> None:
        if len(slugs) == 1:
            if isinstance(exc, PartitionError):
                raise dg.Failure(str(exc), allow_retries=False) from exc
            raise exc
        errors[slug] = exc
        context.log.error("%s, partition %s failed: %s", asset_name, slug, _describe(exc))

    for slug in slugs:
        started = time.perf_counter()
        try:
            outcomes[slug] = materialize_one(slug)
        except dg.Failure as exc:
            if not exc.allow_retries:
                raise
            failed(slug, exc)
            continue
        except Exception as exc:
            failed(slug, exc)
            continue
        # the partition's own work, without Dagster's share of the run
        outcomes[slug].metadata["partition_seconds"] = round(time.perf_counter() - started, 4)
    if finish is not None and outcomes:
        started = time.perf_counter()
        for slug, completed in finish(list(outcomes)).items():
            if isinstance(completed, Exception):
                del outcomes[slug]
                failed(slug, completed)
                continue
            outcomes[slug].metadata.update(completed.metadata)
            outcomes[slug].check_results.extend(completed.check_results)
        shared_s = (time.perf_counter() - started) / max(len(outcomes), 1)
        for outcome in outcomes.values():  # each partition's share of the work done together
            outcome.metadata["partition_seconds"] = round(
                outcome.metadata["partition_seconds"] + shared_s, 4
            )
    with _partitions_read_once(context):
        for slug in slugs:
            if slug in errors:
                metadata = {"partition_status": "failed", "error": _describe(errors[slug])}
            else:
                metadata = {"partition_status": "ok", **outcomes[slug].metadata}
            context.add_asset_metadata(metadata, partition_key=slug)
    with database.connect() as conn:
        record_failures(conn, asset_name, errors)
        clear_failures(conn, asset_name, outcomes)
    if not outcomes:
        raise dg.Failure(
            f"{asset_name}: all {len(slugs)} partitions failed",
            metadata={"errors": {slug: _describe(exc) for slug, exc in errors.items()}},
        )
    failed_slugs = sorted(errors)
    return dg.MaterializeResult(
        metadata={
            "partitions": len(slugs),
            "partitions_failed": len(failed_slugs),
            "failed_partitions": failed_slugs[:FAILED_PARTITIONS_LISTED] or "none",
        },
        check_results=merge_check_results(outcomes) + (run_checks() if run_checks else []),
    )


def _partitions_read_once(context: dg.AssetExecutionContext) -> AbstractContextManager:
    """Dagster reads every artist partition each time a partition's metadata is added; with
    the project's storage, once per step is enough (a run's partitions cannot change)."""
    storage = context.instance.event_log_storage
    if isinstance(storage, TableCachingEventLogStorage):
        return storage.partitions_snapshot()
    return nullcontext()


def merge_check_results(outcomes: dict[str, PartitionOutcome]) -> list[dg.AssetCheckResult]:
    """One result per check for the run (a check can be reported once per step): passed when
    it passed in every partition; the failing partitions are named, and with one partition
    (or one failing partition) its own metadata is kept."""
    by_check: dict[tuple, dict[str, dg.AssetCheckResult]] = {}
    for slug, outcome in outcomes.items():
        for result in outcome.check_results:
            by_check.setdefault((result.asset_key, result.check_name), {})[slug] = result
    merged = []
    for results in by_check.values():
        if len(results) == 1:
            merged.append(next(iter(results.values())))
            continue
        failing = {slug: r for slug, r in results.items() if not r.passed}
        shown = next(iter(failing.values()), next(iter(results.values())))
        merged.append(
            dg.AssetCheckResult(
                asset_key=shown.asset_key,
                check_name=shown.check_name,
                passed=not failing,
                severity=shown.severity,
                metadata={
                    **shown.metadata,
                    "partitions_checked": len(results),
                    "failing_partitions": sorted(failing)[:FAILED_PARTITIONS_LISTED] or "none",
                },
            )
        )
    return merged


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:200]


def _describe(exc: BaseException) -> str:
    message = _first_line(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def record_failures(conn: psycopg.Connection, asset: str, errors: dict[str, Exception]) -> None:
    for slug, exc in errors.items():
        attempts = conn.execute(
            """INSERT INTO partition_failures AS f
                 (asset, artist_slug, error_class, message, next_attempt_at)
               VALUES (%s, %s, %s, %s, now())
               ON CONFLICT (asset, artist_slug) DO UPDATE SET
                 error_class = EXCLUDED.error_class, message = EXCLUDED.message,
                 attempts = f.attempts + 1, failed_at = now()
               RETURNING attempts""",
            (asset, slug, type(exc).__name__, _first_line(exc)),
        ).fetchone()[0]
        conn.execute(
            "UPDATE partition_failures SET next_attempt_at = now() + %s "
            "WHERE asset = %s AND artist_slug = %s",
            (retry_delay(attempts), asset, slug),
        )


def retry_delay(attempts: int) -> dt.timedelta:
    return RETRY_DELAYS[attempts - 1] if attempts <= len(RETRY_DELAYS) else MAX_RETRY_DELAY


def clear_failures(conn: psycopg.Connection, asset: str, slugs: Iterable[str]) -> None:
    conn.execute(
        "DELETE FROM partition_failures WHERE asset = %s AND artist_slug = ANY(%s)",
        (asset, list(slugs)),
    )
