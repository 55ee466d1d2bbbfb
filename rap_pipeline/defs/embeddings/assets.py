"""Lyric embeddings in pgvector, and precomputed similar tracks, one partition per artist."""

import time

import dagster as dg

from rap_pipeline.core.automation import keep_fresh_and_rerun_on_new_code
from rap_pipeline.core.kubernetes import MODEL_STEP
from rap_pipeline.core.resources import DatabaseResource
from rap_pipeline.defs.artists.batches import PartitionOutcome, materialize_partitions
from rap_pipeline.defs.artists.partitions import BATCHED_BACKFILLS, artists_partitions
from rap_pipeline.defs.embeddings.checks import EMBEDDING_CHECK_SPECS, run_embedding_checks
from rap_pipeline.defs.embeddings.resources import EmbeddingModelResource
from rap_pipeline.defs.embeddings.similar import SIMILAR_PER_TRACK, write_similar_tracks
from rap_pipeline.defs.embeddings.store import (
    embed_tracks,
    ensure_indexes,
    pending_tracks,
    write_embeddings,
)


@dg.asset(
    partitions_def=artists_partitions,
    group_name="embeddings",
    deps=["tracks"],
    kinds={"pgvector", "pytorch"},
    code_version="1",
    check_specs=EMBEDDING_CHECK_SPECS,
    automation_condition=keep_fresh_and_rerun_on_new_code(),
    backfill_policy=BATCHED_BACKFILLS,
    pool="vector_index",
    op_tags=MODEL_STEP,
)
def lyric_embeddings(
    context: dg.AssetExecutionContext,
    database: DatabaseResource,
    embedding_model: EmbeddingModelResource,
) -> dg.MaterializeResult:
    """Sentence-transformers vectors of the artist's kept lyrics (tables ``lyric_chunks`` and
    ``track_embeddings``): whole songs, split by stanza into chunks the model reads entirely,
    the track vector being the normalized mean of its chunks. Only new or changed lyrics are
    embedded (lyrics hash + model id).

    Automation: materialized for a new partition or when its upstream partition was updated,
    never past a failed blocking check; every partition again when its code version changes."""
    model = embedding_model.load()
    with database.connect() as conn:
        ensure_indexes(conn, model)

    def materialize_one(slug: str) -> PartitionOutcome:
        started = time.perf_counter()
        with database.connect() as conn:
            pending = pending_tracks(conn, slug, model.model_id)
        embedded, stats = embed_tracks(model, pending, embedding_model.batch_size)
        with database.connect() as conn:
            write_started = time.perf_counter()
            write_embeddings(conn, slug, model, embedded)
            write_s = time.perf_counter() - write_started
            check_results = run_embedding_checks(conn, slug, model)
            stored = conn.execute(
                "SELECT count(*) FROM track_embeddings WHERE artist_slug = %s AND model_id = %s",
                (slug, model.model_id),
            ).fetchone()[0]
        return PartitionOutcome(
            metadata={
                "model_id": model.model_id,
                "dimension": model.dimension,
                "tracks_embedded": stats.tracks,
                "tracks_with_vectors": stored,
                "chunks": stats.chunks,
                "distinct_chunk_texts": stats.unique_texts,
                "encode_seconds": round(stats.encode_seconds, 3),
                "write_seconds": round(write_s, 3),  # COPY with the HNSW indexes maintained
                "chunks_per_second": round(stats.unique_texts / stats.encode_seconds, 1)
                if stats.encode_seconds
                else 0.0,
                "total_seconds": round(time.perf_counter() - started, 3),
            },
            check_results=check_results,
        )

    return materialize_partitions(context, database, materialize_one)


@dg.asset(
    partitions_def=artists_partitions,
    group_name="embeddings",
    deps=[lyric_embeddings],
    kinds={"pgvector"},
    code_version="1",
    automation_condition=keep_fresh_and_rerun_on_new_code(),
    backfill_policy=BATCHED_BACKFILLS,
    pool="vector_index",
)
def similar_tracks(
    context: dg.AssetExecutionContext,
    database: DatabaseResource,
    embedding_model: EmbeddingModelResource,
) -> dg.MaterializeResult:
    """The nearest tracks (10, any artist, by track vector) of each of the artist's tracks, for
    recommendations (table ``similar_tracks``). Neighbours among other artists' tracks are
    those embedded when this partition ran.

    Automation: materialized for a new partition or when its upstream partition was updated,
    never past a failed blocking check; every partition again when its code version changes."""
    model = embedding_model.load()

    def materialize_one(slug: str) -> PartitionOutcome:
        with database.connect() as conn:
            rows = write_similar_tracks(conn, slug, model)
        return PartitionOutcome({"rows": rows, "per_track": SIMILAR_PER_TRACK})

    return materialize_partitions(context, database, materialize_one)
