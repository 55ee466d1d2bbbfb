"""The web page: server-rendered HTML through the test client, output escaped, and the whole
path a reader takes in a real headless browser (Chromium driven by Playwright)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
import uvicorn
from fastapi.testclient import TestClient

from rap_pipeline.api.app import create_app
from rap_pipeline.core.services import ServiceURLs, free_port
from rap_pipeline_tests.api.conftest import settings_for
from rap_pipeline_tests.api.reader import (
    QUERY,
    chromium,
    search_open_a_track_and_follow_a_similar_one,
)

XSS_TITLE = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'


@pytest.fixture(scope="module")
def xss_track(corpus_db: dict) -> Iterator[int]:
    """A kept track whose title is a script, as a hostile source could send."""
    with psycopg.connect(corpus_db["url"]) as conn:
        (track_id,) = conn.execute(
            """INSERT INTO tracks (artist_slug, source, source_id, title, release_year,
                   lyrics_raw, lyrics_clean, lyrics_hash, word_count, line_count, status)
               VALUES ('big-tundra', 'corpus', 'xss:1', %s, 2001, 'la la', 'la la', 'xsshash',
                       2, 1, 'kept') RETURNING id""",
            (XSS_TITLE,),
        ).fetchone()
    yield track_id
    with psycopg.connect(corpus_db["url"]) as conn:
        conn.execute("DELETE FROM tracks WHERE id = %s", (track_id,))


@pytest.fixture(scope="module")
def client(corpus_db: dict, embedded: ServiceURLs) -> Iterator[TestClient]:
    app = create_app(settings_for(corpus_db), corpus_db["url"], embedded.redis_url)
    with TestClient(app) as test_client:
        yield test_client


def test_the_search_page_renders_results_with_marked_lines(client: TestClient):
    page = client.get("/", params={"q": QUERY, "artist": "k-o-the-poet"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert '<label for="q">' in html and '<label for="artist">' in html  # every field labelled
    assert "Letter to My Brother" in html and "<mark>brother</mark>" in html.lower()
    assert 'href="/static/style.css"' in html and "https://" not in html.split("<body>")[0]
    assert client.get("/static/app.js").status_code == 200
    bad = client.get("/", params={"q": QUERY, "year_from": "19x9"})
    assert bad.status_code == 200 and "year from must be a year" in bad.text


def test_titles_are_escaped_everywhere_they_are_shown(client: TestClient, xss_track: int):
    for path in (f"/track/{xss_track}", "/artist/big-tundra"):
        html = client.get(path).text
        assert "<script>window.__xss" not in html and 'onerror="window' not in html, path
        assert "&lt;script&gt;window.__xss = 1&lt;/script&gt;" in html, path


def test_a_missing_track_is_a_page_for_a_browser_and_json_for_a_program(client: TestClient):
    as_page = client.get("/track/999999", headers={"accept": "text/html"})
    assert as_page.status_code == 404 and "<h1>404</h1>" in as_page.text
    assert client.get("/track/999999").json()["error"]["code"] == "not_found"


@pytest.fixture(scope="module")
def served(corpus_db: dict, embedded: ServiceURLs) -> Iterator[str]:
    """The app on a real port (uvicorn in a thread), as `rap-pipeline serve` runs it."""
    port = free_port()
    app = create_app(settings_for(corpus_db), corpus_db["url"], embedded.redis_url)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


@pytest.fixture(scope="module")
def browser():
    with chromium() as launched:
        yield launched


@pytest.mark.slow
def test_a_reader_searches_opens_a_track_and_follows_a_similar_one(served: str, browser):
    search_open_a_track_and_follow_a_similar_one(browser, served)


@pytest.mark.slow
def test_no_script_from_a_title_runs_in_the_browser(served: str, browser, xss_track: int):
    page = browser.new_page()
    for path in (f"/track/{xss_track}", "/artist/big-tundra"):
        page.goto(served + path)
        page.wait_for_load_state("load")
        assert page.evaluate("window.__xss") is None, path
    assert XSS_TITLE in page.locator("ol.tracks").inner_text()  # shown as text
    page.close()
