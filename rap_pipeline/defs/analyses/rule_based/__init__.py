"""Rule-based lyric metrics: rhyme, flow, vocabulary, repetition, sentiment, themes, readability.

Pure Python, no Dagster and no database. ``analyze_lyrics`` (``song``) computes every metric of
one cleaned text; ``RuleBasedAnalyzer`` (``analyzer``) runs it over a batch of tracks. What each
metric means, its formula, its range and why it holds up across songs of any length is in
docs/metrics.md; the ranges are also in ``RuleBasedAnalyzer.info.ranges``, which the stored
results are checked against. One module per family of measures: ``words``, ``pronunciation``,
``rhyme``, ``vocabulary``, ``sentiment``, ``themes``.

Pronunciations come from the CMU dictionary (``pronouncing``), loaded on first use, not at
import. Words it lacks (slang, names, Spanish, "skrrt") get a spelling-based approximation:
vowel groups give the syllables and the last ones are mapped to CMU vowels, so "skrrt" still
rhymes with "dirt". Every word's pronunciation is cached, and rhymes are only searched among
the words of a small window that share the last vowel and final consonants, so a song costs
time linear in its length.
"""

from rap_pipeline.defs.analyses.rule_based.analyzer import RuleBasedAnalyzer, metric_ranges
from rap_pipeline.defs.analyses.rule_based.pronunciation import pronunciation, syllable_count
from rap_pipeline.defs.analyses.rule_based.rhyme import rhyme_length
from rap_pipeline.defs.analyses.rule_based.song import analyze_lyrics
from rap_pipeline.defs.analyses.rule_based.themes import (
    THEME_LEXICONS_FILE,
    ThemeLexicons,
    load_theme_lexicons,
)
from rap_pipeline.defs.analyses.rule_based.vocabulary import mattr, mtld
from rap_pipeline.defs.analyses.rule_based.words import words_of

__all__ = [
    "THEME_LEXICONS_FILE",
    "RuleBasedAnalyzer",
    "ThemeLexicons",
    "analyze_lyrics",
    "load_theme_lexicons",
    "mattr",
    "metric_ranges",
    "mtld",
    "pronunciation",
    "rhyme_length",
    "syllable_count",
    "words_of",
]
