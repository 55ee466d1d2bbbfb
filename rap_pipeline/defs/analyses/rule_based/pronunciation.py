"""Pronunciations: the CMU dictionary, numbers as words, and a spelling-based guess for the words
it lacks (slang, names, "skrrt")."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from rap_pipeline.defs.analyses.rule_based.words import words_of

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


PRONUNCIATIONS: dict[str, Pronunciation] = {}
_MAX_CACHED = 300_000


def pronunciation(word: str) -> Pronunciation:
    """The pronunciation of one token as ``words_of`` returns it: CMU when the dictionary has
    it (or its "-in" → "-ing" or possessive form), a number read out, else from the spelling."""
    found = PRONUNCIATIONS.get(word)
    if found is None:
        if len(PRONUNCIATIONS) >= _MAX_CACHED:
            PRONUNCIATIONS.clear()
        found = PRONUNCIATIONS[word] = _look_up(word)
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
