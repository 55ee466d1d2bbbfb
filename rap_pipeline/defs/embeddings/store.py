"""Embedding an artist's lyrics and writing the vectors (binary COPY) in one transaction."""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg import pq, sql

from rap_pipeline.core.chunking import Chunk, chunk_lyrics
from rap_pipeline.defs.embeddings.model import (
    HNSW_EF_SEARCH,
    EmbeddingModel,
    index_name,
)

# m / ef_construction of the HNSW indexes (sql/005_embeddings_upkeep.sql says why; it builds
# the default model's).
HNSW_OPTIONS = "m = 32, ef_construction = 256"
_CHUNK_COLUMNS = (
    "track_id",
    "model_id",
    "chunk_index",
    "first_line",
    "line_count",
    "content",
    "artist_slug",
    "release_year",
    "dimension",
    "embedding",
)
_CHUNK_TYPES = ("int8", "text", "int4", "int4", "int4", "text", "text", "int2", "int4", "vector")
_TRACK_COLUMNS = (
    "track_id",
    "model_id",
    "dimension",
    "lyrics_hash",
    "artist_slug",
    "release_year",
    "chunk_count",
    "embedding",
)
_TRACK_TYPES = ("int8", "text", "int4", "text", "text", "int2", "int4", "vector")


def set_hnsw_search(
    conn: psycopg.Connection,
    ef_search: int = HNSW_EF_SEARCH,
    iterative: bool = False,
    local: bool = True,
) -> None:
    """HNSW search settings for the current transaction (or, ``local=False``, the session), in
    one round trip. ``iterative`` lets a filtered scan go on until enough rows pass the filters
    (pgvector 0.8)."""
    conn.execute(
        "SELECT set_config('hnsw.ef_search', %s, %s), set_config('hnsw.iterative_scan', %s, %s)",
        (str(ef_search), local, "relaxed_order" if iterative else "off", local),
    )


# the HNSW settings each connection's session has (set by hnsw_search)
_session_settings: weakref.WeakKeyDictionary[psycopg.Connection, tuple[int, bool]] = (
    weakref.WeakKeyDictionary()
)


@contextmanager
def hnsw_search(
    conn: psycopg.Connection, ef_search: int = HNSW_EF_SEARCH, iterative: bool = False
) -> Iterator[None]:
    """HNSW settings for the read-only statements of the block. On a connection outside a
    transaction (a pooled one, as searches get), the block runs in autocommit and the settings
    are the session's, sent only when this connection had other ones: a search is then one
    round trip instead of four (BEGIN, settings, query, COMMIT), which under load is a
    measurable share of the API's CPU. Every HNSW query sets what it needs, so a session's
    values never decide another query's. Inside a transaction: that transaction's settings."""
    if conn.info.transaction_status != pq.TransactionStatus.IDLE:
        set_hnsw_search(conn, ef_search, iterative)
        yield
        return
    autocommit = conn.autocommit
    conn.autocommit = True
    try:
        if _session_settings.get(conn) != (ef_search, iterative):
            set_hnsw_search(conn, ef_search, iterative, local=False)
            _session_settings[conn] = (ef_search, iterative)
        yield
    finally:
        conn.autocommit = autocommit


def _copy_sql(table: str, columns: tuple[str, ...]) -> str:
    return f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT BINARY)"


@dataclass(frozen=True)
class PendingTrack:
    track_id: int
    lyrics: str
    lyrics_hash: str
    release_year: int | None


@dataclass(frozen=True)
class EmbeddedTrack:
    track: PendingTrack
    chunks: list[Chunk]
    chunk_vectors: np.ndarray
    vector: np.ndarray


@dataclass(frozen=True)
class EmbedStats:
    tracks: int
    chunks: int
    unique_texts: int
    encode_seconds: float


# how a partition's chunks were written (its metadata says which)
CHUNKS_INDEXED = "maintained"
CHUNKS_IN_BULK = "left out (bulk load)"


@dataclass
class ChunkIndex:
    """The model's chunk index after ``settle_indexes``, and the backlog that decided it."""

    present: bool
    waiting: int  # kept tracks without a vector of the model for their current lyrics
    stored: int  # kept tracks with one
    build_seconds: float = 0.0  # spent building it just now


def settle_indexes(
    conn: psycopg.Connection, model: EmbeddingModel, bulk_min_tracks: int
) -> ChunkIndex:
    """The model's HNSW indexes as its backlog wants them. Each chunk written while the chunk
    index exists searches its graph (``HNSW_OPTIONS``): a few hundred rows per second, against
    tens of thousands by plain COPY and about a thousand by a build. So a backlog of at least
    ``bulk_min_tracks`` that outnumbers the tracks already stored (a first backfill, a new
    model) is written without it, and it is built once fewer than ``bulk_min_tracks`` wait;
    search scans exactly meanwhile (right, slower). The track index is always kept: it has one
    row per track, and ``similar_tracks`` reads it."""
    with conn.transaction():
        # one settles at a time; a concurrent writer waits for the build (it locks writes)
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('hnsw:' || %s))", (model.model_id,))
        waiting, stored = conn.execute(
            """SELECT count(*) FILTER (WHERE e.lyrics_hash IS DISTINCT FROM t.lyrics_hash),
                      count(*) FILTER (WHERE e.lyrics_hash = t.lyrics_hash)
               FROM tracks t
               LEFT JOIN track_embeddings e ON e.track_id = t.id AND e.model_id = %s
               WHERE t.status = 'kept'""",
            (model.model_id,),
        ).fetchone()
        chunk_index = index_name("lyric_chunks", model.model_id)
        present = _index_exists(conn, chunk_index)
        build_seconds = 0.0
        if present and waiting >= bulk_min_tracks and waiting > stored:
            conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(chunk_index)))
            present = False
        elif not present and waiting < bulk_min_tracks:
            started = time.perf_counter()
            _create_index(conn, "lyric_chunks", model)
            build_seconds = time.perf_counter() - started
            present = True
        if not _index_exists(conn, index_name("track_embeddings", model.model_id)):
            _create_index(conn, "track_embeddings", model)
    return ChunkIndex(present, waiting, stored, build_seconds)


def _index_exists(conn: psycopg.Connection, name: str) -> bool:
    found = conn.execute("SELECT 1 FROM pg_indexes WHERE indexname = %s", (name,)).fetchone()
    return found is not None


def _create_index(conn: psycopg.Connection, table: str, model: EmbeddingModel) -> None:
    """The model's HNSW index on ``table``, as the migration creates the default model's."""
    # pgvector builds fastest when the graph fits in maintenance_work_mem
    conn.execute(
        "SELECT set_config('maintenance_work_mem', '1GB', true) WHERE "
        "pg_size_bytes(current_setting('maintenance_work_mem')) < pg_size_bytes('1GB')"
    )
    conn.execute(
        sql.SQL(
            "CREATE INDEX {name} ON {table} USING hnsw "
            "((embedding::vector({dim})) vector_cosine_ops) WITH ({options}) "
            "WHERE model_id = {model}"
        ).format(
            name=sql.Identifier(index_name(table, model.model_id)),
            table=sql.Identifier(table),
            dim=sql.Literal(model.dimension),
            options=sql.SQL(HNSW_OPTIONS),
            model=sql.Literal(model.model_id),
        )
    )


def pending_tracks(conn: psycopg.Connection, artist_slug: str, model_id: str) -> list[PendingTrack]:
    """Kept tracks of the artist with no vector for this model, or one of older lyrics."""
    rows = conn.execute(
        """SELECT t.id, t.lyrics_clean, t.lyrics_hash, t.release_year
           FROM tracks t
           LEFT JOIN track_embeddings e ON e.track_id = t.id AND e.model_id = %s
           WHERE t.artist_slug = %s AND t.status = 'kept'
             AND (e.track_id IS NULL OR e.lyrics_hash <> t.lyrics_hash)
           ORDER BY t.id""",
        (model_id, artist_slug),
    ).fetchall()
    return [PendingTrack(*row) for row in rows]


def embed_tracks(
    model: EmbeddingModel, tracks: list[PendingTrack], batch_size: int = 32
) -> tuple[list[EmbeddedTrack], EmbedStats]:
    """Chunks every track, encodes each distinct chunk text once (a repeated chorus is encoded
    once), and averages a track's chunk vectors into its unit-length track vector."""
    chunked = [
        (track, chunk_lyrics(track.lyrics, model.count_tokens, model.max_tokens))
        for track in tracks
    ]
    texts = list(dict.fromkeys(chunk.text for _, chunks in chunked for chunk in chunks))
    started = time.perf_counter()
    # sentence-transformers sorts each call's texts by length, so batches are padded little
    vectors = (
        model.encode(texts, batch_size=batch_size) if texts else np.empty((0, model.dimension))
    )
    encode_seconds = time.perf_counter() - started
    if not np.isfinite(vectors).all():
        raise ValueError(f"model {model.model_id} produced NaN or infinite values")
    by_text = dict(zip(texts, vectors, strict=True))
    embedded = []
    for track, chunks in chunked:
        chunk_vectors = np.stack([by_text[chunk.text] for chunk in chunks]).astype(np.float32)
        mean = chunk_vectors.mean(axis=0)
        embedded.append(EmbeddedTrack(track, chunks, chunk_vectors, mean / np.linalg.norm(mean)))
    stats = EmbedStats(len(tracks), sum(len(c) for _, c in chunked), len(texts), encode_seconds)
    return embedded, stats


def use_vectors(conn: psycopg.Connection) -> None:
    """Registers pgvector's types on the connection, once (each registration costs queries)."""
    if conn.adapters.types.get("vector") is None:
        register_vector(conn)


def write_embeddings(
    conn: psycopg.Connection,
    artist_slug: str,
    model: EmbeddingModel,
    embedded: list[EmbeddedTrack],
) -> None:
    """Replaces the vectors of the embedded tracks in one transaction. A chunk repeated within
    a track (a chorus) is stored once, at its first occurrence; the track vector still counts
    every repetition. (Vectors of tracks no longer kept, and release-year changes, are the
    database's job: the trigger in sql/005_embeddings_upkeep.sql.)"""
    use_vectors(conn)
    track_ids = [item.track.track_id for item in embedded]
    with conn.transaction():
        # derived data that the next run embeds again if a crash loses it (pending_tracks reads
        # the tables): no need to wait for each partition's WAL flush
        conn.execute(
            "SELECT set_config('synchronous_commit', 'off', true), "
            "pg_advisory_xact_lock(hashtext('embeddings:' || %s))",
            (artist_slug,),
        )
        conn.execute(
            """WITH chunks AS (
                   DELETE FROM lyric_chunks
                   WHERE model_id = %(model)s AND track_id = ANY(%(ids)s))
               DELETE FROM track_embeddings
               WHERE model_id = %(model)s AND track_id = ANY(%(ids)s)""",
            {"model": model.model_id, "ids": track_ids},
        )
        with conn.cursor() as cur:
            with cur.copy(_copy_sql("lyric_chunks", _CHUNK_COLUMNS)) as copy:
                copy.set_types(_CHUNK_TYPES)
                for item in embedded:
                    seen: set[str] = set()
                    for chunk, vector in zip(item.chunks, item.chunk_vectors, strict=True):
                        if chunk.text in seen:
                            continue
                        seen.add(chunk.text)
                        copy.write_row(
                            (
                                item.track.track_id,
                                model.model_id,
                                chunk.index,
                                chunk.first_line,
                                chunk.line_count,
                                chunk.text,
                                artist_slug,
                                item.track.release_year,
                                model.dimension,
                                vector,
                            )
                        )
            with cur.copy(_copy_sql("track_embeddings", _TRACK_COLUMNS)) as copy:
                copy.set_types(_TRACK_TYPES)
                for item in embedded:
                    copy.write_row(
                        (
                            item.track.track_id,
                            model.model_id,
                            model.dimension,
                            item.track.lyrics_hash,
                            artist_slug,
                            item.track.release_year,
                            len(item.chunks),
                            item.vector,
                        )
                    )


def embedded_counts(conn: psycopg.Connection, slugs: list[str], model_id: str) -> dict[str, int]:
    """Tracks with a vector of this model, per artist."""
    rows = conn.execute(
        "SELECT artist_slug, count(*) FROM track_embeddings WHERE artist_slug = ANY(%s) "
        "AND model_id = %s GROUP BY artist_slug",
        (slugs, model_id),
    ).fetchall()
    return dict(rows)
