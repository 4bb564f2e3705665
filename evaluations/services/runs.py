"""Collection runs: creation, state changes, and the claim/finish protocol the workers follow.

Items are created with the run, so the unique (run, query, target, sample) constraint holds the
whole plan from the start: workers only ever move existing rows pending → leased → finished.
A claim stamps a batch with a fresh lease token; a finish only writes rows that still carry that
token, so a worker whose lease expired (killed, paused, slow) can never overwrite another's work.
"""

import collections
import functools
import itertools
import logging
import math
import os
import random
import socket
import threading
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypedDict, Unpack

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connections, transaction
from django.db.models import Q, QuerySet
from django.db.models.functions import Now
from django.utils import timezone

from accounts.models import User
from audit.actions import AuditAction
from audit.services import audit_record
from evaluations.leases import LocalWatchdog, db_clock, leased_rows_finish
from evaluations.models import (
    CollectionRun,
    Collector,
    CollectorState,
    Endpoint,
    ModelResponse,
    Pipeline,
    ResponseOutcome,
    ResponseState,
    RunStatus,
    RunTarget,
)
from evaluations.selectors import collectors_live
from querybank.models import Query

GENERATION_PARAMETERS = ("temperature", "top_p", "max_tokens", "seed", "system_prompt")
logger = logging.getLogger(__name__)


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
    workers: int | None = None,
) -> CollectionRun:
    """Create a queued run with one pending item per (query, target, sample). ``workers``: how
    many collector tasks execute it at once (default: the COLLECTION_WORKERS_PER_RUN setting)."""
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
        workers=workers,
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


_collection_threads: list[threading.Thread] = []


def broker_check() -> None:
    """Refuse (ValidationError) when runs go through a broker that does not answer: better than a
    run committed as running that no worker will ever hear of."""
    if settings.COLLECTION_DISPATCH_IN_THREAD or settings.CELERY_TASK_ALWAYS_EAGER:
        return
    import redis

    try:
        redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=2, socket_timeout=2).ping()
    except (redis.RedisError, OSError) as error:
        raise ValidationError(
            f"The task broker does not answer ({type(error).__name__}): start Redis, or unset "
            "REDIS_URL to collect in this process. Nothing was changed."
        ) from error


def run_workers(run: CollectionRun) -> int:
    return run.workers or settings.COLLECTION_WORKERS_PER_RUN


def collectors_dispatch(*, run: CollectionRun, count: int) -> list[uuid.UUID]:
    """Record ``count`` collectors as dispatched (the record that they were sent, by the database
    clock) and send their tasks once the transaction commits."""
    from evaluations.tasks import run_execute

    ids = [uuid.uuid4() for _ in range(count)]
    Collector.objects.bulk_create(
        Collector(id=cid, run=run, dispatched_at=Now(), heartbeat_at=Now()) for cid in ids
    )
    if settings.COLLECTION_DISPATCH_IN_THREAD:
        # No broker (the embedded default): collect beside the web process instead of inside it.
        # A command that started the run waits for these threads (collection_threads_wait).
        def collect_in_thread(collector_id: uuid.UUID) -> None:
            try:
                run_execute.apply(args=(run.pk, str(collector_id)))
            finally:
                connections.close_all()  # this thread's own connections

        def start() -> None:
            for cid in ids:
                thread = threading.Thread(target=collect_in_thread, args=(cid,), daemon=True)
                _collection_threads.append(thread)
                thread.start()

        transaction.on_commit(start)
    else:
        transaction.on_commit(lambda: [run_execute.delay(run.pk, str(cid)) for cid in ids])
    return ids


def _collection_running() -> bool:
    return CollectionRun.objects.filter(status=RunStatus.RUNNING).exists()


# The embedded default has no beat: the web process runs the collection watchdog itself, for as
# long as any run is running (``evaluations.leases.LocalWatchdog``, shared with judge runs).
collection_watchdog = LocalWatchdog(
    "collection-watchdog", watching=_collection_running, tick=lambda: runs_dispatch_missing()
)


def collection_supervise_locally() -> bool:
    """With no broker, make sure this process runs the collection watchdog on a thread while any
    run is running, so that a run whose collector thread died with its process (a server restart,
    a code reload) is picked up again. True when it started one."""
    return collection_watchdog.ensure()


def collection_threads_wait(timeout: float | None = None) -> bool:
    """Wait for the collections this process runs on threads (no broker); True when all ended."""
    for thread in list(_collection_threads):
        thread.join(timeout)
    return not any(thread.is_alive() for thread in _collection_threads)


def _dispatch(run: CollectionRun) -> None:
    collectors_dispatch(run=run, count=_workers_wanted(run))
    if settings.COLLECTION_DISPATCH_IN_THREAD:
        transaction.on_commit(collection_supervise_locally)


def _workers_wanted(run: CollectionRun) -> int:
    # On threads, several collectors of one run in one process would share its cores: one.
    return 1 if settings.COLLECTION_DISPATCH_IN_THREAD else run_workers(run)


class _RunStamps(TypedDict, total=False):
    """The times a status change sets beside the status (None clears one)."""

    started_at: datetime | None
    resumed_at: datetime | None
    heartbeat_at: datetime | None
    finished_at: datetime | None


def _transition(
    *,
    run: CollectionRun,
    actor: User | None,
    action: AuditAction,
    allowed: Iterable[str],
    to: str,
    **stamps: Unpack[_RunStamps],
) -> CollectionRun:
    # Conditional UPDATE: two people pressing "pause" and "cancel" at once cannot both win.
    updated = CollectionRun.objects.filter(pk=run.pk, status__in=list(allowed)).update(status=to, **stamps)
    run.refresh_from_db()
    if not updated:
        raise ValidationError(f"A {run.get_status_display().lower()} run cannot be {action.split('_')[1]}d.")
    audit_record(actor=actor, action=action, target=run, details={"status": to})
    return run


@transaction.atomic
def run_start(*, run: CollectionRun, actor: User | None, dispatch: bool = True) -> CollectionRun:
    """Queued → running. ``dispatch=False`` when the caller collects the run itself (seed_demo)."""
    if dispatch:
        broker_check()
    run = _transition(
        run=run,
        actor=actor,
        action=AuditAction.RUN_START,
        allowed=[RunStatus.QUEUED],
        to=RunStatus.RUNNING,
        started_at=timezone.now(),
        resumed_at=timezone.now(),
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
    broker_check()
    run = _transition(
        run=run,
        actor=actor,
        action=AuditAction.RUN_RESUME,
        allowed=[RunStatus.PAUSED, RunStatus.FAILED],
        to=RunStatus.RUNNING,
        heartbeat_at=timezone.now(),
        resumed_at=timezone.now(),
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
    """Put items that ended in error back to pending and run again. Their attempts and error
    bodies stay: the next finish adds its attempts and appends its errors (``items_finish``)."""
    if run.status not in (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.PAUSED):
        raise ValidationError("Retry failed items once the run has stopped (completed, failed or paused).")
    broker_check()
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
            status=RunStatus.RUNNING, finished_at=None, heartbeat_at=timezone.now(), resumed_at=timezone.now()
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
class ItemClaim:
    token: uuid.UUID
    items: list[ClaimedItem]


def lease_seconds_for(run: CollectionRun) -> int:
    """How far ahead a claim or a heartbeat leases: the liveness time, at most the run's lease."""
    return max(1, min(run.lease_seconds, settings.COLLECTION_LIVENESS_SECONDS))


def _claimable(now: Any) -> Q:
    return Q(state=ResponseState.PENDING) | Q(state=ResponseState.LEASED, lease_expires_at__lt=now)


def items_claim(*, run_id: int, limit: int, now: Any = None) -> ItemClaim:
    """Lease up to ``limit`` items that are pending or whose lease expired, skipping rows that
    another worker is claiming at this instant (``FOR UPDATE SKIP LOCKED`` on PostgreSQL).

    Targets are interleaved (fair scheduling): each target gets an equal share of the batch, and
    the share of targets that have run out goes to the others, so every endpoint is fed at once
    rather than one after another. Expired leases (a quiet collector's items) come before pending
    items, so they are back in work at the next claim. Leases run on the database clock unless
    ``now`` is given."""
    token = uuid.uuid4()
    with transaction.atomic():
        run = CollectionRun.objects.filter(pk=run_id, status=RunStatus.RUNNING).first()
        if run is None:
            return ItemClaim(token=token, items=[])
        seconds = lease_seconds_for(run)
        current = now if now is not None else Now()
        expires = now + timedelta(seconds=seconds) if now is not None else db_clock(seconds)
        target_ids = list(RunTarget.objects.filter(run_id=run_id).values_list("pk", flat=True))
        random.shuffle(target_ids)  # no target always first in a batch
        CollectionRun.objects.filter(pk=run_id).update(heartbeat_at=current)
        if connections[ModelResponse.objects.db].vendor == "postgresql":
            return ItemClaim(
                token=token, items=_claim_postgresql(run_id, target_ids, limit, token, now, seconds)
            )
        per_target: dict[int, list[int]] = {t: [] for t in target_ids}
        active = list(target_ids)
        wanted = limit
        while wanted > 0 and active:
            share = math.ceil(wanted / len(active))
            still: list[int] = []
            for target_id in active:
                got = list(
                    ModelResponse.objects.filter(_claimable(current), run_id=run_id, target_id=target_id)
                    .exclude(pk__in=per_target[target_id])
                    .order_by("state", "id")  # "leased" < "pending": a dead collector's items first
                    .select_for_update(skip_locked=True)
                    .values_list("id", flat=True)[: min(share, wanted)]
                )
                per_target[target_id] += got
                wanted -= len(got)
                if len(got) == share:
                    still.append(target_id)
                if wanted <= 0:
                    break
            active = still
        ids = [i for group in itertools.zip_longest(*per_target.values()) for i in group if i is not None]
        if ids:
            ModelResponse.objects.filter(pk__in=ids).update(
                state=ResponseState.LEASED, lease_token=token, lease_expires_at=expires
            )
        texts = dict(ModelResponse.objects.filter(pk__in=ids).values_list("id", "query__text"))
        rows = {
            row[0]: row
            for row in ModelResponse.objects.filter(pk__in=ids).values_list(
                "id", "query_id", "target_id", "sample_index"
            )
        }
        return ItemClaim(token=token, items=[ClaimedItem(*rows[i], texts[i]) for i in ids])


def _claim_postgresql(
    run_id: int, target_ids: list[int], limit: int, token: uuid.UUID, now: Any, seconds: int
) -> list[ClaimedItem]:
    """``items_claim`` on PostgreSQL: each round is ONE statement that picks an equal share of
    every target still active (``FOR UPDATE SKIP LOCKED`` in a lateral subquery per target), keeps
    the first ``wanted`` of them round-robin, leases them and returns them with their query's text.
    The ORM version takes 2 + one query per target per round and builds each in Python on the
    collector's claim thread, whose GIL time the event loop pays for (docs/collection.md)."""
    table = ModelResponse._meta.db_table
    queries = Query._meta.db_table
    current = "%(now)s" if now is not None else "statement_timestamp()"
    expires = (
        "%(expires)s" if now is not None else "statement_timestamp() + make_interval(secs => %(seconds)s)"
    )
    sql = f"""
        WITH picked AS (
            SELECT c.id, t.pos, row_number() OVER (PARTITION BY t.pos ORDER BY c.state, c.id) AS turn
            FROM unnest(%(targets)s::bigint[]) WITH ORDINALITY AS t(target_id, pos)
            CROSS JOIN LATERAL (
                SELECT m.id, m.state FROM {table} m
                WHERE m.run_id = %(run)s AND m.target_id = t.target_id
                  AND (m.state = %(pending)s OR (m.state = %(leased)s AND m.lease_expires_at < {current}))
                ORDER BY m.state, m.id
                LIMIT %(share)s
                FOR UPDATE OF m SKIP LOCKED
            ) c
            ORDER BY turn, t.pos
            LIMIT %(wanted)s
        ), claimed AS (
            UPDATE {table} r SET state = %(leased)s, lease_token = %(token)s, lease_expires_at = {expires}
            FROM picked WHERE r.id = picked.id
            RETURNING r.id, r.query_id, r.target_id, r.sample_index, picked.turn, picked.pos
        )
        SELECT c.id, c.query_id, c.target_id, c.sample_index, q.text
        FROM claimed c JOIN {queries} q ON q.id = c.query_id
        ORDER BY c.turn, c.pos
    """  # noqa: S608 - table names from the models' metadata; every value is a parameter
    params: dict[str, Any] = {
        "run": run_id,
        "pending": str(ResponseState.PENDING),
        "leased": str(ResponseState.LEASED),
        "token": token,
        "now": now,
        "expires": now + timedelta(seconds=seconds) if now is not None else None,
        "seconds": seconds,
    }
    items: list[ClaimedItem] = []
    active, wanted = list(target_ids), limit
    with connections[ModelResponse.objects.db].cursor() as cursor:
        while wanted > 0 and active:
            share = math.ceil(wanted / len(active))
            cursor.execute(sql, {**params, "targets": active, "share": share, "wanted": wanted})
            got = [ClaimedItem(*row) for row in cursor.fetchall()]
            items += got
            wanted -= len(got)
            per_target = collections.Counter(item.target_id for item in got)
            # A target that gave less than its share has run out; its share goes to the others.
            active = [t for t in active if per_target[t] >= share]
    return items


@dataclass
class ResponseResult:
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


def items_finish(*, token: uuid.UUID, results: Sequence[ResponseResult], now: Any = None) -> int:
    """Write finished items that still hold ``token``; returns how many were written."""
    return items_finish_many(entries=[(token, result) for result in results], now=now)


def items_finish_many(*, entries: Sequence[tuple[uuid.UUID, ResponseResult]], now: Any = None) -> int:
    """Write finished items, each only if it still holds its lease token; returns the rows written.

    Attempts add up and errors append, so an item retried after an error (``run_retry_failed``)
    keeps the history of every call made for it. On PostgreSQL the whole batch is one
    ``UPDATE … FROM jsonb_to_recordset(…)``; elsewhere one UPDATE per row in one transaction."""
    if any(r.outcome in ("", None) for _, r in entries):
        raise ValueError("Every finished item needs an outcome.")
    return leased_rows_finish(
        model=ModelResponse, entries=entries, fields=_RESULT_FIELDS, finished=ResponseState.FINISHED,
        leased=ResponseState.LEASED, now=now,
    )  # fmt: skip


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


# --- collectors: one heartbeat row each ---------------------------------------------------------
def collector_start(*, collector_id: uuid.UUID, run_id: int) -> None:
    """A collector task begins: its dispatched row (or a new one, for a task sent by hand) runs."""
    fields = {
        "state": CollectorState.RUNNING,
        "hostname": socket.gethostname()[:200],
        "pid": os.getpid(),
        "started_at": Now(),
        "heartbeat_at": Now(),
    }
    if not Collector.objects.filter(pk=collector_id).update(**fields):
        Collector.objects.create(id=collector_id, run_id=run_id, dispatched_at=Now(), **fields)


def collector_beat(
    *,
    collector_id: uuid.UUID,
    run_id: int,
    tokens: Sequence[uuid.UUID],
    lease_seconds: int,
    requests_in_flight: int = 0,
    written: int = 0,
) -> str:
    """The collector is alive: stamp its row, renew the leases it holds (database clock), and
    return the run's status so that it sees a pause or cancel within a beat."""
    with transaction.atomic():
        Collector.objects.filter(pk=collector_id).update(
            heartbeat_at=Now(), requests_in_flight=requests_in_flight, written=written
        )
        if tokens:
            ModelResponse.objects.filter(lease_token__in=list(tokens), state=ResponseState.LEASED).update(
                lease_expires_at=db_clock(lease_seconds)
            )
        CollectionRun.objects.filter(pk=run_id).update(heartbeat_at=Now())
        return CollectionRun.objects.values_list("status", flat=True).get(pk=run_id)


def collector_stop(*, collector_id: uuid.UUID, written: int) -> None:
    Collector.objects.filter(pk=collector_id).update(
        state=CollectorState.STOPPED, stopped_at=Now(), requests_in_flight=0, written=written
    )


def runs_dispatch_missing(
    *, liveness_seconds: int | None = None, grace_seconds: int | None = None
) -> list[tuple[int, list[uuid.UUID]]]:
    """The watchdog's work: for each running run, dispatch only the collectors that are missing
    (its ``workers`` less the live ones and those dispatched and not yet started) and record them.

    Each run row is locked while it is counted (``SKIP LOCKED``): a second beat running at the
    same moment skips the run, and one running after sees the collectors the first recorded.
    Runs with nothing left unfinished are completed here, so a run whose last collector died
    between its last write and its completion does not stay running."""
    liveness = liveness_seconds or settings.COLLECTION_LIVENESS_SECONDS
    grace = grace_seconds or settings.COLLECTION_DISPATCH_GRACE_SECONDS
    dispatched: list[tuple[int, list[uuid.UUID]]] = []
    run_ids = list(CollectionRun.objects.filter(status=RunStatus.RUNNING).values_list("pk", flat=True))
    for run_id in run_ids:
        with transaction.atomic():
            run = (
                CollectionRun.objects.select_for_update(skip_locked=True)
                .filter(pk=run_id, status=RunStatus.RUNNING)
                .first()
            )
            if run is None:
                continue
            rows = ModelResponse.objects.filter(run_id=run_id)
            if not rows.exclude(state=ResponseState.FINISHED).exists():
                transaction.on_commit(functools.partial(run_complete_if_done, run_id=run_id))
                continue
            # Quiet collectors are marked stopped, so their rows say what happened.
            Collector.objects.filter(
                run_id=run_id, state=CollectorState.RUNNING, heartbeat_at__lt=db_clock(-liveness)
            ).update(state=CollectorState.STOPPED, stopped_at=Now())
            Collector.objects.filter(
                run_id=run_id, state=CollectorState.DISPATCHED, dispatched_at__lt=db_clock(-grace)
            ).update(state=CollectorState.STOPPED, stopped_at=Now())
            live = collectors_live(run_id=run_id, liveness_seconds=liveness).count()
            waiting = Collector.objects.filter(run_id=run_id, state=CollectorState.DISPATCHED).count()
            claimable = rows.filter(_claimable(Now())).exists()
            if not claimable and live + waiting > 0:
                continue  # what is left is leased by live collectors: more would find nothing
            missing = _workers_wanted(run) - live - waiting
            if missing > 0:
                ids = collectors_dispatch(run=run, count=missing)
                dispatched.append((run_id, ids))
                logger.info("run %s: %s live, %s waiting; dispatched %s", run_id, live, waiting, missing)
    return dispatched
