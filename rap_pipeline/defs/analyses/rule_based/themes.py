"""Themes: word lists per theme (rap_pipeline/data/theme_lexicons.yaml) matched in the
lyrics."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import yaml

from rap_pipeline.core.paths import PACKAGE_DIR

THEME_LEXICONS_FILE = PACKAGE_DIR / "data" / "theme_lexicons.yaml"


class ThemeLexicons:
    """The theme word lists of theme_lexicons.yaml (see that file for how scores work)."""

    def __init__(self, themes: dict[str, list[str]]) -> None:
        self.names = tuple(themes)
        self._exact = [
            frozenset(w for w in words if not w.endswith("*")) for words in themes.values()
        ]
        self._stems = [tuple(w[:-1] for w in words if w.endswith("*")) for words in themes.values()]
        self._cache: dict[str, tuple[int, ...]] = {}

    def themes_of(self, word: str) -> tuple[int, ...]:
        """Indexes into ``names`` of the themes the word belongs to."""
        found = self._cache.get(word)
        if found is None:
            found = tuple(
                n
                for n, (exact, stems) in enumerate(zip(self._exact, self._stems, strict=True))
                if word in exact or (stems and word.startswith(stems))
            )
            if len(self._cache) < 200_000:
                self._cache[word] = found
        return found

    def scores(self, words: Sequence[str]) -> dict[str, float]:
        """Matching words per 100 words, per theme."""
        counts = [0] * len(self.names)
        cached = self._cache.get
        for word in words:
            found = cached(word)
            for n in self.themes_of(word) if found is None else found:
                counts[n] += 1
        return {name: 100 * c / len(words) for name, c in zip(self.names, counts, strict=True)}


@functools.cache
def load_theme_lexicons(path: Path = THEME_LEXICONS_FILE) -> ThemeLexicons:
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    themes: dict[str, list[str]] = {}
    for name, spec in (document.get("themes") or {}).items():
        words = [str(w).strip().lower() for w in (spec or {}).get("words") or []]
        if not words:
            raise ValueError(f"{path}: theme {name!r} has no words")
        short = [w for w in words if w.endswith("*") and len(w) < 5]
        if short:
            raise ValueError(f"{path}: stems of fewer than 4 letters in {name!r}: {short}")
        themes[str(name)] = words
    if not themes:
        raise ValueError(f"{path}: no themes")
    return ThemeLexicons(themes)
