"""Lyrics cleaning and track classification: plain functions, no Dagster.

``clean_lyrics`` turns raw lyrics (a Genius page scrape or a corpus field) into plain text with
stanza breaks kept, and section headers ("[Verse 1: X]", "[Chorus]") moved into a structure
stored beside the text. ``classify`` decides whether a track is kept, and if not, why.

Rejection reasons (``status_reason`` of rejected tracks), checked in this order:

==================  ========================================================================
``skit``            title names a skit ("(Skit)", "Skit", "- Skit")
``remix``           title names a remix ("(Remix)", "Remix", "RMX")
``live_version``    title names a live recording ("(Live)", "Live at/from/in …", "[Live]")
``not_a_song``      title names a non-song page: tracklist, liner notes, credits, album art,
                    interview, translation, setlist, discography, annotated
``instrumental``    the source flags it instrumental, or the lyrics are only "[Instrumental]"
``undecodable``     text has replacement characters (U+FFFD) or mojibake from a bad decode
``empty``           nothing left after cleaning
``not_lyrics``      most lines are numbered list items or credits (a tracklist, liner notes)
``too_short``       fewer than ``MIN_WORDS`` words or ``MIN_LINES`` lines
``oversized``       more than ``MAX_CHARS`` characters or ``MAX_LINES`` lines (not a song)
``duplicate_lyrics`` same normalized lyrics as an earlier kept track of the same artist
==================  ========================================================================
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

MIN_WORDS = 40
MIN_LINES = 4
MAX_CHARS = 20_000
MAX_LINES = 600

# --- Genius page residue ------------------------------------------------------------------
# "14 ContributorsTranslationsEspañolPortuguêsSong Title Lyrics[Intro]" → "[Intro]"
_CONTRIBUTORS_PREFIX = re.compile(r"^\s*(?:\d[\d,.]*K?\s*Contributors?)?\s*(?:Translations\S*)?")
_PAGE_HEADER_START = re.compile(r"^\s*(?:\d[\d,.]*K?\s*Contributors?|Translations)")
_YOU_MIGHT_ALSO_LIKE = re.compile(r"You might also like")
_EMBED = re.compile(r"\d*\s*Embed\s*$")
_TICKETS = r"Get tickets as low as \$\d+(?:\.\d+)?"
_LIVE_AD = re.compile(rf"See [^\n]*? Live\s*{_TICKETS}|{_TICKETS}")
_PLACEHOLDER = re.compile(
    r"^\s*\[?Lyrics (?:will be available soon|for this song have yet to be "
    r"(?:released|transcribed))[^\n]*$",
    re.IGNORECASE | re.MULTILINE,
)
# Patterns that must never survive cleaning (also used by the residue asset check).
RESIDUE_PATTERNS: dict[str, re.Pattern[str]] = {
    "contributors": re.compile(r"\d+\s*Contributors?"),
    "you_might_also_like": _YOU_MIGHT_ALSO_LIKE,
    "embed": re.compile(r"\d+Embed\b|\bEmbed\s*$"),
    "live_ad": re.compile(r"Get tickets as low as"),
    "section_header": re.compile(r"^\[[^\]\n]+\]\s*$", re.MULTILINE),
}

# --- unicode -------------------------------------------------------------------------------
_TRANSLATE = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2032": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u2033": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u2012": "-",
        "\u2015": "-",
        "\u00a0": " ",
        "\u2007": " ",
        "\u202f": " ",
        "\u3000": " ",
        "\u200b": None,
        "\u200c": None,
        "\u200d": None,
        "\u2060": None,
        "\ufeff": None,
        "\r": None,
    }
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_MOJIBAKE = re.compile(r"Ã[\x80-\xbf]|â€|Â[\xa0-\xbf]")
_SPACES = re.compile(r"[ \t]+")
_HEADER = re.compile(r"^\[([^\]\n]{1,80})\]\s*")

# --- titles --------------------------------------------------------------------------------
_TITLE_RULES: list[tuple[str, re.Pattern[str]]] = [
    ("skit", re.compile(r"\bskit\b", re.IGNORECASE)),
    ("remix", re.compile(r"\b(?:remix|rmx)\b", re.IGNORECASE)),
    (
        "live_version",
        re.compile(r"[(\[]\s*live\b|\blive\s+(?:at|from|in|on)\b|-\s*live\s*$", re.IGNORECASE),
    ),
    (
        "not_a_song",
        re.compile(
            r"\b(?:track\s*list(?:ing)?|liner notes|credits|album art(?:work)?|interview|"
            r"translations?|setlist|discography|annotated|booklet)\b",
            re.IGNORECASE,
        ),
    ),
]
_LIST_LINE = re.compile(
    r"^\s*(?:\d{1,3}[.)]\s|(?:produced|written|recorded|mixed|mastered) (?:by|at)\b)",
    re.IGNORECASE,
)
_SECTION_KINDS = (
    "intro",
    "verse",
    "pre-chorus",
    "chorus",
    "hook",
    "post-chorus",
    "bridge",
    "refrain",
    "interlude",
    "breakdown",
    "outro",
    "skit",
    "instrumental",
)


@dataclass(frozen=True)
class Section:
    header: str
    kind: str
    performer: str | None
    first_line: int  # index into the non-blank lines of the cleaned text
    line_count: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "header": self.header,
            "kind": self.kind,
            "performer": self.performer,
            "first_line": self.first_line,
            "line_count": self.line_count,
        }


@dataclass(frozen=True)
class CleanedLyrics:
    text: str
    sections: list[Section] = field(default_factory=list)
    undecodable: bool = False

    @property
    def lines(self) -> list[str]:
        return [line for line in self.text.split("\n") if line.strip()]

    @property
    def line_count(self) -> int:
        return len(self.lines)

    @property
    def word_count(self) -> int:
        return len(self.text.split())

    @property
    def headers_only(self) -> list[str]:
        return [section.kind for section in self.sections]


def normalize_unicode(text: str) -> str:
    return unicodedata.normalize("NFKC", text.translate(_TRANSLATE))


def strip_page_residue(text: str, title: str | None = None) -> str:
    """Removes what a Genius page scrape leaves around the lyrics."""
    lines = text.split("\n")
    first = lines[0].strip()
    if _PAGE_HEADER_START.match(first) or re.search(r"\bLyrics\[", first):
        # "<N Contributors><Translations…><Title> Lyrics<first lyric or header>"
        title_lyrics = re.escape(title) + r"\s*Lyrics" if title else r"\bLyrics\b"
        match = re.search(title_lyrics, first, re.IGNORECASE) or re.search(r"\bLyrics\b", first)
        lines[0] = first[match.end() :] if match else _CONTRIBUTORS_PREFIX.sub("", first, count=1)
    elif title and first.casefold() == f"{title} lyrics".casefold():
        lines[0] = ""
    text = "\n".join(lines)
    text = _YOU_MIGHT_ALSO_LIKE.sub("\n", text)
    text = _LIVE_AD.sub("\n", text)
    text = _PLACEHOLDER.sub("", text)
    return _EMBED.sub("", text.rstrip())


def _section_kind(header: str) -> tuple[str, str | None]:
    label, _, performer = header.partition(":")
    label_lower = label.strip().lower()
    kind = next((k for k in _SECTION_KINDS if label_lower.startswith(k)), "other")
    return kind, (performer.strip() or None)


def clean_lyrics(raw: str, title: str | None = None) -> CleanedLyrics:
    """Plain lyrics with stanza breaks (one blank line) kept and headers moved to sections."""
    undecodable = "\ufffd" in raw or bool(_MOJIBAKE.search(raw))
    text = normalize_unicode(raw)
    text = _CONTROL.sub("", text)
    text = strip_page_residue(text, title)

    out_lines: list[str] = []  # cleaned lines, "" marks a stanza break
    sections: list[Section] = []
    open_section: tuple[str, str, str | None, int] | None = None
    content_lines = 0

    def close_section() -> None:
        if open_section is not None:
            header, kind, performer, first = open_section
            sections.append(Section(header, kind, performer, first, content_lines - first))

    for raw_line in text.split("\n"):
        line = _SPACES.sub(" ", raw_line).strip()
        # a header may be glued to the lyrics that follow it: "[Chorus]Line one"
        while match := _HEADER.match(line):
            close_section()
            header = match.group(1).strip()
            kind, performer = _section_kind(header)
            open_section = (header, kind, performer, content_lines)
            if out_lines and out_lines[-1] != "":
                out_lines.append("")
            line = line[match.end() :].strip()
        if not line:
            if out_lines and out_lines[-1] != "":
                out_lines.append("")
            continue
        out_lines.append(line)
        content_lines += 1
    close_section()
    while out_lines and out_lines[-1] == "":
        out_lines.pop()
    return CleanedLyrics("\n".join(out_lines), sections, undecodable)


def lyrics_hash(text: str) -> str:
    """Hash of the lyrics with case, punctuation and whitespace folded: two copies of a song
    that differ only in those get the same hash."""
    folded = re.sub(r"[^\w]+", " ", text.casefold()).strip()
    return hashlib.sha256(folded.encode()).hexdigest()


def title_rejection(title: str) -> str | None:
    for reason, pattern in _TITLE_RULES:
        if pattern.search(title):
            return reason
    return None


def content_rejection(cleaned: CleanedLyrics, instrumental_flag: bool = False) -> str | None:
    kinds = set(cleaned.headers_only)
    if instrumental_flag or (not cleaned.text and "instrumental" in kinds):
        return "instrumental"
    if cleaned.undecodable:
        return "undecodable"
    if not cleaned.text:
        return "empty"
    lines = cleaned.lines
    if re.fullmatch(r"\W*instrumental\W*", cleaned.text, re.IGNORECASE):
        return "instrumental"
    if sum(bool(_LIST_LINE.match(line)) for line in lines) >= max(2, len(lines) / 2):
        return "not_lyrics"
    if cleaned.word_count < MIN_WORDS or len(lines) < MIN_LINES:
        return "too_short"
    if len(cleaned.text) > MAX_CHARS or len(lines) > MAX_LINES:
        return "oversized"
    return None


def classify(title: str, cleaned: CleanedLyrics, instrumental_flag: bool = False) -> str | None:
    """The rejection reason of a track, or None when it is kept (duplicates are decided per
    artist by the caller, which sees all tracks)."""
    return title_rejection(title) or content_rejection(cleaned, instrumental_flag)
