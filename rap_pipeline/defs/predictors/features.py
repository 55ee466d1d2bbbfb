"""The table the predictors and trends learn from: one row per kept track, with its rule-based
and emotion metrics, its lyric embedding, and the labels that exist for it (Spotify popularity,
LLM scores), read from PostgreSQL into pandas.

Every feature column names the asset it comes from (``<asset>:<name>``), so the leakage check
can follow the asset graph from a feature back to the target."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import psycopg

from rap_pipeline.defs.analyses.llm.schema import SCORE_ASPECTS
from rap_pipeline.defs.embeddings.store import use_vectors

# analyzer name -> the asset whose rows it writes
ANALYSIS_ASSETS = {"rule_based": "rule_based_analysis", "emotion": "emotion_analysis"}
EMBEDDING_ASSET = "lyric_embeddings"
# what the predictors learn: label column -> the asset that writes it
LABELS = {
    "popularity": "spotify_tracks",
    **{f"llm_{aspect}": "llm_analysis" for aspect in SCORE_ASPECTS},
}


def feature_asset(column: str) -> str:
    """The asset a feature column comes from: ``rule_based_analysis:mtld`` → rule_based_analysis."""
    return column.split(":", 1)[0]


@dataclass
class TrackTable:
    """Kept tracks with their features and labels (NaN where a track has none)."""

    frame: pd.DataFrame  # index track_id; artist_slug, title, release_year, lyrics_hash, …
    feature_columns: list[str]
    # how each feature source was computed: analyzer version/method, embedding model id
    sources: dict[str, str] = field(default_factory=dict)
    # the LLM prompt version/model whose scores are the llm_* labels
    llm_labels_source: str | None = None

    def labelled(self, labels: list[str]) -> pd.DataFrame:
        """Rows that have every one of ``labels`` and a value for at least one feature."""
        frame = self.frame.dropna(subset=labels)
        return frame[frame[self.feature_columns].notna().any(axis=1)]

    def data_hash(self, labels: list[str]) -> str:
        """A fingerprint of what training on ``labels`` would see: tracks, their lyrics, labels
        and feature sources."""
        rows = self.labelled(labels)
        digest = hashlib.sha256(repr(sorted(self.sources.items())).encode())
        digest.update(repr(self.feature_columns).encode())
        if any(label.startswith("llm_") for label in labels):
            digest.update(repr(self.llm_labels_source).encode())
        for track_id, row in rows[["lyrics_hash", *labels]].sort_index().iterrows():
            digest.update(f"{track_id}|{row.iloc[0]}|{row.iloc[1:].tolist()}\n".encode())
        return digest.hexdigest()


def numeric_items(result: dict) -> dict[str, float]:
    return {
        key: float(value)
        for key, value in result.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }


# restricts a query over kept tracks ``t`` to %(ids)s, when given
_ONLY = "(%(ids)s::bigint[] IS NULL OR t.id = ANY(%(ids)s))"


def _ids(track_ids: pd.Index, only: bool) -> dict:
    return {"ids": track_ids.tolist() if only else None}


def _analysis_columns(
    conn: psycopg.Connection, analyzer: str, track_ids: pd.Index, only: bool
) -> tuple[pd.DataFrame, str | None]:
    """The numeric metrics of each track's analysis by ``analyzer`` for its current lyrics, from
    the one version/method most tracks have (methods are not mixed: the emotion model and its
    lexicon stand-in measure different things)."""
    rows = conn.execute(
        f"""SELECT a.track_id, a.analyzer_version || '/' || a.method, a.result
           FROM analyses a JOIN tracks t ON t.id = a.track_id AND t.status = 'kept'
                AND a.input_hash = t.lyrics_hash
           WHERE a.analyzer = %(analyzer)s AND a.status = 'ok' AND {_ONLY}""",
        {"analyzer": analyzer, **_ids(track_ids, only)},
    ).fetchall()
    if not rows:
        return pd.DataFrame(index=track_ids), None
    source = Counter(version for _, version, _ in rows).most_common(1)[0][0]
    asset = ANALYSIS_ASSETS.get(analyzer, f"{analyzer}_analysis")
    records = {
        track_id: {f"{asset}:{k}": v for k, v in numeric_items(result).items()}
        for track_id, version, result in rows
        if version == source
    }
    frame = pd.DataFrame.from_dict(records, orient="index").reindex(track_ids)
    return frame[sorted(frame.columns)], source


def _embedding_columns(
    conn: psycopg.Connection, model_id: str, track_ids: pd.Index, only: bool
) -> pd.DataFrame:
    use_vectors(conn)
    rows = conn.execute(
        f"""SELECT e.track_id, e.embedding FROM track_embeddings e
           JOIN tracks t ON t.id = e.track_id AND t.status = 'kept'
                AND e.lyrics_hash = t.lyrics_hash
           WHERE e.model_id = %(model)s AND {_ONLY} ORDER BY e.track_id""",
        {"model": model_id, **_ids(track_ids, only)},
    ).fetchall()
    if not rows:
        return pd.DataFrame(index=track_ids)
    vectors = np.stack([vector.to_numpy() for _, vector in rows]).astype(np.float32)
    columns = [f"{EMBEDDING_ASSET}:{i:03d}" for i in range(vectors.shape[1])]
    frame = pd.DataFrame(vectors, index=[track_id for track_id, _ in rows], columns=columns)
    return frame.reindex(track_ids)


def _labels(
    conn: psycopg.Connection, track_ids: pd.Index, only: bool
) -> tuple[pd.DataFrame, str | None]:
    popularity = dict(
        conn.execute(
            f"""SELECT t.id, s.popularity FROM spotify_tracks s JOIN tracks t ON t.id = s.track_id
                WHERE s.status = 'matched' AND s.popularity IS NOT NULL AND {_ONLY}""",
            _ids(track_ids, only),
        ).fetchall()
    )
    llm_rows = conn.execute(
        f"""SELECT a.track_id, a.analyzer_version || '/' || a.method, a.result
           FROM analyses a JOIN tracks t ON t.id = a.track_id AND t.status = 'kept'
                AND a.input_hash = t.lyrics_hash
           WHERE a.analyzer = 'llm' AND a.status = 'ok' AND {_ONLY}""",
        _ids(track_ids, only),
    ).fetchall()
    # one prompt version and model: scores of different prompts or models are not one label
    llm_source = Counter(v for _, v, _ in llm_rows).most_common(1)[0][0] if llm_rows else None
    llm = {
        track_id: {f"llm_{aspect}": float(result[aspect]) for aspect in SCORE_ASPECTS}
        for track_id, version, result in llm_rows
        if version == llm_source and all(aspect in result for aspect in SCORE_ASPECTS)
    }
    frame = pd.DataFrame(index=track_ids, columns=list(LABELS), dtype=float)
    frame["popularity"] = pd.Series(popularity, dtype=float).reindex(track_ids)
    if llm:
        scores = pd.DataFrame.from_dict(llm, orient="index").reindex(track_ids)
        for column in scores.columns:
            frame[column] = scores[column]
    return frame, llm_source


def load_track_table(
    conn: psycopg.Connection, embedding_model_id: str, track_ids: list[int] | None = None
) -> TrackTable:
    """Every kept track (or those of ``track_ids``) with its features and labels."""
    only = track_ids is not None
    tracks = pd.DataFrame(
        conn.execute(
            f"""SELECT id, artist_slug, title, release_year, lyrics_hash, lyrics_clean
               FROM tracks t WHERE status = 'kept' AND {_ONLY} ORDER BY id""",
            {"ids": track_ids},
        ).fetchall(),
        columns=["track_id", "artist_slug", "title", "release_year", "lyrics_hash", "lyrics"],
    ).set_index("track_id")
    parts, sources = [tracks], {}
    for analyzer in ANALYSIS_ASSETS:
        columns, source = _analysis_columns(conn, analyzer, tracks.index, only)
        parts.append(columns)
        if source:
            sources[analyzer] = source
    embeddings = _embedding_columns(conn, embedding_model_id, tracks.index, only)
    if len(embeddings.columns):
        sources["embedding"] = embedding_model_id
    parts.append(embeddings)
    labels, llm_source = _labels(conn, tracks.index, only)
    feature_columns = [c for part in parts[1:] for c in part.columns]
    frame = pd.concat([*parts, labels], axis=1)
    return TrackTable(frame, feature_columns, sources, llm_source)
