"""``LexiconEmotionAnalyzer``: the NRC Emotion Lexicon bundled with nrclex, standing in when no
model can be loaded."""

from __future__ import annotations

import json
import logging
import re
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

from rap_pipeline.defs.analyses.analyzer import (
    AnalysisResult,
    AnalyzerInfo,
    MetricRange,
    TrackText,
)
from rap_pipeline.defs.analyses.emotion.model import (
    _UNBOUNDED,
    ANALYZER_NAME,
    LEXICON_METHOD,
    NRC_EMOTIONS,
    NRC_SENTIMENTS,
    VERSION,
    _short_cause,
)

log = logging.getLogger(__name__)


_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*'?")


def load_nrc_lexicon() -> dict[str, list[str]]:
    """Word -> NRC affects (8 emotions + positive/negative), as bundled with nrclex."""
    text = resources.files("nrclex").joinpath("data", "nrc_en.json").read_text(encoding="utf-8")
    return json.loads(text)


def lexicon_words(text: str) -> list[str]:
    """Lowercase words, inner apostrophes kept ("don't"), a dropped g restored ("lovin'")."""
    words = []
    for word in _WORD.findall(text.lower()):
        if word.endswith("in'"):
            word = word[:-1] + "g"
        words.append(word.rstrip("'"))
    return words


def _candidates(word: str) -> list[str]:
    """The word, then crude lemma guesses standing in for nrclex's TextBlob lemmatizer."""
    candidates = [word]
    if word.endswith("ies") and len(word) > 4:
        candidates.append(word[:-3] + "y")
    if word.endswith("es") and len(word) > 4:
        candidates.append(word[:-2])
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        candidates.append(word[:-1])
    for suffix in ("ed", "ing"):
        if word.endswith(suffix) and len(word) > len(suffix) + 2:
            stem = word[: -len(suffix)]
            candidates += [stem, stem + "e"]
    return candidates


class LexiconEmotionAnalyzer:
    """NRC Emotion Lexicon word counts: honest about being a lexicon (``lexicon:nrc``)."""

    def __init__(self, lexicon: Mapping[str, Sequence[str]] | None = None) -> None:
        self.lexicon = lexicon if lexicon is not None else load_nrc_lexicon()
        self.info = AnalyzerInfo(ANALYZER_NAME, VERSION, LEXICON_METHOD, self._ranges())

    @staticmethod
    def _ranges() -> dict[str, MetricRange]:
        ranges = {
            f"emotion_{emotion}": MetricRange(0.0, 1.0, f"share of NRC emotion hits: {emotion}")
            for emotion in NRC_EMOTIONS
        }
        for sentiment in NRC_SENTIMENTS:
            ranges[f"sentiment_{sentiment}"] = MetricRange(
                0.0, 1.0, f"share of NRC positive/negative hits that are {sentiment}"
            )
        ranges["matched_words"] = MetricRange(0, _UNBOUNDED, "words found in the NRC lexicon")
        ranges["words"] = MetricRange(1, _UNBOUNDED, "words in the lyrics")
        return ranges

    def _affects(self, word: str) -> Sequence[str] | None:
        for candidate in _candidates(word):
            affects = self.lexicon.get(candidate)
            if affects:
                return affects
        return None

    def score(self, lyrics: str) -> dict[str, Any]:
        words = lexicon_words(lyrics)
        if not words:
            raise ValueError("no words in the lyrics")
        hits: Counter[str] = Counter()
        matched = 0
        for word in words:
            affects = self._affects(word)
            if affects:
                matched += 1
                hits.update(affects)
        emotion_hits = sum(hits[e] for e in NRC_EMOTIONS)
        sentiment_hits = sum(hits[s] for s in NRC_SENTIMENTS)
        values: dict[str, Any] = {
            f"emotion_{e}": hits[e] / emotion_hits if emotion_hits else 0.0 for e in NRC_EMOTIONS
        }
        for sentiment in NRC_SENTIMENTS:
            share = hits[sentiment] / sentiment_hits if sentiment_hits else 0.0
            values[f"sentiment_{sentiment}"] = share
        # ties go to the first emotion in NRC order; no emotion word at all gives None
        values["dominant_emotion"] = (
            max(NRC_EMOTIONS, key=lambda e: hits[e]) if emotion_hits else None
        )
        values["matched_words"] = matched
        values["words"] = len(words)
        return values

    def analyze(self, tracks: Sequence[TrackText]) -> list[AnalysisResult]:
        return [self._analyze_one(track) for track in tracks]

    def _analyze_one(self, track: TrackText) -> AnalysisResult:
        start = time.perf_counter()
        try:
            if not track.lyrics.strip():
                raise ValueError("empty lyrics")
            values = self.score(track.lyrics)
        except Exception as exc:  # one bad track must not stop the batch
            error = str(exc) if isinstance(exc, ValueError) else _short_cause(exc)
            return AnalysisResult(
                track.track_id, "failed", error=error, seconds=time.perf_counter() - start
            )
        return AnalysisResult(track.track_id, "ok", values, seconds=time.perf_counter() - start)
