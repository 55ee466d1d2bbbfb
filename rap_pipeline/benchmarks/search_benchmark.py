"""`rap-pipeline benchmark search`: search latency, recall, embedding throughput and write rate
at scale (default 60,000 generated tracks over 1,000 artists), in a throwaway database.

What is real and what is derived, so the figures can be read right:
- tracks: written by the pipeline's own ``write_partition``, one partition per artist;
- embedding throughput: the asset's ``embed_tracks`` against bare ``model.encode`` on the same
  chunk texts, in the same run, on a sample of the tracks (``--embed-sample``);
- vectors of the 60K tracks: embedding their 180K distinct chunks takes most of an hour on 2
  cores, so each distinct line of the generated corpus is embedded by the real model once and
  a chunk's vector is the normalized mean of its lines' vectors. The vectors sit in the
  model's space, clustered by theme as real ones are; they are not what the model would
  output for the whole chunk. The generator draws each stanza at random from a theme's ~20-150
  lines, so a theme's chunks are near-equidistant from one another: a hard case for any
  approximate index, where many near-ties decide a top 10;
- write rate: the asset's ``write_embeddings`` (binary COPY), per artist partition, into
  tables without HNSW indexes (a first backfill: the indexes are built once afterwards, and
  that build is timed) and, for the first 5% of artists, with the indexes maintained;
- search: ``vector_search`` (HNSW, iterative scan) at each ``ef_search`` asked for, against
  the same query with the index off (exact scan) for recall@10, a hit that scores as high as
  the true 10th counting as found, and how near the hits are (their summed scores over the
  exact top 10's: 1 when they are as near); latency DB-side (query round trip with a ready
  vector) and text-to-results (query encoding included; model already loaded). The queries
  are the labelled search-quality queries and lines of the corpus.
"""

from __future__ import annotations

import contextlib
import random
import re
import statistics
import time
from collections import defaultdict

import numpy as np
import psycopg
from rich.progress import Progress

from rap_pipeline.benchmarks.search_quality import load_queries
from rap_pipeline.benchmarks.setup import fresh_database, write_records
from rap_pipeline.core.chunking import chunk_lyrics
from rap_pipeline.core.database import close_pool, connect
from rap_pipeline.defs.embeddings.model import EmbeddingModel, load_model
from rap_pipeline.defs.embeddings.store import (
    EmbeddedTrack,
    PendingTrack,
    embed_tracks,
    write_embeddings,
)
from rap_pipeline.samples.corpus_generator import generate
from rap_pipeline.search import SearchHit, vector_search

BENCH_DATABASE = "rap_pipeline_benchmark"


def _percentile(samples: list[float], q: float) -> float:
    return float(np.percentile(np.array(samples), q))


def settle(url: str) -> None:
    """Lets the server finish the work earlier phases left (autovacuum of the tables just
    written, dirty buffers), so it does not land inside the next timed phase."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        # an external server's user may not be allowed to; the VACUUM still helps
        with contextlib.suppress(psycopg.errors.InsufficientPrivilege):
            conn.execute("CHECKPOINT")


def load_tracks(url: str, records: list[dict], progress: Progress) -> float:
    """Writes the generated tracks partition by partition; returns seconds."""
    task = progress.add_task("tracks (write_partition)", total=len({r["artist"] for r in records}))
    started = time.perf_counter()
    write_records(url, records, on_partition=lambda: progress.advance(task))
    return time.perf_counter() - started


def measure_embedding_throughput(
    model: EmbeddingModel, tracks: list[PendingTrack], batch_size: int, rounds: int = 3
) -> tuple[float, float]:
    """(asset texts/s, bare encode texts/s) on the same distinct chunk texts, same run: the
    median of ``rounds`` alternating runs each, so a slow moment of the machine does not land
    on one side only. The asset side is the whole ``embed_tracks`` (chunking, encoding,
    averaging), the bare side one ``encode`` call on its texts."""
    texts = list(
        dict.fromkeys(
            chunk.text
            for track in tracks
            for chunk in chunk_lyrics(track.lyrics, model.count_tokens, model.max_tokens)
        )
    )
    asset, bare = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        embed_tracks(model, tracks, batch_size)
        asset.append(len(texts) / (time.perf_counter() - started))
        started = time.perf_counter()
        model.encoder.encode(texts, batch_size=batch_size, show_progress_bar=False)
        bare.append(len(texts) / (time.perf_counter() - started))
    return statistics.median(asset), statistics.median(bare)


def derived_vectors(
    model: EmbeddingModel, tracks: list[PendingTrack], progress: Progress
) -> list[EmbeddedTrack]:
    """Chunk vectors as the normalized mean of real line vectors (see the module docstring)."""
    chunked = [(t, chunk_lyrics(t.lyrics, model.count_tokens, model.max_tokens)) for t in tracks]
    lines = list(
        dict.fromkeys(line for _, cs in chunked for c in cs for line in c.text.split("\n"))
    )
    task = progress.add_task(f"embedding {len(lines)} distinct lines", total=1)
    line_vectors = dict(zip(lines, model.encode(lines, batch_size=64), strict=True))
    progress.advance(task)
    embedded = []
    for track, chunks in chunked:
        vectors = []
        for chunk in chunks:
            mean = np.mean([line_vectors[line] for line in chunk.text.split("\n")], axis=0)
            vectors.append(mean / np.linalg.norm(mean))
        stacked = np.stack(vectors).astype(np.float32)
        mean = stacked.mean(axis=0)
        embedded.append(EmbeddedTrack(track, chunks, stacked, mean / np.linalg.norm(mean)))
    return embedded


def write_all(
    url: str,
    model: EmbeddingModel,
    embedded: list[EmbeddedTrack],
    slug_of: dict[int, str],
    progress: Progress,
) -> tuple[int, float]:
    """Writes into empty tables, a partition at a time; returns (rows written, seconds)."""
    by_artist: dict[str, list[EmbeddedTrack]] = defaultdict(list)
    for item in embedded:
        by_artist[slug_of[item.track.track_id]].append(item)
    task = progress.add_task("vectors (write_embeddings, COPY)", total=len(by_artist))
    started = time.perf_counter()
    with connect(url) as conn:
        for slug, items in by_artist.items():
            write_embeddings(conn, slug, model, items)
            progress.advance(task)
    seconds = time.perf_counter() - started
    with connect(url) as conn:
        rows = conn.execute(
            "SELECT (SELECT count(*) FROM lyric_chunks) + (SELECT count(*) FROM track_embeddings)"
        ).fetchone()[0]
    return rows, seconds


def exact_results(
    url: str, model: EmbeddingModel, texts: list[str], limit: int = 10
) -> list[list[SearchHit]]:
    """The true top ``limit`` of every query (index off: every chunk is compared)."""
    with connect(url) as conn:
        return [
            vector_search(conn, model, model.encode([text])[0], limit=limit, exact=True)
            for text in texts
        ]


def recall_at_k(approx: list[SearchHit], exact: list[SearchHit]) -> float:
    """Share of the true top k the index found. A hit scoring as high as the true k-th counts:
    tracks whose best chunks are equally near are interchangeable, whichever order they
    tie in."""
    if not exact:
        return 1.0
    threshold = exact[-1].score - 1e-6
    return min(len(exact), sum(1 for hit in approx if hit.score >= threshold)) / len(exact)


def run_queries(
    url: str,
    model: EmbeddingModel,
    texts: list[str],
    truth: list[list[SearchHit]],
    ef_search: int,
    limit: int = 10,
) -> dict[str, float]:
    """Latency DB-side (a ready query vector) and text-to-results (query encoding included),
    and recall@limit against ``truth``."""
    db_ms, text_ms, recalls, score_ratios = [], [], [], []
    with connect(url) as conn:
        for text, exact in zip(texts, truth, strict=True):
            started = time.perf_counter()
            vector = model.encode([text])[0]
            approx = vector_search(conn, model, vector, limit=limit, ef_search=ef_search)
            text_ms.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            vector_search(conn, model, vector, limit=limit, ef_search=ef_search)
            db_ms.append((time.perf_counter() - started) * 1000)
            recalls.append(recall_at_k(approx, exact))
            if exact:
                score_ratios.append(
                    sum(hit.score for hit in approx) / sum(hit.score for hit in exact)
                )
    return {
        "db_p50": _percentile(db_ms, 50),
        "db_p99": _percentile(db_ms, 99),
        "text_p50": _percentile(text_ms, 50),
        "text_p99": _percentile(text_ms, 99),
        "recall": statistics.mean(recalls),
        "score_ratio": statistics.mean(score_ratios),
    }


def run_benchmark(
    server_url: str,
    artists: int,
    tracks: int,
    queries: int,
    embed_sample: int,
    ef_search: list[int],
    model_id: str,
    hnsw_options: tuple[int, int] | None = None,
    seed: int = 7,
) -> list[tuple[str, str, str]]:
    model = load_model(model_id)
    url = fresh_database(server_url, BENCH_DATABASE)
    records = list(generate(artists, tracks, seed))
    rows: list[tuple[str, str, str]] = []
    with Progress() as progress:
        seconds = load_tracks(url, records, progress)
        with connect(url) as conn:
            kept = conn.execute(
                "SELECT t.id, t.lyrics_clean, t.lyrics_hash, t.release_year, t.artist_slug "
                "FROM tracks t WHERE status = 'kept' ORDER BY id"
            ).fetchall()
        rows.append(
            (
                "tracks written (write_partition)",
                f"{len(kept)} kept of {tracks}",
                f"{tracks / seconds:,.0f} tracks/s",
            )
        )
        pending = [PendingTrack(*row[:4]) for row in kept]
        slug_of = {row[0]: row[4] for row in kept}

        sample = random.Random(seed).sample(pending, min(embed_sample, len(pending)))
        asset_rate, bare_rate = measure_embedding_throughput(model, sample, 32)
        rows.append(("embedding: asset path (chunk texts/s)", f"{asset_rate:.1f}", ""))
        rows.append(("embedding: bare model.encode (texts/s)", f"{bare_rate:.1f}", ""))
        rows.append(("embedding: asset / bare", f"{asset_rate / bare_rate:.0%}", "goal ≥ 90%"))

        embedded = derived_vectors(model, pending, progress)
        with connect(url) as conn:
            index_ddl = conn.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE indexdef LIKE '%USING hnsw%'"
            ).fetchall()
        # incremental rate (what one partition's materialization sees), on the first artists
        first_artists = set(list(dict.fromkeys(slug_of.values()))[: max(1, artists // 20)])
        subset = [item for item in embedded if slug_of[item.track.track_id] in first_artists]
        settle(url)
        written, seconds = write_all(url, model, subset, slug_of, progress)
        rows.append(
            (
                f"write, HNSW maintained ({len(first_artists)} partitions)",
                f"{written:,} rows",
                f"{written / seconds:,.0f} rows/s",
            )
        )

        # bulk-load rate: the same COPY with the HNSW indexes dropped, then built once
        with connect(url) as conn:
            for name, _ in index_ddl:
                conn.execute(f'DROP INDEX "{name}"')
            conn.execute("TRUNCATE lyric_chunks, track_embeddings")
        settle(url)
        written, seconds = write_all(url, model, embedded, slug_of, progress)
        rows.append(
            (
                "write without index (bulk COPY)",
                f"{written:,} rows",
                f"{written / seconds:,.0f} rows/s (goal ≥ 30,000)",
            )
        )
        if hnsw_options is not None:
            m, ef_construction = hnsw_options
            index_ddl = [
                (
                    name,
                    re.sub(
                        r"WITH \([^)]*\)", f"WITH (m={m}, ef_construction={ef_construction})", ddl
                    ),
                )
                for name, ddl in index_ddl
            ]
        options = re.search(r"WITH \(([^)]*)\)", index_ddl[0][1]).group(1).replace("'", "")
        started = time.perf_counter()
        with connect(url) as conn:
            conn.execute("SET maintenance_work_mem = '1GB'")
            for _, ddl in index_ddl:
                conn.execute(ddl)
        rows.append(
            (
                f"HNSW build ({options})",
                f"{len(index_ddl)} indexes",
                f"{time.perf_counter() - started:.1f} s",
            )
        )
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE lyric_chunks")
            conn.execute("VACUUM ANALYZE track_embeddings")

    rng = random.Random(seed)
    lines = [line for item in rng.sample(embedded, 200) for line in item.chunks[0].text.split("\n")]
    texts = [q for q, _ in load_queries()] + rng.sample(lines, max(0, queries - 15))
    texts = texts[:queries]
    truth = exact_results(url, model, texts)
    for ef in ef_search:
        run_queries(url, model, texts[:10], truth[:10], ef)  # warm caches
        result = run_queries(url, model, texts, truth, ef)
        rows.append(
            (
                f"ef_search={ef}: search DB-side, {len(texts)} queries (ms)",
                f"p50 {result['db_p50']:.2f}, p99 {result['db_p99']:.2f}",
                "goal p50 ≤ 3",
            )
        )
        rows.append(
            (
                f"ef_search={ef}: search text-to-results (ms)",
                f"p50 {result['text_p50']:.2f}, p99 {result['text_p99']:.2f}",
                "goal p50 ≤ 25",
            )
        )
        rows.append(
            (f"ef_search={ef}: recall@10 vs exact", f"{result['recall']:.3f}", "goal ≥ 0.95")
        )
        rows.append(
            (
                f"ef_search={ef}: summed score of hits / of exact top 10",
                f"{result['score_ratio']:.4f}",
                "1 = as near as exact",
            )
        )
    close_pool(url)
    return rows
