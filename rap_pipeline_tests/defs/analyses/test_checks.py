"""The analysis checks catch what the reference system shipped: a saturated metric."""

import dataclasses

import psycopg
from psycopg.types.json import Jsonb

from rap_pipeline.defs.analyses.checks import MIN_SAMPLED_RESULTS, check_ranges, check_spread
from rap_pipeline.defs.analyses.rule_based import RuleBasedAnalyzer

INFO = RuleBasedAnalyzer.info


def store_results(database_url: str, results: list[dict]) -> None:
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO artists (slug, display_name) VALUES ('a', 'A')")
        for i, result in enumerate(results):
            (track_id,) = conn.execute(
                """INSERT INTO tracks (artist_slug, source, source_id, title, lyrics_clean,
                                       lyrics_hash, status)
                   VALUES ('a', 'corpus', %s, %s, 'la la', %s, 'kept') RETURNING id""",
                (str(i), f"song {i}", f"hash {i}"),
            ).fetchone()
            conn.execute(
                """INSERT INTO analyses (track_id, artist_slug, analyzer, analyzer_version,
                                         method, input_hash, status, result)
                   VALUES (%s, 'a', %s, %s, %s, %s, 'ok', %s)""",
                (
                    track_id,
                    INFO.name,
                    INFO.version,
                    INFO.method,
                    f"hash {i}",
                    Jsonb(result),
                ),
            )


def test_a_saturated_rhyme_density_fails_the_spread_check(database_url: str):
    store_results(database_url, [{"rhyme_density": d} for d in [1.0] * 24 + [0.4]])  # 96% on 1
    with psycopg.connect(database_url) as conn:
        result = check_spread(conn, "rule_based_analysis", INFO, ["rhyme_density"])
    assert not result.passed
    assert "rhyme_density" in result.metadata["collapsed"].value


def test_a_spread_metric_passes(database_url: str):
    store_results(database_url, [{"rhyme_density": 0.05 + 0.01 * i} for i in range(25)])
    with psycopg.connect(database_url) as conn:
        assert check_spread(conn, "rule_based_analysis", INFO, ["rhyme_density"]).passed


def test_metrics_checked_together_are_judged_each_on_its_own(database_url: str):
    store_results(
        database_url,
        [{"rhyme_density": 0.05 + 0.01 * i, "mtld": 40.0, "top_theme": "love"} for i in range(25)],
    )
    metrics = ["rhyme_density", "mtld", "top_theme"]  # top_theme is no number: not judged
    with psycopg.connect(database_url) as conn:
        result = check_spread(conn, "rule_based_analysis", INFO, metrics)
    assert not result.passed
    assert set(result.metadata["collapsed"].value) == {"mtld"}
    assert set(result.metadata["stdev"].value) == {"rhyme_density", "mtld"}
    assert result.metadata["results"].value == 25


def test_values_outside_their_documented_range_fail():
    low = INFO.ranges["rhyme_density"].low
    result = check_ranges("rule_based_analysis", INFO, [{"rhyme_density": low - 1}])
    assert not result.passed
    assert check_ranges("rule_based_analysis", INFO, [{"rhyme_density": low}]).passed
    assert not check_ranges("rule_based_analysis", INFO, [{"rhyme_density": float("nan")}]).passed


def test_a_large_table_is_judged_on_a_sample_and_a_small_analyzer_on_all(database_url: str):
    with psycopg.connect(database_url) as conn:
        conn.execute("INSERT INTO artists (slug, display_name) VALUES ('a', 'A')")
        conn.execute(
            """INSERT INTO tracks (artist_slug, source, source_id, title, lyrics_clean,
                                   lyrics_hash, status)
               SELECT 'a', 'corpus', i::text, 'song ' || i, 'la la', 'hash ' || i, 'kept'
               FROM generate_series(1, 25000) AS i"""
        )
        # every rule-based result on one value, and 100 results of another analyzer
        conn.execute(
            """INSERT INTO analyses (track_id, artist_slug, analyzer, analyzer_version, method,
                                     input_hash, status, result)
               SELECT id, 'a', %s, %s, %s, lyrics_hash, 'ok', '{"rhyme_density": 1.0}'
               FROM tracks""",
            (INFO.name, INFO.version, INFO.method),
        )
        conn.execute(
            """INSERT INTO analyses (track_id, artist_slug, analyzer, analyzer_version, method,
                                     input_hash, status, result)
               SELECT id, 'a', 'other', '1', 'x', lyrics_hash, 'ok',
                      jsonb_build_object('rhyme_density', mod(id, 7))
               FROM tracks ORDER BY id LIMIT 100"""
        )
        conn.execute("ANALYZE analyses")
        sampled = check_spread(conn, "rule_based_analysis", INFO, ["rhyme_density"])
        other = dataclasses.replace(INFO, name="other", version="1", method="x")
        small = check_spread(conn, "other_analysis", other, ["rhyme_density"])
    assert not sampled.passed  # the collapse shows in the sample too
    assert sampled.metadata["sampled"].value != "no"
    assert MIN_SAMPLED_RESULTS <= sampled.metadata["results"].value < 25_000
    assert small.passed
    assert (small.metadata["sampled"].value, small.metadata["results"].value) == ("no", 100)
