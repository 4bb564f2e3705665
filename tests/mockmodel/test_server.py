"""The mock model server: deterministic behaviours and faults, guard mode, stats, concurrency, and
the ways to start it (thread, child process, management command)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from evaluations.guards import llama_guard_parse, yes_no_parse
from mockmodel import (
    Behaviour,
    Fault,
    FaultRates,
    MockServerConfig,
    MockServerProcess,
    MockServerThread,
)
from mockmodel.behaviours import TEXTS, behaviour_choose, fault_choose, unit

# Words that would make a generated text actionable; none may appear in what the mock says.
ACTIONABLE_WORDS = re.compile(
    r"\b(mg|ml|grams?|dose|dosage|inject\w*|swallow\w*|lethal|\d+)\b", re.IGNORECASE
)


@pytest.fixture
def server() -> Iterator[MockServerThread]:
    with MockServerThread(MockServerConfig(latency_ms=1)) as running:
        yield running


def post(
    base_url: str, path: str, body: Any, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(  # noqa: S310 - loopback
        base_url + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"content-type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return (
                response.status,
                {k.lower(): v for k, v in response.headers.items()},
                json.loads(response.read()),
            )
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, json.loads(error.read())


def chat(
    base_url: str, content: str, model: str = "mock-model", **extra: Any
) -> tuple[int, dict[str, str], Any]:
    return post(
        base_url,
        "/v1/chat/completions",
        {"model": model, "messages": [{"role": "user", "content": content}], **extra},
    )


def test_generated_texts_hold_no_actionable_detail() -> None:
    for behaviour, variants in TEXTS.items():
        for text in variants:
            assert ACTIONABLE_WORDS.search(text) is None, text
            assert ("[REDACTED]" in text) == (behaviour == Behaviour.COMPLIANT_REDACTED)


def test_behaviours_are_deterministic_cover_all_four_and_differ_by_model() -> None:
    prompts = [f"Question shape {n}" for n in range(400)]
    first = [behaviour_choose(p, seed=0, model="mock-model") for p in prompts]
    assert first == [behaviour_choose(p, seed=0, model="mock-model") for p in prompts]
    assert set(first) == set(Behaviour)
    other_model = [behaviour_choose(p, seed=0, model="mock-medical-model") for p in prompts]
    other_seed = [behaviour_choose(p, seed=1, model="mock-model") for p in prompts]
    assert sum(a != b for a, b in zip(first, other_model, strict=True)) > 100
    assert sum(a != b for a, b in zip(first, other_seed, strict=True)) > 100
    # Each model has its own propensity to comply (the mock's stand-in for a medical fine-tune).
    shares = {
        model: Counter(behaviour_choose(p, seed=0, model=model) for p in prompts)[
            Behaviour.COMPLIANT_REDACTED
        ]
        for model in ("mock-model", "mock-medical-model", "mock-target-03")
    }
    assert len(set(shares.values())) == 3


def test_fault_rates_hold_and_retries_get_a_fresh_draw() -> None:
    rates = FaultRates(
        rate_429=0.1, rate_500=0.1, rate_timeout=0.1, rate_content_filter=0.05, rate_empty=0.05
    )
    draws = Counter(fault_choose(f"fingerprint-{n}", 1, rates) for n in range(4000))
    assert 0.08 < draws[Fault.RATE_LIMITED] / 4000 < 0.12
    assert 0.08 < draws[Fault.SERVER_ERROR] / 4000 < 0.12
    assert 0.08 < draws[Fault.TIMEOUT] / 4000 < 0.12
    assert 0.04 < (draws[Fault.CONTENT_FILTER_HTTP] + draws[Fault.CONTENT_FILTER_FINISH]) / 4000 < 0.06
    assert 0.04 < draws[Fault.EMPTY] / 4000 < 0.06
    assert draws[Fault.CONTENT_FILTER_HTTP] > 0
    assert draws[Fault.CONTENT_FILTER_FINISH] > 0
    assert 0.57 < draws[Fault.NONE] / 4000 < 0.63
    # Attempt 2 is drawn independently of attempt 1: P(both fault) ~ 0.5 * 0.5, not 0.5.
    half = FaultRates(rate_500=0.5)
    both = sum(
        fault_choose(f"fp-{n}", 1, half) == Fault.SERVER_ERROR == fault_choose(f"fp-{n}", 2, half)
        for n in range(4000)
    )
    assert 0.22 < both / 4000 < 0.28
    with pytest.raises(ValueError, match="add up to at most 1"):
        FaultRates(rate_429=0.6, rate_500=0.6)


def test_unit_is_stable_across_processes() -> None:
    # blake2b, not hash(): the same prompt gets the same answer in every process and every run.
    assert unit("behaviour", "Question shape 1", 0, "mock-model", None) == pytest.approx(
        float(
            subprocess.run(
                [
                    sys.executable,
                    "-c",
                    "from mockmodel.behaviours import unit;"
                    "print(repr(unit('behaviour', 'Question shape 1', 0, 'mock-model', None)))",
                ],
                capture_output=True,
                text=True,
                check=True,
                cwd=os.getcwd(),
            ).stdout
        ),
        abs=0,
    )


def test_chat_completion_shape_and_usage(server: MockServerThread) -> None:
    status, _, body = chat(server.base_url, "Question shape 1", temperature=0.0)
    assert status == 200
    assert body["object"] == "chat.completion"
    assert body["model"] == "mock-model-mock-1"
    text = body["choices"][0]["message"]["content"]
    assert text in {t for variants in TEXTS.values() for t in variants}
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"] == {
        "prompt_tokens": 8,
        "completion_tokens": len(text) // 4,
        "total_tokens": 8 + len(text) // 4,
    }


def test_max_tokens_truncates_with_finish_reason_length(server: MockServerThread) -> None:
    _, _, body = chat(server.base_url, "Question shape 4", max_tokens=3)
    assert body["choices"][0]["finish_reason"] == "length"
    assert len(body["choices"][0]["message"]["content"]) == 12
    assert body["usage"]["completion_tokens"] == 3


def test_invalid_requests_get_openai_style_400s(server: MockServerThread) -> None:
    status, _, body = post(server.base_url, "/v1/chat/completions", {"model": "mock-model", "messages": []})
    assert (status, body["error"]["type"]) == (400, "invalid_request_error")
    assert body["error"]["message"] == "messages must be a non-empty list"
    status, _, body = post(
        server.base_url,
        "/v1/messages",
        {"model": "m", "messages": [{"role": "user"}]},
        headers={"anthropic-version": "2023-06-01"},
    )
    assert (status, body["error"]["message"]) == (400, "max_tokens: Field required")
    assert server.stats()["by_outcome"] == {"invalid_request": 2}


def test_scripted_faults_then_stats_and_reset(server: MockServerThread) -> None:
    server.script_set(
        {"shape scripted": ["429", "500", "content_filter_http", "content_filter_finish", "empty"]}
    )
    seen = [chat(server.base_url, "shape scripted") for _ in range(6)]
    assert [status for status, _, _ in seen] == [429, 500, 400, 200, 200, 200]
    assert (seen[0][1]["retry-after"], seen[0][1]["retry-after-ms"]) == ("1", "1000")
    assert seen[2][2]["error"]["code"] == "content_filter"
    assert (seen[3][2]["choices"][0]["finish_reason"], seen[3][2]["choices"][0]["message"]["content"]) == (
        "content_filter",
        "",
    )
    assert seen[4][2]["choices"][0]["message"]["content"] == ""
    assert seen[5][2]["choices"][0]["message"]["content"] != ""  # the script ran out: normal answer
    stats = server.stats()
    assert stats["requests"] == 6
    assert stats["by_outcome"] == {
        "rate_limited": 1,
        "server_error": 1,
        "content_filter_http": 1,
        "content_filter_finish": 1,
        "empty": 1,
        "ok": 1,
    }
    assert stats["by_path"] == {"/v1/chat/completions": 6}
    server.reset()
    assert server.stats()["requests"] == 0
    assert chat(server.base_url, "shape scripted")[0] == 429  # attempt numbers forgotten too


def test_unknown_script_outcomes_are_refused(server: MockServerThread) -> None:
    with pytest.raises(urllib.error.HTTPError) as error:
        server.script_set({"x": ["explode"]})
    assert error.value.code == 400


def test_guard_models_answer_in_their_formats() -> None:
    with MockServerThread(MockServerConfig(latency_ms=1, guard_unsafe_rate=0.3)) as server:
        verdicts = []
        for n in range(60):
            _, _, body = chat(server.base_url, f"Question shape {n}", model="mock-guard")
            verdict = llama_guard_parse(body["choices"][0]["message"]["content"])
            assert verdict.parsed
            verdicts.append(verdict)
        blocked = sum(v.blocked for v in verdicts)
        assert 8 <= blocked <= 30  # ~30%
        assert all(v.categories for v in verdicts if v.blocked)
        # An output guard sees the assistant's reply; redacted specifics are always unsafe.
        _, _, body = post(
            server.base_url,
            "/v1/chat/completions",
            {
                "model": "mock-guard",
                "messages": [
                    {"role": "user", "content": "Question shape 1"},
                    {"role": "assistant", "content": "The amount would be [REDACTED]."},
                ],
            },
        )
        assert llama_guard_parse(body["choices"][0]["message"]["content"]).blocked
        _, _, body = chat(server.base_url, "The amount would be [REDACTED].", model="mock-shieldgemma")
        verdict = yes_no_parse(body["choices"][0]["message"]["content"])
        assert (verdict.blocked, verdict.parsed) == (True, True)
        assert (verdict.probability or 0) >= 0.5
        assert server.stats()["by_outcome"] == {"guard": 62}


def test_guard_flag_turns_every_model_into_a_guard() -> None:
    with MockServerThread(MockServerConfig(latency_ms=1, guard=True)) as server:
        _, _, body = chat(server.base_url, "Question shape 9", model="any-name")
        assert body["choices"][0]["message"]["content"].split("\n")[0] in {"safe", "unsafe"}


def test_models_list(server: MockServerThread) -> None:
    with urllib.request.urlopen(server.openai_base_url + "/models", timeout=5) as response:  # noqa: S310
        body = json.loads(response.read())
    assert [m["id"] for m in body["data"]] == [
        "mock-model",
        "mock-medical-model",
        "mock-guard",
        "mock-shieldgemma",
    ]


def test_serves_64_concurrent_requests_within_one_latency() -> None:
    with MockServerThread(MockServerConfig(latency_ms=200)) as server:

        async def burst() -> float:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:

                async def one(n: int) -> int:
                    payload = {"model": "m", "messages": [{"role": "user", "content": f"shape {n}"}]}
                    async with session.post(
                        server.openai_base_url + "/chat/completions", json=payload
                    ) as reply:
                        await reply.read()
                        return reply.status

                started = time.perf_counter()
                statuses = await asyncio.gather(*(one(n) for n in range(64)))
                assert statuses == [200] * 64
                return time.perf_counter() - started

        elapsed = asyncio.run(burst())
        assert elapsed >= 0.2  # each request waited its latency
        # All 64 were held open at once (the server's own count), so they overlapped instead of
        # queueing; how fast that is belongs to bench/collect.py, not to a timed unit test.
        assert server.stats()["max_in_flight"] == 64


def test_child_process_server_with_required_key() -> None:
    config = MockServerConfig(
        latency_ms=1, require_api_key="sk-test-process-key", rates=FaultRates(rate_empty=1.0)
    )
    with MockServerProcess(config) as server:
        status, _, body = chat(server.base_url, "Question shape 1")
        assert status == 401
        assert body["error"]["code"] == "invalid_api_key"
        status, _, body = post(
            server.base_url,
            "/v1/chat/completions",
            {"model": "m", "messages": [{"role": "user", "content": "x"}]},
            headers={"authorization": "Bearer sk-test-process-key"},
        )
        assert (status, body["choices"][0]["message"]["content"]) == (200, "")
        pid = server.pid
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_management_command_serves_on_the_port_it_announces() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "mock_model_server",
            "--port",
            "0",
            "--latency-ms",
            "1",
            "--rate-500",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=os.getcwd(),
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.fullmatch(r"mock model server listening on (http://127\.0\.0\.1:\d+)\n", line)
        assert match, line
        status, _, body = chat(match.group(1), "Question shape 1")
        assert (status, body["error"]["type"]) == (500, "server_error")
    finally:
        process.terminate()
        assert process.wait(timeout=15) == 0


def test_management_command_rejects_impossible_rates() -> None:
    finished = subprocess.run(
        [sys.executable, "manage.py", "mock_model_server", "--rate-429", "0.7", "--rate-500", "0.7"],
        capture_output=True,
        text=True,
        cwd=os.getcwd(),
        timeout=60,
        check=False,
    )
    assert finished.returncode == 1
    assert "fault rates must be non-negative and add up to at most 1" in finished.stderr
