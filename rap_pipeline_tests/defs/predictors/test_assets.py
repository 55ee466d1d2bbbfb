"""The predictor and trends assets on a generated corpus in the real database: a real signal
is found, promoted and served; noise is registered but not promoted; too little data trains
nothing; leakage is caught by lineage; trends cover every year and find the rising word."""

import dataclasses
from pathlib import Path

import dagster as dg
import psycopg

from rap_pipeline.core.resources import DatabaseResource
from rap_pipeline.defs.embeddings.resources import EmbeddingModelResource
from rap_pipeline.defs.predictors.assets import (
    asset_ancestors,
    llm_score_predictor,
    popularity_predictor,
    trends,
)
from rap_pipeline.defs.predictors.features import load_track_table
from rap_pipeline.defs.predictors.registry import list_versions, load_artifact, promoted_version
from rap_pipeline.defs.predictors.resources import ArtifactsResource
from rap_pipeline.defs.predictors.training import LLM_SCORES, find_leakage
from rap_pipeline_tests.defs.predictors.generated import (
    EMBEDDING_MODEL,
    FALLING,
    RISING,
    seed_corpus,
    set_popularity_noise,
)


def materialize(database_url: str, artifacts: Path, assets):
    return dg.materialize(
        assets,
        resources={
            "database": DatabaseResource(url=database_url),
            "artifacts": ArtifactsResource(directory=str(artifacts)),
            "embedding_model": EmbeddingModelResource(model_id=EMBEDDING_MODEL),
        },
    )


def metadata(result, asset: str) -> dict:
    (materialization,) = result.asset_materializations_for_node(asset)
    return {k: v.value for k, v in materialization.metadata.items()}


def checks(result) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def test_a_real_signal_is_trained_promoted_and_kept_when_data_is_unchanged(
    database_url: str, tmp_path: Path
):
    seed_corpus(database_url, signal=True)
    result = materialize(database_url, tmp_path, [popularity_predictor])
    first = metadata(result, "popularity_predictor")
    assert first["status"] == "trained" and first["promoted"] is True
    assert first["held_out_mae"] < 0.5 * first["mean_baseline_mae"]
    assert "| model |" in first["evaluation"] and "one-feature rule" in first["evaluation"]
    assert checks(result) == {
        "popularity_predictor_beats_baselines": True,
        "popularity_predictor_has_no_leakage": True,
    }
    with psycopg.connect(database_url) as conn:
        (model,) = list_versions(conn, "popularity_predictor")
        assert model.promoted and model.training["artists"] == 10
        assert model.training["tracks"] == 120 and len(model.training["data_hash"]) == 64
        assert model.metrics["beats_baselines"] is True
        artifact = load_artifact(tmp_path, model)
    assert artifact.targets == ["popularity"] and "popularity" not in artifact.features
    assert artifact.sources["embedding"] == EMBEDDING_MODEL

    again = metadata(
        materialize(database_url, tmp_path, [popularity_predictor]), "popularity_predictor"
    )
    assert again["status"] == "unchanged" and again["version"] == "popularity_predictor v1"


def test_a_worse_version_is_registered_but_not_promoted(database_url: str, tmp_path: Path):
    seed_corpus(database_url, signal=True)
    materialize(database_url, tmp_path, [popularity_predictor])
    set_popularity_noise(database_url)  # the labels lost their relation to the lyrics

    result = materialize(database_url, tmp_path, [popularity_predictor])
    second = metadata(result, "popularity_predictor")
    assert second["status"] == "trained" and second["promoted"] is False
    assert second["decision"].startswith("not promoted: does not beat the mean baseline")
    assert checks(result)["popularity_predictor_beats_baselines"] is False
    with psycopg.connect(database_url) as conn:
        assert [(m.version, m.promoted) for m in list_versions(conn, "popularity_predictor")] == [
            (1, True),
            (2, False),
        ]
        assert promoted_version(conn, "popularity_predictor").version == 1


def test_too_little_data_trains_nothing_and_reports_no_score(database_url: str, tmp_path: Path):
    seed_corpus(database_url, artists=3, per_artist=5)
    result = materialize(database_url, tmp_path, [popularity_predictor, llm_score_predictor])
    for asset in ("popularity_predictor", "llm_score_predictor"):
        found = metadata(result, asset)
        assert found["status"] == "skipped" and found["reason"].startswith("too little data")
        assert "held_out_mae" not in found and "evaluation" not in found
    with psycopg.connect(database_url) as conn:
        assert list_versions(conn) == []


def test_leakage_is_found_by_following_the_asset_graph(database_url: str):
    seed_corpus(database_url, artists=2, per_artist=3)
    assert "llm_analysis" in asset_ancestors("hybrid_analysis")  # hybrid combines LLM scores
    with psycopg.connect(database_url) as conn:
        table = load_track_table(conn, EMBEDDING_MODEL)
    clean = find_leakage(table, LLM_SCORES, asset_ancestors)
    assert not clean.found
    table.feature_columns.append("hybrid_analysis:craft")  # a feature computed from the labels
    table.frame["hybrid_analysis:craft"] = 0.5
    leaking = dataclasses.replace(
        LLM_SCORES, feature_assets=(*LLM_SCORES.feature_assets, "hybrid_analysis")
    )
    found = find_leakage(table, leaking, asset_ancestors)
    assert found.found and "hybrid_analysis" in found.by_lineage


def test_trends_cover_every_year_and_find_the_rising_word(database_url: str, tmp_path: Path):
    generated = seed_corpus(database_url, artists=8, per_artist=15)
    result = materialize(database_url, tmp_path, [trends])
    found = metadata(result, "trends")
    assert checks(result) == {"trends_cover_every_release_year": True}
    assert found["recomputed"] is True and found["not_computed"] == "none"
    plots = {k for k in found if k.startswith("plot_") and not k.endswith("_path")}
    assert plots == {
        "plot_themes_by_year",
        "plot_emotions_by_year",
        "plot_technique_by_year",
        "plot_rising_and_falling_terms",
        "plot_style_clusters",
    }
    assert found["plot_style_clusters"].startswith("![style clusters](data:image/png;base64,")
    for name in plots:
        png = Path(found[f"{name}_path"])
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with psycopg.connect(database_url) as conn:
        tables = conn.execute("SELECT tables FROM trend_reports").fetchone()[0]
    assert {row["release_year"] for row in tables["by_year"]} == set(generated.years)
    assert len(tables["by_artist"]) == 8
    rising = [r["term"] for r in tables["terms"] if r["direction"] == "rising"]
    falling = [r["term"] for r in tables["terms"] if r["direction"] == "falling"]
    assert rising[0] == RISING and falling[0] == FALLING
    assert sum(row["tracks"] for row in tables["clusters"]) == 120

    again = metadata(materialize(database_url, tmp_path, [trends]), "trends")
    assert again["recomputed"] is False and again["report_id"] == found["report_id"]
