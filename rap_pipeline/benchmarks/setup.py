"""What every benchmark starts from: a throwaway database on the pipeline's PostgreSQL, filled
through the pipeline's own write path (``write_partition``), one partition per artist."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import defaultdict
from collections.abc import Callable, Iterable

import psycopg

from rap_pipeline.core.database import connect
from rap_pipeline.defs.artists.registry import ArtistSpec, register_artists
from rap_pipeline.defs.tracks.corpus import record_to_track
from rap_pipeline.defs.tracks.sources import FetchResult, TrackSource
from rap_pipeline.defs.tracks.store import prepare_rows, write_partition

Row = tuple[str, str, str]  # a benchmark table's (measure, value, rate / goal)


def fresh_database(server_url: str, name: str) -> str:
    """The URL of database ``name`` on the server of ``server_url``, dropped and created anew
    (and migrated on first connect)."""
    admin = server_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return server_url.rsplit("/", 1)[0] + f"/{name}"


def write_records(
    url: str, records: Iterable[dict], on_partition: Callable[[], None] | None = None
) -> dict[str, str]:
    """Writes corpus records (``artist``, ``title``, ``lyrics``…), each artist's as one
    partition; returns display name → slug. ``on_partition`` is called after each."""
    by_artist: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        by_artist[record["artist"]].append(record)
    specs = [ArtistSpec(name=name) for name in by_artist]
    with connect(url) as conn:
        register_artists(conn, specs)
        for spec in specs:
            fetched = FetchResult(tracks=[record_to_track(r) for r in by_artist[spec.name]])
            write_partition(conn, spec.slug, "corpus", prepare_rows(spec.slug, fetched), [])
            if on_partition is not None:
                on_partition()
    return {spec.name: spec.slug for spec in specs}


def write_source(url: str, specs: list[ArtistSpec], source: TrackSource) -> list[str]:
    """Fetches each artist from ``source`` and writes it as one partition; returns the slugs."""
    with connect(url) as conn:
        register_artists(conn, specs)
        for spec in specs:
            fetched = source.fetch(spec)
            write_partition(conn, spec.slug, source.name, prepare_rows(spec.slug, fetched), [])
    return [spec.slug for spec in specs]


def timed(function: Callable[[], object]) -> float:
    """Seconds ``function()`` took."""
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def stop_process_group(process: subprocess.Popen) -> None:
    """Stops a process started with ``start_new_session=True`` and its group (a daemon, its
    code servers and run workers): SIGTERM, then SIGKILL after a minute."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def ratio(part: float, whole: float) -> str:
    return f"{part / whole:.0%}" if whole else "n/a"
