"""The analysis checks catch what the reference system shipped: a saturated metric."""

import psycopg
from psycopg.types.json import Jsonb

from rap_pipeline.defs.analyses.checks import check_ranges, check_spread
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
