"""One asset per analyzer, plus the hybrid profile, one partition per artist.

Each asset analyzes only the kept tracks without a current result of its analyzer version
and method, and its ``code_version`` is the analyzer version: bumping one analyzer re-runs
that asset alone (and the hybrid profile that combines it)."""

import statistics
import time
from collections import Counter
from collections.abc import Callable

import dagster as dg
import psycopg

from rap_pipeline.core.automation import keep_fresh_and_rerun_on_new_code
from rap_pipeline.core.database import refresh_stale_statistics
from rap_pipeline.core.kubernetes import MODEL_STEP
from rap_pipeline.core.resources import DatabaseResource
from rap_pipeline.defs.analyses import emotion, hybrid, llm
from rap_pipeline.defs.analyses.analyzer import Analyzer, AnalyzerInfo
from rap_pipeline.defs.analyses.checks import (
    analysis_check_specs,
    check_ranges,
    check_spread,
    coverage_result,
)
from rap_pipeline.defs.analyses.resources import EmotionModelResource, LLMResource
from rap_pipeline.defs.analyses.rule_based import RuleBasedAnalyzer
from rap_pipeline.defs.analyses.store import (
    Coverage,
    PartitionResults,
    ResultWriter,
    coverage,
    deferred_tracks,
    latest_inputs,
    pending_tracks,
    stored_results,
    stored_rows,
)
from rap_pipeline.defs.artists.batches import PartitionOutcome, materialize_partitions
from rap_pipeline.defs.artists.partitions import BATCHED_BACKFILLS, artists_partitions

# metrics whose spread across all stored results is checked (see checks.py)
SPREAD_METRICS = {
    "rule_based": ["rhyme_density", "end_rhyme_share", "mtld", "syllables_per_line_mean"],
    "emotion": ["emotion_joy", "emotion_sadness", "emotion_anger"],
    "llm": ["lyricism"],
    "hybrid": ["valence", "craft"],
}
_REPORTED: set[str] = set()
DEFERRED_LISTED = 20  # deferred tracks listed by name in the metadata (all are counted)


class AnalysisConfig(dg.Config):
    # ask again now for tracks whose failure's back-off has not expired
    force: bool = False


# per-artist means shown in the asset metadata (and the run summary)
HEADLINES = {
    "rule_based": ["rhyme_density", "mtld", "sentiment_mean"],
    "emotion": ["emotion_joy", "emotion_sadness", "emotion_anger"],
    "llm": ["lyricism", "originality"],
    "hybrid": ["valence", "craft"],
}


def _means(results: list[dict], keys: list[str]) -> dict[str, float]:
    means = {}
    for key in keys:
        values = [r[key] for r in results if isinstance(r.get(key), int | float)]
        if values:
            means[key] = round(statistics.fmean(values), 4)
    return means


def _completed(
    database: DatabaseResource,
    writer: ResultWriter,
    asset_name: str,
    read_coverage: Callable[[psycopg.Connection, list[str]], dict[str, Coverage]],
):
    """What completes a run's partitions: their buffered results written, then their checks
    judged on what is stored, one read for the run (the values this run wrote are not read
    back)."""
    info = writer.info

    def finish(slugs: list[str]) -> dict[str, PartitionOutcome | Exception]:
        writer.flush()
        stored = [slug for slug in slugs if slug not in writer.errors]
        with database.connect() as conn:
            covered = read_coverage(conn, stored)
            earlier = [
                track_id
                for slug in stored
                for track_id in covered[slug].ok_track_ids
                if track_id not in writer.written
            ]
            values = {**stored_results(conn, info, earlier), **writer.written}
        completed: dict[str, PartitionOutcome | Exception] = dict(writer.errors)
        for slug in stored:
            now = covered[slug]
            ok_results = [values[t] for t in now.ok_track_ids if t in values]
            completed[slug] = PartitionOutcome(
                metadata={
                    "tracks_with_results": len(ok_results),
                    "means": _means(ok_results, HEADLINES.get(info.name, [])) or "none",
                },
                check_results=[
                    coverage_result(asset_name, now.kept, len(ok_results), now.failed),
                    check_ranges(asset_name, info, ok_results),
                ],
            )
        return completed

    return finish


def _spread_check(database: DatabaseResource, asset_name: str, info: AnalyzerInfo):
    """The spread check judges every artist's stored results: once per run, not per partition."""

    def run_check() -> list[dg.AssetCheckResult]:
        with database.connect() as conn:
            return [check_spread(conn, asset_name, info, SPREAD_METRICS.get(info.name, []))]

    return run_check


def analyze_partitions(
    context: dg.AssetExecutionContext,
    database: DatabaseResource,
    analyzer: Analyzer,
    config: AnalysisConfig,
    metadata: dict | None = None,
) -> dg.MaterializeResult:
    """The glue of every analyzer asset, for each partition of the run: pending tracks in,
    results stored, checks run. Tracks whose last failure has not yet reached its next attempt
    are skipped and listed as deferred (``config.force`` asks them regardless)."""
    info, asset_name = analyzer.info, context.asset_key.path[-1]
    slugs = list(context.partition_keys)
    with database.connect() as conn:
        refresh_stale_statistics(conn)
        pending = pending_tracks(conn, slugs, info, force=config.force)
        deferred = {} if config.force else deferred_tracks(conn, slugs, info)
    writer = ResultWriter(database, info)

    def materialize_one(slug: str) -> PartitionOutcome:
        tracks = pending.get(slug, [])
        started = time.perf_counter()
        results = analyzer.analyze(tracks) if tracks else []
        analyze_s = time.perf_counter() - started
        writer.add(PartitionResults(slug, {t.track_id: t.lyrics_hash for t in tracks}, results))
        failures = [r for r in results if r.status == "failed"]
        for failure in failures[:10]:
            context.log.warning("%s, track %s: %s", slug, failure.track_id, failure.error)
        stop_reason = getattr(analyzer, "stop_reason", None)
        if stop_reason:
            writer.flush()  # so the next run knows; retrying would re-pay
            raise dg.Failure(
                description=f"{asset_name} stopped at partition {slug}: {stop_reason}",
                metadata={
                    "failed_this_run": len(failures),
                    "failures_by_class": dict(Counter(r.error_class for r in failures)),
                },
                allow_retries=False,
            )
        skipped = deferred.get(slug, [])
        return PartitionOutcome(
            metadata={
                "analyzer": info.name,
                "version": info.version,
                "method": info.method,
                "analyzed_this_run": len(results),
                "failed_this_run": len(failures),
                "failures_by_class": dict(Counter(r.error_class for r in failures)) or "none",
                "deferred": len(skipped),
                "deferred_tracks": [d.as_dict() for d in skipped[:DEFERRED_LISTED]] or "none",
                "analyze_seconds": round(analyze_s, 3),
                "tracks_per_second": round(len(results) / analyze_s, 1) if analyze_s else 0.0,
                **(metadata or {}),
            },
        )

    return materialize_partitions(
        context,
        database,
        materialize_one,
        _spread_check(database, asset_name, info),
        _completed(database, writer, asset_name, lambda conn, done: coverage(conn, done, info)),
    )


@dg.asset(
    partitions_def=artists_partitions,
    group_name="analyses",
    deps=["tracks"],
    kinds={"python"},
    code_version=RuleBasedAnalyzer.info.version,
    check_specs=analysis_check_specs("rule_based_analysis"),
    automation_condition=keep_fresh_and_rerun_on_new_code(),
    backfill_policy=BATCHED_BACKFILLS,
)
def rule_based_analysis(
    context: dg.AssetExecutionContext, database: DatabaseResource, config: AnalysisConfig
) -> dg.MaterializeResult:
    """Rhyme (CMU dictionary, with a fallback for slang), flow, vocabulary richness (MTLD),
    repetition, VADER sentiment and lexicon themes of every kept track (docs/metrics.md has
    every formula). Rows in ``analyses`` with analyzer ``rule_based``.

    Automation: materialized for a new partition or when its upstream partition was updated,
    never past a failed blocking check; every partition again when its code version changes."""
    return analyze_partitions(context, database, RuleBasedAnalyzer(), config)


@dg.asset(
    partitions_def=artists_partitions,
    group_name="analyses",
    deps=["tracks"],
    kinds={"pytorch"},
    code_version=emotion.VERSION,
    check_specs=analysis_check_specs("emotion_analysis"),
    automation_condition=keep_fresh_and_rerun_on_new_code(),
    backfill_policy=BATCHED_BACKFILLS,
    op_tags=MODEL_STEP,
)
def emotion_analysis(
    context: dg.AssetExecutionContext,
    database: DatabaseResource,
    emotion_model: EmotionModelResource,
    config: AnalysisConfig,
) -> dg.MaterializeResult:
    """Emotion probabilities of whole songs from a transformers classifier (chunked by stanza,
    token-weighted mean). When the model cannot be loaded, the NRC lexicon analyzer stands in,
    and every row and this materialization say so (method ``lexicon:nrc``).

    Automation: materialized for a new partition or when its upstream partition was updated,
    never past a failed blocking check; every partition again when its code version changes."""
    analyzer, fallback_reason = emotion_model.load()
    if fallback_reason and fallback_reason not in _REPORTED:
        context.log.warning(fallback_reason)  # once per process; every materialization says it
        _REPORTED.add(fallback_reason)
    return analyze_partitions(
        context,
        database,
        analyzer,
        config,
        {"model_id": emotion_model.model_id, "lexicon_stands_in": fallback_reason or "no"},
    )


@dg.asset(
    partitions_def=artists_partitions,
    group_name="analyses",
    deps=["tracks"],
    kinds={"openai"},
    code_version=llm.PROMPT_VERSION,
    check_specs=analysis_check_specs("llm_analysis"),
    pool="llm_api",
    automation_condition=keep_fresh_and_rerun_on_new_code(),
    backfill_policy=BATCHED_BACKFILLS,
)
def llm_analysis(
    context: dg.AssetExecutionContext,
    database: DatabaseResource,
    llm: LLMResource,
    config: AnalysisConfig,
) -> dg.MaterializeResult:
    """Themes, mood, techniques and 1–10 quality scores with rationales from a chat model on
    any OpenAI-compatible server, validated against a schema. A failed or refused answer is a
    failed row, never a result. Without RAP_LLM_BASE_URL / RAP_LLM_MODEL: "not configured".

    Automation: materialized for a new partition or when its upstream partition was updated,
    never past a failed blocking check; every partition again when its code version changes."""
    if not llm.configured:
        context.log.info("the LLM analyzer is not configured (RAP_LLM_BASE_URL, RAP_LLM_MODEL)")
        return dg.MaterializeResult(
            metadata={"status": "not configured"},
            check_results=[
                dg.AssetCheckResult(
                    check_name=spec.name,
                    asset_key=spec.asset_key,
                    passed=True,
                    metadata={"status": "not configured"},
                )
                for spec in analysis_check_specs("llm_analysis")
            ],
        )
    analyzer = llm.build()
    try:
        result = analyze_partitions(context, database, analyzer, config)
    finally:
        analyzer.close()
    return dg.MaterializeResult(
        metadata={**result.metadata, "status": "analyzed", "run_totals": analyzer.run_totals()},
        check_results=result.check_results,
    )


@dg.asset(
    partitions_def=artists_partitions,
    group_name="analyses",
    deps=[rule_based_analysis, emotion_analysis, llm_analysis],
    kinds={"python"},
    code_version=hybrid.VERSION,
    check_specs=analysis_check_specs("hybrid_analysis"),
    automation_condition=keep_fresh_and_rerun_on_new_code(),
    backfill_policy=BATCHED_BACKFILLS,
)
def hybrid_analysis(
    context: dg.AssetExecutionContext, database: DatabaseResource
) -> dg.MaterializeResult:
    """One profile per track (valence, craft, dominant emotion, themes) combined from the
    track's available analyses with documented weights; each profile lists its inputs.

    Automation: materialized for a new partition or when its upstream partition was updated,
    never past a failed blocking check; every partition again when its code version changes."""
    info = hybrid.INFO
    slugs = list(context.partition_keys)
    with database.connect() as conn:
        refresh_stale_statistics(conn)
        inputs = latest_inputs(conn, slugs, hybrid.INPUT_ANALYZERS)
        stored = stored_rows(conn, slugs, info)
    # what each kept track's profile is made of now: a profile of other inputs is due
    input_hashes = {
        slug: {track_id: hybrid.inputs_hash(found) for track_id, found in tracks.items()}
        for slug, tracks in inputs.items()
    }
    writer = ResultWriter(database, info)

    def materialize_one(slug: str) -> PartitionOutcome:
        hashes, before = input_hashes.get(slug, {}), stored.get(slug, {})
        due = [t for t, digest in hashes.items() if before.get(t, ("",))[0] != digest]
        results = [hybrid.profile(track_id, inputs[slug][track_id]) for track_id in due]
        writer.add(PartitionResults(slug, hashes, results))
        used = Counter(i.analyzer for found in inputs.get(slug, {}).values() for i in found)
        return PartitionOutcome(
            metadata={
                "analyzer": info.name,
                "version": info.version,
                "combined_this_run": len(results),
                "tracks_by_input": dict(used) or "none",
                "weights": hybrid.WEIGHTS,
            },
        )

    def profiles_of_current_inputs(conn: psycopg.Connection, done: list[str]):
        now = stored_rows(conn, done, info)
        covered = {}
        for slug in done:
            hashes = input_hashes.get(slug, {})
            current = {
                track_id: status
                for track_id, (digest, status) in now.get(slug, {}).items()
                if hashes.get(track_id) == digest
            }
            ok_ids = [track_id for track_id, status in current.items() if status == "ok"]
            covered[slug] = Coverage(len(hashes), len(current) - len(ok_ids), ok_ids)
        return covered

    return materialize_partitions(
        context,
        database,
        materialize_one,
        _spread_check(database, "hybrid_analysis", info),
        _completed(database, writer, "hybrid_analysis", profiles_of_current_inputs),
    )
