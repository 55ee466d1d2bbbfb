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

    def __post_init__(self) -> None:
        if (self.status == "ok") != (self.values is not None):
            raise ValueError("an ok result has values; a failed one has none")
        if self.status == "failed" and not self.error:
            raise ValueError("a failed result says why")


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
