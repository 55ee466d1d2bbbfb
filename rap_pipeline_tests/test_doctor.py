"""`rap-pipeline doctor` against the real servers: a table of checks, secrets never shown, and
a non-zero exit when a part is missing."""

import os
import subprocess
import sys
from pathlib import Path

import psycopg

from rap_pipeline.core.services import ServiceURLs, free_port

SECRET = "sk-do-not-print-this-value-8271"


def doctor(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rap_pipeline.cli", "doctor"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env, "COLUMNS": "200"},
    )


def test_a_healthy_setup_passes_and_no_secret_is_printed(
    database_url: str, embedded: ServiceURLs, tmp_path: Path
):
    done = doctor(
        {
            "RAP_DATA_DIR": str(tmp_path),
            "RAP_DATABASE_URL": database_url,
            "RAP_REDIS_URL": embedded.redis_url,
            "SPOTIFY_CLIENT_ID": "client-id-visible-nowhere",
            "SPOTIFY_CLIENT_SECRET": SECRET,
            "RAP_LLM_BASE_URL": "http://127.0.0.1:9/v1",
            "RAP_LLM_MODEL": "some-model",
            "RAP_LLM_API_KEY": SECRET,
            "RAP_EMOTION_MODEL": "example/not-a-model-here",
        }
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = {line.split("│")[1].strip(): line for line in done.stdout.splitlines() if "│" in line}
    for check in (
        "PostgreSQL",
        "pgvector",
        "migrations",
        "Redis",
        "Dagster storage",
        "embedding model",
    ):
        assert " ok " in lines[check], lines.get(check)
    assert "all 8 applied" in lines["migrations"]
    assert " warn " in lines["Dagster daemon"] and " warn " in lines["emotion model"]
    assert "set; API key set" in lines["LLM server"] and " ok " in lines["Spotify credentials"]
    output = done.stdout + done.stderr
    assert SECRET not in output and "client-id-visible-nowhere" not in output
    assert database_url.split("@")[0] not in output  # no credentials of the database URL


def test_a_missing_part_fails_the_doctor_and_the_rest_is_still_checked(
    embedded: ServiceURLs, database_url: str, tmp_path: Path
):
    # a database nobody migrated yet, and a Redis that is not there
    fresh = database_url.rsplit("/", 1)[0] + "/doctor_unmigrated"
    admin_url = database_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS doctor_unmigrated")
        admin.execute("CREATE DATABASE doctor_unmigrated")
    try:
        done = doctor(
            {
                "RAP_DATA_DIR": str(tmp_path),
                "RAP_DATABASE_URL": fresh,
                "RAP_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
                "RAP_TRACK_SOURCE": "genius",  # and no Genius token
                "RAP_EMOTION_MODEL": "example/not-a-model-here",
            }
        )
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute("DROP DATABASE doctor_unmigrated WITH (FORCE)")
    assert done.returncode == 1, done.stdout + done.stderr
    lines = {line.split("│")[1].strip(): line for line in done.stdout.splitlines() if "│" in line}
    assert " fail " in lines["Redis"] and "ConnectionError" in lines["Redis"]
    assert " fail " in lines["Genius token"]
    assert " warn " in lines["migrations"] and "8 to apply" in lines["migrations"]
    assert " ok " in lines["PostgreSQL"]
    assert "check(s) failed" in done.stdout
