"""Reads for evaluations: registry lists, run progress, and the response browser."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, DateTimeField, ExpressionWrapper, Max, Q, QuerySet, Sum
from django.db.models.functions import Now
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
    total = sum(by_state.values())
    finished = by_state.get(ResponseState.FINISHED, 0)
    throughput = eta = None
    since = run.resumed_at or run.started_at
    if since and finished:
        recent = finished_rows.filter(finished_at__gte=since).aggregate(
            n=Count("id"), last=Max("finished_at")
        )
        end = recent["last"] if not run.is_active else now
        elapsed = (end - since).total_seconds() if end else 0
        if recent["n"] and elapsed > 0:
            throughput = recent["n"] / elapsed
            eta = (total - finished) / throughput if run.is_active else 0.0
    live = {"n": 0, "calls": 0}
    if run.is_active:
        live = collectors_live(run_id=run.pk).aggregate(n=Count("id"), calls=Sum("requests_in_flight"))
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
