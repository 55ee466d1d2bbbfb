import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from rap_pipeline.core.services import ServiceURLs
from rap_pipeline.definitions import defs
from rap_pipeline.defs.artists.partitions import artists_partitions


def test_code_location_loads_with_the_expected_graph():
    loaded = defs()
    assets = {a.key: a for a in loaded.resolve_asset_graph().assets_defs if a.keys}
    tracks = assets[dg.AssetKey("tracks")]
    assert tracks.partitions_def == artists_partitions
    assert tracks.group_names_by_key[dg.AssetKey("tracks")] == "tracks"
    assert tracks.code_versions_by_key[dg.AssetKey("tracks")]
    assert {c.name for c in tracks.check_specs} == {
        "tracks_have_no_duplicates",
        "tracks_have_no_page_residue",
        "tracks_rejected_share_below_threshold",
    }
    assert loaded.resolve_job_def("main").partitions_def == artists_partitions
    assert loaded.resolve_sensor_def("automation_sensor").default_status == (
        dg.DefaultSensorStatus.RUNNING
    )
    assert set(loaded.resources) >= {
        "database",
        "redis",
        "track_source",
        "artists_file",
        "spotify",
        "emotion_model",
        "llm",
    }
    groups = {
        "spotify_tracks": "spotify",
        "lyric_embeddings": "embeddings",
        "rule_based_analysis": "analyses",
        "emotion_analysis": "analyses",
        "llm_analysis": "analyses",
        "hybrid_analysis": "analyses",
    }
    for name, group in groups.items():
        asset = assets[dg.AssetKey(name)]
        assert asset.group_names_by_key[dg.AssetKey(name)] == group
        assert asset.partitions_def == artists_partitions
        assert asset.code_versions_by_key[dg.AssetKey(name)]
    hybrid_deps = loaded.resolve_asset_graph().get(dg.AssetKey("hybrid_analysis")).parent_keys
    assert hybrid_deps == {
        dg.AssetKey("rule_based_analysis"),
        dg.AssetKey("emotion_analysis"),
        dg.AssetKey("llm_analysis"),
    }


def test_predictors_and_trends_retrain_in_their_own_job_under_their_own_sensor():
    loaded = defs()
    retrained = {
        dg.AssetKey(name) for name in ("popularity_predictor", "llm_score_predictor", "trends")
    }
    graph = loaded.resolve_asset_graph()
    for key in retrained:
        assert graph.get(key).partitions_def is None  # over every artist partition
        assert graph.get(key).group_name == "predictors"
    main = loaded.resolve_job_def("main").asset_layer.selected_asset_keys
    retrain = loaded.resolve_job_def("retrain").asset_layer.selected_asset_keys
    assert retrain == retrained and not main & retrained
    sensor = loaded.resolve_sensor_def("nightly_retraining")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sensor.asset_selection.resolve(graph) == retrained
    everything_else = loaded.resolve_sensor_def("automation_sensor").asset_selection.resolve(graph)
    assert not everything_else & retrained


def test_dagster_definitions_validate_passes(embedded: ServiceURLs, tmp_path: Path):
    result = subprocess.run(
        [sys.executable, "-m", "rap_pipeline.cli", "dagster", "definitions", "validate"],
        capture_output=True,
        text=True,
        timeout=300,
        env={
            **os.environ,
            "RAP_DATA_DIR": str(tmp_path),
            "RAP_DATABASE_URL": embedded.database_url,
            "RAP_REDIS_URL": embedded.redis_url,
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dg_lists_the_definitions(tmp_path: Path):
    # [tool.dg] in pyproject.toml makes this a dg project; a fresh DAGSTER_HOME keeps dg off the
    # repo's dagster.yaml, which needs the variables `rap-pipeline` sets
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    result = subprocess.run(
        [str(Path(sys.executable).with_name("dg")), "list", "defs", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[1],
        env={**os.environ, "DAGSTER_HOME": str(tmp_path), "COLUMNS": "200"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    listed = result.stdout
    for key in ("tracks", "spotify_tracks", "lyric_embeddings", "llm_analysis", "hybrid_analysis"):
        assert f'"{key}"' in listed
    assert "new_artists_sensor" in listed


def test_every_partitioned_asset_runs_batched_and_every_pool_has_a_limit():
    from rap_pipeline.core.dagster_home import POOL_LIMITS
    from rap_pipeline.defs.artists.partitions import BATCHED_BACKFILLS

    graph = defs().resolve_asset_graph()
    pools = set()
    for assets_def in graph.assets_defs:
        if assets_def.partitions_def is not None:
            assert assets_def.backfill_policy == BATCHED_BACKFILLS, assets_def.key
        for node in assets_def.node_def.iterate_op_defs():
            pools.update([node.pool] if node.pool else [])
    assert pools == set(POOL_LIMITS)


def test_the_instance_config_is_valid_for_dagster(tmp_path: Path):
    from dagster._core.instance.config import dagster_instance_config

    (tmp_path / "dagster.yaml").write_text((Path(__file__).parents[1] / "dagster.yaml").read_text())
    config, _ = dagster_instance_config(str(tmp_path))  # raises on an invalid config
    runs = config["concurrency"]["runs"]
    assert runs["max_concurrent_runs"] >= 1
    assert {"key": "dagster/backfill", "limit": 2} in runs["tag_concurrency_limits"]
    assert config["run_monitoring"]["enabled"]
