"""What the HTTP API reads: what the assets materialized, read-only, parameterized SQL only."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.rows import dict_row

# lyrics are copyrighted: a track page shows at most this much of them
EXCERPT_LINES = 4
EXCERPT_CHARS = 300


def excerpt(lyrics: str | None) -> str:
    """The first lines of the lyrics, within EXCERPT_LINES and EXCERPT_CHARS."""
    lines = [line for line in (lyrics or "").splitlines() if line.strip()][:EXCERPT_LINES]
    text = "\n".join(lines)
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1].rstrip() + "…"


def track(conn: psycopg.Connection, track_id: int) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            """SELECT t.id, t.title, t.artist_slug, a.display_name AS artist, t.album,
                      t.release_date, t.release_year, t.url, t.word_count, t.line_count,
                      t.lyrics_clean
               FROM tracks t JOIN artists a ON a.slug = t.artist_slug
               WHERE t.id = %s AND t.status = 'kept'""",
            (track_id,),
        ).fetchone()
        if row is None:
            return None
        row["lyrics_excerpt"] = excerpt(row.pop("lyrics_clean"))
        row["spotify"] = cur.execute(
            """SELECT status, spotify_track_id, spotify_title, album, release_date, popularity,
                      explicit, duration_ms, enriched_at, match_score
               FROM spotify_tracks WHERE track_id = %s""",
            (track_id,),
        ).fetchone()
        row["analyses"] = cur.execute(
            """SELECT a.analyzer, a.analyzer_version, a.method, a.result, a.analyzed_at
               FROM analyses a JOIN tracks t ON t.id = a.track_id AND a.input_hash = t.lyrics_hash
               WHERE a.track_id = %s AND a.status = 'ok'
               ORDER BY a.analyzer, a.analyzed_at DESC""",
            (track_id,),
        ).fetchall()
    return row


def artists(conn: psycopg.Connection, limit: int, offset: int) -> tuple[list[dict], int]:
    with conn.cursor(row_factory=dict_row) as cur:
        total = cur.execute("SELECT count(*) AS n FROM artists").fetchone()["n"]
        rows = cur.execute(
            """SELECT a.slug, a.display_name AS name,
                      count(t.id) FILTER (WHERE t.status = 'kept') AS tracks,
                      min(t.release_year) AS first_year, max(t.release_year) AS last_year
               FROM artists a LEFT JOIN tracks t ON t.artist_slug = a.slug
               GROUP BY a.slug ORDER BY a.display_name, a.slug LIMIT %s OFFSET %s""",
            (limit, offset),
        ).fetchall()
    return rows, total


def artist(conn: psycopg.Connection, slug: str) -> dict[str, Any] | None:
    """One artist with per-artist aggregates: tracks, years, Spotify matches, analysis means."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            """SELECT a.slug, a.display_name AS name,
                      count(t.id) FILTER (WHERE t.status = 'kept') AS tracks,
                      count(t.id) FILTER (WHERE t.status = 'rejected') AS rejected,
                      min(t.release_year) AS first_year, max(t.release_year) AS last_year
               FROM artists a LEFT JOIN tracks t ON t.artist_slug = a.slug
               WHERE a.slug = %s GROUP BY a.slug""",
            (slug,),
        ).fetchone()
        if row is None:
            return None
        row["spotify_matched"] = cur.execute(
            "SELECT count(*) AS n FROM spotify_tracks "
            "WHERE artist_slug = %s AND status = 'matched'",
            (slug,),
        ).fetchone()["n"]
        row["means"] = _means(cur, slug)
        row["tracks_list"] = cur.execute(
            """SELECT id, title, release_year FROM tracks
               WHERE artist_slug = %s AND status = 'kept'
               ORDER BY release_year NULLS LAST, title""",
            (slug,),
        ).fetchall()
    return row


def _means(cur, slug: str) -> dict[str, float]:
    rows = cur.execute(
        """SELECT a.analyzer || '.' || kv.key AS metric, avg((kv.value)::text::float8) AS value
           FROM analyses a JOIN tracks t ON t.id = a.track_id
                AND a.input_hash = t.lyrics_hash AND t.status = 'kept'
           CROSS JOIN LATERAL jsonb_each(a.result) kv
           WHERE a.artist_slug = %s AND a.status = 'ok' AND jsonb_typeof(kv.value) = 'number'
           GROUP BY 1 ORDER BY 1""",
        (slug,),
    ).fetchall()
    return {r["metric"]: round(r["value"], 4) for r in rows}
