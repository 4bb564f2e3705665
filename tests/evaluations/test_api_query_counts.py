"""N+1 guards (issue 15): every list endpoint and list page of collection and scores makes as many
queries for 50 rows as for 1. The runs API reads every run's progress in its list query."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import User
from accounts.roles import Role
from annotations.models import Campaign
from evaluations.models import Collector, CollectorState, ResponseOutcome, RunStatus
from scoring.models import Report
from tests.annotations.factories import (
    EndpointFactory,
    RunFactory,
    guideline,
    response,
    response_rubric,
    run_target,
)
from tests.factories import QueryFactory, UserFactory

pytestmark = pytest.mark.django_db


def _run(maintainer: User, index: int) -> None:
    """A run with two targets, three responses, and (every other run) a live collector."""
    run = RunFactory(
        created_by=maintainer,
        status=RunStatus.RUNNING if index % 2 else RunStatus.COMPLETED,
        started_at=timezone.now() - timedelta(minutes=5),
    )
    query = QueryFactory()
    targets = [run_target(run, EndpointFactory()) for _ in range(2)]
    response(run, query, targets[0])
    response(run, query, targets[1], outcome=ResponseOutcome.CONTENT_FILTER)
    response(run, QueryFactory(), targets[0])
    if index % 2:
        Collector.objects.create(
            id=uuid.uuid4(),
            dispatched_at=timezone.now(),
            run=run,
            state=CollectorState.RUNNING,
            heartbeat_at=timezone.now(),
            requests_in_flight=3,
        )


def _campaign(maintainer: User, index: int) -> None:
    campaign = Campaign.objects.create(
        name=f"Campaign {index}",
        target="response",
        rubric=response_rubric(),
        guideline=guideline(),
        overlap=2,
        seed=f"seed-{index}",
        created_by=maintainer,
    )
    Report.objects.create(
        campaign=campaign,
        title=f"Report {index}",
        label_source="gold",
        seed=1,
        resamples=10,
        payload={},
        data_fingerprint="0" * 64,
        content_hash="0" * 64,
        created_by=maintainer,
    )


def _endpoint(maintainer: User, index: int) -> None:
    EndpointFactory()


LISTS: dict[str, tuple[str, Callable[[User, int], None]]] = {
    "runs API": ("/api/v1/runs/", _run),
    "runs page": ("/collection/", _run),
    "responses API": ("/api/v1/responses/", _run),
    "endpoints API": ("/api/v1/endpoints/", _endpoint),
    "registry page": ("/collection/registry/", _endpoint),
    "score campaigns API": ("/api/v1/score-campaigns/", _campaign),
    "score reports API": ("/api/v1/score-reports/", _campaign),
    "scores page": ("/scores/", _campaign),
}


def _queries(client: Client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        reply = client.get(url)
    assert reply.status_code == 200, reply.content[:300]
    return len(captured.captured_queries)


@pytest.mark.parametrize("name", list(LISTS))
def test_a_list_makes_as_many_queries_for_50_rows_as_for_1(name: str) -> None:
    url, make = LISTS[name]
    maintainer = UserFactory(role=Role.MAINTAINER)
    client = Client()
    client.force_login(maintainer)
    make(maintainer, 0)
    _queries(client, url)  # the session's first request stamps a privileged sign-in's start once
    one = _queries(client, url)
    for index in range(1, 50):
        make(maintainer, index)
    assert _queries(client, url) == one


def test_the_runs_api_progress_equals_the_runs_own(client: Client) -> None:
    """The list's progress (read in its query) is the detail's (computed for one run)."""
    maintainer = UserFactory(role=Role.MAINTAINER)
    for index in range(2):
        _run(maintainer, index)
    client.force_login(maintainer)
    listed = {run["id"]: run["progress"] for run in client.get("/api/v1/runs/").json()["results"]}
    for run_id, progress in listed.items():
        own = client.get(f"/api/v1/runs/{run_id}/").json()["progress"]
        for volatile in ("throughput_per_second", "eta_seconds"):
            progress.pop(volatile), own.pop(volatile)
        assert progress == own
    assert sorted((p["total"], p["finished"], p["collectors"]) for p in listed.values()) == [
        (3, 3, 0),
        (3, 3, 1),
    ]
