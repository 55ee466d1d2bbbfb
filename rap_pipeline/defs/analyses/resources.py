"""The models and servers the analysis assets use."""

from __future__ import annotations

import functools

import dagster as dg

from rap_pipeline.core.resources import RedisResource, guard_for
from rap_pipeline.defs.analyses.analyzer import Analyzer
from rap_pipeline.defs.analyses.emotion import DEFAULT_EMOTION_MODEL, load_emotion_analyzer
from rap_pipeline.defs.analyses.llm import LLMAnalyzer, llm_policy
from rap_pipeline.defs.analyses.llm.formats import ResponseFormat


@functools.cache
def _emotion_analyzer(
    model_id: str, batch_size: int, quantize_int8: bool, fallback: bool, threads: int
) -> tuple[Analyzer, str | None]:
    # one load per process: every partition run in it reuses the model
    return load_emotion_analyzer(
        model_id,
        fallback=fallback,
        batch_size=batch_size,
        quantize_int8=quantize_int8,
        threads=threads or None,
    )


class EmotionModelResource(dg.ConfigurableResource):
    """The emotion classifier (RAP_EMOTION_MODEL: a hub id or a local folder). When it cannot
    be loaded, the NRC lexicon analyzer stands in, labelled ``lexicon:nrc`` (unless
    ``fallback_to_lexicon`` is off, which fails the asset instead)."""

    model_id: str = DEFAULT_EMOTION_MODEL
    batch_size: int = 16
    quantize_int8: bool = False
    fallback_to_lexicon: bool = True
    torch_threads: int = 0  # RAP_TORCH_THREADS; 0: one per core

    def load(self) -> tuple[Analyzer, str | None]:
        """The analyzer, and why the lexicon stands in (None when the model loaded)."""
        return _emotion_analyzer(
            self.model_id,
            self.batch_size,
            self.quantize_int8,
            self.fallback_to_lexicon,
            self.torch_threads,
        )


class LLMResource(dg.ConfigurableResource):
    """Any OpenAI-compatible server: RAP_LLM_BASE_URL, RAP_LLM_MODEL and RAP_LLM_API_KEY (any
    non-empty value for local servers such as Ollama or vLLM). Without a base URL and a model
    the asset records "not configured" and succeeds. Prices are per million tokens, for the
    estimated cost. ``response_format`` (RAP_LLM_RESPONSE_FORMAT): "auto" negotiates
    structured outputs per server; json_schema, json_object or text forces one."""

    base_url: str | None = None
    api_key: str | None = None
    model: str | None = None
    concurrency: int = 4
    timeout_s: float = 120.0
    max_attempts: int = 4
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 30.0
    requests_per_s: float = 2.0
    price_input_per_mtok: float = 0.0
    price_output_per_mtok: float = 0.0
    response_format: ResponseFormat = "auto"
    redis: RedisResource | None = None

    @property
    def configured(self) -> bool:
        return bool(self.base_url and self.model)

    def build(self) -> LLMAnalyzer:
        return LLMAnalyzer(
            self.base_url or "",
            self.api_key or "not-needed",
            self.model or "",
            concurrency=self.concurrency,
            timeout_s=self.timeout_s,
            max_attempts=self.max_attempts,
            backoff_initial_s=self.backoff_initial_s,
            backoff_max_s=self.backoff_max_s,
            price_input_per_mtok=self.price_input_per_mtok,
            price_output_per_mtok=self.price_output_per_mtok,
            response_format=self.response_format,
            guard=guard_for(self.redis, llm_policy(self.requests_per_s)),
        )
