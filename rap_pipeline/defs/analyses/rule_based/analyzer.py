"""The documented range of every metric, and the analyzer that runs ``analyze_lyrics`` over a batch
of tracks."""

from __future__ import annotations

import time
from collections.abc import Sequence

from rap_pipeline.defs.analyses.analyzer import (
    AnalysisResult,
    AnalyzerInfo,
    MetricRange,
    TrackText,
)
from rap_pipeline.defs.analyses.rule_based.rhyme import MAX_RHYME_SYLLABLES
from rap_pipeline.defs.analyses.rule_based.song import analyze_lyrics
from rap_pipeline.defs.analyses.rule_based.themes import load_theme_lexicons

_SHARE = (0.0, 1.0)
_RANGES: dict[str, tuple[tuple[float, float], str]] = {
    "word_count": ((1, 10_000), "word tokens (a kept song has at most 20,000 characters)"),
    "line_count": ((1, 600), "lines with at least one word (a kept song has at most 600)"),
    "stanza_count": ((1, 600), "blocks of lines separated by blank lines"),
    "syllables_per_line_mean": ((1, 1_000), "mean syllables per line; songs are about 8-16"),
    "syllables_per_line_std": ((0, 1_000), "standard deviation of syllables per line"),
    "flow_regularity": (_SHARE, "1 - coefficient of variation of syllables per line, clipped"),
    "syllables_per_word": ((1, 30), "mean syllables per word; songs are about 1.1-1.6"),
    "polysyllabic_word_share": (_SHARE, "share of words of 3 or more syllables"),
    "unknown_word_share": (_SHARE, "share of words not in the CMU dictionary"),
    "end_rhyme_share": (_SHARE, "share of lines whose last word rhymes within 3 lines"),
    "internal_rhyme_share": (_SHARE, "share of mid-line words rhyming in the same/next line"),
    "rhymed_word_share": (_SHARE, "share of rhyme candidates rhyming in the 15 words before"),
    "multisyllable_rhyme_share": (_SHARE, "share of rhymes covering 2 or more syllables"),
    "rhyme_density": (
        (0, MAX_RHYME_SYLLABLES),
        "mean syllables of the longest rhyme of each candidate word in the 15 words before",
    ),
    "mtld": ((1, 10_000), "MTLD, threshold 0.72, mean of both directions; at most word_count"),
    "mattr": (_SHARE, "moving-average type-token ratio, window 50"),
    "type_token_ratio": (_SHARE, "distinct words / words; falls with length"),
    "repeated_line_share": (_SHARE, "share of lines that occur more than once"),
    "repeated_stanza_share": (_SHARE, "share of stanzas that occur more than once"),
    "sentiment_mean": ((-1, 1), "mean VADER compound over lines"),
    "sentiment_positive_share": (_SHARE, "share of lines with compound >= 0.05"),
    "sentiment_negative_share": (_SHARE, "share of lines with compound <= -0.05"),
    "sentiment_neutral_share": (_SHARE, "share of lines with |compound| < 0.05"),
}


def metric_ranges(theme_names: Sequence[str]) -> dict[str, MetricRange]:
    """The documented range of every numeric value ``analyze_lyrics`` returns."""
    ranges = {
        name: MetricRange(float(low), float(high), description)
        for name, ((low, high), description) in _RANGES.items()
    }
    for theme in theme_names:
        ranges[f"theme_{theme}"] = MetricRange(0.0, 100.0, f"{theme} words per 100 words")
    return ranges


class RuleBasedAnalyzer:
    """Rhyme, flow, vocabulary, repetition, sentiment and theme metrics from rules alone."""

    info = AnalyzerInfo(
        name="rule_based",
        version="1",
        method="rules",
        ranges=metric_ranges(load_theme_lexicons().names),
    )

    def analyze(self, tracks: Sequence[TrackText]) -> list[AnalysisResult]:
        return [self._analyze_one(track) for track in tracks]

    def _analyze_one(self, track: TrackText) -> AnalysisResult:
        start = time.perf_counter()
        try:
            values = analyze_lyrics(track.lyrics)
        except Exception as exc:  # one bad track must not stop the batch
            return AnalysisResult(
                track.track_id,
                "failed",
                error=f"{type(exc).__name__}: {exc}",
                seconds=time.perf_counter() - start,
            )
        return AnalysisResult(track.track_id, "ok", values, seconds=time.perf_counter() - start)
