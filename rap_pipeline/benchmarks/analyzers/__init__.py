"""`rap-pipeline benchmark analyzers`: each analysis asset's throughput against its bare
function or model on the same inputs, in the same run, in a throwaway database
(rap_pipeline_benchmark_analyses).

Setup: ``tracks`` generated tracks (``corpus_generator.generate``) over ``tracks / 50``
artists, written by the pipeline's own ``prepare_rows`` / ``write_partition``, one partition
per artist, registered in an ephemeral Dagster instance. Every asset figure comes from
``dg.materialize`` of the real asset with its real resources, one run per partition (each
asset alone), and is given two ways:

- *step*: results over the sum of the asset's own ``analyze_seconds`` metadata (the
  analyzer's ``analyze`` call inside the asset, nothing else);
- *end to end*: results over the wall time of the materializations: reading the pending
  tracks, writing the results, the three asset checks and Dagster's run machinery included
  ("ms/run besides analyze" is that wall time minus ``analyze_seconds``, per run).

Rule-based, lexicon and transformer figures are the best of ``ROUNDS`` rounds on freshly
deleted results; in each round, partition by partition, the bare pass over that partition's
tracks and then the asset's run on it, so both sides see the same moments of a machine that
may be shared (the table says how loaded it was). What each bare figure is:

- rule-based: ``analyze_lyrics`` over the same kept lyrics, after one untimed pass over all
  of them (CMU dictionary, VADER and the pronunciation cache are warm for every timed pass,
  the asset's included). Per core: the same in a fresh interpreter pinned to one core with
  ``os.sched_setaffinity`` (warm pass, then timed passes); the analyzer is single-threaded
  Python, so that wall time is one core's time. With every result stored, a run with nothing
  pending is timed (Dagster's run, the reads and the checks: the fixed cost of a run), and so
  is the spread check alone, which reads every stored result of the analyzer on every run;
- emotion, lexicon stand-in (what offline runs use): ``LexiconEmotionAnalyzer().analyze``
  against ``emotion_analysis`` given an unloadable model (an empty folder), which falls back;
- emotion, transformers: no pretrained model offline, so a DistilRoBERTa-sized classifier
  (6 layers, hidden 768, 12 heads, intermediate 3072, 514 positions, 7 labels) with RANDOM
  weights and a byte-level BPE tokenizer trained on the generated lyrics is saved to a temp
  folder: speed only, its probabilities mean nothing (its vocabulary is smaller than
  RoBERTa's 50k, which only shrinks the embedding table, not the compute per token). A
  partition holds a sample of the tracks (copied under one artist); bare is the same loaded
  model object's ``predict_chunks`` on those tracks' chunks (the analyzer's ``chunk_texts``,
  its batch size), in input order and sorted by token count (as the analyzer batches), in
  chunks/s; the asset is ``emotion_analysis`` with ``EmotionModelResource(model_id=<folder>)``;
- LLM: a minimal OpenAI-compatible server in this process (so its little CPU work shares the
  interpreter with the client's) answers every chat completion after a fixed delay with one
  valid analysis. The bare figure is the ideal ``concurrency / delay``;
  ``llm_analysis`` runs once on a partition of ``llm_tracks`` copied tracks with the Redis
  guard (a fresh namespace, so nothing is cached; 1000 requests/s, so it never throttles), at
  the configured concurrency and at concurrency 1; the server counts requests in flight. One
  untimed request first settles the server's response format, as it is on every run but the
  first against a server (that first run sends its first track alone: one delay more);
- hybrid: the asset only, end to end (it combines stored results; there is no bare model).
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import dagster as dg
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from rap_pipeline.benchmarks.analyzers.emotion import bench_lexicon, bench_transformers
from rap_pipeline.benchmarks.analyzers.llm import bench_llm
from rap_pipeline.benchmarks.analyzers.partitions import (
    BENCH_DATABASE,
    EMOTION_SAMPLE,
    EMOTION_SAMPLE_ARTIST,
    LLM_SAMPLE_ARTIST,
    ROUNDS,
    SEED,
    TRACKS_PER_ARTIST,
    _quiet,
    _runs,
    copies,
    kept_tracks,
    materialize_partitions,
    write_tracks,
)
from rap_pipeline.benchmarks.analyzers.rule_based import bench_rule_based
from rap_pipeline.benchmarks.setup import Row, fresh_database
from rap_pipeline.core.database import close_pool
from rap_pipeline.core.resources import DatabaseResource
from rap_pipeline.defs.analyses.assets import (
    hybrid_analysis,
)
from rap_pipeline.defs.artists.partitions import artists_partitions
from rap_pipeline.defs.tracks.corpus import record_to_track
from rap_pipeline.samples.corpus_generator import generate


def run_analyzer_benchmark(
    database_url: str,
    redis_url: str,
    tracks: int,
    llm_tracks: int,
    llm_delay_s: float,
    llm_concurrency: int,
) -> list[Row]:
    """The table rows (measure, value, rate / goal); see the module docstring."""
    if tracks < EMOTION_SAMPLE or llm_tracks < 1 or llm_delay_s <= 0 or llm_concurrency < 1:
        raise ValueError(
            f"need at least {EMOTION_SAMPLE} tracks, 1 LLM track, a positive delay and concurrency"
        )
    url = fresh_database(database_url, BENCH_DATABASE)
    records = list(generate(max(1, round(tracks / TRACKS_PER_ARTIST)), tracks, SEED))
    by_artist: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        by_artist[record["artist"]].append(record)
    load_at_start = os.getloadavg()[0]
    rows: list[Row] = [
        ("timing", f"best of {ROUNDS} rounds; bare, then asset, partition by partition", "")
    ]
    progress = Progress(
        TextColumn("[bold]{task.description:<50}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    try:
        with (
            _quiet(),
            progress,
            dg.DagsterInstance.ephemeral() as instance,
            tempfile.TemporaryDirectory(prefix="rap-benchmark-") as scratch,
        ):
            task = progress.add_task("tracks (write_partition)", total=1)
            started = time.perf_counter()
            slugs = list(write_tracks(url, by_artist).values())
            seconds = time.perf_counter() - started
            main = kept_tracks(url, slugs)
            tracks_main = [(track, slug) for track, _, slug in main]
            rows.append(
                (
                    "tracks written",
                    f"write_partition: {len(main)} kept of {tracks}, {len(slugs)} artists",
                    f"{tracks / seconds:,.0f} tracks/s",
                )
            )
            # partitions of exactly the tracks the transformer and the LLM server get
            record_of = {record_to_track(r).source_id: r for r in records}
            rng = random.Random(SEED)
            emotion_ids = rng.sample([sid for _, sid, _ in main], EMOTION_SAMPLE)
            llm_ids = rng.sample([sid for _, sid, _ in main], min(llm_tracks, len(main)))
            samples = write_tracks(
                url,
                {
                    EMOTION_SAMPLE_ARTIST: copies(
                        [record_of[s] for s in emotion_ids], EMOTION_SAMPLE_ARTIST
                    ),
                    LLM_SAMPLE_ARTIST: copies([record_of[s] for s in llm_ids], LLM_SAMPLE_ARTIST),
                },
            )
            instance.add_dynamic_partitions(artists_partitions.name, [*slugs, *samples.values()])
            progress.advance(task)

            rows += bench_rule_based(instance, url, slugs, tracks_main, progress)
            unloadable = Path(scratch, "no-model")
            unloadable.mkdir()
            rows += bench_lexicon(instance, url, slugs, tracks_main, progress, str(unloadable))
            model_folder = Path(scratch, "random-distilroberta")
            model_folder.mkdir()
            emotion_slug = samples[EMOTION_SAMPLE_ARTIST]
            rows += bench_transformers(
                instance,
                url,
                emotion_slug,
                [track for track, _, _ in kept_tracks(url, [emotion_slug])],
                [track.lyrics for track, _ in tracks_main],
                progress,
                model_folder,
            )
            rows += bench_llm(
                instance,
                url,
                redis_url,
                samples[LLM_SAMPLE_ARTIST],
                llm_delay_s,
                llm_concurrency,
                progress,
            )
            task = progress.add_task("hybrid: asset", total=len(slugs))
            timing = materialize_partitions(
                instance,
                hybrid_analysis,
                slugs,
                {"database": DatabaseResource(url=url)},
                lambda: progress.advance(task),
                count_key="combined_this_run",
            )
            rows.append(
                (
                    "hybrid: asset end to end",
                    f"{_runs(timing.partitions)}, {timing.results} tracks in {timing.wall_s:.2f} s",
                    f"{timing.wall_rate:,.1f} tracks/s",
                )
            )
    finally:
        close_pool(url)
    # the machine may be shared: how busy it was says how far to trust the ratios
    rows.insert(
        1,
        (
            "machine",
            f"{os.cpu_count()} cores, 1-min load average {load_at_start:.2f} at the start, "
            f"{os.getloadavg()[0]:.2f} at the end",
            "",
        ),
    )
    return rows
