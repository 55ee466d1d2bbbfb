"""What the model must answer: ``LyricsAnalysis``, validated with pydantic, and the strict JSON
schema that servers with structured outputs constrain their decoding to."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from rap_pipeline.defs.analyses.analyzer import MetricRange

Mood = Literal[
    "aggressive",
    "boastful",
    "celebratory",
    "dark",
    "defiant",
    "hopeful",
    "introspective",
    "melancholic",
    "nostalgic",
    "paranoid",
    "playful",
    "romantic",
    "triumphant",
    "vulnerable",
]
MOODS: tuple[str, ...] = get_args(Mood)
# a mood word outside MOODS is kept as free text in ``mood_raw``, with mood "other"
OTHER_MOOD = "other"
AnswerMood = Literal[(*MOODS, OTHER_MOOD)]  # type: ignore[valid-type]

Technique = Literal[
    "wordplay",
    "double entendre",
    "metaphor",
    "simile",
    "storytelling",
    "multisyllabic rhyme",
    "internal rhyme",
    "alliteration",
    "assonance",
    "repetition",
    "punchline",
    "imagery",
    "personification",
    "hyperbole",
    "onomatopoeia",
    "allusion",
    "call and response",
]
TECHNIQUES: tuple[str, ...] = get_args(Technique)
TECHNIQUE_ALIASES = {
    "multisyllabic rhymes": "multisyllabic rhyme",
    "multi syllabic rhyme": "multisyllabic rhyme",
    "multis": "multisyllabic rhyme",
    "internal rhymes": "internal rhyme",
    "metaphors": "metaphor",
    "similes": "simile",
    "punchlines": "punchline",
    "double entendres": "double entendre",
    "pop culture reference": "allusion",
    "pop culture references": "allusion",
    "references": "allusion",
    "narrative": "storytelling",
    "puns": "wordplay",
    "pun": "wordplay",
}

SCORE_ASPECTS = ("lyricism", "originality", "storytelling", "flow_on_paper")
ASPECT_DESCRIPTIONS = {
    "lyricism": "craft of the writing: imagery, wordplay, density of ideas",
    "originality": "fresh subjects, angles and phrasing rather than clichés",
    "storytelling": "narrative, perspective and coherence across the song",
    "flow_on_paper": "rhythm, rhyme schemes and cadence as written on the page",
}

ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]


def normalize_word(text: Any) -> Any:
    """Lower case, hyphens and underscores as spaces, single spaces (non-strings unchanged)."""
    if not isinstance(text, str):
        return text
    return re.sub(r"\s+", " ", re.sub(r"[-_]", " ", text)).strip().lower()


class ScoredAspect(BaseModel):
    """One quality score with its reason."""

    model_config = ConfigDict(extra="ignore")

    score: int = Field(ge=1, le=10, description="1 (weak) to 10 (exceptional)")
    rationale: str = Field(
        min_length=3, max_length=300, description="one sentence explaining the score"
    )

    @field_validator("rationale", mode="before")
    @classmethod
    def _strip(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value


class Scores(BaseModel):
    model_config = ConfigDict(extra="ignore")

    lyricism: ScoredAspect = Field(description=ASPECT_DESCRIPTIONS["lyricism"])
    originality: ScoredAspect = Field(description=ASPECT_DESCRIPTIONS["originality"])
    storytelling: ScoredAspect = Field(description=ASPECT_DESCRIPTIONS["storytelling"])
    flow_on_paper: ScoredAspect = Field(description=ASPECT_DESCRIPTIONS["flow_on_paper"])


class LyricsAnalysis(BaseModel):
    """What the model must answer, as JSON. Validation: 1–5 distinct themes of at most 40
    characters; a mood from ``MOODS``, or "other" with the model's own word in ``mood_raw``;
    techniques from ``TECHNIQUES`` (case, hyphens and common plurals normalized, unknown ones
    dropped, at most 8); four scores 1–10 with a rationale each; a summary of at most 300
    characters."""

    model_config = ConfigDict(extra="ignore")

    themes: list[ShortText] = Field(
        min_length=1, max_length=5, description="1 to 5 short themes, e.g. 'street life'"
    )
    mood: AnswerMood = Field(
        description="the dominant mood; 'other' when none of the listed moods fits"
    )
    mood_raw: str | None = Field(
        default=None, max_length=40, description="the mood in your own word when mood is 'other'"
    )
    techniques: list[Technique] = Field(
        default_factory=list, max_length=8, description="notable writing techniques used"
    )
    scores: Scores
    summary: str = Field(min_length=10, max_length=300, description="at most 300 characters")

    @field_validator("themes", mode="after")
    @classmethod
    def _distinct_themes(cls, themes: list[str]) -> list[str]:
        seen: dict[str, str] = {}
        for theme in themes:
            seen.setdefault(theme.casefold(), theme)
        return list(seen.values())

    @field_validator("mood", mode="before")
    @classmethod
    def _mood(cls, value: Any) -> Any:
        return normalize_word(value)

    @field_validator("techniques", mode="before")
    @classmethod
    def _techniques(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        known: list[str] = []
        for item in value:
            name = normalize_word(item)
            name = TECHNIQUE_ALIASES.get(name, name)
            if name in TECHNIQUES and name not in known:
                known.append(name)
        return known

    @field_validator("summary", mode="before")
    @classmethod
    def _summary(cls, value: Any) -> Any:
        return value.strip() if isinstance(value, str) else value

    def values(self) -> dict[str, Any]:
        """The stored form: scores flattened to top-level metrics, rationales beside them."""
        scores = self.scores.model_dump()
        return {
            "themes": list(self.themes),
            "mood": self.mood,
            "mood_raw": self.mood_raw if self.mood == OTHER_MOOD else None,
            "techniques": list(self.techniques),
            **{aspect: scores[aspect]["score"] for aspect in SCORE_ASPECTS},
            "rationales": {aspect: scores[aspect]["rationale"] for aspect in SCORE_ASPECTS},
            "summary": self.summary,
        }


SCORE_RANGES = {
    aspect: MetricRange(1, 10, f"LLM score: {description}")
    for aspect, description in ASPECT_DESCRIPTIONS.items()
}

# the name servers see in response_format.json_schema (^[A-Za-z0-9_-]{1,64}$)
SCHEMA_NAME = "lyrics_analysis"
# What a strict schema keeps: structure, enums and descriptions. Ranges and lengths are not
# supported by every server's constrained decoding (OpenAI's strict mode, vLLM's and
# llama.cpp's grammars differ), so they stay in the pydantic validation of every answer.
_STRICT_KEYWORDS = frozenset(
    {"type", "properties", "required", "additionalProperties", "items", "enum", "anyOf"}
    | {"description", "$defs", "$ref"}
)


def prompt_schema() -> dict[str, Any]:
    """The JSON schema of the answer as the prompt shows it: no titles, no class docstrings."""

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                key: strip(value)
                for key, value in node.items()
                if not (key == "title" and isinstance(value, str))
            }
        if isinstance(node, list):
            return [strip(item) for item in node]
        return node

    schema = strip(LyricsAnalysis.model_json_schema())
    schema.pop("description", None)
    for definition in schema.get("$defs", {}).values():
        definition.pop("description", None)
    return schema


def strict_schema() -> dict[str, Any]:
    """The schema for ``response_format: json_schema`` with ``strict: true``: every object
    lists all its properties as required and forbids others, optional values are nullable,
    and only keywords every structured-output server supports remain."""

    def strict(node: Any) -> Any:
        if isinstance(node, list):
            return [strict(item) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:  # strict mode allows no keywords beside a reference
            return {"$ref": node["$ref"]}
        kept = {key: strict(value) for key, value in node.items() if key in _STRICT_KEYWORDS}
        if "properties" in kept:
            kept["properties"] = {name: strict(sub) for name, sub in node["properties"].items()}
            kept["required"] = list(kept["properties"])
            kept["additionalProperties"] = False
        if "$defs" in kept:
            kept["$defs"] = {name: strict(sub) for name, sub in node["$defs"].items()}
        return kept

    return strict(prompt_schema())
