"""The LLM analyzer through the real ``openai`` client against a local OpenAI-compatible server,
with the cache and rate limit on the session's real Redis."""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Iterator

import pytest

from rap_pipeline.core.api_guard import ApiGuard
from rap_pipeline.core.services import ServiceURLs, free_port
from rap_pipeline.defs.analyses.analyzer import TrackText
from rap_pipeline.defs.analyses.llm import (
    MOODS,
    PROMPT_VERSION,
    SCORE_ASPECTS,
    LLMAnalyzer,
    LyricsAnalysis,
    llm_policy,
    parse_answer,
    prompt_fingerprint,
    strict_schema,
)
from rap_pipeline.defs.analyses.llm.errors import InvalidAnswer
from rap_pipeline_tests.fakes.openai_server import FakeOpenAI

KEY = "sk-test-SECRET-7f3a9c21e4b8"
VERSE = (
    "[Verse 1]\n"
    "Harbor lights flicker like a promise that I made\n"
    "Concrete dreams and the harbor never fade\n"
    "\n"
    "[Hook]\n"
    "Harbor lights, harbor lights\n"
    "Harbor lights, harbor lights"
)


def track(track_id: int, title: str = "Harbor Lights", lyrics: str = VERSE) -> TrackText:
    return TrackText(track_id, title, lyrics, hashlib.sha256(lyrics.encode()).hexdigest())


def new_guard(redis_url: str | None) -> ApiGuard:
    return ApiGuard(redis_url, llm_policy(1000.0, burst=50), namespace=uuid.uuid4().hex)


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=KEY) as fake:
        yield fake


def analyzer(server: FakeOpenAI, **options) -> LLMAnalyzer:
    defaults = {
        "concurrency": 1,
        "timeout_s": 5.0,
        "max_attempts": 3,
        "backoff_initial_s": 0.01,
        "backoff_max_s": 0.05,
    }
    api_key = options.pop("api_key", KEY)
    return LLMAnalyzer(server.base_url, api_key, server.model, **{**defaults, **options})


def expected_values(server: FakeOpenAI, t: TrackText) -> dict:
    return LyricsAnalysis.model_validate(server.analysis_for(t.title, t.lyrics)).values()


def test_info_names_the_prompt_version_the_model_and_the_score_ranges(server: FakeOpenAI):
    info = analyzer(server).info
    assert (info.name, info.version, info.method) == ("llm", PROMPT_VERSION, "openai:fake-analyst")
    assert set(info.ranges) == set(SCORE_ASPECTS)
    assert all((r.low, r.high) == (1, 10) for r in info.ranges.values())


def test_the_prompt_is_pinned_to_its_version():
    # Changed the prompt, the schema or its validation? Bump PROMPT_VERSION, then update this.
    assert (PROMPT_VERSION, prompt_fingerprint()) == ("llm-v2", "3ed5bc0568d485c2")


def test_a_valid_answer_is_parsed_and_validated(server: FakeOpenAI):
    t = track(1)
    [result] = analyzer(server).analyze([t])
    assert result.status == "ok", result.error
    assert result.values == expected_values(server, t)
    values = result.values
    assert values["mood"] in MOODS and 1 <= len(values["themes"]) <= 5
    assert all(1 <= values[aspect] <= 10 for aspect in SCORE_ASPECTS)
    assert set(values["rationales"]) == set(SCORE_ASPECTS) and len(values["summary"]) <= 300
    [request] = server.chat_requests
    assert request.authorized and request.model == "fake-analyst"
    # structured outputs first: the strict schema the server holds the model to
    assert request.response_format == {
        "type": "json_schema",
        "json_schema": {"name": "lyrics_analysis", "schema": strict_schema(), "strict": True},
    }
    assert request.messages == 2 and request.title == "Harbor Lights"
    assert result.usage is not None and result.usage["cached"] is False


def test_fenced_and_thinking_answers_are_still_read(server: FakeOpenAI):
    server.fail(FakeOpenAI.FENCED)
    [result] = analyzer(server).analyze([track(1)])
    assert result.status == "ok" and server.count() == 1


def test_invalid_json_is_re_asked_with_the_error_then_accepted(server: FakeOpenAI):
    server.fail(FakeOpenAI.INVALID_JSON)
    llm = analyzer(server)
    [result] = llm.analyze([track(1)])
    assert result.status == "ok", result.error
    first, second = server.chat_requests
    assert (first.fault, second.fault) == (FakeOpenAI.INVALID_JSON, None)
    assert second.messages == 4  # the bad answer and what was wrong with it, fed back
    assert llm.run_totals()["retries"] == 1


def test_a_truncated_answer_is_retried(server: FakeOpenAI):
    server.fail(FakeOpenAI.TRUNCATED)
    [result] = analyzer(server).analyze([track(1)])
    assert result.status == "ok" and server.count() == 2


def test_an_answer_never_matching_the_schema_fails_and_is_not_cached(
    server: FakeOpenAI, embedded: ServiceURLs
):
    guard = new_guard(embedded.redis_url)
    server.fail_always(FakeOpenAI.SCHEMA_INVALID)
    llm = analyzer(server, max_attempts=3, guard=guard)
    [result] = llm.analyze([track(1)])
    assert result.status == "failed" and result.values is None
    # an invalid answer is re-asked once (with the error), not until the attempts run out
    assert "after 2 attempt(s)" in result.error and "does not match the schema" in result.error
    assert "scores.lyricism" in result.error and result.error_class == "invalid_answer"
    assert server.count() == 2
    # nothing was cached: once the server behaves, the track is really asked again
    server.clear_faults()
    [again] = llm.analyze([track(1)])
    assert again.status == "ok" and again.usage["cached"] is False and server.count() == 3


@pytest.mark.parametrize(
    "kind", [FakeOpenAI.REFUSAL, FakeOpenAI.REFUSAL_TEXT, FakeOpenAI.CONTENT_FILTER]
)
def test_a_refusal_fails_the_track_without_retrying(
    server: FakeOpenAI, embedded: ServiceURLs, kind: str
):
    server.fail(kind)
    llm = analyzer(server, guard=new_guard(embedded.redis_url))
    [result] = llm.analyze([track(1)])
    assert result.status == "failed" and result.values is None
    assert result.error.startswith("refused: ")
    assert server.count() == 1
    assert llm.run_totals()["refused"] == 1
    [again] = llm.analyze([track(1)])  # not cached either
    assert again.status == "ok" and server.count() == 2


@pytest.mark.parametrize("with_guard", [True, False])
def test_a_429_waits_for_retry_after_then_succeeds(
    server: FakeOpenAI, embedded: ServiceURLs, with_guard: bool
):
    guard = new_guard(embedded.redis_url) if with_guard else None
    server.fail(FakeOpenAI.RATE_LIMIT, retry_after=1)
    llm = analyzer(server, guard=guard)
    started = time.monotonic()
    [result] = llm.analyze([track(1)])
    elapsed = time.monotonic() - started
    assert result.status == "ok", result.error
    assert elapsed >= 1.0
    first, second = server.chat_requests
    assert first.status == 429 and second.time - first.time >= 1.0
    assert llm.run_totals()["rate_limited"] == 1
    if guard is not None:
        assert guard.counters()["rate_limited"] == 1  # everyone paused


def test_a_500_then_ok_succeeds(server: FakeOpenAI):
    server.fail(FakeOpenAI.SERVER_ERROR)
    [result] = analyzer(server).analyze([track(1)])
    assert result.status == "ok" and [r.status for r in server.chat_requests] == [500, 200]


def test_a_dropped_connection_is_retried(server: FakeOpenAI):
    server.fail(FakeOpenAI.RESET)
    [result] = analyzer(server).analyze([track(1)])
    assert result.status == "ok" and server.count() == 2


def test_a_timeout_is_retried(server: FakeOpenAI):
    server.fail(FakeOpenAI.SLOW, seconds=4.0)
    started = time.monotonic()
    [result] = analyzer(server, timeout_s=1.0).analyze([track(1)])
    assert result.status == "ok", result.error
    assert [r.fault for r in server.chat_requests] == [FakeOpenAI.SLOW, None]
    assert time.monotonic() - started < 4.0  # gave up before the slow answer came


def test_timeouts_every_time_fail_the_track(server: FakeOpenAI):
    server.fail_always(FakeOpenAI.SLOW, seconds=1.0)
    [result] = analyzer(server, timeout_s=0.2, max_attempts=2).analyze([track(1)])
    assert result.status == "failed"
    assert "did not answer in time after 2 attempt(s)" in result.error


def test_a_wrong_key_fails_without_retrying_and_never_shows_the_key(server: FakeOpenAI):
    wrong = "sk-wrong-SECRET-0123456789abcdef"
    [result] = analyzer(server, api_key=wrong).analyze([track(1)])
    assert result.status == "failed"
    assert "HTTP 401" in result.error and "not retried" in result.error
    assert server.count() == 1  # the server saw exactly one request
    assert wrong not in result.error and "SECRET" not in result.error


def test_an_exhausted_quota_fails_at_once(server: FakeOpenAI):
    server.fail(FakeOpenAI.QUOTA)
    [result] = analyzer(server).analyze([track(1)])
    assert result.status == "failed" and "HTTP 429" in result.error and "quota" in result.error
    assert server.count() == 1


def test_an_unknown_model_fails_at_once(server: FakeOpenAI):
    llm = LLMAnalyzer(server.base_url, KEY, "no-such-model", backoff_initial_s=0.01)
    [result] = llm.analyze([track(1)])
    assert result.status == "failed" and "HTTP 404" in result.error
    assert "no-such-model" in result.error and server.count() == 1


def test_the_api_key_never_appears_in_errors_or_logs(
    server: FakeOpenAI, caplog: pytest.LogCaptureFixture
):
    server.fail_always(FakeOpenAI.SERVER_ERROR)  # its body echoes the Authorization header
    with caplog.at_level(logging.DEBUG):
        [result] = analyzer(server, max_attempts=2).analyze([track(1)])
    assert result.status == "failed" and "HTTP 500" in result.error
    assert "after 2 attempt(s)" in result.error
    assert KEY not in result.error and "SECRET" not in result.error
    assert "***" in result.error  # it was there, and was removed
    assert caplog.records and all(KEY not in r.getMessage() for r in caplog.records)
    assert KEY not in repr(analyzer(server))


def test_an_unreachable_server_fails_with_a_clear_message():
    llm = LLMAnalyzer(
        f"http://127.0.0.1:{free_port()}/v1",
        KEY,
        "m",
        max_attempts=2,
        backoff_initial_s=0.01,
        backoff_max_s=0.02,
    )
    [result] = llm.analyze([track(1)])
    assert result.status == "failed" and "cannot reach the LLM server" in result.error
    assert KEY not in result.error


def test_a_second_analysis_of_the_same_track_is_a_cache_hit(
    server: FakeOpenAI, embedded: ServiceURLs
):
    guard = new_guard(embedded.redis_url)
    first = analyzer(server, guard=guard, price_input_per_mtok=1.0)
    [fresh] = first.analyze([track(1)])
    assert fresh.status == "ok" and fresh.usage["cost_usd"] > 0
    server.forget_requests()
    second = analyzer(server, guard=guard, price_input_per_mtok=1.0)  # another run, same Redis
    [hit] = second.analyze([track(1)])
    assert server.count() == 0 and server.requests == []  # zero HTTP requests
    assert hit.status == "ok" and hit.values == fresh.values
    assert hit.usage == {
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "cost_usd": 0.0,
        "calls": 0,
        "cached": True,
    }
    totals = second.run_totals()
    assert totals["cache_hits"] == 1 and totals["calls"] == 0 and totals["cost_usd"] == 0
    # other lyrics (another hash) or another model are not hits
    [other] = second.analyze([track(1, lyrics=VERSE + "\nOne more line")])
    assert other.usage["cached"] is False and server.count() == 1


@pytest.mark.parametrize("concurrency", [1, 4])
def test_concurrency_is_bounded_and_results_keep_input_order(
    embedded: ServiceURLs, concurrency: int
):
    with FakeOpenAI(api_key=KEY, delay_s=0.15) as server:
        tracks = [track(100 - i, f"Song {i}", f"{VERSE}\nverse number {i}") for i in range(8)]
        llm = analyzer(server, concurrency=concurrency, guard=new_guard(embedded.redis_url))
        results = llm.analyze(tracks)
    assert [r.track_id for r in results] == [t.track_id for t in tracks]
    assert all(r.status == "ok" for r in results)
    assert [r.values for r in results] == [expected_values(server, t) for t in tracks]
    assert server.max_in_flight <= concurrency
    if concurrency > 1:
        assert server.max_in_flight > 1  # calls overlapped (a time bound adds only noise)
    else:
        assert server.max_in_flight == 1


def test_the_whole_long_song_arrives_with_its_line_breaks(server: FakeOpenAI):
    lines = [
        f"line {n} keeps the harbor burning bright while the city sleeps tonight"
        for n in range(240)
    ]
    for n in range(0, 240, 12):
        lines[n] = ""  # blank lines between verses survive too
    lyrics = "[Intro]\n" + "\n".join(lines) + "\n[Outro]\nlast words at the very end"
    assert len(lyrics.split()) > 2_000
    [result] = analyzer(server).analyze([track(1, "Epic", lyrics)])
    assert result.status == "ok", result.error
    [request] = server.chat_requests
    assert server.lyrics_arrived_intact(lyrics)
    assert request.line_breaks_intact and request.lines == lyrics.count("\n") + 1
    assert request.lyrics.endswith("last words at the very end")


def test_token_usage_and_cost_are_summed(server: FakeOpenAI):
    server.fail(FakeOpenAI.INVALID_JSON, match="Song 1")  # its wasted attempt costs too
    server.fail(FakeOpenAI.REFUSAL, match="Song 2")  # a refusal costs its tokens
    tracks = [track(i, f"Song {i}", f"{VERSE}\nextra line {i}") for i in range(4)]
    llm = analyzer(server, concurrency=2, price_input_per_mtok=2.5, price_output_per_mtok=10.0)
    results = llm.analyze(tracks)
    assert [r.status for r in results] == ["ok", "ok", "failed", "ok"]
    prompt, completion = server.usage_totals()
    assert prompt > 0 and completion > 0
    totals = llm.run_totals()
    assert totals["calls"] == server.count() == 5
    assert (totals["prompt_tokens"], totals["completion_tokens"]) == (prompt, completion)
    expected_cost = (prompt * 2.5 + completion * 10.0) / 1_000_000
    assert totals["cost_usd"] == pytest.approx(expected_cost)
    assert sum(r.usage["cost_usd"] for r in results) == pytest.approx(expected_cost)
    assert sum(r.usage["prompt_tokens"] for r in results) == prompt
    assert results[1].usage["calls"] == 2
    assert (totals["tracks"], totals["ok"], totals["failed"], totals["refused"]) == (4, 3, 1, 1)


def test_parse_answer_normalizes_moods_and_techniques():
    class Message:
        refusal = None
        content = (
            '{"themes": ["Loyalty", "loyalty", "money"], "mood": " Defiant ",'
            ' "techniques": ["Multisyllabic-Rhymes", "puns", "vibes"],'
            ' "scores": {"lyricism": {"score": 7, "rationale": "Dense."},'
            ' "originality": {"score": 5, "rationale": "Familiar."},'
            ' "storytelling": {"score": 3, "rationale": "Loose."},'
            ' "flow_on_paper": {"score": 8, "rationale": "Tight."}},'
            ' "summary": "A song about loyalty and money."}'
        )

    analysis, repairs = parse_answer(Message(), "stop")
    assert analysis.themes == ["Loyalty", "money"] and analysis.mood == "defiant"
    assert analysis.techniques == ["multisyllabic rhyme", "wordplay"]
    assert repairs == []  # normalizing case and plurals is reading, not repairing


def test_without_redis_the_analyzer_goes_on_uncached(server: FakeOpenAI):
    guard = new_guard(f"redis://127.0.0.1:{free_port()}/0")
    llm = analyzer(server, guard=guard)
    assert [r.status for r in llm.analyze([track(1), track(1)])] == ["ok", "ok"]
    assert server.count() == 2 and llm.run_totals()["cache_hits"] == 0


# -- servers and models at their worst (issue 11) ---------------------------------------------
def tracks_of(count: int) -> list[TrackText]:
    return [track(i, f"Song {i}", f"{VERSE}\nand a last line for song {i}") for i in range(count)]


def test_a_model_ignoring_the_prompt_schema_is_held_to_it_by_json_schema(embedded: ServiceURLs):
    with FakeOpenAI(api_key=KEY, prompt_schema="ignores") as server:
        llm = analyzer(server, concurrency=2, guard=new_guard(embedded.redis_url))
        results = llm.analyze(tracks_of(4))
        assert [r.status for r in results] == ["ok"] * 4
        assert {r.response_format["type"] for r in server.chat_requests} == {"json_schema"}
        assert server.count() == 4 and llm.run_totals()["response_format"] == "json_schema"


def test_a_server_rejecting_json_schema_is_probed_once_then_remembered(embedded: ServiceURLs):
    guard = new_guard(embedded.redis_url)
    with FakeOpenAI(api_key=KEY, json_schema="rejects") as server:
        llm = analyzer(server, concurrency=3, guard=guard)
        assert [r.status for r in llm.analyze(tracks_of(5))] == ["ok"] * 5
        kinds = [(r.status, r.response_format["type"]) for r in server.chat_requests]
        assert kinds[0] == (400, "json_schema")  # the one probe
        assert kinds[1:] == [(200, "json_object")] * 5
        # another run (another process) asks with the remembered mode: no probe at all
        server.forget_requests()
        again = analyzer(server, guard=ApiGuard(embedded.redis_url, guard.policy, guard_ns(guard)))
        assert [r.status for r in again.analyze(tracks_of(7)[5:])] == ["ok"] * 2
        assert [r.response_format["type"] for r in server.chat_requests] == ["json_object"] * 2


def guard_ns(guard: ApiGuard) -> str:
    return guard.prefix.rsplit(":", 1)[0]


def test_a_server_taking_neither_json_mode_is_read_as_text():
    with FakeOpenAI(api_key=KEY, json_schema="rejects", json_object="rejects") as server:
        llm = analyzer(server)
        assert [r.status for r in llm.analyze(tracks_of(2))] == ["ok", "ok"]
        formats = [r.response_format for r in server.chat_requests]
        assert [f["type"] if f else "text" for f in formats] == [
            "json_schema",
            "json_object",
            "text",
            "text",
        ]


def test_a_server_ignoring_json_schema_silently_still_works():
    with FakeOpenAI(api_key=KEY, json_schema="ignores") as server:
        assert analyzer(server).analyze([track(1)])[0].status == "ok"


def test_a_forced_mode_is_never_probed():
    with FakeOpenAI(api_key=KEY) as server:
        llm = analyzer(server, response_format="json_object")
        assert llm.analyze([track(1)])[0].status == "ok"
        assert [r.response_format for r in server.chat_requests] == [{"type": "json_object"}]


def test_near_miss_answers_are_mapped_and_counted():
    with FakeOpenAI(api_key=KEY, json_schema="rejects", prompt_schema="near_miss") as server:
        llm = analyzer(server, concurrency=2)
        t = track(1)
        [result] = llm.analyze([t])
        assert result.status == "ok", result.error
        expected = server.analysis_for(t.title, t.lyrics)["scores"]
        assert result.values["lyricism"] == expected["lyricism"]["score"]  # from "n/10"
        assert result.values["flow_on_paper"] == expected["flow_on_paper"]["score"]  # "flow"
        assert (result.values["mood"], result.values["mood_raw"]) == ("other", "bittersweet")
        repairs = llm.run_totals()["repairs"]
        assert repairs == {
            "renamed lyricism_score": 1,
            "renamed flow": 1,
            "score from text": 2,
            "mood outside the list": 1,
        }
        assert llm.run_totals()["repaired"] == 1


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (
            '{"themes": ["x"], "mood": "dark", "summary": "A song about x and y.", "scores": {}}',
            "scores.lyricism",
        ),
        (
            '{"themes": ["x"], "mood": "dark", "summary": "A song about x and y.", "scores": '
            '{"lyricism": {"score": "11/10", "rationale": "Too good."}}}',
            "less than or equal",
        ),
        (
            '{"themes": ["x"], "mood": "dark", "summary": "A song about x and y.", "scores": '
            '{"lyricism": {"score": "8.5", "rationale": "Good."}}}',
            "valid integer",
        ),
        ("The song is great, 9/10.", "no complete JSON object"),
    ],
)
def test_answers_whose_meaning_does_not_survive_are_not_repaired(answer: str, problem: str):
    class Message:
        refusal = None
        content = answer

    with pytest.raises(InvalidAnswer, match=problem):
        parse_answer(Message(), "stop")


def test_a_cut_off_answer_is_asked_again_once_with_twice_the_limit():
    with FakeOpenAI(api_key=KEY, min_max_tokens=2_000) as server:
        [result] = analyzer(server, max_output_tokens=1_500).analyze([track(1)])
        assert result.status == "ok"
        assert [r.finish_reason for r in server.chat_requests] == ["length", "stop"]
        assert [r.max_tokens for r in server.chat_requests] == [1_500, 3_000]


def test_an_answer_cut_off_twice_is_a_truncated_failure():
    with FakeOpenAI(api_key=KEY, min_max_tokens=10**6) as server:
        [result] = analyzer(server).analyze([track(1)])
        assert result.status == "failed" and result.error_class == "truncated"
        assert server.count() == 2


def test_the_same_failure_for_the_first_answers_stops_the_run():
    with FakeOpenAI(api_key=KEY, json_schema="rejects", prompt_schema="ignores") as server:
        llm = analyzer(server, stop_after=3)  # one at a time: nothing else in flight
        results = llm.analyze(tracks_of(8))
        assert [r.status for r in results] == ["failed"] * 8
        classes = [r.error_class for r in results]
        assert classes.count("invalid_answer") == 3 and classes.count("stopped") == 5
        assert "RAP_LLM_RESPONSE_FORMAT=json_schema" in llm.stop_reason
        # the probe, then three tracks asked and re-asked once; nothing for the other five
        assert server.count() == 1 + 3 * 2
        assert llm.run_totals()["stopped"] == 5


def test_a_rejected_key_stops_the_run_at_the_first_answer():
    with FakeOpenAI(api_key=KEY) as server:
        llm = analyzer(server, api_key="sk-wrong-key-123456", concurrency=2)
        results = llm.analyze(tracks_of(4))
        assert server.count() == 1
        assert {r.error_class for r in results} == {"config"}  # due again once fixed
        assert "RAP_LLM_API_KEY" in llm.stop_reason and "sk-wrong" not in llm.stop_reason
