"""What every request of the API goes through: a body size limit, a per-client rate limit
shared by every worker (a fixed window counted in Redis), and the service's Prometheus metrics
(route templates as labels, never values).

Plain ASGI middleware on the event loop with Redis' asyncio client: no task, stream or
thread per request, which Starlette's ``@app.middleware("http")`` and a synchronous Redis call
would each add on the path of every search."""

from __future__ import annotations

import logging
import time

import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.datastructures import Headers, State
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 100_000
UNLIMITED_PATHS = ("/health", "/metrics")
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The API's one error shape: ``{"error": {"code", "message"}}``."""
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


class RequestGuard:
    """``state.redis`` (an asyncio client, opened by the app's lifespan) counts the requests;
    without Redis, requests go on unlimited and one warning says so."""

    def __init__(
        self, app: ASGIApp, state: State, requests_per_minute: int, registry: CollectorRegistry
    ):
        self.app = app
        self.state = state
        self.requests_per_minute = requests_per_minute
        self.warned = False
        self.requests = Counter(
            "rap_api_http_requests",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "rap_api_http_request_duration_seconds",
            "time to answer, by route template",
            ["route"],
            registry=registry,
            buckets=LATENCY_BUCKETS_S,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts: an error the server's handler answers

        async def noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            refusal = await self._refusal(scope)
            if refusal is None:
                await self.app(scope, receive, noting_status)
            else:
                await refusal(scope, receive, noting_status)
        finally:
            template = getattr(scope.get("route"), "path", "unmatched")
            self.requests.labels(template, scope["method"], str(status)).inc()
            self.latency.labels(template).observe(time.perf_counter() - started)

    async def _refusal(self, scope: Scope) -> JSONResponse | None:
        length = Headers(scope=scope).get("content-length")
        if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
            return error_response(413, "too_large", f"the body is over {MAX_BODY_BYTES} bytes")
        if scope["path"] in UNLIMITED_PATHS:
            return None
        wait = await self._seconds_to_wait(scope)
        if wait is None:
            return None
        message = f"too many requests; retry in {wait} s"
        return error_response(429, "rate_limited", message, {"Retry-After": str(wait)})

    async def _seconds_to_wait(self, scope: Scope) -> int | None:
        """Seconds until this client's window resets when it used up its requests; else None.

        The count is per client and per service port: the workers (or pods) of one service
        share it; another service on the same Redis, such as the API benchmark's, does not."""
        now = time.time()
        client = scope["client"][0] if scope.get("client") else "unknown"
        port = scope["server"][1] if scope.get("server") else 0
        key = f"rap:v1:api:rate:{port}:{client}:{int(now // 60)}"
        try:
            async with self.state.redis.pipeline() as pipe:  # MULTI: the count gets its expiry
                count, _ = await pipe.incr(key).expire(key, 61).execute()
        except (aioredis.RedisError, OSError) as exc:
            if not self.warned:
                log.warning(
                    "Redis unreachable (%s): requests are not rate limited", type(exc).__name__
                )
                self.warned = True
            return None
        if count > self.requests_per_minute:
            return max(1, 60 - int(now) % 60)
        return None
