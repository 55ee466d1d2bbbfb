"""Reading the tracks to enrich and writing enrichment outcomes (tables ``spotify_tracks``,
``spotify_artists``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from rap_pipeline.defs.spotify.enrichment import PAYLOAD_VERSION, Outcome, PendingTrack


def pending_tracks(
    conn: psycopg.Connection, artist_slug: str, stale_after_days: int, force: bool = False
) -> list[PendingTrack]:
    """Kept tracks never enriched, renamed since, enriched with an older payload version,
    matched longer ago than ``stale_after_days``, or unmatched with their retry time come."""
    rows = conn.execute(
        """SELECT t.id, t.title,
                  CASE WHEN s.status IN ('not_found', 'error', 'unavailable')
                       THEN s.attempts ELSE 0 END
           FROM tracks t LEFT JOIN spotify_tracks s ON s.track_id = t.id
           WHERE t.artist_slug = %(slug)s AND t.status = 'kept' AND (
                 %(force)s OR s.track_id IS NULL
                 OR s.payload_version <> %(version)s OR s.query_title <> t.title
                 OR (s.status = 'matched'
                     AND s.enriched_at < now() - make_interval(days => %(stale)s))
                 OR (s.status <> 'matched' AND coalesce(s.retry_after, now()) <= now()))
           ORDER BY t.id""",
        {
            "slug": artist_slug,
            "force": force,
            "version": PAYLOAD_VERSION,
            "stale": stale_after_days,
        },
    ).fetchall()
    return [PendingTrack(*row) for row in rows]


def held_spotify_ids(conn: psycopg.Connection, artist_slug: str, pending: list[PendingTrack]):
    """Spotify ids matched to the artist's tracks that are not being enriched now."""
    rows = conn.execute(
        """SELECT spotify_track_id FROM spotify_tracks
           WHERE artist_slug = %s AND status = 'matched' AND NOT (track_id = ANY(%s))""",
        (artist_slug, [track.track_id for track in pending]),
    ).fetchall()
    return {row[0] for row in rows}


def _date_precision(item: dict[str, Any]) -> tuple[str | None, str | None]:
    album = item.get("album") or {}
    return album.get("release_date"), album.get("release_date_precision")


def _row(artist_slug: str, source: str, outcome: Outcome, now: dt.datetime) -> dict[str, Any]:
    item = outcome.item or {}
    album = item.get("album") or {}
    release_date, precision = _date_precision(item)
    matched = outcome.status == "matched"
    return {
        "track_id": outcome.track_id,
        "artist_slug": artist_slug,
        "status": outcome.status,
        "source": source,
        "payload_version": PAYLOAD_VERSION,
        "attempts": outcome.attempts,
        "enriched_at": now if matched else None,
        "retry_after": outcome.retry_after,
        "query_title": outcome.query_title,
        "match_score": round(outcome.best.score, 1) if outcome.best else None,
        "best_candidate": Jsonb(outcome.best.as_dict()) if outcome.best and not matched else None,
        "error": outcome.error,
        "spotify_track_id": item.get("id"),
        "spotify_title": item.get("name"),
        "album": album.get("name"),
        "album_id": album.get("id"),
        "release_date": release_date,
        "release_date_precision": precision,
        "popularity": item.get("popularity"),
        "explicit": item.get("explicit"),
        "duration_ms": item.get("duration_ms"),
        "isrc": (item.get("external_ids") or {}).get("isrc"),
        "spotify_artist_ids": [a["id"] for a in item.get("artists") or [] if a.get("id")] or None,
    }


_COLUMNS = (
    "track_id", "artist_slug", "status", "source", "payload_version", "attempts", "enriched_at",
    "retry_after", "query_title", "match_score", "best_candidate", "error", "spotify_track_id",
    "spotify_title", "album", "album_id", "release_date", "release_date_precision", "popularity",
    "explicit", "duration_ms", "isrc", "spotify_artist_ids",
)  # fmt: skip
_UPSERT = f"""
INSERT INTO spotify_tracks ({", ".join(_COLUMNS)}, checked_at)
VALUES ({", ".join(f"%({c})s" for c in _COLUMNS)}, now())
ON CONFLICT (track_id) DO UPDATE SET
    {", ".join(f"{c} = EXCLUDED.{c}" for c in _COLUMNS if c != "track_id")},
    checked_at = now()
"""

_UPSERT_ARTIST = """
INSERT INTO spotify_artists (spotify_artist_id, name, genres, popularity, followers, fetched_at)
VALUES (%s, %s, %s, %s, %s, now())
ON CONFLICT (spotify_artist_id) DO UPDATE SET
    name = EXCLUDED.name, genres = EXCLUDED.genres, popularity = EXCLUDED.popularity,
    followers = EXCLUDED.followers, fetched_at = now()
"""


def write_enrichment(
    conn: psycopg.Connection,
    artist_slug: str,
    source: str,
    outcomes: list[Outcome],
    artists: list[dict[str, Any]],
) -> None:
    """Stores the run's outcomes and artists in one transaction.

    An error or unavailability never overwrites a stored match: the match stays, with its
    enriched_at, and only a later successful attempt replaces it."""
    now = dt.datetime.now(dt.UTC)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('spotify:' || %s))", (artist_slug,))
        matched_before = {
            row[0]
            for row in conn.execute(
                "SELECT track_id FROM spotify_tracks WHERE artist_slug = %s AND status = 'matched'",
                (artist_slug,),
            )
        }
        rows = [
            _row(artist_slug, source, outcome, now)
            for outcome in outcomes
            if not (
                outcome.status in ("error", "unavailable") and outcome.track_id in matched_before
            )
        ]
        with conn.cursor() as cur:
            if rows:
                cur.executemany(_UPSERT, rows)
            if artists:
                cur.executemany(
                    _UPSERT_ARTIST,
                    [
                        (
                            a["id"],
                            a.get("name") or "",
                            list(a.get("genres") or []),
                            a.get("popularity"),
                            (a.get("followers") or {}).get("total"),
                        )
                        for a in artists
                    ],
                )


def status_counts(conn: psycopg.Connection, artist_slug: str) -> dict[str, int]:
    counts = dict(
        conn.execute(
            """SELECT s.status, count(*) FROM spotify_tracks s JOIN tracks t ON t.id = s.track_id
               WHERE s.artist_slug = %s AND t.status = 'kept' GROUP BY s.status""",
            (artist_slug,),
        ).fetchall()
    )
    return {
        status: counts.get(status, 0) for status in ("matched", "not_found", "error", "unavailable")
    }


def match_counts(conn: psycopg.Connection, slugs: list[str]) -> dict[str, tuple[int, int]]:
    """Per artist: (kept tracks matched on Spotify, kept tracks searched: matched or not
    found)."""
    rows = conn.execute(
        """SELECT t.artist_slug,
                  count(*) FILTER (WHERE s.status = 'matched'),
                  count(*) FILTER (WHERE s.status IN ('matched', 'not_found'))
           FROM tracks t JOIN spotify_tracks s ON s.track_id = t.id
           WHERE t.status = 'kept' AND t.artist_slug = ANY(%s) GROUP BY t.artist_slug""",
        (slugs,),
    ).fetchall()
    return {slug: (matched, searched) for slug, matched, searched in rows}
