"""A local OpenAI-compatible chat server, answering what the ``openai`` client asks for.

One ``ThreadingHTTPServer`` on 127.0.0.1 and a free port, in a background thread, serves:

* ``POST /v1/chat/completions``: needs ``Authorization: Bearer <api_key>`` (else 401, with the
  wrong key echoed in the error body, as a careless server would: the client must not leak
  it), a known ``model`` (else 404 ``model_not_found``) and ``messages`` (else 400). By default
  it answers a valid ``LyricsAnalysis`` JSON object derived deterministically from the lyrics
  in the prompt (themes are the most frequent words, scores come from a checksum), with
  ``usage`` token counts of about one token per four characters.
* ``GET /v1/models``: the configured models.

Faults are scripted, in order, for the next chat requests (``fail``), optionally only for
requests whose prompt contains ``match``, or for every request (``fail_always``); kinds:

========================  ==================================================================
``INVALID_JSON``          200, content that is not JSON ("Sure! {themes: [...")
``SCHEMA_INVALID``        200, JSON with a score of 42, an unknown mood and no summary
``REFUSAL``               200, ``message.refusal`` set and no content
``REFUSAL_TEXT``          200, a plain "I'm sorry, I can't …" sentence as the content
``CONTENT_FILTER``        200, ``finish_reason: content_filter`` and empty content
``TRUNCATED``             200, half of a valid answer and ``finish_reason: length``
``FENCED``                200, a valid answer inside a ``<think>`` block and ```json fences
``RATE_LIMIT``            429 with ``Retry-After: <retry_after>`` (OpenAI error body)
``QUOTA``                 429 ``insufficient_quota`` (not worth retrying)
``SERVER_ERROR``          500 (or ``status``), its body echoing the Authorization header
``SLOW``                  a normal answer after ``seconds`` (beyond the client's timeout)
``RESET``                 the connection is dropped without an answer
========================  ==================================================================

How the server treats ``response_format`` and the prompt, like real servers at their worst:

* ``json_schema``: ``"honours"`` (OpenAI, vLLM, Ollama, llama.cpp: decoding constrained to the
  schema, which must be strict-compatible or the request is refused with OpenAI's 400
  "Invalid schema for response_format …"), ``"rejects"`` (400 naming ``response_format``, as
  OpenAI answers for models without structured outputs) or ``"ignores"`` (answers as if no
  schema was sent, as older servers do).
* ``json_object``: ``"honours"`` or ``"rejects"`` (400 naming ``response_format``).
* ``prompt_schema``: what the model answers when nothing constrains it to the schema (under
  ``json_object`` or plain text): ``"follows"`` the schema written in the prompt, ``"ignores"``
  it (valid JSON in its own shape: its own field names and mood words) or ``"near_miss"``
  (the right content in a near-miss shape: ``lyricism_score`` for ``lyricism``, ``flow`` for
  ``flow_on_paper``, scores as strings such as "7/10", a mood outside the list).
* ``min_max_tokens``: answers to requests whose ``max_tokens``/``max_completion_tokens`` is
  below it are cut off (``finish_reason: length``), as a verbose model's are.

``delay_s`` delays every chat answer (for throughput against concurrency). Every request is
recorded (``requests``): arrival time, path, status, whether an Authorization header came (its
value is not kept), the model, the fault, the lyrics between the prompt's markers, their line
count and whether their line breaks arrived intact; ``max_in_flight`` is the largest number of
chat requests being answered at once.

    with FakeOpenAI(api_key="sk-test", delay_s=0.05) as server:
        server.fail(FakeOpenAI.INVALID_JSON, FakeOpenAI.RATE_LIMIT, retry_after=1)
        analyzer = LLMAnalyzer(server.base_url, "sk-test", server.model)
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import threading
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from rap_pipeline.core.local_http import LocalHTTPServer
from rap_pipeline.defs.analyses.llm import LYRICS_CLOSE, LYRICS_OPEN, MOODS, SCORE_ASPECTS

_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}
_STOPWORDS = frozenset(
    re.findall(
        r"\S+",
        "that this with from have what when where they them your you're about just like been "
        "were will would could should there their then than into only over some ain't don't "
        "can't yeah still never every gonna wanna gotta know said come came make made back",
    )
)
_LYRICS = re.compile(re.escape(LYRICS_OPEN) + r"\n(.*)\n" + re.escape(LYRICS_CLOSE), re.DOTALL)
_TITLE = re.compile(r"^Title: (.*)$", re.MULTILINE)


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    status: int  # what the server answered; RESET when it dropped the connection
    time: float  # time.monotonic() when the request arrived
    authorized: bool  # whether an Authorization header came (its value is not recorded)
    model: str | None = None
    fault: str | None = None
    response_format: dict[str, Any] | None = None
    messages: int = 0
    title: str | None = None
    lyrics: str | None = None  # between the prompt's markers, as received
    lines: int = 0
    line_breaks_intact: bool | None = None  # real "\n" line breaks, no escaped or <br> ones
    prompt_tokens: int = 0  # reported in the answer's usage (0 when there was none)
    completion_tokens: int = 0
    max_tokens: int | None = None  # max_tokens or max_completion_tokens as asked
    finish_reason: str | None = None


@dataclass(frozen=True)
class Fault:
    kind: str
    retry_after: float | str | None = None
    status: int | None = None
    seconds: float = 0.0


@dataclass
class _Scripted:
    match: str | None
    fault: Fault


@dataclass
class _Faults:
    queued: list[_Scripted] = field(default_factory=list)
    always: Fault | None = None


class FakeOpenAI(LocalHTTPServer):
    """An OpenAI-compatible chat server on localhost, with scripted faults."""

    INVALID_JSON = "invalid_json"
    SCHEMA_INVALID = "schema_invalid"
    REFUSAL = "refusal"
    REFUSAL_TEXT = "refusal_text"
    CONTENT_FILTER = "content_filter"
    TRUNCATED = "truncated"
    FENCED = "fenced"
    RATE_LIMIT = "rate_limit"
    QUOTA = "quota"
    SERVER_ERROR = "server_error"
    SLOW = "slow"
    RESET = "reset"
    RESET_STATUS = -1  # the status recorded for RESET

    def __init__(
        self,
        api_key: str = "sk-test-key",
        models: tuple[str, ...] = ("fake-analyst",),
        delay_s: float = 0.0,
        host: str = "127.0.0.1",
        *,
        json_schema: str = "honours",
        json_object: str = "honours",
        prompt_schema: str = "follows",
        min_max_tokens: int = 0,
    ):
        self.api_key = api_key
        self.models = models
        self.delay_s = delay_s
        self.json_schema = json_schema
        self.json_object = json_object
        self.prompt_schema = prompt_schema
        self.min_max_tokens = min_max_tokens
        super().__init__(host)
        self._faults = _Faults()
        self._requests: list[RecordedRequest] = []
        self._lock = threading.RLock()
        self._in_flight = 0
        self.max_in_flight = 0

    # -- lifecycle -----------------------------------------------------------------------
    name = "fake-openai"

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        return type("Handler", (_Handler,), {"fake": self})

    @property
    def base_url(self) -> str:
        """What the client takes as ``base_url`` (with the ``/v1`` prefix)."""
        return f"http://{self.host}:{self.port}/v1"

    @property
    def model(self) -> str:
        return self.models[0]

    # -- faults --------------------------------------------------------------------------
    def fail(
        self,
        *kinds: str,
        match: str | None = None,
        retry_after: float | str | None = None,
        status: int | None = None,
        seconds: float = 0.0,
    ) -> None:
        """The next chat requests (only those whose prompt contains ``match``, if given) get
        these faults, one each, in order; then normal answers again."""
        with self._lock:
            self._faults.queued.extend(
                _Scripted(match, Fault(kind, retry_after, status, seconds)) for kind in kinds
            )

    def fail_always(
        self,
        kind: str,
        *,
        retry_after: float | str | None = None,
        status: int | None = None,
        seconds: float = 0.0,
    ) -> None:
        with self._lock:
            self._faults.always = Fault(kind, retry_after, status, seconds)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults = _Faults()

    def _take_fault(self, prompt: str) -> Fault | None:
        with self._lock:
            for index, scripted in enumerate(self._faults.queued):
                if scripted.match is None or scripted.match in prompt:
                    return self._faults.queued.pop(index).fault
            return self._faults.always

    # -- request log ---------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def count(self, status: int | None = None) -> int:
        """Chat requests received (with this status, if given)."""
        return sum(1 for r in self.chat_requests if status is None or r.status == status)

    def forget_requests(self) -> None:
        with self._lock:
            self._requests.clear()
            self.max_in_flight = 0

    def usage_totals(self) -> tuple[int, int]:
        """(prompt, completion) tokens reported in all answers so far."""
        requests = self.chat_requests
        return (
            sum(r.prompt_tokens for r in requests),
            sum(r.completion_tokens for r in requests),
        )

    def received_lyrics(self) -> list[str]:
        return [r.lyrics for r in self.chat_requests if r.lyrics is not None]

    def lyrics_arrived_intact(self, expected: str) -> bool:
        """Whether some request carried exactly these lyrics, every line break included."""
        return expected in self.received_lyrics()

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _enter(self) -> None:
        with self._lock:
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    # -- answers -------------------------------------------------------------------------
    def analysis_for(self, title: str, lyrics: str) -> dict[str, Any]:
        """The valid analysis this server answers for a song (deterministic)."""
        words = [w for w in re.findall(r"[a-z']{4,}", lyrics.lower()) if w not in _STOPWORDS]
        frequent = sorted(Counter(words).items(), key=lambda item: (-item[1], item[0]))
        themes = [word[:40] for word, _ in frequent[:3]] or ["untitled"]
        lines = [line for line in lyrics.split("\n") if line.strip()]
        checksum = zlib.crc32(lyrics.encode())
        techniques = ["wordplay"]
        if len(set(lines)) < len(lines):
            techniques.append("repetition")
        if " like " in f" {lyrics.lower()} ":
            techniques.append("simile")
        if len(lines) > 40:
            techniques.append("storytelling")
        scores = {
            aspect: {
                "score": 1 + zlib.crc32(f"{aspect}:{lyrics}".encode()) % 10,
                "rationale": f"Judged on {len(lines)} lines and {len(words)} content words.",
            }
            for aspect in SCORE_ASPECTS
        }
        summary = f"{title!r} circles around {', '.join(themes)} over {len(lines)} lines."
        return {
            "themes": themes,
            "mood": MOODS[checksum % len(MOODS)],
            "techniques": techniques,
            "scores": scores,
            "summary": summary[:300],
        }

    def chat(
        self, document: Any, authorization: str | None
    ) -> tuple[int, dict[str, str], bytes, RecordedRequest, float]:
        """(status, headers, body, record, extra delay) of one chat request, faults applied."""
        status, headers, body, record, fault = self._chat(document, authorization)
        extra = (fault.seconds or 5.0) if fault is not None and fault.kind == self.SLOW else 0.0
        return status, headers, body, record, extra

    def _chat(
        self, document: Any, authorization: str | None
    ) -> tuple[int, dict[str, str], bytes, RecordedRequest, Fault | None]:
        record = RecordedRequest(
            "POST", "/v1/chat/completions", 0, time.monotonic(), bool(authorization)
        )
        if authorization != f"Bearer {self.api_key}":
            given = (authorization or "").removeprefix("Bearer ")
            return _error(
                401,
                f"Incorrect API key provided: {given}. You can find your API key in your "
                "account settings.",
                "invalid_request_error",
                "invalid_api_key",
            ) + (record, None)
        if not isinstance(document, dict) or not isinstance(document.get("messages"), list):
            return _error(400, "'messages' is required", "invalid_request_error") + (record, None)
        model = document.get("model")
        record = _replace(
            record,
            model=model,
            response_format=document.get("response_format"),
            messages=len(document["messages"]),
        )
        if model not in self.models:
            return _error(
                404,
                f"The model `{model}` does not exist or you do not have access to it.",
                "invalid_request_error",
                "model_not_found",
            ) + (record, None)
        contents = [str(m.get("content") or "") for m in document["messages"]]
        prompt = "\n".join(contents)
        first_user = next(
            (str(m.get("content") or "") for m in document["messages"] if m.get("role") == "user"),
            "",
        )
        found = _LYRICS.search(first_user)
        lyrics = found.group(1) if found else None
        title_found = _TITLE.search(first_user)
        title = title_found.group(1) if title_found else ""
        if lyrics is not None:
            intact = "\n" in lyrics and "\\n" not in lyrics and "<br" not in lyrics.lower()
            record = _replace(
                record,
                title=title,
                lyrics=lyrics,
                lines=lyrics.count("\n") + 1,
                line_breaks_intact=intact,
            )
        fault = self._take_fault(prompt)
        record = _replace(record, fault=fault.kind if fault else None)
        prompt_tokens = math.ceil(len(prompt) / 4)

        if fault is not None and fault.kind == self.RESET:
            return self.RESET_STATUS, {}, b"", _replace(record, status=self.RESET_STATUS), fault
        if fault is not None and fault.kind == self.RATE_LIMIT:
            headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
            status, base, body = _error(
                429, "Rate limit reached for requests. Please try again later.", "requests"
            )
            return status, {**base, **headers}, body, record, fault
        if fault is not None and fault.kind == self.QUOTA:
            return _error(
                429,
                "You exceeded your current quota, please check your plan and billing details.",
                "insufficient_quota",
                "insufficient_quota",
            ) + (record, fault)
        if fault is not None and fault.kind == self.SERVER_ERROR:
            return _error(
                fault.status or 500,
                f"The server had an error while processing your request "
                f"(debug: authorization={authorization})",
                "server_error",
            ) + (record, fault)

        response_format = document.get("response_format") or {"type": "text"}
        refused_format = self._refuse_response_format(response_format)
        if refused_format is not None:
            return refused_format + (record, fault)
        constrained = response_format.get("type") == "json_schema" and self.json_schema == "honours"
        analysis = self.analysis_for(title, lyrics if lyrics is not None else first_user)
        if not constrained and self.prompt_schema == "ignores":
            analysis = own_shape(analysis)
        elif not constrained and self.prompt_schema == "near_miss":
            analysis = near_miss_shape(analysis)
        valid = json.dumps(analysis)
        message: dict[str, Any] = {"role": "assistant", "content": valid, "refusal": None}
        finish_reason = "stop"
        kind = fault.kind if fault is not None else None
        max_tokens = document.get("max_completion_tokens") or document.get("max_tokens")
        if self.min_max_tokens and (max_tokens or 0) < self.min_max_tokens and kind is None:
            kind = self.TRUNCATED
        if kind == self.INVALID_JSON:
            message["content"] = "Sure! Here is the analysis: {themes: [" + analysis["themes"][0]
        elif kind == self.SCHEMA_INVALID:
            broken = {**analysis, "mood": "ecstatic-ish"}
            broken.pop("summary")
            broken["scores"] = {**analysis["scores"], "lyricism": {"score": 42}}
            message["content"] = json.dumps(broken)
        elif kind == self.REFUSAL:
            message["content"] = None
            message["refusal"] = "I'm sorry, I can't help with analysing these lyrics."
        elif kind == self.REFUSAL_TEXT:
            message["content"] = "I'm sorry, but I can't assist with analyzing these lyrics."
        elif kind == self.CONTENT_FILTER:
            message["content"] = ""
            finish_reason = "content_filter"
        elif kind == self.TRUNCATED:
            message["content"] = valid[: len(valid) // 2]
            finish_reason = "length"
        elif kind == self.FENCED:
            message["content"] = f"<think>Let me read it.</think>\n```json\n{valid}\n```"
        completion_tokens = math.ceil(len(message["content"] or message["refusal"] or "") / 4)
        answer = {
            "id": f"chatcmpl-{zlib.crc32(prompt.encode()):08x}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": finish_reason,
                    "logprobs": None,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        record = _replace(
            record,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            max_tokens=max_tokens,
            finish_reason=finish_reason,
        )
        return _json(200, answer) + (record, fault)

    def _refuse_response_format(
        self, response_format: Any
    ) -> tuple[int, dict[str, str], bytes] | None:
        """The 400 a server answers for a ``response_format`` it does not take, else None."""
        kind = response_format.get("type") if isinstance(response_format, dict) else None
        if kind == "json_schema" and self.json_schema == "rejects":
            return _error(
                400,
                "Invalid parameter: 'response_format' of type 'json_schema' is not supported "
                "with this model.",
                "invalid_request_error",
                param="response_format",
            )
        if kind == "json_object" and self.json_object == "rejects":
            return _error(
                400,
                "Invalid parameter: 'response_format' of type 'json_object' is not supported "
                "with this model.",
                "invalid_request_error",
                param="response_format",
            )
        if kind == "json_schema" and self.json_schema == "honours":
            spec = response_format.get("json_schema") or {}
            name = spec.get("name")
            if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
                return _error(
                    400,
                    "Invalid 'response_format.json_schema.name': string does not match pattern.",
                    "invalid_request_error",
                    param="response_format.json_schema.name",
                )
            if spec.get("strict"):
                problem = strict_schema_problem(spec.get("schema"))
                if problem is not None:
                    return _error(
                        400,
                        f"Invalid schema for response_format '{name}': {problem}",
                        "invalid_request_error",
                        param="response_format",
                    )
        return None

    def models_list(self, authorization: str | None) -> tuple[int, dict[str, str], bytes]:
        if authorization != f"Bearer {self.api_key}":
            return _error(401, "Incorrect API key provided.", "invalid_request_error")
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in self.models]
        return _json(200, {"object": "list", "data": data})


# -- HTTP ------------------------------------------------------------------------------------
def _replace(record: RecordedRequest, **changes: Any) -> RecordedRequest:
    return dataclasses.replace(record, **changes)


def _json(status: int, document: Any) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps(document).encode()


def _error(
    status: int, message: str, type_: str, code: str | None = None, param: str | None = None
) -> tuple[int, dict[str, str], bytes]:
    return _json(
        status, {"error": {"message": message, "type": type_, "param": param, "code": code}}
    )


# Keywords OpenAI's strict mode refuses (its "Supported schemas" list); the others pass.
_UNSUPPORTED_IN_STRICT = ("patternProperties", "unevaluatedProperties", "propertyNames")


def strict_schema_problem(schema: Any, context: tuple[str, ...] = ()) -> str | None:
    """Why OpenAI's strict structured outputs would refuse this schema, or None: every object
    lists all its properties as required and sets ``additionalProperties: false``."""
    if not isinstance(schema, dict):
        return None
    where = f"In context={context}, "
    for keyword in _UNSUPPORTED_IN_STRICT:
        if keyword in schema:
            return f"{where}'{keyword}' is not permitted."
    if schema.get("type") == "object" or "properties" in schema:
        properties = schema.get("properties") or {}
        if schema.get("additionalProperties") is not False:
            return f"{where}'additionalProperties' is required to be supplied and to be false."
        missing = sorted(set(properties) - set(schema.get("required") or []))
        if missing:
            return (
                f"{where}'required' is required to be supplied and to be an array including "
                f"every key in properties. Missing '{missing[0]}'."
            )
    children: list[tuple[tuple[str, ...], Any]] = []
    for key in ("properties", "$defs", "definitions"):
        children += [((*context, key, name), sub) for name, sub in (schema.get(key) or {}).items()]
    for key in ("items", "not"):
        if isinstance(schema.get(key), dict):
            children.append(((*context, key), schema[key]))
    for key in ("anyOf", "allOf", "oneOf"):
        children += [((*context, key, str(i)), sub) for i, sub in enumerate(schema.get(key) or [])]
    for child_context, child in children:
        problem = strict_schema_problem(child, child_context)
        if problem is not None:
            return problem
    return None


def own_shape(analysis: dict[str, Any]) -> dict[str, Any]:
    """The same judgement in a model's own shape, as a model that ignores the schema in the
    prompt answers under ``json_object``: nothing in it maps to the schema unambiguously."""
    return {
        "song_analysis": {
            "main_topics": analysis["themes"],
            "vibe": "chill but reflective",
            "devices": analysis["techniques"],
            "ratings": {
                "writing": analysis["scores"]["lyricism"]["score"],
                "creativity": analysis["scores"]["originality"]["score"],
            },
            "overview": analysis["summary"],
        }
    }


def near_miss_shape(analysis: dict[str, Any]) -> dict[str, Any]:
    """The right content in a near-miss shape that a tolerant reader can map: synonym field
    names, scores as "n/10" strings, a mood outside the list."""
    scores = analysis["scores"]
    return {
        "themes": analysis["themes"],
        "mood": "bittersweet",
        "techniques": analysis["techniques"],
        "scores": {
            "lyricism_score": {
                "score": f"{scores['lyricism']['score']}/10",
                "rationale": scores["lyricism"]["rationale"],
            },
            "originality": {
                "score": str(scores["originality"]["score"]),
                "rationale": scores["originality"]["rationale"],
            },
            "storytelling": scores["storytelling"],
            "flow": scores["flow_on_paper"],
        },
        "summary": analysis["summary"],
    }


class _Handler(BaseHTTPRequestHandler):
    fake: FakeOpenAI
    protocol_version = "HTTP/1.1"
    timeout = 10
    server_version = "FakeOpenAI/1.0"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        arrived = time.monotonic()
        authorization = self.headers.get("Authorization")
        path = self.path.split("?", 1)[0]
        if path.rstrip("/") == "/v1/models":
            status, headers, body = self.fake.models_list(authorization)
        else:
            status, headers, body = _error(404, f"Unknown path {path}", "invalid_request_error")
        self.fake._record(RecordedRequest("GET", path, status, arrived, bool(authorization)))
        self._send(status, headers, body)

    def do_POST(self) -> None:
        arrived = time.monotonic()
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        authorization = self.headers.get("Authorization")
        path = self.path.split("?", 1)[0]
        if path.rstrip("/") != "/v1/chat/completions":
            status, headers, body = _error(404, f"Unknown path {path}", "invalid_request_error")
            self.fake._record(RecordedRequest("POST", path, status, arrived, bool(authorization)))
            self._send(status, headers, body)
            return
        self.fake._enter()
        try:
            try:
                document = json.loads(raw or b"null")
            except json.JSONDecodeError:
                document = None
            status, headers, body, record, extra_delay = self.fake.chat(document, authorization)
            record = _replace(record, status=status, time=arrived)
            # recorded before the delay and the answer, so a client that got its answer (or
            # gave up waiting) sees the record
            self.fake._record(record)
            delay = self.fake.delay_s + extra_delay
            if delay:
                time.sleep(delay)
        finally:
            self.fake._leave()
        if status == FakeOpenAI.RESET_STATUS:
            self.close_connection = True
            return
        self._send(status, headers, body)

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status, _REASONS.get(status))
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
