"""Judge runs: creation, state changes, and the claim/finish protocol of the workers.

The same protocol as collection runs (``evaluations.services.runs``): items exist from creation
under a unique (run, response, sample) constraint; a claim stamps a batch with a fresh lease token
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL); a finish writes only rows still holding that token.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connections, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import User
from accounts.policy import can_manage_judges
from annotations.models import Campaign, CampaignItem
from audit.actions import AuditAction
from audit.services import audit_record
from evaluations.models import CollectionRun, ModelResponse, ResponseOutcome, ResponseState, RunStatus
from evaluations.services.runs import endpoint_snapshot
from judging.models import Judge, JudgeItem, JudgeItemState, JudgeOutcome, JudgeRun


def _require(actor: User | None) -> None:
    if actor is not None and not can_manage_judges(actor):
        raise PermissionDenied("Only maintainers run judges.")


def judge_snapshot(judge: Judge) -> dict[str, Any]:
    template = judge.template
    return {
        "judge": {"id": judge.pk, "slug": judge.slug, "name": judge.name},
        "endpoint": endpoint_snapshot(judge.endpoint),
        "template": {
            "id": template.pk,
            "slug": template.slug,
            "version": template.version,
            "hash": template.content_hash,
            "prompt": template.prompt,
            "system_prompt": template.system_prompt,
            "parser": template.parser,
            "fields": list(template.fields),
        },
        "parameters": judge.parameters,
    }


@transaction.atomic
def judge_run_create(
    *,
    actor: User,
    judge: Judge,
    collection_run: CollectionRun | None = None,
    campaign: Campaign | None = None,
    name: str = "",
    concurrency: int = 64,
    max_attempts: int = 5,
    lease_seconds: int = 300,
) -> JudgeRun:
    """A queued judge run with one pending item per (judged response, sample). Responses without
    text to judge (blocked, filtered, empty, failed) are counted as skipped, never judged."""
    _require(actor)
    if (collection_run is None) == (campaign is None):
        raise ValidationError("Judge either a collection run or a campaign's items.")
    if collection_run is not None:
        responses = ModelResponse.objects.filter(run=collection_run, state=ResponseState.FINISHED)
        over = f"run {collection_run.name}"
    else:
        assert campaign is not None
        ids = CampaignItem.objects.filter(campaign=campaign, response__isnull=False).values("response_id")
        responses = ModelResponse.objects.filter(pk__in=ids)
        over = f"campaign {campaign.name}"
    judged = list(
        responses.filter(outcome=ResponseOutcome.COLLECTED)
        .exclude(text="")
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    skipped = responses.count() - len(judged)
    if not judged:
        raise ValidationError("There is no response with text to judge.")
    run = JudgeRun(
        judge=judge,
        name=name or f"{judge.name} on {over}",
        collection_run=collection_run,
        campaign=campaign,
        template=judge.template,
        config=judge_snapshot(judge),
        samples=judge.samples,
        concurrency=concurrency,
        max_attempts=max_attempts,
        lease_seconds=lease_seconds,
        skipped_responses=skipped,
        created_by=actor,
    )
    run.full_clean()
    run.save()
    JudgeItem.objects.bulk_create(
        (JudgeItem(run=run, response_id=pk, sample_index=s) for pk in judged for s in range(judge.samples)),
        batch_size=2000,
    )
    audit_record(
        actor=actor,
        action=AuditAction.JUDGE_RUN_CREATE,
        target=run,
        details={"responses": len(judged), "skipped": skipped, "samples": judge.samples},
    )
    return run


def _dispatch(run: JudgeRun) -> None:
    from judging.tasks import judge_run_execute

    if settings.COLLECTION_DISPATCH_IN_THREAD:

        def judge_in_thread() -> None:
            try:
                judge_run_execute.apply(args=(run.pk,))
            finally:
                connections.close_all()

        transaction.on_commit(lambda: threading.Thread(target=judge_in_thread, daemon=True).start())
    else:
        transaction.on_commit(lambda: judge_run_execute.delay(run.pk))


def _transition(
    *, run: JudgeRun, actor: User | None, action: AuditAction, allowed: list[str], to: str, **values: Any
) -> JudgeRun:
    updated = JudgeRun.objects.filter(pk=run.pk, status__in=allowed).update(status=to, **values)
    run.refresh_from_db()
    if not updated:
        raise ValidationError(
            f"A {run.get_status_display().lower()} judge run cannot be {action.split('_')[-1]}ed."
        )
    audit_record(actor=actor, action=action, target=run, details={"status": to})
    return run


@transaction.atomic
def judge_run_start(*, run: JudgeRun, actor: User | None, dispatch: bool = True) -> JudgeRun:
    _require(actor)
    now = timezone.now()
    run = _transition(
        run=run,
        actor=actor,
        action=AuditAction.JUDGE_RUN_START,
        allowed=[RunStatus.QUEUED],
        to=RunStatus.RUNNING,
        started_at=now,
        heartbeat_at=now,
    )
    if dispatch:
        _dispatch(run)
    return run


@transaction.atomic
def judge_run_cancel(*, run: JudgeRun, actor: User | None) -> JudgeRun:
    _require(actor)
    return _transition(
        run=run, actor=actor, action=AuditAction.JUDGE_RUN_CANCEL,
        allowed=[RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.PAUSED], to=RunStatus.CANCELLED,
        finished_at=timezone.now(),
    )  # fmt: skip


@dataclass(frozen=True)
class ClaimedJudgeItem:
    id: int
    response_id: int
    sample_index: int
    query_text: str
    response_text: str


@dataclass(frozen=True)
class JudgeClaim:
    token: uuid.UUID
    items: list[ClaimedJudgeItem]


def judge_items_claim(*, run_id: int, limit: int, now: Any = None) -> JudgeClaim:
    now = now or timezone.now()
    token = uuid.uuid4()
    with transaction.atomic():
        run = JudgeRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).first()
        if run is None:
            return JudgeClaim(token=token, items=[])
        claimable = Q(state=JudgeItemState.PENDING) | Q(state=JudgeItemState.LEASED, lease_expires_at__lt=now)
        ids = list(
            JudgeItem.objects.filter(claimable, run_id=run_id)
            .order_by("id")
            .select_for_update(skip_locked=True)
            .values_list("id", flat=True)[:limit]
        )
        if ids:
            JudgeItem.objects.filter(pk__in=ids).update(
                state=JudgeItemState.LEASED,
                lease_token=token,
                lease_expires_at=now + timedelta(seconds=run.lease_seconds),
            )
        JudgeRun.objects.filter(pk=run_id).update(heartbeat_at=now)
        rows = (
            JudgeItem.objects.filter(pk__in=ids)
            .order_by("id")
            .values_list("id", "response_id", "sample_index", "response__query__text", "response__text")
        )
        return JudgeClaim(token=token, items=[ClaimedJudgeItem(*row) for row in rows])


@dataclass
class JudgeItemResult:
    id: int
    outcome: str
    request: dict[str, Any] = field(default_factory=dict)
    raw_output: str = ""
    parsed: dict[str, Any] | None = None
    extra: dict[str, Any] | None = None
    parse_error: str = ""
    latency_ms: int | None = None
    attempts: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    error_reason: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cost: Decimal = Decimal(0)


_FIELDS = (
    "outcome", "request", "raw_output", "parsed", "extra", "parse_error", "latency_ms", "attempts",
    "errors", "error_reason", "input_tokens", "output_tokens", "cost",
)  # fmt: skip


def judge_items_finish(*, token: uuid.UUID, results: Sequence[JudgeItemResult], now: Any = None) -> int:
    """Write finished items that still hold ``token``; returns how many were written."""
    if any(
        r.outcome not in (JudgeOutcome.PARSED, JudgeOutcome.PARSE_FAILURE, JudgeOutcome.ERROR)
        for r in results
    ):
        raise ValueError("Every finished judge item needs an outcome.")
    now = now or timezone.now()
    written = 0
    with transaction.atomic():
        for result in results:
            values = {name: getattr(result, name) for name in _FIELDS}
            written += JudgeItem.objects.filter(
                pk=result.id, state=JudgeItemState.LEASED, lease_token=token
            ).update(
                state=JudgeItemState.FINISHED,
                lease_token=None,
                lease_expires_at=None,
                finished_at=now,
                **values,
            )
    return written


def judge_items_release(*, token: uuid.UUID, ids: Sequence[int]) -> int:
    """Hand back leased items unjudged (a cancel or shutdown seen mid-batch)."""
    return JudgeItem.objects.filter(pk__in=ids, state=JudgeItemState.LEASED, lease_token=token).update(
        state=JudgeItemState.PENDING, lease_token=None, lease_expires_at=None
    )


def judge_run_complete_if_done(*, run_id: int) -> bool:
    with transaction.atomic():
        if JudgeItem.objects.filter(run_id=run_id).exclude(state=JudgeItemState.FINISHED).exists():
            return False
        done = JudgeRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(
            status=RunStatus.COMPLETED, finished_at=timezone.now()
        )
        if done:
            audit_record(actor=None, action=AuditAction.JUDGE_RUN_COMPLETE, target=JudgeRun(pk=run_id))
        return bool(done)


def judge_run_fail(*, run_id: int, reason: str) -> bool:
    with transaction.atomic():
        failed = JudgeRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).update(
            status=RunStatus.FAILED, finished_at=timezone.now(), failure_reason=reason
        )
        if failed:
            audit_record(
                actor=None,
                action=AuditAction.JUDGE_RUN_FAIL,
                target=JudgeRun(pk=run_id),
                details={"reason": reason},
            )
        return bool(failed)


def judge_runs_needing_workers(*, now: Any = None, stale_after_seconds: int = 30) -> list[int]:
    now = now or timezone.now()
    stale = Q(heartbeat_at__lt=now - timedelta(seconds=stale_after_seconds)) | Q(heartbeat_at__isnull=True)
    return list(
        JudgeRun.objects.filter(stale, status=RunStatus.RUNNING)
        .filter(items__state__in=[JudgeItemState.PENDING, JudgeItemState.LEASED])
        .values_list("pk", flat=True)
        .distinct()
    )
