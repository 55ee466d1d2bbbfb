"""``rap-pipeline benchmark``: the benchmarks whose output the README quotes."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.table import Table

from rap_pipeline.cli.output import console, print_measures
from rap_pipeline.core.services import services_for_command
from rap_pipeline.core.settings import get_settings

app = typer.Typer(help="Benchmarks whose output the README quotes.", no_args_is_help=True)


@app.command("search")
def benchmark_search(
    artists: Annotated[int, typer.Option(help="Generated artists.")] = 1000,
    tracks: Annotated[int, typer.Option(help="Generated tracks.")] = 60_000,
    queries: Annotated[int, typer.Option(help="Queries timed.")] = 200,
    embed_sample: Annotated[int, typer.Option(help="Tracks embedded for throughput.")] = 200,
    ef_search: Annotated[
        list[int] | None,
        typer.Option(help="hnsw.ef_search values to measure (repeat the option)."),
    ] = None,
    hnsw_m: Annotated[
        int | None,
        typer.Option(
            help="Build the indexes after the bulk load with this m instead of the migration's "
            "(the write with indexes maintained still uses the migration's)."
        ),
    ] = None,
    ef_construction: Annotated[int, typer.Option(help="ef_construction with --hnsw-m.")] = 64,
) -> None:
    """Search latency and recall@10, embedding throughput and write rate, at scale, in a
    throwaway database (rap_pipeline_benchmark) on the pipeline's PostgreSQL."""
    from rap_pipeline.benchmarks.search_benchmark import run_benchmark
    from rap_pipeline.defs.embeddings.model import HNSW_EF_SEARCH

    settings = get_settings()
    started = time.monotonic()
    with services_for_command(settings) as urls:
        rows = run_benchmark(
            urls.database_url,
            artists,
            tracks,
            queries,
            embed_sample,
            ef_search or [40, HNSW_EF_SEARCH, 200],
            settings.embedding_model,
            None if hnsw_m is None else (hnsw_m, ef_construction),
        )
    print_measures(f"search benchmark: {tracks:,} tracks, {artists:,} artists", rows, started)


@app.command("api")
def benchmark_api(
    tracks: Annotated[
        int | None,
        typer.Option(help="Generated tracks in a throwaway database (default: the pipeline's)."),
    ] = None,
    artists: Annotated[int, typer.Option(help="Generated artists, with --tracks.")] = 1000,
    clients: Annotated[int, typer.Option(help="Concurrent clients.")] = 8,
    seconds: Annotated[float, typer.Option(help="Seconds each side is timed.")] = 20.0,
    rebuild: Annotated[
        bool, typer.Option(help="Build the --tracks database anew even if one is kept.")
    ] = False,
) -> None:
    """GET /search latency (p50, p99) with concurrent clients, beside the same searches in
    process; on the pipeline's database, or on --tracks generated tracks."""
    from rap_pipeline.benchmarks.api_benchmark import build_scale_database, run_api_benchmark

    settings = get_settings()
    started = time.monotonic()
    with services_for_command(settings) as urls:
        url = urls.database_url
        if tracks is not None:
            url = build_scale_database(url, artists, tracks, settings.embedding_model, rebuild)
        rows = run_api_benchmark(settings, url, urls.redis_url, clients, seconds)
    print_measures("API benchmark: GET /search", rows, started)


@app.command("api-budget")
def benchmark_api_budget(
    rate: Annotated[float, typer.Option(help="Configured Spotify requests per second.")] = 5.0,
) -> None:
    """HTTP requests of a first and a second enrichment of one artist, and the highest request
    rate the server sees under two parallel runs against the configured limit (sample catalog
    server, throwaway database rap_pipeline_benchmark_api)."""
    from rap_pipeline.benchmarks.api_budget import run_budget

    settings = get_settings()
    with services_for_command(settings) as urls:
        budget = run_budget(urls.database_url, urls.redis_url, rate)
    table = Table(title="Spotify API budget (real spotify_tracks asset, sample catalog server)")
    for column in ("measure", "value"):
        table.add_column(column)
    table.add_row("first run, 1 artist: HTTP requests", str(budget.first_run_requests))
    table.add_row(
        f"second run, same artist, all {budget.tracks_enriched_twice} tracks due: HTTP requests",
        str(budget.second_run_requests),
    )
    table.add_row(
        "two parallel runs: API requests",
        f"{budget.parallel_requests} in {budget.parallel_seconds:.1f} s",
    )
    table.add_row(
        "two parallel runs: most requests in any 1 s window",
        f"{budget.max_requests_per_1s} (limit {budget.limit_per_s:g}/s)",
    )
    table.add_row(
        "two parallel runs: most requests in any 5 s window",
        f"{budget.max_requests_per_5s} (limit {5 * budget.limit_per_s:g} per 5 s)",
    )
    console.print(table)


@app.command("analyzers")
def benchmark_analyzers(
    tracks: Annotated[int, typer.Option(help="Generated tracks analyzed.")] = 1000,
    llm_tracks: Annotated[int, typer.Option(help="Tracks sent to the LLM test server.")] = 40,
    llm_delay: Annotated[float, typer.Option(help="The LLM test server's delay (s).")] = 0.5,
    llm_concurrency: Annotated[int, typer.Option(help="LLM requests in flight.")] = 4,
) -> None:
    """Each analyzer's asset throughput against its bare function or model on the same inputs,
    in one run, in a throwaway database (rap_pipeline_benchmark_analyses)."""
    from rap_pipeline.benchmarks.analyzers import run_analyzer_benchmark

    settings = get_settings()
    started = time.monotonic()
    with services_for_command(settings) as urls:
        rows = run_analyzer_benchmark(
            urls.database_url, urls.redis_url, tracks, llm_tracks, llm_delay, llm_concurrency
        )
    print_measures(f"analyzer benchmark: {tracks:,} generated tracks", rows, started)


@app.command("search-quality")
def benchmark_search_quality(
    k: Annotated[int, typer.Option(help="Results judged per query.")] = 5,
    hybrid: Annotated[bool, typer.Option(help="Hybrid (vector + full text) ranking.")] = False,
) -> None:
    """Precision@k of search on the labelled queries over the sample corpus (run `make run`
    first so the sample corpus is embedded)."""
    from rap_pipeline.benchmarks.search_quality import evaluate, mean_precision

    settings = get_settings()
    with services_for_command(settings) as urls:
        results = evaluate(urls.database_url, k, hybrid, settings.embedding_model)
    table = Table(title=f"search quality ({'hybrid' if hybrid else 'vector'}), precision@{k}")
    for column in ("query", f"P@{k}", "top results"):
        table.add_column(column, overflow="fold")
    for result in results:
        table.add_row(result.query, f"{result.precision(k):.2f}", "\n".join(result.found[:3]))
    console.print(table)
    console.print(
        f"mean precision@{k}: {mean_precision(results, k):.3f} over {len(results)} queries"
    )


@app.command("refresh")
def benchmark_refresh(
    artists: Annotated[int, typer.Option(help="Generated artists (partitions).")] = 1000,
    tracks: Annotated[int, typer.Option(help="Generated tracks over all artists.")] = 3000,
    larger_partitions: Annotated[
        int, typer.Option(help="Tracks per artist when the cheap analyzers are measured again.")
    ] = 30,
) -> None:
    """A first run and a no-op refresh of a generated corpus in batched runs (offline
    analyzers), Dagster's share per stage, the cheap analyzers against their bare rate, an
    analyzer version bump, embedding writes, and the cheap analyzers again with larger
    catalogues per artist; throwaway database rap_pipeline_benchmark_refresh."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from rap_pipeline.benchmarks.refresh import run_refresh_benchmark

    settings = get_settings()
    started = time.monotonic()
    tasks: dict[str, int] = {}
    with (
        services_for_command(settings) as urls,
        Progress(
            TextColumn("{task.description:<24}"), BarColumn(), MofNCompleteColumn(), console=console
        ) as progress,
    ):

        def advance(label: str, done: int, total: int) -> None:
            if label not in tasks:
                tasks[label] = progress.add_task(label, total=total)
            progress.advance(tasks[label], done)

        rows = run_refresh_benchmark(settings, urls, artists, tracks, advance, larger_partitions)
    print_measures(
        f"refresh benchmark: {artists:,} artists, {tracks:,} generated tracks", rows, started
    )
