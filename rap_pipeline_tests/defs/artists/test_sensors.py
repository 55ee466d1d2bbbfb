from pathlib import Path

import dagster as dg

from rap_pipeline.core.database import connect
from rap_pipeline.core.resources import DatabaseResource
from rap_pipeline.defs.artists.partitions import artists_partitions
from rap_pipeline.defs.artists.sensors import ArtistsFileResource, new_artists_sensor


def _evaluate(instance: dg.DagsterInstance, database_url: str, path: Path, cursor: str | None):
    context = dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={
            "database": DatabaseResource(url=database_url),
            "artists_file": ArtistsFileResource(path=str(path)),
        },
    )
    return new_artists_sensor(context)


def _apply(instance: dg.DagsterInstance, result: dg.SensorResult) -> None:
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))


def test_sensor_adds_partitions_for_new_artists_only_and_leaves_runs_to_automation(
    tmp_path: Path, instance: dg.DagsterInstance, database_url: str
):
    path = tmp_path / "artists.yaml"
    path.write_text("artists:\n  - MC Verity\n  - Beyoncé\n")

    first = _evaluate(instance, database_url, path, None)
    assert isinstance(first, dg.SensorResult)
    assert not first.run_requests  # the automation sensor materializes new partitions
    assert first.dynamic_partitions_requests[0].partition_keys == ["mc-verity", "beyonce"]
    _apply(instance, first)
    with connect(database_url) as conn:
        assert dict(conn.execute("SELECT slug, display_name FROM artists").fetchall()) == {
            "mc-verity": "MC Verity",
            "beyonce": "Beyoncé",
        }

    unchanged = _evaluate(instance, database_url, path, first.cursor)
    assert isinstance(unchanged, dg.SkipReason)

    path.write_text("artists:\n  - MC Verity\n  - Beyoncé\n  - Tyler, The Creator\n")
    second = _evaluate(instance, database_url, path, first.cursor)
    assert second.dynamic_partitions_requests[0].partition_keys == ["tyler-the-creator"]
    _apply(instance, second)
    assert set(instance.get_dynamic_partitions(artists_partitions.name)) == {
        "mc-verity",
        "beyonce",
        "tyler-the-creator",
    }


def test_sensor_skips_when_the_file_is_missing(
    tmp_path: Path, instance: dg.DagsterInstance, database_url: str
):
    result = _evaluate(instance, database_url, tmp_path / "nope.yaml", None)
    assert isinstance(result, dg.SkipReason)
