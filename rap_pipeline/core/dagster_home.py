"""The Dagster instance of a data directory: DAGSTER_HOME and the variables dagster.yaml reads."""

from __future__ import annotations

import os
import shutil
from urllib.parse import quote

from rap_pipeline.core.paths import project_file
from rap_pipeline.core.services import ServiceURLs
from rap_pipeline.core.settings import Settings

DAGSTER_SCHEMA = "dagster"


def dagster_storage_url(database_url: str) -> str:
    """The pipeline database, with Dagster's tables kept in their own schema, and commits that
    do not wait for the WAL flush: a run writes several events per partition, each its own
    transaction. A PostgreSQL crash can then lose the last fraction of a second of events
    (never corrupt them); a partition whose materialization was lost is run again, which
    the assets' idempotence makes cheap.

    dagster-postgres needs the psycopg2 driver (its queries use psycopg2's client-side
    parameters), while SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3.
    """
    scheme, rest = database_url.split("://", 1)
    separator = "&" if "?" in rest else "?"
    options = quote(f"-csearch_path={DAGSTER_SCHEMA} -csynchronous_commit=off")
    return f"postgresql+psycopg2://{rest}{separator}options={options}"


# Dagster's opt-in batch writes: the materializations of one multi-partition step are stored
# in a few statements instead of a few per partition (a run holds up to PARTITIONS_PER_RUN).
EVENT_BATCH_SIZE = "100"


def dagster_environment(settings: Settings, urls: ServiceURLs) -> dict[str, str]:
    """Writes <data_dir>/dagster_home/dagster.yaml (from the repo's) and returns the environment
    that points Dagster at it. Everything Dagster starts (webserver, daemon, code server, run
    workers) inherits it, so every process agrees on the data directory and the servers."""
    home = settings.resolved_data_dir / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(project_file("dagster.yaml"), home / "dagster.yaml")
    return {
        "DAGSTER_HOME": str(home),
        "RAP_DATA_DIR": str(settings.resolved_data_dir),
        "RAP_DAGSTER_POSTGRES_URL": dagster_storage_url(urls.database_url),
        "RAP_DAGSTER_ARTIFACTS_DIR": str(home / "storage"),
        "DAGSTER_EVENT_BATCH_SIZE": EVENT_BATCH_SIZE,
    }


def use_dagster_environment(settings: Settings, urls: ServiceURLs) -> None:
    os.environ.update(dagster_environment(settings, urls))


# Steps of a pool that may run at once across all runs. dagster.yaml can only hold a default
# for every pool; these are set on the instance when a pool has no limit yet, so a limit
# changed later (UI, or `rap-pipeline dagster instance concurrency set POOL N`) is kept.
POOL_LIMITS = {
    "lyrics_source": 2,  # Genius (or the local corpus): tracks
    "spotify_api": 2,  # spotify_tracks; requests are also paced by the shared Redis limiter
    "llm_api": 1,  # llm_analysis; a run has RAP_LLM_CONCURRENCY requests in flight
    "vector_index": 1,  # lyric_embeddings, similar_tracks: the model and HNSW writes
}


def apply_pool_limits(instance) -> None:
    """Sets ``POOL_LIMITS`` on the instance for the pools that have no limit yet."""
    storage = instance.event_log_storage
    existing = storage.get_concurrency_keys()
    for pool, limit in POOL_LIMITS.items():
        if pool not in existing:
            storage.set_concurrency_slots(pool, limit)
