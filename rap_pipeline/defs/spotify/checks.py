"""Data tests of the ``spotify_tracks`` asset, evaluated on the partition just written."""

from __future__ import annotations

import dagster as dg
import psycopg

SPOTIFY_TRACKS = dg.AssetKey("spotify_tracks")
# Share of the artist's searched tracks (matched or not_found) that must match before the
# check warns: below it, matching thresholds, titles or the catalog deserve a look.
MIN_MATCH_RATE = 0.6

SPOTIFY_CHECK_SPECS = [
    dg.AssetCheckSpec(
        "spotify_match_rate_above_threshold",
        asset=SPOTIFY_TRACKS,
        description=f"At least {MIN_MATCH_RATE:.0%} of the artist's searched tracks matched "
        "(warns).",
    ),
    dg.AssetCheckSpec(
        "spotify_ids_map_to_one_track",
        asset=SPOTIFY_TRACKS,
        description="No Spotify track id is mapped to two different tracks of the artist.",
    ),
    dg.AssetCheckSpec(
        "spotify_matches_have_enriched_at",
        asset=SPOTIFY_TRACKS,
        description="Every matched track has enriched_at and a Spotify id.",
    ),
]


def check_match_rate(conn: psycopg.Connection, artist_slug: str) -> dg.AssetCheckResult:
    matched, searched = conn.execute(
        """SELECT count(*) FILTER (WHERE status = 'matched'),
                  count(*) FILTER (WHERE status IN ('matched', 'not_found'))
           FROM spotify_tracks WHERE artist_slug = %s""",
        (artist_slug,),
    ).fetchone()
    rate = matched / searched if searched else None
    return dg.AssetCheckResult(
        check_name="spotify_match_rate_above_threshold",
        asset_key=SPOTIFY_TRACKS,
        passed=rate is None or rate >= MIN_MATCH_RATE,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "match_rate": rate if rate is not None else "no track searched",
            "matched": matched,
            "searched": searched,
            "threshold": MIN_MATCH_RATE,
        },
    )


def check_ids_map_to_one_track(conn: psycopg.Connection, artist_slug: str) -> dg.AssetCheckResult:
    shared = conn.execute(
        """SELECT spotify_track_id, array_agg(track_id ORDER BY track_id)
           FROM spotify_tracks WHERE artist_slug = %s AND status = 'matched'
           GROUP BY spotify_track_id HAVING count(*) > 1""",
        (artist_slug,),
    ).fetchall()
    return dg.AssetCheckResult(
        check_name="spotify_ids_map_to_one_track",
        asset_key=SPOTIFY_TRACKS,
        passed=not shared,
        metadata={"shared_ids": {sid: ids for sid, ids in shared[:20]}},
    )


def check_matches_complete(conn: psycopg.Connection, artist_slug: str) -> dg.AssetCheckResult:
    incomplete = conn.execute(
        """SELECT count(*) FROM spotify_tracks WHERE artist_slug = %s AND status = 'matched'
           AND (enriched_at IS NULL OR spotify_track_id IS NULL)""",
        (artist_slug,),
    ).fetchone()[0]
    return dg.AssetCheckResult(
        check_name="spotify_matches_have_enriched_at",
        asset_key=SPOTIFY_TRACKS,
        passed=incomplete == 0,
        metadata={"incomplete_matches": incomplete},
    )


def run_spotify_checks(conn: psycopg.Connection, artist_slug: str) -> list[dg.AssetCheckResult]:
    return [
        check_match_rate(conn, artist_slug),
        check_ids_map_to_one_track(conn, artist_slug),
        check_matches_complete(conn, artist_slug),
    ]
