"""Scoring tracks and new lyrics with the registered predictors, from Python (the CLI and the
HTTP API use this): the promoted version of each predictor, or, where none earned promotion,
the latest version, flagged as such. New lyrics get the features the pipeline would give
them: cleaned as tracks are, then the same analyzers and embedding model. No LLM call."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg

from rap_pipeline.core.database import connect
from rap_pipeline.core.settings import Settings, get_settings
from rap_pipeline.defs.predictors.features import (
    EMBEDDING_ASSET,
    TrackTable,
    load_track_table,
    numeric_items,
)
from rap_pipeline.defs.predictors.registry import (
    Artifact,
    ModelVersion,
    latest_version,
    load_artifact,
    promoted_version,
)
from rap_pipeline.defs.predictors.training import (
    LYRIC_FEATURE_ASSETS,
    PREDICTORS,
    baseline_mae,
    held_out_mae,
)
from rap_pipeline.search import _database_url, find_track


class PredictionError(ValueError):
    pass


@dataclass(frozen=True)
class Prediction:
    model: str
    version: int
    promoted: bool
    target: str
    values: dict[str, float]  # label -> predicted value
    held_out_mae: float  # on artists the model never saw (averaged over its labels)
    baseline_mae: dict[str, float]
    note: str  # the registry's decision: why it is, or is not, promoted

    def as_dict(self) -> dict:
        return asdict(self)


def artifacts_dir(settings: Settings) -> Path:
    return settings.resolved_data_dir / "artifacts"


def serving_versions(conn: psycopg.Connection) -> list[ModelVersion]:
    """Per predictor: the promoted version, else the latest (which did not earn promotion)."""
    found = []
    for spec in PREDICTORS:
        version = promoted_version(conn, spec.name) or latest_version(conn, spec.name)
        if version is not None:
            found.append(version)
    if not found:
        raise PredictionError(
            "no predictor is trained yet: run the pipeline (`rap-pipeline run`), or materialize "
            "popularity_predictor / llm_score_predictor"
        )
    return found


# artifacts by (directory, file, SHA-256): one per version served in this process
_LOADED: dict[tuple[str, str, str], Artifact] = {}


def _loaded(directory: Path, model: ModelVersion) -> Artifact:
    """A registered version's artifact, checked and unpickled once per process (versions are
    immutable: a new model is a new version), not on every request."""
    key = (str(directory), model.artifact_path, model.artifact_sha256)
    if key not in _LOADED:
        _LOADED[key] = load_artifact(directory, model)
    return _LOADED[key]


def _predict(models: list[ModelVersion], table: TrackTable, directory: Path) -> list[Prediction]:
    predictions = []
    for model in models:
        artifact = _loaded(directory, model)
        changed = {
            source: (value, table.sources.get(source))
            for source, value in artifact.sources.items()
            if table.sources.get(source) != value
        }
        if changed:
            detail = "; ".join(f"{s}: trained on {a}, here {b}" for s, (a, b) in changed.items())
            raise PredictionError(f"{model.label} was trained on other features ({detail})")
        row = table.frame.reindex(columns=artifact.features).iloc[[0]].to_numpy(dtype=float)
        values = np.asarray(artifact.pipeline.predict(row), dtype=float).reshape(-1)
        predictions.append(
            Prediction(
                model=model.name,
                version=model.version,
                promoted=model.promoted,
                target=model.target,
                values={
                    label: round(float(v), 3)
                    for label, v in zip(artifact.targets, values, strict=True)
                },
                held_out_mae=round(held_out_mae(model), 3),
                baseline_mae={k: round(v, 3) for k, v in baseline_mae(model).items()},
                note=model.decision,
            )
        )
    return predictions


def _require_features(table: TrackTable, what: str) -> None:
    present = {c.split(":", 1)[0] for c in table.feature_columns if table.frame[c].notna().any()}
    missing = [asset for asset in LYRIC_FEATURE_ASSETS if asset not in present]
    if missing:
        raise PredictionError(f"{what} has no {', '.join(missing)} yet: run the pipeline first")


def predict_track(
    track: str, *, settings: Settings | None = None, database_url: str | None = None
) -> tuple[dict, list[Prediction]]:
    """The track (id, "artist/title" or a title) and its predictions."""
    settings = settings or get_settings()
    with connect(_database_url(database_url)) as conn:
        track_id = find_track(conn, track)
        table = load_track_table(conn, settings.embedding_model, [track_id])
        if table.frame.empty:
            raise PredictionError(f"track {track_id} is not a kept track")
        models = serving_versions(conn)
        _require_features(table, f"track {track_id}")
    row = table.frame.iloc[0]
    info = {"track_id": track_id, "artist": row["artist_slug"], "title": row["title"]}
    return info, _predict(models, table, artifacts_dir(settings))


def lyrics_features(lyrics: str, settings: Settings) -> TrackTable:
    """The features the pipeline would store for these lyrics, as a one-row track table."""
    from rap_pipeline.defs.analyses.analyzer import TrackText
    from rap_pipeline.defs.analyses.rule_based import RuleBasedAnalyzer
    from rap_pipeline.defs.embeddings.store import PendingTrack, embed_tracks
    from rap_pipeline.defs.resources import build_resources
    from rap_pipeline.defs.tracks.cleaning import clean_lyrics, lyrics_hash

    cleaned = clean_lyrics(lyrics).text
    if not cleaned.strip():
        raise PredictionError("the lyrics are empty once cleaned")
    resources = build_resources(settings)
    text = TrackText(0, "", cleaned, lyrics_hash(cleaned))
    values, sources = {}, {}
    rule_based = RuleBasedAnalyzer()
    emotion, _ = resources["emotion_model"].load()
    for asset, analyzer in (("rule_based_analysis", rule_based), ("emotion_analysis", emotion)):
        (result,) = analyzer.analyze([text])
        if result.status != "ok":
            raise PredictionError(f"{analyzer.info.name} failed on these lyrics: {result.error}")
        values |= {f"{asset}:{k}": v for k, v in numeric_items(result.values).items()}
        sources[analyzer.info.name] = f"{analyzer.info.version}/{analyzer.info.method}"
    embedding_model = resources["embedding_model"]
    model = embedding_model.load()
    (embedded,), _ = embed_tracks(model, [PendingTrack(0, cleaned, text.lyrics_hash, None)])
    values |= {f"{EMBEDDING_ASSET}:{i:03d}": float(v) for i, v in enumerate(embedded.vector)}
    sources["embedding"] = model.model_id
    frame = pd.DataFrame([values], index=pd.Index([0], name="track_id"))
    return TrackTable(frame, list(values), sources)


def predict_lyrics(
    lyrics: str, *, settings: Settings | None = None, database_url: str | None = None
) -> list[Prediction]:
    """Predictions for lyrics that are not in the corpus (nothing is written)."""
    settings = settings or get_settings()
    with connect(_database_url(database_url)) as conn:
        serving_versions(conn)  # fails early, before the models run, when nothing is trained
    return predict_features(lyrics_features(lyrics, settings), settings, database_url)


def predict_features(
    table: TrackTable, settings: Settings, database_url: str | None = None
) -> list[Prediction]:
    """Predictions for a one-row table of features (``lyrics_features``)."""
    with connect(_database_url(database_url)) as conn:
        models = serving_versions(conn)
    return _predict(models, table, artifacts_dir(settings))
