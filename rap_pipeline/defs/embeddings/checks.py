"""Data tests of the embeddings of one artist partition."""

from __future__ import annotations

import dagster as dg
import psycopg

from rap_pipeline.defs.embeddings.model import EmbeddingModel, index_name
from rap_pipeline.defs.embeddings.store import ChunkIndex

LYRIC_EMBEDDINGS = dg.AssetKey("lyric_embeddings")
NORM_TOLERANCE = 1e-3

EMBEDDING_CHECK_SPECS = [
    dg.AssetCheckSpec(
        "lyric_embeddings_cover_kept_tracks",
        asset=LYRIC_EMBEDDINGS,
        blocking=True,
        description="Every kept track has a vector of the current model for its current lyrics.",
    ),
    dg.AssetCheckSpec(
        "lyric_embeddings_are_unit_vectors_of_the_model_dimension",
        asset=LYRIC_EMBEDDINGS,
        blocking=True,
        description="Track and chunk vectors have the model's dimension, unit norm and no NaN.",
    ),
    dg.AssetCheckSpec(
        "lyric_embeddings_hnsw_index_present",
        asset=LYRIC_EMBEDDINGS,
        description="The model's HNSW indexes exist on lyric_chunks and track_embeddings "
        "(a warning while a large backlog is written without the chunk index).",
    ),
]


def run_embedding_checks(
    conn: psycopg.Connection, artist_slug: str, model: EmbeddingModel
) -> list[dg.AssetCheckResult]:
    missing = conn.execute(
        """SELECT count(*) FROM tracks t
           LEFT JOIN track_embeddings e ON e.track_id = t.id AND e.model_id = %s
           WHERE t.artist_slug = %s AND t.status = 'kept'
             AND (e.track_id IS NULL OR e.lyrics_hash <> t.lyrics_hash)""",
        (model.model_id, artist_slug),
    ).fetchone()[0]
    bad = {}
    for table in ("track_embeddings", "lyric_chunks"):
        # NaN cannot be stored (pgvector rejects it); a NaN norm would still show here
        bad[table] = conn.execute(
            f"""SELECT count(*) FROM {table}
                WHERE artist_slug = %s AND model_id = %s
                  AND (vector_dims(embedding) <> %s OR dimension <> %s
                       OR NOT abs(vector_norm(embedding) - 1) <= %s)""",
            (artist_slug, model.model_id, model.dimension, model.dimension, NORM_TOLERANCE),
        ).fetchone()[0]
    return [
        dg.AssetCheckResult(
            check_name="lyric_embeddings_cover_kept_tracks",
            asset_key=LYRIC_EMBEDDINGS,
            passed=missing == 0,
            metadata={"kept_tracks_without_current_vector": missing},
        ),
        dg.AssetCheckResult(
            check_name="lyric_embeddings_are_unit_vectors_of_the_model_dimension",
            asset_key=LYRIC_EMBEDDINGS,
            passed=not any(bad.values()),
            metadata={f"bad_{table}": n for table, n in bad.items()},
        ),
    ]


def check_indexes(
    conn: psycopg.Connection, model: EmbeddingModel, chunk_index: ChunkIndex, bulk_min_tracks: int
) -> dg.AssetCheckResult:
    """Once per run, after the run's vectors are written and its backlog settled."""
    wanted = [index_name(t, model.model_id) for t in ("lyric_chunks", "track_embeddings")]
    present = {
        row[0]
        for row in conn.execute(
            "SELECT indexname FROM pg_indexes WHERE indexname = ANY(%s)", (wanted,)
        )
    }
    metadata = {"missing_indexes": sorted(set(wanted) - present)}
    if not chunk_index.present:
        metadata["bulk_load"] = (
            f"{chunk_index.waiting} tracks wait for vectors ({chunk_index.stored} have them): "
            f"the chunk index is built once fewer than {bulk_min_tracks} wait; search scans "
            "exactly until then"
        )
    return dg.AssetCheckResult(
        check_name="lyric_embeddings_hnsw_index_present",
        asset_key=LYRIC_EMBEDDINGS,
        passed=len(present) == len(wanted),
        # a bulk load leaves the chunk index out on purpose, for a while
        severity=dg.AssetCheckSeverity.WARN
        if not chunk_index.present
        else dg.AssetCheckSeverity.ERROR,
        metadata=metadata,
    )
