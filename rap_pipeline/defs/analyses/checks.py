"""Data tests of every analysis asset: coverage, documented ranges, and spread.

The spread check exists because of the system we replace: its rhyme density was 1.0 for 98%
of songs, i.e. it measured nothing. A metric whose values collapse onto one value across the
stored results of every artist fails it.
"""

from __future__ import annotations

from collections import Counter

import dagster as dg
import psycopg

from rap_pipeline.defs.analyses.analyzer import AnalyzerInfo

# the spread check needs this many results before it judges
MIN_RESULTS_FOR_SPREAD = 20
# at most this share of results may share one value of a spread-checked metric
MAX_MODE_SHARE = 0.5
# beyond this many rows in ``analyses`` the spread is judged on a random sample of about as
# many: every run judges it, and a scan of every stored result would grow with the corpus
SPREAD_SAMPLE_ROWS = 20_000
MIN_SAMPLED_RESULTS = 2_000  # fewer in the sample: judged on all of them


def analysis_check_specs(asset_name: str) -> list[dg.AssetCheckSpec]:
    asset = dg.AssetKey(asset_name)
    return [
        dg.AssetCheckSpec(
            f"{asset_name}_covers_kept_tracks",
            asset=asset,
            description="Every kept track of the artist has a current result or a recorded "
            "failure of this analyzer version.",
        ),
        dg.AssetCheckSpec(
            f"{asset_name}_values_in_range",
            asset=asset,
            description="Every numeric metric of every result lies in its documented range.",
        ),
        dg.AssetCheckSpec(
            f"{asset_name}_metrics_spread",
            asset=asset,
            description=f"Across all artists' current results (once there are "
            f"{MIN_RESULTS_FOR_SPREAD}; a random sample when the table holds more than "
            f"{SPREAD_SAMPLE_ROWS:,} rows), no checked metric has zero spread or more than "
            f"{MAX_MODE_SHARE:.0%} of results on one value.",
        ),
    ]


def coverage_result(asset_name: str, kept: int, ok: int, failed: int) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=f"{asset_name}_covers_kept_tracks",
        asset_key=dg.AssetKey(asset_name),
        passed=ok + failed == kept,
        metadata={"kept_tracks": kept, "ok": ok, "failed": failed, "missing": kept - ok - failed},
    )


def _numbers(result: dict, prefix: str = "") -> dict[str, float]:
    values: dict[str, float] = {}
    for key, value in result.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            values[prefix + key] = float(value)
        elif isinstance(value, dict):
            values.update(_numbers(value, f"{prefix}{key}."))
    return values


def check_ranges(asset_name: str, info: AnalyzerInfo, results: list[dict]) -> dg.AssetCheckResult:
    outside: Counter[str] = Counter()
    examples: dict[str, float] = {}
    for result in results:
        for name, value in _numbers(result).items():
            bounds = info.ranges.get(name)
            if bounds is None:
                continue
            if not bounds.low <= value <= bounds.high or value != value:  # NaN fails too
                outside[name] += 1
                examples.setdefault(name, value)
    return dg.AssetCheckResult(
        check_name=f"{asset_name}_values_in_range",
        asset_key=dg.AssetKey(asset_name),
        passed=not outside,
        metadata={
            "results_checked": len(results),
            "metrics_with_ranges": len(info.ranges),
            "out_of_range": dict(outside) or "none",
            "examples": {k: float(v) for k, v in examples.items()} or "none",
        },
    )


def check_spread(
    conn: psycopg.Connection, asset_name: str, info: AnalyzerInfo, metrics: list[str]
) -> dg.AssetCheckResult:
    """Computed in PostgreSQL, every metric in one scan (of a sample of the table's pages
    once it is large): each run judges the stored results without reading them back. An
    analyzer with few rows in a large table is judged on all of them."""
    (table_rows,) = conn.execute(
        "SELECT greatest(reltuples, 0) FROM pg_class WHERE oid = 'analyses'::regclass"
    ).fetchone()
    percent = min(100.0, 100.0 * SPREAD_SAMPLE_ROWS / table_rows) if table_rows else 100.0
    rows = _spread_by_metric(conn, info, metrics, percent)
    if percent < 100 and max((row[1] for row in rows), default=0) < MIN_SAMPLED_RESULTS:
        percent = 100.0
        rows = _spread_by_metric(conn, info, metrics, percent)
    total = max((count for _, count, _, _ in rows), default=0)
    collapsed: dict[str, str] = {}
    spread: dict[str, float] = {}
    for metric, count, stdev, mode_count in sorted(rows):
        if count < MIN_RESULTS_FOR_SPREAD:
            continue
        spread[metric] = round(stdev, 4)
        mode_share = mode_count / count
        if stdev == 0 or mode_share > MAX_MODE_SHARE:
            collapsed[metric] = f"stdev {stdev:.4f}, {mode_share:.0%} on one value"
    return dg.AssetCheckResult(
        check_name=f"{asset_name}_metrics_spread",
        asset_key=dg.AssetKey(asset_name),
        passed=not collapsed,
        metadata={
            "results": total,
            "sampled": f"{percent:.0f}% of the table's pages" if percent < 100 else "no",
            "judged": total >= MIN_RESULTS_FOR_SPREAD,
            "stdev": spread or "not judged yet",
            "collapsed": collapsed or "none",
        },
    )


def _spread_by_metric(
    conn: psycopg.Connection, info: AnalyzerInfo, metrics: list[str], percent: float
) -> list[tuple[str, int, float, int]]:
    """(metric, results, stdev, results on its most common value) of the current ok results
    in ``percent`` of the table's pages."""
    return conn.execute(
        """WITH v AS (
             SELECT m.metric, (a.result->>m.metric)::float AS value
             FROM analyses a TABLESAMPLE SYSTEM (%(percent)s)
                  JOIN tracks t ON t.id = a.track_id AND t.status = 'kept'
                  CROSS JOIN unnest(%(metrics)s::text[]) AS m(metric)
             WHERE a.status = 'ok' AND a.analyzer = %(name)s
               AND a.analyzer_version = %(version)s AND a.method = %(method)s
               AND jsonb_typeof(a.result->m.metric) = 'number'),
           modes AS (
             SELECT metric, max(n) AS mode_count
             FROM (SELECT metric, count(*) AS n FROM v
                   GROUP BY metric, round(value::numeric, 6)) counted
             GROUP BY metric)
           SELECT v.metric, count(*), stddev_pop(v.value), min(modes.mode_count)
           FROM v JOIN modes USING (metric) GROUP BY v.metric""",
        {
            "metrics": metrics,
            "percent": percent,
            "name": info.name,
            "version": info.version,
            "method": info.method,
        },
    ).fetchall()
