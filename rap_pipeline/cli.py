"""The ``rap-pipeline`` command."""

from __future__ import annotations

import logging
import os
import secrets
import subprocess
import sys
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from rap_pipeline.core.dagster_home import use_dagster_environment
from rap_pipeline.core.database import MigrationError, connect, describe_url
from rap_pipeline.core.paths import project_file
from rap_pipeline.core.services import (
    EmbeddedServices,
    ServiceError,
    ServiceURLs,
    services_for_command,
)
from rap_pipeline.core.settings import Settings, get_settings
from rap_pipeline.defs.artists.registry import (
    ArtistsFileError,
    ArtistSpec,
    SlugCollisionError,
    read_artists_file,
    register_artists,
)

app = typer.Typer(
    help="Collect, clean, enrich and analyse rap lyrics.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
services_app = typer.Typer(help="The embedded PostgreSQL and Redis.", no_args_is_help=True)
artists_app = typer.Typer(
    help="The artists (partitions) the pipeline collects.", no_args_is_help=True
)
app.add_typer(services_app, name="services")
app.add_typer(artists_app, name="artists")
corpus_app = typer.Typer(help="Corpus files.", no_args_is_help=True)
app.add_typer(corpus_app, name="corpus")
benchmark_app = typer.Typer(help="Benchmarks whose output the README quotes.", no_args_is_help=True)
app.add_typer(benchmark_app, name="benchmark")
console = Console()

# errors that are the user's to fix: printed as one clear line, no traceback
_USER_ERRORS = (ArtistsFileError, SlugCollisionError, ServiceError, ConnectionError, MigrationError)
_QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(1)


def _add_partitions(slugs: list[str]) -> None:
    from dagster import DagsterInstance

    from rap_pipeline.defs.artists.partitions import artists_partitions

    with DagsterInstance.get() as instance:
        known = set(instance.get_dynamic_partitions(artists_partitions.name))
        new = [slug for slug in slugs if slug not in known]
        if new:
            instance.add_dynamic_partitions(artists_partitions.name, new)


@app.command()
def run(
    artists_file: Annotated[
        Path | None, typer.Option(help="Artists to run (default: RAP_ARTISTS_FILE, artists.yaml).")
    ] = None,
) -> None:
    """Materialize every asset for every artist of the artists file, then print a summary."""
    warnings.filterwarnings("ignore", module="dagster")
    logging.getLogger("dagster").setLevel(logging.WARNING)
    settings = get_settings()
    path = artists_file or settings.artists_file
    if artists_file is None and not path.exists():
        path = project_file("artists.yaml")  # outside a checkout: the bundled sample artists
    started = time.monotonic()
    try:
        specs = read_artists_file(path)
        with services_for_command(settings) as urls, _spotify_for_run(settings) as spotify:
            console.print(f"Spotify: {spotify}")
            console.print(
                f"LLM analyzer: {settings.llm_model} at {settings.llm_base_url}"
                if settings.llm_base_url and settings.llm_model
                else "LLM analyzer: not configured (set RAP_LLM_BASE_URL and RAP_LLM_MODEL)"
            )
            failed = _run_partitions(settings, urls, specs)
            with connect(urls.database_url) as conn:
                _print_summary(
                    conn,
                    [spec.slug for spec in specs],
                    time.monotonic() - started,
                    settings.embedding_model,
                )
                _print_analysis_summary(conn, [spec.slug for spec in specs])
            _print_example_search(settings, urls)
    except _USER_ERRORS as exc:
        raise _fail(str(exc)) from None
    if failed:
        for slug, error in failed.items():
            console.print(f"[red]{slug}[/red]: {error}")
        raise _fail(f"{len(failed)} artist(s) failed; their runs are in `rap-pipeline dev`")


@contextmanager
def _spotify_for_run(settings: Settings) -> Iterator[str]:
    """Real Spotify when credentials are set. Otherwise, for the bundled sample corpus, a local
    server speaking the Spotify Web API over the bundled sample catalog, so the real spotipy
    path runs offline (rows say source = sample_catalog). Anything else: not configured."""
    if settings.spotify_client_id and settings.spotify_client_secret:
        yield f"enriching through {settings.spotify_api_root}"
        return
    if settings.track_source != "corpus" or settings.corpus_path is not None:
        yield "not configured (set SPOTIFY_CLIENT_ID and SPOTIFY_CLIENT_SECRET)"
        return
    from rap_pipeline.samples.spotify_catalog_server import CatalogServer, load_sample_catalog

    client_id, client_secret = secrets.token_hex(8), secrets.token_hex(16)
    variables = {
        "SPOTIFY_CLIENT_ID": client_id,
        "SPOTIFY_CLIENT_SECRET": client_secret,
        "RAP_SPOTIFY_SOURCE_NAME": "sample_catalog",
    }
    with CatalogServer(load_sample_catalog(), client_id, client_secret) as server:
        variables["SPOTIFY_API_ROOT"] = server.api_root
        variables["SPOTIFY_TOKEN_URL"] = server.token_url
        previous = {name: os.environ.get(name) for name in variables}
        os.environ.update(variables)
        try:
            yield f"the bundled sample catalog, served at {server.api_root} (no credentials set)"
        finally:
            for name, value in previous.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def _run_partitions(
    settings: Settings, urls: ServiceURLs, specs: list[ArtistSpec]
) -> dict[str, str]:
    """Runs the main job per artist; returns the failed artists with their first error."""
    from dagster import DagsterInstance

    from rap_pipeline.definitions import defs

    use_dagster_environment(settings, urls)
    with connect(urls.database_url) as conn:
        register_artists(conn, specs)
    slugs = [spec.slug for spec in specs]
    _add_partitions(slugs)
    job = defs().resolve_job_def("main")
    failed: dict[str, str] = {}
    with (
        DagsterInstance.get() as instance,
        Progress(
            TextColumn("[bold]{task.description:<32}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress,
    ):
        task = progress.add_task("artists", total=len(slugs))
        for slug in slugs:
            progress.update(task, description=slug)
            result = job.execute_in_process(
                instance=instance,
                partition_key=slug,
                run_config=_QUIET_RUN_CONFIG,
                raise_on_error=False,
            )
            if not result.success:
                failed[slug] = _first_error(result)
            progress.advance(task)
        progress.update(task, description="done")
    return failed


def _first_error(result) -> str:
    """The user-code error behind a failed run (through Dagster's retry wrapper)."""
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data.error:
            error = event.step_failure_data.error
            while error.cause is not None:
                error = error.cause
            return error.message.strip().splitlines()[0]
    return "run failed"


def _print_summary(conn, slugs: list[str], elapsed_s: float, model_id: str) -> None:
    rows = conn.execute(
        """SELECT a.slug, a.display_name,
                  count(t.id) FILTER (WHERE t.status = 'kept'),
                  count(t.id) FILTER (WHERE t.status = 'rejected'),
                  count(t.id) FILTER (WHERE t.status = 'fetch_failed'),
                  (SELECT count(*) FROM track_embeddings e WHERE e.artist_slug = a.slug
                     AND e.model_id = %s),
                  count(s.track_id) FILTER (WHERE s.status = 'matched'),
                  count(s.track_id) FILTER (WHERE s.status IN ('matched', 'not_found'))
           FROM artists a LEFT JOIN tracks t ON t.artist_slug = a.slug
                LEFT JOIN spotify_tracks s ON s.track_id = t.id AND t.status = 'kept'
           WHERE a.slug = ANY(%s) GROUP BY a.slug, a.display_name ORDER BY a.slug""",
        (model_id, slugs),
    ).fetchall()
    reasons = Counter(
        dict(
            conn.execute(
                "SELECT status_reason, count(*) FROM tracks WHERE status = 'rejected' "
                "AND artist_slug = ANY(%s) GROUP BY status_reason",
                (slugs,),
            ).fetchall()
        )
    )
    table = Table(title="tracks per artist")
    columns = ("artist", "partition", "kept", "rejected", "fetch failed", "embedded", "spotify")
    for column in columns:
        table.add_column(column, justify="left" if column in ("artist", "partition") else "right")
    for slug, name, kept, rejected, failed, embedded, matched, searched in rows:
        spotify = f"{matched}/{searched} ({matched / searched:.0%})" if searched else "–"
        table.add_row(name, slug, *map(str, (kept, rejected, failed, embedded)), spotify)
    console.print(table)
    total_kept = sum(r[2] for r in rows)
    total_rejected = sum(r[3] for r in rows)
    matched, searched = sum(r[6] for r in rows), sum(r[7] for r in rows)
    by_reason = ", ".join(f"{reason} {n}" for reason, n in reasons.most_common()) or "none"
    console.print(
        f"[bold]{len(rows)} artists[/bold], {total_kept} tracks kept, {total_rejected} rejected "
        f"({by_reason}), in {elapsed_s:.1f} s"
    )
    if searched:
        console.print(
            f"Spotify: {matched} of {searched} searched tracks matched ({matched / searched:.0%})"
        )


def _print_analysis_summary(conn, slugs: list[str]) -> None:
    """Headline numbers per artist from the latest ok analyses of each analyzer."""
    rows = conn.execute(
        """WITH latest AS (
             SELECT DISTINCT ON (a.track_id, a.analyzer) a.artist_slug, a.analyzer, a.method,
                    a.result
             FROM analyses a JOIN tracks t ON t.id = a.track_id AND t.status = 'kept'
                  AND a.status = 'ok'
             WHERE a.artist_slug = ANY(%s)
             ORDER BY a.track_id, a.analyzer, a.analyzed_at DESC)
           SELECT artist_slug,
                  avg((result->>'rhyme_density')::float) FILTER (WHERE analyzer = 'rule_based'),
                  avg((result->>'mtld')::float) FILTER (WHERE analyzer = 'rule_based'),
                  mode() WITHIN GROUP (ORDER BY result->>'dominant_emotion')
                      FILTER (WHERE analyzer = 'emotion'),
                  min(method) FILTER (WHERE analyzer = 'emotion'),
                  avg((result->>'valence')::float) FILTER (WHERE analyzer = 'hybrid'),
                  avg((result->>'lyricism')::float) FILTER (WHERE analyzer = 'llm')
           FROM latest GROUP BY artist_slug ORDER BY artist_slug""",
        (slugs,),
    ).fetchall()
    if not rows:
        return
    table = Table(title="analyses per artist (means over kept tracks)")
    for column in ("partition", "rhyme density", "MTLD", "top emotion", "valence", "LLM lyricism"):
        table.add_column(column, justify="left" if column == "partition" else "right")

    def number(value: float | None, digits: int) -> str:
        return "–" if value is None else f"{value:.{digits}f}"

    methods = set()
    for slug, rhyme, mtld, emotion, method, valence, lyricism in rows:
        methods.add(method)
        table.add_row(
            slug,
            number(rhyme, 3),
            number(mtld, 1),
            emotion or "–",
            number(valence, 2),
            number(lyricism, 1),
        )
    console.print(table)
    console.print(f"emotion by: {', '.join(sorted(m for m in methods if m)) or 'none'}")


EXAMPLE_QUERY = "songs about losing a brother"


def _print_example_search(settings: Settings, urls: ServiceURLs) -> None:
    from rap_pipeline.search import search

    hits = search(
        EXAMPLE_QUERY, limit=3, model_id=settings.embedding_model, database_url=urls.database_url
    )
    if not hits:
        return
    console.print(f'\nexample: rap-pipeline search "{EXAMPLE_QUERY}" --limit 3')
    for rank, hit in enumerate(hits, start=1):
        line = hit.matched_lines.split("\n", 1)[0]
        console.print(f"  {rank}. {hit.score:.3f} {hit.artist} – {hit.title} ({hit.year}): {line}")


def _run_dagster(args: list[str]) -> int:
    """Runs the dagster CLI with the pipeline's servers and instance (DAGSTER_HOME)."""
    settings = get_settings()
    try:
        with services_for_command(settings) as urls:
            use_dagster_environment(settings, urls)
            with connect(urls.database_url):
                pass  # applies migrations, which create the schema Dagster's storage uses
            console.print(f"PostgreSQL {describe_url(urls.database_url)}")
            try:
                return subprocess.run([sys.executable, "-m", "dagster", *args]).returncode
            except KeyboardInterrupt:
                return 130
    except (ServiceError, ConnectionError) as exc:
        raise _fail(str(exc)) from None


@app.command()
def dev(
    host: Annotated[str, typer.Option(help="Interface the UI listens on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the UI.")] = 3000,
) -> None:
    """Run the Dagster UI and daemon (sensors, schedules, automation) on the pipeline's servers."""
    workspace = project_file("workspace.yaml")
    target = ["-w", str(workspace)] if workspace.exists() else ["-m", "rap_pipeline.definitions"]
    console.print(f"UI on http://{host}:{port}")
    raise typer.Exit(_run_dagster(["dev", *target, "-h", host, "-p", str(port)]))


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def dagster(ctx: typer.Context) -> None:
    """Any dagster CLI command on the pipeline's instance, e.g.
    `rap-pipeline dagster definitions validate` (plain `dagster` in the repo root reads
    dagster.yaml, which needs the variables this sets)."""
    raise typer.Exit(_run_dagster(ctx.args))


@services_app.command("start")
def services_start() -> None:
    """Start the embedded servers (if needed) and leave them running for later commands."""
    try:
        urls = EmbeddedServices.from_settings(get_settings()).start()
    except ServiceError as exc:
        raise _fail(str(exc)) from None
    console.print(f"PostgreSQL: {urls.database_url}\nRedis:      {urls.redis_url}")


@services_app.command("stop")
def services_stop() -> None:
    """Stop the embedded servers cleanly."""
    stopped = EmbeddedServices.from_settings(get_settings()).stop()
    console.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@services_app.command("status")
def services_status() -> None:
    """Say whether the embedded servers run, and where."""
    settings = get_settings()
    urls = EmbeddedServices.from_settings(settings).running_urls()
    if urls is None:
        console.print(f"not running (data directory {settings.resolved_data_dir})")
        raise typer.Exit(3)
    console.print(f"PostgreSQL: {urls.database_url}\nRedis:      {urls.redis_url}")


@artists_app.command("add")
def artists_add(
    names: Annotated[list[str], typer.Argument(help="Display names, e.g. 'Tyler, The Creator'.")],
    slug: Annotated[
        str | None, typer.Option(help="Explicit partition key (only with a single name).")
    ] = None,
) -> None:
    """Add artists as partitions (their runs start from the UI, a sensor or `run`)."""
    if slug and len(names) != 1:
        raise _fail("--slug goes with exactly one name")
    settings = get_settings()
    try:
        specs = [ArtistSpec(name=name, slug=slug or "") for name in names]
        with services_for_command(settings) as urls:
            use_dagster_environment(settings, urls)
            with connect(urls.database_url) as conn:
                new = register_artists(conn, specs)
            _add_partitions([spec.slug for spec in specs])
    except (SlugCollisionError, ServiceError, ConnectionError, ValueError) as exc:
        raise _fail(str(exc)) from None
    for spec in specs:
        state = "added" if spec.slug in new else "already known"
        console.print(f"{spec.name!r} → partition {spec.slug!r} ({state})")


@artists_app.command("list")
def artists_list() -> None:
    """List the artists and their partition keys."""
    settings = get_settings()
    with services_for_command(settings) as urls, connect(urls.database_url) as conn:
        rows = conn.execute("SELECT slug, display_name FROM artists ORDER BY slug").fetchall()
    for slug, name in rows:
        console.print(f"{slug:<40} {name}")


def _print_hits(hits: list, as_json: bool, title: str) -> None:
    if as_json:
        import json

        typer.echo(json.dumps([hit.as_dict() for hit in hits], ensure_ascii=False, indent=2))
        return
    if not hits:
        console.print("no results")
        return
    table = Table(title=title, show_lines=True)
    for column in ("#", "score", "artist", "title", "year", "lines that matched"):
        table.add_column(column, overflow="fold")
    for rank, hit in enumerate(hits, start=1):
        lines = "\n".join(hit.matched_lines.splitlines()[:4])
        table.add_row(
            str(rank), f"{hit.score:.4f}", hit.artist, hit.title, str(hit.year or ""), lines
        )
    console.print(table)


@app.command("search")
def search_command(
    text: Annotated[str, typer.Argument(help="What the songs are about, in plain words.")],
    artist: Annotated[str | None, typer.Option(help="Only this artist (partition key).")] = None,
    year_from: Annotated[int | None, typer.Option(help="Released in or after this year.")] = None,
    year_to: Annotated[int | None, typer.Option(help="Released in or before this year.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Number of results.")] = 10,
    hybrid: Annotated[
        bool, typer.Option(help="Fuse with full-text search (reciprocal rank fusion).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Semantic search over the lyrics: tracks ranked by their best-matching lines."""
    from rap_pipeline.search import search

    settings = get_settings()
    try:
        with services_for_command(settings) as urls:
            hits = search(
                text,
                artist=artist,
                year_from=year_from,
                year_to=year_to,
                limit=limit,
                hybrid=hybrid,
                model_id=settings.embedding_model,
                database_url=urls.database_url,
            )
    except (ValueError, ServiceError, ConnectionError) as exc:
        raise _fail(str(exc)) from None
    _print_hits(hits, as_json, f"search: {text}")


@app.command("similar")
def similar_command(
    track: Annotated[str, typer.Argument(help="A track id, a title, or artist-slug/title.")],
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Number of results.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Tracks whose lyrics are closest to a given track's, from any artist."""
    from rap_pipeline.search import similar

    settings = get_settings()
    try:
        with services_for_command(settings) as urls:
            hits = similar(
                track,
                limit=limit,
                model_id=settings.embedding_model,
                database_url=urls.database_url,
            )
    except (LookupError, ServiceError, ConnectionError) as exc:
        raise _fail(str(exc)) from None
    _print_hits(hits, as_json, f"similar to: {track}")


def _print_benchmark(title: str, rows: list[tuple[str, str, str]], started: float) -> None:
    table = Table(title=title)
    for column in ("measure", "value", "rate / goal"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    console.print(table)
    console.print(f"took {time.monotonic() - started:.0f} s")


@benchmark_app.command("search")
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
    _print_benchmark(f"search benchmark: {tracks:,} tracks, {artists:,} artists", rows, started)


@benchmark_app.command("api-budget")
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


@benchmark_app.command("analyzers")
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
    _print_benchmark(f"analyzer benchmark: {tracks:,} generated tracks", rows, started)


@benchmark_app.command("search-quality")
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


@corpus_app.command("generate")
def corpus_generate(
    out: Annotated[Path, typer.Argument(help="Folder for the JSONL files and artists.yaml.")],
    artists: Annotated[int, typer.Option(help="Number of artists.")] = 1000,
    tracks: Annotated[int, typer.Option(help="Number of tracks.")] = 60_000,
    seed: Annotated[int, typer.Option(help="Same seed, same corpus.")] = 7,
) -> None:
    """Scale the sample corpus up for benchmarks; use it with RAP_CORPUS_PATH=OUT and
    RAP_ARTISTS_FILE=OUT/artists.yaml."""
    import yaml

    from rap_pipeline.samples.corpus_generator import artist_names, write_corpus

    counts = write_corpus(out, artists, tracks, seed)
    names = artist_names(artists)
    (out / "artists.yaml").write_text(
        yaml.safe_dump({"artists": names[: len(counts)]}, allow_unicode=True)
    )
    console.print(f"{sum(counts.values())} tracks over {len(counts)} artists in {out}")


def main() -> None:
    """The console script: errors that are the user's to fix end as one red line, not a
    traceback, whichever command raised them."""
    from rap_pipeline.defs.embeddings.model import ModelUnavailableError

    try:
        app()
    except (*_USER_ERRORS, ModelUnavailableError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
