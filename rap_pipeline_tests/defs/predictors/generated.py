"""A generated corpus written straight into the pipeline's tables (tracks, analyses, vectors,
Spotify matches), with a popularity whose dependence on the features is known: what the
predictor and trends tests learn from. Lyrics are a few generated words per song."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg.types.json import Jsonb

EMBEDDING_MODEL = "test/generated-16d"
DIMENSION = 16
FIRST_YEAR, LAST_YEAR = 1995, 2024
# words whose share rises / falls with the release year (the trends test looks for them)
RISING, FALLING = "drill", "boombap"
FILLER = [
    "city",
    "night",
    "money",
    "love",
    "street",
    "dream",
    "rhyme",
    "beat",
    "corner",
    "block",
    "verse",
    "hook",
]


@dataclass(frozen=True)
class Generated:
    track_ids: list[int]
    artists: list[str]
    years: list[int]


def _lyrics(rng: np.random.Generator, year: int) -> str:
    late = (year - FIRST_YEAR) / (LAST_YEAR - FIRST_YEAR)
    lines = []
    for _ in range(8):
        words = list(rng.choice(FILLER, size=6))
        if rng.random() < late:
            words.append(RISING)
        if rng.random() < 1 - late:
            words.append(FALLING)
        lines.append(" ".join(words))
    return "\n".join(lines)


def seed_corpus(
    database_url: str,
    *,
    artists: int = 10,
    per_artist: int = 12,
    signal: bool = True,
    seed: int = 0,
    popularity_for: float = 1.0,
) -> Generated:
    """Kept tracks with rule-based and emotion results, vectors, and Spotify popularity for a
    share (``popularity_for``) of them. With ``signal``, popularity is a sum of three rule-based
    metrics and an embedding direction, plus noise; without, it is noise."""
    rng = np.random.default_rng(seed)
    track_ids, slugs, years = [], [], []
    with psycopg.connect(database_url) as conn:
        register_vector(conn)
        for a in range(artists):
            slug = f"generated-artist-{seed}-{a}"
            slugs.append(slug)
            conn.execute(
                "INSERT INTO artists (slug, display_name) VALUES (%s, %s)",
                (slug, f"Generated Artist {a}"),
            )
            for t in range(per_artist):
                year = int(rng.integers(FIRST_YEAR, LAST_YEAR + 1))
                lyrics = _lyrics(rng, year)
                digest = hashlib.sha256(f"{seed}-{a}-{t}-{lyrics}".encode()).hexdigest()
                (track_id,) = conn.execute(
                    """INSERT INTO tracks (artist_slug, source, source_id, title, release_year,
                           lyrics_raw, lyrics_clean, lyrics_hash, word_count, line_count, status)
                       VALUES (%s, 'corpus', %s, %s, %s, %s, %s, %s, %s, 8, 'kept')
                       RETURNING id""",
                    (
                        slug,
                        f"generated:{seed}:{a}:{t}",
                        f"Song {t}",
                        year,
                        lyrics,
                        lyrics,
                        digest,
                        len(lyrics.split()),
                    ),
                ).fetchone()
                metrics = {
                    "rhyme_density": float(rng.normal(0.15, 0.05)),
                    "mtld": float(rng.normal(60, 10)),
                    "end_rhyme_share": float(rng.uniform(0, 1)),
                    "repeated_line_share": float(rng.uniform(0, 0.5)),
                    "theme_street": float(rng.uniform(0, 3)),
                    "theme_love": float(rng.uniform(0, 3)),
                }
                emotions = {
                    "emotion_joy": float(rng.uniform()),
                    "emotion_sadness": float(rng.uniform()),
                }
                vector = rng.normal(size=DIMENSION)
                vector /= np.linalg.norm(vector)
                for analyzer, version, method, result in (
                    ("rule_based", "1", "rules", metrics),
                    ("emotion", "2", "lexicon:nrc", emotions),
                ):
                    conn.execute(
                        """INSERT INTO analyses (track_id, artist_slug, analyzer,
                               analyzer_version, method, input_hash, status, result)
                           VALUES (%s, %s, %s, %s, %s, %s, 'ok', %s)""",
                        (track_id, slug, analyzer, version, method, digest, Jsonb(result)),
                    )
                conn.execute(
                    """INSERT INTO track_embeddings (track_id, model_id, dimension, lyrics_hash,
                           artist_slug, release_year, chunk_count, embedding)
                       VALUES (%s, %s, %s, %s, %s, %s, 1, %s)""",
                    (track_id, EMBEDDING_MODEL, DIMENSION, digest, slug, year, vector),
                )
                if rng.random() < popularity_for:
                    if signal:
                        value = (
                            50
                            + 60 * (metrics["rhyme_density"] - 0.15)
                            + 0.5 * (metrics["mtld"] - 60)
                            + 10 * (metrics["end_rhyme_share"] - 0.5)
                            + 20 * vector[0]
                            + rng.normal(scale=1.5)
                        )
                    else:
                        value = 50 + rng.normal(scale=8)
                    conn.execute(
                        """INSERT INTO spotify_tracks (track_id, artist_slug, status, source,
                               payload_version, query_title, spotify_track_id, enriched_at,
                               popularity)
                           VALUES (%s, %s, 'matched', 'generated', 1, %s, %s, now(), %s)""",
                        (
                            track_id,
                            slug,
                            f"Song {t}",
                            f"sp{track_id}",
                            round(min(100, max(0, value))),
                        ),
                    )
                track_ids.append(track_id)
                years.append(year)
    return Generated(track_ids, slugs, sorted(set(years)))


def set_popularity_noise(database_url: str, seed: int = 99) -> None:
    """Replaces every popularity with noise: what a retrained model must not be promoted on."""
    rng = np.random.default_rng(seed)
    with psycopg.connect(database_url) as conn:
        ids = [row[0] for row in conn.execute("SELECT track_id FROM spotify_tracks ORDER BY 1")]
        for track_id in ids:
            conn.execute(
                "UPDATE spotify_tracks SET popularity = %s WHERE track_id = %s",
                (int(np.clip(50 + rng.normal(scale=8), 0, 100)), track_id),
            )
