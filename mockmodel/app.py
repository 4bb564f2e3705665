"""The mock model server's aiohttp application: OpenAI chat completions, Anthropic Messages, stats.

Routes:
- ``POST /v1/chat/completions`` and ``GET /v1/models``: the OpenAI API shape.
- ``POST /v1/messages``: the Anthropic Messages shape (needs an ``anthropic-version`` header).
- ``GET /_mock/stats``: request counts by outcome, in-flight and peak in-flight requests.
- ``POST /_mock/reset``: zero the counters and forget attempt numbers.
- ``POST /_mock/script``: replace the script, a JSON object {last user message: [outcome, ...]}.

Every request waits ``latency_ms`` (plus up to ``latency_jitter_ms``) before answering, faults
included, except a timeout, which hangs ``hang_s`` (meant to exceed the client's timeout). When
``require_api_key`` is set, a request without that key gets a 401 whose body ECHOES the key it
received, on purpose: real servers echo (part of) bad keys, and tests use this to prove the client
scrubs keys from everything it records.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from mockmodel.behaviours import (
    FAULT_ALIASES,
    INJECTION,
    Fault,
    FaultRates,
    behaviour_choose,
    behaviour_text,
    content_text,
    fault_choose,
    guard_reply,
    guard_style,
    judge_reply,
    judge_style,
    last_user_message,
    request_fingerprint,
    token_count,
)


@dataclass
class MockServerConfig:
    host: str = "127.0.0.1"
    port: int = 0  # 0 = any free port
    latency_ms: float = 200.0
    latency_jitter_ms: float = 0.0
    rates: FaultRates = field(default_factory=FaultRates)
    retry_after_s: float = 1.0
    hang_s: float = 600.0
    guard: bool = False
    guard_unsafe_rate: float = 0.3
    seed: int = 0
    models: tuple[str, ...] = ("mock-model", "mock-medical-model", "mock-guard", "mock-shieldgemma")
    require_api_key: str | None = None
    script: dict[str, list[str]] = field(default_factory=dict)
    judge_lenient_model: str = "mock-medical-model"

    def to_argv(self) -> list[str]:
        """Command-line arguments that rebuild this config (for the subprocess runner)."""
        argv = [
            "--host", self.host, "--port", str(self.port),
            "--latency-ms", str(self.latency_ms), "--latency-jitter-ms", str(self.latency_jitter_ms),
            "--rate-429", str(self.rates.rate_429), "--rate-500", str(self.rates.rate_500),
            "--rate-timeout", str(self.rates.rate_timeout),
            "--rate-content-filter", str(self.rates.rate_content_filter),
            "--rate-empty", str(self.rates.rate_empty),
            "--content-filter-style", self.rates.content_filter_style,
            "--retry-after", str(self.retry_after_s), "--hang-seconds", str(self.hang_s),
            "--guard-unsafe-rate", str(self.guard_unsafe_rate), "--seed", str(self.seed),
            "--models", ",".join(self.models),
        ]  # fmt: skip
        if self.guard:
            argv.append("--guard")
        if self.script:
            argv += ["--script-json", json.dumps(self.script)]
        if self.judge_lenient_model != "mock-medical-model":
            argv += ["--judge-lenient-model", self.judge_lenient_model]
        if self.require_api_key:
            # Passed by environment, not argv: argv is visible to every user in `ps`.
            argv += ["--require-api-key-env", "MOCK_SERVER_REQUIRED_KEY"]
        return argv


class MockState:
    def __init__(self, config: MockServerConfig) -> None:
        self.config = config
        self.script = dict(config.script)
        self.attempts: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()
        self.paths: Counter[str] = Counter()
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        # (query, reply) -> the models this server gave that reply to that query (judge mode).
        self.served: dict[tuple[str, str], set[str]] = {}
        # Per model name: what a provider enforcing a per-model limit would see.
        self.model_in_flight: Counter[str] = Counter()
        self.model_max_in_flight: Counter[str] = Counter()
        self.model_requests: Counter[str] = Counter()

    def reset(self) -> None:
        self.attempts.clear()
        self.outcomes.clear()
        self.paths.clear()
        self.requests = 0
        self.max_in_flight = self.in_flight
        self.model_requests.clear()
        self.model_max_in_flight = Counter(+self.model_in_flight)

    def stats(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "by_outcome": dict(self.outcomes),
            "by_path": dict(self.paths),
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "distinct_requests": len(self.attempts),
            "requests_by_model": dict(self.model_requests),
            "max_in_flight_by_model": dict(self.model_max_in_flight),
        }


STATE = web.AppKey("state", MockState)


def _openai_error(
    status: int, message: str, error_type: str, code: str | None, headers: Mapping[str, str] | None = None
) -> web.Response:
    body = {"error": {"message": message, "type": error_type, "param": None, "code": code}}
    return web.json_response(body, status=status, headers=headers)


def _anthropic_error(
    status: int, message: str, error_type: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.json_response(
        {"type": "error", "error": {"type": error_type, "message": message}}, status=status, headers=headers
    )


def _retry_after_headers(seconds: float) -> dict[str, str]:
    whole = max(0, int(-(-seconds // 1)))  # Retry-After is whole seconds; round up so it is never early
    return {"retry-after": str(whole), "retry-after-ms": str(int(seconds * 1000))}


class Conversation:
    """A parsed, validated request, whichever API it came through."""

    def __init__(self, body: Mapping[str, Any], state: MockState) -> None:
        self.model = str(body["model"])
        self.messages: list[Mapping[str, Any]] = body["messages"]
        self.prompt = last_user_message(self.messages)
        self.request_seed = body.get("seed")
        max_tokens = body.get("max_tokens") or body.get("max_completion_tokens")
        self.max_tokens = int(max_tokens) if isinstance(max_tokens, int | float) and max_tokens > 0 else None
        config = state.config
        self.fingerprint = request_fingerprint(self.model, self.messages, config.seed, self.request_seed)
        state.attempts[self.fingerprint] += 1
        self.attempt = state.attempts[self.fingerprint]
        self.fault = fault_choose(self.fingerprint, self.attempt, config.rates, state.script.get(self.prompt))
        self.input_tokens = sum(token_count(content_text(m.get("content"))) + 4 for m in self.messages)
        style = guard_style(self.model, guard_everything=config.guard)
        judging = judge_style(self.model)
        if judging is not None:
            self.outcome_label = "judge"
            query_fenced = self.prompt.split("<query>", 1)[-1].split("</query>", 1)[0].strip()
            query = query_fenced.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
            response = self.prompt.split("<response>", 1)[-1].split("</response>", 1)[0].strip()
            response = response.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
            self.text = judge_reply(
                judging,
                self.prompt,
                seed=config.seed,
                request_seed=self.request_seed,
                served_by=frozenset(state.served.get((query, response), ())),
                lenient_model=config.judge_lenient_model,
            )
        elif style is not None:
            judged = content_text(self.messages[-1].get("content"))
            self.outcome_label = "guard"
            self.text = guard_reply(style, judged, seed=config.seed, unsafe_rate=config.guard_unsafe_rate)
        else:
            behaviour = behaviour_choose(
                self.prompt, seed=config.seed, model=self.model, request_seed=self.request_seed
            )
            self.outcome_label = "ok"
            self.text = behaviour_text(behaviour, self.prompt, seed=config.seed)
            if "injector" in self.model.lower():
                self.text += INJECTION
        self.truncated = False
        if self.max_tokens is not None and token_count(self.text) > self.max_tokens:
            self.text = self.text[: self.max_tokens * 4]
            self.truncated = True
        if judging is None and style is None:
            state.served.setdefault((self.prompt, self.text), set()).add(self.model)
        self.resolved_model = f"{self.model}-mock-1"
        self.reply_id = f"{self.fingerprint[:20]}{self.attempt:04d}"


def _valid_body(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "body must be a JSON object"
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model is required"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages must be a non-empty list"
    if not all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages):
        return "every message needs a role"
    return None


async def _wait(state: MockState) -> None:
    config = state.config
    jitter = config.latency_jitter_ms
    delay = config.latency_ms + (random.uniform(0, jitter) if jitter else 0)  # noqa: S311 - not security
    if delay > 0:
        await asyncio.sleep(delay / 1000)


def _tracked(handler: Any) -> Any:
    async def wrapper(request: web.Request) -> web.StreamResponse:
        state = request.app[STATE]
        state.requests += 1
        state.paths[request.path] += 1
        state.in_flight += 1
        state.max_in_flight = max(state.max_in_flight, state.in_flight)
        model = ""
        if request.method == "POST" and request.can_read_body:
            try:
                body = await request.json()  # aiohttp keeps the body: the handler reads it again
                model = str(body.get("model", "")) if isinstance(body, dict) else ""
            except ValueError:
                model = ""
        if model:
            state.model_requests[model] += 1
            state.model_in_flight[model] += 1
            state.model_max_in_flight[model] = max(
                state.model_max_in_flight[model], state.model_in_flight[model]
            )
        try:
            return await handler(request, state)
        finally:
            state.in_flight -= 1
            if model:
                state.model_in_flight[model] -= 1

    return wrapper


async def _read_body(request: web.Request) -> tuple[Any, str | None]:
    try:
        body = await request.json()
    except ValueError:
        return None, "body is not valid JSON"
    return body, _valid_body(body)


async def _fault_or_none(conversation: Conversation, state: MockState) -> str | None:
    """Sleep as the fault requires; the label of an early fault, or ``None`` to answer."""
    if conversation.fault == Fault.TIMEOUT:
        state.outcomes["timeout"] += 1
        await asyncio.sleep(state.config.hang_s)
        return "timeout"
    await _wait(state)
    return None


@_tracked
async def chat_completions(request: web.Request, state: MockState) -> web.StreamResponse:
    config = state.config
    if config.require_api_key is not None:
        received = request.headers.get("authorization", "").removeprefix("Bearer ")
        if received != config.require_api_key:
            state.outcomes["unauthorized"] += 1
            return _openai_error(
                401, f"Incorrect API key provided: {received}.", "invalid_request_error", "invalid_api_key"
            )
    body, problem = await _read_body(request)
    if problem:
        state.outcomes["invalid_request"] += 1
        return _openai_error(400, problem, "invalid_request_error", None)
    conversation = Conversation(body, state)
    if await _fault_or_none(conversation, state):
        return _openai_error(504, "timed out", "server_error", None)  # only reached when hang_s elapses
    fault = conversation.fault
    state.outcomes[fault if fault != Fault.NONE else conversation.outcome_label] += 1
    if fault == Fault.RATE_LIMITED:
        return _openai_error(
            429,
            "Rate limit reached for requests. Please try again later.",
            "requests",
            "rate_limit_exceeded",
            _retry_after_headers(config.retry_after_s),
        )
    if fault == Fault.SERVER_ERROR:
        return _openai_error(
            500, "The server had an error while processing your request.", "server_error", None
        )
    if fault == Fault.CONTENT_FILTER_HTTP:
        return _openai_error(
            400,
            "The response was filtered due to the prompt triggering the content management policy.",
            "invalid_request_error",
            "content_filter",
        )
    text, finish_reason = conversation.text, "length" if conversation.truncated else "stop"
    if fault == Fault.CONTENT_FILTER_FINISH:
        text, finish_reason = "", "content_filter"
    elif fault == Fault.EMPTY:
        text = ""
    output_tokens = token_count(text) if text else 0
    return web.json_response(
        {
            "id": f"chatcmpl-mock-{conversation.reply_id}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": conversation.resolved_model,
            "system_fingerprint": "fp_mock",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": conversation.input_tokens,
                "completion_tokens": output_tokens,
                "total_tokens": conversation.input_tokens + output_tokens,
            },
        }
    )


@_tracked
async def anthropic_messages(request: web.Request, state: MockState) -> web.StreamResponse:
    config = state.config
    if config.require_api_key is not None:
        received = request.headers.get("x-api-key", "")
        if received != config.require_api_key:
            state.outcomes["unauthorized"] += 1
            return _anthropic_error(401, f"invalid x-api-key: {received}", "authentication_error")
    if not request.headers.get("anthropic-version"):
        state.outcomes["invalid_request"] += 1
        return _anthropic_error(400, "anthropic-version header is required", "invalid_request_error")
    body, problem = await _read_body(request)
    if problem is None and not isinstance(body.get("max_tokens"), int):
        problem = "max_tokens: Field required"
    if problem is None and any(m.get("role") == "system" for m in body["messages"]):
        problem = "messages: roles must be user or assistant; use the top-level system field"
    if problem:
        state.outcomes["invalid_request"] += 1
        return _anthropic_error(400, problem, "invalid_request_error")
    conversation = Conversation(body, state)
    if await _fault_or_none(conversation, state):
        return _anthropic_error(504, "timed out", "api_error")
    fault = conversation.fault
    state.outcomes[fault if fault != Fault.NONE else conversation.outcome_label] += 1
    if fault == Fault.RATE_LIMITED:
        return _anthropic_error(
            429,
            "Number of requests has exceeded your rate limit.",
            "rate_limit_error",
            _retry_after_headers(config.retry_after_s),
        )
    if fault == Fault.SERVER_ERROR:
        return _anthropic_error(529, "Overloaded", "overloaded_error")
    if fault == Fault.CONTENT_FILTER_HTTP:
        return _anthropic_error(400, "Output blocked by content filtering policy", "invalid_request_error")
    text, stop_reason = conversation.text, "max_tokens" if conversation.truncated else "end_turn"
    if fault == Fault.CONTENT_FILTER_FINISH:
        text, stop_reason = "", "refusal"
    elif fault == Fault.EMPTY:
        text = ""
    return web.json_response(
        {
            "id": f"msg_mock_{conversation.reply_id}",
            "type": "message",
            "role": "assistant",
            "model": conversation.resolved_model,
            "content": [{"type": "text", "text": text}] if text else [],
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {
                "input_tokens": conversation.input_tokens,
                "output_tokens": token_count(text) if text else 0,
            },
        }
    )


async def models_list(request: web.Request) -> web.Response:
    models = request.app[STATE].config.models
    return web.json_response(
        {
            "object": "list",
            "data": [
                {"id": name, "object": "model", "created": 0, "owned_by": "medharm-mock"} for name in models
            ],
        }
    )


async def stats_get(request: web.Request) -> web.Response:
    return web.json_response(request.app[STATE].stats())


async def stats_reset(request: web.Request) -> web.Response:
    request.app[STATE].reset()
    return web.json_response({"reset": True})


async def script_set(request: web.Request) -> web.Response:
    try:
        script = await request.json()
    except ValueError:
        script = None
    try:
        request.app[STATE].script = script_validate(script)
    except ValueError as exc:
        return web.json_response({"error": str(exc)}, status=400)
    return web.json_response({"prompts": len(script)})


def script_validate(script: Any) -> dict[str, list[str]]:
    """{last user message: [outcome, ...]} with outcomes from ``FAULT_ALIASES``."""
    if not isinstance(script, dict) or not all(isinstance(v, list) for v in script.values()):
        raise ValueError("script must map prompts to lists of outcomes")
    unknown = {str(x) for v in script.values() for x in v} - set(FAULT_ALIASES)
    if unknown:
        raise ValueError(f"unknown outcomes {sorted(unknown)}; use {sorted(FAULT_ALIASES)}")
    return {str(k): [str(x) for x in v] for k, v in script.items()}


def app_build(config: MockServerConfig) -> web.Application:
    app = web.Application(client_max_size=8 * 1024 * 1024)
    config.script = script_validate(config.script)
    app[STATE] = MockState(config)
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/messages", anthropic_messages)
    app.router.add_get("/v1/models", models_list)
    app.router.add_get("/_mock/stats", stats_get)
    app.router.add_post("/_mock/reset", stats_reset)
    app.router.add_post("/_mock/script", script_set)
    return app
