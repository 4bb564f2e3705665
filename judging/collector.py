"""Runs a judge run's items on one worker: the collection engine with judge items.

``evaluations.lease_collector.LeaseCollector`` is the engine (a claim thread leasing the next batch
while the current one feeds the lanes, a write thread writing finished items in one statement per
batch, the heartbeat that renews leases and notices a pause or cancel, the hand-back of unwritten
items on stop, the endpoint under the operator's host and key rules and shared limits). This module
says what one judge item is: the fenced prompt sent, and the parse of the answer. A killed worker's
leases expire and another worker (or the watchdog) takes them.
"""

from __future__ import annotations

import logging
import time
import uuid
from decimal import Decimal
from typing import Any

from django.db import close_old_connections

from evaluations.endpoint_rules import EndpointNotAllowedError
from evaluations.lease_collector import CollectorOptions, LeaseCollector, attempt_log, endpoint_config
from evaluations.models import RunStatus
from judging.models import JudgeOutcome, JudgeRun
from judging.parsers import ParseFailure, parse
from judging.prompts import render_messages
from judging.services.runs import (
    ClaimedJudgeItem,
    JudgeItemResult,
    judge_collector_beat,
    judge_items_claim,
    judge_items_finish,
    judge_items_release,
    judge_lease_seconds,
    judge_run_complete_if_done,
    judge_run_fail,
)
from providers import (
    ChatRequest,
    EndpointCaller,
    MissingApiKeyError,
    OutcomeKind,
    RetryPolicy,
    cost_for_endpoint,
)
from providers.loops import event_loop_run

logger = logging.getLogger(__name__)


class JudgeCollector(LeaseCollector[ClaimedJudgeItem, JudgeItemResult]):
    label = "judge-run"

    def __init__(self, run: JudgeRun, options: CollectorOptions) -> None:
        snapshot = run.config["endpoint"]
        self.endpoint_id = int(snapshot["id"])
        self.config = endpoint_config(snapshot)
        super().__init__(
            run_id=run.pk,
            concurrency=run.concurrency,
            options=options,
            configs={self.endpoint_id: self.config},
        )
        self.run = run
        self.template: dict[str, Any] = run.config["template"]
        self.wanted = set(self.template["fields"])
        self.parameters = dict(run.config.get("parameters") or {})
        self.lease_seconds = judge_lease_seconds(run)

    # --- the lease protocol (``judging.services.runs``) ------------------------------------------
    def claim_sync(self, limit: int) -> tuple[uuid.UUID, list[ClaimedJudgeItem]]:
        claim = judge_items_claim(run_id=self.run.pk, limit=limit)
        return claim.token, claim.items

    def beat_sync(self, tokens: list[uuid.UUID]) -> str:
        return judge_collector_beat(run_id=self.run.pk, tokens=tokens, lease_seconds=self.lease_seconds)

    def write_sync(self, entries: list[tuple[uuid.UUID, JudgeItemResult]]) -> int:
        return judge_items_finish(entries=entries)

    def release_sync(self, token: uuid.UUID, ids: list[int]) -> int:
        return judge_items_release(token=token, ids=ids)

    # --- one item -------------------------------------------------------------------------------
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
            errors=attempt_log(call),
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
        result.outcome = JudgeOutcome.PARSED
        result.parsed = {k: v for k, v in parsed.values.items() if k in self.wanted}
        result.extra = parsed.extra or None
        return result

    async def process(self, entry: tuple[uuid.UUID, ClaimedJudgeItem]) -> tuple[uuid.UUID, JudgeItemResult]:
        token, item = entry
        return token, await self.judge(self.callers[self.endpoint_id], item)


def judge_run_collect(*, run_id: int, options: CollectorOptions | None = None) -> int:
    """Judge what is missing of ``run_id`` on this worker; returns the number of items written."""
    run = JudgeRun.objects.filter(pk=run_id).first()
    if run is None or run.status != RunStatus.RUNNING:
        return 0
    options = options or CollectorOptions(retry_policy=RetryPolicy(max_attempts=run.max_attempts))
    collector = JudgeCollector(run, options)
    started = time.monotonic()
    try:
        event_loop_run(collector.collect())
    except (MissingApiKeyError, EndpointNotAllowedError) as error:
        judge_run_fail(run_id=run_id, reason=str(error))
        return collector.written
    finally:
        collector.close_connections()
        close_old_connections()
    judge_run_complete_if_done(run_id=run_id)
    logger.info(
        "judge run %s: wrote %s items in %.1fs", run_id, collector.written, time.monotonic() - started
    )
    return collector.written
