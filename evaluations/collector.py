"""Runs a collection run's items as one collector: the bridge from the database to the provider layer.

A run is executed by one or more collectors (Celery tasks, on any workers), each claiming batches
of the shared rows. The engine (a claim thread with prefetch, a write thread, the heartbeat, the
hand-back on stop) is ``evaluations.lease_collector.LeaseCollector``, which judge runs share; this
module says what one collection item is: the lease protocol of ``evaluations.services.runs``
(``items_claim``, ``collector_beat``, ``items_finish_many``, ``items_release``) and the calls.

Pipelines compose callers: input guard → model → output guard. Each endpoint has one caller per
loop, so a guard shared by several pipelines is throttled as one endpoint.
"""

from __future__ import annotations

import logging
import time
import uuid
from decimal import Decimal
from typing import Any

from django.db import close_old_connections

from evaluations.endpoint_rules import EndpointNotAllowedError
from evaluations.guards import guard_messages, guard_output_parse
from evaluations.lease_collector import (
    CollectorOptions,
    LeaseCollector,
    attempt_log,
    endpoint_config,
)
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
    EndpointConfig,
    MissingApiKeyError,
    OutcomeKind,
    RetryPolicy,
    cost_for_endpoint,
)
from providers.loops import event_loop_run

logger = logging.getLogger(__name__)


def _guard_record(result: CallResult, config: EndpointConfig, guard_format: str) -> dict[str, Any]:
    record: dict[str, Any] = {
        "model": config.model,
        "endpoint": config.name,
        "attempts": len(result.attempts),
        "errors": attempt_log(result),
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


class RunCollector(LeaseCollector[ClaimedItem, ResponseResult]):
    label = "run"

    def __init__(
        self, run: CollectionRun, options: CollectorOptions, *, collector_id: uuid.UUID | None = None
    ) -> None:
        targets = {t.pk: t.config for t in run.targets.all()}
        configs: dict[int, EndpointConfig] = {}
        self.formats: dict[int, str] = {}
        for config in targets.values():
            for stage in ("input_guard", "model", "output_guard"):
                snapshot = config.get(stage)
                if snapshot:
                    configs[snapshot["id"]] = endpoint_config(snapshot)
                    self.formats[snapshot["id"]] = snapshot.get("guard_format", "")
        super().__init__(run_id=run.pk, concurrency=run.concurrency, options=options, configs=configs)
        self.run = run
        self.collector_id = collector_id or uuid.uuid4()
        self.targets = targets
        params = dict(run.parameters)
        self.system_prompt = params.pop("system_prompt", None)
        self.base_seed = params.pop("seed", None)
        self.params = params
        self.lease_seconds = lease_seconds_for(run)

    # --- the lease protocol (``evaluations.services.runs``) --------------------------------------
    def claim_sync(self, limit: int) -> tuple[uuid.UUID, list[ClaimedItem]]:
        claim = items_claim(run_id=self.run.pk, limit=limit)
        return claim.token, claim.items

    def beat_sync(self, tokens: list[uuid.UUID]) -> str:
        return collector_beat(
            collector_id=self.collector_id,
            run_id=self.run.pk,
            tokens=tokens,
            lease_seconds=self.lease_seconds,
            requests_in_flight=self.requests_in_flight(),
            written=self.written,
        )

    def write_sync(self, entries: list[tuple[uuid.UUID, ResponseResult]]) -> int:
        return items_finish_many(entries=entries)

    def release_sync(self, token: uuid.UUID, ids: list[int]) -> int:
        return items_release(token=token, ids=ids)

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
        result.errors = attempt_log(call)
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
        event_loop_run(collector.collect())
    except (MissingApiKeyError, EndpointNotAllowedError) as error:
        run_fail(run_id=run_id, reason=str(error))
        return collector.written
    finally:
        collector.close_connections()
        close_old_connections()
        collector_stop(collector_id=collector.collector_id, written=collector.written)
    run_complete_if_done(run_id=run_id)
    logger.info("run %s: wrote %s items in %.1fs", run_id, collector.written, time.monotonic() - started)
    return collector.written
