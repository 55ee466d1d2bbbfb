"""The LLM analyzer: ``schema`` (what the model must answer), ``prompt`` (what it is asked),
``answers`` (reading and repairing what it said), ``errors`` (what a failure means) and
``client`` (the calls: structured-output negotiation, retries, caching, stopping early)."""

from rap_pipeline.defs.analyses.llm.answers import parse_answer, repair
from rap_pipeline.defs.analyses.llm.client import LLMAnalyzer, llm_policy
from rap_pipeline.defs.analyses.llm.errors import LLMConfigError, sanitize
from rap_pipeline.defs.analyses.llm.prompt import (
    LYRICS_CLOSE,
    LYRICS_OPEN,
    PROMPT_VERSION,
    build_messages,
    prompt_fingerprint,
)
from rap_pipeline.defs.analyses.llm.schema import (
    MOODS,
    SCORE_ASPECTS,
    TECHNIQUES,
    LyricsAnalysis,
    strict_schema,
)

__all__ = [
    "LYRICS_CLOSE",
    "LYRICS_OPEN",
    "MOODS",
    "PROMPT_VERSION",
    "SCORE_ASPECTS",
    "TECHNIQUES",
    "LLMAnalyzer",
    "LLMConfigError",
    "LyricsAnalysis",
    "build_messages",
    "llm_policy",
    "parse_answer",
    "prompt_fingerprint",
    "repair",
    "sanitize",
    "strict_schema",
]
