"""Scales the bundled sample corpus up for benchmarks (e.g. 60,000 tracks over 1,000 artists).

Songs are recombined from the sample corpus' own lines (written for this project), grouped by
theme so a generated song stays on one theme: two verses and a repeated chorus, section
headers, a release year from 1990 to 2025, and Genius page noise on about one song in five so
cleaning is exercised at scale. The output is deterministic for a seed: one JSONL file per
artist, in the corpus format the ``corpus`` track source reads.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

from rap_pipeline.core.paths import SAMPLE_CORPUS_DIR
from rap_pipeline.defs.artists.slugs import slugify
from rap_pipeline.defs.tracks.cleaning import clean_lyrics
from rap_pipeline.defs.tracks.corpus import corpus_files, read_records

_FIRST = (
    "Lil",
    "Young",
    "Big",
    "MC",
    "DJ",
    "Queen",
    "King",
    "Saint",
    "Ghost",
    "Cold",
    "Golden",
    "Silent",
    "Lucky",
    "Iron",
    "Velvet",
    "Neon",
    "Rusty",
    "Northside",
    "Southpaw",
    "Midnight",
)
_SECOND = (
    "Ash",
    "Frost",
    "Candor",
    "Meridian",
    "Cipher",
    "Prophet",
    "Comet",
    "Harbor",
    "Static",
    "Marrow",
    "Falcon",
    "Riddle",
    "Granite",
    "Sparrow",
    "Lantern",
    "Voltage",
    "Canyon",
    "Mosaic",
    "Thunder",
    "Willow",
    "Basil",
    "Orbit",
    "Cobalt",
    "Juniper",
)
_TITLE_WORDS = (
    "Night",
    "Money",
    "Heart",
    "Street",
    "Crown",
    "Rain",
    "Fire",
    "Mirror",
    "Block",
    "Letter",
    "Summer",
    "Ghost",
    "Gold",
    "Road",
    "Brother",
    "Mother",
    "Prayer",
    "Glass",
    "River",
    "City",
    "Shadow",
    "Dream",
    "Echo",
    "Window",
    "Ladder",
    "Engine",
    "Promise",
    "Winter",
    "Signal",
)


def _theme_lines(corpus: Path) -> dict[str, list[str]]:
    lines: dict[str, list[str]] = defaultdict(list)
    for file in corpus_files(corpus):
        for _, record in read_records(file):
            if not record or not record.get("themes"):
                continue
            cleaned = clean_lyrics(record.get("lyrics") or "", record.get("title"))
            lines[record["themes"][0]].extend(dict.fromkeys(cleaned.lines))
    return {theme: pool for theme, pool in lines.items() if len(pool) >= 12}


def artist_names(count: int) -> list[str]:
    names = [f"{a} {b}" for b in _SECOND for a in _FIRST]
    random.Random(0).shuffle(names)
    return [
        names[i % len(names)] + (f" {i // len(names) + 1}" if i >= len(names) else "")
        for i in range(count)
    ]


def _song(rng: random.Random, pool: list[str], artist: str, title: str) -> str:
    verse_1, chorus, verse_2 = (rng.sample(pool, 8), rng.sample(pool, 4), rng.sample(pool, 8))
    parts = [
        f"[Verse 1: {artist}]",
        *verse_1,
        "",
        "[Chorus]",
        *chorus,
        "",
        "[Verse 2]",
        *verse_2,
        "",
        "[Chorus]",
        *chorus,
    ]
    lyrics = "\n".join(parts)
    if rng.random() < 0.2:  # what a Genius page scrape leaves
        lyrics = (
            f"{rng.randint(1, 90)} Contributors{title} Lyrics{lyrics}{rng.randint(1, 400)}Embed"
        ).replace("\n[Verse 2]", "\nYou might also like[Verse 2]")
    return lyrics


def generate(
    artists: int, tracks: int, seed: int = 7, corpus: Path = SAMPLE_CORPUS_DIR
) -> Iterator[dict]:
    """Yields ``tracks`` corpus records spread evenly over ``artists`` artists."""
    if artists < 1 or tracks < 0:
        raise ValueError("need at least one artist and a non-negative number of tracks")
    rng = random.Random(seed)
    pools = _theme_lines(corpus)
    themes = sorted(pools)
    names = artist_names(artists)
    for index in range(tracks):
        artist = names[index % artists]
        theme = rng.choice(themes)
        title = " ".join(rng.sample(_TITLE_WORDS, rng.randint(1, 3)))
        year = rng.randint(1990, 2025)
        yield {
            "artist": artist,
            "title": f"{title} {index // artists + 1}",
            "album": f"{rng.choice(_TITLE_WORDS)} Tape",
            "release_date": f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
            "source_id": f"generated:{seed}:{index}",
            "themes": [theme],
            "lyrics": _song(rng, pools[theme], artist, title),
        }


def write_corpus(out: Path, artists: int, tracks: int, seed: int = 7) -> dict[str, int]:
    """Writes one ``<artist-slug>.jsonl`` per artist into ``out``; returns tracks per slug."""
    out.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = defaultdict(int)
    handles = {}
    try:
        for record in generate(artists, tracks, seed):
            slug = slugify(record["artist"])
            if slug not in handles:
                handles[slug] = (out / f"{slug}.jsonl").open("w", encoding="utf-8")
            handles[slug].write(json.dumps(record, ensure_ascii=False) + "\n")
            counts[slug] += 1
    finally:
        for handle in handles.values():
            handle.close()
    return dict(counts)
