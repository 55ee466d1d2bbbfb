"""The analysis assets on the sample corpus: coverage, no re-analysis, version bumps, the
lexicon stand-in, the transformers path on a tiny local model, the LLM through its real
client, and hybrid profiles that say what they combined."""

import dataclasses
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from rap_pipeline.core.resources import DatabaseResource, RedisResource
from rap_pipeline.core.services import ServiceURLs
from rap_pipeline.defs.analyses.assets import (
    emotion_analysis,
    hybrid_analysis,
    llm_analysis,
    rule_based_analysis,
)
from rap_pipeline.defs.analyses.resources import EmotionModelResource, LLMResource
from rap_pipeline.defs.analyses.rule_based import RuleBasedAnalyzer
from rap_pipeline.defs.tracks.assets import tracks
from rap_pipeline.defs.tracks.resources import TrackSourceResource
from rap_pipeline_tests.conftest import add_artists
from rap_pipeline_tests.fakes.openai_server import FakeOpenAI
from rap_pipeline_tests.fakes.tiny_emotion_model import save_tiny_emotion_model

ARTIST = "Big Tundra"
KEPT = 9
ANALYSES = [rule_based_analysis, emotion_analysis, llm_analysis, hybrid_analysis]
UNLOADABLE_MODEL = "example/not-a-model-here"  # offline: the lexicon stands in


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_emotion_model(tmp_path_factory.mktemp("tiny_emotion_model"))


@pytest.fixture
def fake_llm() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def run(
    database_url, instance, slug, assets=None, emotion_model=UNLOADABLE_MODEL, llm=None, force=False
):
    assets = assets or [tracks, *ANALYSES]
    forced = [a.key.path[-1] for a in assets if a in ANALYSES[:3]] if force else []
    return dg.materialize(
        assets,
        partition_key=slug,
        instance=instance,
        run_config={"ops": {name: {"config": {"force": True}} for name in forced}},
        resources={
            "database": DatabaseResource(url=database_url),
            "track_source": TrackSourceResource(),
            "emotion_model": EmotionModelResource(model_id=str(emotion_model)),
            "llm": llm or LLMResource(),
        },
    )


def rows(database_url: str, analyzer: str) -> list[tuple]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            """SELECT track_id, analyzer_version, method, status, result, error, analyzed_at
               FROM analyses WHERE analyzer = %s ORDER BY track_id, analyzed_at""",
            (analyzer,),
        ).fetchall()


def metadata(result, asset: str) -> dict:
    (materialization,) = result.asset_materializations_for_node(asset)
    return {k: v.value for k, v in materialization.metadata.items()}


def test_every_kept_track_is_analyzed_once_and_checks_pass(
    database_url: str, instance: dg.DagsterInstance
):
    (slug,) = add_artists(database_url, instance, ARTIST)
    result = run(database_url, instance, slug)
    assert result.success
    for check in result.get_asset_check_evaluations():
        if check.asset_check_key.name.endswith("metrics_spread"):
            continue  # judged only once there are 20 results
        assert check.passed, check.asset_check_key
    rule_based = rows(database_url, "rule_based")
    assert len(rule_based) == KEPT and all(r[3] == "ok" for r in rule_based)
    emotion = rows(database_url, "emotion")
    assert {r[2] for r in emotion} == {"lexicon:nrc"}  # labelled as the stand-in it is
    assert UNLOADABLE_MODEL in metadata(result, "emotion_analysis")["lexicon_stands_in"]
    assert metadata(result, "llm_analysis")["status"] == "not configured"
    assert rows(database_url, "llm") == []
    hybrid = rows(database_url, "hybrid")
    assert len(hybrid) == KEPT
    profile = hybrid[0][4]
    assert profile["inputs_used"] == 2 and 0 <= profile["valence"] <= 1
    assert {label.split(":")[0] for label in profile["inputs"]} == {"rule_based", "emotion"}

    stored = {analyzer: rows(database_url, analyzer) for analyzer in ("rule_based", "emotion")}
    again = run(database_url, instance, slug, assets=ANALYSES)
    assert again.success
    for asset in ("rule_based_analysis", "emotion_analysis"):
        assert metadata(again, asset)["analyzed_this_run"] == 0
    assert metadata(again, "hybrid_analysis")["combined_this_run"] == 0
    for analyzer, before in stored.items():
        assert rows(database_url, analyzer) == before  # not even analyzed_at moved


def test_bumping_one_analyzer_version_reanalyzes_only_that_analyzer(
    database_url: str, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
):
    (slug,) = add_artists(database_url, instance, ARTIST)
    assert run(database_url, instance, slug).success
    emotion_before = rows(database_url, "emotion")
    # what a code change that bumps the rule-based version does
    bumped = dataclasses.replace(RuleBasedAnalyzer.info, version="2")
    monkeypatch.setattr(RuleBasedAnalyzer, "info", bumped)
    result = run(database_url, instance, slug, assets=ANALYSES)
    assert result.success
    assert metadata(result, "rule_based_analysis")["analyzed_this_run"] == KEPT
    assert metadata(result, "emotion_analysis")["analyzed_this_run"] == 0
    assert rows(database_url, "emotion") == emotion_before  # untouched
    versions = [r[1] for r in rows(database_url, "rule_based")]
    assert versions.count("1") == KEPT and versions.count("2") == KEPT  # history is kept
    # the profiles that combined version 1 are combined again from version 2
    assert metadata(result, "hybrid_analysis")["combined_this_run"] == KEPT
    assert all("rule_based:2:rules" in r[4]["inputs"] for r in rows(database_url, "hybrid"))


def test_emotion_through_a_transformers_model(
    database_url: str, instance: dg.DagsterInstance, tiny_model: Path
):
    (slug,) = add_artists(database_url, instance, ARTIST)
    result = run(
        database_url,
        instance,
        slug,
        assets=[tracks, emotion_analysis],
        emotion_model=tiny_model,
    )
    assert result.success
    assert metadata(result, "emotion_analysis")["lexicon_stands_in"] == "no"
    emotion = rows(database_url, "emotion")
    assert len(emotion) == KEPT
    assert {r[2] for r in emotion} == {f"transformers:{tiny_model}"}
    for *_, values, _, _ in emotion:
        probabilities = [v for k, v in values.items() if k.startswith("emotion_")]
        assert sum(probabilities) == pytest.approx(1.0, abs=1e-3)
        assert values["chunks"] > 1  # a 32-token model reads every song in several chunks


def test_llm_analysis_records_failures_as_failures_and_sums_usage(
    database_url: str,
    instance: dg.DagsterInstance,
    fake_llm: FakeOpenAI,
    embedded: ServiceURLs,
):
    (slug,) = add_artists(database_url, instance, ARTIST)
    fake_llm.fail(FakeOpenAI.REFUSAL, match="Letters to Cell Block C")
    llm = LLMResource(
        base_url=fake_llm.base_url,
        api_key=fake_llm.api_key,
        model=fake_llm.model,
        concurrency=2,
        backoff_initial_s=0.01,
        backoff_max_s=0.02,
        requests_per_s=100.0,
        price_input_per_mtok=1.0,
        price_output_per_mtok=2.0,
        redis=RedisResource(url=embedded.redis_url, namespace=f"test-{slug}-{id(fake_llm)}"),
    )
    result = run(database_url, instance, slug, llm=llm)
    assert result.success
    llm_rows = rows(database_url, "llm")
    assert len(llm_rows) == KEPT
    (failed,) = [r for r in llm_rows if r[3] == "failed"]
    assert failed[4] is None and failed[5].startswith("refused")  # never a result
    assert all(1 <= r[4]["lyricism"] <= 10 for r in llm_rows if r[3] == "ok")
    totals = metadata(result, "llm_analysis")["run_totals"]
    assert totals["ok"] == KEPT - 1 and totals["refused"] == 1
    assert totals["cost_usd"] > 0 and totals["prompt_tokens"] > 0
    assert fake_llm.api_key not in str(llm_rows)
    hybrid = rows(database_url, "hybrid")
    assert sum(r[4]["inputs_used"] == 3 for r in hybrid) == KEPT - 1

    # a re-run over unchanged data does not re-ask the refusal before its back-off expires
    calls = len(fake_llm.requests)
    fake_llm.clear_faults()
    again = run(database_url, instance, slug, assets=[llm_analysis], llm=llm)
    again_metadata = metadata(again, "llm_analysis")
    assert again_metadata["analyzed_this_run"] == 0
    assert len(fake_llm.requests) == calls  # not one paid request
    assert again_metadata["deferred"] == 1
    (deferred,) = again_metadata["deferred_tracks"]
    assert deferred["track_id"] == failed[0] and deferred["error_class"] == "refused"
    assert deferred["next_attempt_at"] > failed[6].isoformat()

    # a forced re-run asks the failure only; the answers are cached
    forced = run(database_url, instance, slug, assets=[llm_analysis], llm=llm, force=True)
    assert metadata(forced, "llm_analysis")["analyzed_this_run"] == 1
    assert len(fake_llm.requests) == calls + 1
    assert all(r[3] == "ok" for r in rows(database_url, "llm"))


def test_after_a_run_where_every_answer_failed_the_next_run_asks_nothing(
    database_url: str, instance: dg.DagsterInstance, embedded: ServiceURLs
):
    (slug,) = add_artists(database_url, instance, ARTIST)
    assert run(database_url, instance, slug, assets=[tracks]).success
    # a server without structured outputs whose model ignores the schema in the prompt
    with FakeOpenAI(json_schema="rejects", prompt_schema="ignores") as server:
        llm = LLMResource(
            base_url=server.base_url,
            api_key=server.api_key,
            model=server.model,
            concurrency=1,
            backoff_initial_s=0.01,
            backoff_max_s=0.02,
            requests_per_s=100.0,
            redis=RedisResource(url=embedded.redis_url, namespace=f"test-{uuid.uuid4().hex}"),
        )
        first = dg.materialize(
            [llm_analysis],
            partition_key=slug,
            instance=instance,
            resources={"database": DatabaseResource(url=database_url), "llm": llm},
            raise_on_error=False,
        )
        assert not first.success  # stopped early, with the likely cause
        (failure,) = [e for e in first.all_events if e.is_step_failure]
        assert "RAP_LLM_RESPONSE_FORMAT=json_schema" in failure.step_failure_data.error.message
        stored = rows(database_url, "llm")
        assert len(stored) == KEPT and all(r[3] == "failed" for r in stored)  # every track
        first_requests = server.count()
        assert first_requests == 1 + 5 * 2  # the probe; five tracks asked, each re-asked once

        second = run(database_url, instance, slug, assets=[llm_analysis], llm=llm)
        assert second.success
        assert server.count() == first_requests  # 0 LLM requests over unchanged data
        deferred = metadata(second, "llm_analysis")
        assert deferred["deferred"] == KEPT and deferred["analyzed_this_run"] == 0
        listed = deferred["deferred_tracks"]
        assert {d["error_class"] for d in listed} == {"invalid_answer", "stopped"}
        assert all(d["next_attempt_at"] for d in listed)
