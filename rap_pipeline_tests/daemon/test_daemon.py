"""The real Dagster daemon keeps the pipeline fresh, with no other action: a new artist is
materialized through the whole graph; a new analyzer version re-runs that analyzer (and what
combines it) for every partition and nothing else; a partition whose Spotify data comes due
is re-enriched alone; `rap-pipeline backfill --force` re-enriches the partition it names; the
UI's "re-execute" of a multi-partition run runs the same partitions again, in one run.

The daemon (``dagster-daemon run``) runs against the embedded PostgreSQL of the test session,
launching each run in its own process as it would for a user; Spotify is the local server
over the bundled sample catalog; the code location is ``daemon/definitions.py`` (the real
definitions, with sensors ticking every few seconds)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import psycopg
import pytest
import requests
from dagster._core.scheduler.instigation import InstigatorType
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from dagster_graphql.client.query import LAUNCH_PIPELINE_REEXECUTION_MUTATION

from rap_pipeline.benchmarks.setup import stop_process_group
from rap_pipeline.core.dagster_home import dagster_environment
from rap_pipeline.core.services import ServiceURLs, free_port
from rap_pipeline.core.settings import Settings
from rap_pipeline.samples.spotify_catalog_server import CatalogServer, load_sample_catalog

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ASSETS = (
    "tracks",
    "spotify_tracks",
    "lyric_embeddings",
    "similar_tracks",
    "rule_based_analysis",
    "emotion_analysis",
    "llm_analysis",
    "hybrid_analysis",
)
ARTISTS = {"mc-verity": "MC Verity", "lil-ember": "Lil Ember"}  # of the sample corpus


@pytest.fixture
def environment(tmp_path: Path, database_url: str, embedded: ServiceURLs) -> Iterator[dict]:
    """The environment of every process of the test: CLI, daemon, code server, runs."""
    with CatalogServer(load_sample_catalog(), "daemon-id", "daemon-secret") as spotify:
        settings = Settings(data_dir=tmp_path / "data")
        urls = ServiceURLs(database_url=database_url, redis_url=embedded.redis_url)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RAP_", "SPOTIFY_"))}
        env.update(
            dagster_environment(settings, urls),
            RAP_DATABASE_URL=database_url,
            RAP_REDIS_URL=embedded.redis_url,
            RAP_ARTISTS_FILE=str(tmp_path / "no-artists-file.yaml"),
            SPOTIFY_CLIENT_ID="daemon-id",
            SPOTIFY_CLIENT_SECRET="daemon-secret",
            SPOTIFY_API_ROOT=spotify.api_root,
            SPOTIFY_TOKEN_URL=spotify.token_url,
            PYTHONPATH=str(REPO),
        )
        yield env


@contextmanager
def process_group(command: list[str], env: dict, log: Path) -> Iterator[subprocess.Popen]:
    """A Dagster process (and its children) writing to ``log``, stopped at the end."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            command,
            env=env,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield process
        finally:
            stop_process_group(process)


CODE_LOCATION = ("-m", "rap_pipeline_tests.daemon.definitions", "-d", str(REPO))


@contextmanager
def running_daemon(env: dict, log: Path, **extra: str) -> Iterator[None]:
    with process_group([str(BIN / "dagster-daemon"), "run", *CODE_LOCATION], {**env, **extra}, log):
        yield


@contextmanager
def running_webserver(env: dict, log: Path, **extra: str) -> Iterator[str]:
    """The Dagster UI's server on the same code location; yields its GraphQL endpoint."""
    port = free_port()
    command = [str(BIN / "dagster-webserver"), *CODE_LOCATION, "-h", "127.0.0.1", "-p", str(port)]
    with process_group(command, {**env, **extra}, log) as process:
        base = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            assert process.poll() is None, "the webserver exited"
            try:
                return requests.get(base + "/server_info", timeout=5).ok
            except requests.ConnectionError:
                return False

        wait_until(answers, 120, "the webserver answering", log)
        yield base + "/graphql"


def wait_until(condition: Callable[[], bool], timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(2)
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
    raise AssertionError(f"after {timeout:.0f} s: not {what}\n--- daemon log ---\n{tail}")


def materializations(instance: dg.DagsterInstance) -> Counter:
    """(asset, partition) → number of materializations."""
    found: Counter = Counter()
    for name in ASSETS:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey(name)), limit=10_000
        ).records
        found.update((name, record.partition_key) for record in records)
    return found


def no_run_in_flight(instance: dg.DagsterInstance) -> bool:
    """Every run ended: stopping the daemon stops the runs it launched (they fail)."""
    in_flight = [
        dg.DagsterRunStatus.QUEUED,
        dg.DagsterRunStatus.STARTING,
        dg.DagsterRunStatus.STARTED,
    ]
    return not instance.get_runs_count(dg.RunsFilter(statuses=in_flight))


def automation_ticked(instance: dg.DagsterInstance) -> bool:
    for state in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR):
        if state.origin.instigator_name == "automation_sensor":
            return bool(instance.get_ticks(state.instigator_origin_id, state.selector_id, limit=1))
    return False


@pytest.mark.slow
@pytest.mark.timeout(1500)  # runs are processes of their own; the phases wait for the daemon
def test_the_daemon_keeps_the_pipeline_fresh(
    environment: dict, tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
):
    for name in ("DAGSTER_HOME", "RAP_DAGSTER_POSTGRES_URL", "RAP_DAGSTER_ARTIFACTS_DIR"):
        monkeypatch.setenv(name, environment[name])
    log = tmp_path / "daemon.log"
    with dg.DagsterInstance.get() as instance:
        # 1. a new artist, added through the CLI, is materialized through the whole graph
        with running_daemon(environment, log):
            wait_until(lambda: automation_ticked(instance), 120, "ticking", log)
            subprocess.run(
                [str(BIN / "rap-pipeline"), "artists", "add", *ARTISTS.values()],
                env=environment,
                cwd=tmp_path,
                check=True,
            )
            expected = {(asset, slug) for asset in ASSETS for slug in ARTISTS}
            wait_until(
                lambda: expected <= set(materializations(instance)),
                420,
                "every asset materialized for both new artists",
                log,
            )
            # a run's last materialization comes before its end (resources torn down)
            wait_until(lambda: no_run_in_flight(instance), 120, "every run ended", log)
        failed = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]))
        assert not failed
        before = materializations(instance)
        assert set(before.values()) == {1}  # each partition of each asset exactly once

        # 2. a new version of one analyzer: that asset for every partition, and the hybrid
        # profile that combines it; nothing else
        with running_daemon(environment, log, RAP_TEST_NEW_CODE_VERSION="rule_based_analysis"):
            rerun = {(a, s) for a in ("rule_based_analysis", "hybrid_analysis") for s in ARTISTS}

            def bumped() -> bool:
                now = materializations(instance)
                return all(now[key] == before[key] + 1 for key in rerun)

            wait_until(bumped, 300, "the analyzer re-run for every partition", log)
            time.sleep(15)  # a few more ticks: nothing else may follow
            after_bump = materializations(instance)
            assert after_bump - before == Counter(dict.fromkeys(rerun, 1))

            # 3. one partition's Spotify matches come due (older than the 30-day TTL in a
            # few seconds): that partition's spotify_tracks alone is re-enriched
            with psycopg.connect(database_url) as conn:
                stale = conn.execute(
                    "UPDATE spotify_tracks SET enriched_at = now() - interval '30 days' "
                    "+ interval '5 seconds' WHERE artist_slug = 'lil-ember' "
                    "AND status = 'matched' RETURNING track_id"
                ).fetchall()
            assert stale
            refreshed = ("spotify_tracks", "lil-ember")
            wait_until(
                lambda: materializations(instance)[refreshed] == after_bump[refreshed] + 1,
                180,
                "lil-ember's Spotify data re-enriched",
                log,
            )
            time.sleep(10)
            after_refresh = materializations(instance)
            assert after_refresh - after_bump == Counter({refreshed: 1})

            # 4. a person disputes one artist's matches: a forced backfill from the terminal
            # re-searches every kept track of that partition, and touches nothing else
            launched = subprocess.run(
                [
                    str(BIN / "rap-pipeline"),
                    "backfill",
                    "spotify_tracks",
                    "--artists",
                    "mc-verity",
                    "--force",
                ],
                env=environment,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                check=True,
            )
            assert "/runs/b/" in launched.stdout
            forced = ("spotify_tracks", "mc-verity")
            wait_until(
                lambda: materializations(instance)[forced] == after_refresh[forced] + 1,
                180,
                "the forced backfill of mc-verity's Spotify data done",
                log,
            )
            time.sleep(10)
            assert materializations(instance) - after_refresh == Counter({forced: 1})
            latest = instance.fetch_materializations(
                dg.AssetRecordsFilter(
                    asset_key=dg.AssetKey("spotify_tracks"), asset_partitions=["mc-verity"]
                ),
                limit=1,
            ).records[0]
            metadata = latest.asset_materialization.metadata
            with psycopg.connect(database_url) as conn:
                kept = conn.execute(
                    "SELECT count(*) FROM tracks WHERE artist_slug = 'mc-verity' "
                    "AND status = 'kept'"
                ).fetchone()[0]
            assert metadata["tracks_enriched_this_run"].value == kept

            # 5. the UI's "re-execute" of the analyzer's multi-partition run (the mutation the
            # UI sends): the same assets over the same partitions, in one run, nothing else
            latest = {
                slug: instance.fetch_materializations(
                    dg.AssetRecordsFilter(
                        asset_key=dg.AssetKey("rule_based_analysis"), asset_partitions=[slug]
                    ),
                    limit=1,
                ).records[0]
                for slug in ARTISTS
            }
            (parent_id,) = {record.run_id for record in latest.values()}  # one batched run
            parent = instance.get_run_by_id(parent_id)
            assert {
                parent.tags[ASSET_PARTITION_RANGE_START_TAG],
                parent.tags[ASSET_PARTITION_RANGE_END_TAG],
            } == set(ARTISTS)
            before_ui = materializations(instance)
            with running_webserver(
                environment, log, RAP_TEST_NEW_CODE_VERSION="rule_based_analysis"
            ) as graphql:
                answer = requests.post(
                    graphql,
                    json={
                        "query": LAUNCH_PIPELINE_REEXECUTION_MUTATION,
                        "variables": {
                            "reexecutionParams": {"parentRunId": parent_id, "strategy": "ALL_STEPS"}
                        },
                    },
                    timeout=60,
                ).json()
            launched_run = answer["data"]["launchPipelineReexecution"]
            assert launched_run["__typename"] == "LaunchRunSuccess", answer
            child_id = launched_run["run"]["runId"]
            again = {(key.path[-1], slug) for key in parent.asset_selection for slug in ARTISTS}
            assert ("rule_based_analysis", "mc-verity") in again
            wait_until(
                lambda: all(materializations(instance)[k] == before_ui[k] + 1 for k in again),
                180,
                "the re-executed run's partitions materialized",
                log,
            )
            wait_until(lambda: instance.get_run_by_id(child_id).is_finished, 120, "it ended", log)
            time.sleep(10)
            assert materializations(instance) - before_ui == Counter(dict.fromkeys(again, 1))
            child = instance.get_run_by_id(child_id)
            assert child.status == dg.DagsterRunStatus.SUCCESS
            assert child.parent_run_id == parent_id
            assert all(
                child.tags[tag] == parent.tags[tag]
                for tag in (ASSET_PARTITION_RANGE_START_TAG, ASSET_PARTITION_RANGE_END_TAG)
            )
            # stopping the daemon would interrupt a run still tearing down
            wait_until(lambda: no_run_in_flight(instance), 120, "every run ended", log)
        with psycopg.connect(database_url) as conn:
            still_stale = conn.execute(
                "SELECT count(*) FROM spotify_tracks WHERE artist_slug = 'lil-ember' "
                "AND enriched_at < now() - interval '29 days'"
            ).fetchone()[0]
        assert still_stale == 0
        assert not instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]))
