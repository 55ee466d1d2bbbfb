"""Reading the tracks an analyzer still has to do, and writing its results (table
``analyses``)."""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Literal

import psycopg
from psycopg.types.json import Jsonb

from rap_pipeline.core.resources import DatabaseResource
from rap_pipeline.defs.analyses.analyzer import (
    AnalysisResult,
    AnalyzerInfo,
    TrackText,
    retry_delay_s,
)
from rap_pipeline.defs.analyses.hybrid import InputAnalysis

# a run's cheap results are written together, at least this often (seconds)
WRITE_EVERY_S = 2.0
_ROWS_OF_THIS_ANALYZER = """analyses a ON a.track_id = t.id AND a.analyzer = %(name)s
    AND a.analyzer_version = %(version)s AND a.method = %(method)s"""


def pending_tracks(
    conn: psycopg.Connection, slugs: list[str], info: AnalyzerInfo, *, force: bool = False
) -> dict[str, list[TrackText]]:
    """Per artist, the kept tracks without a current result of this analyzer version and
    method: never analyzed, lyrics changed since, or failed with a next attempt that has come.
    ``force``: failures are due at once, whatever their next attempt says."""
    pending: dict[str, list[TrackText]] = defaultdict(list)
    for slug, *track in conn.execute(
        f"""SELECT t.artist_slug, t.id, t.title, t.lyrics_clean, t.lyrics_hash
            FROM tracks t LEFT JOIN {_ROWS_OF_THIS_ANALYZER}
            WHERE t.artist_slug = ANY(%(slugs)s) AND t.status = 'kept'
              AND (a.track_id IS NULL OR a.input_hash <> t.lyrics_hash
                   OR (a.status = 'failed'
                       AND (%(force)s OR coalesce(a.next_attempt_at <= now(), true))))
            ORDER BY t.artist_slug, t.id""",
        {**_analyzer_params(info), "slugs": slugs, "force": force},
    ):
        pending[slug].append(TrackText(*track))
    return pending


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
    conn: psycopg.Connection, slugs: list[str], info: AnalyzerInfo
) -> dict[str, list[DeferredTrack]]:
    """Per artist, the kept tracks a run skips because their failure's back-off has not
    expired."""
    deferred: dict[str, list[DeferredTrack]] = defaultdict(list)
    for slug, *track in conn.execute(
        f"""SELECT t.artist_slug, t.id, t.title, a.error_class, a.attempts, a.next_attempt_at
            FROM tracks t JOIN {_ROWS_OF_THIS_ANALYZER}
            WHERE t.artist_slug = ANY(%(slugs)s) AND t.status = 'kept'
              AND a.input_hash = t.lyrics_hash AND a.status = 'failed'
              AND a.next_attempt_at > now()
            ORDER BY t.artist_slug, a.next_attempt_at, t.id""",
        {**_analyzer_params(info), "slugs": slugs},
    ):
        deferred[slug].append(DeferredTrack(*track))
    return deferred


def _analyzer_params(info: AnalyzerInfo) -> dict[str, str]:
    return {"name": info.name, "version": info.version, "method": info.method}


_COLUMNS = (
    "track_id, artist_slug, analyzer, analyzer_version, method, input_hash, status, result, "
    "error, seconds, usage, attempts, error_class"
)
# a run's results arrive by COPY (one round trip, not one statement per row), then are merged
_INCOMING = f"""
CREATE TEMP TABLE analyses_incoming AS
SELECT {_COLUMNS}, 0::float8 AS retry_delay_s FROM analyses WITH NO DATA
"""
_MERGE = f"""
INSERT INTO analyses ({_COLUMNS}, next_attempt_at)
SELECT {_COLUMNS}, now() + make_interval(secs => retry_delay_s) FROM analyses_incoming
ON CONFLICT (track_id, analyzer, analyzer_version, method) DO UPDATE SET
    input_hash = EXCLUDED.input_hash, status = EXCLUDED.status, result = EXCLUDED.result,
    error = EXCLUDED.error, seconds = EXCLUDED.seconds, usage = EXCLUDED.usage,
    attempts = EXCLUDED.attempts, error_class = EXCLUDED.error_class,
    next_attempt_at = EXCLUDED.next_attempt_at, analyzed_at = now()
"""


@dataclass
class PartitionResults:
    """What one partition's run of an analyzer produced, to be stored: ``input_hashes`` maps
    each analyzed track to the hash of what was analyzed."""

    slug: str
    input_hashes: dict[int, str]
    results: list[AnalysisResult]


def write_results(
    conn: psycopg.Connection, info: AnalyzerInfo, partitions: list[PartitionResults]
) -> None:
    """Stores one row per result, of every partition given, in one transaction. A failure
    counts the failures in a row of its track (of the same input) and is not due again before
    ``retry_delay_s`` of its class and count."""
    results = [(p, result) for p in partitions for result in p.results]
    if not results:
        return
    with conn.transaction(), conn.cursor() as cur:
        failed_before = {
            track_id: (attempts, input_hash)
            for track_id, attempts, input_hash in cur.execute(
                """SELECT track_id, attempts, input_hash FROM analyses
                   WHERE analyzer = %(name)s AND analyzer_version = %(version)s
                     AND method = %(method)s AND status = 'failed'
                     AND track_id = ANY(%(ids)s)""",
                {**_analyzer_params(info), "ids": [r.track_id for _, r in results]},
            )
        }
        cur.execute(_INCOMING)
        with cur.copy(f"COPY analyses_incoming ({_COLUMNS}, retry_delay_s) FROM STDIN") as copy:
            for partition, result in results:
                failed = result.status == "failed"
                input_hash = partition.input_hashes[result.track_id]
                attempts, hash_before = failed_before.get(result.track_id, (0, None))
                attempts = attempts + 1 if failed and hash_before == input_hash else 1
                copy.write_row(
                    (
                        result.track_id,
                        partition.slug,
                        info.name,
                        info.version,
                        info.method,
                        input_hash,
                        result.status,
                        Jsonb(result.values) if result.values is not None else None,
                        result.error,
                        max(0.0, result.seconds),
                        Jsonb(result.usage) if result.usage is not None else None,
                        attempts,
                        result.error_class if failed else None,
                        retry_delay_s(result.error_class or "", attempts) if failed else None,
                    )
                )
        cur.execute(_MERGE)
        cur.execute("DROP TABLE analyses_incoming")


class ResultWriter:
    """Stores the results of a run's partitions a few statements at a time instead of a
    transaction per partition: what a partition produced is written once ``WRITE_EVERY_S``
    passed since the last write, at the end of the run (``flush``), or at once when it cost
    money (results with usage). When a write of several partitions fails, each is written
    alone, so one partition's bad row fails that partition only (``errors``)."""

    def __init__(self, database: DatabaseResource, info: AnalyzerInfo):
        self.database, self.info = database, info
        self.errors: dict[str, Exception] = {}
        # track id → values of the ok results stored this run (checks need not read them back)
        self.written: dict[int, dict] = {}
        self._buffer: list[PartitionResults] = []
        self._written_at = time.monotonic()

    def add(self, partition: PartitionResults) -> None:
        self._buffer.append(partition)
        paid = any(result.usage is not None for result in partition.results)
        if paid or time.monotonic() - self._written_at >= WRITE_EVERY_S:
            self.flush()

    def flush(self) -> None:
        buffered, self._buffer = self._buffer, []
        self._written_at = time.monotonic()
        if not any(p.results for p in buffered):
            return
        try:
            self._write(buffered)
        except psycopg.Error as exc:
            if len(buffered) == 1:
                self.errors[buffered[0].slug] = exc
                return
            for partition in buffered:
                try:
                    self._write([partition])
                except psycopg.Error as exc:
                    self.errors[partition.slug] = exc

    def _write(self, partitions: list[PartitionResults]) -> None:
        with self.database.connect() as conn:
            write_results(conn, self.info, partitions)
        for partition in partitions:
            for result in partition.results:
                if result.status == "ok":
                    self.written[result.track_id] = result.values


@dataclass
class Coverage:
    """An artist's kept tracks, and this analyzer version's current results among them."""

    kept: int = 0
    failed: int = 0
    ok_track_ids: list[int] = field(default_factory=list)


def coverage(conn: psycopg.Connection, slugs: list[str], info: AnalyzerInfo) -> dict[str, Coverage]:
    """Per artist, what is stored now: a result is current when its input is the track's
    current lyrics."""
    covered: dict[str, Coverage] = defaultdict(Coverage)
    for slug, track_id, status in conn.execute(
        """SELECT t.artist_slug, t.id, a.status
           FROM tracks t LEFT JOIN analyses a ON a.track_id = t.id AND a.analyzer = %(name)s
                AND a.analyzer_version = %(version)s AND a.method = %(method)s
                AND a.input_hash = t.lyrics_hash
           WHERE t.artist_slug = ANY(%(slugs)s) AND t.status = 'kept'""",
        {**_analyzer_params(info), "slugs": slugs},
    ):
        entry = covered[slug]
        entry.kept += 1
        entry.failed += status == "failed"
        if status == "ok":
            entry.ok_track_ids.append(track_id)
    return covered


def stored_results(
    conn: psycopg.Connection, info: AnalyzerInfo, track_ids: list[int]
) -> dict[int, dict]:
    """Track id → values of this analyzer version's ok result of each of ``track_ids``."""
    return dict(
        conn.execute(
            """SELECT track_id, result FROM analyses
               WHERE track_id = ANY(%(ids)s) AND analyzer = %(name)s
                 AND analyzer_version = %(version)s AND method = %(method)s
                 AND status = 'ok'""",
            {**_analyzer_params(info), "ids": track_ids},
        ).fetchall()
    )


def latest_inputs(
    conn: psycopg.Connection, slugs: list[str], analyzers: tuple[str, ...]
) -> dict[str, dict[int, list[InputAnalysis]]]:
    """Per artist and kept track, the latest successful result of each of ``analyzers`` for
    its current lyrics, any version or method (the hybrid profile combines what there is);
    [] for none."""
    inputs: dict[str, dict[int, list[InputAnalysis]]] = defaultdict(dict)
    for slug, track_id in conn.execute(
        "SELECT artist_slug, id FROM tracks WHERE artist_slug = ANY(%s) AND status = 'kept'",
        (slugs,),
    ):
        inputs[slug][track_id] = []
    for slug, track_id, *row in conn.execute(
        """SELECT DISTINCT ON (a.track_id, a.analyzer) a.artist_slug,
                  a.track_id, a.analyzer, a.analyzer_version, a.method, a.input_hash, a.result
           FROM analyses a JOIN tracks t ON t.id = a.track_id AND t.status = 'kept'
                AND a.input_hash = t.lyrics_hash
           WHERE a.artist_slug = ANY(%s) AND a.analyzer = ANY(%s) AND a.status = 'ok'
           ORDER BY a.track_id, a.analyzer, a.analyzed_at DESC""",
        (slugs, list(analyzers)),
    ):
        inputs[slug][track_id].append(InputAnalysis(*row))
    return inputs


def stored_rows(
    conn: psycopg.Connection, slugs: list[str], info: AnalyzerInfo
) -> dict[str, dict[int, tuple[str, str]]]:
    """Per artist, track id → (input_hash, status) of this analyzer version's rows."""
    stored: dict[str, dict[int, tuple[str, str]]] = defaultdict(dict)
    for slug, track_id, input_hash, status in conn.execute(
        """SELECT artist_slug, track_id, input_hash, status FROM analyses
           WHERE artist_slug = ANY(%s) AND analyzer = %s AND analyzer_version = %s
             AND method = %s""",
        (slugs, info.name, info.version, info.method),
    ):
        stored[slug][track_id] = (input_hash, status)
    return stored


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
