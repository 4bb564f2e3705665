"""Provider clients, retries and limits over real HTTP against the mock model server (no patching)."""

from __future__ import annotations

import asyncio
import json
import logging
import pickle
import random
import socket
import time
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import pytest

from mockmodel import FaultRates, MockServerConfig, MockServerThread
from mockmodel.behaviours import TEXTS
from providers import (
    AdaptiveConcurrencyLimiter,
    CallOutcome,
    CallResult,
    ChatRequest,
    EndpointCaller,
    EndpointConfig,
    MissingApiKeyError,
    OutcomeKind,
    RateLimiter,
    RetryPolicy,
    Usage,
    api_key_read,
    collect_many,
    cost_for_endpoint,
    cost_of_usage,
    provider_build,
    retry_after_parse,
    run_bounded,
)
from providers.openai_chat import openai_error_classify, openai_success_parse

KEY_ENV = "MEDHARM_KEY_TEST_PROVIDER"
KEY = "sk-medharm-distinctive-4f1c9e7a2b6d8035"
ALL_TEXTS = {text for variants in TEXTS.values() for text in variants}


@pytest.fixture
def mock_server() -> Iterator[Any]:
    """``mock_server(**config)`` -> a running ``MockServerThread`` (5 ms latency unless told)."""
    servers: list[MockServerThread] = []

    def start(**options: Any) -> MockServerThread:
        rate_names = set(FaultRates.__dataclass_fields__)
        rates = FaultRates(**{name: options.pop(name) for name in list(options) if name in rate_names})
        options.setdefault("latency_ms", 5.0)
        server = MockServerThread(MockServerConfig(rates=rates, **options))
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def openai_endpoint(server: MockServerThread, **options: Any) -> EndpointConfig:
    options.setdefault("max_concurrency", 8)
    options.setdefault("timeout_s", 5.0)
    options.setdefault("model", "mock-model")
    return EndpointConfig(kind="openai_chat", base_url=server.openai_base_url, **options)


def anthropic_endpoint(server: MockServerThread, **options: Any) -> EndpointConfig:
    options.setdefault("timeout_s", 5.0)
    return EndpointConfig(kind="anthropic_messages", base_url=server.base_url, model="mock-claude", **options)


def collect(
    endpoint: EndpointConfig,
    requests: list[ChatRequest],
    policy: RetryPolicy | None = None,
    client: str = "aiohttp",
) -> tuple[list[CallResult], EndpointCaller]:
    results: list[CallResult] = []

    async def run() -> EndpointCaller:
        async with provider_build(endpoint, client=client) as provider:  # type: ignore[arg-type]
            caller = EndpointCaller(provider, policy=policy or RetryPolicy(max_attempts=3, base_delay=0.01))
            await collect_many(caller, requests, on_result=results.append)
            return caller

    caller = asyncio.run(run())
    return results, caller


def one(
    endpoint: EndpointConfig, prompt: str, policy: RetryPolicy | None = None, **params: Any
) -> CallResult:
    results, _ = collect(endpoint, [ChatRequest.from_prompt(prompt, **params)], policy)
    assert len(results) == 1
    return results[0]


def gap_s(earlier: CallOutcome, later: CallOutcome) -> float:
    """Seconds between the end of one attempt and the start of the next."""
    return later.started_at - (earlier.started_at + earlier.latency_ms / 1000)


# -- OpenAI-compatible provider over HTTP ---------------------------------------------------------


def test_ok_reply_records_request_reply_usage_and_latency(mock_server: Any) -> None:
    server = mock_server(latency_ms=30)
    endpoint = openai_endpoint(server, default_params={"temperature": 0.7, "max_tokens": 300})
    result = one(endpoint, "Question shape 1 about medicine storage", temperature=0.0, seed=11)

    outcome = result.outcome
    assert (outcome.kind, result.succeeded, result.terminal_reason) == (OutcomeKind.OK, True, None)
    assert outcome.text in ALL_TEXTS
    assert outcome.finish_reason == "stop"
    assert outcome.model == "mock-model-mock-1"
    assert outcome.http_status == 200
    assert outcome.raw is not None
    assert outcome.raw["choices"][0]["message"]["content"] == outcome.text
    assert outcome.usage.input_tokens == outcome.raw["usage"]["prompt_tokens"] > 0
    assert outcome.usage.output_tokens == outcome.raw["usage"]["completion_tokens"] == len(outcome.text) // 4
    assert 30 <= outcome.latency_ms < 2000
    # The exact request: endpoint defaults overridden by the request's own parameters.
    assert outcome.request == {
        "url": server.openai_base_url + "/chat/completions",
        "body": {
            "model": "mock-model",
            "messages": [{"role": "user", "content": "Question shape 1 about medicine storage"}],
            "temperature": 0.0,
            "max_tokens": 300,
            "seed": 11,
        },
    }
    assert len(result.attempts) == 1
    assert server.stats()["by_outcome"] == {"ok": 1}


def test_same_prompt_same_model_gives_the_same_answer(mock_server: Any) -> None:
    server = mock_server()
    endpoint = openai_endpoint(server)
    prompts = [f"Question shape {n}" for n in range(12)]
    first, _ = collect(endpoint, [ChatRequest.from_prompt(p, item_id=p) for p in prompts])
    second, _ = collect(endpoint, [ChatRequest.from_prompt(p, item_id=p) for p in prompts])
    texts = {r.item_id: r.outcome.text for r in first}
    assert texts == {r.item_id: r.outcome.text for r in second}
    assert len(set(texts.values())) > 1  # the behaviours vary across prompts


def test_429_then_success_waits_the_retry_after(mock_server: Any) -> None:
    prompt = "Question shape rate limited once"
    server = mock_server(script={prompt: ["429", "ok"]}, retry_after_s=1.0)
    results, caller = collect(
        openai_endpoint(server),
        [ChatRequest.from_prompt(prompt)],
        RetryPolicy(max_attempts=3, base_delay=0.01),
    )
    result = results[0]

    assert [a.kind for a in result.attempts] == [OutcomeKind.RATE_LIMITED, OutcomeKind.OK]
    first, second = result.attempts
    assert (first.http_status, first.retry_after_s) == (429, 1.0)
    assert "rate_limit_exceeded" in (first.error or "")
    assert json.loads(first.error_body or "{}")["error"]["code"] == "rate_limit_exceeded"
    # Honoured: at least the server's 1 s. The upper bound only rules out a second wait (a doubled
    # delay or a backoff on top); jitter is 10%, the rest is slack for a loaded CI machine.
    assert 1.0 <= gap_s(first, second) < 2.0
    assert result.succeeded
    assert caller.limiter.decreases == 1
    assert server.stats()["by_outcome"] == {"rate_limited": 1, "ok": 1}


def test_500s_back_off_exponentially_then_end_with_a_reason(mock_server: Any) -> None:
    prompt = "Question shape always failing"
    server = mock_server(script={prompt: ["500"] * 10})
    policy = RetryPolicy(max_attempts=4, base_delay=0.1, max_delay=10, jitter=False)
    result = one(openai_endpoint(server), prompt, policy)

    assert [a.kind for a in result.attempts] == [OutcomeKind.SERVER_ERROR] * 4
    gaps = [gap_s(a, b) for a, b in zip(result.attempts, result.attempts[1:], strict=False)]
    for gap, expected in zip(gaps, [0.1, 0.2, 0.4], strict=True):
        assert expected <= gap < expected + 0.15
    assert not result.succeeded
    assert result.terminal_reason is not None
    assert result.terminal_reason.startswith("server_error: gave up after 4 attempts: HTTP 500")
    assert server.stats()["requests"] == 4


def test_500s_then_success_is_collected(mock_server: Any) -> None:
    prompt = "Question shape flaky"
    server = mock_server(script={prompt: ["500", "500", "ok"]})
    result = one(openai_endpoint(server), prompt, RetryPolicy(max_attempts=5, base_delay=0.01))
    assert [a.kind for a in result.attempts] == [
        OutcomeKind.SERVER_ERROR,
        OutcomeKind.SERVER_ERROR,
        OutcomeKind.OK,
    ]
    assert result.succeeded
    assert result.outcome.text in ALL_TEXTS


def test_a_hanging_server_times_out_and_the_retry_succeeds(mock_server: Any) -> None:
    prompt = "Question shape slow"
    server = mock_server(script={prompt: ["timeout", "ok"]}, hang_s=30)
    result = one(openai_endpoint(server, timeout_s=0.3), prompt, RetryPolicy(max_attempts=3, base_delay=0.01))

    first, second = result.attempts
    assert first.kind == OutcomeKind.TIMEOUT
    assert first.http_status is None
    assert 300 <= first.latency_ms < 1500
    assert second.kind == OutcomeKind.OK
    assert result.succeeded


def test_timeouts_until_attempts_run_out_end_with_a_reason(mock_server: Any) -> None:
    prompt = "Question shape never answers"
    server = mock_server(script={prompt: ["timeout"] * 5}, hang_s=30)
    result = one(openai_endpoint(server, timeout_s=0.2), prompt, RetryPolicy(max_attempts=2, base_delay=0.01))

    assert [a.kind for a in result.attempts] == [OutcomeKind.TIMEOUT, OutcomeKind.TIMEOUT]
    assert result.terminal_reason is not None
    assert result.terminal_reason.startswith("timeout: gave up after 2 attempts")
    # The client hung up, so the server dropped the hanging handlers instead of holding them.
    deadline = time.monotonic() + 3
    while server.stats()["in_flight"] and time.monotonic() < deadline:
        time.sleep(0.05)
    stats = server.stats()
    assert (stats["in_flight"], stats["by_outcome"]["timeout"]) == (0, 2)


def test_content_filter_http_400_is_recorded_and_not_retried(mock_server: Any) -> None:
    server = mock_server(rate_content_filter=1.0, content_filter_style="http")
    requests = [ChatRequest.from_prompt(f"Question shape {n}", item_id=n) for n in range(5)]
    results, _ = collect(openai_endpoint(server), requests, RetryPolicy(max_attempts=5, base_delay=0.01))

    assert len(results) == 5
    for result in results:
        assert result.kind == OutcomeKind.CONTENT_FILTER
        assert result.succeeded  # recorded as its own outcome, not an error
        assert len(result.attempts) == 1
        assert result.outcome.text == ""
        assert result.outcome.http_status == 400
        assert "content management policy" in (result.outcome.error_body or "")
    assert server.stats()["requests"] == 5
    assert server.stats()["by_outcome"] == {"content_filter_http": 5}


def test_content_filter_finish_reason_is_recorded_without_text(mock_server: Any) -> None:
    server = mock_server(rate_content_filter=1.0, content_filter_style="finish")
    result = one(openai_endpoint(server), "Question shape filtered", RetryPolicy(max_attempts=5))
    assert (result.kind, result.outcome.finish_reason, result.outcome.http_status) == (
        OutcomeKind.CONTENT_FILTER,
        "content_filter",
        200,
    )
    assert result.outcome.text == ""
    assert len(result.attempts) == 1
    assert server.stats()["requests"] == 1


def test_empty_reply_is_recorded_as_empty(mock_server: Any) -> None:
    server = mock_server(rate_empty=1.0)
    result = one(openai_endpoint(server), "Question shape empty", RetryPolicy(max_attempts=5))
    assert (result.kind, result.outcome.text, result.succeeded) == (OutcomeKind.EMPTY, "", True)
    assert result.outcome.usage.output_tokens == 0
    assert server.stats()["requests"] == 1


def test_client_error_is_terminal_at_once(mock_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "sk-a-wrong-key-for-this-server")
    server = mock_server(require_api_key=KEY)
    result = one(openai_endpoint(server, api_key_env=KEY_ENV), "Question shape", RetryPolicy(max_attempts=5))
    assert (result.kind, result.outcome.http_status) == (OutcomeKind.CLIENT_ERROR, 401)
    assert result.terminal_reason is not None
    assert result.terminal_reason.startswith("client_error: not retried: HTTP 401 invalid_api_key")
    assert server.stats()["requests"] == 1


def test_connection_refused_is_retried_then_terminal() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint = EndpointConfig(
        kind="openai_chat", base_url=f"http://127.0.0.1:{port}/v1", model="m", timeout_s=2
    )
    result = one(endpoint, "Question shape", RetryPolicy(max_attempts=3, base_delay=0.01))
    assert [a.kind for a in result.attempts] == [OutcomeKind.CONNECTION_ERROR] * 3
    assert result.terminal_reason is not None
    assert result.terminal_reason.startswith("connection_error: gave up after 3 attempts")


def test_thirty_percent_faults_every_item_ends_collected_or_with_a_reason(mock_server: Any) -> None:
    server = mock_server(rate_429=0.1, rate_500=0.1, rate_timeout=0.1, retry_after_s=0.02, hang_s=30)
    endpoint = openai_endpoint(server, max_concurrency=32, timeout_s=0.25)
    requests = [ChatRequest.from_prompt(f"Question shape {n}", item_id=n) for n in range(300)]
    results, _ = collect(endpoint, requests, RetryPolicy(max_attempts=6, base_delay=0.01, max_delay=0.1))

    assert sorted(r.item_id for r in results) == list(range(300))  # each once, none lost
    for result in results:
        if result.succeeded:
            assert (result.kind, result.terminal_reason) == (OutcomeKind.OK, None)
            assert result.outcome.text in ALL_TEXTS
        else:
            assert result.kind in {OutcomeKind.RATE_LIMITED, OutcomeKind.SERVER_ERROR, OutcomeKind.TIMEOUT}
            assert len(result.attempts) == 6
            assert "gave up after 6 attempts" in (result.terminal_reason or "")
    stats = server.stats()
    assert sum(len(r.attempts) for r in results) == stats["requests"]
    faults = {name: stats["by_outcome"].get(name, 0) for name in ("rate_limited", "server_error", "timeout")}
    assert all(count > 0 for count in faults.values())
    assert 0.2 < sum(faults.values()) / stats["requests"] < 0.4
    assert sum(r.succeeded for r in results) >= 295  # 0.3**6: a terminal failure is rare


# -- the API key ----------------------------------------------------------------------------------


def test_api_key_never_appears_in_outcomes_reprs_errors_or_logs(
    mock_server: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in (
        "aiohttp",
        "aiohttp.client",
        "httpx",
        "httpcore",
        "httpx2",
        "httpcore2",
        "openai",
        "evaluations",
    ):
        logging.getLogger(name).setLevel(logging.DEBUG)
    monkeypatch.setenv(KEY_ENV, KEY)
    monkeypatch.setenv("MEDHARM_KEY_TEST_WRONG", KEY + "-wrong")
    script = {
        "shape 429": ["429", "ok"],
        "shape 500": ["500", "ok"],
        "shape filter": ["content_filter_http"],
        "shape hang": ["timeout", "ok"],
    }
    server = mock_server(require_api_key=KEY, script=script, retry_after_s=0.01, hang_s=30)
    policy = RetryPolicy(max_attempts=3, base_delay=0.01)
    requests = [ChatRequest.from_prompt(prompt, item_id=prompt) for prompt in [*script, "shape ok"]]
    seen: list[str] = []
    for client in ("aiohttp", "openai_sdk"):
        # A model name per client, so the scripted faults replay for each (attempts count per model).
        endpoint = openai_endpoint(server, api_key_env=KEY_ENV, timeout_s=0.3, model=f"mock-{client}")
        results, caller = collect(endpoint, requests, policy, client=client)
        assert {r.item_id: r.kind for r in results} == {
            "shape 429": OutcomeKind.OK,
            "shape 500": OutcomeKind.OK,
            "shape filter": OutcomeKind.CONTENT_FILTER,
            "shape hang": OutcomeKind.OK,
            "shape ok": OutcomeKind.OK,
        }  # the key was sent: the server accepted every request
        seen += [
            repr(results),
            json.dumps([r.to_dict() for r in results]),
            repr(caller.provider),
            repr(endpoint),
        ]
    # A server that echoes the key it received (as OpenAI's 401 does) is scrubbed too.
    wrong = EndpointConfig(
        kind="openai_chat", base_url=server.openai_base_url, model="m", api_key_env="MEDHARM_KEY_TEST_WRONG"
    )
    echoed = one(wrong, "shape ok")
    assert echoed.outcome.http_status == 401
    assert "[API KEY REDACTED]" in (echoed.outcome.error_body or "")
    seen.append(json.dumps(echoed.to_dict()))
    anthropic = one(anthropic_endpoint(server, api_key_env=KEY_ENV), "shape 500")
    assert anthropic.kind == OutcomeKind.OK
    seen.append(json.dumps(anthropic.to_dict()))
    with pytest.raises(MissingApiKeyError) as missing:
        api_key_read("MEDHARM_KEY_TEST_UNSET_VARIABLE")
    seen += [str(missing.value), repr(api_key_read(KEY_ENV)), str(api_key_read(KEY_ENV))]
    with pytest.raises(TypeError):
        pickle.dumps(api_key_read(KEY_ENV))

    assert caplog.records  # the loggers did log: the check below is not vacuous
    assert any(record.name.startswith("providers") for record in caplog.records)
    seen.append(caplog.text)
    seen += [str(record.__dict__) for record in caplog.records]
    for text in seen:
        assert KEY not in text
        assert KEY[10:30] not in text  # nor a slice of it


def test_missing_key_variable_fails_before_any_request_naming_only_the_variable() -> None:
    endpoint = EndpointConfig(
        kind="openai_chat", base_url="http://127.0.0.1:9/v1", model="m", api_key_env="MEDHARM_KEY_NOT_SET"
    )
    with pytest.raises(MissingApiKeyError, match=r"^environment variable MEDHARM_KEY_NOT_SET is not set$"):
        provider_build(endpoint)


def test_credentials_cannot_be_passed_as_extra_headers() -> None:
    with pytest.raises(ValueError, match="may not carry credentials"):
        EndpointConfig(
            kind="openai_chat", base_url="http://x/v1", model="m", extra_headers={"Authorization": "k"}
        )


# -- Anthropic Messages ---------------------------------------------------------------------------


def test_anthropic_provider_builds_a_messages_request_and_parses_the_reply(
    mock_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    server = mock_server(require_api_key=KEY)
    request = ChatRequest.from_prompt(
        "Question shape 2", system="You are careful.", seed=3, stop="END", temperature=0.2
    )
    results, _ = collect(anthropic_endpoint(server, api_key_env=KEY_ENV), [request])
    outcome = results[0].outcome

    assert (outcome.kind, outcome.finish_reason, outcome.http_status) == (OutcomeKind.OK, "end_turn", 200)
    assert outcome.text in ALL_TEXTS
    assert outcome.model == "mock-claude-mock-1"
    assert outcome.usage == Usage(
        input_tokens=outcome.raw["usage"]["input_tokens"],  # type: ignore[index]
        output_tokens=len(outcome.text) // 4,
    )
    assert outcome.request == {
        "url": server.base_url + "/v1/messages",
        "body": {
            "model": "mock-claude",
            "messages": [{"role": "user", "content": "Question shape 2"}],
            "temperature": 0.2,
            "stop_sequences": ["END"],
            "max_tokens": 1024,
            "system": "You are careful.",
        },
        "unsupported_params": ["seed"],
    }


@pytest.mark.parametrize(
    ("script", "kinds", "finish_reason", "status"),
    [
        (["429", "ok"], [OutcomeKind.RATE_LIMITED, OutcomeKind.OK], "end_turn", 200),
        (["500", "ok"], [OutcomeKind.SERVER_ERROR, OutcomeKind.OK], "end_turn", 200),
        (["content_filter_finish"], [OutcomeKind.CONTENT_FILTER], "refusal", 200),
        (["content_filter_http"], [OutcomeKind.CONTENT_FILTER], None, 400),
        (["empty"], [OutcomeKind.EMPTY], "end_turn", 200),
    ],
)
def test_anthropic_outcomes(
    mock_server: Any, script: list[str], kinds: list[OutcomeKind], finish_reason: str | None, status: int
) -> None:
    server = mock_server(script={"shape": script}, retry_after_s=0.01)
    result = one(anthropic_endpoint(server), "shape", RetryPolicy(max_attempts=3, base_delay=0.01))
    assert [a.kind for a in result.attempts] == kinds
    assert (result.outcome.finish_reason, result.outcome.http_status) == (finish_reason, status)
    if kinds[0] == OutcomeKind.SERVER_ERROR:
        assert result.attempts[0].http_status == 529  # Anthropic's "overloaded"
    assert server.stats()["requests"] == len(kinds)


# -- the openai SDK path ---------------------------------------------------------------------------


def test_sdk_provider_maps_the_same_outcomes(mock_server: Any) -> None:
    script = {
        "shape 429": ["429", "ok"],
        "shape filter": ["content_filter_http"],
        "shape hang": ["timeout"] * 3,
        "shape finish": ["content_filter_finish"],
        "shape empty": ["empty"],
    }
    server = mock_server(script=script, retry_after_s=0.05, hang_s=30)
    requests = [ChatRequest.from_prompt(prompt, item_id=prompt) for prompt in script]
    results, _ = collect(
        openai_endpoint(server, timeout_s=0.3),
        requests,
        RetryPolicy(max_attempts=2, base_delay=0.01),
        client="openai_sdk",
    )
    by_prompt = {r.item_id: r for r in results}
    assert [a.kind for a in by_prompt["shape 429"].attempts] == [OutcomeKind.RATE_LIMITED, OutcomeKind.OK]
    assert by_prompt["shape 429"].attempts[0].retry_after_s == 0.05
    assert by_prompt["shape filter"].kind == OutcomeKind.CONTENT_FILTER
    assert by_prompt["shape finish"].kind == OutcomeKind.CONTENT_FILTER
    assert by_prompt["shape empty"].kind == OutcomeKind.EMPTY
    assert by_prompt["shape hang"].terminal_reason is not None
    assert by_prompt["shape hang"].terminal_reason.startswith("timeout: gave up after 2 attempts")


# -- pure pieces: classification, retry policy, limits, cost ---------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (429, {"error": {"code": "rate_limit_exceeded"}}, OutcomeKind.RATE_LIMITED),
        (429, {"error": {"code": "insufficient_quota"}}, OutcomeKind.CLIENT_ERROR),
        (400, {"error": {"code": "content_policy_violation", "message": "x"}}, OutcomeKind.CONTENT_FILTER),
        (
            400,
            {"error": {"code": None, "message": "filtered by the content management policy"}},
            OutcomeKind.CONTENT_FILTER,
        ),
        (
            400,
            {"error": {"code": "x", "innererror": {"code": "ResponsibleAIPolicyViolation"}}},
            OutcomeKind.CONTENT_FILTER,
        ),
        (
            400,
            {"error": {"code": "context_length_exceeded", "message": "too long"}},
            OutcomeKind.CLIENT_ERROR,
        ),
        (404, None, OutcomeKind.CLIENT_ERROR),
        (408, None, OutcomeKind.TIMEOUT),
        (502, None, OutcomeKind.SERVER_ERROR),
        (529, {"type": "error", "error": {"type": "overloaded_error"}}, OutcomeKind.SERVER_ERROR),
    ],
)
def test_openai_error_classification(status: int, body: Any, kind: OutcomeKind) -> None:
    assert openai_error_classify(status, body) == kind


def test_success_parse_treats_a_model_refusal_field_as_an_answer_and_no_choices_as_an_error() -> None:
    refusal = {
        "choices": [{"message": {"content": None, "refusal": "I can't help."}, "finish_reason": "stop"}]
    }
    assert openai_success_parse(refusal)["kind"] == OutcomeKind.OK
    assert openai_success_parse(refusal)["text"] == "I can't help."
    assert openai_success_parse({"choices": []})["kind"] == OutcomeKind.SERVER_ERROR
    whitespace = {"choices": [{"message": {"content": "  \n"}, "finish_reason": "stop"}]}
    assert openai_success_parse(whitespace)["kind"] == OutcomeKind.EMPTY


def test_retry_after_parse_reads_milliseconds_seconds_and_dates() -> None:
    assert retry_after_parse({"retry-after-ms": "250", "retry-after": "1"}) == 0.25
    assert retry_after_parse({"retry-after": "3"}) == 3.0
    assert retry_after_parse({"retry-after": "Wed, 21 Oct 2015 07:28:30 GMT"}, now=1445412500.0) == 10.0
    assert retry_after_parse({"retry-after": "soon"}) is None
    assert retry_after_parse({}) is None


def _outcome(kind: OutcomeKind, retry_after: float | None = None) -> CallOutcome:
    return CallOutcome(kind=kind, request={}, retry_after_s=retry_after, error="HTTP 500")


def test_retry_policy_delays() -> None:
    policy = RetryPolicy(max_attempts=5, base_delay=0.5, max_delay=3.0, jitter=False, max_retry_after=20)
    server_error = _outcome(OutcomeKind.SERVER_ERROR)
    assert [policy.delay_after(server_error, n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, None]
    assert policy.delay_after(_outcome(OutcomeKind.RATE_LIMITED, 7.0), 1) == 7.0
    assert policy.delay_after(_outcome(OutcomeKind.RATE_LIMITED, 900.0), 1) == 20  # capped
    assert policy.delay_after(_outcome(OutcomeKind.RATE_LIMITED), 2) == 1.0  # no header: backoff
    for kind in (OutcomeKind.CONTENT_FILTER, OutcomeKind.CLIENT_ERROR, OutcomeKind.EMPTY, OutcomeKind.OK):
        assert policy.delay_after(_outcome(kind), 1) is None

    jittered = RetryPolicy(max_attempts=10, base_delay=0.5, max_delay=3.0)
    rng = random.Random(4)
    delays = [jittered.delay_after(server_error, 4, rng) for _ in range(200)]
    assert all(0 <= d <= 3.0 for d in delays if d is not None)  # full jitter under min(max, 0.5 * 2**3)
    # Spread over the range, not a constant.
    assert max(d or 0 for d in delays) > 2.5
    assert min(d or 0 for d in delays) < 0.5


def test_terminal_reasons() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert policy.terminal_reason(_outcome(OutcomeKind.OK), 1) is None
    assert policy.terminal_reason(_outcome(OutcomeKind.CONTENT_FILTER), 1) is None
    assert policy.terminal_reason(_outcome(OutcomeKind.SERVER_ERROR), 3) == (
        "server_error: gave up after 3 attempts: HTTP 500"
    )


def test_aimd_limiter_halves_once_per_window_and_grows_by_one_per_window() -> None:
    async def scenario() -> list[int]:
        limiter = AdaptiveConcurrencyLimiter(8, min_concurrency=2)
        limits = [limiter.limit]
        tokens = [await limiter.acquire() for _ in range(8)]
        limiter.release(tokens[0], OutcomeKind.RATE_LIMITED)
        limits.append(limiter.limit)  # 8 -> 4
        limiter.release(tokens[1], OutcomeKind.RATE_LIMITED)
        limits.append(limiter.limit)  # same window: stays 4
        for token in tokens[2:]:
            limiter.release(token, OutcomeKind.SERVER_ERROR)  # neither success nor 429: no change
        limits.append(limiter.limit)
        for _ in range(4):  # one window of successes at limit 4 -> 5
            limiter.release(await limiter.acquire(), OutcomeKind.OK)
        limits.append(limiter.limit)
        for _ in range(3):  # each new window's 429 halves, down to the floor
            limiter.release(await limiter.acquire(), OutcomeKind.RATE_LIMITED)
            limits.append(limiter.limit)
        for _ in range(200):
            limiter.release(await limiter.acquire(), OutcomeKind.OK)
        limits.append(limiter.limit)  # grows back, capped at the maximum
        return limits

    assert asyncio.run(scenario()) == [8, 4, 4, 4, 5, 2, 2, 2, 8]


def test_limiter_bounds_calls_in_flight() -> None:
    async def scenario() -> tuple[int, int]:
        limiter = AdaptiveConcurrencyLimiter(3)
        running = peak = 0

        async def call() -> None:
            nonlocal running, peak
            token = await limiter.acquire()
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.005)
            running -= 1
            limiter.release(token, OutcomeKind.OK)

        await asyncio.gather(*(call() for _ in range(30)))
        return peak, limiter.in_flight

    assert asyncio.run(scenario()) == (3, 0)


def test_rate_limiter_spaces_requests_and_settles_tokens() -> None:
    now = [0.0]
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(round(seconds, 6))
        now[0] += seconds

    async def scenario() -> float:
        limiter = RateLimiter(
            requests_per_minute=60, tokens_per_minute=600, clock=lambda: now[0], sleep=fake_sleep
        )
        for _ in range(10):  # the request bucket holds ten seconds' worth: 10
            await limiter.acquire(1)
        assert slept == []
        await limiter.acquire(1)  # the 11th waits one request's refill: 1 s
        assert slept == [1.0]
        limiter.settle(estimated_tokens=1, actual_tokens=41)  # 40 more tokens than estimated
        assert limiter.tokens is not None
        return limiter.tokens.tokens

    # 600/min -> bucket of 100; 11 taken, 1 s refilled 10, then 40 more: 100 - 11 + 10 - 40.
    assert asyncio.run(scenario()) == pytest.approx(59.0)


def test_cost_from_prices_per_million() -> None:
    usage = Usage(input_tokens=1_000, output_tokens=500)
    assert cost_of_usage(
        usage, price_input_per_million=Decimal("2.50"), price_output_per_million=Decimal("10")
    ) == (Decimal("0.00750000"))
    assert cost_of_usage(usage, price_input_per_million=None, price_output_per_million=None) is None
    endpoint = EndpointConfig(
        kind="openai_chat",
        base_url="http://x/v1",
        model="m",
        price_input_per_million=Decimal("0.15"),
        price_output_per_million=Decimal("0.60"),
    )
    assert cost_for_endpoint(Usage(input_tokens=123, output_tokens=77), endpoint) == Decimal("0.00006465")


# -- collect_many's contract -----------------------------------------------------------------------


def test_collect_many_takes_async_iterables_and_async_callbacks(mock_server: Any) -> None:
    server = mock_server()
    written: list[int] = []

    async def requests() -> AsyncIterator[ChatRequest]:
        for n in range(20):
            yield ChatRequest.from_prompt(f"Question shape {n}", item_id=n)

    async def write(result: CallResult) -> None:
        await asyncio.sleep(0)
        written.append(result.item_id)

    async def run() -> Any:
        async with provider_build(openai_endpoint(server)) as provider:
            return await collect_many(provider, requests(), on_result=write, concurrency=4)

    summary = asyncio.run(run())
    assert sorted(written) == list(range(20))
    assert (summary.items, summary.succeeded, summary.failed, summary.attempts) == (20, 20, 0, 20)
    assert summary.limiter is not None
    assert summary.limiter.peak_in_flight == 4


def test_a_shared_pool_caps_calls_in_flight_across_endpoints(mock_server: Any) -> None:
    server = mock_server(latency_ms=20)
    items = [(f"mock-{n % 2}", ChatRequest.from_prompt(f"Question shape {n}", item_id=n)) for n in range(40)]
    done: list[int] = []

    async def run() -> tuple[int, int]:
        pool = asyncio.Semaphore(5)
        callers = {
            model: EndpointCaller(
                provider_build(openai_endpoint(server, model=model, max_concurrency=4)), pool=pool
            )
            for model in ("mock-0", "mock-1")
        }

        async def work(item: tuple[str, ChatRequest]) -> CallResult:
            return await callers[item[0]].call(item[1])

        await run_bounded(items, work, max_pending=20, on_result=lambda r: done.append(r.item_id))
        for caller in callers.values():
            await caller.provider.aclose()
        return callers["mock-0"].limiter.peak_in_flight, callers["mock-1"].limiter.peak_in_flight

    # Each endpoint may have 4 in flight, but together they never exceed the pool's 5.
    assert asyncio.run(run()) == (4, 4)
    assert sorted(done) == list(range(40))
    assert server.stats()["max_in_flight"] == 5


def test_collect_many_stops_when_asked_and_propagates_callback_errors(mock_server: Any) -> None:
    server = mock_server()
    requests = [ChatRequest.from_prompt(f"Question shape {n}", item_id=n) for n in range(50)]
    done: list[int] = []

    async def run_until_five() -> Any:
        async with provider_build(openai_endpoint(server, max_concurrency=1)) as provider:
            return await collect_many(
                provider,
                requests,
                on_result=lambda r: done.append(r.item_id),
                max_pending=1,
                should_stop=lambda: len(done) >= 5,
            )

    summary = asyncio.run(run_until_five())
    assert (summary.stopped, summary.items, done) == (True, 5, [0, 1, 2, 3, 4])

    def failing_write(result: CallResult) -> None:
        raise RuntimeError("database is down")

    async def run_failing() -> Any:
        async with provider_build(openai_endpoint(server)) as provider:
            return await collect_many(provider, requests, on_result=failing_write)

    with pytest.raises(RuntimeError, match="database is down"):
        asyncio.run(run_failing())
