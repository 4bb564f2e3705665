"""Runs a judge run's items on one worker, through the collection engine's provider layer.

The same pieces as ``evaluations.collector``: one asyncio loop calls the judge endpoint through an
``EndpointCaller`` (adaptive concurrency, Retry-After, bounded retries), one thread does every
database call; batches are claimed with a lease token and written back under it. A heartbeat
renews the leases of the batch in flight and notices a cancel (no new batch is claimed); a killed
worker's leases expire and another worker (or the watchdog) takes the items.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any, TypeVar

from django.db import close_old_connections, connection
from django.utils import timezone

from evaluations.collector import _attempt_log, endpoint_config
from evaluations.models import RunStatus
from evaluations.providers import (
    ChatRequest,
    EndpointCaller,
    MissingApiKeyError,
    OutcomeKind,
    RetryPolicy,
    cost_for_endpoint,
    provider_build,
)
from judging.models import JudgeItem, JudgeItemState, JudgeOutcome, JudgeRun
from judging.parsers import ParseFailure, parse
from judging.prompts import render_messages
from judging.services.runs import (
    ClaimedJudgeItem,
    JudgeItemResult,
    judge_items_claim,
    judge_items_finish,
    judge_run_complete_if_done,
    judge_run_fail,
)

logger = logging.getLogger(__name__)
T = TypeVar("T")
HEARTBEAT_SECONDS = 1.0


class JudgeCollector:
    def __init__(self, run: JudgeRun, *, retry_policy: RetryPolicy, client: str = "aiohttp") -> None:
        self.run = run
        self.template = run.config["template"]
        self.config = endpoint_config(run.config["endpoint"])
        self.parameters = dict(run.config.get("parameters") or {})
        self.retry_policy = retry_policy
        self.client = client
        self.db = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"judge{run.pk}-db")
        self.written = 0
        self.token: uuid.UUID | None = None  # the lease token of the batch in flight
        self.stop = False

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
            cost=cost_for_endpoint(call.usage, self.config) or 0,
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

    def _status(self) -> str:
        return JudgeRun.objects.values_list("status", flat=True).get(pk=self.run.pk)

    def _heartbeat_sync(self) -> str:
        """Renew the leases of the batch in flight and the run's heartbeat; the run's status."""
        now = timezone.now()
        if self.token is not None:
            JudgeItem.objects.filter(lease_token=self.token, state=JudgeItemState.LEASED).update(
                lease_expires_at=now + timedelta(seconds=self.run.lease_seconds)
            )
        JudgeRun.objects.filter(pk=self.run.pk).update(heartbeat_at=now)
        return self._status()

    async def heartbeat(self) -> None:
        while not self.stop:
            if await self._db(self._heartbeat_sync) != RunStatus.RUNNING:
                self.stop = True  # paused or cancelled: no new batch; the batch in flight finishes
                return
            await asyncio.sleep(HEARTBEAT_SECONDS)

    async def collect(self) -> None:
        provider = provider_build(self.config, client=self.client)  # type: ignore[arg-type]
        caller = EndpointCaller(provider, policy=self.retry_policy)
        batch = max(2 * self.run.concurrency, 32)
        slots = asyncio.Semaphore(self.run.concurrency)

        async def bounded(item: ClaimedJudgeItem) -> JudgeItemResult:
            async with slots:
                return await self.judge(caller, item)

        beat = asyncio.create_task(self.heartbeat())
        try:
            while not self.stop and await self._db(self._status) == RunStatus.RUNNING:
                claim = await self._db(judge_items_claim, run_id=self.run.pk, limit=batch)
                if not claim.items:
                    break
                self.token = claim.token
                results = await asyncio.gather(*(bounded(item) for item in claim.items))
                self.written += await self._db(judge_items_finish, token=claim.token, results=results)
                self.token = None
        finally:
            self.stop = True
            beat.cancel()
            await asyncio.gather(beat, return_exceptions=True)
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
