"""Retrying external calls: how long to wait, and the retry loop the HTTP clients share."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryCallState, retry, retry_if_exception, stop_after_attempt

from rap_pipeline.core.api_guard import ApiGuard

T = TypeVar("T")


def backoff_seconds(
    attempt: int,
    initial: float,
    maximum: float,
    retry_after: float | None = None,
    retry_after_cap: float | None = None,
) -> float:
    """Exponential from ``initial`` (doubling per ``attempt``, counted from 1) plus jitter of up
    to ``initial``, at most ``maximum``; never less than the server's ``Retry-After`` (capped at
    ``retry_after_cap``, by default ``maximum``)."""
    exponential = initial * 2 ** (attempt - 1)
    wait = min(maximum, exponential + random.uniform(0, initial))
    if retry_after is not None:
        cap = maximum if retry_after_cap is None else retry_after_cap
        wait = max(wait, min(retry_after, cap))
    return wait


def call_with_retries(
    request: Callable[[], T],
    *,
    guard: ApiGuard | None,
    is_retryable: Callable[[BaseException], bool],
    max_attempts: int,
    initial: float,
    maximum: float,
    prepare: Callable[[], None] | None = None,
) -> T:
    """``request()`` retried with ``backoff_seconds`` while ``is_retryable``; each attempt under
    the guard's shared rate limit and breaker (retryable errors count towards opening it). An
    error with ``status == 429`` pauses every caller for its ``retry_after``; an error's
    ``retry_after`` is also the least wait before the next attempt. ``prepare`` runs before
    each attempt takes its rate slot (e.g. fetching a token, so the request follows its
    grant)."""

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        return backoff_seconds(
            state.attempt_number, initial, maximum, getattr(exc, "retry_after", None)
        )

    @retry(
        retry=retry_if_exception(is_retryable),
        stop=stop_after_attempt(max_attempts),
        wait=wait,
        reraise=True,
    )
    def attempt() -> T:
        if prepare is not None:
            prepare()
        if guard is None:
            return request()
        try:
            return guard.call(request, is_failure=is_retryable)
        except Exception as exc:
            if getattr(exc, "status", None) == 429:
                guard.penalize(getattr(exc, "retry_after", None))
            raise

    return attempt()
