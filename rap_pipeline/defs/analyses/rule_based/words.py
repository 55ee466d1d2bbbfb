"""Words of a line: folding, normalizing, tokens, and the function words that never rhyme."""

from __future__ import annotations

import re
import unicodedata

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


def fold(text: str) -> str:
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
    return words_of_folded(fold(line))


def words_of_folded(line: str) -> list[str]:
    return [_normalize_token(t) if "'" in t else t for t in _TOKEN.findall(line)]
