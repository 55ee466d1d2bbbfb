"""Dagster resources for the servers every asset group shares."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import psycopg
import redis

from rap_pipeline.core.api_guard import ApiGuard, ProviderPolicy
from rap_pipeline.core.database import connect
from rap_pipeline.core.services import resolve_urls
from rap_pipeline.core.settings import get_settings


class DatabaseResource(dg.ConfigurableResource):
    """The pipeline's PostgreSQL: ``url`` (RAP_DATABASE_URL), else the embedded server, which is
    started if it is not running. The schema is migrated on first use in each process."""

    url: str | None = None

    def get_url(self) -> str:
        return self.url or resolve_urls(get_settings()).database_url

    @contextmanager
    def connect(self) -> Iterator[psycopg.Connection]:
        with connect(self.get_url()) as conn:
            yield conn


class RedisResource(dg.ConfigurableResource):
    """The pipeline's Redis: ``url`` (RAP_REDIS_URL), else the embedded server. ``namespace``
    prefixes every key, so several pipelines (or tests) can share one server."""

    url: str | None = None
    namespace: str = "rap"

    def get_url(self) -> str:
        return self.url or resolve_urls(get_settings()).redis_url

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.get_url(), socket_connect_timeout=2)

    def guard(self, policy: ProviderPolicy) -> ApiGuard:
        """The cache, shared rate limit and breaker of one external API on this Redis."""
        return ApiGuard(self.get_url(), policy, self.namespace)


def guard_for(redis: RedisResource | None, policy: ProviderPolicy) -> ApiGuard | None:
    """``redis.guard(policy)``, or no guard for a resource configured without Redis."""
    return redis.guard(policy) if redis is not None else None
