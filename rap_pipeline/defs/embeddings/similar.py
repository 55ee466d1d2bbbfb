"""Precomputed nearest neighbours of every track of an artist (HNSW on track vectors)."""

from __future__ import annotations

import psycopg
from psycopg import sql

from rap_pipeline.defs.embeddings.model import EmbeddingModel
from rap_pipeline.defs.embeddings.store import set_hnsw_search

SIMILAR_PER_TRACK = 10


def write_similar_tracks(conn: psycopg.Connection, artist_slug: str, model: EmbeddingModel) -> int:
    """Replaces the artist's rows of ``similar_tracks`` in one transaction; returns the count."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('similar:' || %s))", (artist_slug,))
        set_hnsw_search(conn)
        conn.execute(
            """DELETE FROM similar_tracks s USING tracks t
               WHERE s.track_id = t.id AND t.artist_slug = %s AND s.model_id = %s""",
            (artist_slug, model.model_id),
        )
        return conn.execute(
            sql.SQL(
                """INSERT INTO similar_tracks (track_id, model_id, rank, neighbour_id, similarity)
                SELECT e.track_id, e.model_id,
                       row_number() OVER (PARTITION BY e.track_id ORDER BY n.distance),
                       n.track_id, 1 - n.distance
                FROM track_embeddings e
                CROSS JOIN LATERAL (
                    SELECT o.track_id, o.embedding{v} <=> e.embedding{v} AS distance
                    FROM track_embeddings o
                    WHERE o.model_id = {model} AND o.track_id <> e.track_id
                    ORDER BY o.embedding{v} <=> e.embedding{v}
                    LIMIT {k}) n
                WHERE e.artist_slug = %s AND e.model_id = %s"""
                # the model as a literal: the partial HNSW index is only usable with its predicate
            ).format(
                v=model.vector_cast,
                k=sql.Literal(SIMILAR_PER_TRACK),
                model=sql.Literal(model.model_id),
            ),
            (artist_slug, model.model_id),
        ).rowcount
