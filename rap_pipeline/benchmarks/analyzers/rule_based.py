"""The rule-based analyzer: asset against bare ``analyze_lyrics``, and bare on one core."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from collections.abc import Sequence

import dagster as dg
from rich.progress import Progress

from rap_pipeline.benchmarks.analyzers.partitions import (
    ROUNDS,
    asset_rows,
    compare,
    delete_results,
    materialize_partitions,
)
from rap_pipeline.benchmarks.setup import Row, timed
from rap_pipeline.core.database import connect
from rap_pipeline.core.resources import DatabaseResource
from rap_pipeline.defs.analyses.analyzer import TrackText
from rap_pipeline.defs.analyses.assets import (
    SPREAD_METRICS,
    rule_based_analysis,
)
from rap_pipeline.defs.analyses.checks import check_spread
from rap_pipeline.defs.analyses.rule_based import RuleBasedAnalyzer, analyze_lyrics


def _analyze_all(texts: Sequence[str]) -> None:
    for text in texts:
        analyze_lyrics(text)


def rule_based_on_one_core() -> None:
    """Run in a subprocess (a fresh interpreter): lyrics texts as JSON on stdin; pins itself
    to one core, makes one untimed pass, then prints the core and the seconds of each of
    ``ROUNDS`` timed passes of ``analyze_lyrics``, as JSON."""
    texts = json.load(sys.stdin)
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    _analyze_all(texts)
    seconds = [timed(lambda: _analyze_all(texts)) for _ in range(ROUNDS)]
    print(json.dumps([core, seconds]))


def _rule_based_pinned(texts: list[str]) -> tuple[int, float]:
    """(core, best seconds) of ``rule_based_on_one_core`` in a fresh interpreter."""
    code = f"from {__name__} import rule_based_on_one_core; rule_based_on_one_core()"
    done = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    core, seconds = json.loads(done.stdout.strip().splitlines()[-1])
    return core, min(seconds)


def bench_rule_based(
    instance: dg.DagsterInstance,
    url: str,
    slugs: Sequence[str],
    tracks: list[tuple[TrackText, str]],
    progress: Progress,
) -> list[Row]:
    """``tracks``: (track, its artist slug)."""
    texts = [track.lyrics for track, _ in tracks]
    texts_of: dict[str, list[str]] = defaultdict(list)
    for track, slug in tracks:
        texts_of[slug].append(track.lyrics)
    database = DatabaseResource(url=url)
    _analyze_all(texts)  # CMU dictionary, VADER, pronunciations: warm for every timed pass
    bare_s, timings = compare(
        progress,
        "rule-based: bare and asset",
        slugs,
        lambda slug: timed(lambda: _analyze_all(texts_of[slug])),
        lambda slug: materialize_partitions(
            instance, rule_based_analysis, [slug], {"database": database}
        ),
        lambda: delete_results(url, "rule_based", slugs),
    )
    bare_rate = len(texts) / min(bare_s)
    rows = [
        (
            "rule-based: bare analyze_lyrics",
            f"{len(texts)} tracks in {min(bare_s):.2f} s",
            f"{bare_rate:,.1f} tracks/s",
        )
    ]
    if hasattr(os, "sched_setaffinity"):
        task = progress.add_task("rule-based: bare, pinned to 1 core", total=1)
        core, core_s = _rule_based_pinned(texts)
        progress.advance(task)
        rows.append(
            (
                "rule-based: bare on 1 core",
                f"pinned to cpu {core} (sched_setaffinity), {core_s:.2f} s",
                f"{len(texts) / core_s:,.1f} tracks/s (goal ≥ 200)",
            )
        )
    else:
        rows.append(("rule-based: bare on 1 core", "no sched_setaffinity here", "not measured"))
    rows += asset_rows("rule-based", "tracks", timings, bare_rate)
    # what a run costs besides analyze, with every result stored: a run with nothing pending,
    # and the spread check in it, which reads every stored result of the analyzer each run
    idle_s = min(
        materialize_partitions(
            instance, rule_based_analysis, slugs[-1:], {"database": database}
        ).wall_s
        for _ in range(ROUNDS)
    )
    with connect(url) as conn:
        spread_s = min(
            timed(
                lambda: check_spread(
                    conn,
                    "rule_based_analysis",
                    RuleBasedAnalyzer.info,
                    SPREAD_METRICS["rule_based"],
                )
            )
            for _ in range(ROUNDS)
        )
        (stored,) = conn.execute(
            "SELECT count(*) FROM analyses WHERE analyzer = 'rule_based' AND status = 'ok'"
        ).fetchone()
    rows += [
        (
            "rule-based: asset run, nothing pending",
            f"1 run with {stored} results stored: {1000 * idle_s:.0f} ms",
            "Dagster + reads + checks",
        ),
        (
            "rule-based: spread check, per run",
            f"judges all {stored} stored results: {1000 * spread_s:.0f} ms",
            f"{1e6 * spread_s / max(1, stored):.0f} µs per stored result",
        ),
    ]
    return rows
