"""Runs that cover several artist partitions: each partition stands alone."""

from pathlib import Path

import dagster as dg
import psycopg
import pytest

from rap_pipeline.core.resources import DatabaseResource
from rap_pipeline.defs.artists.batches import retry_delay
from rap_pipeline.defs.artists.partitions import artists_partitions, partition_batches, range_tags
from rap_pipeline.defs.tracks.assets import tracks
from rap_pipeline.defs.tracks.resources import TrackSourceResource
from rap_pipeline_tests.conftest import add_artists
from rap_pipeline_tests.defs.tracks.test_assets import song, write_jsonl


def test_partition_batches_hold_only_wanted_partitions_and_at_most_size():
    ordered = ["a", "b", "c", "d", "e", "f", "g"]
    assert partition_batches(ordered, {"a", "b", "c", "e", "f", "g"}, size=2) == [
        ["a", "b"],
        ["c"],
        ["e", "f"],
        ["g"],
    ]
    assert partition_batches(ordered, set(), size=2) == []
    assert partition_batches(ordered, set(ordered), size=10) == [ordered]


def _materialize(database_url, instance, corpus: Path, first: str, last: str):
    return dg.materialize(
        [tracks],
        instance=instance,
        tags=range_tags(first, last),
        resources={
            "database": DatabaseResource(url=database_url),
            "track_source": TrackSourceResource(kind="corpus", corpus_path=str(corpus)),
        },
        raise_on_error=False,
    )


def _partition_metadata(result, asset: str = "tracks") -> dict[str, dict]:
    return {
        m.partition: {k: v.value for k, v in m.metadata.items()}
        for m in result.asset_materializations_for_node(asset)
    }


def test_one_bad_partition_does_not_fail_the_others_and_is_retried_later(
    database_url: str, instance: dg.DagsterInstance, corpus_dir: Path
):
    first, last = add_artists(database_url, instance, "Alpha One", "Gamma Three")
    # a partition that the artists table does not know: its step would fail alone
    instance.delete_dynamic_partition(artists_partitions.name, last)
    instance.add_dynamic_partitions(artists_partitions.name, ["beta-two", last])
    for n, name in enumerate(["Alpha One", "Gamma Three"]):
        write_jsonl(
            corpus_dir / f"{n}.jsonl",
            [{"artist": name, "title": f"Song {n}", "lyrics": song(n, "road"), "id": str(n)}],
        )

    result = _materialize(database_url, instance, corpus_dir, first, last)

    assert result.success
    metadata = _partition_metadata(result)
    assert set(metadata) == {first, "beta-two", last}
    assert metadata[first]["partition_status"] == "ok" and metadata[first]["kept"] == 1
    assert metadata[last]["partition_status"] == "ok" and metadata[last]["kept"] == 1
    assert metadata["beta-two"]["partition_status"] == "failed"
    assert "not in the artists table" in metadata["beta-two"]["error"]
    # one evaluation per check for the run, passing: the failed partition wrote nothing
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == len({e.check_name for e in evaluations}) == 3
    with psycopg.connect(database_url) as conn:
        failures = conn.execute(
            "SELECT asset, artist_slug, error_class, attempts, "
            "next_attempt_at - failed_at FROM partition_failures"
        ).fetchall()
        kept = conn.execute(
            "SELECT artist_slug, count(*) FROM tracks GROUP BY artist_slug ORDER BY 1"
        ).fetchall()
    assert failures == [("tracks", "beta-two", "PartitionError", 1, retry_delay(1))]
    assert kept == [(first, 1), (last, 1)]

    # the artist is registered; the next run of that partition succeeds and clears the record
    add_artists(database_url, instance, "Beta Two")
    again = _materialize(database_url, instance, corpus_dir, "beta-two", "beta-two")
    assert again.success
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM partition_failures").fetchone()[0] == 0


def test_a_run_of_one_partition_fails_as_it_did_before_batching(
    database_url: str, instance: dg.DagsterInstance, corpus_dir: Path
):
    instance.add_dynamic_partitions(artists_partitions.name, ["nobody-known"])
    result = _materialize(database_url, instance, corpus_dir, "nobody-known", "nobody-known")
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert "not in the artists table" in failure.step_failure_data.error.message


@pytest.mark.parametrize("attempts", [1, 2, 3, 4, 9])
def test_failed_partitions_back_off_to_a_day(attempts: int):
    delays = [retry_delay(n) for n in range(1, attempts + 1)]
    assert delays == sorted(delays)
    assert retry_delay(attempts).total_seconds() <= 24 * 3600
