"""Splitting whole lyrics into chunks the model reads entirely.

MiniLM reads at most 256 tokens; most songs are longer. A song is split by stanza (the blank
lines cleaning keeps, which are the sections); a stanza longer than the limit is split at line
boundaries, and stanzas shorter than ``MIN_WORDS`` words (ad-libs, one-line intros) are merged
into the next one. Every line of the song lands in exactly one chunk, so the whole song is
embedded and a search hit can point at the lines that matched. The track's vector is the
normalized mean of its chunk vectors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

MIN_WORDS = 8


@dataclass(frozen=True)
class Chunk:
    index: int
    first_line: int  # index into the non-blank lines of the lyrics
    line_count: int
    text: str


def _stanzas(text: str) -> list[list[str]]:
    return [
        [line for line in block.split("\n") if line.strip()]
        for block in text.split("\n\n")
        if block.strip()
    ]


def chunk_lyrics(
    text: str, count_tokens: Callable[[list[str]], list[int]], max_tokens: int
) -> list[Chunk]:
    """Chunks of whole lines, each within ``max_tokens`` (a single line longer than that is
    its own chunk and gets truncated by the model: nothing else can be done with it)."""
    pieces: list[list[str]] = []
    for stanza in _stanzas(text):
        (stanza_tokens,) = count_tokens(["\n".join(stanza)])
        if stanza_tokens <= max_tokens:
            pieces.append(stanza)
            continue
        line_tokens = count_tokens(stanza)
        current: list[str] = []
        used = 0
        for line, tokens in zip(stanza, line_tokens, strict=True):
            if current and used + tokens > max_tokens:
                pieces.append(current)
                current, used = [], 0
            current.append(line)
            used += tokens
        pieces.append(current)

    merged: list[list[str]] = []
    pending: list[str] = []
    for piece in pieces:
        candidate = pending + piece
        if pending and count_tokens(["\n".join(candidate)])[0] > max_tokens:
            merged.append(pending)
            candidate = piece
        if sum(len(line.split()) for line in candidate) < MIN_WORDS:
            pending = candidate
        else:
            merged.append(candidate)
            pending = []
    if pending:
        if merged and count_tokens(["\n".join(merged[-1] + pending)])[0] <= max_tokens:
            merged[-1] = merged[-1] + pending
        else:
            merged.append(pending)

    chunks, first = [], 0
    for index, lines in enumerate(merged):
        chunks.append(Chunk(index, first, len(lines), "\n".join(lines)))
        first += len(lines)
    return chunks
