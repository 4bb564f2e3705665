"""Reads for evaluations: registry lists, run progress, and the response browser."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import (
    Count,
    DateTimeField,
    ExpressionWrapper,
    F,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.functions import Coalesce, Now
from django.utils import timezone

from accounts.models import User
from accounts.policy import can_manage_collection
from evaluations.models import (
    CollectionRun,
    Collector,
    CollectorState,
    Endpoint,
    ModelResponse,
    Pipeline,
    ResponseOutcome,
    ResponseState,
)


def endpoint_list_for_user(*, user: User) -> QuerySet[Endpoint]:
    return Endpoint.objects.all() if can_manage_collection(user) else Endpoint.objects.none()


def pipeline_list_for_user(*, user: User) -> QuerySet[Pipeline]:
    if not can_manage_collection(user):
        return Pipeline.objects.none()
    return Pipeline.objects.select_related("input_guard", "model", "output_guard")


def run_list_for_user(*, user: User) -> QuerySet[CollectionRun]:
    if not can_manage_collection(user):
        return CollectionRun.objects.none()
    return (
        CollectionRun.objects.select_related("created_by")
        # Both counts in one GROUP BY: the run list's mini progress bars need them for every row.
        .annotate(
            item_count=Count("responses"),
            finished_count=Count("responses", filter=Q(responses__state=ResponseState.FINISHED)),
        )
        .order_by("-created_at", "-id")  # GROUP BY drops Meta.ordering
    )


def run_get_for_user(*, user: User, run_id: int) -> CollectionRun:
    return run_list_for_user(user=user).get(pk=run_id)


@dataclass(frozen=True)
class RunProgress:
    total: int
    finished: int
    in_flight: int  # leased items (claimed by a collector, being called or queued in it)
    pending: int
    by_outcome: dict[str, int]
    cost: Decimal
    throughput_per_second: float | None  # since the run last went to running
    eta_seconds: float | None
    requests_in_flight: int = 0  # model calls open, as the live collectors last reported
    collectors: int = 0  # live collectors

    @property
    def leased(self) -> int:
        return self.in_flight

    @property
    def percent(self) -> float:
        return 100.0 * self.finished / self.total if self.total else 100.0


def collectors_live(*, run_id: int, liveness_seconds: int | None = None) -> QuerySet[Collector]:
    """Collectors of the run that beat within the liveness time (by the database clock)."""
    seconds = liveness_seconds or settings.COLLECTION_LIVENESS_SECONDS
    cutoff = ExpressionWrapper(Now() - timedelta(seconds=seconds), output_field=DateTimeField())
    return Collector.objects.filter(run_id=run_id, state=CollectorState.RUNNING, heartbeat_at__gte=cutoff)


def _progress(
    run: CollectionRun,
    *,
    by_state: dict[str, int],
    by_outcome: dict[str, int],
    cost: Decimal | None,
    recent: int,
    last: datetime | None,
    live: dict[str, int | None],
    now: datetime,
) -> RunProgress:
    total = sum(by_state.values())
    finished = by_state.get(ResponseState.FINISHED, 0)
    throughput = eta = None
    since = run.resumed_at or run.started_at
    if since and finished:
        end = last if not run.is_active else now
        elapsed = (end - since).total_seconds() if end else 0
        if recent and elapsed > 0:
            throughput = recent / elapsed
            eta = (total - finished) / throughput if run.is_active else 0.0
    if not run.is_active:
        live = {"n": 0, "calls": 0}
    ordered = {o.value: by_outcome.get(o.value, 0) for o in ResponseOutcome if o.value}
    return RunProgress(
        total=total,
        finished=finished,
        in_flight=by_state.get(ResponseState.LEASED, 0),
        pending=by_state.get(ResponseState.PENDING, 0),
        by_outcome=ordered,
        cost=cost or Decimal(0),
        throughput_per_second=throughput,
        eta_seconds=eta,
        requests_in_flight=live["calls"] or 0,
        collectors=live["n"] or 0,
    )


def run_progress(*, run: CollectionRun, now: datetime | None = None) -> RunProgress:
    """Counts by state and outcome, cost so far, requests in flight (live collectors' last beat),
    and throughput and ETA since the run last went to running, so paused time does not count."""
    now = now or timezone.now()
    rows = ModelResponse.objects.filter(run=run).values("state", "outcome").annotate(n=Count("id"))
    by_state: dict[str, int] = {}
    by_outcome: dict[str, int] = {}
    for row in rows:
        by_state[row["state"]] = by_state.get(row["state"], 0) + row["n"]
        if row["outcome"]:
            by_outcome[row["outcome"]] = row["n"]
    finished_rows = ModelResponse.objects.filter(run=run, state=ResponseState.FINISHED)
    cost = finished_rows.aggregate(cost=Sum("cost"))["cost"]
    recent: dict[str, Any] = {"n": 0, "last": None}
    since = run.resumed_at or run.started_at
    if since and by_state.get(ResponseState.FINISHED):
        recent = finished_rows.filter(finished_at__gte=since).aggregate(
            n=Count("id"), last=Max("finished_at")
        )
    live: dict[str, int | None] = {"n": 0, "calls": 0}
    if run.is_active:
        live = collectors_live(run_id=run.pk).aggregate(n=Count("id"), calls=Sum("requests_in_flight"))
    return _progress(
        run,
        by_state=by_state,
        by_outcome=by_outcome,
        cost=cost,
        recent=recent["n"] or 0,
        last=recent["last"],
        live=live,
        now=now,
    )


_OUTCOMES = [o.value for o in ResponseOutcome if o.value]
_STATES = [s.value for s in ResponseState]


def run_list_with_progress(*, user: User) -> QuerySet[CollectionRun]:
    """``run_list_for_user`` with every figure of ``run_progress`` computed in the list query: one
    GROUP BY over the responses and two subqueries for the live collectors, whatever the number of
    runs (``run_progress_of`` reads them back)."""
    finished = Q(responses__state=ResponseState.FINISHED)
    since = Coalesce(F("resumed_at"), F("started_at"))
    recent = finished & Q(responses__finished_at__gte=since)
    seconds = settings.COLLECTION_LIVENESS_SECONDS
    cutoff = ExpressionWrapper(Now() - timedelta(seconds=seconds), output_field=DateTimeField())
    live = Collector.objects.filter(
        run_id=OuterRef("pk"), state=CollectorState.RUNNING, heartbeat_at__gte=cutoff
    ).values("run_id")
    return run_list_for_user(user=user).annotate(
        **{
            f"progress_state_{state}": Count("responses", filter=Q(responses__state=state))
            for state in _STATES
        },
        **{
            f"progress_outcome_{outcome}": Count("responses", filter=Q(responses__outcome=outcome))
            for outcome in _OUTCOMES
        },
        progress_cost=Sum("responses__cost", filter=finished),
        progress_recent=Count("responses", filter=recent),
        progress_last=Max("responses__finished_at", filter=recent),
        progress_collectors=Subquery(live.annotate(n=Count("id")).values("n")[:1]),
        progress_calls=Subquery(live.annotate(calls=Sum("requests_in_flight")).values("calls")[:1]),
    )


def run_progress_of(run: CollectionRun, *, now: datetime | None = None) -> RunProgress:
    """The progress of a run read by ``run_list_with_progress`` (else computed for it alone)."""
    if not hasattr(run, "progress_recent"):
        return run_progress(run=run, now=now)
    annotated = run.__dict__  # the list query's annotations (django-stubs cannot see them)
    return _progress(
        run,
        by_state={state: annotated[f"progress_state_{state}"] for state in _STATES},
        by_outcome={outcome: annotated[f"progress_outcome_{outcome}"] for outcome in _OUTCOMES},
        cost=annotated["progress_cost"],
        recent=annotated["progress_recent"],
        last=annotated["progress_last"],
        live={"n": annotated["progress_collectors"], "calls": annotated["progress_calls"]},
        now=now or timezone.now(),
    )


def response_list_for_user(
    *,
    user: User,
    run_id: int | None = None,
    target_id: int | None = None,
    category_slug: str = "",
    outcome: str = "",
) -> QuerySet[ModelResponse]:
    if not can_manage_collection(user):
        return ModelResponse.objects.none()
    responses = ModelResponse.objects.select_related("query", "query__category", "target", "run")
    if run_id:
        responses = responses.filter(run_id=run_id)
    if target_id:
        responses = responses.filter(target_id=target_id)
    if category_slug:
        responses = responses.filter(query__category__slug=category_slug)
    if outcome:
        responses = responses.filter(outcome=outcome)
    return responses


def response_get_for_user(*, user: User, run_id: int, response_id: int) -> ModelResponse:
    return response_list_for_user(user=user, run_id=run_id).get(pk=response_id)
