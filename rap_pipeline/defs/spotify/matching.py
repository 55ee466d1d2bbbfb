"""Which Spotify search hit, if any, is our track.

Titles and artist names are normalized first: accents and case folded, "&" read as "and",
featured artists (``(feat. X)``, ``ft. X``, ``with X``) and release decorations (``- 2011
Remaster``, ``(Radio Edit)``, ``- Live``…) removed, punctuation dropped. Each candidate then
gets two rapidfuzz scores, 0–100:

- title: ``fuzz.ratio`` of the normalized titles (order matters in a title);
- artist: the best ``fuzz.ratio`` of our artist name against each of the hit's artists (a
  hit credited to several artists still matches; a leading "The" is ignored).

``score = 0.7 × title + 0.3 × artist``. A candidate is accepted when ``score ≥ MIN_SCORE``
(90), the title scores at least ``MIN_TITLE_SCORE`` (90), the artist at least
``MIN_ARTIST_SCORE`` (85), and both titles carry the same numbers ("Part 2", "II", "2000"),
so a same-titled song by another artist, a sequel, or another song by the same artist is never
taken. Below that the track is ``not_found`` and the
best candidate is kept, with its scores, for inspection. Ties go to the more popular hit.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from rapidfuzz import fuzz

MIN_SCORE = 90.0
MIN_TITLE_SCORE = 90.0
MIN_ARTIST_SCORE = 85.0
TITLE_WEIGHT = 0.7

_FEATURE = re.compile(r"[\(\[]\s*(feat\.?|ft\.?|featuring|with)\s[^\)\]]*[\)\]]", re.I)
_TRAILING_FEATURE = re.compile(r"\s(feat\.?|ft\.?|featuring)\s.*$", re.I)
_DECORATION_WORDS = (
    r"remaster(ed)?|\d{4} remaster(ed)?|remastered \d{4}|radio edit|edit|single version|"
    r"album version|explicit|clean|mono|stereo|bonus track|deluxe( edition)?|live"
)
_DASH_DECORATION = re.compile(rf"\s[-–—]\s.*\b({_DECORATION_WORDS})\b.*$", re.I)
_BRACKET_DECORATION = re.compile(rf"[\(\[][^\)\]]*\b({_DECORATION_WORDS})\b[^\)\]]*[\)\]]", re.I)
_NON_WORD = re.compile(r"[^a-z0-9]+")
_ROMAN = {"ii", "iii", "iv", "vi", "vii", "viii", "ix"}


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    text = text.replace("&", " and ").replace("$", "s")
    return _NON_WORD.sub(" ", text).strip()


def normalize_title(title: str) -> str:
    """'Cold Corners (feat. MC Verity) - 2011 Remaster' → 'cold corners'."""
    stripped = _FEATURE.sub(" ", title)
    stripped = _BRACKET_DECORATION.sub(" ", stripped)
    stripped = _DASH_DECORATION.sub(" ", stripped)
    stripped = _TRAILING_FEATURE.sub(" ", stripped)
    return _fold(stripped) or _fold(title)  # a title that is all decoration stays itself


def normalize_artist(name: str) -> str:
    folded = _fold(name)
    return folded[4:] if folded.startswith("the ") else folded


def title_numbers(normalized_title: str) -> set[str]:
    return {w for w in normalized_title.split() if w.isdigit() or w in _ROMAN}


def search_query(title: str, artist: str) -> str:
    """The search string: field filters on the plain title and artist (quotes removed)."""
    plain_title = _FEATURE.sub(" ", title).replace('"', " ")
    plain_title = " ".join(_TRAILING_FEATURE.sub(" ", plain_title).split())
    return f'track:"{plain_title}" artist:"{" ".join(artist.replace(chr(34), " ").split())}"'


@dataclass(frozen=True)
class Candidate:
    spotify_track_id: str
    title: str
    artists: list[str]
    title_score: float
    artist_score: float
    score: float
    popularity: int
    same_numbers: bool

    @property
    def acceptable(self) -> bool:
        return (
            self.score >= MIN_SCORE
            and self.title_score >= MIN_TITLE_SCORE
            and self.artist_score >= MIN_ARTIST_SCORE
            and self.same_numbers
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "spotify_track_id": self.spotify_track_id,
            "title": self.title,
            "artists": self.artists,
            "title_score": round(self.title_score, 1),
            "artist_score": round(self.artist_score, 1),
            "score": round(self.score, 1),
            "same_numbers": self.same_numbers,
        }


def score_candidate(title: str, artist: str, item: dict[str, Any]) -> Candidate:
    names = [a.get("name") or "" for a in item.get("artists") or []]
    wanted_title, wanted_artist = normalize_title(title), normalize_artist(artist)
    their_title = normalize_title(item.get("name") or "")
    title_score = fuzz.ratio(wanted_title, their_title)
    artist_score = max((fuzz.ratio(wanted_artist, normalize_artist(n)) for n in names), default=0.0)
    return Candidate(
        spotify_track_id=str(item.get("id") or ""),
        title=str(item.get("name") or ""),
        artists=names,
        title_score=title_score,
        artist_score=artist_score,
        score=TITLE_WEIGHT * title_score + (1 - TITLE_WEIGHT) * artist_score,
        popularity=int(item.get("popularity") or 0),
        same_numbers=title_numbers(wanted_title) == title_numbers(their_title),
    )


@dataclass(frozen=True)
class MatchOutcome:
    item: dict[str, Any] | None  # the accepted search hit
    best: Candidate | None  # the best candidate, accepted or not


def best_match(title: str, artist: str, items: list[dict[str, Any]]) -> MatchOutcome:
    """The accepted hit among search results, or none with the best candidate for review."""
    scored = [(score_candidate(title, artist, item), item) for item in items if item.get("id")]
    if not scored:
        return MatchOutcome(None, None)
    best, item = max(scored, key=lambda pair: (pair[0].score, pair[0].popularity))
    return MatchOutcome(item if best.acceptable else None, best)
