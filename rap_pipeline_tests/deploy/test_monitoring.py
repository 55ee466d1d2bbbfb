"""The monitoring config under deploy/: promtool's checks and unit tests, the dashboard's
expressions, and a real Prometheus scraping the exporter after a small materialization, with
every dashboard and alert expression asked of it through its HTTP API."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import dagster as dg
import promql_parser
import pytest
import requests
import yaml

from rap_pipeline.core.resources import DatabaseResource, RedisResource
from rap_pipeline.core.services import ServiceURLs, free_port
from rap_pipeline.defs.analyses.assets import rule_based_analysis
from rap_pipeline.defs.embeddings.resources import EmbeddingModelResource
from rap_pipeline.defs.predictors.assets import popularity_predictor
from rap_pipeline.defs.predictors.resources import ArtifactsResource
from rap_pipeline.defs.spotify.assets import spotify_tracks
from rap_pipeline.defs.spotify.resources import SpotifyResource
from rap_pipeline.defs.tracks.assets import tracks
from rap_pipeline.defs.tracks.resources import TrackSourceResource
from rap_pipeline.exporter import METRICS, PipelineCollector, serve
from rap_pipeline_tests.conftest import add_artists
from rap_pipeline_tests.defs.predictors.generated import EMBEDDING_MODEL, seed_corpus
from rap_pipeline_tests.fakes.spotify_server import CLIENT_ID, CLIENT_SECRET, FakeSpotify

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
RULES = PROMETHEUS_DIR / "rules" / "rap_pipeline.yml"
RULE_TESTS = PROMETHEUS_DIR / "rules" / "rap_pipeline.test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "rap_pipeline.json"
COMPARISONS = {">", "<", "==", "!=", ">=", "<="}


def tool(name: str) -> str:
    """The binary, or a skip saying how to get it (a failure where CI must have it)."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed: apt-get install prometheus (.ci/run does)"
        if os.environ.get("RAP_REQUIRE_TOOLS"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def alerts() -> dict[str, str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["alert"]: rule["expr"] for group in groups for rule in group["rules"]}


def dashboard_expressions() -> dict[str, str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return {
        f"{panel['title']} ({target['refId']})": target["expr"]
        for panel in panels
        for target in panel.get("targets", [])
    }


def measured_part(expr: str) -> str:
    """An alert's expression without its threshold: the series it judges, which must exist
    even when nothing is wrong (``a > b and c`` → ``a``)."""
    node = promql_parser.parse(expr)
    while isinstance(node, promql_parser.BinaryExpr) and (
        str(node.op) in ("and", "unless") or str(node.op) in COMPARISONS
    ):
        node = node.lhs
    return str(node)


def metric_names(node) -> set[str]:
    """The metric names an expression selects, from its syntax tree."""
    if isinstance(node, str):
        node = promql_parser.parse(node)
    if isinstance(node, promql_parser.VectorSelector):
        return {node.name}
    if isinstance(node, promql_parser.MatrixSelector):
        return metric_names(node.vector_selector)
    children = [getattr(node, attr, None) for attr in ("lhs", "rhs", "expr", "param")]
    children += list(getattr(node, "args", None) or [])
    return set().union(*(metric_names(child) for child in children if child is not None))


def documented(name: str) -> bool:
    names = {doc.name for doc in METRICS}
    base = re.sub(r"_(bucket|sum|count)$", "", name)
    return name == "up" or name in names or base in names


def test_promtool_accepts_the_config_and_the_rules():
    promtool = tool("promtool")
    for args in (
        ["check", "config", str(PROMETHEUS_DIR / "prometheus.yml")],
        ["check", "rules", str(RULES)],
    ):
        done = subprocess.run([promtool, *args], capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_fires_when_it_should_in_promtools_unit_tests():
    promtool = tool("promtool")
    done = subprocess.run(
        [promtool, "test", "rules", str(RULE_TESTS)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    tested = {
        case["alertname"]
        for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for case in test["alert_rule_test"]
        if case["exp_alerts"]
    }
    assert tested == set(alerts())


def test_dashboard_and_alerts_query_only_series_the_exporter_documents():
    expressions = {**dashboard_expressions(), **alerts()}
    assert len(dashboard_expressions()) >= 20
    for title, expr in expressions.items():
        promql_parser.parse(expr)  # raises on invalid PromQL
        names = metric_names(expr)
        assert names, title
        assert all(documented(name) for name in names), (title, names)
    readme = (ROOT / "README.md").read_text()
    for doc in METRICS:
        assert f"`{doc.name}`" in readme, f"{doc.name} is missing from README's metrics table"


@pytest.fixture
def prometheus(tmp_path: Path):
    """Starts a real Prometheus on the repo's rules, scraping ``targets`` every 2 s (a scrape
    slower than its timeout marks every series stale: the timeout is the whole interval)."""
    binary = tool("prometheus")
    processes = []

    def start(target: str) -> str:
        port = free_port()
        config = {
            "global": {
                "scrape_interval": "2s",
                "scrape_timeout": "2s",
                "evaluation_interval": "2s",
            },
            "rule_files": [str(RULES)],
            "scrape_configs": [
                {"job_name": "rap_pipeline", "static_configs": [{"targets": [target]}]}
            ],
        }
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
        processes.append(
            subprocess.Popen(
                [
                    binary,
                    f"--config.file={tmp_path / 'prometheus.yml'}",
                    f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdout=subprocess.DEVNULL,
                stderr=open(tmp_path / "prometheus.log", "w"),  # noqa: SIM115
            )
        )
        return f"http://127.0.0.1:{port}"

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=30)


def query(base: str, expr: str) -> list:
    answer = requests.get(f"{base}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert answer["status"] == "success", (expr, answer)
    return answer["data"]["result"]


def query_with_data(base: str, expr: str, seconds: float = 15) -> list:
    """The answer to ``expr`` once it has data (a slow scrape may leave a gap), else ``[]``."""
    deadline = time.monotonic() + seconds
    while not (result := query(base, expr)) and time.monotonic() < deadline:
        time.sleep(1)
    return result


@pytest.mark.slow
def test_a_real_prometheus_has_data_for_every_panel_and_alert(
    database_url: str,
    embedded: ServiceURLs,
    instance: dg.DagsterInstance,
    tmp_path: Path,
    prometheus,
):
    # a small materialization: one sample artist's tracks, its Spotify matches through spotipy
    # against the local Spotify server (one answer a 500, as Spotify at its worst), its
    # rule-based analysis; and a popularity predictor promoted on a generated corpus
    namespace = f"test{uuid.uuid4().hex[:8]}"
    (slug,) = add_artists(database_url, instance, "Big Tundra")
    with FakeSpotify() as fake:
        fake.fail_next("search", status=500)
        spotify = SpotifyResource(
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            api_root=fake.api_root,
            token_url=fake.token_url,
            requests_per_s=200.0,
            backoff_initial_s=0.01,
            redis=RedisResource(url=embedded.redis_url, namespace=namespace),
        )
        result = dg.materialize(
            [tracks, spotify_tracks, rule_based_analysis],
            partition_key=slug,
            instance=instance,
            resources={
                "database": DatabaseResource(url=database_url),
                "track_source": TrackSourceResource(),
                "spotify": spotify,
            },
        )
    assert result.success
    seed_corpus(database_url)
    dg.materialize(
        [popularity_predictor],
        instance=instance,
        resources={
            "database": DatabaseResource(url=database_url),
            "artifacts": ArtifactsResource(directory=str(tmp_path / "artifacts")),
            "embedding_model": EmbeddingModelResource(model_id=EMBEDDING_MODEL),
        },
    )

    collector = PipelineCollector(
        database_url,
        embedded.redis_url,
        namespace=namespace,
        dagster_instance=lambda: instance,
        embedding_model=EMBEDDING_MODEL,
        analyzers={"rule_based": ("rule_based_analysis", "1")},
    )
    exporter_port = free_port()
    server, _ = serve(collector, "127.0.0.1", exporter_port)
    try:
        base = prometheus(f"127.0.0.1:{exporter_port}")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # rates need two scrapes; wait for a few
            try:
                samples = query(base, 'count_over_time(up{job="rap_pipeline"}[1m])')
            except requests.ConnectionError:
                samples = []
            if samples and float(samples[0]["value"][1]) >= 5:
                break
            time.sleep(1)
        else:
            pytest.fail((tmp_path / "prometheus.log").read_text()[-3000:])

        emitted = {r["metric"]["__name__"] for r in query_with_data(base, '{__name__=~"rap_.+"}')}
        for doc in METRICS:
            wanted = f"{doc.name}_bucket" if doc.kind == "histogram" else doc.name
            assert wanted in emitted, f"{doc.name} was not scraped"
        assert query_with_data(base, 'rap_api_errors_total{provider="spotify"} > 0')  # the 500

        for title, expr in dashboard_expressions().items():
            assert query_with_data(base, expr), f"dashboard panel {title!r} has no data: {expr}"
        for name, expr in alerts().items():
            query(base, expr)  # valid as written, firing or not
            measured = measured_part(expr)
            assert query_with_data(base, measured), f"alert {name}: {measured} has no data"
        rules = requests.get(f"{base}/api/v1/rules", timeout=10).json()["data"]["groups"]
        assert {r["name"] for g in rules for r in g["rules"]} == set(alerts())
        assert all(r["health"] == "ok" for g in rules for r in g["rules"])
    finally:
        server.shutdown()


def test_the_metrics_command_serves_and_reports_an_unreachable_redis(
    database_url: str, tmp_path: Path
):
    port = free_port()
    env = {
        **os.environ,
        "RAP_DATA_DIR": str(tmp_path / "data"),
        "RAP_DATABASE_URL": database_url,
        "RAP_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "rap_pipeline.cli", "metrics", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                body = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
                break
            except requests.ConnectionError:
                assert process.poll() is None, process.stdout.read()
                assert time.monotonic() < deadline, "the exporter did not start"
                time.sleep(0.5)
    finally:
        process.terminate()
        process.wait(timeout=30)
    lines = set(body.splitlines())
    assert "rap_redis_up 0.0" in lines and "rap_postgres_up 1.0" in lines
    assert 'rap_exporter_scrape_errors_total{source="redis"} 1.0' in lines
    assert "rap_artists 0.0" in lines  # the rest is still read
    assert any(line.startswith('rap_dagster_runs{status="QUEUED"}') for line in lines)
