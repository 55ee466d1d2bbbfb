"""Partitions whose data has come due (stale, or a retry time reached), and the batched runs
that refresh them: what the staleness sensors and the re-enrichment schedule request.

A sensor's cursor is the due time it has handled up to: each tick asks for what came due
since, so a partition is requested once when it comes due, not on every tick until its run
has finished. A run that fails leaves its items due; the weekly schedule (which ignores the
cursor) and the failed-partitions sensor pick them up again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import dagster as dg
import psycopg

from rap_pipeline.defs.artists.partitions import artists_partitions, partition_batches, range_tags

# at most this many runs per tick (each of up to PARTITIONS_PER_RUN partitions)
MAX_RUNS_PER_TICK = 4
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_JUST_BEFORE = dt.timedelta(microseconds=1)


@dataclass(frozen=True)
class DuePartition:
    asset: str
    slug: str
    due_at: dt.datetime


def due_partitions(
    conn: psycopg.Connection, due_sql: str, params: dict, since: dt.datetime | None
) -> tuple[list[DuePartition], dt.datetime]:
    """The (asset, partition) pairs with an item that came due after ``since`` (any time,
    if None) and by now, earliest first; and the database's now. ``due_sql`` selects rows
    (asset, artist_slug, due_at)."""
    now = conn.execute("SELECT now()").fetchone()[0]
    rows = conn.execute(
        f"""SELECT asset, artist_slug, min(due_at) FROM ({due_sql}) d
            WHERE due_at > %(since)s AND due_at <= %(now)s
            GROUP BY asset, artist_slug ORDER BY 3, 1, 2""",
        {**params, "since": since or _EPOCH, "now": now},
    ).fetchall()
    return [DuePartition(*row) for row in rows], now


def batched_run_requests(
    due: Sequence[DuePartition],
    ordered: Sequence[str],
    reason: str,
    max_runs: int | None = None,
) -> tuple[list[dg.RunRequest], list[DuePartition]]:
    """Runs of each asset over ranges of its due partitions (in the instance's order), at
    most ``max_runs``; and the due partitions left for later (earliest due first).
    Partitions that are no longer partitions (a removed artist) are dropped."""
    known = set(ordered)
    by_asset: dict[str, set[str]] = {}
    for item in due:
        if item.slug in known:
            by_asset.setdefault(item.asset, set()).add(item.slug)
    requests, covered = [], set()
    for asset, slugs in sorted(by_asset.items()):
        for batch in partition_batches(ordered, slugs):
            if max_runs is not None and len(requests) >= max_runs:
                break
            covered.update((asset, slug) for slug in batch)
            requests.append(
                dg.RunRequest(
                    asset_selection=[dg.AssetKey(asset)],
                    tags={**range_tags(batch[0], batch[-1]), "rap_pipeline/reason": reason},
                )
            )
    left = [d for d in due if d.slug in known and (d.asset, d.slug) not in covered]
    return requests, left


def due_partitions_tick(
    context: dg.SensorEvaluationContext,
    conn: psycopg.Connection,
    due_sql: str,
    params: dict,
    what: str,
) -> dg.SensorResult:
    """One sensor tick: batched runs for what came due since the cursor, at most
    ``MAX_RUNS_PER_TICK``; the cursor moves to just before the earliest item left over."""
    since = dt.datetime.fromisoformat(context.cursor) if context.cursor else None
    due, now = due_partitions(conn, due_sql, params, since)
    ordered = context.instance.get_dynamic_partitions(artists_partitions.name)
    requests, left = batched_run_requests(due, ordered, what, MAX_RUNS_PER_TICK)
    cursor = min(d.due_at for d in left) - _JUST_BEFORE if left else now
    if not requests:
        since_text = since.isoformat(timespec="seconds") if since else "the start"
        return dg.SensorResult(
            skip_reason=dg.SkipReason(f"no partition's {what} came due since {since_text}"),
            cursor=cursor.isoformat(),
        )
    context.log.info(
        "%s: %d partition(s) in %d run(s); %d left for the next tick",
        what,
        len(due) - len(left),
        len(requests),
        len(left),
    )
    return dg.SensorResult(run_requests=requests, cursor=cursor.isoformat())
