"""Runs a collection run's items as one collector: the bridge from the database to the provider layer.

A run is executed by one or more collectors (Celery tasks, on any workers), each claiming batches
of the shared rows. In a collector, one asyncio loop calls the model APIs
(``providers``: limits, retries, Retry-After) and two threads do the database calls,
so the loop never blocks on SQL and claims never queue behind writes:

- the claim thread leases batches of items (``items_claim``), the next batch fetched while the
  current one is half used, and beats (``collector_beat``: its own heartbeat row, lease renewal
  by the database clock, pause or cancel noticed);
- the write thread writes finished items in batches, one statement each (``items_finish_many``,
  guarded by lease token); lanes only append to the buffer and never wait for a write;
- an item leaves ``held`` only once its row is written, so on stop whatever was not written,
  whenever the stop came, is handed back (``items_release``).

Pipelines compose callers: input guard → model → output guard. Each endpoint has one caller per
loop, so a guard shared by several pipelines is throttled as one endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

from django.conf import settings
from django.db import close_old_connections, connection

from evaluations.endpoint_rules import EndpointNotAllowedError, host_problem, key_env_policy
from evaluations.guards import guard_messages, guard_output_parse
from evaluations.models import CollectionRun, ResponseOutcome, RunStatus
from evaluations.services.runs import (
    ClaimedItem,
    ResponseResult,
    collector_beat,
    collector_start,
    collector_stop,
    items_claim,
    items_finish_many,
    items_release,
    lease_seconds_for,
    run_complete_if_done,
    run_fail,
)
from providers import (
    CallResult,
    ChatRequest,
    EndpointCaller,
    EndpointConfig,
    MissingApiKeyError,
    OutcomeKind,
    ProviderClient,
    RetryPolicy,
    cost_for_endpoint,
    provider_build,
    run_bounded,
)

logger = logging.getLogger(__name__)
T = TypeVar("T")

FLUSH_EVERY_ITEMS = 200
FLUSH_EVERY_SECONDS = 0.5
HEARTBEAT_SECONDS = 1.0


@dataclass(frozen=True)
class CollectorOptions:
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)
    batch_size: int | None = None  # default: twice the run's concurrency
    # aiohttp measured ~0.3 ms CPU a request, against ~6 ms for httpx (docs/collection.md).
    client: ProviderClient = "aiohttp"
    # Redis shared by every collector for endpoint limits; None: the COLLECTION_LIMITS_REDIS_URL
    # setting; "": limits enforced in this process only.
    limits_redis_url: str | None = None
    flush_every_items: int = FLUSH_EVERY_ITEMS  # the writer wakes at this many finished items
    flush_every_seconds: float = FLUSH_EVERY_SECONDS  # ... or after this long


def endpoint_config(snapshot: dict[str, Any]) -> EndpointConfig:
    return EndpointConfig(
        kind=snapshot["kind"],
        base_url=snapshot["base_url"],
        model=snapshot["model_name"],
        api_key_env=snapshot.get("api_key_env") or None,
        default_params=snapshot.get("default_parameters") or {},
        max_concurrency=snapshot["max_concurrency"],
        requests_per_minute=snapshot.get("requests_per_minute"),
        tokens_per_minute=snapshot.get("tokens_per_minute"),
        price_input_per_million=Decimal(snapshot["price_input_per_million"]),
        price_output_per_million=Decimal(snapshot["price_output_per_million"]),
        timeout_s=snapshot["timeout_seconds"],
        name=snapshot["slug"],
    )


def _attempt_log(result: CallResult) -> list[dict[str, Any]]:
    """Every failed attempt of a call, as provenance (the last one too, when the item failed)."""
    failed = result.attempts if result.terminal_reason else result.attempts[:-1]
    return [
        {
            "kind": str(a.kind),
            "http_status": a.http_status,
            "error": a.error,
            "body": a.error_body,
            "latency_ms": round(a.latency_ms),
            "retry_after_s": a.retry_after_s,
        }
        for a in failed
    ]


def _guard_record(result: CallResult, config: EndpointConfig, guard_format: str) -> dict[str, Any]:
    record: dict[str, Any] = {
        "model": config.model,
        "endpoint": config.name,
        "attempts": len(result.attempts),
        "errors": _attempt_log(result),
        "request": dict(result.outcome.request),
    }
    if result.terminal_reason:
        record.update(blocked=None, error=result.terminal_reason)
        return record
    verdict = guard_output_parse(result.outcome.text, guard_format=guard_format)
    record.update(
        blocked=verdict.blocked, categories=verdict.categories, raw=verdict.raw, error=verdict.error
    )
    return record


class RunCollector:
    def __init__(
        self, run: CollectionRun, options: CollectorOptions, *, collector_id: uuid.UUID | None = None
    ) -> None:
        self.run = run
        self.options = options
        self.collector_id = collector_id or uuid.uuid4()
        self.targets = {t.pk: t.config for t in run.targets.all()}
        self.configs: dict[int, EndpointConfig] = {}
        self.formats: dict[int, str] = {}
        for config in self.targets.values():
            for stage in ("input_guard", "model", "output_guard"):
                snapshot = config.get(stage)
                if snapshot:
                    self.configs[snapshot["id"]] = endpoint_config(snapshot)
                    self.formats[snapshot["id"]] = snapshot.get("guard_format", "")
        params = dict(run.parameters)
        self.system_prompt = params.pop("system_prompt", None)
        self.base_seed = params.pop("seed", None)
        self.params = params
        self.lease_seconds = lease_seconds_for(run)
        # Two threads, each with its own database connection: claims and beats never wait for a write.
        self.db = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"run{run.pk}-db")
        self.db_write = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"run{run.pk}-write")
        self.stop = False
        self.held: dict[uuid.UUID, set[int]] = {}  # leased by us and not yet written
        self.buffer: list[tuple[uuid.UUID, ResponseResult]] = []
        self.written = 0
        self.callers: dict[int, EndpointCaller] = {}
        self._closing = False
        self._flush_wanted: asyncio.Event | None = None
        self._prefetch: asyncio.Future[Any] | None = None

    async def _db(self, function: Callable[..., T], /, **kwargs: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.db, lambda: function(**kwargs))

    # --- the claim stream, heartbeat and writer -------------------------------------------------
    async def _claim(self, limit: int) -> list[tuple[uuid.UUID, ClaimedItem]]:
        if self.stop:
            return []
        claim = await self._db(items_claim, run_id=self.run.pk, limit=limit)
        if claim.items:
            self.held[claim.token] = {item.id for item in claim.items}
        return [(claim.token, item) for item in claim.items]

    async def claims(self) -> AsyncIterator[tuple[uuid.UUID, ClaimedItem]]:
        limit = self.options.batch_size or max(2 * self.run.concurrency, 32)
        self._prefetch = asyncio.ensure_future(self._claim(limit))
        while not self.stop:
            batch = await self._prefetch
            self._prefetch = None
            if not batch:
                return
            for index, entry in enumerate(batch):
                if self.stop:
                    return
                if self._prefetch is None and index >= len(batch) // 2:
                    # The next batch is leased while this one is still feeding the lanes.
                    self._prefetch = asyncio.ensure_future(self._claim(limit))
                yield entry
            if self._prefetch is None:
                self._prefetch = asyncio.ensure_future(self._claim(limit))

    def requests_in_flight(self) -> int:
        return sum(caller.limiter.in_flight for caller in self.callers.values())

    async def heartbeat(self) -> None:
        while not self.stop:
            status = await self._db(
                collector_beat,
                collector_id=self.collector_id,
                run_id=self.run.pk,
                tokens=[token for token, ids in self.held.items() if ids],
                lease_seconds=self.lease_seconds,
                requests_in_flight=self.requests_in_flight(),
                written=self.written,
            )
            if status != RunStatus.RUNNING:
                logger.info("run %s is %s: stopping after the items in flight", self.run.pk, status)
                self.stop = True
                return
            await asyncio.sleep(HEARTBEAT_SECONDS)

    def _write_sync(self, pending: list[tuple[uuid.UUID, ResponseResult]]) -> int:
        return items_finish_many(entries=pending)

    async def flush(self) -> None:
        """Write the buffer; its items leave ``held`` only once written. A failed write puts the
        batch back in the buffer (or, when closing, leaves it in ``held`` to be handed back)."""
        pending, self.buffer = self.buffer, []
        if not pending:
            return
        loop = asyncio.get_running_loop()
        try:
            count = await loop.run_in_executor(self.db_write, self._write_sync, pending)
        except Exception:
            logger.exception("run %s: writing %s items failed", self.run.pk, len(pending))
            if not self._closing:
                self.buffer[:0] = pending
            return
        self.written += count  # read after the await: no overlapping flush can lose an update
        for token, result in pending:
            ids = self.held.get(token)
            if ids is not None:
                ids.discard(result.id)
                if not ids:
                    del self.held[token]

    async def writer(self) -> None:
        """The only task that flushes, so writes never overlap; it drains the buffer and ends
        once the collector is closing. It is never cancelled: a taken batch is always finished."""
        assert self._flush_wanted is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._flush_wanted.wait(), self.options.flush_every_seconds)
            self._flush_wanted.clear()
            closing = self._closing
            await self.flush()
            if closing and not self.buffer:
                return

    def record(self, entry: tuple[uuid.UUID, ResponseResult]) -> None:
        self.buffer.append(entry)
        if len(self.buffer) >= self.options.flush_every_items and self._flush_wanted is not None:
            self._flush_wanted.set()  # the writer wakes; this lane goes on at once

    # --- one item -------------------------------------------------------------------------------
    def model_request(self, item: ClaimedItem) -> ChatRequest:
        params = dict(self.params)
        if self.base_seed is not None:
            # Samples of one query differ, yet every sample is reproducible from the run's seed.
            params["seed"] = int(self.base_seed) + item.sample_index
        return ChatRequest.from_prompt(item.query_text, system=self.system_prompt, item_id=item.id, **params)

    async def process(self, entry: tuple[uuid.UUID, ClaimedItem]) -> tuple[uuid.UUID, ResponseResult]:
        token, item = entry
        config = self.targets[item.target_id]
        cost = Decimal(0)
        result = ResponseResult(id=item.id, outcome=ResponseOutcome.ERROR)

        input_guard = config.get("input_guard")
        if input_guard:
            guard_id = input_guard["id"]
            call = await self.callers[guard_id].call(
                ChatRequest(messages=guard_messages(item.query_text), item_id=item.id)
            )
            cost += cost_for_endpoint(call.usage, self.configs[guard_id]) or 0
            result.input_guard = _guard_record(call, self.configs[guard_id], self.formats[guard_id])
            if result.input_guard["blocked"] is None or result.input_guard["error"]:
                result.error_reason = f"input guard: {result.input_guard['error']}"
                result.cost = cost
                return token, result
            if result.input_guard["blocked"]:
                result.outcome = ResponseOutcome.INPUT_BLOCKED
                result.cost = cost
                return token, result

        model_id = config["model"]["id"]
        call = await self.callers[model_id].call(self.model_request(item))
        last = call.outcome
        cost += cost_for_endpoint(call.usage, self.configs[model_id]) or 0
        result.request = dict(last.request)
        result.resolved_model = last.model or ""
        result.finish_reason = last.finish_reason or ""
        result.raw_reply = dict(last.raw) if last.raw is not None else None
        result.input_tokens = call.usage.input_tokens
        result.output_tokens = call.usage.output_tokens
        result.latency_ms = round(last.latency_ms)
        result.attempts = len(call.attempts)
        result.errors = _attempt_log(call)
        if call.terminal_reason:
            result.error_reason = call.terminal_reason
        elif last.kind == OutcomeKind.CONTENT_FILTER:
            # The provider refused: a finding about the provider, never a response text.
            result.outcome = ResponseOutcome.CONTENT_FILTER
        elif last.kind == OutcomeKind.EMPTY:
            result.outcome = ResponseOutcome.EMPTY
        else:
            result.outcome = ResponseOutcome.COLLECTED
            result.text = last.text

        output_guard = config.get("output_guard")
        if output_guard and result.outcome in (ResponseOutcome.COLLECTED, ResponseOutcome.EMPTY):
            guard_id = output_guard["id"]
            call = await self.callers[guard_id].call(
                ChatRequest(messages=guard_messages(item.query_text, result.text), item_id=item.id)
            )
            cost += cost_for_endpoint(call.usage, self.configs[guard_id]) or 0
            result.output_guard = _guard_record(call, self.configs[guard_id], self.formats[guard_id])
            if result.output_guard["blocked"] is None or result.output_guard["error"]:
                result.outcome = ResponseOutcome.ERROR
                result.error_reason = f"output guard: {result.output_guard['error']}"
                result.text = ""
            elif result.output_guard["blocked"]:
                # The model's words stay in raw_reply for provenance; the response shown is the block.
                result.outcome = ResponseOutcome.OUTPUT_BLOCKED
                result.text = ""
        result.cost = cost
        return token, result

    # --- the whole run --------------------------------------------------------------------------
    def _callers_build(self) -> tuple[dict[int, EndpointCaller], Any]:
        from providers.shared_limits import SharedLimits

        url = self.options.limits_redis_url
        if url is None:
            url = settings.COLLECTION_LIMITS_REDIS_URL
        for config in self.configs.values():
            problem = host_problem(config.base_url)
            if problem:
                raise EndpointNotAllowedError(f"endpoint {config.name}: {problem}")
        policy = key_env_policy()  # read at call time: the operator's allow-list as it is now
        # Providers first: a missing API key fails the run before any connection is opened.
        providers = {
            eid: provider_build(config, client=self.options.client, key_policy=policy)
            for eid, config in self.configs.items()
        }
        shared = SharedLimits.connect(url, slot_ttl_s=settings.COLLECTION_LIVENESS_SECONDS) if url else None
        callers = {}
        for eid, provider in providers.items():
            limits = shared.for_endpoint(self.configs[eid]) if shared else {}
            callers[eid] = EndpointCaller(provider, policy=self.options.retry_policy, **limits)
        return callers, shared

    async def collect(self) -> None:
        self._flush_wanted = asyncio.Event()
        self.callers, shared = self._callers_build()
        heartbeat = asyncio.create_task(self.heartbeat())
        writer = asyncio.create_task(self.writer())
        try:
            await run_bounded(
                self.claims(),
                self.process,
                max_pending=self.run.concurrency,
                on_result=self.record,
                should_stop=lambda: self.stop,
            )
        finally:
            self.stop = True
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)
            if self._prefetch is not None:
                await asyncio.gather(self._prefetch, return_exceptions=True)  # its items join held
            self._closing = True
            self._flush_wanted.set()
            # Not cancelled, awaited: the batch in the writer's hands is written before anything
            # is handed back (shielded, so even a cancelled collect() lets it finish).
            await asyncio.gather(asyncio.shield(writer), return_exceptions=True)
            if not writer.done():
                await asyncio.gather(writer, return_exceptions=True)
            for token, ids in list(self.held.items()):
                if ids:
                    await self._db(items_release, token=token, ids=sorted(ids))
            for caller in self.callers.values():
                await caller.provider.aclose()
            if shared is not None:
                await shared.aclose()


def run_collect(
    *, run_id: int, options: CollectorOptions | None = None, collector_id: uuid.UUID | None = None
) -> int:
    """Collect what is missing of ``run_id`` as one collector (one of the run's ``workers``).
    Returns the number of items this collector wrote."""
    run = CollectionRun.objects.filter(pk=run_id).first()
    if run is None or run.status != RunStatus.RUNNING:
        if collector_id is not None:
            collector_stop(collector_id=collector_id, written=0)  # dispatched, found nothing to do
        return 0
    options = options or CollectorOptions(retry_policy=RetryPolicy(max_attempts=run.max_attempts))
    collector = RunCollector(run, options, collector_id=collector_id)
    collector_start(collector_id=collector.collector_id, run_id=run_id)
    started = time.monotonic()
    try:
        asyncio.run(collector.collect())
    except (MissingApiKeyError, EndpointNotAllowedError) as error:
        run_fail(run_id=run_id, reason=str(error))
        return collector.written
    finally:
        for pool in (collector.db, collector.db_write):
            pool.submit(lambda: connection.close()).result()  # the thread's own connection
            pool.shutdown(wait=True)
        close_old_connections()
        collector_stop(collector_id=collector.collector_id, written=collector.written)
    run_complete_if_done(run_id=run_id)
    logger.info("run %s: wrote %s items in %.1fs", run_id, collector.written, time.monotonic() - started)
    return collector.written
