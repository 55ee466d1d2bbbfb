"""The benchmark's constants and partitions: generated tracks written per artist, and timed
materializations of one asset over them."""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import dagster as dg
from rich.progress import Progress

from rap_pipeline.benchmarks.setup import Row, ratio, write_records
from rap_pipeline.core.database import connect
from rap_pipeline.defs.analyses.analyzer import TrackText

BENCH_DATABASE = "rap_pipeline_benchmark_analyses"
SEED = 7
TRACKS_PER_ARTIST = 50
ROUNDS = 3  # bare and asset passes, interleaved; the best of each is reported
EMOTION_SAMPLE = 30  # tracks the random-weight transformer reads
EMOTION_SAMPLE_ARTIST = "Benchmark Emotion Sample"
LLM_SAMPLE_ARTIST = "Benchmark LLM Sample"
EMOTION_LABELS = ("anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise")
TOKENIZER_VOCAB = 8_000
GOAL_RATIO = "goal ≥ 90%"
# the analyzers' own warnings (the lexicon standing in, every partition) stay off the screen
_QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def _runs(count: int) -> str:
    return f"{count} run" if count == 1 else f"{count} runs"


@contextmanager
def _quiet() -> Iterator[None]:
    """Dagster's warnings and the analyzers' log lines off the progress display."""
    logger = logging.getLogger("rap_pipeline")
    level = logger.level
    logger.setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module="dagster")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        try:
            yield
        finally:
            logger.setLevel(level)


def write_tracks(url: str, by_artist: dict[str, list[dict]]) -> dict[str, str]:
    """Writes each artist's records as one partition; returns display name → slug."""
    return write_records(url, (r for records in by_artist.values() for r in records))


def kept_tracks(url: str, slugs: Sequence[str]) -> list[tuple[TrackText, str, str]]:
    """(track as analyzers see it, its source id, its artist slug) of the kept tracks of
    ``slugs``, by id."""
    with connect(url) as conn:
        rows = conn.execute(
            "SELECT id, title, lyrics_clean, lyrics_hash, source_id, artist_slug FROM tracks "
            "WHERE artist_slug = ANY(%s) AND status = 'kept' ORDER BY id",
            (list(slugs),),
        ).fetchall()
    return [(TrackText(*row[:4]), row[4], row[5]) for row in rows]


def copies(records: Sequence[dict], artist: str) -> list[dict]:
    """The same songs under another artist (so new tracks): a partition of exactly them."""
    return [{**record, "artist": artist} for record in records]


def delete_results(url: str, analyzer: str, slugs: Sequence[str]) -> None:
    """Every stored result of ``analyzer`` for ``slugs``: all their tracks are pending again."""
    with connect(url) as conn:
        conn.execute(
            "DELETE FROM analyses WHERE analyzer = %s AND artist_slug = ANY(%s)",
            (analyzer, list(slugs)),
        )


@dataclass
class AssetTiming:
    """Sums over the materializations of one asset in one round."""

    partitions: int = 0
    results: int = 0
    failed: int = 0
    analyze_s: float = 0.0
    wall_s: float = 0.0

    @property
    def step_rate(self) -> float:
        return self.results / self.analyze_s if self.analyze_s else 0.0

    @property
    def wall_rate(self) -> float:
        return self.results / self.wall_s if self.wall_s else 0.0

    def add(self, other: AssetTiming) -> None:
        self.partitions += other.partitions
        self.results += other.results
        self.failed += other.failed
        self.analyze_s += other.analyze_s
        self.wall_s += other.wall_s

    @property
    def besides_analyze_ms(self) -> float:
        """Per run: wall time minus the asset's ``analyze_seconds``."""
        return 1000 * (self.wall_s - self.analyze_s) / max(1, self.partitions)


def materialize_partitions(
    instance: dg.DagsterInstance,
    asset: dg.AssetsDefinition,
    slugs: Sequence[str],
    resources: dict[str, Any],
    advance: Callable[[], None] = lambda: None,
    count_key: str = "analyzed_this_run",
) -> AssetTiming:
    """One ``dg.materialize`` per partition, timed; sums the asset's own metadata."""
    name = asset.key.path[-1]
    timing = AssetTiming()
    for slug in slugs:
        started = time.perf_counter()
        result = dg.materialize(
            [asset],
            partition_key=slug,
            instance=instance,
            resources=resources,
            run_config=_QUIET_RUN_CONFIG,
        )
        timing.wall_s += time.perf_counter() - started
        (event,) = result.asset_materializations_for_node(name)
        metadata = {key: value.value for key, value in event.metadata.items()}
        timing.partitions += 1
        timing.results += int(metadata.get(count_key, 0))
        timing.failed += int(metadata.get("failed_this_run", 0))
        timing.analyze_s += float(metadata.get("analyze_seconds", 0.0))
        advance()
    return timing


def compare(
    progress: Progress,
    label: str,
    slugs: Sequence[str],
    bare: Callable[[str], float],
    materialize: Callable[[str], AssetTiming],
    reset: Callable[[], None],
) -> tuple[list[float], list[AssetTiming]]:
    """``ROUNDS`` rounds over freshly deleted results (``reset``); in each, partition by
    partition, the bare pass over the partition's tracks (``bare`` returns its seconds), then
    the asset's run on it, so both sides see the same moments of a shared machine. Returns
    the bare seconds and the asset timing of each round."""
    task = progress.add_task(label, total=ROUNDS * len(slugs))
    bare_s: list[float] = []
    timings: list[AssetTiming] = []
    for _ in range(ROUNDS):
        reset()
        seconds, timing = 0.0, AssetTiming()
        for slug in slugs:
            seconds += bare(slug)
            timing.add(materialize(slug))
            progress.advance(task)
        bare_s.append(seconds)
        timings.append(timing)
    return bare_s, timings


def asset_rows(what: str, unit: str, timings: list[AssetTiming], bare_rate: float) -> list[Row]:
    """Step, end to end and asset / bare rows, each from its best round."""
    step = max(timings, key=lambda t: t.step_rate)
    wall = max(timings, key=lambda t: t.wall_rate)
    failed = f", {step.failed} FAILED" if step.failed else ""
    return [
        (
            f"{what}: asset step",
            f"{step.results} {unit} in {step.analyze_s:.2f} s{failed}",
            f"{step.step_rate:,.1f} {unit}/s",
        ),
        (
            f"{what}: asset end to end",
            f"{_runs(wall.partitions)}, {wall.wall_s:.2f} s; "
            f"{wall.besides_analyze_ms:.0f} ms/run besides analyze",
            f"{wall.wall_rate:,.1f} {unit}/s",
        ),
        (
            f"{what}: asset / bare",
            f"step {ratio(step.step_rate, bare_rate)}, "
            f"end to end {ratio(wall.wall_rate, bare_rate)}",
            GOAL_RATIO,
        ),
    ]
