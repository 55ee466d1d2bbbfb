"""`rap-pipeline benchmark api`: `GET /search` latency with concurrent clients, beside the same
searches in process (`rap_pipeline.search.search`, what `rap-pipeline search` calls), in one run.

- Data: the pipeline's own database (after `make run`: the sample corpus), or, with
  ``--tracks N``, a throwaway database of N generated tracks whose vectors are derived from
  real line vectors as in `benchmark search` (its docstring says how), bulk-loaded, then
  indexed with the migration's HNSW settings.
- Queries: the labelled search-quality queries, round-robin. Both sides run with the model
  loaded and the query vectors cached after their first use (the process's LRU cache), so the
  figures are the search itself plus, for HTTP, the service around it.
- In process: ``clients`` threads calling ``search`` for ``seconds``. HTTP: `rap-pipeline
  serve` in a process of its own, ``clients`` threads here each with its own keep-alive
  connection, for ``seconds``. p50/p99 over every request of the window. On a 2-core machine
  the clients and the server share the cores, as the in-process threads do, so the clients
  are urllib3 connection pools (the library under requests, at a third of requests' CPU per
  call): the load generator should take as little of the machine as it can.
- CPU per request, HTTP side: this process (the clients), the service's process and every
  PostgreSQL process, from their CPU times over the window, so the table shows where the
  two cores went.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import numpy as np
import psutil
import psycopg
import requests
import urllib3
from psycopg import sql
from rich.progress import Progress

from rap_pipeline.benchmarks.search_benchmark import derived_vectors, load_tracks, settle, write_all
from rap_pipeline.benchmarks.search_quality import load_queries
from rap_pipeline.benchmarks.setup import Row, fresh_database
from rap_pipeline.core.database import connect
from rap_pipeline.core.services import free_port
from rap_pipeline.core.settings import Settings
from rap_pipeline.defs.embeddings.model import load_model
from rap_pipeline.defs.embeddings.store import PendingTrack
from rap_pipeline.samples.corpus_generator import generate

BENCH_DATABASE = "rap_pipeline_benchmark_api"
SEED = 7
P50_GOAL_MS, P99_GOAL_MS = 30, 100


def build_scale_database(
    server_url: str, artists: int, tracks: int, model_id: str, rebuild: bool = False
) -> str:
    """A throwaway database of generated tracks with derived vectors, HNSW-indexed. The
    generation is deterministic, so a complete database built for the same arguments is kept
    for the next run (about 10 minutes at 60,000 tracks) unless ``rebuild``."""
    stamp = f"benchmark api: {artists} artists, {tracks} tracks, {model_id}, seed {SEED}"
    admin = server_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        found = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            (BENCH_DATABASE,),
        ).fetchone()
    if found and found[0] == stamp and not rebuild:
        return server_url.rsplit("/", 1)[0] + f"/{BENCH_DATABASE}"
    model = load_model(model_id)
    url = fresh_database(server_url, BENCH_DATABASE)
    with Progress() as progress:
        load_tracks(url, list(generate(artists, tracks, SEED)), progress)
        with connect(url) as conn:
            kept = conn.execute(
                "SELECT id, lyrics_clean, lyrics_hash, release_year, artist_slug FROM tracks "
                "WHERE status = 'kept' ORDER BY id"
            ).fetchall()
            index_ddl = [
                ddl
                for (ddl,) in conn.execute(
                    "SELECT indexdef FROM pg_indexes WHERE indexdef LIKE '%USING hnsw%'"
                )
            ]
            for (name,) in conn.execute(
                "SELECT indexname FROM pg_indexes WHERE indexdef LIKE '%USING hnsw%'"
            ).fetchall():
                conn.execute(f'DROP INDEX "{name}"')  # bulk load first, index once
        embedded = derived_vectors(model, [PendingTrack(*row[:4]) for row in kept], progress)
        write_all(url, model, embedded, {row[0]: row[4] for row in kept}, progress)
    with connect(url) as conn:
        conn.execute("SET maintenance_work_mem = '1GB'")
        for ddl in index_ddl:
            conn.execute(ddl)
    settle(url)
    with psycopg.connect(admin, autocommit=True) as conn:  # complete: the next run may keep it
        conn.execute(
            sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                sql.Identifier(BENCH_DATABASE), sql.Literal(stamp)
            )
        )
    return url


def _percentiles(samples: list[float]) -> tuple[float, float]:
    array = np.array(samples) * 1000
    return float(np.percentile(array, 50)), float(np.percentile(array, 99))


def _hammer(call: Callable[[str], None], queries: list[str], clients: int, seconds: float):
    """``clients`` threads calling ``call(query)`` for ``seconds``; every latency, in s."""
    latencies: list[float] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client(offset: int) -> None:
        mine = []
        for query in itertools.islice(itertools.cycle(queries), offset, None):
            if time.perf_counter() >= deadline:
                break
            started = time.perf_counter()
            call(query)
            mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies


def run_api_benchmark(
    settings: Settings, database_url: str, redis_url: str, clients: int, seconds: float
) -> list[Row]:
    from rap_pipeline.search import search

    queries = [query for query, _ in load_queries()]
    with connect(database_url) as conn:
        tracks = conn.execute("SELECT count(*) FROM track_embeddings").fetchone()[0]

    def in_process(query: str) -> None:
        search(query, limit=10, model_id=settings.embedding_model, database_url=database_url)

    for query in queries:  # warm: model, query vectors, pool, caches
        in_process(query)
    local = _hammer(in_process, queries, clients, seconds)

    port = free_port()
    server = subprocess.Popen(  # the service in a process of its own, as deployed
        [sys.executable, "-m", "rap_pipeline.cli", "serve", "--port", str(port)],
        env={
            **os.environ,
            "RAP_DATABASE_URL": database_url,
            "RAP_REDIS_URL": redis_url,
            "RAP_API_REQUESTS_PER_MINUTE": str(10**9),
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    connections = threading.local()

    def over_http(query: str) -> None:
        if not hasattr(connections, "pool"):  # one keep-alive connection per client
            connections.pool = urllib3.HTTPConnectionPool("127.0.0.1", port, maxsize=1)
        answer = connections.pool.request(
            "GET", "/search", fields={"q": query, "limit": "10"}, timeout=30.0
        )
        if answer.status != 200:
            raise RuntimeError(f"GET /search answered {answer.status}: {answer.data[:200]!r}")

    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                requests.get(f"http://127.0.0.1:{port}/health", timeout=5)
                break
            except requests.ConnectionError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("rap-pipeline serve did not start") from None
                time.sleep(0.2)
        for query in queries:
            over_http(query)
        before = _cpu_seconds(server.pid)
        remote = _hammer(over_http, queries, clients, seconds)
        cpu_ms = _cpu_ms_per_request(before, _cpu_seconds(server.pid), len(remote))
    finally:
        server.terminate()
        server.wait(timeout=30)
    local_p50, local_p99 = _percentiles(local)
    http_p50, http_p99 = _percentiles(remote)
    met = lambda value, goal: "met" if value <= goal else "missed"  # noqa: E731
    return [
        ("tracks with vectors", f"{tracks:,}", ""),
        (
            f"in process: search(), {clients} threads",
            f"p50 {local_p50:.1f} ms · p99 {local_p99:.1f} ms",
            f"{len(local) / seconds:.0f} searches/s",
        ),
        (
            f"HTTP: GET /search, {clients} clients",
            f"p50 {http_p50:.1f} ms · p99 {http_p99:.1f} ms",
            f"{len(remote) / seconds:.0f} requests/s",
        ),
        ("HTTP p50 goal ≤ 30 ms", f"{http_p50:.1f} ms", met(http_p50, P50_GOAL_MS)),
        ("HTTP p99 goal ≤ 100 ms", f"{http_p99:.1f} ms", met(http_p99, P99_GOAL_MS)),
        ("HTTP / in process (p50)", f"{http_p50 / local_p50:.2f}×", ""),
        (
            "CPU per HTTP request (ms)",
            " · ".join(
                f"{side} {value:.2f}" if value is not None else f"{side} n/a"
                for side, value in cpu_ms.items()
            ),
            "2 cores shared",
        ),
    ]


def _cpu_seconds(server_pid: int) -> dict[str, dict[int, float] | None]:
    """User + system CPU seconds so far of each side's processes, by pid (listed anew each
    time: the service opens PostgreSQL connections under load); None for a side with no
    process this user may read (an external PostgreSQL, another user's server)."""
    server = psutil.Process(server_pid)
    sides = {
        "clients": [psutil.Process()],
        "service": [server, *server.children(recursive=True)],
        "PostgreSQL": [
            process
            for process in psutil.process_iter(["name"])
            if (process.info["name"] or "").startswith("postgres")
        ],
    }
    totals: dict[str, dict[int, float] | None] = {}
    for side, processes in sides.items():
        readable = {}
        for process in processes:
            try:
                readable[process.pid] = sum(process.cpu_times()[:2])
            except psutil.Error:
                continue
        totals[side] = readable or None
    return totals


def _cpu_ms_per_request(before: dict, after: dict, requests_made: int) -> dict[str, float | None]:
    """Each side's CPU over the window in ms per request; a process started within the
    window counts from 0."""
    per_request: dict[str, float | None] = {}
    for side, pids in after.items():
        if pids is None:
            per_request[side] = None
            continue
        earlier = before[side] or {}
        used = sum(seconds - earlier.get(pid, 0.0) for pid, seconds in pids.items())
        per_request[side] = used / requests_made * 1000
    return per_request
