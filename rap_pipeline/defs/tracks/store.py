"""Turning fetched tracks into rows and writing one artist partition in one transaction."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, replace

import psycopg
from psycopg.types.json import Jsonb

from rap_pipeline.defs.tracks.cleaning import classify, clean_lyrics, lyrics_hash
from rap_pipeline.defs.tracks.sources import FetchFailure, FetchResult, RawTrack

_COLUMNS = (
    "artist_slug",
    "source",
    "source_id",
    "title",
    "album",
    "release_date",
    "release_year",
    "url",
    "lyrics_raw",
    "lyrics_clean",
    "structure",
    "lyrics_hash",
    "word_count",
    "line_count",
    "status",
    "status_reason",
)
_CONTENT_COLUMNS = _COLUMNS[3:]


@dataclass(frozen=True)
class TrackRow:
    artist_slug: str
    source: str
    source_id: str
    title: str
    album: str | None
    release_date: dt.date | None
    release_year: int | None
    url: str | None
    lyrics_raw: str | None
    lyrics_clean: str | None
    structure: list[dict] | None
    lyrics_hash: str | None
    word_count: int | None
    line_count: int | None
    status: str
    status_reason: str | None

    def values(self) -> tuple:
        return tuple(
            Jsonb(value) if name == "structure" and value is not None else value
            for name, value in ((c, getattr(self, c)) for c in _COLUMNS)
        )


def _release_key(track: RawTrack) -> tuple:
    # earliest release first, so the original is kept and a later re-release is the duplicate
    return (track.release_date or dt.date(track.release_year or 9999, 12, 31), track.source_id)


def prepare_rows(artist_slug: str, fetched: FetchResult) -> list[TrackRow]:
    """Cleans and classifies every fetched track; one bad track never stops the others."""
    rows: list[TrackRow] = []
    kept_hashes: dict[str, str] = {}
    for track in sorted(fetched.tracks, key=_release_key):
        cleaned = clean_lyrics(track.lyrics or "", track.title)
        reason = classify(track.title, cleaned, track.instrumental)
        digest = lyrics_hash(cleaned.text) if cleaned.text else None
        if reason is None and digest is not None:
            if digest in kept_hashes:
                reason = "duplicate_lyrics"
            else:
                kept_hashes[digest] = track.source_id
        rows.append(
            TrackRow(
                artist_slug=artist_slug,
                source=track.source,
                source_id=track.source_id,
                title=track.title,
                album=track.album,
                release_date=track.release_date,
                release_year=track.release_year,
                url=track.url,
                lyrics_raw=track.lyrics,
                lyrics_clean=cleaned.text,
                structure=[section.as_dict() for section in cleaned.sections],
                lyrics_hash=digest,
                word_count=cleaned.word_count,
                line_count=cleaned.line_count,
                status="kept" if reason is None else "rejected",
                status_reason=reason,
            )
        )
    return rows


def failure_row(artist_slug: str, failure: FetchFailure) -> TrackRow:
    return TrackRow(
        artist_slug,
        failure.source,
        failure.source_id,
        failure.title,
        None,
        None,
        None,
        failure.url,
        None,
        None,
        None,
        None,
        None,
        None,
        "fetch_failed",
        failure.reason,
    )


@dataclass(frozen=True)
class WriteSummary:
    inserted: int
    updated: int
    unchanged: int
    deleted: int
    failures_kept_previous: int


_UPSERT = f"""
INSERT INTO tracks ({", ".join(_COLUMNS)}) VALUES ({", ".join(["%s"] * len(_COLUMNS))})
ON CONFLICT (source, source_id) DO UPDATE SET
    {", ".join(f"{c} = EXCLUDED.{c}" for c in ("artist_slug", *_CONTENT_COLUMNS))},
    updated_at = now()
WHERE ({", ".join(f"tracks.{c}" for c in ("artist_slug", *_CONTENT_COLUMNS))})
    IS DISTINCT FROM ({", ".join(f"EXCLUDED.{c}" for c in ("artist_slug", *_CONTENT_COLUMNS))})
RETURNING (xmax = 0) AS inserted
"""


def write_partition(
    conn: psycopg.Connection,
    artist_slug: str,
    source: str,
    rows: list[TrackRow],
    failures: list[FetchFailure],
) -> WriteSummary:
    """Makes the stored tracks of (artist, source) equal to ``rows``, in one transaction.

    Rows whose content did not change are not touched (``updated_at`` stays). A failed fetch
    never replaces stored lyrics: a track fetched before keeps its row, a new one is recorded
    as ``fetch_failed`` so the next run fetches it again. Tracks the source no longer lists are
    deleted. Killing the process at any point leaves the previous state.
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('tracks:' || %s))", (artist_slug,))
        stored = conn.execute(
            "SELECT source, source_id, status, kept_lyrics_hash FROM tracks WHERE artist_slug = %s",
            (artist_slug,),
        ).fetchall()
        existing = {sid: status for src, sid, status, _ in stored if src == source}
        failed_ids = {f.source_id for f in failures}
        keep_previous = {i for i in failed_ids if existing.get(i) not in (None, "fetch_failed")}
        # lyrics already kept by rows this write leaves in place (another source's, or a track
        # whose fetch failed now): a listed copy of them is a duplicate, not a second keeper
        reserved = {
            digest
            for src, sid, _, digest in stored
            if digest and (src != source or sid in keep_previous)
        }
        rows = [
            replace(row, status="rejected", status_reason="duplicate_lyrics")
            if row.status == "kept" and row.lyrics_hash in reserved
            else row
            for row in rows
        ]
        to_write = rows + [
            failure_row(artist_slug, f) for f in failures if f.source_id not in keep_previous
        ]
        inserted = updated = 0
        with conn.cursor() as cur:
            if to_write:
                cur.executemany(_UPSERT, [row.values() for row in to_write], returning=True)
                while True:
                    # one result per row: (inserted,), or nothing when the row was unchanged
                    result = cur.fetchone()
                    if result is not None:
                        inserted += bool(result[0])
                        updated += not result[0]
                    if not cur.nextset():
                        break
        listed = {row.source_id for row in rows} | failed_ids
        gone = [source_id for source_id in existing if source_id not in listed]
        if gone:
            conn.execute(
                "DELETE FROM tracks WHERE source = %s AND source_id = ANY(%s)", (source, gone)
            )
    return WriteSummary(
        inserted=inserted,
        updated=updated,
        unchanged=len(to_write) - inserted - updated,
        deleted=len(gone),
        failures_kept_previous=len(keep_previous),
    )


def partition_counts(conn: psycopg.Connection, artist_slug: str) -> Counter[str]:
    """Stored tracks of an artist by status or rejection reason: kept, fetch_failed, <reason>."""
    counts: Counter[str] = Counter()
    for status, reason, n in conn.execute(
        "SELECT status, status_reason, count(*) FROM tracks WHERE artist_slug = %s "
        "GROUP BY status, status_reason",
        (artist_slug,),
    ):
        counts["kept" if status == "kept" else status if status == "fetch_failed" else reason] += n
    return counts


@dataclass(frozen=True)
class ArtistTrackCounts:
    slug: str
    display_name: str
    kept: int
    rejected: int
    fetch_failed: int


def artist_track_counts(conn: psycopg.Connection, slugs: list[str]) -> list[ArtistTrackCounts]:
    """Tracks per status of each of these artists (by slug), artists without tracks too."""
    rows = conn.execute(
        """SELECT a.slug, a.display_name,
                  count(t.id) FILTER (WHERE t.status = 'kept'),
                  count(t.id) FILTER (WHERE t.status = 'rejected'),
                  count(t.id) FILTER (WHERE t.status = 'fetch_failed')
           FROM artists a LEFT JOIN tracks t ON t.artist_slug = a.slug
           WHERE a.slug = ANY(%s) GROUP BY a.slug, a.display_name ORDER BY a.slug""",
        (slugs,),
    ).fetchall()
    return [ArtistTrackCounts(*row) for row in rows]


def rejection_reasons(conn: psycopg.Connection, slugs: list[str]) -> Counter[str]:
    """Rejected tracks of these artists by reason."""
    return Counter(
        dict(
            conn.execute(
                "SELECT status_reason, count(*) FROM tracks WHERE status = 'rejected' "
                "AND artist_slug = ANY(%s) GROUP BY status_reason",
                (slugs,),
            ).fetchall()
        )
    )
