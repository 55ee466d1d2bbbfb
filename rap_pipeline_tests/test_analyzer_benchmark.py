"""The pieces of `rap-pipeline benchmark analyzers` (the whole run takes minutes: not here)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid

import dagster as dg
import pytest

from rap_pipeline.benchmarks.analyzers import run_analyzer_benchmark
from rap_pipeline.benchmarks.analyzers.llm import BenchmarkLLMServer
from rap_pipeline.benchmarks.analyzers.partitions import (
    copies,
    delete_results,
    kept_tracks,
    materialize_partitions,
    write_tracks,
)
from rap_pipeline.core.resources import DatabaseResource
from rap_pipeline.defs.analyses.analyzer import TrackText
from rap_pipeline.defs.analyses.assets import rule_based_analysis
from rap_pipeline.defs.analyses.llm import LLMAnalyzer
from rap_pipeline.defs.artists.partitions import artists_partitions
from rap_pipeline.samples.corpus_generator import generate


def _tracks(count: int) -> list[TrackText]:
    return [
        TrackText(i, f"Song {i}", record["lyrics"], uuid.uuid4().hex)
        for i, record in enumerate(generate(1, count, seed=3))
    ]


def test_llm_server_answers_valid_analyses_after_its_delay() -> None:
    with BenchmarkLLMServer(delay_s=0.2) as server:
        analyzer = LLMAnalyzer(server.api_base, "benchmark", "benchmark", concurrency=3)
        started = time.perf_counter()
        results = analyzer.analyze(_tracks(6))
        elapsed = time.perf_counter() - started
        analyzer.close()
        assert [r.status for r in results] == ["ok"] * 6
        assert results[0].values["mood"] == "defiant"
        assert results[0].usage["prompt_tokens"] > 0
        assert server.requests == 6
        assert server.max_in_flight == 3  # the analyzer's concurrency, seen by the server
        # the first track alone (the server's answer format is settled once), then waves of
        # three and two, 0.2 s each
        assert 0.6 <= elapsed < 3.0


def _post(url: str, document: dict) -> int:
    request = urllib.request.Request(
        url, json.dumps(document).encode(), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_llm_server_reset_and_unknown_path() -> None:
    with BenchmarkLLMServer(delay_s=0.0) as server:
        assert _post(f"{server.api_base}/completions", {}) == 404
        assert _post(f"{server.api_base}/chat/completions", {"messages": []}) == 200
        assert server.requests == 1
        server.reset()
        assert (server.requests, server.max_in_flight) == (0, 0)


def test_materialize_partitions_sums_the_asset_metadata(database_url: str) -> None:
    records = list(generate(2, 12, seed=5))
    by_artist: dict[str, list[dict]] = {}
    for record in records:
        by_artist.setdefault(record["artist"], []).append(record)
    slugs = list(write_tracks(database_url, by_artist).values())
    sample = write_tracks(database_url, {"Copy": copies(records[:3], "Copy")})
    kept = kept_tracks(database_url, slugs)
    assert len(kept) == 12
    assert len(kept_tracks(database_url, list(sample.values()))) == 3

    resources = {"database": DatabaseResource(url=database_url)}
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(artists_partitions.name, slugs)
        advanced: list[int] = []
        timing = materialize_partitions(
            instance, rule_based_analysis, slugs, resources, lambda: advanced.append(1)
        )
        assert (timing.partitions, timing.results, timing.failed) == (2, 12, 0)
        assert len(advanced) == 2
        assert 0 < timing.analyze_s < timing.wall_s
        assert timing.step_rate > timing.wall_rate > 0
        # nothing pending: a second pass analyzes nothing until the results are deleted
        again = materialize_partitions(
            instance, rule_based_analysis, slugs, resources, lambda: None
        )
        assert again.results == 0
        delete_results(database_url, "rule_based", slugs)
        assert (
            materialize_partitions(
                instance, rule_based_analysis, slugs, resources, lambda: None
            ).results
            == 12
        )


def test_bad_arguments_are_refused_before_any_work() -> None:
    with pytest.raises(ValueError, match="at least"):
        run_analyzer_benchmark("postgresql://nowhere/x", "redis://nowhere", 5, 1, 0.5, 4)
    with pytest.raises(ValueError, match="positive delay"):
        run_analyzer_benchmark("postgresql://nowhere/x", "redis://nowhere", 100, 1, 0, 4)
