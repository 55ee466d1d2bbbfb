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
  the configured concurrency and at concurrency 1; the server counts requests in flight;
- hybrid: the asset only, end to end (it combines stored results; there is no bare model).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from rap_pipeline.core.database import close_pool, connect
from rap_pipeline.core.local_http import LocalHTTPServer
from rap_pipeline.core.resources import DatabaseResource, RedisResource
from rap_pipeline.defs.analyses.analyzer import TrackText
from rap_pipeline.defs.analyses.assets import (
    SPREAD_METRICS,
    emotion_analysis,
    hybrid_analysis,
    llm_analysis,
    rule_based_analysis,
)
from rap_pipeline.defs.analyses.checks import check_spread
from rap_pipeline.defs.analyses.emotion import LexiconEmotionAnalyzer, TransformersEmotionAnalyzer
from rap_pipeline.defs.analyses.llm import SCORE_ASPECTS, LyricsAnalysis
from rap_pipeline.defs.analyses.resources import EmotionModelResource, LLMResource
from rap_pipeline.defs.analyses.rule_based import RuleBasedAnalyzer, analyze_lyrics
from rap_pipeline.defs.artists.partitions import artists_partitions
from rap_pipeline.defs.artists.registry import ArtistSpec, register_artists
from rap_pipeline.defs.tracks.corpus import record_to_track
from rap_pipeline.defs.tracks.sources import FetchResult
from rap_pipeline.defs.tracks.store import prepare_rows, write_partition
from rap_pipeline.samples.corpus_generator import generate

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

Row = tuple[str, str, str]


def _fresh_database(server_url: str) -> str:
    admin = server_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{BENCH_DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{BENCH_DATABASE}"')
    return server_url.rsplit("/", 1)[0] + f"/{BENCH_DATABASE}"


def _runs(count: int) -> str:
    return f"{count} run" if count == 1 else f"{count} runs"


def _ratio(asset: float, bare: float) -> str:
    return f"{asset / bare:.0%}" if bare else "n/a"


def _timed(function: Callable[[], object]) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


# --- tracks ---------------------------------------------------------------------------------


def write_tracks(url: str, by_artist: dict[str, list[dict]]) -> dict[str, str]:
    """Writes each artist's records as one partition; returns display name → slug."""
    specs = [ArtistSpec(name=name) for name in by_artist]
    with connect(url) as conn:
        register_artists(conn, specs)
        for spec in specs:
            fetched = FetchResult(tracks=[record_to_track(r) for r in by_artist[spec.name]])
            write_partition(conn, spec.slug, "corpus", prepare_rows(spec.slug, fetched), [])
    return {spec.name: spec.slug for spec in specs}


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


# --- materializing --------------------------------------------------------------------------


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
            f"step {_ratio(step.step_rate, bare_rate)}, "
            f"end to end {_ratio(wall.wall_rate, bare_rate)}",
            GOAL_RATIO,
        ),
    ]


# --- rule-based -----------------------------------------------------------------------------


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
    seconds = [_timed(lambda: _analyze_all(texts)) for _ in range(ROUNDS)]
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
        lambda slug: _timed(lambda: _analyze_all(texts_of[slug])),
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
            _timed(
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


# --- emotion --------------------------------------------------------------------------------


def bench_lexicon(
    instance: dg.DagsterInstance,
    url: str,
    slugs: Sequence[str],
    tracks: list[tuple[TrackText, str]],
    progress: Progress,
    unloadable: str,
) -> list[Row]:
    """``tracks``: (track, its artist slug)."""
    tracks_of: dict[str, list[TrackText]] = defaultdict(list)
    for track, slug in tracks:
        tracks_of[slug].append(track)
    analyzer = LexiconEmotionAnalyzer()
    analyzer.analyze([track for track, _ in tracks])  # warm, as the asset's analyzer is
    resource = EmotionModelResource(model_id=unloadable)
    stand_in, reason = resource.load()
    if reason is None or not isinstance(stand_in, LexiconEmotionAnalyzer):
        raise RuntimeError(f"the emotion model in {unloadable} loaded: the fallback is not timed")
    resources = {"database": DatabaseResource(url=url), "emotion_model": resource}
    bare_s, timings = compare(
        progress,
        "emotion (lexicon stand-in): bare and asset",
        slugs,
        lambda slug: _timed(lambda: analyzer.analyze(tracks_of[slug])),
        lambda slug: materialize_partitions(instance, emotion_analysis, [slug], resources),
        lambda: delete_results(url, "emotion", slugs),
    )
    bare_rate = len(tracks) / min(bare_s)
    return [
        (
            "emotion (lexicon): bare analyze",
            f"{len(tracks)} tracks in {min(bare_s):.2f} s",
            f"{bare_rate:,.1f} tracks/s",
        ),
        *asset_rows("emotion (lexicon)", "tracks", timings, bare_rate),
    ]


def train_tokenizer(texts: Sequence[str], folder: Path) -> int:
    """A byte-level BPE tokenizer (RoBERTa's special tokens and template) trained on
    ``texts``, saved in ``folder``; returns its vocabulary size."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # RoBERTa's ids: pad is 1
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.train_from_iterator(
        texts,
        trainers.BpeTrainer(
            vocab_size=TOKENIZER_VOCAB,
            special_tokens=specials,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        ),
    )
    tokenizer.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        cls_token="<s>",
        sep_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        mask_token="<mask>",
        model_max_length=512,
    )
    fast.save_pretrained(folder)
    return len(fast)


def save_random_classifier(folder: Path, vocab_size: int) -> int:
    """A DistilRoBERTa-sized sequence classifier with random weights; returns its parameters."""
    import torch
    import transformers
    from transformers import RobertaConfig, RobertaForSequenceClassification

    transformers.utils.logging.disable_progress_bar()
    torch.manual_seed(SEED)
    config = RobertaConfig(
        vocab_size=vocab_size,
        hidden_size=768,
        num_hidden_layers=6,
        num_attention_heads=12,
        intermediate_size=3072,
        max_position_embeddings=514,
        type_vocab_size=1,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        id2label=dict(enumerate(EMOTION_LABELS)),
        label2id={label: i for i, label in enumerate(EMOTION_LABELS)},
    )
    model = RobertaForSequenceClassification(config).eval()
    model.save_pretrained(folder)
    return sum(p.numel() for p in model.parameters())


def bench_transformers(
    instance: dg.DagsterInstance,
    url: str,
    slug: str,
    sample: list[TrackText],
    corpus_texts: Sequence[str],
    progress: Progress,
    folder: Path,
) -> list[Row]:
    task = progress.add_task("emotion (transformers): build a random model", total=1)
    vocab = train_tokenizer(corpus_texts, folder)
    parameters = save_random_classifier(folder, vocab)
    resource = EmotionModelResource(model_id=str(folder))
    analyzer, reason = resource.load()  # the asset reuses this very object (cached per process)
    if reason is not None or not isinstance(analyzer, TransformersEmotionAnalyzer):
        raise RuntimeError(f"the random-weight classifier did not load: {reason}")
    progress.advance(task)

    chunks = [chunk for track in sample for chunk in analyzer.chunk_texts(track.lyrics)]
    encoded = analyzer.tokenizer(chunks, truncation=True, max_length=analyzer.max_length)
    lengths = [len(ids) for ids in encoded["input_ids"]]
    by_length = [chunk for _, chunk in sorted(zip(lengths, chunks, strict=True))]
    analyzer.predict_chunks(chunks[: analyzer.batch_size])  # first forward passes are slower
    resources = {"database": DatabaseResource(url=url), "emotion_model": resource}
    input_order_s: list[float] = []
    track_timings: list[AssetTiming] = []

    def bare(_: str) -> float:
        input_order_s.append(_timed(lambda: analyzer.predict_chunks(chunks)))
        return _timed(lambda: analyzer.predict_chunks(by_length))

    def asset(_: str) -> AssetTiming:
        timing = materialize_partitions(instance, emotion_analysis, [slug], resources)
        track_timings.append(timing)
        with connect(url) as conn:  # the token windows the asset read
            (windows,) = conn.execute(
                "SELECT coalesce(sum((result->>'chunks')::int), 0) FROM analyses "
                "WHERE artist_slug = %s AND analyzer = 'emotion' AND status = 'ok'",
                (slug,),
            ).fetchone()
        return dataclasses.replace(timing, results=int(windows))

    bare_s, timings = compare(
        progress,
        f"emotion (transformers): bare and asset, {len(chunks)} chunks",
        [slug],
        bare,
        asset,
        lambda: delete_results(url, "emotion", [slug]),
    )
    bare_rate = len(chunks) / min(bare_s)
    unsorted_rate = len(chunks) / min(input_order_s)
    best_step = max(timings, key=lambda t: t.step_rate)
    tracks_step = max(track_timings, key=lambda t: t.step_rate)
    what = "emotion (transformers)"
    content = [length - analyzer.special_tokens for length in lengths]
    return [
        (
            f"{what}: model",
            f"RANDOM weights (speed only): 6 x 768 RoBERTa, {parameters / 1e6:.0f}M params, "
            f"BPE vocab {vocab:,}",
            f"{len(sample)} tracks, {len(chunks)} chunks, {statistics.fmean(content):.0f} "
            f"tokens/chunk (max {max(content)})",
        ),
        (
            f"{what}: bare predict_chunks",
            f"input order, batch {analyzer.batch_size}: {min(input_order_s):.2f} s",
            f"{unsorted_rate:.2f} chunks/s",
        ),
        (
            f"{what}: bare, length-sorted",
            f"sorted by tokens, as analyze batches: {min(bare_s):.2f} s",
            f"{bare_rate:.2f} chunks/s",
        ),
        *asset_rows(what, "chunks", timings, bare_rate),
        (
            f"{what}: asset / bare input order",
            f"step {_ratio(best_step.step_rate, unsorted_rate)}",
            f"{tracks_step.step_rate:.2f} tracks/s (step)",
        ),
    ]


# --- LLM ------------------------------------------------------------------------------------

ANSWER = {
    "themes": ["ambition", "loyalty", "street life"],
    "mood": "defiant",
    "techniques": ["wordplay", "internal rhyme", "metaphor"],
    "scores": {
        aspect: {"score": 6, "rationale": "A fixed benchmark answer, the same for every song."}
        for aspect in SCORE_ASPECTS
    },
    "summary": "A fixed benchmark answer: valid against the schema, identical for every song.",
}


class BenchmarkLLMServer(LocalHTTPServer):
    """An OpenAI-compatible ``POST /v1/chat/completions`` on 127.0.0.1 that answers ``ANSWER``
    after ``delay_s``, with usage of about one token per four characters; counts requests and
    the most it was answering at once."""

    name = "benchmark-llm"

    def __init__(self, delay_s: float) -> None:
        super().__init__()
        LyricsAnalysis.model_validate(ANSWER)  # the answer must pass the analyzer's validation
        self.delay_s = delay_s
        self.lock = threading.Lock()
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0

    def reset(self) -> None:
        with self.lock:
            self.requests = self.max_in_flight = 0

    @property
    def api_base(self) -> str:
        return f"{self.base_url}/v1"

    def _answer(self, body: bytes) -> dict:
        with self.lock:
            self.requests += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            messages = json.loads(body or b"{}").get("messages") or []
            prompt = sum(len(str(m.get("content", ""))) for m in messages) // 4
            time.sleep(self.delay_s)
        finally:
            with self.lock:
                self.in_flight -= 1
        content = json.dumps(ANSWER)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": "benchmark",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": len(content) // 4,
                "total_tokens": prompt + len(content) // 4,
            },
        }

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real servers do
            # without it, the answer's body waits for the client's delayed ACK of the
            # headers: about 40 ms more per request, which is the server's, not the asset's
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                else:
                    self._send(200, server._answer(body))

            def _send(self, status: int, document: dict) -> None:
                payload = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        return Handler


def bench_llm(
    instance: dg.DagsterInstance,
    url: str,
    redis_url: str,
    slug: str,
    delay_s: float,
    concurrency: int,
    progress: Progress,
) -> list[Row]:
    rows: list[Row] = []
    database = DatabaseResource(url=url)
    with BenchmarkLLMServer(delay_s) as server:
        for run_concurrency in dict.fromkeys((concurrency, 1)):
            delete_results(url, "llm", [slug])
            server.reset()
            llm = LLMResource(
                base_url=server.api_base,
                api_key="benchmark",
                model="benchmark",
                concurrency=run_concurrency,
                requests_per_s=1000,
                redis=RedisResource(url=redis_url, namespace=f"benchmark-{uuid.uuid4().hex}"),
            )
            task = progress.add_task(f"LLM: asset, concurrency {run_concurrency}", total=1)
            timing = materialize_partitions(
                instance,
                llm_analysis,
                [slug],
                {"database": database, "llm": llm},
                lambda task=task: progress.advance(task),
            )
            ideal = run_concurrency / delay_s
            what = f"LLM, concurrency {run_concurrency}"
            failed = f", {timing.failed} FAILED" if timing.failed else ""
            rows += [
                (
                    f"{what}: ideal",
                    f"concurrency / delay = {run_concurrency} / {delay_s:g} s",
                    f"{ideal:.2f} tracks/s",
                ),
                (
                    f"{what}: asset step",
                    f"{timing.results} tracks in {timing.analyze_s:.2f} s{failed}",
                    f"{timing.step_rate:.2f} tracks/s",
                ),
                (
                    f"{what}: asset end to end",
                    f"1 run, {timing.wall_s:.2f} s",
                    f"{timing.wall_rate:.2f} tracks/s",
                ),
                (
                    f"{what}: asset / ideal",
                    f"step {_ratio(timing.step_rate, ideal)}, "
                    f"end to end {_ratio(timing.wall_rate, ideal)}",
                    GOAL_RATIO,
                ),
                (
                    f"{what}: server saw",
                    f"{server.requests} requests, at most {server.max_in_flight} at once",
                    f"configured {run_concurrency}",
                ),
            ]
    return rows


# --- the whole benchmark --------------------------------------------------------------------


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
    url = _fresh_database(database_url)
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
