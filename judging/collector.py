"""Runs a judge run's items on one worker, through the collection engine's provider layer.

The same pieces as ``evaluations.collector``: one asyncio loop calls the judge endpoint through an
``EndpointCaller`` (adaptive concurrency, Retry-After, bounded retries), one thread does every
database call: a lazy claim stream leases batches (``judge_items_claim``) as the lanes need them;
finished items are buffered and written in batches under their lease token; a heartbeat renews
the leases this worker holds and notices a cancel; on stop, claimed items that never started are
handed back. A killed worker's leases expire and another worker (or the watchdog) takes them.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal
from typing import Any, TypeVar

from django.db import close_old_connections, connection
from django.utils import timezone

from evaluations.collector import _attempt_log, endpoint_config
from evaluations.models import RunStatus
from judging.models import JudgeItem, JudgeItemState, JudgeOutcome, JudgeRun
from judging.parsers import ParseFailure, parse
from judging.prompts import render_messages
from judging.services.runs import (
    ClaimedJudgeItem,
    JudgeItemResult,
    judge_items_claim,
    judge_items_finish,
    judge_items_release,
    judge_run_complete_if_done,
    judge_run_fail,
)
from providers import (
    ChatRequest,
    EndpointCaller,
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
HEARTBEAT_SECONDS = 1.0
FLUSH_EVERY_ITEMS = 200
FLUSH_EVERY_SECONDS = 0.5


class JudgeCollector:
    def __init__(
        self, run: JudgeRun, *, retry_policy: RetryPolicy, client: ProviderClient = "aiohttp"
    ) -> None:
        self.run = run
        self.template = run.config["template"]
        self.config = endpoint_config(run.config["endpoint"])
        self.parameters = dict(run.config.get("parameters") or {})
        self.retry_policy = retry_policy
        self.client = client
        self.db = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"judge{run.pk}-db")
        self.written = 0
        self.stop = False
        self.held: dict[uuid.UUID, set[int]] = {}  # lease token -> claimed items not yet judged
        self.buffer: list[tuple[uuid.UUID, JudgeItemResult]] = []

    async def _db(self, function: Callable[..., T], /, **kwargs: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.db, lambda: function(**kwargs))

    def request_for(self, item: ClaimedJudgeItem) -> ChatRequest:
        messages = render_messages(
            prompt=self.template["prompt"],
            system_prompt=self.template["system_prompt"],
            parser=self.template["parser"],
            query=item.query_text,
            response=item.response_text,
        )
        params = dict(self.parameters)
        if params.get("seed") is not None:
            params["seed"] = int(params["seed"]) + item.sample_index  # samples differ, each reproducible
        return ChatRequest(messages=messages, params=params, item_id=item.id)

    async def judge(self, caller: EndpointCaller, item: ClaimedJudgeItem) -> JudgeItemResult:
        call = await caller.call(self.request_for(item))
        last = call.outcome
        result = JudgeItemResult(
            id=item.id,
            outcome=JudgeOutcome.ERROR,
            request=dict(last.request),
            raw_output=last.text or "",
            latency_ms=round(last.latency_ms),
            attempts=len(call.attempts),
            errors=_attempt_log(call),
            input_tokens=call.usage.input_tokens,
            output_tokens=call.usage.output_tokens,
            cost=cost_for_endpoint(call.usage, self.config) or Decimal(0),
        )
        if call.terminal_reason:
            result.error_reason = call.terminal_reason
            return result
        if last.kind == OutcomeKind.CONTENT_FILTER:
            result.outcome, result.parse_error = (
                JudgeOutcome.PARSE_FAILURE,
                "no verdict: provider content filter",
            )
            return result
        try:
            parsed = parse(self.template["parser"], last.text or "")
        except ParseFailure as failure:
            result.outcome, result.parse_error = JudgeOutcome.PARSE_FAILURE, str(failure)
            return result
        wanted = set(self.template["fields"])
        result.outcome = JudgeOutcome.PARSED
        result.parsed = {k: v for k, v in parsed.values.items() if k in wanted}
        result.extra = parsed.extra or None
        return result

    # --- the claim stream, heartbeat and writer (as ``evaluations.collector.RunCollector``) ------
    async def claims(self) -> AsyncIterator[tuple[uuid.UUID, ClaimedJudgeItem]]:
        batch = max(2 * self.run.concurrency, 32)
        while not self.stop:
            claim = await self._db(judge_items_claim, run_id=self.run.pk, limit=batch)
            if not claim.items:
                return
            self.held[claim.token] = {item.id for item in claim.items}
            for item in claim.items:
                if self.stop:
                    return
                yield claim.token, item

    def _heartbeat_sync(self) -> str:
        """Renew the leases this worker holds and the run's heartbeat; the run's status."""
        now = timezone.now()
        tokens = [token for token, ids in self.held.items() if ids]
        if tokens:
            JudgeItem.objects.filter(lease_token__in=tokens, state=JudgeItemState.LEASED).update(
                lease_expires_at=now + timedelta(seconds=self.run.lease_seconds)
            )
        JudgeRun.objects.filter(pk=self.run.pk).update(heartbeat_at=now)
        return JudgeRun.objects.values_list("status", flat=True).get(pk=self.run.pk)

    async def heartbeat(self) -> None:
        while not self.stop:
            if await self._db(self._heartbeat_sync) != RunStatus.RUNNING:
                self.stop = True  # cancelled: no new item starts; the items in flight finish
                return
            await asyncio.sleep(HEARTBEAT_SECONDS)

    def _flush_sync(self, pending: list[tuple[uuid.UUID, JudgeItemResult]]) -> int:
        by_token: dict[uuid.UUID, list[JudgeItemResult]] = {}
        for token, result in pending:
            by_token.setdefault(token, []).append(result)
        return sum(judge_items_finish(token=token, results=results) for token, results in by_token.items())

    async def flush(self) -> None:
        pending, self.buffer = self.buffer, []
        if pending:
            self.written += await self._db(self._flush_sync, pending=pending)

    async def writer(self) -> None:
        # Ends on ``stop`` and is never cancelled: cancelling it mid-flush would cancel a database
        # write still queued in the executor, losing the results it carried (their rows would stay
        # leased until the lease expired, and be sent to the model again).
        while not self.stop:
            await asyncio.sleep(FLUSH_EVERY_SECONDS)
            await self.flush()

    def record(self, entry: tuple[uuid.UUID, JudgeItemResult]) -> Any:
        token, result = entry
        self.held.get(token, set()).discard(result.id)
        self.buffer.append(entry)
        if len(self.buffer) >= FLUSH_EVERY_ITEMS:
            return self.flush()
        return None

    async def collect(self) -> None:
        provider = provider_build(self.config, client=self.client)
        caller = EndpointCaller(provider, policy=self.retry_policy)

        async def process(entry: tuple[uuid.UUID, ClaimedJudgeItem]) -> tuple[uuid.UUID, JudgeItemResult]:
            token, item = entry
            return token, await self.judge(caller, item)

        background = [asyncio.create_task(self.heartbeat()), asyncio.create_task(self.writer())]
        try:
            await run_bounded(
                self.claims(),
                process,
                max_pending=self.run.concurrency,
                on_result=self.record,
                should_stop=lambda: self.stop,
            )
        finally:
            self.stop = True
            background[0].cancel()  # the heartbeat; the writer ends by itself after its last flush
            await asyncio.gather(*background, return_exceptions=True)
            await self.flush()
            for token, ids in self.held.items():
                if ids:
                    await self._db(judge_items_release, token=token, ids=sorted(ids))
            await provider.aclose()


def judge_run_collect(*, run_id: int, retry_policy: RetryPolicy | None = None) -> int:
    """Judge what is missing of ``run_id`` on this worker; returns the number of items written."""
    run = JudgeRun.objects.filter(pk=run_id).first()
    if run is None or run.status != RunStatus.RUNNING:
        return 0
    collector = JudgeCollector(run, retry_policy=retry_policy or RetryPolicy(max_attempts=run.max_attempts))
    try:
        asyncio.run(collector.collect())
    except MissingApiKeyError as error:
        judge_run_fail(run_id=run_id, reason=str(error))
        return collector.written
    finally:
        collector.db.submit(lambda: connection.close()).result()
        collector.db.shutdown(wait=True)
        close_old_connections()
    judge_run_complete_if_done(run_id=run_id)
    logger.info("judge run %s: wrote %s items", run_id, collector.written)
    return collector.written
