"""The freshness checks, run as their hourly job runs them, on rows made late on purpose."""

import dagster as dg
import psycopg
import pytest

from rap_pipeline.core.settings import Settings
from rap_pipeline.definitions import build_definitions
from rap_pipeline.defs.analyses.rule_based import RuleBasedAnalyzer
from rap_pipeline_tests.conftest import add_artists
from rap_pipeline_tests.defs.test_due_sensors import _track


def _evaluations(instance, monkeypatch, database_url) -> dict[str, dg.AssetCheckEvaluation]:
    monkeypatch.setenv("RAP_DATABASE_URL", database_url)
    job = build_definitions(Settings()).resolve_job_def("check_freshness")
    result = job.execute_in_process(instance=instance)
    assert result.success
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_freshness_checks_pass_on_fresh_data_and_fail_on_late_work(
    database_url: str, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
):
    old, new = add_artists(database_url, instance, "Old Timer", "New Comer")
    with psycopg.connect(database_url) as conn:
        fresh_track = _track(conn, new, 1)
        conn.execute(
            "INSERT INTO analyses (track_id, artist_slug, analyzer, analyzer_version, method, "
            "input_hash, status, result) VALUES (%s, %s, 'rule_based', %s, 'rules', "
            "'hash-1', 'ok', '{}')",
            (fresh_track, new, RuleBasedAnalyzer.info.version),
        )
    fresh = _evaluations(instance, monkeypatch, database_url)
    assert len(fresh) == 6
    assert all(e.passed for e in fresh.values()), {n: e.metadata for n, e in fresh.items()}

    with psycopg.connect(database_url) as conn:
        # an artist added a day ago whose tracks were never materialized
        conn.execute("UPDATE artists SET created_at = now() - interval '1 day'")
        # lyrics written 7 hours ago, never analyzed by the rule-based analyzer
        late_track = _track(conn, old, 2)
        conn.execute(
            "UPDATE tracks SET updated_at = now() - interval '7 hours' WHERE id = %s",
            (late_track,),
        )
        # a match 40 days old (TTL 30 + 8 days for the weekly schedule: late)
        conn.execute(
            "INSERT INTO spotify_tracks (track_id, artist_slug, status, source, "
            "payload_version, enriched_at, query_title, spotify_track_id) VALUES "
            "(%s, %s, 'matched', 'spotify', 1, now() - interval '40 days', 'q', 'sp')",
            (fresh_track, new),
        )
    late = _evaluations(instance, monkeypatch, database_url)
    failed = {name for name, e in late.items() if not e.passed}
    assert failed == {
        "tracks_fresh",
        "spotify_tracks_fresh",
        "lyric_embeddings_fresh",
        "rule_based_analysis_fresh",
        "emotion_analysis_fresh",
    }
    assert late["tracks_fresh"].metadata["late_partitions"].value == 2
    assert late["rule_based_analysis_fresh"].metadata["examples"].value == {old: 1}
    assert late["spotify_tracks_fresh"].metadata["examples"].value == {new: 1}
    assert late["llm_analysis_fresh"].metadata["status"].value == "not configured"
    assert all(e.severity == dg.AssetCheckSeverity.WARN for e in late.values())
