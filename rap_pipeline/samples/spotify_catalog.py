"""The bundled Spotify sample catalog: fictional Spotify metadata for the sample corpus.

``build_sample_catalog(corpus_dir)`` derives, deterministically, what a Spotify search would
find for the bundled sample corpus; ``CatalogServer`` (``spotify_catalog_server.py``) serves
it. Every value is invented by rules seeded from the corpus ``source_id`` (sha256, so the
result is the same on every Python version and machine); nothing comes from Spotify.

Regenerate ``rap_pipeline/samples/data/spotify_sample_catalog.json`` after changing the corpus
or the rules below, and commit the result::

    .venv/bin/python -m rap_pipeline.samples.spotify_catalog
    .venv/bin/python -m rap_pipeline.samples.spotify_catalog --corpus DIR --output FILE

What the catalog holds, so a matcher has realistic work to do:

* one Spotify artist per corpus artist (same name; genres from the corpus themes and era,
  popularity, followers), plus five fictional artists that are not in the corpus;
* a track for every corpus record except Genius-only pages (liner notes): skits, remixes, live
  versions, interludes and instrumentals exist too, named the Spotify way ("Cold Corners -
  Live", "Knife in the Kiss - Remix"), so they compete with the songs they derive from;
* title variations on kept songs: ``feat`` ("Title (feat. Guest)" or "(feat. A & B)", guests
  added to the track's artists), ``remaster`` ("Title - 2011 Remaster"), ``case`` ("TITLE",
  "title", "Title Of Words") and ``punctuation`` (curly or dropped apostrophes, dropped commas
  and hyphens, "(X)" → "- X", accents dropped); "&" and "and" swap in album names;
* one kept song per artist ABSENT on purpose, with a decoy: a song of the same artist whose
  title differs in its last word ("Bus Pass Love" → "Bus Pass Blues"), or the same title by a
  different artist; a client must record not_found rather than take the top hit;
* two kept songs without an ISRC, some albums dated to the year only (precision "year");
* a handful of unrelated tracks by the fictional artists, sharing words with corpus titles.

Format (``version`` 1)::

    {"version": 1,
     "artists": [{"id", "name", "genres": [..], "popularity", "followers"}],
     "tracks": [{"id", "name", "artist_ids": [..], "popularity", "explicit", "duration_ms",
                 "isrc": str | null, "track_number", "disc_number",
                 "album": {"id", "name", "album_type", "release_date",
                           "release_date_precision", "artist_ids": [..]}}],
     "expected": {corpus source_id: {"artist", "title", "kept", "variation",
                                     "track_id": str | null,
                                     "decoy"?, "decoy_track_id"?}},
     "notes": "..."}

``expected`` is the answer key for tests (which catalog track a corpus record is, which records
are absent and why); the server never serves it. ``kept`` is this module's own view of whether
the pipeline keeps the record (title markers and a minimum length), checked against the real
cleaning rules by the tests.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import unicodedata
from pathlib import Path
from typing import Any

from rap_pipeline.core.paths import PACKAGE_DIR, SAMPLE_CORPUS_DIR

SAMPLE_CATALOG_PATH = PACKAGE_DIR / "samples" / "data" / "spotify_sample_catalog.json"
CATALOG_VERSION = 1

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

# Genius-only pages: no Spotify track
_NOT_ON_SPOTIFY = re.compile(r"\b(?:liner notes|track\s*list(?:ing)?|credits)\b", re.IGNORECASE)
# "(Skit)" style suffixes the pipeline rejects; Spotify writes them " - Skit"
_SUFFIX = re.compile(
    r"\s*\((skit|remix|live\b[^)]*|instrumental|interlude|outro|intro)\)\s*$", re.IGNORECASE
)
_REJECTED_TITLE = re.compile(
    r"\b(?:skit|remix|rmx|instrumental)\b|[(\[]\s*live\b|\blive\s+(?:at|from|in|on)\b", re.I
)
_MIN_KEPT_WORDS = 40

_THEME_GENRES = {
    "street life": "hardcore hip hop",
    "crime": "gangsta rap",
    "prison": "gangsta rap",
    "loyalty": "hardcore hip hop",
    "poverty": "conscious hip hop",
    "injustice": "political hip hop",
    "police": "political hip hop",
    "racism": "political hip hop",
    "community": "conscious hip hop",
    "loss": "conscious hip hop",
    "grief": "conscious hip hop",
    "introspection": "alternative hip hop",
    "faith": "conscious hip hop",
    "loneliness": "emo rap",
    "heartbreak": "emo rap",
    "depression": "emo rap",
    "sadness": "emo rap",
    "empowerment": "east coast hip hop",
    "betrayal": "east coast hip hop",
    "love": "r&b rap",
    "party": "party rap",
    "summer nights": "latin hip hop",
    "dancing": "latin hip hop",
    "family pride": "latin hip hop",
    "money": "trap",
    "hustle": "trap",
    "fame": "trap",
    "flexing": "trap",
    "paranoia": "dark trap",
}

# Fictional artists that are not in the corpus: featured guests, decoys, unrelated tracks.
_OTHER_ARTISTS = [
    ("Marlowe Vance", ["east coast hip hop", "boom bap"]),
    ("DJ Quartz", ["turntablism", "instrumental hip hop"]),
    ("Nova Reyes", ["latin hip hop", "r&b rap"]),
    ("The Lantern Syndicate", ["alternative hip hop", "jazz rap"]),
    ("Lil Orbit", ["trap", "pop rap"]),
]
# (title, artists, album or None for a single, release_date)
_UNRELATED_TRACKS = [
    ("Winter Corners", ["DJ Quartz"], "Cratedigger Winters", "2004-01-13"),
    ("Count It Up", ["Lil Orbit"], None, "2019-05-24"),
    ("Static on the Line", ["Lil Orbit"], None, "2021-10-01"),
    ("Salt & Crowns", ["Marlowe Vance"], "Ledger Lines", "1999-06-08"),
    ("Kitchen Table Talk", ["Nova Reyes", "Marlowe Vance"], "Kitchen Table Talk", "2011-02-15"),
    ("Barrio Summer Nights", ["Nova Reyes"], None, "2014-07-11"),
    ("Broken Glass Theory", ["The Lantern Syndicate"], "Porch Songs", "2010-09-21"),
    ("Halcyon Nights", ["The Lantern Syndicate"], "Porch Songs", "2010-09-21"),
]
_DECOY_WORDS = ["Blues", "Dreams", "Weather", "Stories", "Prayers", "Tapes", "Letters", "Ghosts"]
_VARIATION_CYCLE = ["exact", "feat", "exact", "remaster", "exact", "case", "exact", "exact"]
_PUNCTUATION = re.compile(r"['’,()]|\w-\w|[^\x00-\x7f]")


def _hash(*parts: object) -> int:
    return int(hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest(), 16)


def spotify_id(kind: str, key: str) -> str:
    """A deterministic 22-character base62 id, like Spotify's."""
    number = _hash("id", kind, key)
    digits = []
    for _ in range(22):
        number, rest = divmod(number, 62)
        digits.append(_BASE62[rest])
    return "".join(digits)


def _read_corpus(corpus_dir: Path) -> list[dict[str, Any]]:
    records = []
    for path in sorted(corpus_dir.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                records.append(json.loads(line))
    return records


def _is_kept(record: dict[str, Any]) -> bool:
    """Whether the pipeline keeps a record: no skit/remix/live/… title marker, not a Genius-only
    page, and enough words of lyrics (tests check this against the real cleaning rules)."""
    title = record["title"]
    if _REJECTED_TITLE.search(title) or _NOT_ON_SPOTIFY.search(title):
        return False
    return len((record.get("lyrics") or "").split()) >= _MIN_KEPT_WORDS


def _year(date: str) -> int:
    return int(date[:4])


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _punctuation_variant(title: str, seed: int) -> str:
    out = title.replace("'", "\u2019") if seed % 2 == 0 else title.replace("'", "")
    out = out.replace(", ", " ")
    out = re.sub(r"(\w)-(\w)", r"\1 \2", out)
    out = re.sub(r"\s*\(([^)]*)\)\s*$", r" - \1", out)
    return _strip_accents(out)


def _case_variant(title: str, seed: int) -> str:
    options = [
        title.upper(),
        title.lower(),
        " ".join(w[:1].upper() + w[1:] for w in title.split()),
    ]
    for step in range(len(options)):
        candidate = options[(seed + step) % len(options)]
        if candidate != title:
            return candidate
    return title.upper()


def _swap_and(name: str) -> str:
    if " & " in name:
        return name.replace(" & ", " and ")
    return re.sub(r"\band\b", "&", name)


def _genres(records: list[dict[str, Any]]) -> list[str]:
    counts: dict[str, int] = {}
    for record in records:
        for theme in record.get("themes") or []:
            genre = _THEME_GENRES.get(theme)
            if genre:
                counts[genre] = counts.get(genre, 0) + 1
    ranked = sorted(counts, key=lambda g: (-counts[g], g))[:2]
    first_year = min(_year(r["release_date"]) for r in records)
    era = (
        "golden age hip hop"
        if first_year < 1996
        else "east coast hip hop"
        if first_year < 2005
        else "underground hip hop"
        if first_year < 2014
        else "cloud rap"
    )
    return [*ranked, era] if era not in ranked else ranked


def _artist_entry(name: str, genres: list[str], seed_key: str) -> dict[str, Any]:
    seed = _hash("artist", seed_key)
    popularity = 35 + seed % 50
    followers = popularity**3 * (4 + (seed >> 8) % 17) + (seed >> 16) % 997
    return {
        "id": spotify_id("artist", name),
        "name": name,
        "genres": genres,
        "popularity": popularity,
        "followers": followers,
    }


def _isrc(artist_name: str, year: int, seed: int) -> str:
    registrant = "".join(
        _BASE62[10 + (_hash("registrant", artist_name) >> (5 * i)) % 26] for i in range(3)
    )
    return f"US{registrant}{year % 100:02d}{seed % 100000:05d}"


def build_sample_catalog(corpus_dir: Path = SAMPLE_CORPUS_DIR) -> dict[str, Any]:
    """The sample catalog for the corpus in ``corpus_dir`` (see the module docstring)."""
    records = _read_corpus(Path(corpus_dir))
    by_artist: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_artist.setdefault(record["artist"], []).append(record)

    artists = [
        _artist_entry(name, _genres(recs), recs[0]["source_id"]) for name, recs in by_artist.items()
    ]
    others = [_artist_entry(name, genres, name) for name, genres in _OTHER_ARTISTS]
    artist_ids = {a["name"]: a["id"] for a in [*artists, *others]}
    popularity = {a["name"]: a["popularity"] for a in [*artists, *others]}
    other_names = [name for name, _ in _OTHER_ARTISTS]
    corpus_names = list(by_artist)

    # -- albums: one per (artist, corpus album), dated by its latest record -------------------
    albums: dict[tuple[str, str], dict[str, Any]] = {}
    for artist, recs in by_artist.items():
        for album_name in dict.fromkeys(r["album"] for r in recs):
            dates = sorted(r["release_date"] for r in recs if r["album"] == album_name)
            seed = _hash("album", artist, album_name)
            year_only = seed % 4 == 0
            albums[(artist, album_name)] = {
                "id": spotify_id("album", f"{artist}\n{album_name}"),
                "name": _swap_and(album_name)
                if re.search(r" & |\band\b", album_name)
                else album_name,
                "album_type": "album",
                "release_date": dates[-1][:4] if year_only else dates[-1],
                "release_date_precision": "year" if year_only else "day",
                "artist_ids": [artist_ids[artist]],
            }

    # -- which kept songs are absent, and how every kept song is spelled ---------------------
    kept = {r["source_id"] for r in records if _is_kept(r)}
    absent: dict[str, str] = {}  # source_id -> decoy kind
    for index, recs in enumerate(by_artist.values()):
        candidates = [
            r
            for r in recs
            if r["source_id"] in kept
            and len(r["title"].split()) >= 2
            and r["title"] != r["album"]
            and not _PUNCTUATION.search(r["title"])
        ]
        if candidates:
            chosen = min(candidates, key=lambda r: _hash("absent", r["source_id"]))
            kind = "same_artist_similar_title" if index % 2 == 0 else "other_artist_same_title"
            absent[chosen["source_id"]] = kind

    plain = sorted(
        (
            r
            for r in records
            if r["source_id"] in kept
            and r["source_id"] not in absent
            and not _PUNCTUATION.search(r["title"])
        ),
        key=lambda r: _hash("variation", r["source_id"]),
    )
    variation = {
        r["source_id"]: _VARIATION_CYCLE[i % len(_VARIATION_CYCLE)] for i, r in enumerate(plain)
    }
    present_kept = sorted(
        (sid for sid in kept if sid not in absent), key=lambda sid: _hash("no-isrc", sid)
    )
    without_isrc = set(present_kept[:2])

    tracks: list[dict[str, Any]] = []
    expected: dict[str, dict[str, Any]] = {}
    track_numbers: dict[str, int] = {}

    def add_track(
        key: str,
        name: str,
        performers: list[str],
        album: dict[str, Any],
        *,
        base_popularity: int,
        short: bool = False,
        isrc: bool = True,
    ) -> str:
        seed = _hash("track", key)
        track_numbers[album["id"]] = track_numbers.get(album["id"], 0) + 1
        duration = 40_000 + seed % 60_000 if short else 150_000 + seed % 120_000
        track = {
            "id": spotify_id("track", key),
            "name": name,
            "artist_ids": [artist_ids[p] for p in performers],
            "album": album,
            "popularity": max(0, min(100, base_popularity - 20 + (seed >> 8) % 31)),
            "explicit": (seed >> 16) % 10 < 7,
            "duration_ms": duration,
            "isrc": _isrc(performers[0], _year(album["release_date"]), seed >> 24)
            if isrc
            else None,
            "track_number": track_numbers[album["id"]],
            "disc_number": 1,
        }
        tracks.append(track)
        return track["id"]

    for artist, recs in by_artist.items():
        for record in recs:
            sid, title = record["source_id"], record["title"]
            album = albums[(artist, record["album"])]
            entry: dict[str, Any] = {"artist": artist, "title": title, "kept": sid in kept}
            expected[sid] = entry
            seed = _hash("title", sid)
            if _NOT_ON_SPOTIFY.search(title):
                entry.update(variation="not_on_spotify", track_id=None)
                continue
            if sid in absent:
                kind = absent[sid]
                if kind == "same_artist_similar_title":
                    words = title.split()
                    pool = [w for w in _DECOY_WORDS if w.casefold() != words[-1].casefold()]
                    decoy_title = " ".join([*words[:-1], pool[seed % len(pool)]])
                    decoy_id = add_track(
                        f"{sid}:decoy",
                        decoy_title,
                        [artist],
                        album,
                        base_popularity=popularity[artist],
                    )
                else:
                    guest = other_names[seed % len(other_names)]
                    year = 2015 + seed % 10
                    single = {
                        "id": spotify_id("album", f"{guest}\n{title}"),
                        "name": title,
                        "album_type": "single",
                        "release_date": f"{year}-{1 + seed % 12:02d}-{1 + seed % 28:02d}",
                        "release_date_precision": "day",
                        "artist_ids": [artist_ids[guest]],
                    }
                    decoy_id = add_track(
                        f"{sid}:decoy", title, [guest], single, base_popularity=popularity[guest]
                    )
                entry.update(variation="absent", track_id=None, decoy=kind, decoy_track_id=decoy_id)
                continue

            performers = [artist]
            short = False
            if sid not in kept:
                kind = "spotify_suffix"
                match = _SUFFIX.search(title)
                name = title[: match.start()] + " - " + match.group(1) if match else title
                short = bool(re.search(r"skit|interlude|outro|intro", title, re.IGNORECASE))
            elif _PUNCTUATION.search(title):
                kind, name = "punctuation", _punctuation_variant(title, seed)
            else:
                kind = variation[sid]
                name = title
                if kind == "feat":
                    pool = [n for n in [*other_names, *corpus_names] if n != artist]
                    guests = [pool[seed % len(pool)]]
                    if (seed >> 8) % 3 == 0:
                        second = [n for n in other_names if n not in guests]
                        guests.append(second[(seed >> 12) % len(second)])
                    performers += guests
                    name = f"{title} (feat. {' & '.join(guests)})"
                elif kind == "remaster":
                    year = _year(record["release_date"]) + 8 + seed % 8
                    if year > 2025:
                        kind, name = "case", _case_variant(title, seed)
                    else:
                        name = f"{title} - {year} Remaster"
                elif kind == "case":
                    name = _case_variant(title, seed)
            track_id = add_track(
                sid,
                name,
                performers,
                album,
                base_popularity=popularity[artist],
                short=short,
                isrc=sid not in without_isrc,
            )
            entry.update(variation=kind, track_id=track_id)
            if sid in without_isrc:
                entry["no_isrc"] = True

    for title, performers, album_name, date in _UNRELATED_TRACKS:
        album = {
            "id": spotify_id("album", f"{performers[0]}\n{album_name or title}"),
            "name": album_name or title,
            "album_type": "album" if album_name else "single",
            "release_date": date,
            "release_date_precision": "day",
            "artist_ids": [artist_ids[performers[0]]],
        }
        add_track(
            f"unrelated:{title}",
            title,
            performers,
            album,
            base_popularity=popularity[performers[0]],
        )

    absent_list = ", ".join(
        f"{expected[sid]['artist']} - {expected[sid]['title']} ({absent[sid]})" for sid in absent
    )
    notes = (
        "Fictional Spotify metadata for the bundled sample corpus, generated by "
        "rap_pipeline/samples/spotify_catalog.py (python -m "
        "rap_pipeline.samples.spotify_catalog); none of it comes from Spotify. "
        "Served by rap_pipeline.samples.spotify_catalog_server.CatalogServer, which never serves "
        "'expected' (the answer key for tests) or these notes. Absent on purpose, each with a "
        f"decoy: {absent_list}."
    )
    return {
        "version": CATALOG_VERSION,
        "artists": [*artists, *others],
        "tracks": tracks,
        "expected": expected,
        "notes": notes,
    }


def write_sample_catalog(catalog: dict[str, Any], path: Path = SAMPLE_CATALOG_PATH) -> None:
    path.write_text(json.dumps(catalog, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Regenerate the Spotify sample catalog.")
    parser.add_argument("--corpus", type=Path, default=SAMPLE_CORPUS_DIR)
    parser.add_argument("--output", type=Path, default=SAMPLE_CATALOG_PATH)
    args = parser.parse_args(argv)
    catalog = build_sample_catalog(args.corpus)
    write_sample_catalog(catalog, args.output)
    print(
        f"wrote {args.output}: {len(catalog['tracks'])} tracks, {len(catalog['artists'])} artists"
    )


if __name__ == "__main__":
    main()
