"""Lyric embeddings in pgvector, and precomputed similar tracks, one partition per artist."""

import time

import dagster as dg

from rap_pipeline.core.automation import keep_fresh_and_rerun_on_new_code
from rap_pipeline.core.kubernetes import MODEL_STEP
from rap_pipeline.core.resources import DatabaseResource
from rap_pipeline.defs.artists.batches import PartitionOutcome, materialize_partitions
from rap_pipeline.defs.artists.partitions import BATCHED_BACKFILLS, artists_partitions
from rap_pipeline.defs.embeddings.checks import (
    EMBEDDING_CHECK_SPECS,
    check_indexes,
    run_embedding_checks,
)
from rap_pipeline.defs.embeddings.resources import EmbeddingModelResource
from rap_pipeline.defs.embeddings.similar import SIMILAR_PER_TRACK, write_similar_tracks
from rap_pipeline.defs.embeddings.store import (
    CHUNKS_IN_BULK,
    CHUNKS_INDEXED,
    embed_tracks,
    pending_tracks,
    settle_indexes,
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
    embedded (lyrics hash + model id). A large backlog (a first backfill, another model) is
    written without the chunk HNSW index, which is then built once, in bulk
    (RAP_EMBEDDING_BULK_MIN_TRACKS; search scans exactly meanwhile).

    Automation: materialized for a new partition or when its upstream partition was updated,
    never past a failed blocking check; every partition again when its code version changes."""
    model = embedding_model.load()
    bulk_min_tracks = embedding_model.bulk_min_tracks
    with database.connect() as conn:
        chunk_index = settle_indexes(conn, model, bulk_min_tracks)
    if not chunk_index.present:
        context.log.info(
            "bulk load: %d tracks wait for vectors, %d have them; chunks are written without "
            "their HNSW index, built once fewer than %d wait",
            chunk_index.waiting,
            chunk_index.stored,
            bulk_min_tracks,
        )

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
                "write_seconds": round(write_s, 3),  # COPY
                "chunk_index": CHUNKS_INDEXED if chunk_index.present else CHUNKS_IN_BULK,
                "chunks_per_second": round(stats.unique_texts / stats.encode_seconds, 1)
                if stats.encode_seconds
                else 0.0,
                "total_seconds": round(time.perf_counter() - started, 3),
            },
            check_results=check_results,
        )

    def settle_after_writes(slugs: list[str]) -> dict[str, PartitionOutcome | Exception]:
        nonlocal chunk_index
        with database.connect() as conn:
            chunk_index = settle_indexes(conn, model, bulk_min_tracks)
        if chunk_index.build_seconds:
            context.log.info("chunk index built in %.1f s", chunk_index.build_seconds)
        # each partition's share of the build, so the run's partitions sum to it
        share = round(chunk_index.build_seconds / len(slugs), 4)
        return {slug: PartitionOutcome({"index_build_seconds": share}) for slug in slugs}

    def index_check() -> list[dg.AssetCheckResult]:
        with database.connect() as conn:
            return [check_indexes(conn, model, chunk_index, bulk_min_tracks)]

    return materialize_partitions(
        context, database, materialize_one, index_check, settle_after_writes
    )


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
