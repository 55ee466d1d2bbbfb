"""Results of a run's partitions written together: what is stored, when, and what one
partition's unstorable result does to the others."""

import dagster as dg
import psycopg
import pytest

from rap_pipeline.core.resources import DatabaseResource
from rap_pipeline.defs.analyses import store
from rap_pipeline.defs.analyses.analyzer import AnalysisResult
from rap_pipeline.defs.analyses.assets import rule_based_analysis
from rap_pipeline.defs.analyses.rule_based import RuleBasedAnalyzer
from rap_pipeline.defs.analyses.store import PartitionResults, ResultWriter
from rap_pipeline.defs.artists.partitions import range_tags
from rap_pipeline.defs.tracks.assets import tracks
from rap_pipeline.defs.tracks.resources import TrackSourceResource
from rap_pipeline_tests.conftest import add_artists

ARTISTS = ("Big Tundra", "Lil Ember", "MC Verity")
INFO = RuleBasedAnalyzer.info


@pytest.fixture
def slugs(database_url: str, instance: dg.DagsterInstance) -> list[str]:
    added = sorted(add_artists(database_url, instance, *ARTISTS))
    result = dg.materialize(
        [tracks],
        instance=instance,
        tags=range_tags(added[0], added[-1]),
        resources={
            "database": DatabaseResource(url=database_url),
            "track_source": TrackSourceResource(),
        },
    )
    assert result.success
    return added


def _kept(database_url: str) -> dict[str, dict[int, str]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT artist_slug, id, lyrics_hash FROM tracks WHERE status = 'kept'"
        ).fetchall()
    kept: dict[str, dict[int, str]] = {}
    for slug, track_id, lyrics_hash in rows:
        kept.setdefault(slug, {})[track_id] = lyrics_hash
    return kept


def _stored(database_url: str) -> dict[str, int]:
    with psycopg.connect(database_url) as conn:
        return dict(
            conn.execute(
                "SELECT artist_slug, count(*) FROM analyses WHERE analyzer = %s GROUP BY 1",
                (INFO.name,),
            ).fetchall()
        )


def _results(hashes: dict[int, str], value: float, usage=None) -> list[AnalysisResult]:
    return [
        AnalysisResult(track_id, "ok", {"rhyme_density": value}, usage=usage) for track_id in hashes
    ]


def test_one_partitions_unstorable_result_fails_that_partition_only(
    database_url: str, slugs: list[str], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(store, "WRITE_EVERY_S", 3600)  # written by flush() alone, however slow
    kept = _kept(database_url)
    good, bad, other = slugs
    writer = ResultWriter(DatabaseResource(url=database_url), INFO)
    writer.add(PartitionResults(good, kept[good], _results(kept[good], 0.5)))
    # NaN is not JSON: PostgreSQL refuses the row
    writer.add(PartitionResults(bad, kept[bad], _results(kept[bad], float("nan"))))
    writer.add(PartitionResults(other, kept[other], _results(kept[other], 0.25)))
    assert _stored(database_url) == {}  # cheap results wait for the run's write
    writer.flush()
    assert set(writer.errors) == {bad}
    assert isinstance(writer.errors[bad], psycopg.errors.DataError)
    assert _stored(database_url) == {good: len(kept[good]), other: len(kept[other])}


def test_results_that_cost_money_are_stored_at_once(database_url: str, slugs: list[str]):
    kept = _kept(database_url)
    writer = ResultWriter(DatabaseResource(url=database_url), INFO)
    paid = {"prompt_tokens": 900, "completion_tokens": 300, "cost_usd": 0.002}
    writer.add(PartitionResults(slugs[0], kept[slugs[0]], _results(kept[slugs[0]], 0.5, paid)))
    assert _stored(database_url) == {slugs[0]: len(kept[slugs[0]])}


def test_a_run_of_several_partitions_stores_and_checks_each(
    database_url: str, instance: dg.DagsterInstance, slugs: list[str]
):
    result = dg.materialize(
        [rule_based_analysis],
        instance=instance,
        tags=range_tags(slugs[0], slugs[-1]),
        resources={"database": DatabaseResource(url=database_url)},
    )
    assert result.success
    kept = _kept(database_url)
    assert _stored(database_url) == {slug: len(kept[slug]) for slug in slugs}
    metadata = {
        m.partition: {k: v.value for k, v in m.metadata.items()}
        for m in result.asset_materializations_for_node("rule_based_analysis")
    }
    for slug in slugs:
        assert metadata[slug]["partition_status"] == "ok"
        assert metadata[slug]["analyzed_this_run"] == len(kept[slug])
        assert metadata[slug]["tracks_with_results"] == len(kept[slug])
        assert metadata[slug]["means"]["rhyme_density"] > 0
    coverage = next(
        e
        for e in result.get_asset_check_evaluations()
        if e.asset_check_key.name.endswith("covers_kept_tracks")
    )
    assert coverage.passed and coverage.metadata["partitions_checked"].value == len(slugs)


def test_checks_judge_results_stored_earlier_with_those_written_this_run(
    database_url: str, instance: dg.DagsterInstance, slugs: list[str]
):
    kept = _kept(database_url)
    earlier = slugs[0]  # current results from an earlier run, one of them out of range
    writer = ResultWriter(DatabaseResource(url=database_url), INFO)
    writer.add(PartitionResults(earlier, kept[earlier], _results(kept[earlier], 99.0)))
    writer.flush()
    result = dg.materialize(
        [rule_based_analysis],
        instance=instance,
        tags=range_tags(slugs[0], slugs[-1]),
        resources={"database": DatabaseResource(url=database_url)},
        raise_on_error=False,
    )
    metadata = {
        m.partition: {k: v.value for k, v in m.metadata.items()}
        for m in result.asset_materializations_for_node("rule_based_analysis")
    }
    assert metadata[earlier]["analyzed_this_run"] == 0
    assert metadata[earlier]["means"]["rhyme_density"] == 99.0  # read back from the table
    assert all(metadata[slug]["analyzed_this_run"] == len(kept[slug]) for slug in slugs[1:])
    in_range = next(
        e
        for e in result.get_asset_check_evaluations()
        if e.asset_check_key.name.endswith("values_in_range")
    )
    assert not in_range.passed
    assert in_range.metadata["failing_partitions"].value == [earlier]
