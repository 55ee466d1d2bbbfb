"""The whole song: parsing a cleaned text into lines and stanzas, and every metric of one song
(``analyze_lyrics``)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rap_pipeline.defs.analyses.rule_based.rhyme import Phonetics, line_ends, rhyme_stats
from rap_pipeline.defs.analyses.rule_based.sentiment import SENTIMENT_NEUTRAL_BAND, line_compounds
from rap_pipeline.defs.analyses.rule_based.themes import ThemeLexicons, load_theme_lexicons
from rap_pipeline.defs.analyses.rule_based.vocabulary import mattr, mtld
from rap_pipeline.defs.analyses.rule_based.words import fold, words_of_folded

DECIMALS = 4


@dataclass(frozen=True)
class _Song:
    lines: list[list[str]]  # words of every line that has any
    raw_lines: list[str]  # the same lines as written (for VADER: case and "!" matter)
    stanzas: list[tuple[str, ...]]  # each stanza as its normalized lines


def _parse(text: str) -> _Song:
    lines, raw_lines, stanzas = [], [], []
    stanza: list[str] = []
    # folding the whole text at once keeps its lines aligned with the raw ones (folding never
    # adds or removes a line break)
    for raw, folded in zip(text.split("\n"), fold(text).split("\n"), strict=True):
        words = words_of_folded(folded)
        if not words:
            if not raw.strip() and stanza:
                stanzas.append(tuple(stanza))
                stanza = []
            continue
        lines.append(words)
        raw_lines.append(raw.strip())
        stanza.append(" ".join(words))
    if stanza:
        stanzas.append(tuple(stanza))
    return _Song(lines, raw_lines, stanzas)


def _repeated_share(items: Sequence[Any]) -> float:
    counts = Counter(items)
    return sum(counts[item] > 1 for item in items) / len(items)


def _std(values: Sequence[float], mean: float) -> float:
    return math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))


def analyze_lyrics(text: str, lexicons: ThemeLexicons | None = None) -> dict[str, Any]:
    """Every rule-based metric of one cleaned lyrics text (stanzas separated by blank lines),
    JSON-able, floats rounded to 4 decimals. Raises ``ValueError`` when the text has no words.
    The keys, formulas and ranges are documented in docs/metrics.md."""
    song = _parse(text)
    if not song.lines:
        raise ValueError("no words in the lyrics")
    lexicons = lexicons or load_theme_lexicons()
    words = [w for line in song.lines for w in line]
    phonetics = Phonetics(song.lines)
    syllables = [p.syllables for p in phonetics.prons]
    ends = line_ends(song.lines)
    # phonetics.end holds the running syllable count at the end of every word
    syllables_at_ends = [phonetics.end[i] + 1 for i in ends]
    per_line = [b - a for a, b in zip([0, *syllables_at_ends], syllables_at_ends, strict=False)]
    line_mean = sum(per_line) / len(per_line)
    line_std = _std(per_line, line_mean)

    rhyme = rhyme_stats(phonetics, ends)
    compounds = line_compounds(song.raw_lines)
    themes = lexicons.scores(words)
    top_theme = max(themes, key=lambda name: themes[name]) if any(themes.values()) else None

    values: dict[str, Any] = {
        "word_count": len(words),
        "line_count": len(song.lines),
        "stanza_count": len(song.stanzas),
        "syllables_per_line_mean": line_mean,
        "syllables_per_line_std": line_std,
        "flow_regularity": min(1.0, max(0.0, 1 - line_std / line_mean)),
        "syllables_per_word": sum(syllables) / len(words),
        "polysyllabic_word_share": sum(s >= 3 for s in syllables) / len(words),
        "unknown_word_share": sum(not p.known for p in phonetics.prons) / len(words),
        "end_rhyme_share": rhyme.end_rhyme_share,
        "internal_rhyme_share": rhyme.internal_rhyme_share,
        "rhymed_word_share": rhyme.rhymed_word_share,
        "multisyllable_rhyme_share": rhyme.multisyllable_rhyme_share,
        "rhyme_density": rhyme.rhyme_density,
        "mtld": mtld(words),
        "mattr": mattr(words),
        "type_token_ratio": len(set(words)) / len(words),
        "repeated_line_share": _repeated_share([" ".join(line) for line in song.lines]),
        "repeated_stanza_share": _repeated_share(song.stanzas),
        "sentiment_mean": sum(compounds) / len(compounds),
        "sentiment_positive_share": sum(c >= SENTIMENT_NEUTRAL_BAND for c in compounds)
        / len(compounds),
        "sentiment_negative_share": sum(c <= -SENTIMENT_NEUTRAL_BAND for c in compounds)
        / len(compounds),
        "sentiment_neutral_share": sum(abs(c) < SENTIMENT_NEUTRAL_BAND for c in compounds)
        / len(compounds),
        **{f"theme_{name}": score for name, score in themes.items()},
        "top_theme": top_theme,
    }
    return {k: round(v, DECIMALS) if isinstance(v, float) else v for k, v in values.items()}
