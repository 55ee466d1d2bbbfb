"""What a predictor asset does, without Dagster: check the features for leakage, decide whether
there is enough (and new) data, evaluate on held-out artists against the baselines and the
promoted version, train on everything, register, and promote only a version that earned it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import psycopg

from rap_pipeline.defs.analyses.llm.schema import SCORE_ASPECTS
from rap_pipeline.defs.predictors.evaluation import (
    BASELINES,
    Candidate,
    Evaluation,
    clone_recipe,
    evaluate,
    fit_final,
    target_copies,
)
from rap_pipeline.defs.predictors.features import (
    EMBEDDING_ASSET,
    TrackTable,
    feature_asset,
)
from rap_pipeline.defs.predictors.registry import (
    Artifact,
    ModelVersion,
    RegistryError,
    latest_version,
    load_artifact,
    promoted_version,
    register,
)

LYRIC_FEATURE_ASSETS = ("rule_based_analysis", "emotion_analysis", EMBEDDING_ASSET)


@dataclass(frozen=True)
class PredictorSpec:
    name: str  # the asset's name, and the model's in the registry
    version: str  # the asset's code version: a change retrains even on unchanged data
    labels: tuple[str, ...]  # columns of the track table it predicts
    label_asset: str  # the asset that writes the labels
    target: str  # what the labels are, for people
    feature_assets: tuple[str, ...] = LYRIC_FEATURE_ASSETS
    min_artists: int = 5
    min_tracks: int = 40


POPULARITY = PredictorSpec(
    name="popularity_predictor",
    version="1",
    labels=("popularity",),
    label_asset="spotify_tracks",
    target="Spotify popularity (0–100) of matched tracks",
)
LLM_SCORES = PredictorSpec(
    name="llm_score_predictor",
    version="1",
    labels=tuple(f"llm_{aspect}" for aspect in SCORE_ASPECTS),
    label_asset="llm_analysis",
    target="the LLM analyzer's 1–10 scores (" + ", ".join(SCORE_ASPECTS) + ")",
)
PREDICTORS = (POPULARITY, LLM_SCORES)


def feature_columns(table: TrackTable, spec: PredictorSpec) -> list[str]:
    return [c for c in table.feature_columns if feature_asset(c) in spec.feature_assets]


def rule_candidates(features: list[str]) -> list[int]:
    """The features the one-feature baseline may pick: named metrics, not embedding dimensions."""
    return [i for i, c in enumerate(features) if feature_asset(c) != EMBEDDING_ASSET]


@dataclass
class Leakage:
    """Features that carry the target: by lineage (their asset is, or derives from, the label's
    asset in the asset graph) or by value (they rank with a label almost perfectly)."""

    by_lineage: dict[str, list[str]] = field(default_factory=dict)  # feature asset -> path
    by_value: dict[str, float] = field(default_factory=dict)  # feature -> |Spearman|

    @property
    def found(self) -> bool:
        return bool(self.by_lineage or self.by_value)


def find_leakage(
    table: TrackTable,
    spec: PredictorSpec,
    ancestors: Callable[[str], set[str]],
) -> Leakage:
    """``ancestors(asset)``: the asset and every asset upstream of it, from the asset graph."""
    leakage = Leakage()
    for asset in sorted({feature_asset(c) for c in feature_columns(table, spec)}):
        if spec.label_asset in ancestors(asset):
            leakage.by_lineage[asset] = sorted(ancestors(asset))
    rows = table.labelled(list(spec.labels))
    features = feature_columns(table, spec)
    if len(rows) >= 3 and features:
        leakage.by_value = target_copies(
            rows[features].to_numpy(float), rows[list(spec.labels)].to_numpy(float), features
        )
    return leakage


@dataclass
class TrainingOutcome:
    status: Literal["trained", "skipped", "unchanged", "leakage"]
    reason: str
    leakage: Leakage
    model: ModelVersion | None = None  # the version trained (or, unchanged, the latest)
    promoted: ModelVersion | None = None  # the promoted version after this run
    evaluation: Evaluation | None = None
    tracks: int = 0
    artists: int = 0


def _challengers(
    artifacts_dir: Path, promoted: ModelVersion | None, features: list[str]
) -> tuple[dict[str, Candidate], str]:
    """The promoted version's recipe, to cross-validate on today's data beside the new one."""
    if promoted is None:
        return {}, "no version was promoted before"
    try:
        artifact = load_artifact(artifacts_dir, promoted)
    except RegistryError as exc:
        return {}, f"the promoted {promoted.label} cannot be compared ({exc})"
    missing = [f for f in artifact.features if f not in features]
    if missing:
        return {}, f"the promoted {promoted.label} reads features no longer present ({missing[:3]})"
    columns = [features.index(f) for f in artifact.features]
    name = f"promoted v{promoted.version}"
    return {name: Candidate(clone_recipe(artifact.pipeline), columns)}, ""


def _decision(evaluation: Evaluation, challengers: dict, note: str) -> tuple[bool, str]:
    missed = [b for b in BASELINES if not evaluation.beats(b)]
    if missed:
        gains = ", ".join(f"{b}: {evaluation.improvement[b]}" for b in missed)
        return (
            False,
            f"not promoted: does not beat the {' and the '.join(missed)} (MAE gain {gains})",
        )
    for name in challengers:
        if evaluation.improvement[name].value < 0:
            return False, (
                f"not promoted: worse than the {name} on held-out artists "
                f"(MAE gain {evaluation.improvement[name]})"
            )
    compared = f"not worse than the {next(iter(challengers))}" if challengers else note
    return True, f"promoted: beats both baselines on held-out artists; {compared}"


def train_predictor(
    conn: psycopg.Connection,
    artifacts_dir: Path,
    table: TrackTable,
    spec: PredictorSpec,
    ancestors: Callable[[str], set[str]],
) -> TrainingOutcome:
    labels = list(spec.labels)
    leakage = find_leakage(table, spec, ancestors)
    promoted = promoted_version(conn, spec.name)
    if leakage.found:
        return TrainingOutcome(
            "leakage", "features carry the target; not trained", leakage, None, promoted
        )
    rows = table.labelled(labels)
    features = feature_columns(table, spec)
    n_artists = rows["artist_slug"].nunique()
    counts = {"tracks": len(rows), "artists": n_artists}
    if not features or n_artists < spec.min_artists or len(rows) < spec.min_tracks:
        reason = (
            f"too little data: {len(rows)} tracks of {n_artists} artists have "
            f"{spec.target} and features (needs {spec.min_tracks} tracks of "
            f"{spec.min_artists} artists); no model was trained and no score is reported"
        )
        return TrainingOutcome("skipped", reason, leakage, None, promoted, **counts)
    data_hash = table.data_hash(labels)
    latest = latest_version(conn, spec.name)
    if latest and latest.code_version == spec.version and latest.training["data_hash"] == data_hash:
        reason = f"inputs unchanged since {latest.label}; not retrained"
        return TrainingOutcome("unchanged", reason, leakage, latest, promoted, **counts)

    X = rows[features].to_numpy(dtype=float)
    y = rows[labels].to_numpy(dtype=float)
    groups = rows["artist_slug"].to_numpy()
    challengers, note = _challengers(artifacts_dir, promoted, features)
    evaluation = evaluate(
        X,
        y,
        groups,
        targets=labels,
        feature_names=features,
        rule_candidates=rule_candidates(features),
        challengers=challengers,
    )
    promote, decision = _decision(evaluation, challengers, note)
    metrics = {
        **evaluation.as_dict(),
        "beats_baselines": all(evaluation.beats(b) for b in BASELINES),
    }
    model = register(
        conn,
        artifacts_dir,
        name=spec.name,
        code_version=spec.version,
        target=spec.target,
        artifact=Artifact(fit_final(X, y, groups), features, labels, dict(table.sources)),
        training={
            "tracks": len(rows),
            "artists": int(n_artists),
            "partitions": sorted(rows["artist_slug"].unique().tolist()),
            "data_hash": data_hash,
            "sources": dict(table.sources),
            "label_source": table.llm_labels_source if spec.label_asset == "llm_analysis" else None,
        },
        metrics=metrics,
        promote=promote,
        decision=decision,
    )
    return TrainingOutcome(
        "trained",
        decision,
        leakage,
        model,
        model if promote else promoted,
        evaluation,
        **counts,
    )


def held_out_mae(model: ModelVersion) -> float:
    """The model's held-out MAE (averaged over its targets), as registered."""
    return float(model.metrics["scores"]["model"]["mae"]["value"])


def baseline_mae(model: ModelVersion) -> dict[str, float]:
    return {b: float(model.metrics["scores"][b]["mae"]["value"]) for b in BASELINES}
