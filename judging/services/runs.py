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
from django.core.exceptions import ValidationError
from django.db import connections, transaction
from django.db.models import Q
from django.db.models.functions import Now
from django.utils import timezone

from accounts.models import User
from accounts.policy import can_manage_judges, require
from annotations.models import Campaign, CampaignItem
from audit.actions import AuditAction
from audit.services import audit_record
from evaluations.leases import LocalWatchdog, db_clock, leased_rows_finish
from evaluations.models import CollectionRun, ModelResponse, ResponseOutcome, ResponseState, RunStatus
from evaluations.services.runs import broker_check, endpoint_snapshot
from judging.models import Judge, JudgeItem, JudgeItemState, JudgeOutcome, JudgeRun


def _require(actor: User) -> None:
    require(can_manage_judges, actor, message="Only maintainers run judges.")


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
    """Send a worker to ``run`` once the transaction commits: a Celery task, or with no broker a
    thread of this process (watched by the local watchdog, as collection's are)."""
    from judging.tasks import judge_run_execute

    run_id = run.pk
    if settings.COLLECTION_DISPATCH_IN_THREAD:

        def judge_in_thread() -> None:
            try:
                judge_run_execute.apply(args=(run_id,))
            finally:
                connections.close_all()  # this thread's own connections

        transaction.on_commit(
            lambda: threading.Thread(target=judge_in_thread, daemon=True, name=f"judge-run-{run_id}").start()
        )
        transaction.on_commit(judge_supervise_locally)
    else:
        transaction.on_commit(lambda: judge_run_execute.delay(run_id))


def judge_runs_restart_quiet(*, stale_after_seconds: int | None = None) -> list[int]:
    """The watchdog's work, for the beat task (``judging.judge_runs_watchdog``) and, with no broker,
    the local watchdog alike: send a worker to each running judge run whose workers went quiet
    (no heartbeat for ``COLLECTION_STALE_SECONDS``) with items left to judge, and complete a quiet
    run with nothing left (its worker died between its last write and the completion). Returns the
    runs sent a worker; lease tokens make a spare worker harmless."""
    stale = stale_after_seconds or settings.COLLECTION_STALE_SECONDS
    quiet = Q(heartbeat_at__lt=timezone.now() - timedelta(seconds=stale)) | Q(heartbeat_at__isnull=True)
    runs = list(JudgeRun.objects.filter(quiet, status=RunStatus.RUNNING).order_by("pk"))
    unfinished = set(
        JudgeItem.objects.filter(run__in=runs, state__in=[JudgeItemState.PENDING, JudgeItemState.LEASED])
        .order_by()
        .values_list("run_id", flat=True)
        .distinct()
    )
    for run in runs:
        if run.pk in unfinished:
            _dispatch(run)
        else:
            judge_run_complete_if_done(run_id=run.pk)
    return [run.pk for run in runs if run.pk in unfinished]


def _judge_runs_running() -> bool:
    return JudgeRun.objects.filter(status=RunStatus.RUNNING).exists()


# With no beat (the embedded default), the web process runs the judge-run watchdog itself while any
# judge run is running: collection's local watchdog (``evaluations.leases.LocalWatchdog``) with the
# beat task's work.
judge_watchdog = LocalWatchdog(
    "judge-watchdog", watching=_judge_runs_running, tick=lambda: judge_runs_restart_quiet()
)


def judge_supervise_locally() -> bool:
    """With no broker, make sure this process runs the judge-run watchdog on a thread while any
    judge run is running, so that a run whose thread died with its process (a server restart, a
    code reload) is picked up again. True when it started one."""
    return judge_watchdog.ensure()


def _transition(
    *,
    run: JudgeRun,
    actor: User | None,
    action: AuditAction,
    allowed: list[str],
    to: str,
    verb: str,
    **values: Any,
) -> JudgeRun:
    # Conditional UPDATE: two people pressing "pause" and "cancel" at once cannot both win.
    updated = JudgeRun.objects.filter(pk=run.pk, status__in=allowed).update(status=to, **values)
    run.refresh_from_db()
    if not updated:
        raise ValidationError(f"A {run.get_status_display().lower()} judge run cannot be {verb}.")
    audit_record(actor=actor, action=action, target=run, details={"status": to})
    return run


@transaction.atomic
def judge_run_start(*, run: JudgeRun, actor: User, dispatch: bool = True) -> JudgeRun:
    """Queued → running, and a worker sent to it (``dispatch=False``: the caller judges it)."""
    _require(actor)
    if dispatch:
        broker_check()
    now = timezone.now()
    run = _transition(
        run=run, actor=actor, action=AuditAction.JUDGE_RUN_START, allowed=[RunStatus.QUEUED],
        to=RunStatus.RUNNING, verb="started", started_at=now, heartbeat_at=now,
    )  # fmt: skip
    if dispatch:
        _dispatch(run)
    return run


@transaction.atomic
def judge_run_pause(*, run: JudgeRun, actor: User) -> JudgeRun:
    """Running → paused. The worker sees it at its next beat: no new item starts, the calls in
    flight finish and are written, the items it leased and never started are handed back."""
    _require(actor)
    return _transition(
        run=run, actor=actor, action=AuditAction.JUDGE_RUN_PAUSE, allowed=[RunStatus.RUNNING],
        to=RunStatus.PAUSED, verb="paused",
    )  # fmt: skip


@transaction.atomic
def judge_run_resume(*, run: JudgeRun, actor: User, dispatch: bool = True) -> JudgeRun:
    """Paused (or failed) → running; a worker judges what is still missing, nothing twice."""
    _require(actor)
    if dispatch:
        broker_check()
    run = _transition(
        run=run, actor=actor, action=AuditAction.JUDGE_RUN_RESUME,
        allowed=[RunStatus.PAUSED, RunStatus.FAILED], to=RunStatus.RUNNING, verb="resumed",
        heartbeat_at=timezone.now(), finished_at=None, failure_reason="",
    )  # fmt: skip
    if dispatch:
        _dispatch(run)
    return run


@transaction.atomic
def judge_run_cancel(*, run: JudgeRun, actor: User) -> JudgeRun:
    _require(actor)
    return _transition(
        run=run, actor=actor, action=AuditAction.JUDGE_RUN_CANCEL,
        allowed=[RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.PAUSED], to=RunStatus.CANCELLED,
        verb="cancelled", finished_at=timezone.now(),
    )  # fmt: skip


@transaction.atomic
def judge_run_retry_failed(*, run: JudgeRun, actor: User, dispatch: bool = True) -> int:
    """Put the items whose calls failed (attempts exhausted) back to pending and run again; the
    number of items. Their attempts and error log stay: the next finish adds its attempts and
    appends its errors. Parse failures are findings about the judge, not failed calls: they stay."""
    _require(actor)
    locked = JudgeRun.objects.select_for_update().filter(pk=run.pk).first()
    if locked is None or locked.status not in (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.PAUSED):
        status = locked.get_status_display().lower() if locked else "missing"
        raise ValidationError(
            "Retry failed items once the judge run has stopped (completed, failed or paused); "
            f"it is {status}."
        )
    if dispatch:
        broker_check()
    count = JudgeItem.objects.filter(run=run, outcome=JudgeOutcome.ERROR).update(
        state=JudgeItemState.PENDING, outcome=JudgeOutcome.NONE, error_reason="", finished_at=None,
        lease_token=None, lease_expires_at=None,
    )  # fmt: skip
    audit_record(actor=actor, action=AuditAction.JUDGE_RUN_RETRY_FAILED, target=run, details={"items": count})
    if count:
        JudgeRun.objects.filter(pk=run.pk).update(
            status=RunStatus.RUNNING, finished_at=None, failure_reason="", heartbeat_at=timezone.now()
        )
        run.refresh_from_db()
        if dispatch:
            _dispatch(run)
    return count


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


def judge_lease_seconds(run: JudgeRun) -> int:
    """How far ahead a claim or a beat leases: the liveness time, at most the run's lease (as
    ``evaluations.services.runs.lease_seconds_for``), so a dead worker's items return quickly."""
    return max(1, min(run.lease_seconds, settings.COLLECTION_LIVENESS_SECONDS))


def judge_items_claim(*, run_id: int, limit: int, now: Any = None) -> JudgeClaim:
    """Lease up to ``limit`` items that are pending or whose lease expired (expired ones first),
    skipping rows another worker is claiming at this instant (``FOR UPDATE SKIP LOCKED``). Leases
    run on the database clock unless ``now`` is given."""
    token = uuid.uuid4()
    with transaction.atomic():
        run = JudgeRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).first()
        if run is None:
            return JudgeClaim(token=token, items=[])
        current = now if now is not None else Now()
        seconds = judge_lease_seconds(run)
        expires = now + timedelta(seconds=seconds) if now is not None else db_clock(seconds)
        claimable = Q(state=JudgeItemState.PENDING) | Q(
            state=JudgeItemState.LEASED, lease_expires_at__lt=current
        )
        ids = list(
            JudgeItem.objects.filter(claimable, run_id=run_id)
            .order_by("state", "id")  # "leased" < "pending": a dead worker's items first
            .select_for_update(skip_locked=True)
            .values_list("id", flat=True)[:limit]
        )
        if ids:
            JudgeItem.objects.filter(pk__in=ids).update(
                state=JudgeItemState.LEASED, lease_token=token, lease_expires_at=expires
            )
        JudgeRun.objects.filter(pk=run_id).update(heartbeat_at=current)
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


def judge_items_finish(*, entries: Sequence[tuple[uuid.UUID, JudgeItemResult]], now: Any = None) -> int:
    """Write finished items, each only while it still holds its lease token; the rows written. One
    statement for the batch on PostgreSQL (``evaluations.leases``). Attempts add up and errors
    append, so an item retried after an error keeps the history of every call made for it."""
    if any(
        r.outcome not in (JudgeOutcome.PARSED, JudgeOutcome.PARSE_FAILURE, JudgeOutcome.ERROR)
        for _, r in entries
    ):
        raise ValueError("Every finished judge item needs an outcome.")
    return leased_rows_finish(
        model=JudgeItem, entries=entries, fields=_FIELDS, finished=JudgeItemState.FINISHED,
        leased=JudgeItemState.LEASED, now=now,
    )  # fmt: skip


def judge_collector_beat(*, run_id: int, tokens: Sequence[uuid.UUID], lease_seconds: int) -> str:
    """A judge collector is alive: renew the leases it holds and the run's heartbeat (database
    clock); the run's status, so a pause or cancel is seen within a beat."""
    with transaction.atomic():
        if tokens:
            JudgeItem.objects.filter(lease_token__in=list(tokens), state=JudgeItemState.LEASED).update(
                lease_expires_at=db_clock(lease_seconds)
            )
        JudgeRun.objects.filter(pk=run_id).update(heartbeat_at=Now())
        return JudgeRun.objects.values_list("status", flat=True).get(pk=run_id)


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
