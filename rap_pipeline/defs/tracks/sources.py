"""What a track source hands to the tracks asset: raw tracks and per-track fetch failures."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from rap_pipeline.defs.artists.registry import ArtistSpec


@dataclass(frozen=True)
class RawTrack:
    source: str
    source_id: str
    title: str
    lyrics: str | None
    album: str | None = None
    release_date: dt.date | None = None
    release_year: int | None = None
    url: str | None = None
    instrumental: bool = False


@dataclass(frozen=True)
class FetchFailure:
    """A track the source lists but whose lyrics could not be fetched (after retries).
    Recorded as ``fetch_failed``; never stored as an empty or rejected song."""

    source: str
    source_id: str
    title: str
    reason: str
    url: str | None = None


@dataclass
class FetchResult:
    tracks: list[RawTrack] = field(default_factory=list)
    failures: list[FetchFailure] = field(default_factory=list)
    # records the source could not read at all (e.g. malformed corpus lines), with where
    invalid_records: list[str] = field(default_factory=list)


class TrackSourceError(RuntimeError):
    """The source as a whole failed (e.g. the artist listing); the partition fails and retries."""


class SourceConfigError(TrackSourceError):
    """The source cannot work as configured (missing path or token, unknown artist, a 4xx):
    retrying will not help, so the partition fails at once with this message."""


def parse_release_date(value: object) -> tuple[dt.date | None, int | None]:
    """ "2019-05-03" → (date, 2019); "2019" or "2019-05" → (None, 2019); else (None, None)."""
    if value is None or value == "":
        return None, None
    text = str(value).strip()
    try:
        date = dt.date.fromisoformat(text[:10])
        return date, date.year
    except ValueError:
        match = re.match(r"^(\d{4})(?:-\d{2})?$", text)
        if match and 1900 <= int(match.group(1)) <= 2100:
            return None, int(match.group(1))
        return None, None


class TrackSource:
    name: str

    def fetch(self, artist: ArtistSpec) -> FetchResult:  # pragma: no cover - interface
        raise NotImplementedError
