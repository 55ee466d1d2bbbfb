"""Reading an answer: the JSON found in it, repaired where its meaning survives, validated.

Tolerant where the meaning is unambiguous, strict where it is not. Repairs (each counted, so a
run says how much it mended): a known synonym of a field name (``lyricism_score`` for
``lyricism``, ``flow`` for ``flow_on_paper``, ``topics`` for ``themes``); a whole-number score
written as a string ("7", "7/10", "7 out of 10"); a single theme given as a string; a mood
outside the list, kept as ``mood_raw`` with mood "other". Not repaired, so still failures:
scores out of range or not whole, missing themes, scores, rationales or summary, a shape of
the model's own, prose with no JSON.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError

from rap_pipeline.defs.analyses.llm.errors import InvalidAnswer, Refused, Truncated
from rap_pipeline.defs.analyses.llm.schema import (
    MOODS,
    OTHER_MOOD,
    SCORE_ASPECTS,
    LyricsAnalysis,
    normalize_word,
)

# other names models give the top-level fields (never a name of another field)
FIELD_ALIASES = {
    "themes": ("theme", "topics", "main_themes", "key_themes"),
    "mood": ("dominant_mood", "overall_mood", "tone"),
    "techniques": ("writing_techniques", "literary_techniques", "literary_devices"),
    "scores": ("ratings", "quality_scores"),
    "summary": ("overall_summary", "synopsis"),
}
SCORE_ALIASES = {
    "lyricism": ("lyricism_score", "lyrical_skill"),
    "originality": ("originality_score",),
    "storytelling": ("storytelling_score", "narrative"),
    "flow_on_paper": ("flow", "flow_score", "flow_on_paper_score"),
}
_SCORE_TEXT = re.compile(r"^\s*(\d{1,2})(?:\.0+)?\s*(?:(?:/|out of)\s*10)?\s*$", re.IGNORECASE)

_THINK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.IGNORECASE)
_REFUSAL = re.compile(
    r"(?i)\b(i\s*(?:'m| am)\s+(?:sorry|unable|not able)|i\s+(?:can(?:'|no)?t|cannot|won't|"
    r"will not)\s+(?:help|assist|analy[sz]e|provide|comply|do that)|as an ai)"
)


def _rename(document: dict[str, Any], aliases: dict[str, tuple[str, ...]], repairs: list[str]):
    for name, others in aliases.items():
        if name in document:
            continue
        found = [other for other in others if other in document]
        if len(found) == 1:  # two candidates: ambiguous, left alone
            document[name] = document.pop(found[0])
            repairs.append(f"renamed {found[0]}")


def _score(value: Any, repairs: list[str]) -> Any:
    if isinstance(value, str) and (match := _SCORE_TEXT.match(value)):
        repairs.append("score from text")
        return int(match.group(1))
    if isinstance(value, float) and value.is_integer():
        repairs.append("score from text")
        return int(value)
    return value


def repair(document: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A copy of the answer mapped to the schema where the mapping is unambiguous, and the
    repairs made (empty for an answer that needed none)."""
    document = dict(document)
    repairs: list[str] = []
    _rename(document, FIELD_ALIASES, repairs)
    if isinstance(document.get("themes"), str):
        document["themes"] = [document["themes"]]
        repairs.append("theme as list")
    scores = document.get("scores")
    if isinstance(scores, dict):
        scores = dict(scores)
        _rename(scores, SCORE_ALIASES, repairs)
        for aspect in SCORE_ASPECTS:
            if isinstance(scores.get(aspect), dict):
                scores[aspect] = dict(scores[aspect])
                scores[aspect]["score"] = _score(scores[aspect].get("score"), repairs)
        document["scores"] = scores
    mood = normalize_word(document.get("mood"))
    if isinstance(mood, str) and mood and mood not in (*MOODS, OTHER_MOOD):
        document["mood"], document["mood_raw"] = OTHER_MOOD, mood[:40]
        repairs.append("mood outside the list")
    return document, repairs


def extract_json(content: str, finish_reason: str | None) -> dict[str, Any]:
    """The JSON object in an answer: ``<think>`` blocks and code fences removed, prose around
    it ignored. Raises Refused, Truncated or InvalidAnswer."""
    text = _FENCE.sub("", _THINK.sub("", content).strip()).strip()
    start, end = text.find("{"), text.rfind("}")
    if finish_reason == "length":
        raise Truncated("the answer was cut off at the token limit", content)
    if start < 0 or end <= start:
        if _REFUSAL.search(text):
            raise Refused(text[:200])
        raise InvalidAnswer("no complete JSON object in the answer", content)
    try:
        document = json.loads(text[start : end + 1])
    except json.JSONDecodeError as exc:
        raise InvalidAnswer(f"invalid JSON ({exc.msg} at char {exc.pos})", content) from exc
    if not isinstance(document, dict):
        raise InvalidAnswer("the JSON is not an object", content)
    return document


def parse_answer(message: Any, finish_reason: str | None) -> tuple[LyricsAnalysis, list[str]]:
    """The validated analysis in one chat completion message, and the repairs it needed;
    raises Refused, Truncated or InvalidAnswer."""
    refusal = getattr(message, "refusal", None)
    if refusal:
        raise Refused(str(refusal).strip()[:200])
    if finish_reason == "content_filter":
        raise Refused("the provider's content filter stopped the answer")
    content = (getattr(message, "content", None) or "").strip()
    document, repairs = repair(extract_json(content, finish_reason))
    try:
        return LyricsAnalysis.model_validate(document), repairs
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'answer'}: {e['msg']}"
            for e in exc.errors()[:6]
        )
        raise InvalidAnswer(f"does not match the schema ({problems})", content) from exc
