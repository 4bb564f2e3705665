"""Run many chat requests against one endpoint in one asyncio loop, with retries and throttles.

Interfaces for the Celery layer:

- ``EndpointCaller(provider, policy=...)`` owns an endpoint's adaptive concurrency limiter and
  optional rate buckets; ``await caller.call(request)`` runs ONE item to its end (retries
  included) and returns an ``CallResult``. Share one caller per endpoint per loop, so that every
  item sent to that endpoint (plain targets and pipeline stages alike) goes through the same limits.
  Pipelines (input guard -> model -> output guard) compose several callers in one coroutine and run
  it with ``run_bounded``.
- ``pool``: an ``asyncio.Semaphore`` shared by the callers of one worker process caps the calls in
  flight across ALL endpoints (e.g. 64), while each endpoint keeps its own adaptive limit. A run
  over several targets should feed one ``run_bounded`` with items of every target
  (``worker=lambda item: callers[item.target].call(item.request)``) rather than split the pool
  into fixed per-target shares: a target that finishes early then leaves no slots idle.
- ``collect_many(provider, requests, concurrency=..., policy=..., on_result=...)`` is the common
  case: every request through one caller, ``on_result(CallResult)`` (sync or async) called once per
  finished item, in completion order. Results are not kept: the callback is where rows are written
  (buffer them and write in batches; a sync callback runs on the loop, so it must be quick).
- An item is reported only when it is finished: recorded (ok / empty / content_filter) or failed
  with ``terminal_reason``. Cancelling the surrounding task (pause, worker shutdown) drops the
  in-flight items unreported; resuming must redo exactly those. An exception raised by
  ``on_result`` stops the whole collection and propagates.
"""

from __future__ import annotations

import asyncio
import inspect
import random
import time
from collections import Counter
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from providers.base import ChatProvider
from providers.limits import AdaptiveConcurrencyLimiter, LimiterSnapshot, RateLimiter
from providers.retry import RetryPolicy
from providers.types import CallOutcome, CallResult, ChatRequest

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")


class EndpointCaller:
    """A provider behind its endpoint's limits; ``call`` retries one request per the policy."""

    def __init__(
        self,
        provider: ChatProvider,
        *,
        policy: RetryPolicy | None = None,
        concurrency: int | None = None,
        limiter: AdaptiveConcurrencyLimiter | None = None,
        rate_limiter: RateLimiter | None = None,
        pool: asyncio.Semaphore | None = None,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.provider = provider
        self.policy = policy or RetryPolicy()
        maximum = min(concurrency or provider.endpoint.max_concurrency, provider.endpoint.max_concurrency)
        self.limiter = limiter or AdaptiveConcurrencyLimiter(maximum)
        self.rate_limiter = (
            rate_limiter if rate_limiter is not None else RateLimiter.for_endpoint(provider.endpoint)
        )
        self.pool = pool
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self._sleep = sleep

    async def call(self, request: ChatRequest) -> CallResult:
        attempts: list[CallOutcome] = []
        attempt = 0
        while True:
            attempt += 1
            outcome = await self._attempt(request)
            attempts.append(outcome)
            delay = self.policy.delay_after(outcome, attempt, self._rng)
            if delay is None:
                return CallResult(
                    request=request,
                    outcome=outcome,
                    attempts=tuple(attempts),
                    terminal_reason=self.policy.terminal_reason(outcome, attempt),
                )
            # The concurrency slot is free while we wait, so other items keep the pipe full.
            await self._sleep(delay)

    async def _attempt(self, request: ChatRequest) -> CallOutcome:
        estimate = request.estimated_tokens() if self.rate_limiter else 0
        if self.rate_limiter:
            await self.rate_limiter.acquire(estimate)
        # Endpoint slot first, then the shared pool: waiting on the endpoint never idles a pool slot.
        token = await self.limiter.acquire()
        outcome: CallOutcome | None = None
        try:
            if self.pool is None:
                outcome = await self.provider.complete(request)
            else:
                async with self.pool:
                    outcome = await self.provider.complete(request)
        finally:
            self.limiter.release(token, outcome.kind if outcome else None)
        if self.rate_limiter:
            self.rate_limiter.settle(estimate, outcome.usage.total_tokens)
        return outcome


@dataclass
class CollectSummary:
    """Counts by final outcome kind (``failed`` counts items with a terminal reason)."""

    items: int = 0
    succeeded: int = 0
    failed: int = 0
    attempts: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0
    limiter: LimiterSnapshot | None = None
    stopped: bool = False

    @property
    def per_second(self) -> float:
        return self.items / self.elapsed_s if self.elapsed_s else 0.0


async def _maybe_await(value: Any) -> None:
    if inspect.isawaitable(value):
        await value


async def run_bounded(
    items: Iterable[ItemT] | AsyncIterable[ItemT],
    worker: Callable[[ItemT], Awaitable[ResultT]],
    *,
    max_pending: int,
    on_result: Callable[[ResultT], Any],
    should_stop: Callable[[], bool] | None = None,
) -> bool:
    """``worker(item)`` for every item with at most ``max_pending`` in progress; ``on_result`` per
    result. Items are pulled lazily, so a generator over a large queryset is fine. Returns True
    when ``should_stop`` ended the run early (items not yet started are left untouched)."""
    stopped = False
    if isinstance(items, AsyncIterable):
        iterator_async = aiter(items)
        pull_lock = asyncio.Lock()

        async def pull() -> tuple[bool, Any]:
            async with pull_lock:
                try:
                    return True, await anext(iterator_async)
                except StopAsyncIteration:
                    return False, None

    else:
        iterator = iter(items)

        async def pull() -> tuple[bool, Any]:
            try:
                return True, next(iterator)
            except StopIteration:
                return False, None

    async def lane() -> None:
        nonlocal stopped
        while True:
            if should_stop is not None and should_stop():
                stopped = True
                return
            found, item = await pull()
            if not found:
                return
            await _maybe_await(on_result(await worker(item)))

    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(max(1, max_pending)):
                group.create_task(lane())
    except BaseExceptionGroup as group_error:
        # Surface the first real error (a failing callback), not the group wrapper.
        raise group_error.exceptions[0] from group_error
    return stopped


async def collect_many(
    provider: ChatProvider | EndpointCaller,
    requests: Iterable[ChatRequest] | AsyncIterable[ChatRequest],
    *,
    on_result: Callable[[CallResult], Any],
    concurrency: int | None = None,
    policy: RetryPolicy | None = None,
    max_pending: int | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> CollectSummary:
    """Every request through one endpoint with at most ``concurrency`` calls in flight (default:
    the endpoint's ``max_concurrency``, which also caps it). Up to ``max_pending`` items (default
    twice the concurrency) are in progress, so items sleeping in backoff do not idle the pipe."""
    caller = (
        provider
        if isinstance(provider, EndpointCaller)
        else EndpointCaller(provider, policy=policy, concurrency=concurrency)
    )
    summary = CollectSummary()
    started = time.perf_counter()

    async def record(result: CallResult) -> None:
        summary.items += 1
        summary.attempts += len(result.attempts)
        summary.by_kind[str(result.kind) if result.succeeded else "failed:" + str(result.kind)] += 1
        if result.succeeded:
            summary.succeeded += 1
        else:
            summary.failed += 1
        await _maybe_await(on_result(result))

    summary.stopped = await run_bounded(
        requests,
        caller.call,
        max_pending=max_pending or 2 * caller.limiter.max_concurrency,
        on_result=record,
        should_stop=should_stop,
    )
    summary.elapsed_s = time.perf_counter() - started
    summary.limiter = LimiterSnapshot.of(caller.limiter)
    return summary
