"""Vocabulary richness: MTLD and MATTR."""

from __future__ import annotations

from collections.abc import Sequence

MTLD_THRESHOLD = 0.72
MATTR_WINDOW = 50


def _mtld_one_way(words: Sequence[str]) -> float:
    factors = 0.0
    types: set[str] = set()
    count = 0
    for word in words:
        types.add(word)
        count += 1
        if len(types) / count <= MTLD_THRESHOLD:
            factors += 1
            types, count = set(), 0
    if count:
        factors += (1 - len(types) / count) / (1 - MTLD_THRESHOLD)
    # A text that never completes one factor is too short to measure: a tiny partial factor
    # would make MTLD many times its length, so it is its length instead.
    return len(words) / max(factors, 1.0)


def mtld(words: Sequence[str]) -> float:
    """Measure of textual lexical diversity (McCarthy & Jarvis 2010): mean length of the runs
    of words that keep the type-token ratio above 0.72, read forwards and backwards."""
    return (_mtld_one_way(words) + _mtld_one_way(words[::-1])) / 2


def mattr(words: Sequence[str], window: int = MATTR_WINDOW) -> float:
    """Moving-average type-token ratio over windows of ``window`` words (plain TTR when the
    text is shorter than one window)."""
    if len(words) <= window:
        return len(set(words)) / len(words)
    # The sum of distinct words over all windows, counted per word: the word at ``position``
    # is new in every window that contains it but not its previous occurrence.
    last_window = len(words) - window
    previous: dict[str, int] = {}
    total = 0
    for position, word in enumerate(words):
        after_previous = previous.get(word, -1) + 1
        first = position - window + 1
        first = after_previous if after_previous > first else first
        last = position if position < last_window else last_window
        if last >= first:
            total += last - first + 1
        previous[word] = position
    return total / ((last_window + 1) * window)
