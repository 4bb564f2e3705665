"""Client-side throughput against the mock model server: ``collect_many`` versus a plain asyncio
loop with the ``openai`` SDK and a semaphore (issue 3's comparison, without Celery or PostgreSQL).

    .venv/bin/python bench/collect_plain.py                   # 1,100 x 19 = 20,900 requests
    .venv/bin/python bench/collect_plain.py --requests 2000   # quicker; same per-second figures

The mock runs in its own process (``MockServerProcess``) so it does not share the client's GIL.
Prints wall time, responses/s, the latency bound (concurrency / latency) and the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import openai

from mockmodel import MockServerConfig, MockServerProcess
from providers import (
    CallResult,
    ChatRequest,
    EndpointCaller,
    EndpointConfig,
    RetryPolicy,
    collect_many,
    provider_build,
    run_bounded,
)

QUERIES, TARGETS = 1_100, 19


def workload(total: int) -> list[tuple[str, str]]:
    """(model, prompt) pairs: queries x targets, cut to ``total``. Prompts are shapes, not content."""
    pairs = [
        (f"mock-target-{t:02d}", f"Benchmark query shape {q:04d}")
        for q in range(QUERIES)
        for t in range(TARGETS)
    ]
    return pairs[:total]


def _requests(pairs: list[tuple[str, str]]) -> list[tuple[str, ChatRequest]]:
    return [
        (model, ChatRequest.from_prompt(prompt, item_id=index, temperature=0.0, max_tokens=256))
        for index, (model, prompt) in enumerate(pairs)
    ]


def _endpoint(base_url: str, model: str, max_concurrency: int) -> EndpointConfig:
    return EndpointConfig(
        kind="openai_chat", base_url=base_url, model=model, max_concurrency=max_concurrency, timeout_s=60
    )


async def run_mixed(base_url: str, pairs: list[tuple[str, str]], concurrency: int, client: str) -> int:
    """The intended design for a run over many targets: one caller per target endpoint (each with
    its own adaptive limit), one pool of ``concurrency`` slots shared by all, and ONE
    ``run_bounded`` fed with the items of every target in query order."""
    pool = asyncio.Semaphore(concurrency)
    policy = RetryPolicy(max_attempts=3, base_delay=0.1)
    callers = {
        model: EndpointCaller(
            provider_build(_endpoint(base_url, model, concurrency), client=client), policy=policy, pool=pool
        )
        for model in dict.fromkeys(model for model, _ in pairs)
    }
    done = 0

    def count(result: CallResult) -> None:
        nonlocal done
        done += result.succeeded

    async def work(item: tuple[str, ChatRequest]) -> CallResult:
        return await callers[item[0]].call(item[1])

    await run_bounded(_requests(pairs), work, max_pending=2 * concurrency, on_result=count)
    for caller in callers.values():
        await caller.provider.aclose()
    return done


async def run_fixed_shares(base_url: str, pairs: list[tuple[str, str]], concurrency: int, client: str) -> int:
    """The naive alternative: one ``collect_many`` per target with a fixed share of the slots
    (64 / 19 = 3 or 4). Targets with 4 slots finish early and leave their slots idle."""
    by_model: dict[str, list[ChatRequest]] = {}
    for model, request in _requests(pairs):
        by_model.setdefault(model, []).append(request)
    done = 0

    def count(result: CallResult) -> None:
        nonlocal done
        done += result.succeeded

    shares = [concurrency // len(by_model) + (i < concurrency % len(by_model)) for i in range(len(by_model))]
    providers = [
        (provider_build(_endpoint(base_url, model, max(1, share)), client=client), requests)
        for (model, requests), share in zip(by_model.items(), shares, strict=True)
    ]
    policy = RetryPolicy(max_attempts=3, base_delay=0.1)
    await asyncio.gather(*(collect_many(p, reqs, policy=policy, on_result=count) for p, reqs in providers))
    for provider, _ in providers:
        await provider.aclose()
    return done


async def run_collect_many_single(
    base_url: str, pairs: list[tuple[str, str]], concurrency: int, client: str
) -> int:
    """Every request through ONE endpoint at ``concurrency`` (the model name varies per request,
    which the mock echoes; this isolates the engine from the 19-way split)."""
    endpoint = _endpoint(base_url, "mock-target", concurrency)
    requests = [
        ChatRequest.from_prompt(prompt + " " + model, item_id=i, temperature=0.0, max_tokens=256)
        for i, (model, prompt) in enumerate(pairs)
    ]
    done = 0

    def count(result: CallResult) -> None:
        nonlocal done
        done += result.succeeded

    async with provider_build(endpoint, client=client) as provider:
        await collect_many(
            provider, requests, policy=RetryPolicy(max_attempts=3, base_delay=0.1), on_result=count
        )
    return done


async def run_plain_sdk(base_url: str, pairs: list[tuple[str, str]], concurrency: int) -> int:
    client = openai.AsyncOpenAI(api_key="no-key", base_url=base_url, max_retries=0, timeout=60)
    semaphore = asyncio.Semaphore(concurrency)
    done = 0

    async def one(model: str, prompt: str) -> None:
        nonlocal done
        async with semaphore:
            reply = await client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": prompt}], temperature=0.0, max_tokens=256
            )
        done += bool(reply.choices)

    await asyncio.gather(*(one(model, prompt) for model, prompt in pairs))
    await client.close()
    return done


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of another process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(name: str, run: Callable[[], Awaitable[int]], total: int, bound: float) -> float:
    cpu_before = time.process_time()
    started = time.perf_counter()
    done = asyncio.run(run())
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_before
    rate = total / wall
    print(
        f"{name:<34} {done:>6}/{total} ok  wall {wall:7.1f} s  {rate:6.1f} responses/s  "
        f"{rate / bound:5.1%} of bound  client CPU {cpu:6.1f} s ({cpu / wall:4.0%})"
    )
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=QUERIES * TARGETS)
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument(
        "--only",
        choices=["mixed", "mixed-sdk", "single", "fixed-shares", "plain"],
        action="append",
        help="run only these (repeatable); default: all",
    )
    options = parser.parse_args()
    pairs = workload(options.requests)
    bound = options.concurrency / (options.latency_ms / 1000)
    print(
        f"{len(pairs)} requests, concurrency {options.concurrency}, mock latency {options.latency_ms:g} ms, "
        f"bound {bound:.0f} responses/s, {os.cpu_count()} CPUs"
    )
    chosen = options.only or ["mixed", "single", "mixed-sdk", "fixed-shares", "plain"]
    rates: dict[str, float] = {}
    with MockServerProcess(MockServerConfig(latency_ms=options.latency_ms)) as server:
        base = server.openai_base_url
        width = options.concurrency
        runs = {
            "mixed": (
                "19 endpoints, shared pool, aiohttp",
                lambda: run_mixed(base, pairs, width, "aiohttp"),
            ),
            "mixed-sdk": (
                "19 endpoints, shared pool, SDK",
                lambda: run_mixed(base, pairs, width, "openai_sdk"),
            ),
            "single": (
                "1 endpoint, collect_many, aiohttp",
                lambda: run_collect_many_single(base, pairs, width, "aiohttp"),
            ),
            "fixed-shares": (
                "19 endpoints, fixed shares, aiohttp",
                lambda: run_fixed_shares(base, pairs, width, "aiohttp"),
            ),
            "plain": ("plain loop, openai SDK, semaphore", lambda: run_plain_sdk(base, pairs, width)),
        }
        for key in chosen:
            label, run = runs[key]
            rates[key] = measure(label, run, len(pairs), bound)
        stats = server.stats()
        mock_cpu = process_cpu_seconds(server.pid)
    print(
        f"mock: {stats['requests']} requests, peak in flight {stats['max_in_flight']}, "
        f"CPU {mock_cpu:.1f} s ({1000 * mock_cpu / max(1, stats['requests']):.2f} ms a request)"
    )
    if "plain" in rates:
        for key, rate in rates.items():
            if key != "plain":
                print(f"{key} / plain = {rate / rates['plain']:.2f}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"client peak RSS {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
