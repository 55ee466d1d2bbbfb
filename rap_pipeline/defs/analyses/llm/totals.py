"""What the LLM analyzer spent and did: per track across its attempts, and per run."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Spent:
    """Tokens and calls of one track, across its attempts (failed ones cost tokens too)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0


@dataclass
class RunTotals:
    tracks: int = 0
    ok: int = 0
    failed: int = 0
    refused: int = 0
    stopped: int = 0  # not asked: the run stopped early
    cache_hits: int = 0
    calls: int = 0  # HTTP requests made
    retries: int = 0
    rate_limited: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    repaired: int = 0  # answers that needed a repair to validate
    repairs: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **amounts: float) -> None:
        with self.lock:
            for name, amount in amounts.items():
                setattr(self, name, getattr(self, name) + amount)

    def as_dict(self) -> dict[str, Any]:
        with self.lock:
            values = {
                name: getattr(self, name) for name in self.__dataclass_fields__ if name != "lock"
            }
            return values | {"cost_usd": round(self.cost_usd, 8), "repairs": dict(self.repairs)}
