"""Rule-based lyric metrics: rhyme, flow, vocabulary, repetition, sentiment, themes, readability.

Pure Python, no Dagster and no database. ``analyze_lyrics`` computes every metric of one cleaned
text; ``RuleBasedAnalyzer`` runs it over a batch of tracks. What each metric means, its formula,
its range and why it holds up across songs of any length is in docs/metrics.md; the ranges are
also in ``RuleBasedAnalyzer.info.ranges``, which the stored results are checked against.

Pronunciations come from the CMU dictionary (``pronouncing``), loaded on first use, not at
import. Words it lacks (slang, names, Spanish, "skrrt") get a spelling-based approximation:
vowel groups give the syllables and the last ones are mapped to CMU vowels, so "skrrt" still
rhymes with "dirt". Every word's pronunciation is cached, and rhymes are only searched among
the words of a small window that share the last vowel and final consonants, so a song costs
time linear in its length.
"""

from __future__ import annotations

import functools
import itertools
import math
import re
import string
import time
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rap_pipeline.core.paths import PACKAGE_DIR
from rap_pipeline.defs.analyses.analyzer import (
    AnalysisResult,
    AnalyzerInfo,
    MetricRange,
    TrackText,
)

THEME_LEXICONS_FILE = PACKAGE_DIR / "data" / "theme_lexicons.yaml"

RHYME_WINDOW_WORDS = 15  # a word's rhyme is searched among the 15 words before it
END_RHYME_WINDOW_LINES = 3
MAX_RHYME_SYLLABLES = 8
MTLD_THRESHOLD = 0.72
MATTR_WINDOW = 50
SENTIMENT_NEUTRAL_BAND = 0.05  # VADER's own cut-off between neutral and polar
DECIMALS = 4

# Function words never start or end an internal rhyme or count for rhyme density ("the/a",
# "me/we", "I/my" would otherwise rhyme all the time); at a line end they still can ("you and
# me / set me free").
STOPWORDS = frozenset({
    "a", "an", "the", "and", "or", "but", "nor", "so", "if", "then", "than", "of", "to", "in",
    "on", "at", "by", "for", "from", "with", "into", "onto", "upon", "as", "about", "off", "over",
    "under", "up", "down", "out", "i", "me", "my", "mine", "myself", "you", "your", "yours",
    "yourself", "he", "him", "his", "she", "her", "hers", "it", "its", "we", "us", "our", "ours",
    "they", "them", "their", "theirs", "this", "that", "these", "those", "there", "here", "is",
    "am", "are", "was", "were", "be", "been", "being", "do", "does", "did", "done", "have", "has",
    "had", "having", "will", "would", "shall", "should", "can", "could", "may", "might", "must",
    "not", "no", "yes", "yeah", "yea", "uh", "oh", "ooh", "ayy", "yo", "hey", "huh", "ha", "like",
    "just", "what", "which", "who", "whom", "whose", "when", "where", "why", "how", "all", "some",
    "any", "i'm", "i'd", "i'll", "i've", "you're", "you'll", "you've", "he's", "she's", "it's",
    "we're", "we'll", "they're", "that's", "there's", "don't", "doesn't", "didn't", "ain't",
    "can't", "won't", "isn't", "wasn't", "aren't", "gonna", "wanna", "gotta",
})  # fmt: skip


# --- words ---------------------------------------------------------------------------------
_TOKEN = re.compile(r"'?[^\W_]+(?:'[^\W_]+)*'?")
_LEADING_ELISIONS = {
    "'bout": "about",
    "'cause": "because",
    "'cuz": "because",
    "'em": "them",
    "'til": "until",
    "'till": "until",
    "'round": "around",
    "'fore": "before",
    "'nuff": "enough",
    "'gainst": "against",
    "'kay": "okay",
}


_DIACRITICS = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")


def _fold(text: str) -> str:
    """Lower case without accents ("Señor" → "senor"); other scripts are kept as they are."""
    text = text.casefold()
    if text.isascii():
        return text
    return _DIACRITICS.sub("", unicodedata.normalize("NFKD", text))


def _normalize_token(token: str) -> str:
    if token.startswith("'"):
        token = _LEADING_ELISIONS.get(token.rstrip("'"), token)
    if token.endswith("in'") and len(token) > 4:
        token = token[:-1] + "g"  # runnin' → running
    return token.strip("'")


def words_of(line: str) -> list[str]:
    """The word tokens of a line, as every metric sees them: lower case, accents folded,
    elisions expanded, hyphenated words split."""
    return _words_of_folded(_fold(line))


def _words_of_folded(line: str) -> list[str]:
    return [_normalize_token(t) if "'" in t else t for t in _TOKEN.findall(line)]


# --- pronunciation -------------------------------------------------------------------------
_RHYME_KEYS: dict[tuple[str, tuple[str, ...]], int] = {}


@dataclass(frozen=True, slots=True)
class Pronunciation:
    vowels: tuple[str, ...]  # one vowel per syllable, stress dropped, unstressed AH/IH merged
    tail: int  # syllables from the last stressed vowel to the end; 0 if nothing is stressed
    coda: tuple[str, ...]  # classes of the consonants after the last vowel
    known: bool  # found in the CMU dictionary (possibly after expanding an elision or number)
    # derived, stored because every word of every song reads them
    syllables: int = field(init=False)
    key: int = field(init=False)  # id of (last vowel, coda): words only rhyme on equal keys

    def __post_init__(self) -> None:
        object.__setattr__(self, "syllables", len(self.vowels))
        ending = (self.vowels[-1], self.coda)
        object.__setattr__(self, "key", _RHYME_KEYS.setdefault(ending, len(_RHYME_KEYS)))


# Final consonants that differ only in voicing (t/d, s/z) or among nasals (m/n/ng) still make
# a rhyme, the way rappers use them ("time/mine", "hat/had"); other differences do not.
_CONSONANT_CLASS = {
    "P": "P", "B": "P", "T": "T", "D": "T", "K": "K", "G": "K", "F": "F", "V": "F",
    "TH": "TH", "DH": "TH", "S": "S", "Z": "S", "SH": "SH", "ZH": "SH", "CH": "CH", "JH": "CH",
    "M": "N", "N": "N", "NG": "N", "L": "L", "R": "R", "HH": "HH", "W": "W", "Y": "Y",
}  # fmt: skip
_REDUCED_VOWELS = frozenset({"AH", "IH"})
_NO_VOWEL = Pronunciation(("AH",), 0, (), False)


@functools.cache
def _cmu() -> dict[str, str]:
    """Word → its first CMU pronunciation. Loaded on first use (about half a second)."""
    import pronouncing

    pronouncing.init_cmu()
    return {word: phones[0] for word, phones in pronouncing.lookup.items()}


def _from_phones(phones: str) -> Pronunciation:
    vowels: list[str] = []
    last_stressed = -1
    coda: list[str] = []
    for phone in phones.split():
        if phone[-1].isdigit():
            base, stress = phone[:-1], phone[-1]
            vowels.append("@" if stress == "0" and base in _REDUCED_VOWELS else base)
            if stress != "0":
                last_stressed = len(vowels) - 1
            coda = []
        else:
            coda.append(_CONSONANT_CLASS.get(phone, phone))
    if not vowels:  # "hmm" is HH M: one syllable that rhymes with nothing
        return _NO_VOWEL
    tail = len(vowels) - last_stressed if last_stressed >= 0 else 0
    return Pronunciation(tuple(vowels), tail, tuple(coda), True)


def _join(parts: list[Pronunciation]) -> Pronunciation:
    """Several words said as one ("twenty seven"): it rhymes on its last word."""
    vowels = tuple(v for p in parts for v in p.vowels)
    return Pronunciation(vowels, parts[-1].tail, parts[-1].coda, all(p.known for p in parts))


_ONES = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
)  # fmt: skip
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")


def _below_hundred(n: int) -> list[str]:
    if n < 20:
        return [_ONES[n]]
    return [_TENS[n // 10]] + ([_ONES[n % 10]] if n % 10 else [])


def number_words(digits: str) -> list[str]:
    """How a rapper says a number: "27" twenty seven, "1997" nineteen ninety seven, "2005" two
    thousand five, "911" nine hundred eleven; long ones and leading zeros digit by digit."""
    n = int(digits)
    if len(digits) > 4 or (len(digits) > 1 and digits[0] == "0"):
        return [_ONES[int(d)] for d in digits[:12]]
    if n < 100:
        return _below_hundred(n)
    if n < 1000:
        rest = _below_hundred(n % 100) if n % 100 else []
        return [_ONES[n // 100], "hundred", *rest]
    if n % 1000 == 0 or 2000 < n < 2010:
        return [_ONES[n // 1000], "thousand", *(_below_hundred(n % 1000) if n % 1000 else [])]
    high, low = divmod(n, 100)
    return [*_below_hundred(high), *(_below_hundred(low) if low else ["hundred"])]


# Spelling → CMU vowel, for words the dictionary lacks. Rough, but it only has to get the last
# stressed vowel of slang right often enough for rhymes: "finna", "skrrt", "shawty", "drippin".
_SPELLED_GROUP = re.compile(r"(?:[aeiou]|y(?![aeiou]))+(?:w(?![aeiou]))?")
_SPELLED_VOWEL = {
    "a": "AE", "e": "EH", "i": "IH", "o": "AA", "u": "AH", "y": "IH",
    "ai": "EY", "ay": "EY", "ei": "EY", "ey": "EY", "ee": "IY", "ea": "IY", "ie": "IY",
    "oa": "OW", "oe": "OW", "ow": "OW", "oo": "UW", "ou": "AW", "oi": "OY", "oy": "OY",
    "au": "AO", "aw": "AO", "ue": "UW", "ui": "UW", "ew": "UW", "eu": "UW",
}  # fmt: skip
_WORD_FINAL_VOWEL = {"a": "@", "y": "IY", "ie": "IY", "ey": "IY", "i": "IY", "e": "IY", "o": "OW"}
_MAGIC_E_VOWEL = {"a": "EY", "e": "IY", "i": "AY", "o": "OW", "u": "UW"}
_SPELLED_CONSONANT = re.compile(r"tch|dge|ck|ng|sh|ch|th|ph|gh|qu|[a-z]")
_CONSONANT_LETTERS = {
    "tch": ("CH",), "dge": ("CH",), "ck": ("K",), "ng": ("N",), "sh": ("SH",), "ch": ("CH",),
    "th": ("TH",), "ph": ("F",), "gh": (), "qu": ("K",), "b": ("P",), "p": ("P",), "t": ("T",),
    "d": ("T",), "c": ("K",), "k": ("K",), "g": ("K",), "q": ("K",), "f": ("F",), "v": ("F",),
    "s": ("S",), "z": ("S",), "x": ("K", "S"), "j": ("CH",), "m": ("N",), "n": ("N",),
    "l": ("L",), "r": ("R",), "h": (), "w": (), "y": (),
}  # fmt: skip


def _spelled_vowel(group: str) -> str:
    return _SPELLED_VOWEL.get(group) or _SPELLED_VOWEL[group.rstrip("w")[-1]]


def _spelled_coda(letters: str) -> tuple[str, ...]:
    coda: list[str] = []
    for piece in _SPELLED_CONSONANT.findall(letters):
        for sound in _CONSONANT_LETTERS.get(piece, ()):
            if not coda or coda[-1] != sound:  # doubled letters are one sound
                coda.append(sound)
    return tuple(coda)


def _spelled_pronunciation(word: str) -> Pronunciation:
    """A spelling-based pronunciation for a word the CMU dictionary lacks."""
    letters = re.sub(r"[^a-z]", "", word)
    if not letters:  # another script: one syllable that rhymes with nothing
        return _NO_VOWEL
    silent_e = (
        len(letters) > 2
        and letters[-1] == "e"
        and letters[-2] not in "aeiouyl"
        and bool(_SPELLED_GROUP.search(letters[:-1]))
    )
    if silent_e:
        letters = letters[:-1]
    groups = list(_SPELLED_GROUP.finditer(letters))
    if not groups:  # "skrrt", "brr": the r is the vowel
        if "r" in letters:
            return Pronunciation(
                ("ER",), 1, _spelled_coda(letters[letters.rindex("r") + 1 :]), False
            )
        return _NO_VOWEL
    vowels = [_spelled_vowel(g.group()) for g in groups]
    last = groups[-1]
    after = letters[last.end() :]
    if silent_e and len(last.group()) == 1 and len(after) == 1:
        vowels[-1] = _MAGIC_E_VOWEL.get(last.group(), vowels[-1])  # "flame": a_e is EY
    elif not after and (len(groups) > 1 or last.group() in ("y", "ie", "ey")):
        vowels[-1] = _WORD_FINAL_VOWEL.get(last.group(), vowels[-1])
    if after.startswith("r") and last.group()[-1] in "eiu":
        vowels[-1], after = "ER", after[1:]  # "-er", "-ir", "-ur": the r is the vowel
    elif after.startswith("r") and last.group() in ("a", "o"):
        vowels[-1] = "AA" if last.group() == "a" else "AO"
    stressed = 0 if len(vowels) <= 2 else len(vowels) - 2
    return Pronunciation(tuple(vowels), len(vowels) - stressed, _spelled_coda(after), False)


_PRONUNCIATIONS: dict[str, Pronunciation] = {}
_MAX_CACHED = 300_000


def pronunciation(word: str) -> Pronunciation:
    """The pronunciation of one token as ``words_of`` returns it: CMU when the dictionary has
    it (or its "-in" → "-ing" or possessive form), a number read out, else from the spelling."""
    found = _PRONUNCIATIONS.get(word)
    if found is None:
        if len(_PRONUNCIATIONS) >= _MAX_CACHED:
            _PRONUNCIATIONS.clear()
        found = _PRONUNCIATIONS[word] = _look_up(word)
    return found


def _look_up(word: str) -> Pronunciation:
    cmu = _cmu()
    if word in cmu:
        return _from_phones(cmu[word])
    if word.isdecimal():
        return _join([pronunciation(w) for w in number_words(word)])
    if word.endswith("in") and word + "g" in cmu:
        return _from_phones(cmu[word + "g"])
    if word.endswith("'s") and word[:-2] in cmu:
        return _from_phones(cmu[word[:-2]] + " Z")
    return _spelled_pronunciation(word)


def syllable_count(word: str) -> int:
    """Syllables of one word (any spelling: "Runnin'", "skrrt", "1997")."""
    return sum(pronunciation(w).syllables for w in words_of(word))


def rhyme_length(first: str, second: str) -> int:
    """Syllables two single words rhyme on (0 when they do not, or are the same word):
    "cat/hat" 1, "cat/dog" 0, "education/dedication" 4."""
    (a,), (b,) = words_of(first), words_of(second)
    return _Phonetics([[b, a]]).rhyme(1, 0)


# --- rhyme ---------------------------------------------------------------------------------
class _Phonetics:
    """The song as one stream of syllables, so that a rhyme can extend from a word into the
    words before it ("education" / "dead in the station" rhyme on three syllables)."""

    def __init__(self, lines: list[list[str]]) -> None:
        self.words = [w for line in lines for w in line]
        self.line_of = [n for n, line in enumerate(lines) for _ in line]
        cached = _PRONUNCIATIONS.get
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


def _line_ends(lines: list[list[str]]) -> list[int]:
    """Word index of the last word of every line."""
    ends, position = [], -1
    for line in lines:
        position += len(line)
        ends.append(position)
    return ends


def _rhyme_candidates(phonetics: _Phonetics, line_ends: set[int]) -> list[int]:
    """The words that can start or end a rhyme: stressed, and a content word or at a line end."""
    return [
        index
        for index, (word, pron) in enumerate(zip(phonetics.words, phonetics.prons, strict=True))
        if pron.tail and (word not in STOPWORDS or index in line_ends)
    ]


def _longest_rhymes(phonetics: _Phonetics, candidates: list[int]) -> list[int]:
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


def _end_rhyme_share(phonetics: _Phonetics, ends: list[int]) -> float:
    """Share of lines whose last word rhymes with the last word of a line up to
    ``END_RHYME_WINDOW_LINES`` before or after it."""
    rhymed = [False] * len(ends)
    for n, last in enumerate(ends):
        for back in range(max(0, n - END_RHYME_WINDOW_LINES), n):
            if phonetics.rhyme(last, ends[back]):
                rhymed[n] = rhymed[back] = True
    return sum(rhymed) / len(ends)


def _internal_rhyme_share(
    phonetics: _Phonetics, candidates: list[int], line_ends: set[int]
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


def _rhyme_stats(phonetics: _Phonetics, ends: list[int]) -> _RhymeStats:
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


# --- vocabulary ----------------------------------------------------------------------------
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


# --- sentiment -----------------------------------------------------------------------------
@functools.cache
def _vader() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def _line_compounds(raw_lines: list[str]) -> list[float]:
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


# --- themes --------------------------------------------------------------------------------
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


# --- the whole song ------------------------------------------------------------------------
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
    for raw, folded in zip(text.split("\n"), _fold(text).split("\n"), strict=True):
        words = _words_of_folded(folded)
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
    phonetics = _Phonetics(song.lines)
    syllables = [p.syllables for p in phonetics.prons]
    ends = _line_ends(song.lines)
    # phonetics.end holds the running syllable count at the end of every word
    syllables_at_ends = [phonetics.end[i] + 1 for i in ends]
    per_line = [b - a for a, b in zip([0, *syllables_at_ends], syllables_at_ends, strict=False)]
    line_mean = sum(per_line) / len(per_line)
    line_std = _std(per_line, line_mean)

    rhyme = _rhyme_stats(phonetics, ends)
    compounds = _line_compounds(song.raw_lines)
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


# --- ranges and the analyzer ---------------------------------------------------------------
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
