"""One profile per track from whichever analyses it has, saying which it used.

Inputs per track: the latest successful result of each analyzer (rule_based, emotion, llm)
for the track's current lyrics. Each profile component is a weighted mean of the inputs
that can speak to it, weights renormalized over the inputs present:

- ``valence`` (0 sad/negative … 1 happy/positive):
  rule_based 0.4 × (sentiment_mean + 1) / 2;
  emotion 0.3 × (0.5 + 0.5 × (joy + ½·surprise − sadness − anger − fear − disgust)) for a
  transformers model, or the NRC positive share for the lexicon;
  llm 0.3 × the mood's valence (``MOOD_VALENCE``).
- ``craft`` (0 … 1): rule_based 0.5 × mean(min(1, rhyme_density / 0.5), min(1, mtld / 150),
  end_rhyme_share); llm 0.5 × mean(lyricism, originality, flow_on_paper) / 10.
- ``dominant_emotion``: the emotion analyzer's, with the method that produced it.
- ``themes``: the rule-based top theme, then the LLM's themes (deduplicated, at most 5).
The scaling constants (rhyme density 0.5, MTLD 150) sit above what the sample corpus
reaches, so the craft component does not saturate.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from rap_pipeline.defs.analyses.analyzer import AnalysisResult, AnalyzerInfo, MetricRange

VERSION = "1"
INPUT_ANALYZERS = ("rule_based", "emotion", "llm")
WEIGHTS = {
    "valence": {"rule_based": 0.4, "emotion": 0.3, "llm": 0.3},
    "craft": {"rule_based": 0.5, "llm": 0.5},
}
MOOD_VALENCE = {
    "celebratory": 0.9,
    "triumphant": 0.85,
    "playful": 0.8,
    "hopeful": 0.75,
    "romantic": 0.75,
    "boastful": 0.7,
    "nostalgic": 0.5,
    "introspective": 0.45,
    "defiant": 0.4,
    "vulnerable": 0.3,
    "aggressive": 0.25,
    "paranoid": 0.2,
    "melancholic": 0.2,
    "dark": 0.1,
}
NEGATIVE_EMOTIONS = ("sadness", "anger", "fear", "disgust")

INFO = AnalyzerInfo(
    name="hybrid",
    version=VERSION,
    method="combined",
    ranges={
        "valence": MetricRange(0.0, 1.0, "weighted mean of the inputs' valence"),
        "craft": MetricRange(0.0, 1.0, "weighted mean of rhyme/vocabulary and LLM scores"),
        "inputs_used": MetricRange(1, len(INPUT_ANALYZERS), "how many analyses were combined"),
    },
)


@dataclass(frozen=True)
class InputAnalysis:
    analyzer: str
    version: str
    method: str
    input_hash: str
    result: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.analyzer}:{self.version}:{self.method}"


def inputs_hash(inputs: list[InputAnalysis]) -> str:
    """Identifies what a profile was combined from: a new input version means a new profile."""
    key = "|".join(sorted(f"{i.label}:{i.input_hash}" for i in inputs))
    return hashlib.sha256(f"{VERSION}|{key}".encode()).hexdigest()


def _clip(value: float) -> float:
    return min(1.0, max(0.0, value))


def _valence(analysis: InputAnalysis) -> float | None:
    r = analysis.result
    if analysis.analyzer == "rule_based" and "sentiment_mean" in r:
        return _clip((r["sentiment_mean"] + 1) / 2)
    if analysis.analyzer == "emotion":
        if analysis.method.startswith("lexicon") and "sentiment_positive" in r:
            return _clip(r["sentiment_positive"])
        if "emotion_joy" in r:
            positive = r["emotion_joy"] + 0.5 * r.get("emotion_surprise", 0.0)
            negative = sum(r.get(f"emotion_{e}", 0.0) for e in NEGATIVE_EMOTIONS)
            return _clip(0.5 + 0.5 * (positive - negative))
    if analysis.analyzer == "llm":
        return MOOD_VALENCE.get(r.get("mood", ""))
    return None


def _craft(analysis: InputAnalysis) -> float | None:
    r = analysis.result
    if (
        analysis.analyzer == "rule_based"
        and {"rhyme_density", "mtld", "end_rhyme_share"} <= r.keys()
    ):
        parts = (
            min(1.0, r["rhyme_density"] / 0.5),
            min(1.0, r["mtld"] / 150),
            r["end_rhyme_share"],
        )
        return _clip(sum(parts) / 3)
    if analysis.analyzer == "llm":
        scores = [r.get(k) for k in ("lyricism", "originality", "flow_on_paper")]
        if all(isinstance(s, int | float) for s in scores):
            return _clip(sum(scores) / 30)
    return None


def _weighted(component: str, values: dict[str, float | None]) -> float | None:
    present = {a: v for a, v in values.items() if v is not None and a in WEIGHTS[component]}
    if not present:
        return None
    total = sum(WEIGHTS[component][a] for a in present)
    return round(sum(WEIGHTS[component][a] * v for a, v in present.items()) / total, 4)


def combine(inputs: list[InputAnalysis]) -> dict[str, Any]:
    """The profile of one track from its available analyses (at least one)."""
    by_name = {i.analyzer: i for i in inputs}
    emotion = by_name.get("emotion")
    themes: list[str] = []
    if "rule_based" in by_name and by_name["rule_based"].result.get("top_theme"):
        themes.append(by_name["rule_based"].result["top_theme"])
    if "llm" in by_name:
        themes += [t for t in by_name["llm"].result.get("themes", []) if t not in themes]
    return {
        "valence": _weighted("valence", {a: _valence(i) for a, i in by_name.items()}),
        "craft": _weighted("craft", {a: _craft(i) for a, i in by_name.items()}),
        "dominant_emotion": emotion.result.get("dominant_emotion") if emotion else None,
        "emotion_method": emotion.method if emotion else None,
        "themes": themes[:5],
        "inputs": sorted(i.label for i in inputs),
        "inputs_used": len(inputs),
        "weights": WEIGHTS,
    }


def profile(track_id: int, inputs: list[InputAnalysis]) -> AnalysisResult:
    """The track's profile, or a failure when it has no successful analysis to combine."""
    if not inputs:
        return AnalysisResult(track_id, "failed", error="no successful analysis to combine yet")
    return AnalysisResult(track_id, "ok", combine(inputs))
