"""`rap-pipeline benchmark api-budget`: what re-runs and parallel runs cost the Spotify API.

Runs the real ``spotify_tracks`` asset (spotipy, the Redis guard, PostgreSQL) against the
sample catalog server in a throwaway database (rap_pipeline_benchmark_api), and counts what
the server received:

1. one artist enriched, then enriched again with every track due (matches made stale, retry
   times come): HTTP requests of the first and of the second run;
2. two runs in two processes at once, each enriching half of the sample artists with a
   fresh cache, both under one configured rate: the most requests the server saw in any
   1-second and any 5-second window, against the limit. The limiter spaces its grants on
   Redis time; the server sees arrival times, which jitter by a few milliseconds around
   them, so a 1-second window can catch one request more than the grants it holds.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from dataclasses import dataclass

import dagster as dg

from rap_pipeline.benchmarks.setup import fresh_database, write_source
from rap_pipeline.core.database import close_pool, connect
from rap_pipeline.core.paths import SAMPLE_CORPUS_DIR, project_file
from rap_pipeline.core.resources import DatabaseResource, RedisResource
from rap_pipeline.defs.artists.partitions import artists_partitions
from rap_pipeline.defs.artists.registry import read_artists_file
from rap_pipeline.defs.spotify.assets import spotify_tracks
from rap_pipeline.defs.spotify.resources import SpotifyResource
from rap_pipeline.defs.tracks.corpus import CorpusSource
from rap_pipeline.samples.spotify_catalog_server import (
    CatalogServer,
    load_sample_catalog,
    max_requests_in_window,
)

BENCH_DATABASE = "rap_pipeline_benchmark_api_budget"
CLIENT_ID, CLIENT_SECRET = "benchmark-client", "benchmark-secret"


@dataclass(frozen=True)
class Budget:
    first_run_requests: int
    second_run_requests: int
    tracks_enriched_twice: int
    parallel_requests: int
    parallel_seconds: float
    max_requests_per_1s: int
    max_requests_per_5s: int
    limit_per_s: float


def _load_sample_tracks(database_url: str) -> list[str]:
    specs = read_artists_file(project_file("artists.yaml"))
    return write_source(database_url, specs, CorpusSource(SAMPLE_CORPUS_DIR))


def enrich(
    database_url: str,
    redis_url: str,
    namespace: str,
    server: tuple[str, str],
    slugs: list[str],
    rate: float,
) -> list[int]:
    """Materializes spotify_tracks for each artist; returns the tracks searched per run."""
    api_root, token_url = server
    spotify = SpotifyResource(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        api_root=api_root,
        token_url=token_url,
        requests_per_s=rate,
        redis=RedisResource(url=redis_url, namespace=namespace),
    )
    enriched = []
    with dg.DagsterInstance.ephemeral() as instance:
        instance.add_dynamic_partitions(artists_partitions.name, slugs)
        for slug in slugs:
            result = dg.materialize(
                [spotify_tracks],
                partition_key=slug,
                instance=instance,
                resources={"database": DatabaseResource(url=database_url), "spotify": spotify},
                run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
            )
            (event,) = result.asset_materializations_for_node("spotify_tracks")
            enriched.append(event.metadata["tracks_enriched_this_run"].value)
    close_pool(database_url)
    return enriched


def enrich_in_parallel(runs: list[tuple], timeout_s: float = 900) -> None:
    """Runs ``enrich(*args)`` for each of ``runs`` at once, each in a process of its own."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "rap_pipeline.benchmarks.api_budget", json.dumps(args)]
        )
        for args in runs
    ]
    try:
        for process in processes:
            if process.wait(timeout=timeout_s) != 0:
                raise RuntimeError(f"a parallel enrichment run exited with {process.returncode}")
    finally:
        for process in processes:
            process.kill()


def run_budget(server_url: str, redis_url: str, rate: float) -> Budget:
    database_url = fresh_database(server_url, BENCH_DATABASE)
    try:
        slugs = _load_sample_tracks(database_url)
        with CatalogServer(load_sample_catalog(), CLIENT_ID, CLIENT_SECRET) as server:
            endpoints = (server.api_root, server.token_url)
            namespace = f"benchmark-{uuid.uuid4().hex}"
            enrich(database_url, redis_url, namespace, endpoints, slugs[:1], rate)
            first = len(server.requests)
            with connect(database_url) as conn:  # every track due again
                conn.execute(
                    "UPDATE spotify_tracks SET retry_after = now(), enriched_at = '2000-01-01'"
                )
            (twice,) = enrich(database_url, redis_url, namespace, endpoints, slugs[:1], rate)
            second = len(server.requests) - first

            server.reset_log()
            fresh = f"benchmark-{uuid.uuid4().hex}"  # nothing cached: every call goes out
            halves = [slugs[1::2], slugs[2::2]]
            enrich_in_parallel(
                [(database_url, redis_url, fresh, endpoints, half, rate) for half in halves]
            )
            times = [r.time for r in server.requests if r.path.startswith("/v1/")]
    finally:
        close_pool(database_url)
    return Budget(
        first_run_requests=first,
        second_run_requests=second,
        tracks_enriched_twice=twice,
        parallel_requests=len(times),
        parallel_seconds=(max(times) - min(times)) if times else 0.0,
        max_requests_per_1s=max_requests_in_window(times, 1.0),
        max_requests_per_5s=max_requests_in_window(times, 5.0),
        limit_per_s=rate,
    )


if __name__ == "__main__":  # one parallel run of enrich_in_parallel
    database_url, redis_url, namespace, endpoints, slugs, rate = json.loads(sys.argv[1])
    enrich(database_url, redis_url, namespace, tuple(endpoints), slugs, rate)
