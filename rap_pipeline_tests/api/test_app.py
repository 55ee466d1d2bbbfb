"""The HTTP API through FastAPI's test client, on the real embedded PostgreSQL and Redis after
a materialization of two sample artists: search, track and artist pages, analysis without
writing, trends, errors, limits, injection attempts, metrics."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest
import redis
from fastapi.testclient import TestClient

from rap_pipeline.api.app import create_app
from rap_pipeline.api.guard import MAX_BODY_BYTES
from rap_pipeline.api.reads import EXCERPT_CHARS, EXCERPT_LINES
from rap_pipeline.core.services import ServiceURLs, free_port
from rap_pipeline_tests.api.conftest import settings_for

INJECTIONS = [
    "'; DROP TABLE tracks; --",
    "1 OR 1=1",
    '" OR ""="',
    "%' UNION SELECT password FROM pg_shadow --",
    "$$; SELECT pg_sleep(5); $$",
]


@pytest.fixture(scope="module")
def client(corpus_db: dict, embedded: ServiceURLs) -> Iterator[TestClient]:
    app = create_app(settings_for(corpus_db), corpus_db["url"], embedded.redis_url)
    with TestClient(app) as test_client:
        yield test_client


def counts(url: str) -> tuple[int, int]:
    with psycopg.connect(url) as conn:
        return (
            conn.execute("SELECT count(*) FROM tracks").fetchone()[0],
            conn.execute("SELECT count(*) FROM analyses").fetchone()[0],
        )


def test_health_names_each_part(client: TestClient):
    answer = client.get("/health")
    assert answer.status_code == 200
    parts = answer.json()["parts"]
    assert parts["database"] == "ok" and parts["migrations"] == "ok" and parts["redis"] == "ok"
    assert parts["pgvector"].startswith("ok") and "all-MiniLM-L6-v2" in parts["model"]


def test_search_finds_the_song_about_a_brother_with_its_lines(client: TestClient):
    answer = client.get("/search", params={"q": "songs about losing a brother", "limit": 3})
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert (
        results[0]["title"] == "Letter to My Brother" and "brother" in results[0]["matched_lines"]
    )
    only = client.get(
        "/search", params={"q": "brother", "artist": "big-tundra", "year_to": 2005, "hybrid": True}
    ).json()["results"]
    assert only and all(r["artist_slug"] == "big-tundra" and r["year"] <= 2005 for r in only)


def test_a_track_page_has_its_analyses_spotify_and_only_an_excerpt(client: TestClient):
    (hit,) = client.get("/search", params={"q": "letter to my brother", "limit": 1}).json()[
        "results"
    ]
    track = client.get(f"/tracks/{hit['track_id']}").json()
    assert track["title"] == hit["title"] and track["artist_slug"] == "k-o-the-poet"
    assert {a["analyzer"] for a in track["analyses"]} == {"rule_based", "emotion"}
    assert all(a["analyzer_version"] for a in track["analyses"])
    assert track["spotify"]["status"] in ("matched", "not_found")
    excerpt = track["lyrics_excerpt"]
    assert excerpt and len(excerpt) <= EXCERPT_CHARS and len(excerpt.splitlines()) <= EXCERPT_LINES
    assert "lyrics_clean" not in track and "lyrics_raw" not in track
    assert track["predictions"] == [] and "no predictor" in track["predictions_note"]
    similar = client.get(f"/tracks/{hit['track_id']}/similar", params={"limit": 3}).json()
    assert len(similar) == 3 and hit["track_id"] not in {s["track_id"] for s in similar}


def test_artists_are_paginated_and_each_has_aggregates(client: TestClient):
    first = client.get("/artists", params={"limit": 1}).json()
    second = client.get("/artists", params={"limit": 1, "offset": 1}).json()
    assert first["page"]["total"] == 2 and len(first["artists"]) == 1
    assert first["artists"][0]["slug"] != second["artists"][0]["slug"]
    artist = client.get("/artists/big-tundra").json()
    assert artist["tracks"] == 9 and artist["rejected"] == 2
    assert artist["means"]["rule_based.rhyme_density"] > 0 and len(artist["tracks_list"]) == 9


def test_analyze_answers_without_writing(client: TestClient, corpus_db: dict):
    before = counts(corpus_db["url"])
    lyrics = "I lost my brother in the winter cold\nHis story in my pocket never told\n" * 3
    answer = client.post("/analyze", json={"lyrics": lyrics})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["rule_based"]["line_count"] == 6 and "rhyme_density" in body["rule_based"]
    assert body["emotion_method"].endswith("lexicon:nrc") and body["emotion"]
    assert body["written"] is False and body["llm_called"] is False
    assert counts(corpus_db["url"]) == before


@pytest.mark.parametrize(
    ("request_args", "status", "code"),
    [
        ({"json": {"lyrics": ""}}, 422, "invalid_request"),
        ({"json": {"lyrics": "word " * 5000}}, 422, "invalid_request"),  # over 20,000 characters
        ({"json": {"text": "wrong field"}}, 422, "invalid_request"),
        (
            {
                "content": b"x" * (MAX_BODY_BYTES + 1),
                "headers": {"content-type": "application/json"},
            },
            413,
            "too_large",
        ),
    ],
)
def test_bad_analyze_requests_get_clear_errors(client: TestClient, request_args, status, code):
    answer = client.post("/analyze", **request_args)
    assert answer.status_code == status
    error = answer.json()["error"]
    assert error["code"] == code and error["message"]


def test_unknown_things_are_404_in_the_same_shape(client: TestClient):
    for path in ("/tracks/999999", "/tracks/999999/similar", "/artists/nobody", "/nowhere"):
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert set(answer.json()["error"]) == {"code", "message"}


def test_injection_strings_through_every_parameter_change_nothing(
    client: TestClient, corpus_db: dict
):
    before = counts(corpus_db["url"])
    for text in INJECTIONS:
        answers = [
            client.get("/search", params={"q": text}),
            client.get("/search", params={"q": "brother", "artist": text}),
            client.get("/search", params={"q": "brother", "year_from": text}),
            client.get("/search", params={"q": "brother", "limit": text}),
            client.get(f"/tracks/{text}"),
            client.get(f"/tracks/{text}/similar"),
            client.get(f"/artists/{text}"),
            client.get("/artists", params={"offset": text}),
            client.post("/analyze", json={"lyrics": text}),
        ]
        for answer in answers:
            assert answer.status_code in (200, 404, 422), (text, answer.url, answer.text)
            assert "Traceback" not in answer.text and "psycopg" not in answer.text
    assert counts(corpus_db["url"]) == before


def test_trends_tables_and_plots_are_served(client: TestClient):
    trends_answer = client.get("/trends").json()
    assert trends_answer["tables"]["by_year"] and len(trends_answer["plots"]) >= 3
    plot = client.get(trends_answer["plots"]["style_clusters"])
    assert plot.status_code == 200 and plot.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert client.get("/trends/plots/..%2F..%2Fetc%2Fpasswd.png").status_code == 404


def test_metrics_count_requests_by_route_template(client: TestClient):
    client.get("/tracks/999999")
    body = client.get("/metrics").text
    assert (
        'rap_api_http_requests_total{method="GET",route="/tracks/{track_id}",status="404"}' in body
    )
    assert "999999" not in body  # route templates, never values
    assert "rap_api_http_request_duration_seconds_bucket" in body


def _away_from_the_minutes_end() -> None:
    """The limit counts per wall-clock minute: a count begun at :59 would restart mid-test."""
    into_minute = time.time() % 60
    if into_minute > 50:
        time.sleep(60 - into_minute + 0.1)


def test_requests_over_the_limit_get_429_with_retry_after(corpus_db: dict, embedded: ServiceURLs):
    own_redis = embedded.redis_url.rsplit("/", 1)[0] + "/5"  # a count of its own
    app = create_app(
        settings_for(corpus_db, api_requests_per_minute=3), corpus_db["url"], own_redis
    )
    with TestClient(app) as limited:
        redis.Redis.from_url(own_redis).flushdb()
        _away_from_the_minutes_end()
        statuses = [limited.get("/artists").status_code for _ in range(5)]
        assert statuses[:3] == [200, 200, 200] and statuses[-1] == 429
        answer = limited.get("/artists")
        assert answer.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(answer.headers["Retry-After"]) <= 60
        assert limited.get("/health").status_code == 200  # health is never limited


def test_each_service_keeps_its_own_count_on_a_shared_redis(corpus_db: dict, embedded: ServiceURLs):
    """A benchmark's service on another port must not use up the readers' requests."""
    own_redis = embedded.redis_url.rsplit("/", 1)[0] + "/6"
    redis.Redis.from_url(own_redis).flushdb()
    settings = settings_for(corpus_db, api_requests_per_minute=2)
    busy = TestClient(create_app(settings, corpus_db["url"], own_redis), "http://127.0.0.1:8001")
    quiet = TestClient(create_app(settings, corpus_db["url"], own_redis), "http://127.0.0.1:8002")
    with busy, quiet:
        _away_from_the_minutes_end()
        assert [busy.get("/artists").status_code for _ in range(3)] == [200, 200, 429]
        assert quiet.get("/artists").status_code == 200


def test_without_redis_requests_go_on_unlimited_and_health_names_redis(
    corpus_db: dict, caplog: pytest.LogCaptureFixture
):
    nobody = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    app = create_app(settings_for(corpus_db, api_requests_per_minute=1), corpus_db["url"], nobody)
    with TestClient(app) as client:
        assert [client.get("/artists").status_code for _ in range(3)] == [200, 200, 200]
        health = client.get("/health")
    assert health.status_code == 503
    assert health.json()["parts"]["redis"].startswith("unreachable")
    assert health.json()["parts"]["database"] == "ok"
    warnings = [r for r in caplog.records if "not rate limited" in r.getMessage()]
    assert len(warnings) == 1  # said once, not per request
