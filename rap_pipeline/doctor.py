"""``rap-pipeline doctor``'s checks: each part the pipeline needs, looked at without changing
anything (no migration is applied, no model downloaded). Credentials are reported as set or
not set, never shown."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import psycopg
import redis

from rap_pipeline.core.database import load_migrations
from rap_pipeline.core.settings import Settings

Status = Literal["ok", "warn", "fail"]
MIN_POSTGRES = 15
MIN_PGVECTOR = (0, 8)  # iterative index scans (filtered search)
HEARTBEAT_STALE_S = 300


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str


def _database(url: str) -> list[Check]:
    with psycopg.connect(url, connect_timeout=5) as conn:
        version = conn.info.server_version // 10000
        checks = [
            Check(
                "PostgreSQL",
                "ok" if version >= MIN_POSTGRES else "fail",
                f"version {conn.execute('SHOW server_version').fetchone()[0]}"
                + ("" if version >= MIN_POSTGRES else f" (needs {MIN_POSTGRES} or later)"),
            )
        ]
        row = conn.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
        ).fetchone()
        available = conn.execute(
            "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'"
        ).fetchone()
        found = row[0] if row else available[0] if available else None
        if found is None:
            checks.append(Check("pgvector", "fail", "not installed on this server"))
        else:
            parts = tuple(int(p) for p in found.split(".")[:2])
            ok = parts >= MIN_PGVECTOR
            needed = ".".join(map(str, MIN_PGVECTOR))
            detail = f"version {found}" + ("" if row else " (available, created on first run)")
            checks.append(
                Check(
                    "pgvector", "ok" if ok else "fail", detail + ("" if ok else f"; needs {needed}")
                )
            )
        checks.append(_migrations(conn))
    return checks


def _migrations(conn: psycopg.Connection) -> Check:
    shipped = load_migrations()
    exists = conn.execute("SELECT to_regclass('schema_migrations')").fetchone()[0]
    applied = (
        dict(conn.execute("SELECT version, checksum FROM schema_migrations").fetchall())
        if exists
        else {}
    )
    changed = [m.name for m in shipped if m.version in applied and applied[m.version] != m.checksum]
    if changed:
        return Check("migrations", "fail", f"changed after they were applied: {', '.join(changed)}")
    pending = [m.name for m in shipped if m.version not in applied]
    if pending:
        return Check(
            "migrations", "warn", f"{len(pending)} to apply on the next run ({pending[-1]})"
        )
    return Check("migrations", "ok", f"all {len(shipped)} applied")


def _redis(url: str) -> list[Check]:
    client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
    info = client.info("server")
    return [Check("Redis", "ok", f"version {info['redis_version']}")]


def _embedding_model(settings: Settings) -> list[Check]:
    from rap_pipeline.defs.embeddings.model import load_model

    model = load_model(settings.embedding_model, settings.torch_threads or None)
    return [Check("embedding model", "ok", f"{model.model_id}, {model.dimension} dimensions")]


def _emotion_model(settings: Settings) -> list[Check]:
    from rap_pipeline.defs.resources import build_resources

    analyzer, fallback = build_resources(settings)["emotion_model"].load()
    if fallback:
        return [Check("emotion model", "warn", f"lexicon stands in: {fallback}")]
    return [Check("emotion model", "ok", analyzer.info.method)]


def _dagster() -> list[Check]:
    from dagster import DagsterInstance, RunsFilter

    with DagsterInstance.get() as instance:
        runs = instance.get_runs_count(RunsFilter())
        checks = [Check("Dagster storage", "ok", f"{runs} runs recorded")]
        heartbeats = instance.get_daemon_heartbeats()
    if not heartbeats:
        checks.append(
            Check(
                "Dagster daemon", "warn", "no heartbeat: not running (`rap-pipeline dev` starts it)"
            )
        )
    else:
        age = time.time() - max(h.timestamp for h in heartbeats.values())
        status: Status = "ok" if age < HEARTBEAT_STALE_S else "warn"
        checks.append(Check("Dagster daemon", status, f"last heartbeat {age:.0f} s ago"))
    return checks


def _credentials(settings: Settings) -> list[Check]:
    def state(*values) -> str:
        return "set" if all(v is not None and str(v) for v in values) else "not set"

    genius = state(settings.genius_access_token)
    spotify = state(settings.spotify_client_id, settings.spotify_client_secret)
    llm = state(settings.llm_base_url, settings.llm_model)
    return [
        Check(
            "Genius token",
            "fail" if settings.track_source == "genius" and genius == "not set" else "ok",
            f"{genius} (RAP_TRACK_SOURCE={settings.track_source})",
        ),
        Check(
            "Spotify credentials",
            "ok" if spotify == "set" else "warn",
            spotify + ("" if spotify == "set" else ": sample catalog offline, else not enriched"),
        ),
        Check(
            "LLM server",
            "ok" if llm == "set" else "warn",
            f"{llm}; API key {state(settings.llm_api_key)}" if llm == "set" else "not configured",
        ),
    ]


def run_checks(settings: Settings, database_url: str, redis_url: str) -> list[Check]:
    """Every check; a part that cannot even be reached is one failed check, not a crash."""
    parts: list[tuple[str, Callable[[], list[Check]]]] = [
        ("PostgreSQL", lambda: _database(database_url)),
        ("Redis", lambda: _redis(redis_url)),
        ("Dagster storage", _dagster),
        ("embedding model", lambda: _embedding_model(settings)),
        ("emotion model", lambda: _emotion_model(settings)),
        ("credentials", lambda: _credentials(settings)),
    ]
    checks = []
    for name, check in parts:
        try:
            checks.extend(check())
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            checks.append(Check(name, "fail", f"{type(exc).__name__}: {_first_line(exc)}"))
    return checks


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else ""
