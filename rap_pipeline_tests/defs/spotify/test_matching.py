"""Matching search hits to tracks: normalization, scores, and never taking a wrong top hit."""

import pytest

from rap_pipeline.defs.spotify.matching import best_match, normalize_title, search_query


def hit(track_id: str, name: str, *artists: str, popularity: int = 50) -> dict:
    return {
        "id": track_id,
        "name": name,
        "artists": [{"id": f"a-{a}", "name": a} for a in artists],
        "popularity": popularity,
    }


@pytest.mark.parametrize(
    ("title", "normalized"),
    [
        ("Cold Corners (feat. MC Verity)", "cold corners"),
        ("Cold Corners - 2011 Remaster", "cold corners"),
        ("Cold Corners [Radio Edit]", "cold corners"),
        ("Rock & Roll ft. Someone", "rock and roll"),
        ("Señor Calido's Song!", "senor calido s song"),
        ("Live Forever", "live forever"),  # "live" alone in a title is not a decoration
        ("(Remastered)", "remastered"),  # a title that is all decoration stays itself
    ],
)
def test_normalize_title(title: str, normalized: str):
    assert normalize_title(title) == normalized


def test_search_query_uses_field_filters_without_features_or_quotes():
    assert search_query('Say "What" (feat. X)', "Big Tundra") == (
        'track:"Say What" artist:"Big Tundra"'
    )


def test_variants_of_the_same_song_match():
    items = [hit("1", "Cold Corners (feat. MC Verity) - 2011 Remaster", "Big Tundra", "MC Verity")]
    outcome = best_match("Cold Corners", "Big Tundra", items)
    assert outcome.item is items[0]
    assert outcome.best.score >= 99


def test_same_title_by_another_artist_is_not_found_with_the_candidate_kept():
    items = [hit("1", "Cold Corners", "Tundra Kings")]
    outcome = best_match("Cold Corners", "Big Tundra", items)
    assert outcome.item is None
    assert outcome.best.spotify_track_id == "1" and outcome.best.artist_score < 85


def test_a_sequel_or_a_different_song_by_the_artist_is_not_taken():
    assert (
        best_match("Cold Corners", "Big Tundra", [hit("1", "Cold Corners 2", "Big Tundra")]).item
        is None
    )
    assert (
        best_match("Cold Corners", "Big Tundra", [hit("1", "Cold Comfort", "Big Tundra")]).item
        is None
    )


def test_the_best_scored_hit_wins_not_the_first():
    items = [
        hit("1", "Cold Comfort", "Big Tundra", popularity=90),
        hit("2", "Cold Corners", "Big Tundra"),
    ]
    assert best_match("Cold Corners", "Big Tundra", items).item["id"] == "2"


def test_no_hits():
    outcome = best_match("Cold Corners", "Big Tundra", [])
    assert outcome.item is None and outcome.best is None
