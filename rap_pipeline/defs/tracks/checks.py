"""Data tests of the ``tracks`` asset, evaluated on the partition just written."""

from __future__ import annotations

import dagster as dg
import psycopg

from rap_pipeline.defs.tracks.cleaning import RESIDUE_PATTERNS

TRACKS = dg.AssetKey("tracks")
# Share of an artist's tracks that may be rejected before the check warns.
MAX_REJECTED_SHARE = 0.35

TRACK_CHECK_SPECS = [
    dg.AssetCheckSpec(
        "tracks_have_no_duplicates",
        asset=TRACKS,
        blocking=True,
        description="No two kept tracks of the artist share normalized lyrics or a source id.",
    ),
    dg.AssetCheckSpec(
        "tracks_have_no_page_residue",
        asset=TRACKS,
        blocking=True,
        description="No Genius page residue (contributors, embeds, ads, section headers) is "
        "left in the cleaned lyrics of kept tracks.",
    ),
    dg.AssetCheckSpec(
        "tracks_rejected_share_below_threshold",
        asset=TRACKS,
        description=f"At most {MAX_REJECTED_SHARE:.0%} of the artist's tracks are rejected "
        "(warns: a higher share usually means a source or cleaning problem).",
    ),
]


def check_no_duplicates(conn: psycopg.Connection, artist_slug: str) -> dg.AssetCheckResult:
    duplicate_lyrics, duplicate_ids = conn.execute(
        """SELECT
             (SELECT count(*) FROM (SELECT lyrics_hash FROM tracks
                WHERE artist_slug = %(a)s AND status = 'kept'
                GROUP BY lyrics_hash HAVING count(*) > 1) d),
             (SELECT count(*) FROM (SELECT source, source_id FROM tracks
                WHERE artist_slug = %(a)s GROUP BY source, source_id HAVING count(*) > 1) i)""",
        {"a": artist_slug},
    ).fetchone()
    return dg.AssetCheckResult(
        check_name="tracks_have_no_duplicates",
        asset_key=TRACKS,
        passed=duplicate_lyrics == 0 and duplicate_ids == 0,
        metadata={"duplicate_lyrics": duplicate_lyrics, "duplicate_source_ids": duplicate_ids},
    )


def check_no_page_residue(conn: psycopg.Connection, artist_slug: str) -> dg.AssetCheckResult:
    found: dict[str, list[str]] = {}
    for title, lyrics in conn.execute(
        "SELECT title, lyrics_clean FROM tracks WHERE artist_slug = %s AND status = 'kept'",
        (artist_slug,),
    ):
        for name, pattern in RESIDUE_PATTERNS.items():
            if pattern.search(lyrics):
                found.setdefault(name, []).append(title)
    return dg.AssetCheckResult(
        check_name="tracks_have_no_page_residue",
        asset_key=TRACKS,
        passed=not found,
        metadata={"tracks_with_residue": {k: v[:10] for k, v in found.items()}},
    )


def check_rejected_share(conn: psycopg.Connection, artist_slug: str) -> dg.AssetCheckResult:
    total, rejected = conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE status = 'rejected') FROM tracks "
        "WHERE artist_slug = %s",
        (artist_slug,),
    ).fetchone()
    share = rejected / total if total else 0.0
    return dg.AssetCheckResult(
        check_name="tracks_rejected_share_below_threshold",
        asset_key=TRACKS,
        passed=share <= MAX_REJECTED_SHARE,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"rejected_share": share, "threshold": MAX_REJECTED_SHARE, "tracks": total},
    )


def run_track_checks(conn: psycopg.Connection, artist_slug: str) -> list[dg.AssetCheckResult]:
    return [
        check_no_duplicates(conn, artist_slug),
        check_no_page_residue(conn, artist_slug),
        check_rejected_share(conn, artist_slug),
    ]
