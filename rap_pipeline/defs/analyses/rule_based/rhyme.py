"""Rhyme: end rhymes, internal rhymes and rhyme density, searched in a window of recent words."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from rap_pipeline.defs.analyses.rule_based.pronunciation import PRONUNCIATIONS, pronunciation
from rap_pipeline.defs.analyses.rule_based.words import STOPWORDS, words_of

RHYME_WINDOW_WORDS = 15  # a word's rhyme is searched among the 15 words before it
END_RHYME_WINDOW_LINES = 3
MAX_RHYME_SYLLABLES = 8


class Phonetics:
    """The song as one stream of syllables, so that a rhyme can extend from a word into the
    words before it ("education" / "dead in the station" rhyme on three syllables)."""

    def __init__(self, lines: list[list[str]]) -> None:
        self.words = [w for line in lines for w in line]
        self.line_of = [n for n, line in enumerate(lines) for _ in line]
        cached = PRONUNCIATIONS.get
        self.prons = [cached(w) or pronunciation(w) for w in self.words]
        self.keys = [p.key for p in self.prons]
        self.vowels = [v for p in self.prons for v in p.vowels]
        self.end = [n - 1 for n in itertools.accumulate(p.syllables for p in self.prons)]
        # the word a syllable ends, None inside a word: where both sides of a rhyme cross into
        # the same word, matching stops
        self.word_ending: list[str | None] = [None] * len(self.vowels)
        for word, end in zip(self.words, self.end, strict=True):
            self.word_ending[end] = word

    def rhyme(self, later: int, earlier: int) -> int:
        """Length in syllables of the rhyme between two words, 0 when there is none.

        A rhyme needs the same last vowel and final consonant classes, then as many vowels as
        match going back, at least back to the last stressed vowel of both words. A word never
        rhymes with itself (that is repetition), and matching stops where both sides enter the
        same word ("got the money / got the honey" rhymes on "money/honey" only)."""
        words, prons = self.words, self.prons
        if words[later] == words[earlier] or self.keys[later] != self.keys[earlier]:
            return 0
        if not prons[later].tail or not prons[earlier].tail:
            return 0
        tail = max(prons[later].tail, prons[earlier].tail)
        vowels, word_ending = self.vowels, self.word_ending
        a = self.end[later]
        b = floor = self.end[earlier]
        length = 0
        while length < MAX_RHYME_SYLLABLES and a > floor and b >= 0 and vowels[a] == vowels[b]:
            length += 1
            a, b = a - 1, b - 1
            if b >= 0 and word_ending[a] is not None and word_ending[a] == word_ending[b]:
                break
        return length if length >= tail else 0


@dataclass(frozen=True)
class _RhymeStats:
    end_rhyme_share: float
    internal_rhyme_share: float
    rhymed_word_share: float
    multisyllable_rhyme_share: float
    rhyme_density: float


def line_ends(lines: list[list[str]]) -> list[int]:
    """Word index of the last word of every line."""
    ends, position = [], -1
    for line in lines:
        position += len(line)
        ends.append(position)
    return ends


def _rhyme_candidates(phonetics: Phonetics, line_ends: set[int]) -> list[int]:
    """The words that can start or end a rhyme: stressed, and a content word or at a line end."""
    return [
        index
        for index, (word, pron) in enumerate(zip(phonetics.words, phonetics.prons, strict=True))
        if pron.tail and (word not in STOPWORDS or index in line_ends)
    ]


def _longest_rhymes(phonetics: Phonetics, candidates: list[int]) -> list[int]:
    """For every candidate word, the longest rhyme it makes with a candidate among the
    ``RHYME_WINDOW_WORDS`` words before it (0 when none)."""
    by_key: dict[int, list[int]] = defaultdict(list)
    keys, rhyme = phonetics.keys, phonetics.rhyme
    longest = []
    for index in candidates:
        bucket = by_key[keys[index]]
        best = 0
        for earlier in reversed(bucket):
            if earlier < index - RHYME_WINDOW_WORDS:
                break
            length = rhyme(index, earlier)
            best = length if length > best else best
        bucket.append(index)
        longest.append(best)
    return longest


def _end_rhyme_share(phonetics: Phonetics, ends: list[int]) -> float:
    """Share of lines whose last word rhymes with the last word of a line up to
    ``END_RHYME_WINDOW_LINES`` before or after it."""
    rhymed = [False] * len(ends)
    for n, last in enumerate(ends):
        for back in range(max(0, n - END_RHYME_WINDOW_LINES), n):
            if phonetics.rhyme(last, ends[back]):
                rhymed[n] = rhymed[back] = True
    return sum(rhymed) / len(ends)


def _internal_rhyme_share(
    phonetics: Phonetics, candidates: list[int], line_ends: set[int]
) -> float:
    """Share of mid-line candidate words that rhyme with a candidate word of the same line or
    of the line before or after (a pair of two line ends is an end rhyme, not counted)."""
    mid_line = sum(1 for i in candidates if i not in line_ends)
    if not mid_line:
        return 0.0
    keys, rhyme = phonetics.keys, phonetics.rhyme
    rhymed: set[int] = set()
    previous_line, previous = -2, {}
    for line, members in itertools.groupby(candidates, key=phonetics.line_of.__getitem__):
        current: dict[int, list[int]] = defaultdict(list)
        for index in members:
            current[keys[index]].append(index)
        above = previous if line == previous_line + 1 else {}
        for key, group in current.items():
            pairs: Iterable[tuple[int, int]] = itertools.combinations(group, 2)
            if key in above:
                pairs = itertools.chain(itertools.product(above[key], group), pairs)
            for earlier, later in pairs:
                both_ends = earlier in line_ends and later in line_ends
                if not both_ends and rhyme(later, earlier):
                    rhymed.update((earlier, later))
        previous_line, previous = line, current
    return sum(1 for i in rhymed if i not in line_ends) / mid_line


def rhyme_stats(phonetics: Phonetics, ends: list[int]) -> _RhymeStats:
    line_ends = set(ends)
    candidates = _rhyme_candidates(phonetics, line_ends)
    longest = _longest_rhymes(phonetics, candidates)
    rhymed = [length for length in longest if length]
    return _RhymeStats(
        end_rhyme_share=_end_rhyme_share(phonetics, ends),
        internal_rhyme_share=_internal_rhyme_share(phonetics, candidates, line_ends),
        rhymed_word_share=len(rhymed) / len(longest) if longest else 0.0,
        multisyllable_rhyme_share=(
            sum(length >= 2 for length in rhymed) / len(rhymed) if rhymed else 0.0
        ),
        rhyme_density=sum(longest) / len(longest) if longest else 0.0,
    )


def rhyme_length(first: str, second: str) -> int:
    """Syllables two single words rhyme on (0 when they do not, or are the same word):
    "cat/hat" 1, "cat/dog" 0, "education/dedication" 4."""
    (a,), (b,) = words_of(first), words_of(second)
    return Phonetics([[b, a]]).rhyme(1, 0)
