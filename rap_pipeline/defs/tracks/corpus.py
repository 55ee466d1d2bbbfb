"""Tracks from local corpus files: JSONL or CSV with artist, title, lyrics and optionally
album, release_date, source_id (or id). Lets users bring an existing dataset."""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

from rap_pipeline.defs.artists.registry import ArtistSpec
from rap_pipeline.defs.artists.slugs import slugify
from rap_pipeline.defs.tracks.sources import (
    FetchResult,
    RawTrack,
    SourceConfigError,
    TrackSource,
    parse_release_date,
)

SUFFIXES = (".jsonl", ".csv")


def corpus_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.suffix.lower() in SUFFIXES)
    raise SourceConfigError(f"corpus path {path} does not exist")


def _decode(raw: bytes) -> str:
    # undecodable bytes become U+FFFD, which cleaning classifies as `undecodable` per track
    return raw.decode("utf-8", errors="replace")


def read_records(path: Path) -> Iterator[tuple[str, dict | None]]:
    """(location, record) for every record of a corpus file; record is None when unreadable."""
    data = path.read_bytes()
    if path.suffix.lower() == ".jsonl":
        for number, line in enumerate(data.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(_decode(line))
            except json.JSONDecodeError:
                record = None
            yield f"{path.name}:{number}", record if isinstance(record, dict) else None
    else:
        reader = csv.DictReader(io.StringIO(_decode(data).lstrip("\ufeff")))
        for number, record in enumerate(reader, start=2):
            yield f"{path.name}:{number}", record


def record_to_track(record: dict) -> RawTrack:
    title = str(record.get("title") or "").strip()
    if not title:
        raise ValueError("no title")
    lyrics = record.get("lyrics")
    raw_id = str(record.get("source_id") or record.get("id") or "").strip()
    if not raw_id:
        raw_id = hashlib.sha256(f"{record['artist']}\n{title}".encode()).hexdigest()[:16]
    # datasets often number tracks per file (1, 2, …): ids are only unique per artist
    source_id = f"{slugify(str(record['artist']))}/{raw_id}"
    release_date, release_year = parse_release_date(record.get("release_date"))
    return RawTrack(
        source="corpus",
        source_id=source_id,
        title=title,
        lyrics=None if lyrics is None else str(lyrics),
        album=(str(record["album"]).strip() or None) if record.get("album") else None,
        release_date=release_date,
        release_year=release_year,
        url=record.get("url") or None,
    )


@functools.lru_cache(maxsize=4)
def _index(signature: tuple[tuple[str, int, int], ...]) -> tuple[dict[str, list], list[str]]:
    """Records of the corpus files by artist slug, plus the unreadable ones. Cached per set
    of (path, mtime, size), so a process materializing many partitions parses the corpus once."""
    by_slug: dict[str, list[tuple[str, dict]]] = defaultdict(list)
    unreadable = []
    for name, _, _ in signature:
        for location, record in read_records(Path(name)):
            artist = str(record.get("artist") or "").strip() if record is not None else ""
            if record is None:
                unreadable.append(f"{location}: not a JSON object")
            elif artist:
                by_slug[slugify(artist)].append((location, record))
    return dict(by_slug), unreadable


class CorpusSource(TrackSource):
    name = "corpus"

    def __init__(self, path: Path):
        self.path = path
        self._signature: tuple[tuple[str, int, int], ...] | None = None

    def fetch(self, artist: ArtistSpec) -> FetchResult:
        if self._signature is None:  # once per source: a step sees the corpus as it began
            stats = {f: f.stat() for f in corpus_files(self.path)}
            self._signature = tuple((str(f), s.st_mtime_ns, s.st_size) for f, s in stats.items())
        by_slug, unreadable = _index(self._signature)
        result = FetchResult(invalid_records=list(unreadable))
        seen_ids: set[str] = set()
        for location, record in by_slug.get(artist.slug, []):
            try:
                track = record_to_track(record)
            except ValueError as exc:
                result.invalid_records.append(f"{location}: {exc}")
                continue
            if track.source_id in seen_ids:
                result.invalid_records.append(f"{location}: repeats {track.source_id}")
                continue
            seen_ids.add(track.source_id)
            result.tracks.append(track)
        return result
