"""`rap-pipeline run` end to end on the bundled sample corpus (what `make run` does)."""

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from rap_pipeline.core.services import ServiceURLs


def _run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rap_pipeline.cli", "run"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **env, "COLUMNS": "200"},
    )


@pytest.mark.slow
def test_run_collects_the_sample_artists_and_a_second_run_changes_nothing(
    database_url: str, embedded: ServiceURLs, tmp_path: Path
):
    env = {
        "RAP_DATA_DIR": str(tmp_path / "data"),
        "RAP_DATABASE_URL": database_url,
        "RAP_REDIS_URL": embedded.redis_url,
    }
    first = _run(env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "8 artists, 72 tracks kept, 16 rejected" in first.stdout
    with psycopg.connect(database_url) as conn:
        snapshot = conn.execute("SELECT * FROM tracks ORDER BY id").fetchall()
        assert conn.execute("SELECT count(DISTINCT artist_slug) FROM tracks").fetchone()[0] == 8

    second = _run(env)
    assert second.returncode == 0, second.stdout + second.stderr
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT * FROM tracks ORDER BY id").fetchall() == snapshot


def test_run_reports_a_bad_artists_file_clearly(tmp_path: Path):
    bad = tmp_path / "artists.yaml"
    bad.write_text("artists: nope")
    result = subprocess.run(
        [sys.executable, "-m", "rap_pipeline.cli", "run", "--artists-file", str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "RAP_DATA_DIR": str(tmp_path / "data")},
    )
    assert result.returncode == 1
    assert "top-level 'artists:' list" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
