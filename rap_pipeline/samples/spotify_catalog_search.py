"""Searching the sample catalog the way Spotify's search reads a query: field filters
(``track:``, ``artist:``, ``album:``, ``year:``, ``isrc:``, ``genre:``), quoted phrases and free
words, ranked by word overlap, then popularity."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

_QUERY_TERM = re.compile(r'(\w+):(?:"([^"]*)"|(\S+))|"([^"]*)"|(\S+)')
_WORD = re.compile(r"[0-9a-z]+")
_STOPWORDS = frozenset({"the", "a", "an", "of", "and", "feat", "ft", "featuring", "with"})


def tokens(text: str) -> list[str]:
    """Lower-case ASCII words of ``text`` (accents dropped, apostrophes joined)."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _WORD.findall(plain.replace("'", "").replace("\u2019", "").replace("&", " and "))


def significant_words(text: str) -> set[str]:
    words = set(tokens(text))
    return (words - _STOPWORDS) or words


def overlap(query: set[str], target: set[str]) -> float:
    return len(query & target) / len(query) if query else 0.0


@dataclass
class Query:
    fields: dict[str, list[str]]
    free: list[str]

    @classmethod
    def parse(cls, q: str) -> Query:
        fields: dict[str, list[str]] = {}
        free: list[str] = []
        for field, quoted, bare, phrase, word in _QUERY_TERM.findall(q):
            if field:
                name = field.lower()
                value = quoted or bare
                if name in {"track", "artist", "album", "year", "isrc", "genre"}:
                    fields.setdefault(name, []).append(value)
                elif name != "tag":
                    free.append(f"{field} {value}")
            elif phrase:
                free.append(phrase)
            elif word not in {"OR", "AND", "NOT"}:
                free.append(word.lstrip("-"))
        return cls(fields, free)

    def words(self, name: str) -> set[str]:
        return significant_words(" ".join(self.fields.get(name, [])))

    @property
    def free_words(self) -> set[str]:
        return significant_words(" ".join(self.free))

    def years(self) -> tuple[int, int] | None:
        for value in self.fields.get("year", []):
            match = re.fullmatch(r"(\d{4})(?:-(\d{4}))?", value)
            if match:
                low = int(match.group(1))
                return low, int(match.group(2) or low)
        return None


class CatalogIndex:
    """The catalog's artists and tracks with the words search matches against."""

    def __init__(self, artists: dict[str, dict[str, Any]], tracks: dict[str, dict[str, Any]]):
        self.artists = artists
        self.tracks = tracks
        # words per track: (name, artists, album)
        self.words = {
            track_id: (
                significant_words(track["name"]),
                set().union(*(significant_words(artists[a]["name"]) for a in track["artist_ids"])),
                significant_words(track["album"]["name"]),
            )
            for track_id, track in tracks.items()
        }

    def rank_tracks(self, parsed: Query) -> list[str]:
        """Track ids matching a parsed query, best first."""
        want_name, want_artist = parsed.words("track"), parsed.words("artist")
        want_album, free = parsed.words("album"), parsed.free_words
        has_terms = bool(want_name or want_artist or want_album or free)
        years = parsed.years()
        isrcs = {v.upper() for v in parsed.fields.get("isrc", [])}
        genres = {g.casefold() for g in parsed.fields.get("genre", [])}
        scored = []
        for track_id, track in self.tracks.items():
            if years and not years[0] <= int(track["album"]["release_date"][:4]) <= years[1]:
                continue
            if isrcs and (track.get("isrc") or "").upper() not in isrcs:
                continue
            if genres and not genres & {
                g.casefold() for a in track["artist_ids"] for g in self.artists[a]["genres"]
            }:
                continue
            name, artist, album = self.words[track_id]
            score = (
                3 * overlap(want_name, name)
                + 2 * overlap(want_artist, artist)
                + overlap(want_album, album)
                + 2 * overlap(free, name | artist | album)
            )
            if score == 0 and has_terms:
                continue
            # titles the query spells out completely first ("Cold Corners" before "Cold
            # Corners - Live")
            score += overlap(name, want_name | free)
            scored.append((-score, -track["popularity"], track_id))
        return [track_id for *_, track_id in sorted(scored)]

    def rank_artists(self, parsed: Query) -> list[str]:
        want = parsed.words("artist") | parsed.free_words
        genres = {g.casefold() for g in parsed.fields.get("genre", [])}
        scored = []
        for artist_id, artist in self.artists.items():
            if genres and not genres & {g.casefold() for g in artist["genres"]}:
                continue
            words = significant_words(artist["name"])
            score = overlap(want, words)
            if score == 0 and want:
                continue
            score += overlap(words, want)
            scored.append((-score, -artist["popularity"], artist_id))
        return [artist_id for *_, artist_id in sorted(scored)]
