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
    """The pipeline database, with Dagster's tables kept in their own schema.

    dagster-postgres needs the psycopg2 driver (its queries use psycopg2's client-side
    parameters), while SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3.
    """
    scheme, rest = database_url.split("://", 1)
    separator = "&" if "?" in rest else "?"
    options = quote(f"-csearch_path={DAGSTER_SCHEMA}")
    return f"postgresql+psycopg2://{rest}{separator}options={options}"


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
    }


def use_dagster_environment(settings: Settings, urls: ServiceURLs) -> None:
    os.environ.update(dagster_environment(settings, urls))
