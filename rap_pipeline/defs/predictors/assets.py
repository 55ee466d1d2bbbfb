"""Trained predictors: unpartitioned assets over every artist partition, retrained at most
daily when their inputs changed; each version is registered, and promoted only when its
held-out evaluation earned it (see training.py)."""

import base64
import functools
import warnings
from pathlib import Path

import dagster as dg

from rap_pipeline.core.automation import retrain_daily_when_inputs_changed
from rap_pipeline.core.resources import DatabaseResource
from rap_pipeline.defs.embeddings.resources import EmbeddingModelResource
from rap_pipeline.defs.predictors.checks import predictor_check_results, predictor_check_specs
from rap_pipeline.defs.predictors.evaluation import MEAN_BASELINE
from rap_pipeline.defs.predictors.features import load_track_table
from rap_pipeline.defs.predictors.resources import ArtifactsResource
from rap_pipeline.defs.predictors.store import (
    latest_trend_report,
    release_years,
    write_trend_report,
)
from rap_pipeline.defs.predictors.training import (
    LLM_SCORES,
    POPULARITY,
    PredictorSpec,
    TrainingOutcome,
    baseline_mae,
    held_out_mae,
    train_predictor,
)
from rap_pipeline.defs.predictors.trends import (
    ARTISTS_SHOWN,
    build_report,
    markdown_table,
    save_figures,
)
from rap_pipeline.defs.predictors.trends import VERSION as TRENDS_VERSION
from rap_pipeline.defs.predictors.trends import data_hash as trends_data_hash


@functools.cache
def _declared_deps() -> dict[str, frozenset[str]]:
    """Each asset's deps as the code location declares them (the asset graph's edges)."""
    import rap_pipeline.defs

    deps: dict[str, frozenset[str]] = {}
    with warnings.catch_warnings():  # load_defs: see definitions.py for why not its successor
        warnings.simplefilter("ignore", DeprecationWarning)
        definitions = dg.load_defs(defs_root=rap_pipeline.defs)
    for definition in definitions.assets or []:
        if isinstance(definition, dg.AssetsDefinition):
            for key, upstream in definition.asset_deps.items():
                deps[key.to_user_string()] = frozenset(k.to_user_string() for k in upstream)
    return deps


def asset_ancestors(asset: str) -> set[str]:
    """The asset and every asset upstream of it in the asset graph."""
    deps, found, queue = _declared_deps(), set(), [asset]
    while queue:
        name = queue.pop()
        if name not in found:
            found.add(name)
            queue.extend(deps.get(name, ()))
    return found


def _metadata(outcome: TrainingOutcome) -> dict:
    metadata: dict = {
        "status": outcome.status,
        "reason": outcome.reason,
        "labelled_tracks": outcome.tracks,
        "labelled_artists": outcome.artists,
        "promoted_version": outcome.promoted.label if outcome.promoted else "none",
    }
    model = outcome.model
    if model is not None:
        metadata |= {
            "version": model.label,
            "promoted": model.promoted,
            "decision": model.decision,
            "features": len(model.features),
            "data_hash": model.training["data_hash"][:16],
            "held_out_mae": held_out_mae(model),
            "mean_baseline_mae": baseline_mae(model)[MEAN_BASELINE],
        }
    if outcome.evaluation is not None:
        metadata["evaluation"] = dg.MetadataValue.md(outcome.evaluation.markdown())
        metadata["one_feature_rule_picked"] = outcome.evaluation.rule_features
    return metadata


def train(
    context: dg.AssetExecutionContext,
    database: DatabaseResource,
    artifacts: ArtifactsResource,
    embedding_model: EmbeddingModelResource,
    spec: PredictorSpec,
) -> dg.MaterializeResult:
    with database.connect() as conn:
        table = load_track_table(conn, embedding_model.model_id)
        outcome = train_predictor(conn, artifacts.path, table, spec, asset_ancestors)
    context.log.info("%s: %s", spec.name, outcome.reason)
    return dg.MaterializeResult(
        metadata=_metadata(outcome), check_results=predictor_check_results(spec, outcome)
    )


_AUTOMATION = retrain_daily_when_inputs_changed()


def predictor_asset(spec: PredictorSpec, description: str) -> dg.AssetsDefinition:
    """A predictor's asset: its deps are the asset of its labels and those of its features,
    so the asset graph shows exactly what it learns from."""

    @dg.asset(
        name=spec.name,
        group_name="predictors",
        deps=[spec.label_asset, *spec.feature_assets],
        kinds={"scikitlearn"},
        code_version=spec.version,
        check_specs=predictor_check_specs(spec),
        automation_condition=_AUTOMATION,
        description=description
        + "\n\nAutomation: daily after 03:00 UTC if an input partition changed (or the code "
        "version).",
    )
    def predictor(
        context: dg.AssetExecutionContext,
        database: DatabaseResource,
        artifacts: ArtifactsResource,
        embedding_model: EmbeddingModelResource,
    ) -> dg.MaterializeResult:
        return train(context, database, artifacts, embedding_model, spec)

    return predictor


popularity_predictor = predictor_asset(
    POPULARITY,
    """Spotify popularity (0–100) of a track from its lyrics alone: rule-based metrics,
emotions and the lyric embedding, by ridge regression. Evaluated on artists it never saw,
against the mean and the best one-feature rule, with bootstrap intervals; registered in
``models``, promoted only when it beats both and the promoted version.""",
)
llm_score_predictor = predictor_asset(
    LLM_SCORES,
    """A cheap stand-in for the paid LLM analyzer: its four 1–10 scores predicted from the
rule-based metrics, emotions and lyric embedding, trained only where LLM scores exist (one
prompt version and model). Evaluated and promoted like the popularity predictor;
`rap-pipeline predict` then scores any lyrics without an LLM call, and says so.""",
)


def _image(path: Path, title: str) -> dg.MetadataValue:
    """A plot the UI shows in the materialization view (markdown with the PNG inline)."""
    encoded = base64.b64encode(path.read_bytes()).decode()
    return dg.MetadataValue.md(f"![{title}](data:image/png;base64,{encoded})")


@dg.asset(
    group_name="predictors",
    deps=["tracks", "rule_based_analysis", "emotion_analysis", "lyric_embeddings"],
    kinds={"pandas", "scikitlearn"},
    code_version=TRENDS_VERSION,
    check_specs=[
        dg.AssetCheckSpec(
            "trends_cover_every_release_year",
            asset="trends",
            description="The by-year table has a row for every release year of the kept "
            "tracks in the database.",
        )
    ],
    automation_condition=_AUTOMATION,
)
def trends(
    context: dg.AssetExecutionContext,
    database: DatabaseResource,
    artifacts: ArtifactsResource,
    embedding_model: EmbeddingModelResource,
) -> dg.MaterializeResult:
    """Themes, emotions and technique metrics by release year and by artist; TF-IDF terms
    that rise and fall over the years; style clusters (k-means over lyric embeddings and
    technique metrics, k by silhouette) drawn in 2-D by PCA. Tables in ``trend_reports``,
    PNG plots under the data directory, both shown here.

    Automation: daily after 03:00 UTC if an input partition changed (or the code version)."""
    with database.connect() as conn:
        table = load_track_table(conn, embedding_model.model_id)
        years = release_years(conn)
        digest = trends_data_hash(table)
        latest = latest_trend_report(conn)
        if (
            latest
            and latest.data_hash == digest
            and all((artifacts.path / p).is_file() for p in latest.plots.values())
        ):
            stored, recomputed = latest, False
        else:
            report = build_report(table)
            folder = Path("trends") / digest[:16]
            paths = save_figures(report, artifacts.path / folder)
            plots = {name: (folder / path.name).as_posix() for name, path in paths.items()}
            notes = [{"part": part, "why": why} for part, why in report.notes.items()]
            tables = {**report.tables, "notes": notes}
            stored, recomputed = write_trend_report(conn, digest, tables, plots), True
    covered = {row["release_year"] for row in stored.tables["by_year"]}
    missing = [year for year in years if year not in covered]
    by_year = stored.tables["by_year"]
    metadata = {
        "report_id": stored.id,
        "recomputed": recomputed,
        "tracks": len(table.frame),
        "release_years": f"{years[0]}–{years[-1]} ({len(years)})" if years else "none",
        "by_year": dg.MetadataValue.md(markdown_table(by_year, _summary_columns(by_year))),
        "by_artist": dg.MetadataValue.md(
            markdown_table(
                sorted(stored.tables["by_artist"], key=lambda r: -r["tracks"]),
                _summary_columns(stored.tables["by_artist"]),
                limit=ARTISTS_SHOWN,
            )
        ),
        "terms": dg.MetadataValue.md(markdown_table(stored.tables["terms"])),
        "clusters": dg.MetadataValue.md(markdown_table(stored.tables["clusters"])),
        "not_computed": {row["part"]: row["why"] for row in stored.tables["notes"]} or "none",
    }
    for name, relative in stored.plots.items():
        metadata[f"plot_{name}"] = _image(artifacts.path / relative, name.replace("_", " "))
        metadata[f"plot_{name}_path"] = dg.MetadataValue.path(str(artifacts.path / relative))
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[
            dg.AssetCheckResult(
                check_name="trends_cover_every_release_year",
                passed=not missing,
                metadata={"years_in_database": len(years), "missing_years": missing or "none"},
            )
        ],
    )


def _summary_columns(rows: list[dict]) -> list[str]:
    """The first columns of a by-year or by-artist table: its key, tracks, a few headlines."""
    if not rows:
        return []
    wanted = ["rhyme_density", "mtld", "emotion_joy", "emotion_sadness", "emotion_anger"]
    key, *rest = list(rows[0])
    return [key, "tracks", *[c for c in wanted if c in rest]]
