"""Sentiment per line with VADER."""

from __future__ import annotations

import functools
import string
from typing import Any

SENTIMENT_NEUTRAL_BAND = 0.05  # VADER's own cut-off between neutral and polar


@functools.cache
def _vader() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def line_compounds(raw_lines: list[str]) -> list[float]:
    scores: dict[str, float] = {}  # a chorus is scored once
    analyzer = _vader()
    for line in raw_lines:
        if line not in scores:
            polar = not line.isascii() or _has_vader_word(line, analyzer.lexicon)
            scores[line] = analyzer.polarity_scores(line)["compound"] if polar else 0.0
    return [scores[line] for line in raw_lines]


def _has_vader_word(line: str, lexicon: dict[str, float]) -> bool:
    """Whether any token of the line, as VADER splits it, is in its lexicon. A line without
    one scores exactly 0 (VADER only weighs lexicon words), so it need not be scored: this
    halves the time sentiment takes."""
    for token in line.lower().split():
        if token in lexicon or token.strip(string.punctuation) in lexicon:
            return True
    return False
