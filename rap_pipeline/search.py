"""Semantic search over the lyric embeddings: the Python API behind ``rap-pipeline search``.

    from rap_pipeline.search import search, similar
    for hit in search("songs about losing a brother", limit=5):
        print(hit.score, hit.artist, hit.title, hit.matched_lines)

Vector search finds the nearest lyric chunks (HNSW, cosine) and ranks tracks by their best
chunk, so every hit says which lines matched. Filters (artist, years) sit in the same query;
pgvector's iterative index scan keeps scanning until enough rows pass them. ``hybrid=True``
fuses that ranking with PostgreSQL full-text search by reciprocal rank fusion.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import numpy as np
import psycopg
from psycopg import sql

from rap_pipeline.core.database import connect
from rap_pipeline.core.services import resolve_urls
from rap_pipeline.core.settings import get_settings
from rap_pipeline.defs.embeddings.model import (
    DEFAULT_MODEL,
    HNSW_EF_SEARCH,
    EmbeddingModel,
    load_model,
)
from rap_pipeline.defs.embeddings.store import hnsw_search, use_vectors

# nearest chunks fetched per wanted track, at first (vector_search fetches more if needed)
CHUNKS_PER_TRACK = 4
RRF_K = 60


@dataclass(frozen=True)
class SearchHit:
    track_id: int
    artist: str
    artist_slug: str
    title: str
    year: int | None
    score: float
    matched_lines: str
    first_line: int | None

    def as_dict(self) -> dict:
        return asdict(self)


@functools.lru_cache(maxsize=256)
def _query_vector(model_id: str, text: str) -> np.ndarray:
    return load_model(model_id).encode([text])[0]


def _filters(
    alias: str, artist: str | None, year_from: int | None, year_to: int | None
) -> tuple[list[sql.Composable], dict]:
    """WHERE clauses (on a table with artist_slug and release_year) and their parameters."""
    column = functools.partial(sql.Identifier, alias)
    clauses: list[sql.Composable] = []
    params: dict = {}
    if artist:
        clauses.append(sql.SQL("{} = %(artist)s").format(column("artist_slug")))
        params["artist"] = artist
    if year_from is not None:
        clauses.append(sql.SQL("{} >= %(year_from)s").format(column("release_year")))
        params["year_from"] = year_from
    if year_to is not None:
        clauses.append(sql.SQL("{} <= %(year_to)s").format(column("release_year")))
        params["year_to"] = year_to
    return clauses, params


def vector_search(
    conn: psycopg.Connection,
    model: EmbeddingModel,
    query_vector: np.ndarray,
    *,
    artist: str | None = None,
    year_from: int | None = None,
    year_to: int | None = None,
    limit: int = 10,
    ef_search: int = HNSW_EF_SEARCH,
    exact: bool = False,
    chunks_per_track: int = CHUNKS_PER_TRACK,
) -> list[SearchHit]:
    """Tracks ranked by their best-matching chunk. ``exact`` scans every chunk (no index):
    the reference the benchmark measures the index's recall against."""
    use_vectors(conn)
    clauses, params = _filters("c", artist, year_from, year_to)
    # the model as a literal: the model's partial HNSW index is only usable with its predicate
    model_filter = sql.SQL("c.model_id = {}").format(sql.Literal(model.model_id))
    where = sql.SQL(" AND ").join([model_filter, *clauses])
    query = sql.SQL(
        """WITH nearest AS MATERIALIZED (
               SELECT c.track_id, c.content, c.first_line,
                      c.embedding{v} <=> %(query)s{v} AS distance
               FROM lyric_chunks c
               WHERE {where}
               ORDER BY c.embedding{v} <=> %(query)s{v}
               LIMIT %(chunks)s),
           best AS (
               SELECT DISTINCT ON (track_id) track_id, content, first_line, distance
               FROM nearest ORDER BY track_id, distance),
           top AS (SELECT * FROM best ORDER BY distance, track_id LIMIT %(limit)s)
           SELECT b.track_id, a.display_name, t.artist_slug, t.title, t.release_year,
                  1 - b.distance, b.content, b.first_line, (SELECT count(*) FROM nearest)
           FROM top b JOIN tracks t ON t.id = b.track_id
           JOIN artists a ON a.slug = t.artist_slug
           ORDER BY b.distance, b.track_id"""
    ).format(v=model.vector_cast, where=where)
    chunks = limit * chunks_per_track
    while True:
        values = {**params, "query": query_vector, "chunks": chunks, "limit": limit}
        if exact:
            with conn.transaction():
                conn.execute("SET LOCAL enable_indexscan = off")
                rows = conn.execute(query, values).fetchall()
        else:
            with hnsw_search(conn, ef_search, iterative=True):
                rows = conn.execute(query, values).fetchall()
        # a few tracks can fill the nearest chunks: fetch more until `limit` tracks or no more
        if len(rows) >= limit or not rows or rows[0][-1] < chunks:
            return [SearchHit(*row[:-1]) for row in rows]
        chunks *= 4


def text_search(
    conn: psycopg.Connection,
    query: str,
    *,
    artist: str | None = None,
    year_from: int | None = None,
    year_to: int | None = None,
    limit: int = 10,
) -> list[tuple[int, float]]:
    """(track id, rank) by PostgreSQL full-text search over title and cleaned lyrics."""
    clauses, params = _filters("t", artist, year_from, year_to)
    clauses = [sql.SQL("t.status = 'kept'"), sql.SQL("t.lyrics_tsv @@ q"), *clauses]
    params.update(text=query, limit=limit)
    return conn.execute(
        sql.SQL(
            """SELECT t.id, ts_rank_cd(t.lyrics_tsv, q) AS rank
               FROM tracks t, websearch_to_tsquery('english', %(text)s) q
               WHERE {where} ORDER BY rank DESC, t.id LIMIT %(limit)s"""
        ).format(where=sql.SQL(" AND ").join(clauses)),
        params,
    ).fetchall()


def fuse(
    vector_hits: list[SearchHit], text_ranked: list[tuple[int, float]], limit: int
) -> list[tuple[int, float]]:
    """Reciprocal rank fusion: score = sum over rankings of 1 / (60 + rank)."""
    scores: dict[int, float] = {}
    for rank, hit in enumerate(vector_hits, start=1):
        scores[hit.track_id] = scores.get(hit.track_id, 0.0) + 1 / (RRF_K + rank)
    for rank, (track_id, _) in enumerate(text_ranked, start=1):
        scores[track_id] = scores.get(track_id, 0.0) + 1 / (RRF_K + rank)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:limit]


def _database_url(database_url: str | None) -> str:
    return database_url or resolve_urls(get_settings()).database_url


def search(
    query: str,
    *,
    artist: str | None = None,
    year_from: int | None = None,
    year_to: int | None = None,
    limit: int = 10,
    hybrid: bool = False,
    model_id: str = DEFAULT_MODEL,
    database_url: str | None = None,
) -> list[SearchHit]:
    """Tracks whose lyrics mean what ``query`` says, best first."""
    if not query.strip():
        raise ValueError("the search text is empty")
    if limit < 1:
        raise ValueError("limit must be at least 1")
    model = load_model(model_id)
    query_vector = _query_vector(model_id, query)
    filters = {"artist": artist, "year_from": year_from, "year_to": year_to}
    with connect(_database_url(database_url)) as conn:
        pool = limit * 3 if hybrid else limit
        hits = vector_search(conn, model, query_vector, limit=pool, **filters)
        if not hybrid:
            return hits
        fused = fuse(hits, text_search(conn, query, limit=pool, **filters), limit)
        by_id = {hit.track_id: hit for hit in hits}
        missing = [track_id for track_id, _ in fused if track_id not in by_id]
        by_id.update({hit.track_id: hit for hit in _text_only_hits(conn, missing)})
    return [
        SearchHit(**{**by_id[track_id].as_dict(), "score": round(score, 6)})
        for track_id, score in fused
    ]


def _text_only_hits(conn: psycopg.Connection, track_ids: list[int]) -> list[SearchHit]:
    rows = conn.execute(
        """SELECT t.id, a.display_name, t.artist_slug, t.title, t.release_year, 0.0,
                  split_part(t.lyrics_clean, E'\\n\\n', 1), 0
           FROM tracks t JOIN artists a ON a.slug = t.artist_slug WHERE t.id = ANY(%s)""",
        (track_ids,),
    ).fetchall()
    return [SearchHit(*row) for row in rows]


def find_track(conn: psycopg.Connection, track: str) -> int:
    """A track id from an id, or "artist-slug/title" / a title (case-insensitive)."""
    if track.isdigit():
        return int(track)
    artist, _, title = track.rpartition("/")
    rows = conn.execute(
        """SELECT id, artist_slug, title FROM tracks
           WHERE status = 'kept' AND lower(title) = lower(%s)
             AND (%s = '' OR artist_slug = %s)""",
        (title, artist, artist),
    ).fetchall()
    if len(rows) != 1:
        found = ", ".join(f"{slug}/{name}" for _, slug, name in rows) or "none"
        raise LookupError(
            f"{track!r} matches {len(rows)} tracks ({found}); use artist/title or an id"
        )
    return rows[0][0]


def similar(
    track: str,
    *,
    limit: int = 10,
    model_id: str = DEFAULT_MODEL,
    database_url: str | None = None,
) -> list[SearchHit]:
    """Tracks closest to a given track (by track vector), from any artist."""
    model = load_model(model_id)
    with connect(_database_url(database_url)) as conn:
        use_vectors(conn)
        track_id = find_track(conn, track)
        row = conn.execute(
            "SELECT embedding FROM track_embeddings WHERE track_id = %s AND model_id = %s",
            (track_id, model_id),
        ).fetchone()
        if row is None:
            raise LookupError(
                f"track {track_id} has no {model_id} vector yet: run lyric_embeddings"
            )
        vector = model.vector_cast
        with hnsw_search(conn):
            rows = conn.execute(
                sql.SQL(
                    """SELECT e.track_id, a.display_name, t.artist_slug, t.title, t.release_year,
                              1 - (e.embedding{v} <=> %(q)s{v}),
                              split_part(t.lyrics_clean, E'\\n\\n', 1), 0
                       FROM track_embeddings e JOIN tracks t ON t.id = e.track_id
                       JOIN artists a ON a.slug = t.artist_slug
                       WHERE e.model_id = {model} AND e.track_id <> %(id)s
                       ORDER BY e.embedding{v} <=> %(q)s{v} LIMIT %(limit)s"""
                ).format(v=vector, model=sql.Literal(model_id)),
                {"q": row[0], "id": track_id, "limit": limit},
            ).fetchall()
    return [SearchHit(*r) for r in rows]
