"""The automation conditions of the real asset graph, evaluated tick by tick with Dagster's own
evaluator: materializations are reported to the instance, nothing runs."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from rap_pipeline.core.settings import Settings
from rap_pipeline.definitions import build_definitions
from rap_pipeline.defs.artists.partitions import artists_partitions

ANALYSES = ("rule_based_analysis", "emotion_analysis", "llm_analysis", "hybrid_analysis")
AFTER_TRACKS = ("spotify_tracks", "lyric_embeddings", "similar_tracks", *ANALYSES)


def assets_defs(
    new_code_version_of: str | None = None, settings: Settings | None = None
) -> list[dg.AssetsDefinition]:
    """The code location's assets (resources bound), one of them with a new code version."""
    graph = build_definitions(settings or Settings()).resolve_asset_graph()
    defs = []
    for definition in graph.assets_defs:
        if definition.keys and definition.key.to_user_string() == new_code_version_of:
            (definition,) = dg.map_asset_specs(
                lambda spec: spec.replace_attributes(code_version="new"), [definition]
            )
        defs.append(definition)
    return defs


KEYS = [dg.AssetKey(name) for name in ("tracks", *AFTER_TRACKS)]


def requested(result) -> dict[str, list[str]]:
    """Asset name → partitions the tick requested (assets with none left out)."""
    found = {key.to_user_string(): sorted(result.get_requested_partitions(key)) for key in KEYS}
    return {name: partitions for name, partitions in found.items() if partitions}


TRACKS_BLOCKING = ("tracks_have_no_duplicates", "tracks_have_no_page_residue")
EMBEDDINGS_BLOCKING = (
    "lyric_embeddings_cover_kept_tracks",
    "lyric_embeddings_are_unit_vectors_of_the_model_dimension",
)


def materialized(
    instance: dg.DagsterInstance,
    asset: str,
    partition: str,
    checks: tuple[str, ...] = (),
    passed: bool = True,
) -> None:
    """Reports a materialization of one partition, and its blocking checks' results."""
    instance.report_runless_asset_event(
        dg.AssetMaterialization(asset_key=asset, partition=partition)
    )
    for check in checks:
        instance.report_runless_asset_event(
            dg.AssetCheckEvaluation(
                asset_key=dg.AssetKey(asset), check_name=check, passed=passed, partition=partition
            )
        )


def tick(defs, instance, previous=None):
    return dg.evaluate_automation_conditions(
        defs=defs, instance=instance, cursor=previous.cursor if previous else None
    )


def test_a_new_artist_is_materialized_through_the_graph_and_nothing_else_is():
    defs = assets_defs()
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(artists_partitions.name, ["old-artist"])
        result = tick(defs, instance)
        assert requested(result) == {}  # partitions from before automation: no backfill

        instance.add_dynamic_partitions(artists_partitions.name, ["new-artist"])
        result = tick(defs, instance, result)
        assert requested(result) == {"tracks": ["new-artist"]}
        result = tick(defs, instance, result)
        assert requested(result) == {}  # requested once, not on every tick

        # tracks done and its blocking checks passed: the rest (similar_tracks waits for the
        # embeddings' own blocking checks)
        materialized(instance, "tracks", "new-artist", TRACKS_BLOCKING)
        result = tick(defs, instance, result)
        assert requested(result) == {
            key: ["new-artist"] for key in AFTER_TRACKS if key != "similar_tracks"
        }
        materialized(instance, "lyric_embeddings", "new-artist", EMBEDDINGS_BLOCKING)
        result = tick(defs, instance, result)
        assert requested(result) == {"similar_tracks": ["new-artist"]}


def test_nothing_runs_downstream_of_a_failed_blocking_check():
    defs = assets_defs()
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(artists_partitions.name, ["a"])
        result = tick(defs, instance)
        materialized(instance, "tracks", "a", TRACKS_BLOCKING, passed=False)
        result = tick(defs, instance, result)
        assert requested(result) == {}


def _everything_materialized(instance: dg.DagsterInstance):
    """Partitions a and b materialized and checked, ticked until nothing is requested."""
    instance.add_dynamic_partitions(artists_partitions.name, ["a", "b"])
    result = tick(assets_defs(), instance)
    for partition in ("a", "b"):
        materialized(instance, "tracks", partition, TRACKS_BLOCKING)
        materialized(instance, "lyric_embeddings", partition, EMBEDDINGS_BLOCKING)
        for asset in ("spotify_tracks", "similar_tracks", *ANALYSES):
            materialized(instance, asset, partition)
    result = tick(assets_defs(), instance, result)
    result = tick(assets_defs(), instance, result)
    assert requested(result) == {}
    return result


def test_another_embedding_model_reembeds_every_partition_and_nothing_else():
    with dg.instance_for_test() as instance:
        result = _everything_materialized(instance)
        other_model = Settings(embedding_model="sentence-transformers/all-mpnet-base-v2")
        result = tick(assets_defs(settings=other_model), instance, result)
        assert requested(result) == {
            "lyric_embeddings": ["a", "b"],
            "similar_tracks": ["a", "b"],
        }


def test_a_new_analyzer_version_reruns_that_analyzer_for_every_partition_only():
    with dg.instance_for_test() as instance:
        result = _everything_materialized(instance)
        result = tick(assets_defs(new_code_version_of="rule_based_analysis"), instance, result)
        # that analyzer everywhere, and the hybrid profile that combines it; nothing else
        assert requested(result) == {
            "rule_based_analysis": ["a", "b"],
            "hybrid_analysis": ["a", "b"],
        }


RETRAINED = ("popularity_predictor", "llm_score_predictor", "trends")


def retrained(result) -> list[str]:
    return sorted(name for name in RETRAINED if result.get_num_requested(dg.AssetKey(name)) > 0)


def test_predictors_and_trends_retrain_once_a_day_after_3_utc_and_only_on_changed_inputs():
    defs = assets_defs()
    day = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    day += dt.timedelta(days=1)  # evaluation times ahead of the events' own timestamps

    def at(days: int, hour: int, minute: int = 0, previous=None):
        when = day + dt.timedelta(days=days, hours=hour, minutes=minute)
        return dg.evaluate_automation_conditions(
            defs=defs,
            instance=instance,
            evaluation_time=when,
            cursor=previous.cursor if previous else None,
        )

    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(artists_partitions.name, ["a"])
        result = at(0, 1)
        materialized(instance, "rule_based_analysis", "a")
        result = at(0, 2, previous=result)
        assert retrained(result) == []  # an input changed, but 03:00 has not come
        result = at(0, 3, 5, previous=result)
        assert retrained(result) == sorted(RETRAINED)  # the first tick after 03:00
        for name in RETRAINED:
            instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=name))
        result = at(0, 3, 10, previous=result)
        assert retrained(result) == []  # once
        result = at(1, 3, 5, previous=result)
        assert retrained(result) == []  # the next day, nothing changed: no run

        materialized(instance, "spotify_tracks", "a")  # an input of the popularity predictor
        result = at(1, 10, previous=result)
        assert retrained(result) == ["popularity_predictor"]  # that day, once it changed
        instance.report_runless_asset_event(
            dg.AssetMaterialization(asset_key="popularity_predictor")
        )
        materialized(instance, "spotify_tracks", "a")
        result = at(1, 11, previous=result)
        assert retrained(result) == []  # at most once a day
