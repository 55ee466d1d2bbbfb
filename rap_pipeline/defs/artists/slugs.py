"""Artist names → partition keys that are safe everywhere in Dagster (URLs, file names, CLI)."""

from __future__ import annotations

import hashlib
import re
import unicodedata

SLUG_PATTERN = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_SYMBOLS = {"&": " and ", "$": "s", "+": " plus ", "@": " at "}
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
_MAX_LENGTH = 64


def slugify(name: str) -> str:
    """Lowercase ASCII words joined by hyphens: "Tyler, The Creator" → "tyler-the-creator",
    "Beyoncé" → "beyonce", "Young $avant" → "young-savant".

    Names with no Latin letters or digits at all (e.g. "방탄") get "artist-" plus a short hash
    of the name, so they still have a stable, unique key.
    """
    if not name or not name.strip():
        raise ValueError("an artist name must not be empty")
    text = unicodedata.normalize("NFKC", name).strip()
    for symbol, word in _SYMBOLS.items():
        text = text.replace(symbol, word)
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = _NOT_ALNUM.sub("-", ascii_text.lower().replace("'", "")).strip("-")
    if not slug:
        return "artist-" + hashlib.sha256(text.encode()).hexdigest()[:10]
    return slug[:_MAX_LENGTH].rstrip("-")


def is_valid_slug(slug: str) -> bool:
    return len(slug) <= _MAX_LENGTH and bool(SLUG_PATTERN.match(slug))
