"""What can go wrong with one request, what it means, and how it is told without secrets.

Kinds of failure (``error_class`` of a failed row; the back-off before a track is asked again
depends on it, see ``analyzer.RETRY_DELAYS_S``):

- ``outage``: timeouts, dropped connections, 429 and 5xx after their retries, an open breaker;
- ``invalid_answer``: no JSON, or JSON that does not match the schema even after repair;
- ``refused``: ``message.refusal``, a content filter, or a plain "I can't help with that";
- ``truncated``: cut off at the token limit twice, the second time with twice the limit;
- ``rejected_request``: another 4xx for this track (e.g. lyrics beyond the context window);
- ``stopped``: not asked, because the run stopped (see ``SystematicFailure``).

Errors that no track can get past stop the step instead (``LLMConfigError``): a rejected key
(401/403), an unknown model (404), an exhausted quota.
"""

from __future__ import annotations

import email.utils
import re
import time

import openai

RETRYABLE_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class InvalidAnswer(Exception):
    """The answer was not a JSON object matching the schema: re-asked once."""

    error_class = "invalid_answer"

    def __init__(self, message: str, content: str):
        super().__init__(message)
        self.content = content


class Truncated(InvalidAnswer):
    """The answer was cut off at the token limit (``finish_reason: length``)."""

    error_class = "truncated"


class Refused(Exception):
    """The model declined: the track fails, unretried."""

    error_class = "refused"


class LLMConfigError(RuntimeError):
    """Nothing can succeed until the user changes the configuration or the account."""


def is_retryable(exc: BaseException) -> bool:
    """Transient: worth another request after a wait."""
    if isinstance(exc, openai.APIConnectionError):  # timeouts included
        return True
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code == 429 and exc.code == "insufficient_quota":
            return False  # out of credit: waiting will not help
        return exc.status_code in RETRYABLE_STATUSES or exc.status_code >= 500
    return False


def is_outage(exc: BaseException) -> bool:
    """What counts towards opening the breaker: the server is down or failing."""
    if isinstance(exc, openai.APIConnectionError):
        return True
    return isinstance(exc, openai.APIStatusError) and exc.status_code >= 500


def rejects_response_format(exc: BaseException) -> bool:
    """A 400/422 that names the response format: the server does not take this mode. vLLM,
    llama.cpp and Ollama put the reason in ``message`` only; OpenAI also sets ``param``."""
    if not isinstance(exc, openai.BadRequestError | openai.UnprocessableEntityError):
        return False
    param = str(getattr(exc, "param", None) or "")
    text = f"{param} {error_message(exc)}".lower()
    return any(word in text for word in ("response_format", "json_schema", "json_object"))


def config_error(exc: BaseException) -> LLMConfigError | None:
    """The step-stopping meaning of a client error, or None if it concerns one track only."""
    if not isinstance(exc, openai.APIStatusError):
        return None
    if exc.status_code in (401, 403):
        return LLMConfigError(
            f"the LLM server refused the API key (HTTP {exc.status_code}): check RAP_LLM_API_KEY"
        )
    if exc.status_code == 404:
        return LLMConfigError(
            f"the LLM server does not know the model or path (HTTP 404: "
            f"{error_message(exc)[:200]}): check RAP_LLM_MODEL and RAP_LLM_BASE_URL"
        )
    if exc.status_code == 429 and exc.code == "insufficient_quota":
        return LLMConfigError("the LLM account is out of credit (429 insufficient_quota)")
    return None


def error_class(exc: BaseException) -> str:
    if isinstance(exc, InvalidAnswer | Refused):
        return exc.error_class
    if is_retryable(exc) or isinstance(exc, openai.APIConnectionError):
        return "outage"
    if isinstance(exc, openai.APIStatusError):
        return "rejected_request"
    return "error"


def retry_after(exc: BaseException) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date)."""
    response = getattr(exc, "response", None)
    if response is None:
        return None
    headers = response.headers
    try:
        if headers.get("retry-after-ms") is not None:
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError):
        return None


_SECRET_PATTERNS = (
    re.compile(r"(?i)bearer\s+[^\s'\",;)}\]]+"),
    re.compile(r"\bsk-[A-Za-z0-9_*\-]{6,}"),
)


def sanitize(message: str, secret: str | None) -> str:
    """The message without the API key or anything that looks like one."""
    if secret and len(secret) >= 4:
        message = message.replace(secret, "***")
    for pattern in _SECRET_PATTERNS:
        message = pattern.sub("***", message)
    return message


def error_message(exc: openai.APIStatusError) -> str:
    """The server's own message: OpenAI's ``{"error": {"message"}}`` or vLLM's top-level
    ``{"message"}``."""
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        if isinstance(error, str):
            return error
    return exc.message


def describe(exc: BaseException) -> str:
    """A short, human message for an exception of the client (still to be sanitized)."""
    if isinstance(exc, openai.APITimeoutError):
        return "the LLM server did not answer in time"
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        return f"cannot reach the LLM server ({type(cause).__name__ if cause else 'connection'})"
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code}: {error_message(exc)[:300]}"
    return f"{type(exc).__name__}: {str(exc)[:300]}"
