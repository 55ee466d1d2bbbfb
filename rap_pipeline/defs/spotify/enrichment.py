"""Enriching an artist's tracks: search each, accept a match or record why not.

Statuses, one per track and attempt:
- ``matched``: an accepted search hit (see ``matching.py``); stale after ``stale_after_days``.
- ``not_found``: no hit reached the minimum score; the best candidate is kept. Picked again
  after 1, 7, then every 30 days (``NOT_FOUND_BACKOFF_DAYS``), not every run.
- ``error``: the call failed after retries (outage, open breaker); picked again next run, or
  after the server's Retry-After.
- ``unavailable``: the app may not call search (403/404); picked again next run.
Two tracks matched to the same Spotify id: the better-scored keeps it, the other is not_found.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rap_pipeline.core.api_guard import CircuitOpenError
from rap_pipeline.defs.spotify.client import (
    EndpointUnavailable,
    SpotifyCallError,
    SpotifyClient,
)
from rap_pipeline.defs.spotify.matching import Candidate, best_match, search_query

PAYLOAD_VERSION = 1  # bump when the stored fields change: every track is enriched again
NOT_FOUND_BACKOFF_DAYS = (1, 7, 30)


@dataclass(frozen=True)
class PendingTrack:
    track_id: int
    title: str
    previous_attempts: int  # consecutive unmatched attempts so far


@dataclass
class Outcome:
    track_id: int
    query_title: str
    status: str
    attempts: int
    retry_after: dt.datetime | None = None
    error: str | None = None
    best: Candidate | None = None
    item: dict[str, Any] | None = None


@dataclass
class EnrichmentRun:
    outcomes: list[Outcome] = field(default_factory=list)
    artists: list[dict[str, Any]] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)  # feature → why


def not_found_retry_at(attempts: int, now: dt.datetime) -> dt.datetime:
    days = NOT_FOUND_BACKOFF_DAYS[min(attempts, len(NOT_FOUND_BACKOFF_DAYS)) - 1]
    return now + dt.timedelta(days=days)


def _search(
    client: SpotifyClient, artist_name: str, track: PendingTrack, now: dt.datetime
) -> Outcome:
    attempts = track.previous_attempts + 1
    try:
        items = client.search_tracks(search_query(track.title, artist_name))
    except (SpotifyCallError, CircuitOpenError) as exc:
        retry_s = exc.retry_after if isinstance(exc, SpotifyCallError) else None
        return Outcome(
            track.track_id,
            track.title,
            "error",
            attempts,
            retry_after=now + dt.timedelta(seconds=retry_s) if retry_s else None,
            error=str(exc),
        )
    match = best_match(track.title, artist_name, items)
    if match.item is None:
        return Outcome(
            track.track_id,
            track.title,
            "not_found",
            attempts,
            retry_after=not_found_retry_at(attempts, now),
            best=match.best,
        )
    return Outcome(track.track_id, track.title, "matched", 1, best=match.best, item=match.item)


def _resolve_duplicates(outcomes: list[Outcome], held_ids: set[str], now: dt.datetime) -> None:
    """One Spotify track belongs to at most one of the artist's tracks: one that already holds
    it, else the best-scored of this run."""
    by_id: dict[str, Outcome] = {}
    for outcome in outcomes:
        if outcome.status != "matched" or outcome.item["id"] in held_ids:
            continue
        spotify_id = outcome.item["id"]
        holder = by_id.get(spotify_id)
        if holder is None or outcome.best.score > holder.best.score:
            by_id[spotify_id] = outcome
    for outcome in outcomes:
        if outcome.status == "matched" and by_id.get(outcome.item["id"]) is not outcome:
            outcome.status, outcome.item = "not_found", None
            outcome.retry_after = not_found_retry_at(outcome.attempts, now)
            outcome.error = "its best hit belongs to another track of the artist"


def enrich_tracks(
    client: SpotifyClient,
    artist_name: str,
    tracks: list[PendingTrack],
    known_matches: set[str] | None = None,
    progress: Callable[[int], None] | None = None,
    now: dt.datetime | None = None,
) -> EnrichmentRun:
    """Searches every track (``known_matches``: Spotify ids the artist's other stored tracks
    hold) and looks up the matched tracks' artists."""
    now = now or dt.datetime.now(dt.UTC)
    run = EnrichmentRun()
    for done, track in enumerate(tracks, start=1):
        if "search" in run.unavailable:
            run.outcomes.append(
                Outcome(
                    track.track_id,
                    track.title,
                    "unavailable",
                    track.previous_attempts + 1,
                    error=run.unavailable["search"],
                )
            )
            continue
        try:
            run.outcomes.append(_search(client, artist_name, track, now))
        except EndpointUnavailable as exc:
            run.unavailable["search"] = str(exc)
            run.outcomes.append(
                Outcome(
                    track.track_id,
                    track.title,
                    "unavailable",
                    track.previous_attempts + 1,
                    error=str(exc),
                )
            )
        if progress:
            progress(done)
    _resolve_duplicates(run.outcomes, known_matches or set(), now)
    run.artists = _lookup_artists(client, run)
    return run


def _lookup_artists(client: SpotifyClient, run: EnrichmentRun) -> list[dict[str, Any]]:
    artist_ids = sorted(
        {
            artist["id"]
            for outcome in run.outcomes
            if outcome.status == "matched"
            for artist in outcome.item.get("artists") or []
            if artist.get("id")
        }
    )
    artists = []
    for artist_id in artist_ids:
        try:
            artist = client.artist(artist_id)
        except EndpointUnavailable as exc:
            run.unavailable["artists"] = str(exc)
            break
        except (SpotifyCallError, CircuitOpenError) as exc:
            run.unavailable["artists"] = f"lookups failed this run: {exc}"
            break
        if artist:
            artists.append(artist)
    return artists
