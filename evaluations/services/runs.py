"""Collection runs: creation, state changes, and the claim/finish protocol the workers follow.

Items are created with the run, so the unique (run, query, target, sample) constraint holds the
whole plan from the start: workers only ever move existing rows pending → leased → finished.
A claim stamps a batch with a fresh lease token; a finish only writes rows that still carry that
token, so a worker whose lease expired (killed, paused, slow) can never overwrite another's work.
"""

import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connections, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import User
from audit.actions import AuditAction
from audit.services import audit_record
from evaluations.models import (
    CollectionRun,
    Endpoint,
    ModelResponse,
    Pipeline,
    ResponseOutcome,
    ResponseState,
    RunStatus,
    RunTarget,
)
from querybank.models import Query

GENERATION_PARAMETERS = ("temperature", "top_p", "max_tokens", "seed", "system_prompt")


def endpoint_snapshot(endpoint: Endpoint) -> dict[str, Any]:
    """The endpoint as a run sees it. Holds the key's variable name, never a key."""
    return {
        "id": endpoint.pk,
        "slug": endpoint.slug,
        "name": endpoint.name,
        "kind": endpoint.kind,
        "base_url": endpoint.base_url,
        "model_name": endpoint.model_name,
        "family": endpoint.family,
        "guard_format": endpoint.guard_format,
        "api_key_env": endpoint.api_key_env,
        "default_parameters": endpoint.default_parameters,
        "max_concurrency": endpoint.max_concurrency,
        "requests_per_minute": endpoint.requests_per_minute,
        "tokens_per_minute": endpoint.tokens_per_minute,
        "timeout_seconds": endpoint.timeout_seconds,
        "price_input_per_million": str(endpoint.price_input_per_million),
        "price_output_per_million": str(endpoint.price_output_per_million),
    }


def _target_for(run: CollectionRun, target: Endpoint | Pipeline) -> RunTarget:
    if isinstance(target, Pipeline):
        config = {
            "input_guard": endpoint_snapshot(target.input_guard) if target.input_guard else None,
            "model": endpoint_snapshot(target.model),
            "output_guard": endpoint_snapshot(target.output_guard) if target.output_guard else None,
        }
        return RunTarget(run=run, pipeline=target, label=target.name, config=config)
    return RunTarget(
        run=run,
        endpoint=target,
        label=target.name,
        config={"input_guard": None, "model": endpoint_snapshot(target), "output_guard": None},
    )


@transaction.atomic
def run_create(
    *,
    actor: User,
    name: str,
    queries: QuerySet[Query],
    targets: Sequence[Endpoint | Pipeline],
    samples: int = 1,
    parameters: dict[str, Any] | None = None,
    selection: dict[str, Any] | None = None,
    concurrency: int = 64,
    max_attempts: int = 5,
    lease_seconds: int = 300,
) -> CollectionRun:
    """Create a queued run with one pending item per (query, target, sample)."""
    parameters = {k: v for k, v in (parameters or {}).items() if v not in (None, "")}
    unknown = set(parameters) - set(GENERATION_PARAMETERS)
    if unknown:
        raise ValidationError({"parameters": f"Unknown generation parameters: {', '.join(sorted(unknown))}"})
    if not targets:
        raise ValidationError({"targets": "Choose at least one endpoint or pipeline."})
    for target in targets:
        if isinstance(target, Endpoint) and target.guard_format:
            raise ValidationError({"targets": f"{target} is a guard: put it in a pipeline instead."})
    query_ids = list(queries.order_by("pk").values_list("pk", flat=True))
    if not query_ids:
        raise ValidationError({"queries": "The selection holds no queries."})

    run = CollectionRun(
        name=name,
        selection=selection or {},
        samples=samples,
        parameters=parameters,
        concurrency=concurrency,
        max_attempts=max_attempts,
        lease_seconds=lease_seconds,
        created_by=actor,
    )
    run.full_clean()
    run.save()
    run_targets = RunTarget.objects.bulk_create([_target_for(run, t) for t in targets])
    ModelResponse.objects.bulk_create(
        (
            ModelResponse(run=run, query_id=query_id, target=target, sample_index=sample)
            for target in run_targets
            for query_id in query_ids
            for sample in range(samples)
        ),
        batch_size=2000,
    )
    audit_record(
        actor=actor,
        action=AuditAction.RUN_CREATE,
        target=run,
        details={"queries": len(query_ids), "targets": [t.label for t in run_targets], "samples": samples},
    )
    return run


def _dispatch(run: CollectionRun) -> None:
    from evaluations.tasks import run_execute

    if settings.COLLECTION_DISPATCH_IN_THREAD:
        # No broker (the embedded default): collect beside the web process instead of inside it.
        def collect_in_thread() -> None:
            try:
                run_execute.apply(args=(run.pk,))
            finally:
                connections.close_all()  # this thread's own connections

        transaction.on_commit(lambda: threading.Thread(target=collect_in_thread, daemon=True).start())
    else:
        transaction.on_commit(lambda: run_execute.delay(run.pk))


def _transition(
    *,
    run: CollectionRun,
    actor: User | None,
    action: AuditAction,
    allowed: Iterable[str],
    to: str,
    **fields: Any,
) -> CollectionRun:
    # Conditional UPDATE: two people pressing "pause" and "cancel" at once cannot both win.
    updated = CollectionRun.objects.filter(pk=run.pk, status__in=list(allowed)).update(status=to, **fields)
    run.refresh_from_db()
    if not updated:
        raise ValidationError(f"A {run.get_status_display().lower()} run cannot be {action.split('_')[1]}d.")
    audit_record(actor=actor, action=action, target=run, details={"status": to})
    return run


@transaction.atomic
def run_start(*, run: CollectionRun, actor: User | None, dispatch: bool = True) -> CollectionRun:
    """Queued → running. ``dispatch=False`` when the caller collects the run itself (seed_demo)."""
    run = _transition(
        run=run,
        actor=actor,
        action=AuditAction.RUN_START,
        allowed=[RunStatus.QUEUED],
        to=RunStatus.RUNNING,
        started_at=timezone.now(),
        heartbeat_at=timezone.now(),
    )
    if dispatch:
        _dispatch(run)
    return run


@transaction.atomic
def run_pause(*, run: CollectionRun, actor: User | None) -> CollectionRun:
    # Workers see the status between batches and stop; items they hold finish or expire back.
    return _transition(
        run=run, actor=actor, action=AuditAction.RUN_PAUSE, allowed=[RunStatus.RUNNING], to=RunStatus.PAUSED
    )


@transaction.atomic
def run_resume(*, run: CollectionRun, actor: User | None) -> CollectionRun:
    run = _transition(
        run=run,
        actor=actor,
        action=AuditAction.RUN_RESUME,
        allowed=[RunStatus.PAUSED, RunStatus.FAILED],
        to=RunStatus.RUNNING,
        heartbeat_at=timezone.now(),
        finished_at=None,
    )
    _dispatch(run)
    return run


@transaction.atomic
def run_cancel(*, run: CollectionRun, actor: User | None) -> CollectionRun:
    return _transition(
        run=run,
        actor=actor,
        action=AuditAction.RUN_CANCEL,
        allowed=[RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.PAUSED],
        to=RunStatus.CANCELLED,
        finished_at=timezone.now(),
    )


@transaction.atomic
def run_retry_failed(*, run: CollectionRun, actor: User | None) -> int:
    """Put items that ended in error back to pending (their error history kept) and run again."""
    if run.status not in (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.PAUSED):
        raise ValidationError("Retry failed items once the run has stopped (completed, failed or paused).")
    count = ModelResponse.objects.filter(run=run, outcome=ResponseOutcome.ERROR).update(
        state=ResponseState.PENDING,
        outcome=ResponseOutcome.NONE,
        error_reason="",
        finished_at=None,
        lease_token=None,
        lease_expires_at=None,
    )
    audit_record(actor=actor, action=AuditAction.RUN_RETRY_FAILED, target=run, details={"items": count})
    if count:
        CollectionRun.objects.filter(pk=run.pk).update(
            status=RunStatus.RUNNING, finished_at=None, heartbeat_at=timezone.now()
        )
        run.refresh_from_db()
        _dispatch(run)
    return count


@dataclass(frozen=True)
class ClaimedItem:
    id: int
    query_id: int
    target_id: int
    sample_index: int
    query_text: str


@dataclass(frozen=True)
class Claim:
    token: uuid.UUID
    items: list[ClaimedItem]


def items_claim(*, run_id: int, limit: int, now: Any = None) -> Claim:
    """Lease up to ``limit`` items that are pending or whose lease expired, skipping rows that
    another worker is claiming at this instant (``FOR UPDATE SKIP LOCKED`` on PostgreSQL)."""
    now = now or timezone.now()
    token = uuid.uuid4()
    with transaction.atomic():
        run = CollectionRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).first()
        if run is None:
            return Claim(token=token, items=[])
        claimable = Q(state=ResponseState.PENDING) | Q(state=ResponseState.LEASED, lease_expires_at__lt=now)
        ids = list(
            ModelResponse.objects.filter(claimable, run_id=run_id)
            .order_by("id")
            .select_for_update(skip_locked=True)
            .values_list("id", flat=True)[:limit]
        )
        if ids:
            ModelResponse.objects.filter(pk__in=ids).update(
                state=ResponseState.LEASED,
                lease_token=token,
                lease_expires_at=now + timedelta(seconds=run.lease_seconds),
            )
        CollectionRun.objects.filter(pk=run_id).update(heartbeat_at=now)
        rows = (
            ModelResponse.objects.filter(pk__in=ids)
            .order_by("id")
            .values_list("id", "query_id", "target_id", "sample_index", "query__text")
        )
        return Claim(token=token, items=[ClaimedItem(*row) for row in rows])


@dataclass
class ItemResult:
    """What a worker learnt about one item. ``outcome`` is a terminal ResponseOutcome value."""

    id: int
    outcome: str
    request: dict[str, Any] = field(default_factory=dict)
    resolved_model: str = ""
    text: str = ""
    finish_reason: str = ""
    raw_reply: Any = None
    input_tokens: int = 0
    output_tokens: int = 0
    latency_ms: int | None = None
    attempts: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    error_reason: str = ""
    cost: Decimal = Decimal(0)
    input_guard: dict[str, Any] | None = None
    output_guard: dict[str, Any] | None = None


_RESULT_FIELDS = (
    "outcome",
    "request",
    "resolved_model",
    "text",
    "finish_reason",
    "raw_reply",
    "input_tokens",
    "output_tokens",
    "latency_ms",
    "attempts",
    "errors",
    "error_reason",
    "cost",
    "input_guard",
    "output_guard",
)


def items_finish(*, token: uuid.UUID, results: Sequence[ItemResult], now: Any = None) -> int:
    """Write finished items that still hold ``token``; returns how many were written."""
    if any(r.outcome in ("", None) for r in results):
        raise ValueError("Every finished item needs an outcome.")
    now = now or timezone.now()
    written = 0
    with transaction.atomic():
        for result in results:
            values = {name: getattr(result, name) for name in _RESULT_FIELDS}
            written += ModelResponse.objects.filter(
                pk=result.id, state=ResponseState.LEASED, lease_token=token
            ).update(
                state=ResponseState.FINISHED,
                lease_token=None,
                lease_expires_at=None,
                finished_at=now,
                **values,
            )
    return written


def items_release(*, token: uuid.UUID, ids: Sequence[int]) -> int:
    """Hand back leased items unprocessed (pause or cancel seen mid-batch)."""
    return ModelResponse.objects.filter(pk__in=ids, state=ResponseState.LEASED, lease_token=token).update(
        state=ResponseState.PENDING, lease_token=None, lease_expires_at=None
    )


def run_complete_if_done(*, run_id: int) -> bool:
    """Mark a running run completed when no item is left unfinished. Safe to call from any worker."""
    with transaction.atomic():
        unfinished = (
            ModelResponse.objects.filter(run_id=run_id).exclude(state=ResponseState.FINISHED).exists()
        )
        if unfinished:
            return False
        done = CollectionRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(
            status=RunStatus.COMPLETED, finished_at=timezone.now()
        )
        if done:
            audit_record(actor=None, action=AuditAction.RUN_COMPLETE, target=CollectionRun(pk=run_id))
        return bool(done)


def run_fail(*, run_id: int, reason: str) -> bool:
    """Stop a running run that cannot go on (e.g. an API key variable unset on the worker)."""
    with transaction.atomic():
        failed = CollectionRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(
            status=RunStatus.FAILED, finished_at=timezone.now(), failure_reason=reason
        )
        if failed:
            audit_record(
                actor=None,
                action=AuditAction.RUN_FAIL,
                target=CollectionRun(pk=run_id),
                details={"reason": reason},
            )
        return bool(failed)


def runs_needing_workers(*, now: Any = None, stale_after_seconds: int = 30) -> list[int]:
    """Running runs whose workers have gone quiet (killed, or their task lost with the broker)."""
    now = now or timezone.now()
    stale = Q(heartbeat_at__lt=now - timedelta(seconds=stale_after_seconds)) | Q(heartbeat_at__isnull=True)
    return list(
        CollectionRun.objects.filter(stale, status=RunStatus.RUNNING)
        .filter(responses__state__in=[ResponseState.PENDING, ResponseState.LEASED])
        .values_list("pk", flat=True)
        .distinct()
    )
