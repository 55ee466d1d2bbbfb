"""`rap-pipeline run` end to end on the bundled sample corpus (what `make run` does), then the
search commands, search quality, and a reader on `rap-pipeline serve`'s page, on what it
produced."""

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
import requests

from rap_pipeline.benchmarks.search_quality import evaluate, mean_precision
from rap_pipeline.core.services import ServiceURLs, free_port
from rap_pipeline_tests.api.reader import chromium, search_open_a_track_and_follow_a_similar_one
from rap_pipeline_tests.fakes.openai_server import FakeOpenAI

# mean precision@5 measured on the labelled queries: 0.796 (vector search, MiniLM)
PRECISION_AT_5_FLOOR = 0.70


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rap_pipeline.cli", *args],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, **env, "COLUMNS": "200"},
    )


@pytest.mark.slow
@pytest.mark.timeout(1200)  # two whole runs, searches and a browser: beyond the default 600 s
def test_run_collects_embeds_and_searches_the_sample_corpus(
    database_url: str, embedded: ServiceURLs, tmp_path: Path
):
    # an OpenAI-compatible server whose model ignores a schema written into the prompt, but
    # which honours response_format json_schema, as OpenAI, vLLM, Ollama and llama.cpp do
    llm = FakeOpenAI(prompt_schema="ignores").start()
    env = {
        "RAP_DATA_DIR": str(tmp_path / "data"),
        "RAP_DATABASE_URL": database_url,
        "RAP_REDIS_URL": embedded.redis_url,
        "RAP_LLM_BASE_URL": llm.base_url,
        "RAP_LLM_MODEL": llm.model,
        "RAP_LLM_API_KEY": llm.api_key,
        "RAP_LLM_REQUESTS_PER_S": "50",
    }
    first = _cli(env, "run")
    assert first.returncode == 0, first.stdout + first.stderr
    with psycopg.connect(database_url) as conn:
        llm_statuses = conn.execute(
            "SELECT a.status, count(*) FROM analyses a JOIN tracks t ON t.id = a.track_id "
            "AND t.status = 'kept' WHERE a.analyzer = 'llm' GROUP BY a.status"
        ).fetchall()
    assert llm_statuses == [("ok", 72)]  # a valid LLM analysis for every kept track
    llm_requests = llm.count()
    assert "8 artists, 72 tracks kept, 16 rejected" in first.stdout
    assert "1. " in first.stdout and "Letter to My Brother" in first.stdout  # example search
    with psycopg.connect(database_url) as conn:
        snapshot = conn.execute("SELECT * FROM tracks ORDER BY id").fetchall()
        vectors = conn.execute("SELECT count(*), max(embedded_at) FROM track_embeddings").fetchone()
        models = conn.execute(
            "SELECT name, version, training->>'tracks', training->>'artists' FROM models "
            "ORDER BY name"
        ).fetchall()
        plots = conn.execute("SELECT plots FROM trend_reports").fetchone()[0]
    assert vectors[0] == 72
    # the predictors trained on what the run produced: 64 tracks matched on the sample
    # catalog, 72 with LLM scores, 8 artists; the held-out table is printed with the baselines
    assert models == [
        ("llm_score_predictor", 1, "72", "8"),
        ("popularity_predictor", 1, "64", "8"),
    ]
    assert "predictors (held out by artist" in first.stdout and "mean baseline" in first.stdout
    assert len(plots) == 5
    assert all((tmp_path / "data" / "artifacts" / p).is_file() for p in plots.values())

    second = _cli(env, "run")
    assert second.returncode == 0, second.stdout + second.stderr
    assert llm.count() == llm_requests  # 0 LLM requests over unchanged data
    assert "popularity_predictor: inputs unchanged since popularity_predictor v1" in second.stdout

    # predictions for a track, and for the same lyrics given as new text, with no LLM call
    with psycopg.connect(database_url) as conn:
        track_id, lyrics = conn.execute(
            "SELECT id, lyrics_clean FROM tracks WHERE title = 'Letter to My Brother'"
        ).fetchone()
    (tmp_path / "lyrics.txt").write_text(lyrics, encoding="utf-8")
    by_track = _cli(env, "predict", str(track_id), "--json")
    by_lyrics = _cli(env, "predict", "--lyrics-file", str(tmp_path / "lyrics.txt"), "--json")
    assert by_track.returncode == 0 and by_lyrics.returncode == 0, (
        by_track.stdout + by_lyrics.stdout
    )
    assert llm.count() == llm_requests
    llm.stop()
    track_predictions = json.loads(by_track.stdout)["predictions"]
    lyrics_predictions = json.loads(by_lyrics.stdout)["predictions"]
    assert {p["model"] for p in track_predictions} == {
        "popularity_predictor",
        "llm_score_predictor",
    }
    for from_track, from_lyrics in zip(track_predictions, lyrics_predictions, strict=True):
        assert from_track["version"] == 1 and from_track["held_out_mae"] > 0
        assert from_track["note"].startswith(("promoted", "not promoted"))
        for label, value in from_track["values"].items():
            assert from_lyrics["values"][label] == pytest.approx(value, abs=0.01)
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT * FROM tracks ORDER BY id").fetchall() == snapshot
        # nothing was embedded again
        assert (
            conn.execute("SELECT count(*), max(embedded_at) FROM track_embeddings").fetchone()
            == vectors
        )

    found = _cli(env, "search", "my brother is locked up", "--limit", "2", "--json")
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)
    assert hits[0]["title"] == "Letters to Cell Block C" and hits[0]["matched_lines"]
    assert _cli(env, "similar", "Letter to My Brother", "--limit", "1").returncode == 0
    assert "matches 0 tracks" in _cli(env, "similar", "No Such Song").stdout

    results = evaluate(database_url, k=5)
    assert mean_precision(results, 5) >= PRECISION_AT_5_FLOOR, [(r.query, r.found) for r in results]

    # then `rap-pipeline serve`, and a reader in a real browser on what the run built
    with served(env) as base_url, chromium() as browser:
        search_open_a_track_and_follow_a_similar_one(browser, base_url)


@contextmanager
def served(env: dict[str, str]) -> Iterator[str]:
    """`rap-pipeline serve` on a free port until it answers /health; its output in a file (a
    pipe nobody reads could fill and stall it)."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile("w+") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "rap_pipeline.cli", "serve", "--port", str(port)],
            env={**os.environ, **env},
            stdout=output,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if requests.get(base_url + "/health", timeout=5).status_code == 200:
                        break
                except requests.ConnectionError:
                    pass
                if process.poll() is not None:
                    output.seek(0)
                    raise AssertionError(f"rap-pipeline serve exited: {output.read()[-2000:]}")
                assert time.monotonic() < deadline, "rap-pipeline serve did not become healthy"
                time.sleep(0.5)
            yield base_url
        finally:
            process.terminate()
            process.wait(timeout=30)


def test_run_reports_a_bad_artists_file_clearly(tmp_path: Path):
    bad = tmp_path / "artists.yaml"
    bad.write_text("artists: nope")
    result = _cli({"RAP_DATA_DIR": str(tmp_path / "data")}, "run", "--artists-file", str(bad))
    assert result.returncode == 1
    assert "top-level 'artists:' list" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_a_failing_artist_is_reported_with_its_error(
    database_url: str, embedded: ServiceURLs, tmp_path: Path
):
    artists = tmp_path / "artists.yaml"
    artists.write_text("artists:\n  - Nobody Here\n")
    env = {
        "RAP_DATA_DIR": str(tmp_path / "data"),
        "RAP_DATABASE_URL": database_url,
        "RAP_REDIS_URL": embedded.redis_url,
        "RAP_CORPUS_PATH": str(tmp_path / "missing"),
    }
    result = _cli(env, "run", "--artists-file", str(artists))
    assert result.returncode == 1
    assert "nobody-here" in result.stdout and "does not exist" in result.stdout
    assert "1 artist(s) failed" in result.stdout


def test_run_force_config_is_valid_for_the_main_job():
    import dagster as dg

    from rap_pipeline.cli.run import run_config
    from rap_pipeline.core.settings import Settings
    from rap_pipeline.definitions import build_definitions

    job = build_definitions(Settings()).resolve_job_def("main")
    ops = dg.validate_run_config(job, run_config(force=True))["ops"]
    forced = {name for name, op in ops.items() if (op.get("config") or {}).get("force")}
    assert forced == {"rule_based_analysis", "emotion_analysis", "llm_analysis"}
    assert not dg.validate_run_config(job, run_config(force=False))["ops"]["llm_analysis"][
        "config"
    ]["force"]


def test_backfill_says_what_is_wrong_with_its_arguments(
    database_url: str, embedded: ServiceURLs, tmp_path: Path
):
    env = {
        "RAP_DATA_DIR": str(tmp_path / "data"),
        "RAP_DATABASE_URL": database_url,
        "RAP_REDIS_URL": embedded.redis_url,
    }
    added = _cli(env, "artists", "add", "MC Verity")
    assert added.returncode == 0, added.stdout + added.stderr
    cases = {
        ("tracks",): "exactly one of --artists, --stale, --all",
        ("lyrics", "--all"): "unknown asset(s) lyrics; the assets: emotion_analysis",
        ("tracks", "--artists", "mc-verity,nobody"): "not partitions: nobody",
    }
    for args, message in cases.items():
        result = _cli(env, "backfill", *args)
        assert result.returncode == 1, args
        assert message in " ".join(result.stdout.split()), result.stdout
        assert "Traceback" not in result.stdout + result.stderr
    nothing_due = _cli(env, "backfill", "spotify_tracks", "--stale")
    assert nothing_due.returncode == 0
    assert "nothing is due for these assets: no backfill launched" in nothing_due.stdout
