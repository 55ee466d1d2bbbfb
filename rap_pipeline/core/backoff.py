"""How long to wait before retrying an external call: one rule for every API client."""

from __future__ import annotations

import random


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
