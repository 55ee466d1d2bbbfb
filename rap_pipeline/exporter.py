"""The pipeline's Prometheus metrics, read fresh on every scrape by one long-running exporter
(``rap-pipeline metrics``): runs are short-lived processes, so they leave their counters in
Redis (``core/api_guard.py``) and their results in PostgreSQL, and the exporter reads those,
plus the Dagster instance, when Prometheus asks. Labels are bounded: providers, analyzers,
statuses, reasons and assets, never tracks, titles or artists.

``METRICS`` documents every series (name, type, labels, meaning); README's table is made from
it and a test checks that every documented series is emitted."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import psycopg
import redis
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from rap_pipeline.core.api_guard import KEY_VERSION, LATENCY_BUCKETS_S
from rap_pipeline.core.database import connect
from rap_pipeline.defs.freshness import DUE_WORK_GRACE, NEW_WORK_GRACE

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MetricDoc:
    name: str
    kind: str  # counter, gauge, histogram
    labels: tuple[str, ...]
    meaning: str


METRICS = [
    # external APIs, from the counters every run process keeps in Redis
    MetricDoc(
        "rap_api_requests_total",
        "counter",
        ("provider",),
        "HTTP requests sent to the provider (retries included)",
    ),
    MetricDoc(
        "rap_api_errors_total",
        "counter",
        ("provider", "error_class"),
        "requests that raised, by exception class (HTTPError, Timeout, …)",
    ),
    MetricDoc(
        "rap_api_request_duration_seconds",
        "histogram",
        ("provider",),
        "time of each request to the provider",
    ),
    MetricDoc(
        "rap_api_cache_lookups_total",
        "counter",
        ("provider", "result"),
        "cache-aside lookups: hit, negative_hit (a cached not-found) or miss",
    ),
    MetricDoc(
        "rap_api_throttled_waits_total",
        "counter",
        ("provider",),
        "waits imposed by the shared rate limiter",
    ),
    MetricDoc(
        "rap_api_rate_limited_total",
        "counter",
        ("provider",),
        "429 answers (everyone pauses for Retry-After)",
    ),
    MetricDoc(
        "rap_api_breaker_opened_total", "counter", ("provider",), "times the circuit breaker opened"
    ),
    MetricDoc(
        "rap_api_breaker_state",
        "gauge",
        ("provider",),
        "circuit breaker now: 0 closed, 1 half-open, 2 open",
    ),
    MetricDoc(
        "rap_llm_tokens_total", "counter", ("kind",), "LLM tokens billed: prompt or completion"
    ),
    MetricDoc(
        "rap_llm_estimated_cost_dollars_total",
        "counter",
        (),
        "estimated LLM spend (RAP_LLM_PRICE_* per million tokens)",
    ),
    # the pipeline's data, from PostgreSQL
    MetricDoc("rap_artists", "gauge", (), "artists (partitions) registered"),
    MetricDoc(
        "rap_tracks",
        "gauge",
        ("status", "reason"),
        "tracks by status (kept, rejected, fetch_failed) and rejection reason",
    ),
    MetricDoc(
        "rap_spotify_tracks",
        "gauge",
        ("status",),
        "Spotify outcomes of tracks: matched, not_found, error, unavailable",
    ),
    MetricDoc(
        "rap_embedded_tracks",
        "gauge",
        ("model",),
        "kept tracks with a vector of their current lyrics",
    ),
    MetricDoc(
        "rap_analyses",
        "gauge",
        ("analyzer", "status"),
        "current analyses: ok, failed (due again), deferred (failed, back-off running)",
    ),
    MetricDoc(
        "rap_analysis_coverage_ratio",
        "gauge",
        ("analyzer",),
        "share of kept tracks with a successful analysis of their current lyrics",
    ),
    MetricDoc(
        "rap_pending_work_age_seconds",
        "gauge",
        ("asset",),
        "age of the oldest work the asset has not done yet (0: none)",
    ),
    MetricDoc(
        "rap_freshness_limit_seconds",
        "gauge",
        ("asset",),
        "age pending work may reach before the asset is stale (the freshness checks' limits)",
    ),
    MetricDoc(
        "rap_predictor_held_out_mae",
        "gauge",
        ("predictor",),
        "held-out MAE (artists never seen in training) of the promoted version",
    ),
    MetricDoc(
        "rap_predictor_baseline_mae",
        "gauge",
        ("predictor", "baseline"),
        "held-out MAE of the baselines the promoted version beat",
    ),
    # infrastructure
    MetricDoc(
        "rap_postgres_up", "gauge", (), "1 if the exporter reached PostgreSQL on this scrape"
    ),
    MetricDoc(
        "rap_postgres_connections",
        "gauge",
        ("state",),
        "connections to the pipeline's database by state (pg_stat_activity)",
    ),
    MetricDoc("rap_redis_up", "gauge", (), "1 if the exporter reached Redis on this scrape"),
    MetricDoc(
        "rap_dagster_runs", "gauge", ("status",), "Dagster runs by status (QUEUED is the run queue)"
    ),
    MetricDoc(
        "rap_exporter_scrape_errors_total",
        "counter",
        ("source",),
        "sources the exporter could not read (postgres, redis, dagster)",
    ),
]
_DOCS = {doc.name: doc for doc in METRICS}
CACHE_RESULTS = {"hits": "hit", "negative_hits": "negative_hit", "misses": "miss"}
DAGSTER_STATUSES = (
    "QUEUED",
    "NOT_STARTED",
    "STARTING",
    "STARTED",
    "SUCCESS",
    "FAILURE",
    "CANCELED",
)


def _family(name: str, **kwargs) -> Metric:
    doc = _DOCS[name]
    kind = {"counter": CounterMetricFamily, "gauge": GaugeMetricFamily}[doc.kind]
    # counters are documented with _total; prometheus_client adds it back on exposition
    base = name.removesuffix("_total") if doc.kind == "counter" else name
    return kind(base, doc.meaning, labels=list(doc.labels), **kwargs)


class PipelineCollector(Collector):
    """Reads every series on each scrape. ``dagster_instance`` returns the Dagster instance
    (or None to skip its series)."""

    def __init__(
        self,
        database_url: str,
        redis_url: str,
        namespace: str = "rap",
        dagster_instance: Callable[[], object] | None = None,
        stale_after_days: int = 30,
        embedding_model: str = "",
        analyzers: dict[str, tuple[str, str]] | None = None,
    ):
        self.database_url = database_url
        self.redis = redis.Redis.from_url(redis_url, socket_connect_timeout=1, socket_timeout=2)
        self.prefix = f"{namespace}:{KEY_VERSION}"
        self.dagster_instance = dagster_instance
        self.stale_after_days = stale_after_days
        self.embedding_model = embedding_model
        # analyzer -> (its asset, its current version): the analyzers whose pending work counts
        self.analyzers = analyzers or {}
        self.errors: dict[str, int] = {"postgres": 0, "redis": 0, "dagster": 0}

    def describe(self) -> Iterator[Metric]:
        return iter(())  # series are only known at scrape time

    def collect(self) -> Iterator[Metric]:
        for source, read in (
            ("redis", self._from_redis),
            ("postgres", self._from_postgres),
            ("dagster", self._from_dagster),
        ):
            try:
                yield from read()
            except Exception as exc:  # one unreachable source must not hide the others
                self.errors[source] += 1
                log.warning("metrics: %s unreadable: %s: %s", source, type(exc).__name__, exc)
                if source in ("redis", "postgres"):
                    up = _family(f"rap_{source}_up")
                    up.add_metric([], 0)
                    yield up
        errors = _family("rap_exporter_scrape_errors_total")
        for source, count in self.errors.items():
            errors.add_metric([source], count)
        yield errors

    # -- Redis: what run processes counted ---------------------------------------------------
    def _providers(self) -> dict[str, dict[str, str]]:
        found = {}
        for key in self.redis.scan_iter(match=f"{self.prefix}:metrics:*", count=100):
            provider = key.decode().rsplit(":", 1)[-1]
            found[provider] = {k.decode(): v.decode() for k, v in self.redis.hgetall(key).items()}
        return found

    def _from_redis(self) -> Iterator[Metric]:
        providers = self._providers()
        up = _family("rap_redis_up")
        up.add_metric([], 1)
        yield up
        simple = {
            "rap_api_requests_total": "calls",
            "rap_api_throttled_waits_total": "throttled_waits",
            "rap_api_rate_limited_total": "rate_limited",
            "rap_api_breaker_opened_total": "breaker_opened",
        }
        for name, field in simple.items():
            family = _family(name)
            for provider, counters in providers.items():
                family.add_metric([provider], float(counters.get(field, 0)))
            yield family
        errors, lookups = _family("rap_api_errors_total"), _family("rap_api_cache_lookups_total")
        latency = HistogramMetricFamily(
            "rap_api_request_duration_seconds",
            _DOCS["rap_api_request_duration_seconds"].meaning,
            labels=["provider"],
        )
        breaker = _family("rap_api_breaker_state")
        for provider, counters in providers.items():
            for field, value in counters.items():
                if field.startswith("errors:"):
                    errors.add_metric([provider, field.split(":", 1)[1]], float(value))
            for field, result in CACHE_RESULTS.items():
                lookups.add_metric([provider, result], float(counters.get(field, 0)))
            cumulative, buckets = 0.0, []
            for bound in LATENCY_BUCKETS_S:
                cumulative += float(counters.get(f"latency_le:{bound}", 0))
                buckets.append((str(bound), cumulative))
            buckets.append(("+Inf", float(counters.get("latency_count", 0))))
            latency.add_metric([provider], buckets, float(counters.get("latency_sum", 0.0)))
            breaker.add_metric([provider], self._breaker_state(provider))
        yield from (errors, lookups, latency, breaker)
        llm = providers.get("llm", {})
        tokens = _family("rap_llm_tokens_total")
        for kind in ("prompt", "completion"):
            tokens.add_metric([kind], float(llm.get(f"{kind}_tokens", 0)))
        cost = _family("rap_llm_estimated_cost_dollars_total")
        cost.add_metric([], float(llm.get("cost_usd", 0.0)))
        yield from (tokens, cost)

    def _breaker_state(self, provider: str) -> float:
        open_until = float(self.redis.hget(f"{self.prefix}:breaker:{provider}", "open_until") or 0)
        if not open_until:
            return 0.0
        return 2.0 if time.time() < open_until else 1.0

    # -- PostgreSQL: what the pipeline holds -------------------------------------------------
    def _from_postgres(self) -> Iterator[Metric]:
        with connect(self.database_url) as conn:
            up = _family("rap_postgres_up")
            up.add_metric([], 1)
            yield up
            yield from self._data(conn)
            yield from self._pending_work(conn)
            yield from self._predictors(conn)
            connections = _family("rap_postgres_connections")
            for state, count in conn.execute(
                """SELECT coalesce(state, 'unknown'), count(*) FROM pg_stat_activity
                   WHERE datname = current_database() GROUP BY 1 ORDER BY 1"""
            ):
                connections.add_metric([state], count)
            yield connections

    def _data(self, conn: psycopg.Connection) -> Iterator[Metric]:
        artists = _family("rap_artists")
        artists.add_metric([], conn.execute("SELECT count(*) FROM artists").fetchone()[0])
        yield artists
        tracks = _family("rap_tracks")
        for status, reason, count in conn.execute(
            """SELECT status, CASE WHEN status = 'rejected' THEN status_reason ELSE '' END,
                      count(*) FROM tracks GROUP BY 1, 2 ORDER BY 1, 2"""
        ):
            tracks.add_metric([status, reason], count)
        yield tracks
        spotify = _family("rap_spotify_tracks")
        for status, count in conn.execute(
            "SELECT status, count(*) FROM spotify_tracks GROUP BY 1 ORDER BY 1"
        ):
            spotify.add_metric([status], count)
        yield spotify
        embedded = _family("rap_embedded_tracks")
        for model, count in conn.execute(
            """SELECT e.model_id, count(*) FROM track_embeddings e
               JOIN tracks t ON t.id = e.track_id AND t.status = 'kept'
                    AND t.lyrics_hash = e.lyrics_hash
               GROUP BY 1 ORDER BY 1"""
        ):
            embedded.add_metric([model], count)
        yield embedded
        analyses, coverage = _family("rap_analyses"), _family("rap_analysis_coverage_ratio")
        kept = conn.execute("SELECT count(*) FROM tracks WHERE status = 'kept'").fetchone()[0]
        rows = conn.execute(
            """SELECT a.analyzer,
                      CASE WHEN a.status = 'ok' THEN 'ok'
                           WHEN a.next_attempt_at > now() THEN 'deferred' ELSE 'failed' END,
                      count(DISTINCT a.track_id)
               FROM analyses a JOIN tracks t ON t.id = a.track_id AND t.status = 'kept'
                    AND t.lyrics_hash = a.input_hash
               GROUP BY 1, 2 ORDER BY 1, 2"""
        ).fetchall()
        for analyzer, status, count in rows:
            analyses.add_metric([analyzer, status], count)
        for analyzer in sorted({analyzer for analyzer, _, _ in rows}):
            ok = sum(c for a, s, c in rows if a == analyzer and s == "ok")
            coverage.add_metric([analyzer], ok / kept if kept else 0.0)
        yield from (analyses, coverage)

    def _pending_work(self, conn: psycopg.Connection) -> Iterator[Metric]:
        ages = conn.execute(
            """SELECT
                 (SELECT extract(epoch FROM now() - min(a.created_at)) FROM artists a
                  WHERE NOT EXISTS (SELECT 1 FROM tracks t WHERE t.artist_slug = a.slug)),
                 (SELECT extract(epoch FROM now() - min(coalesce(
                      s.enriched_at + make_interval(days => %(ttl)s), s.retry_after)))
                  FROM spotify_tracks s
                  WHERE coalesce(s.enriched_at + make_interval(days => %(ttl)s), s.retry_after)
                        < now()),
                 (SELECT extract(epoch FROM now() - min(t.updated_at)) FROM tracks t
                  WHERE t.status = 'kept' AND NOT EXISTS (
                    SELECT 1 FROM track_embeddings e WHERE e.track_id = t.id
                      AND e.model_id = %(model)s AND e.lyrics_hash = t.lyrics_hash))""",
            {"ttl": self.stale_after_days, "model": self.embedding_model},
        ).fetchone()
        age, limit = _family("rap_pending_work_age_seconds"), _family("rap_freshness_limit_seconds")
        limits = {
            "tracks": NEW_WORK_GRACE,
            "spotify_tracks": DUE_WORK_GRACE,
            "lyric_embeddings": NEW_WORK_GRACE,
        }
        for (asset, grace), seconds in zip(limits.items(), ages, strict=True):
            age.add_metric([asset], max(0.0, float(seconds or 0)))
            limit.add_metric([asset], grace.total_seconds())
        for analyzer, (asset, version) in sorted(self.analyzers.items()):
            # kept tracks with no result of the current version, or a failure due again
            (seconds,) = conn.execute(
                """SELECT extract(epoch FROM now() - min(coalesce(a.next_attempt_at, t.updated_at)))
                   FROM tracks t LEFT JOIN analyses a ON a.track_id = t.id
                        AND a.analyzer = %s AND a.analyzer_version = %s
                        AND a.input_hash = t.lyrics_hash
                   WHERE t.status = 'kept'
                     AND (a.track_id IS NULL
                          OR (a.status = 'failed' AND a.next_attempt_at <= now()))""",
                (analyzer, version),
            ).fetchone()
            age.add_metric([asset], max(0.0, float(seconds or 0)))
            limit.add_metric([asset], NEW_WORK_GRACE.total_seconds())
        yield from (age, limit)

    def _predictors(self, conn: psycopg.Connection) -> Iterator[Metric]:
        error, baseline = (
            _family("rap_predictor_held_out_mae"),
            _family("rap_predictor_baseline_mae"),
        )
        for name, scores in conn.execute(
            "SELECT name, metrics->'scores' FROM models WHERE promoted ORDER BY name"
        ):
            error.add_metric([name], scores["model"]["mae"]["value"])
            for candidate, values in scores.items():
                if "baseline" in candidate or "rule" in candidate:
                    baseline.add_metric([name, candidate], values["mae"]["value"])
        yield from (error, baseline)

    # -- the Dagster instance ----------------------------------------------------------------
    def _from_dagster(self) -> Iterator[Metric]:
        if self.dagster_instance is None:
            return
        from dagster import DagsterRunStatus, RunsFilter

        instance = self.dagster_instance()
        runs = _family("rap_dagster_runs")
        for status in DAGSTER_STATUSES:
            count = instance.get_runs_count(RunsFilter(statuses=[DagsterRunStatus(status)]))
            runs.add_metric([status], count)
        yield runs


def build_collector(settings, urls, dagster_instance=None) -> PipelineCollector:
    """The collector for the pipeline that ``settings`` configure, on the servers of ``urls``."""
    from rap_pipeline.defs.analyses.sensors import ANALYZER_ASSETS

    llm_configured = bool(settings.llm_base_url and settings.llm_model)
    return PipelineCollector(
        urls.database_url,
        urls.redis_url,
        dagster_instance=dagster_instance,
        stale_after_days=settings.spotify_stale_after_days,
        embedding_model=settings.embedding_model,
        analyzers={
            analyzer: asset_version
            for analyzer, asset_version in ANALYZER_ASSETS.items()
            if analyzer != "llm" or llm_configured
        },
    )


def serve(collector: PipelineCollector, host: str, port: int):
    """Serves ``/metrics`` in a background thread; returns (server, thread)."""
    from prometheus_client import CollectorRegistry, start_http_server

    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return start_http_server(port, addr=host, registry=registry)
