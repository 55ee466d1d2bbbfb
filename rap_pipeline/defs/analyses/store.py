"""Reading the tracks an analyzer still has to do, and writing its results (table
``analyses``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

import psycopg
from psycopg.types.json import Jsonb

from rap_pipeline.defs.analyses.analyzer import (
    AnalysisResult,
    AnalyzerInfo,
    TrackText,
    retry_delay_s,
)
from rap_pipeline.defs.analyses.hybrid import InputAnalysis

_ROWS_OF_THIS_ANALYZER = """analyses a ON a.track_id = t.id AND a.analyzer = %(name)s
    AND a.analyzer_version = %(version)s AND a.method = %(method)s"""


def pending_tracks(
    conn: psycopg.Connection, artist_slug: str, info: AnalyzerInfo, *, force: bool = False
) -> list[TrackText]:
    """Kept tracks without a current result of this analyzer version and method: never
    analyzed, lyrics changed since, or failed with a next attempt that has come.
    ``force``: failures are due at once, whatever their next attempt says."""
    rows = conn.execute(
        f"""SELECT t.id, t.title, t.lyrics_clean, t.lyrics_hash
            FROM tracks t LEFT JOIN {_ROWS_OF_THIS_ANALYZER}
            WHERE t.artist_slug = %(slug)s AND t.status = 'kept'
              AND (a.track_id IS NULL OR a.input_hash <> t.lyrics_hash
                   OR (a.status = 'failed'
                       AND (%(force)s OR coalesce(a.next_attempt_at <= now(), true))))
            ORDER BY t.id""",
        {**_analyzer_params(info), "slug": artist_slug, "force": force},
    ).fetchall()
    return [TrackText(*row) for row in rows]


@dataclass(frozen=True)
class DeferredTrack:
    """A track whose last analysis failed and whose next attempt has not come yet."""

    track_id: int
    title: str
    error_class: str
    attempts: int
    next_attempt_at: dt.datetime

    def as_dict(self) -> dict[str, str | int]:
        return {
            "track_id": self.track_id,
            "title": self.title,
            "error_class": self.error_class,
            "attempts": self.attempts,
            "next_attempt_at": self.next_attempt_at.isoformat(timespec="seconds"),
        }


def deferred_tracks(
    conn: psycopg.Connection, artist_slug: str, info: AnalyzerInfo
) -> list[DeferredTrack]:
    """Kept tracks a run skips because their failure's back-off has not expired."""
    rows = conn.execute(
        f"""SELECT t.id, t.title, a.error_class, a.attempts, a.next_attempt_at
            FROM tracks t JOIN {_ROWS_OF_THIS_ANALYZER}
            WHERE t.artist_slug = %(slug)s AND t.status = 'kept'
              AND a.input_hash = t.lyrics_hash AND a.status = 'failed'
              AND a.next_attempt_at > now()
            ORDER BY a.next_attempt_at, t.id""",
        {**_analyzer_params(info), "slug": artist_slug},
    ).fetchall()
    return [DeferredTrack(*row) for row in rows]


def _analyzer_params(info: AnalyzerInfo) -> dict[str, str]:
    return {"name": info.name, "version": info.version, "method": info.method}


_UPSERT = """
INSERT INTO analyses (track_id, artist_slug, analyzer, analyzer_version, method, input_hash,
                      status, result, error, seconds, usage, attempts, error_class,
                      next_attempt_at)
VALUES (%(track_id)s, %(slug)s, %(name)s, %(version)s, %(method)s, %(input_hash)s,
        %(status)s, %(result)s, %(error)s, %(seconds)s, %(usage)s, %(attempts)s,
        %(error_class)s, now() + make_interval(secs => %(retry_delay_s)s::float8))
ON CONFLICT (track_id, analyzer, analyzer_version, method) DO UPDATE SET
    input_hash = EXCLUDED.input_hash, status = EXCLUDED.status, result = EXCLUDED.result,
    error = EXCLUDED.error, seconds = EXCLUDED.seconds, usage = EXCLUDED.usage,
    attempts = EXCLUDED.attempts, error_class = EXCLUDED.error_class,
    next_attempt_at = EXCLUDED.next_attempt_at, analyzed_at = now()
"""


def write_results(
    conn: psycopg.Connection,
    artist_slug: str,
    info: AnalyzerInfo,
    input_hashes: dict[int, str],
    results: list[AnalysisResult],
) -> None:
    """Stores one row per result in one transaction; ``input_hashes`` maps track id to the
    hash of what was analyzed. A failure counts the failures in a row of its track (of the
    same input) and is not due again before ``retry_delay_s`` of its class and count."""
    with conn.transaction(), conn.cursor() as cur:
        failed_before = {
            track_id: (attempts, input_hash)
            for track_id, attempts, input_hash in cur.execute(
                """SELECT track_id, attempts, input_hash FROM analyses
                   WHERE analyzer = %(name)s AND analyzer_version = %(version)s
                     AND method = %(method)s AND status = 'failed'
                     AND track_id = ANY(%(ids)s)""",
                {**_analyzer_params(info), "ids": [r.track_id for r in results]},
            )
        }
        rows = []
        for result in results:
            failed = result.status == "failed"
            attempts, input_hash = failed_before.get(result.track_id, (0, None))
            same_input = input_hash == input_hashes[result.track_id]
            attempts = attempts + 1 if failed and same_input else 1
            rows.append(
                {
                    **_analyzer_params(info),
                    "track_id": result.track_id,
                    "slug": artist_slug,
                    "input_hash": input_hashes[result.track_id],
                    "status": result.status,
                    "result": Jsonb(result.values) if result.values is not None else None,
                    "error": result.error,
                    "seconds": max(0.0, result.seconds),
                    "usage": Jsonb(result.usage) if result.usage is not None else None,
                    "attempts": attempts,
                    "error_class": result.error_class if failed else None,
                    "retry_delay_s": retry_delay_s(result.error_class or "", attempts)
                    if failed
                    else None,
                }
            )
        if rows:
            cur.executemany(_UPSERT, rows)


def current_results(
    conn: psycopg.Connection, artist_slug: str, info: AnalyzerInfo, *, of_current_lyrics=True
) -> list[tuple[int, str, dict | None]]:
    """(track id, status, result) of this analyzer version's rows for the artist's kept tracks;
    ``of_current_lyrics``: only rows whose input is the track's current lyrics."""
    lyrics_match = "AND a.input_hash = t.lyrics_hash" if of_current_lyrics else ""
    return conn.execute(
        f"""SELECT a.track_id, a.status, a.result FROM analyses a
            JOIN tracks t ON t.id = a.track_id AND t.status = 'kept' {lyrics_match}
            WHERE a.artist_slug = %s AND a.analyzer = %s AND a.analyzer_version = %s
              AND a.method = %s""",
        (artist_slug, info.name, info.version, info.method),
    ).fetchall()


def kept_track_count(conn: psycopg.Connection, artist_slug: str) -> int:
    return conn.execute(
        "SELECT count(*) FROM tracks WHERE artist_slug = %s AND status = 'kept'", (artist_slug,)
    ).fetchone()[0]


def latest_inputs(
    conn: psycopg.Connection, artist_slug: str, analyzers: tuple[str, ...]
) -> dict[int, list[InputAnalysis]]:
    """Per kept track, the latest successful result of each of ``analyzers`` for its current
    lyrics, any version or method (the hybrid profile combines what there is); [] for none."""
    inputs: dict[int, list[InputAnalysis]] = {
        track_id: []
        for (track_id,) in conn.execute(
            "SELECT id FROM tracks WHERE artist_slug = %s AND status = 'kept'", (artist_slug,)
        )
    }
    for track_id, *row in conn.execute(
        """SELECT DISTINCT ON (a.track_id, a.analyzer)
                  a.track_id, a.analyzer, a.analyzer_version, a.method, a.input_hash, a.result
           FROM analyses a JOIN tracks t ON t.id = a.track_id AND t.status = 'kept'
                AND a.input_hash = t.lyrics_hash
           WHERE a.artist_slug = %s AND a.analyzer = ANY(%s) AND a.status = 'ok'
           ORDER BY a.track_id, a.analyzer, a.analyzed_at DESC""",
        (artist_slug, list(analyzers)),
    ):
        inputs[track_id].append(InputAnalysis(*row))
    return inputs


def stored_rows(
    conn: psycopg.Connection, artist_slug: str, info: AnalyzerInfo
) -> dict[int, tuple[str, str, dict | None]]:
    """track id → (input_hash, status, result) of this analyzer version's rows."""
    return {
        track_id: rest
        for track_id, *rest in conn.execute(
            """SELECT track_id, input_hash, status, result FROM analyses WHERE artist_slug = %s
               AND analyzer = %s AND analyzer_version = %s AND method = %s""",
            (artist_slug, info.name, info.version, info.method),
        )
    }


@dataclass(frozen=True)
class Headline:
    """One headline number per artist: a value of one analyzer's results, aggregated over the
    latest ok result of each kept track."""

    label: str
    analyzer: str
    key: str
    aggregate: Literal["mean", "mode"]
    digits: int = 0


# the per-artist numbers `rap-pipeline run` ends with
RUN_HEADLINES = (
    Headline("rhyme density", "rule_based", "rhyme_density", "mean", 3),
    Headline("MTLD", "rule_based", "mtld", "mean", 1),
    Headline("top emotion", "emotion", "dominant_emotion", "mode"),
    Headline("valence", "hybrid", "valence", "mean", 2),
    Headline("LLM lyricism", "llm", "lyricism", "mean", 1),
)


def headline_values(
    conn: psycopg.Connection, slugs: list[str], headlines: tuple[Headline, ...] = RUN_HEADLINES
) -> tuple[dict[str, list[float | str | None]], list[str]]:
    """Per artist, the value of each headline (None where there is none), and the methods the
    emotion results came from (``lexicon:nrc`` when the lexicon stood in)."""
    columns, params = [], []
    for headline in headlines:
        if headline.aggregate == "mean":
            columns.append("avg((result->>%s)::float) FILTER (WHERE analyzer = %s)")
        else:
            columns.append(
                "mode() WITHIN GROUP (ORDER BY result->>%s) FILTER (WHERE analyzer = %s)"
            )
        params += [headline.key, headline.analyzer]
    rows = conn.execute(
        f"""WITH latest AS (
              SELECT DISTINCT ON (a.track_id, a.analyzer) a.artist_slug, a.analyzer, a.method,
                     a.result
              FROM analyses a JOIN tracks t ON t.id = a.track_id AND t.status = 'kept'
                   AND a.status = 'ok'
              WHERE a.artist_slug = ANY(%s)
              ORDER BY a.track_id, a.analyzer, a.analyzed_at DESC)
            SELECT artist_slug, array_agg(DISTINCT method) FILTER (WHERE analyzer = 'emotion'),
                   {", ".join(columns)}
            FROM latest GROUP BY artist_slug ORDER BY artist_slug""",
        [slugs, *params],
    ).fetchall()
    methods = sorted({m for row in rows for m in (row[1] or [])})
    return {row[0]: list(row[2:]) for row in rows}, methods
