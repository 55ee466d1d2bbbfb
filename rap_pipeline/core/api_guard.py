"""Protection for external APIs, shared by every process and run through Redis.

- Cache-aside: responses cached per provider and endpoint with their own TTLs; "not found"
  cached with a shorter TTL; errors never cached. Keys are deterministic and versioned
  (``rap:v1:cache:<provider>:<endpoint>:<sha256 of the request>``): bumping ``KEY_VERSION``
  or a provider's ``schema`` invalidates cleanly.
- Rate limiting: GCRA in a Lua script on Redis time, so every process and run shares one
  budget per provider. A 429's ``Retry-After`` pauses the provider for everyone, and the rate is
  halved for ``slowdown_s`` after it.
- Circuit breaker per provider: ``failure_threshold`` consecutive failures open it for
  ``open_s``; then one caller at a time probes (half-open); a success closes it.
- Counters per provider (hits, misses, negative hits, calls, errors by exception class,
  a latency histogram, throttled waits, 429s, breaker opens, failures) in a Redis hash that
  the metrics exporter (``rap_pipeline/exporter.py``) reads on each scrape.

If Redis is unreachable, calls go on uncached with a local per-process limiter and breaker;
one warning is logged and the ``redis_unavailable`` counter counts it. Nothing fails because
the cache is down.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import redis

log = logging.getLogger(__name__)

KEY_VERSION = "v1"
# upper bounds (seconds) of the request latency histogram's buckets
LATENCY_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
T = TypeVar("T")
_NOT_FOUND = {"__not_found__": True}

# KEYS: tat, pause, slowdown. ARGV: interval_ms, burst_ms. Returns ms to wait (0 = go).
_GCRA = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local pause = tonumber(redis.call('GET', KEYS[2]) or '0')
if pause > now then return math.ceil(pause - now) end
local interval = tonumber(ARGV[1]) * tonumber(redis.call('GET', KEYS[3]) or '1')
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or tostring(now))
if tat < now then tat = now end
-- a wait is rounded up: Redis truncates numbers to integers, and 0 means go
if tat - burst > now then return math.ceil(tat - burst - now) end
local ttl = math.ceil(tat + interval - now + burst + 1000)
redis.call('SET', KEYS[1], tostring(tat + interval), 'PX', ttl)
return 0
"""


def _number(text: str) -> int | float:
    return int(text) if text.lstrip("-").isdigit() else float(text)


class CircuitOpenError(RuntimeError):
    """The provider's breaker is open: calls are refused until it half-opens."""


@dataclass(frozen=True)
class ProviderPolicy:
    name: str
    requests_per_s: float
    burst: int = 1
    failure_threshold: int = 5
    open_s: float = 30.0
    slowdown_s: float = 300.0
    cache_ttl_s: dict[str, int] = field(default_factory=dict)  # endpoint → TTL
    default_ttl_s: int = 86_400
    not_found_ttl_s: int = 3_600
    schema: int = 1  # bump when the cached payload's shape changes
    # grants are spaced this much wider than 1/requests_per_s: requests reach the provider a
    # few milliseconds after their grant, unevenly, and the provider counts arrivals
    safety_margin: float = 0.05


class _LocalLimiter:
    """Per-process stand-in for the shared limiter while Redis is unreachable."""

    def __init__(self, interval_s: float):
        self.interval_s = interval_s
        self.next_at = 0.0
        self.lock = threading.Lock()

    def wait_s(self) -> float:
        with self.lock:
            now = time.monotonic()
            start = max(now, self.next_at)
            self.next_at = start + self.interval_s
            return start - now


class ApiGuard:
    def __init__(self, redis_url: str | None, policy: ProviderPolicy, namespace: str = "rap"):
        self.policy = policy
        self.prefix = f"{namespace}:{KEY_VERSION}"
        self.client = (
            redis.Redis.from_url(redis_url, socket_connect_timeout=1, socket_timeout=2)
            if redis_url
            else None
        )
        self._gcra = self.client.register_script(_GCRA) if self.client else None
        self._redis_down_warned = False
        self._redis_ok = self.client is not None
        self._local = _LocalLimiter((1 + policy.safety_margin) / policy.requests_per_s)
        self._local_failures = 0
        self._local_open_until = 0.0
        self.local_counters: Counter[str] = Counter()

    # -- keys and redis access -----------------------------------------------------------
    def _key(self, kind: str, *parts: str) -> str:
        return ":".join((self.prefix, kind, self.policy.name, *parts))

    def _redis(self, operation: Callable[[redis.Redis], T]) -> T | None:
        """Runs a Redis operation; None (and one warning) when Redis is unreachable."""
        if self.client is None:
            return None
        try:
            result = operation(self.client)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            self._redis_ok = False
            self.local_counters["redis_unavailable"] += 1
            if not self._redis_down_warned:
                log.warning(
                    "Redis is unreachable (%s): %s calls go on uncached, with a per-process "
                    "rate limit",
                    type(exc).__name__,
                    self.policy.name,
                )
                self._redis_down_warned = True
            return None
        self._redis_ok = True
        return result

    def recall(self, name: str) -> str | None:
        """A note shared by every process (e.g. what a server was found to support), or
        None when there is none or Redis is unreachable."""
        value = self._redis(lambda r: r.get(self._key("note", name)))
        return value.decode() if isinstance(value, bytes) else value

    def remember(self, name: str, value: str, ttl_s: int) -> None:
        self._redis(lambda r: r.set(self._key("note", name), value, ex=ttl_s))

    def count(self, name: str, amount: int = 1) -> None:
        self.local_counters[name] += amount
        self._redis(lambda r: r.hincrby(self._key("metrics"), name, amount))

    def add(self, name: str, amount: float) -> None:
        """A float counter (e.g. estimated cost)."""
        self.local_counters[name] += amount
        self._redis(lambda r: r.hincrbyfloat(self._key("metrics"), name, amount))

    def observe_latency(self, seconds: float) -> None:
        bucket = next((b for b in LATENCY_BUCKETS_S if seconds <= b), None)

        def record(r: redis.Redis) -> None:
            pipe = r.pipeline()
            if bucket is not None:
                pipe.hincrby(self._key("metrics"), f"latency_le:{bucket}", 1)
            pipe.hincrby(self._key("metrics"), "latency_count", 1)
            pipe.hincrbyfloat(self._key("metrics"), "latency_sum", seconds)
            pipe.execute()

        self._redis(record)

    def counters(self) -> dict[str, int | float]:
        """This provider's shared counters (from Redis), or this process's when it is down."""
        shared = self._redis(lambda r: r.hgetall(self._key("metrics")))
        if shared is None:
            return dict(self.local_counters)
        return {k.decode(): _number(v.decode()) for k, v in shared.items()}

    # -- rate limiting -------------------------------------------------------------------
    def acquire(self) -> float:
        """Blocks until this process may make one call; returns the seconds waited."""
        waited = 0.0
        interval_ms = 1000 / self.policy.requests_per_s * (1 + self.policy.safety_margin)
        burst_ms = interval_ms * (self.policy.burst - 1)
        keys = [self._key("rate"), self._key("rate", "pause"), self._key("rate", "slowdown")]
        while True:
            wait_ms = self._redis(lambda r: self._gcra(keys=keys, args=[interval_ms, burst_ms]))
            wait_s = (int(wait_ms) / 1000) if wait_ms is not None else self._local.wait_s()
            if wait_s <= 0:
                return waited
            self.count("throttled_waits")
            time.sleep(wait_s)
            waited += wait_s
            if wait_ms is None:
                return waited  # the local limiter reserved this slot

    def penalize(self, retry_after_s: float | None) -> None:
        """After a 429: everyone pauses for Retry-After, and the rate halves for a while."""
        self.count("rate_limited")
        pause_s = retry_after_s if retry_after_s is not None else 1.0

        def apply(r: redis.Redis) -> bool:
            now_s, now_us = r.time()
            until_ms = now_s * 1000 + now_us // 1000 + int(pause_s * 1000)
            pipe = r.pipeline()
            pipe.set(self._key("rate", "pause"), until_ms, px=int(pause_s * 1000) + 1000)
            pipe.set(self._key("rate", "slowdown"), 2, ex=int(self.policy.slowdown_s))
            pipe.execute()
            return True

        if self._redis(apply) is None:
            time.sleep(pause_s)  # no shared pause: at least this process waits

    # -- circuit breaker -----------------------------------------------------------------
    def _breaker_state(self) -> str:
        """closed, open, or half_open (the open period is over: one probe may go)."""
        open_until = self._redis(lambda r: r.hget(self._key("breaker"), "open_until"))
        if open_until is None:
            open_until = self._local_open_until if self._down() else 0
        open_until = float(open_until or 0)
        if not open_until:
            return "closed"
        return "open" if time.time() < open_until else "half_open"

    def _down(self) -> bool:
        return not self._redis_ok

    def _check_breaker(self) -> None:
        state = self._breaker_state()
        if state == "closed":
            return
        if state == "half_open":
            probe_ttl_ms = int(self.policy.open_s * 1000)
            won = self._redis(
                lambda r: r.set(self._key("breaker", "probe"), 1, nx=True, px=probe_ttl_ms)
            )
            if won or (won is None and self._down()):
                return
        self.count("breaker_refused")
        raise CircuitOpenError(
            f"{self.policy.name}: {self.policy.failure_threshold} failures in a row; calls "
            f"paused for {self.policy.open_s:.0f} s, then one probe call decides"
        )

    def _record(self, success: bool) -> None:
        key = self._key("breaker")
        if success:
            self._local_failures = 0
            self._local_open_until = 0.0
            self._redis(lambda r: r.delete(key, self._key("breaker", "probe")))
            return
        self.count("failures")
        self._local_failures += 1
        failures = self._redis(lambda r: r.hincrby(key, "failures", 1))
        if failures is None:
            failures = self._local_failures
        if failures >= self.policy.failure_threshold or self._breaker_state() == "half_open":
            until = time.time() + self.policy.open_s
            self._local_open_until = until
            self._local_failures = 0
            self._redis(lambda r: r.hset(key, mapping={"open_until": until, "failures": 0}))
            self._redis(lambda r: r.delete(self._key("breaker", "probe")))
            self.count("breaker_opened")

    # -- calls ---------------------------------------------------------------------------
    def call(
        self,
        fetch: Callable[[], T],
        is_failure: Callable[[Exception], bool] = lambda exc: True,
    ) -> T:
        """One external call under the breaker and the shared rate limit. Raises
        CircuitOpenError without calling when the breaker is open. Only exceptions for which
        ``is_failure`` is true (outages, not e.g. a 404) count towards opening the breaker."""
        self._check_breaker()
        self.acquire()
        self.count("calls")
        started = time.perf_counter()
        try:
            value = fetch()
        except Exception as exc:
            self.observe_latency(time.perf_counter() - started)
            self.count(f"errors:{type(exc).__name__}")
            if is_failure(exc):
                self._record(success=False)
            raise
        self.observe_latency(time.perf_counter() - started)
        self._record(success=True)
        return value

    def cached(
        self,
        endpoint: str,
        request: Any,
        fetch: Callable[[], T],
        is_not_found: Callable[[T], bool] = lambda value: value is None,
        refresh: bool = False,
    ) -> T:
        """Cache-aside: the cached answer for ``request`` (JSON-able), else ``fetch()``;
        ``refresh`` skips the cached answer and replaces it.

        ``fetch`` makes its HTTP requests through ``call`` itself, one ``call`` per attempt, so
        retries are rate limited, counted and seen by the breaker like any other request."""
        digest = hashlib.sha256(
            json.dumps(request, sort_keys=True, default=str).encode()
        ).hexdigest()
        key = self._key("cache", f"s{self.policy.schema}", endpoint, digest)
        raw = None if refresh else self._redis(lambda r: r.get(key))
        if raw is not None:
            payload = json.loads(raw)
            if payload == _NOT_FOUND:
                self.count("negative_hits")
                return None  # type: ignore[return-value]
            self.count("hits")
            return payload
        self.count("misses")
        value = fetch()  # an exception propagates and nothing is cached
        if is_not_found(value):
            self._redis(
                lambda r: r.set(key, json.dumps(_NOT_FOUND), ex=self.policy.not_found_ttl_s)
            )
        else:
            ttl = self.policy.cache_ttl_s.get(endpoint, self.policy.default_ttl_s)
            self._redis(lambda r: r.set(key, json.dumps(value), ex=ttl))
        return value
