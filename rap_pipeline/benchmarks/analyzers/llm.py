"""The LLM analyzer against a local OpenAI-compatible server with a fixed delay, at a concurrency
and at 1."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler
from typing import Any

import dagster as dg
from rich.progress import Progress

from rap_pipeline.benchmarks.analyzers.partitions import (
    GOAL_RATIO,
    delete_results,
    materialize_partitions,
)
from rap_pipeline.benchmarks.setup import Row, ratio
from rap_pipeline.core.local_http import LocalHTTPServer
from rap_pipeline.core.resources import DatabaseResource, RedisResource
from rap_pipeline.defs.analyses.analyzer import TrackText
from rap_pipeline.defs.analyses.assets import (
    llm_analysis,
)
from rap_pipeline.defs.analyses.llm import SCORE_ASPECTS, LyricsAnalysis
from rap_pipeline.defs.analyses.resources import LLMResource

ANSWER = {
    "themes": ["ambition", "loyalty", "street life"],
    "mood": "defiant",
    "techniques": ["wordplay", "internal rhyme", "metaphor"],
    "scores": {
        aspect: {"score": 6, "rationale": "A fixed benchmark answer, the same for every song."}
        for aspect in SCORE_ASPECTS
    },
    "summary": "A fixed benchmark answer: valid against the schema, identical for every song.",
}


class BenchmarkLLMServer(LocalHTTPServer):
    """An OpenAI-compatible ``POST /v1/chat/completions`` on 127.0.0.1 that answers ``ANSWER``
    after ``delay_s``, with usage of about one token per four characters; counts requests and
    the most it was answering at once."""

    name = "benchmark-llm"

    def __init__(self, delay_s: float) -> None:
        super().__init__()
        LyricsAnalysis.model_validate(ANSWER)  # the answer must pass the analyzer's validation
        self.delay_s = delay_s
        self.lock = threading.Lock()
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0

    def reset(self) -> None:
        with self.lock:
            self.requests = self.max_in_flight = 0

    @property
    def api_base(self) -> str:
        return f"{self.base_url}/v1"

    def _answer(self, body: bytes) -> dict:
        with self.lock:
            self.requests += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            messages = json.loads(body or b"{}").get("messages") or []
            prompt = sum(len(str(m.get("content", ""))) for m in messages) // 4
            time.sleep(self.delay_s)
        finally:
            with self.lock:
                self.in_flight -= 1
        content = json.dumps(ANSWER)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": "benchmark",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": len(content) // 4,
                "total_tokens": prompt + len(content) // 4,
            },
        }

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real servers do
            # without it, the answer's body waits for the client's delayed ACK of the
            # headers: about 40 ms more per request, which is the server's, not the asset's
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                else:
                    self._send(200, server._answer(body))

            def _send(self, status: int, document: dict) -> None:
                payload = json.dumps(document).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        return Handler


def bench_llm(
    instance: dg.DagsterInstance,
    url: str,
    redis_url: str,
    slug: str,
    delay_s: float,
    concurrency: int,
    progress: Progress,
) -> list[Row]:
    rows: list[Row] = []
    database = DatabaseResource(url=url)
    with BenchmarkLLMServer(delay_s) as server:
        for run_concurrency in dict.fromkeys((concurrency, 1)):
            delete_results(url, "llm", [slug])
            server.reset()
            llm = LLMResource(
                base_url=server.api_base,
                api_key="benchmark",
                model="benchmark",
                concurrency=run_concurrency,
                requests_per_s=1000,
                redis=RedisResource(url=redis_url, namespace=f"benchmark-{uuid.uuid4().hex}"),
            )
            # the server's response format is settled once per server (a week in Redis): an
            # untimed request on a song of no partition settles it, as on every run but the
            # first against a server, then the log starts afresh
            settle = llm.build()
            settle.analyze([TrackText(0, "warm-up", "a line\nanother line", "warm-up")])
            settle.close()
            server.reset()
            task = progress.add_task(f"LLM: asset, concurrency {run_concurrency}", total=1)
            timing = materialize_partitions(
                instance,
                llm_analysis,
                [slug],
                {"database": database, "llm": llm},
                lambda task=task: progress.advance(task),
            )
            ideal = run_concurrency / delay_s
            what = f"LLM, concurrency {run_concurrency}"
            failed = f", {timing.failed} FAILED" if timing.failed else ""
            rows += [
                (
                    f"{what}: ideal",
                    f"concurrency / delay = {run_concurrency} / {delay_s:g} s",
                    f"{ideal:.2f} tracks/s",
                ),
                (
                    f"{what}: asset step",
                    f"{timing.results} tracks in {timing.analyze_s:.2f} s{failed}",
                    f"{timing.step_rate:.2f} tracks/s",
                ),
                (
                    f"{what}: asset end to end",
                    f"1 run, {timing.wall_s:.2f} s",
                    f"{timing.wall_rate:.2f} tracks/s",
                ),
                (
                    f"{what}: asset / ideal",
                    f"step {ratio(timing.step_rate, ideal)}, "
                    f"end to end {ratio(timing.wall_rate, ideal)}",
                    GOAL_RATIO,
                ),
                (
                    f"{what}: server saw",
                    f"{server.requests} requests, at most {server.max_in_flight} at once",
                    f"configured {run_concurrency}",
                ),
            ]
    return rows
