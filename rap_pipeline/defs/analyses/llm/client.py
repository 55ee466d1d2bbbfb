"""The LLM analyzer: themes, mood, techniques and 1–10 quality scores from any OpenAI-compatible
chat-completions server (OpenAI, Ollama, vLLM, llama.cpp, SGLang, Novita…), through the
official ``openai`` client.

Structured outputs, negotiated per server (``formats.py``)
    ``json_schema`` first, then ``json_object``, then plain text, remembered per server; a
    server not asked before gets the first track of a run alone, so the probe is one request.

Retries (ours; the client is built with ``max_retries=0``)
    Timeouts, connection errors, 429 (the shared guard pauses everyone for ``Retry-After``)
    and 5xx: exponential backoff plus jitter, up to ``max_attempts`` requests per track. An
    invalid answer is re-asked once, with the validation error fed back; an answer cut off at
    the token limit once, with twice the limit. A refusal is not retried. A rejected key, an
    unknown model or an exhausted quota stops the run (``LLMConfigError``): no track can pass.

Stopping early
    If the first ``stop_after`` answers of a run all fail the same way, asking the rest would
    only pay for the same failure: the analyzer stops, records the tracks it did not ask as
    ``stopped``, and ``stop_reason`` names the likely cause; the asset then fails its step.

Caching
    Through ``ApiGuard.cached("chat", {model, prompt_version, lyrics_hash, title})`` in Redis:
    only validated analyses are cached, so a cache hit makes no HTTP request and reports zero
    tokens, zero cost and ``cached: True``.

The failure rule
    ``analyze`` never raises for one track: a track that cannot be analyzed becomes
    ``AnalysisResult(status="failed", error=..., error_class=...)``, never a result with
    made-up values. Errors are sanitized: the API key (and anything shaped like a bearer token
    or ``sk-`` key) never appears in an error, a log line or a result.
"""

from __future__ import annotations

import functools
import logging
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai
from tenacity import RetryCallState, retry, retry_if_exception, stop_after_attempt

from rap_pipeline.core.api_guard import ApiGuard, CircuitOpenError, ProviderPolicy
from rap_pipeline.core.backoff import backoff_seconds
from rap_pipeline.defs.analyses.analyzer import AnalysisResult, AnalyzerInfo, TrackText
from rap_pipeline.defs.analyses.llm.answers import parse_answer
from rap_pipeline.defs.analyses.llm.errors import (
    InvalidAnswer,
    LLMConfigError,
    Refused,
    Truncated,
    config_error,
    describe,
    error_class,
    is_outage,
    is_retryable,
    rejects_response_format,
    retry_after,
    sanitize,
)
from rap_pipeline.defs.analyses.llm.formats import (
    FormatNegotiation,
    ResponseFormat,
    response_format_option,
)
from rap_pipeline.defs.analyses.llm.prompt import PROMPT_VERSION, REASK_TEMPLATE, build_messages
from rap_pipeline.defs.analyses.llm.schema import SCORE_RANGES
from rap_pipeline.defs.analyses.llm.totals import RunTotals, Spent

log = logging.getLogger(__name__)

DAY_S = 86_400


def llm_policy(requests_per_s: float = 2.0, burst: int = 4) -> ProviderPolicy:
    """LLM providers publish per-key limits that vary by plan: 2 requests/s shared by all runs,
    with a burst of 4 for the concurrent workers, is a conservative default. An analysis only
    changes with the model, the prompt version or the lyrics, all in the key: cached 180 days."""
    return ProviderPolicy(
        name="llm",
        requests_per_s=requests_per_s,
        burst=burst,
        failure_threshold=5,
        open_s=60.0,
        cache_ttl_s={"chat": 180 * DAY_S},
    )


class LLMAnalyzer:
    """Analyzes tracks with a chat model behind any OpenAI-compatible ``base_url``."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        model: str,
        *,
        concurrency: int = 4,
        timeout_s: float = 60.0,
        max_attempts: int = 4,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 30.0,
        max_retry_after_s: float = 120.0,
        price_input_per_mtok: float = 0.0,
        price_output_per_mtok: float = 0.0,
        temperature: float | None = 0.2,
        max_output_tokens: int | None = 1_500,
        response_format: ResponseFormat = "auto",
        stop_after: int = 5,
        guard: ApiGuard | None = None,
    ):
        if not api_key:
            raise ValueError(
                "the LLM analyzer needs an API key (any non-empty value for a local server)"
            )
        if concurrency < 1 or max_attempts < 1:
            raise ValueError("concurrency and max_attempts are at least 1")
        self._api_key = api_key
        self.base_url = base_url
        self.model = model
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.max_retry_after_s = max_retry_after_s
        self.price_input_per_mtok = price_input_per_mtok
        self.price_output_per_mtok = price_output_per_mtok
        self.temperature = temperature
        self.max_output_tokens = max_output_tokens
        self.response_format = response_format
        self.stop_after = stop_after
        self.guard = guard
        self.client = openai.OpenAI(
            base_url=base_url, api_key=api_key, max_retries=0, timeout=timeout_s
        )
        self.info = AnalyzerInfo(
            name="llm",
            version=PROMPT_VERSION,
            method=f"openai:{model}",
            ranges=dict(SCORE_RANGES),
        )
        self._totals = RunTotals()
        self.formats = FormatNegotiation(base_url, model, response_format, guard)
        self._outcomes: list[str | None] = []  # failure signatures of the first answers
        self.stop_reason: str | None = None
        self._stopped_class = "stopped"

    def __repr__(self) -> str:  # never the key
        return f"LLMAnalyzer(base_url={self.base_url!r}, model={self.model!r})"

    def close(self) -> None:
        self.client.close()

    # -- totals --------------------------------------------------------------------------
    def run_totals(self) -> dict[str, Any]:
        """Sums since this analyzer was made (or ``reset_totals``): tracks, ok, failed,
        refused, stopped, cache_hits, calls (HTTP requests), retries, rate_limited,
        prompt_tokens, completion_tokens, cost_usd, repaired answers and repairs by kind, and
        the response format in use."""
        return self._totals.as_dict() | {
            "response_format": self.formats.current or "not negotiated"
        }

    def reset_totals(self) -> None:
        self._totals = RunTotals()

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (
            prompt_tokens * self.price_input_per_mtok
            + completion_tokens * self.price_output_per_mtok
        ) / 1_000_000

    def _add(self, **amounts: float) -> None:
        self._totals.add(**amounts)

    # -- analysis ------------------------------------------------------------------------
    def analyze(self, tracks: Sequence[TrackText]) -> list[AnalysisResult]:
        """One result per track, in input order, ``concurrency`` tracks at a time."""
        if not tracks:
            return []
        self.formats.mode()
        # a server not asked before gets the first track alone, so the format is settled once
        first = [] if self.formats.settled else [self.analyze_one(tracks[0])]
        rest = list(tracks[len(first) :])
        if not rest:
            return first
        with ThreadPoolExecutor(
            max_workers=min(self.concurrency, len(rest)), thread_name_prefix="llm"
        ) as pool:
            return [*first, *pool.map(self.analyze_one, rest)]

    def analyze_one(self, track: TrackText) -> AnalysisResult:
        started = time.monotonic()
        if self.stop_reason is not None:
            self._add(tracks=1, failed=1, stopped=1)
            return AnalysisResult(
                track.track_id,
                "failed",
                error=f"not asked: the run stopped ({self.stop_reason})",
                error_class=self._stopped_class,
            )
        spent = Spent()
        fetched = False
        repairs: list[str] = []

        def fetch() -> dict[str, Any]:
            nonlocal fetched
            fetched = True
            analysis, found = self._ask(track, spent)
            repairs.extend(found)
            return {
                "analysis": analysis.values(),
                "usage": {
                    "prompt_tokens": spent.prompt_tokens,
                    "completion_tokens": spent.completion_tokens,
                },
            }

        error: str | None = None
        failure: BaseException | None = None
        payload: dict[str, Any] | None = None
        try:
            if self.guard is None:
                payload = fetch()
            else:
                request = {
                    "model": self.model,
                    "prompt_version": PROMPT_VERSION,
                    "lyrics_hash": track.lyrics_hash,
                    "title": track.title,
                }
                payload = self.guard.cached(
                    "chat", request, fetch, is_not_found=lambda value: False
                )
        except LLMConfigError as exc:
            failure, error = exc, f"LLM server error (not retried): {describe(exc.__cause__)}"
            self._stop(sanitize(str(exc), self._api_key), "config")
        except Refused as exc:
            failure, error = exc, f"refused: {exc}"
        except InvalidAnswer as exc:
            failure, error = exc, f"{exc.error_class} after {spent.calls} attempt(s): {exc}"
        except CircuitOpenError as exc:
            failure, error = exc, f"circuit open: {exc}"
        except openai.APIStatusError as exc:
            after = f"after {spent.calls} attempt(s)" if is_retryable(exc) else "not retried"
            failure, error = exc, f"LLM server error ({after}): {describe(exc)}"
        except openai.APIConnectionError as exc:
            failure, error = exc, f"{describe(exc)} after {spent.calls} attempt(s)"
        except Exception as exc:  # never raise for one track
            failure, error = exc, f"unexpected error: {describe(exc)}"

        cached = not fetched and payload is not None
        cost = 0.0 if cached else self.cost(spent.prompt_tokens, spent.completion_tokens)
        usage: dict[str, float] = {
            "prompt_tokens": spent.prompt_tokens,
            "completion_tokens": spent.completion_tokens,
            "cost_usd": cost,
            "calls": spent.calls,
            "cached": cached,
        }
        with self._totals.lock:
            self._totals.repairs.update(repairs)
        if self.guard is not None and spent.calls:  # what was billed, for the exporter
            self.guard.count("prompt_tokens", spent.prompt_tokens)
            self.guard.count("completion_tokens", spent.completion_tokens)
            self.guard.add("cost_usd", cost)
        self._add(
            tracks=1,
            ok=int(error is None),
            failed=int(error is not None),
            refused=int(isinstance(failure, Refused)),
            cache_hits=int(cached),
            repaired=int(bool(repairs)),
            prompt_tokens=spent.prompt_tokens,
            completion_tokens=spent.completion_tokens,
            cost_usd=cost,
        )
        seconds = time.monotonic() - started
        kind = "outage" if isinstance(failure, CircuitOpenError) else None
        kind = "config" if isinstance(failure, LLMConfigError) else kind
        kind = kind or (error_class(failure) if failure is not None else None)
        if not cached:
            self._watch(kind, None if failure is None else str(failure))
        if error is not None or payload is None:
            message = sanitize(error or "no analysis", self._api_key)
            log.warning("LLM analysis of track %s failed: %s", track.track_id, message)
            return AnalysisResult(
                track.track_id,
                "failed",
                error=message,
                seconds=seconds,
                usage=usage,
                error_class=kind or "error",
            )
        return AnalysisResult(
            track.track_id, "ok", values=payload["analysis"], seconds=seconds, usage=usage
        )

    def _watch(self, kind: str | None, error: str | None) -> None:
        """Stops the run when its first ``stop_after`` answers all failed the same way (same
        kind, same message: for an invalid answer, the same validation errors)."""
        signature = None if kind is None else f"{kind}: {(error or '')[:80]}"
        with self._totals.lock:
            if len(self._outcomes) >= self.stop_after or self.stop_reason is not None:
                return
            self._outcomes.append(signature)
            if len(self._outcomes) < self.stop_after or len(set(self._outcomes)) != 1:
                return
            if signature is None:
                return
        self._stop(self._likely_cause(kind or "error", error or ""), "stopped")

    def _stop(self, reason: str, stopped_class: str) -> None:
        """No more requests this run; the tracks not asked are recorded as ``stopped_class``
        ("config": due again at once, since the user fixes the configuration first)."""
        with self._totals.lock:
            if self.stop_reason is None:
                self.stop_reason, self._stopped_class = reason, stopped_class

    def _likely_cause(self, kind: str, error: str) -> str:
        first = f"the first {self.stop_after} answers all failed the same way ({error[:200]})"
        mode = self.formats.current or "?"
        hints = {
            "invalid_answer": (
                "the server ignores the schema written into the prompt; set "
                "RAP_LLM_RESPONSE_FORMAT=json_schema (if the server supports structured "
                "outputs) or use a model that does"
                if mode != "json_schema"
                else "the model does not follow the schema even under structured outputs; "
                "try another model"
            ),
            "truncated": "answers are cut off at the token limit; use a model with a larger "
            "output limit",
            "refused": "the model refuses these lyrics; use another model",
            "outage": "the LLM server is failing; the tracks are retried after a back-off",
            "rejected_request": "the server rejects the requests; check RAP_LLM_BASE_URL and "
            "RAP_LLM_MODEL",
        }
        hint = hints.get(kind, "see the errors of the failed tracks")
        return sanitize(
            f"{first}: {hint}. Once fixed, re-ask at once with `rap-pipeline run --force`",
            self._api_key,
        )

    # -- one track, with retries ---------------------------------------------------------
    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        return backoff_seconds(
            state.attempt_number,
            self.backoff_initial_s,
            self.backoff_max_s,
            retry_after(exc) if exc is not None else None,
            self.max_retry_after_s,
        )

    def _before_sleep(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        self._add(retries=1)
        what = str(exc) if isinstance(exc, InvalidAnswer) else describe(exc) if exc else "?"
        log.info(
            "LLM call %d/%d failed (%s); retrying in %.2f s",
            state.attempt_number,
            self.max_attempts,
            sanitize(what, self._api_key),
            state.next_action.sleep if state.next_action else 0.0,
        )

    def _ask(self, track: TrackText, spent: Spent) -> tuple[Any, list[str]]:
        """Calls until a valid analysis; raises the last error when attempts run out."""
        messages: list[dict[str, str]] = build_messages(track.title, track.lyrics)
        feedback: list[dict[str, str]] = []
        options: dict[str, Any] = {}
        if self.temperature is not None:
            options["temperature"] = self.temperature
        if self.max_output_tokens is not None:
            options["max_tokens"] = self.max_output_tokens
        answers_failed = Counter[str]()  # invalid answers are re-asked once, cut-off ones too

        def request(mode: str) -> Any:
            spent.calls += 1
            self._add(calls=1)
            response = self.client.chat.completions.create(
                model=self.model,
                messages=messages + feedback,
                **options,
                **response_format_option(mode),
            )
            usage = response.usage
            if usage is not None:
                prompt, completion = usage.prompt_tokens or 0, usage.completion_tokens or 0
                spent.prompt_tokens += prompt
                spent.completion_tokens += completion
            return response

        def send() -> Any:
            """One answer, under the mode the server takes (a rejected mode falls back at once:
            the rejection is the server's answer, not a failure of this track)."""
            mode = self.formats.mode()
            while True:
                try:
                    if self.guard is None:
                        response = request(mode)
                    else:  # the shared rate limit and breaker; outages count towards opening
                        response = self.guard.call(
                            functools.partial(request, mode), is_failure=is_outage
                        )
                except openai.APIStatusError as exc:
                    if rejects_response_format(exc) and (nxt := self.formats.rejected(mode)):
                        mode = nxt
                        continue
                    raise
                self.formats.answered(mode)
                return response

        def may_retry(exc: BaseException) -> bool:
            if isinstance(exc, InvalidAnswer):
                return answers_failed[exc.error_class] <= 1
            return is_retryable(exc)

        @retry(
            retry=retry_if_exception(may_retry),
            stop=stop_after_attempt(self.max_attempts),
            wait=self._wait,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        def attempt() -> tuple[Any, list[str]]:
            try:
                response = send()
            except openai.RateLimitError as exc:
                self._add(rate_limited=1)
                if self.guard is not None and is_retryable(exc):
                    wait = retry_after(exc)
                    if wait is not None:
                        wait = min(wait, self.max_retry_after_s)
                    self.guard.penalize(wait)
                raise
            except openai.APIStatusError as exc:
                stop = config_error(exc)
                if stop is not None:
                    raise stop from exc
                raise
            if not response.choices:
                raise InvalidAnswer("the answer has no choices", "")
            choice = response.choices[0]
            try:
                return parse_answer(choice.message, choice.finish_reason)
            except Truncated as exc:
                answers_failed[exc.error_class] += 1
                options["max_tokens"] = 2 * (options.get("max_tokens") or 2_048)
                raise
            except InvalidAnswer as exc:
                answers_failed[exc.error_class] += 1
                feedback[:] = [
                    {"role": "assistant", "content": exc.content[:4_000]},
                    {"role": "user", "content": REASK_TEMPLATE.format(error=exc)},
                ]
                raise

        return attempt()
