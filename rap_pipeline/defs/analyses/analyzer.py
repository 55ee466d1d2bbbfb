"""What every analyzer is: a name, a version, and a batch of tracks in, typed results out.

An analyzer knows nothing about Dagster or PostgreSQL. The asset of each analyzer reads the
tracks that have no current result, calls ``analyze`` and stores what comes back in the
``analyses`` table, keyed by track, analyzer, version and method. A result is current when its
analyzer version, method and input lyrics hash all match; anything else is analyzed again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol


@dataclass(frozen=True)
class TrackText:
    """One kept track as analyzers see it: the whole cleaned lyrics, line breaks kept."""

    track_id: int
    title: str
    lyrics: str
    lyrics_hash: str


@dataclass
class AnalysisResult:
    """The outcome for one track. ``values`` is JSON-able and only present when ``ok``; a
    failure keeps its error message and is never stored as if it were a result."""

    track_id: int
    status: Literal["ok", "failed"]
    values: dict[str, Any] | None = None
    error: str | None = None
    seconds: float = 0.0
    # LLM calls: prompt/completion tokens and estimated cost; None for local analyzers
    usage: dict[str, float] | None = None
    # failures: what kind (see RETRY_DELAYS_S); it decides when the track is asked again
    error_class: str | None = None

    def __post_init__(self) -> None:
        if (self.status == "ok") != (self.values is not None):
            raise ValueError("an ok result has values; a failed one has none")
        if self.status == "failed" and not self.error:
            raise ValueError("a failed result says why")
        if self.status == "failed" and self.error_class is None:
            self.error_class = "error"


HOUR_S = 3600.0
# How long a failed analysis waits before a run asks again, by kind of failure and by how many
# times in a row it failed (the last delay repeats). An outage (timeout, 429, 5xx, connection)
# usually passes, and so does a track that was not asked because its run stopped early
# ("stopped"); an answer that was invalid, refused or truncated usually repeats for the same
# lyrics, prompt and model, so it backs off faster. A new analyzer version or model
# starts afresh (its rows are new), and a forced run asks regardless.
RETRY_DELAYS_S: dict[str, tuple[float, ...]] = {
    "outage": (1 * HOUR_S, 6 * HOUR_S, 24 * HOUR_S, 168 * HOUR_S),
    "answer": (6 * HOUR_S, 24 * HOUR_S, 168 * HOUR_S, 720 * HOUR_S),
    # a key, model or quota problem stops the run; once the user fixes it, every track is due
    "config": (0.0,),
}


def retry_delay_s(error_class: str, attempts: int) -> float:
    """Seconds until a track that failed ``attempts`` times in a row (≥ 1) is due again."""
    kind = "outage" if error_class == "stopped" else error_class
    delays = RETRY_DELAYS_S.get(kind, RETRY_DELAYS_S["answer"])
    return delays[min(max(attempts, 1), len(delays)) - 1]


@dataclass(frozen=True)
class MetricRange:
    """The documented range of one numeric metric, checked on every stored result."""

    low: float
    high: float
    description: str = ""


@dataclass
class AnalyzerInfo:
    name: str  # rule_based, emotion, llm, hybrid
    version: str  # bump when the output for the same input changes
    method: str  # what produced it: "rules", "transformers:<model>", "lexicon:nrc", ...
    ranges: dict[str, MetricRange] = field(default_factory=dict)


class Analyzer(Protocol):
    info: AnalyzerInfo

    def analyze(self, tracks: Sequence[TrackText]) -> list[AnalysisResult]:
        """One result per input track, in input order; never raises for one bad track."""
        ...
