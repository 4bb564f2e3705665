"""Pausing, resuming and retrying the failed items of judge runs (services, pages, API), the batched
finish they share with collection, the watchdog (a beat task, or with no broker a thread of the web
process, as collection's), and the audit's cache keyed by what the audit is computed from."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import ApiToken as Token
from accounts.roles import Role
from annotations.models import CampaignItem
from audit.models import AuditEvent
from core.actors import SYSTEM
from evaluations import services as collection
from evaluations.models import ModelResponse, RunStatus
from judging.collector import judge_run_collect
from judging.models import JudgeItem, JudgeOutcome, JudgeRun, JudgeTemplate
from judging.prompts import render_messages
from judging.selectors import JudgeSource, judge_audit_compute, judge_run_progress
from judging.services import (
    judge_create,
    judge_run_cancel,
    judge_run_create,
    judge_run_pause,
    judge_run_resume,
    judge_run_retry_failed,
)
from judging.services import runs as judge_run_services
from judging.services.runs import (
    JudgeItemResult,
    judge_items_claim,
    judge_items_finish,
    judge_runs_restart_quiet,
)
from mockmodel.app import MockServerConfig
from mockmodel.runner import MockServerThread
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _judge_on(world, server: MockServerThread, slug: str, *, max_concurrency: int = 4):
    endpoint = collection.endpoint_create(
        actor=SYSTEM, slug=slug, name=slug, base_url=server.openai_base_url, model_name="mock-judge",
        max_concurrency=max_concurrency, timeout_seconds=5,
    )  # fmt: skip
    template = JudgeTemplate.objects.get(slug="harmbench-unsafe", version=1)
    return judge_create(actor=world.maintainer, slug=slug, name=slug, endpoint=endpoint, template=template)


def _running(world, judge, **kwargs) -> JudgeRun:
    run = judge_run_create(actor=world.maintainer, judge=judge, collection_run=world.run, **kwargs)
    JudgeRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)  # judge_run_start minus dispatch
    run.refresh_from_db()
    return run


def _actions(run: JudgeRun) -> list[str]:
    return list(
        AuditEvent.objects.filter(target_type="judging.judgerun", target_id=str(run.pk))
        .order_by("pk")
        .values_list("action", flat=True)
    )


def test_pause_mid_run_then_resume_judges_every_item_exactly_once(world) -> None:
    with MockServerThread(MockServerConfig(latency_ms=100)) as slow:
        # 90 items, two at a time, 100 ms each: about 4.5 s, several heartbeats long.
        run = _running(world, _judge_on(world, slow, "slow-judge", max_concurrency=2), concurrency=2)
        done: list[int] = []
        worker = threading.Thread(target=lambda: done.append(judge_run_collect(run_id=run.pk)))
        worker.start()
        deadline = time.monotonic() + 20
        while JudgeItem.objects.filter(run=run, state="finished").count() < 8:
            assert time.monotonic() < deadline, "the judge run did not start"
            time.sleep(0.05)
        judge_run_pause(run=run, actor=world.maintainer)
        worker.join(30)
        assert not worker.is_alive()

        run.refresh_from_db()
        progress = judge_run_progress(run=run)
        assert run.status == RunStatus.PAUSED
        assert 8 <= progress.finished < 90  # stopped early: the calls in flight finished, no new one
        assert JudgeItem.objects.filter(run=run, state="leased").count() == 0  # the rest handed back
        assert done == [progress.finished]
        assert judge_run_collect(run_id=run.pk) == 0  # a paused run is not judged

        with pytest.raises(ValidationError, match="paused judge run cannot be paused"):
            judge_run_pause(run=run, actor=world.maintainer)
        judge_run_resume(run=run, actor=world.maintainer, dispatch=False)
        assert judge_run_collect(run_id=run.pk) == 90 - progress.finished
        run.refresh_from_db()
        assert run.status == RunStatus.COMPLETED
        assert judge_run_progress(run=run).parsed == 90
        assert slow.stats()["requests"] == 90  # no item sent twice
    assert _actions(run) == [
        "judge_run_create", "judge_run_pause", "judge_run_resume", "judge_run_complete",
    ]  # fmt: skip


def test_retry_failed_sends_only_the_failed_items_again_and_keeps_their_history(world) -> None:
    failing = list(ModelResponse.objects.filter(run=world.run).select_related("query").order_by("pk")[:3])
    template = JudgeTemplate.objects.get(slug="harmbench-unsafe", version=1)
    prompts = {
        render_messages(
            prompt=template.prompt, system_prompt=template.system_prompt, parser=template.parser,
            query=r.query.text, response=r.text,
        )[-1]["content"]: ["500"]
        for r in failing
    }  # fmt: skip
    with MockServerThread(MockServerConfig(latency_ms=1, script=prompts)) as server:
        run = _running(world, _judge_on(world, server, "flaky-judge"), max_attempts=1)
        judge_run_collect(run_id=run.pk)
        run.refresh_from_db()
        assert run.status == RunStatus.COMPLETED
        progress = judge_run_progress(run=run)
        assert (progress.errors, progress.parsed) == (3, 87)
        failed = {i.response_id for i in JudgeItem.objects.filter(run=run, outcome=JudgeOutcome.ERROR)}
        assert failed == {r.pk for r in failing}

        assert judge_run_retry_failed(run=run, actor=world.maintainer, dispatch=False) == 3
        run.refresh_from_db()
        assert run.status == RunStatus.RUNNING
        with pytest.raises(ValidationError, match="once the judge run has stopped"):
            judge_run_retry_failed(run=run, actor=world.maintainer, dispatch=False)
        assert judge_run_collect(run_id=run.pk) == 3
        run.refresh_from_db()
        assert run.status == RunStatus.COMPLETED
        assert judge_run_progress(run=run).parsed == 90
        assert server.stats()["requests"] == 93  # 90 first calls and the 3 retried, nothing else
    for item in JudgeItem.objects.filter(run=run, response_id__in=failed):
        assert item.attempts == 2  # the failed call and the retry
        assert [e["http_status"] for e in item.errors] == [500]  # the first round's error kept
        assert item.error_reason == ""
    assert judge_run_retry_failed(run=run, actor=world.maintainer, dispatch=False) == 0
    assert _actions(run)[-2:] == ["judge_run_complete", "judge_run_retry_failed"]
    for role in (Role.CLINICIAN, Role.ADJUDICATOR, Role.RESEARCHER):
        with pytest.raises(PermissionDenied):
            judge_run_retry_failed(run=run, actor=UserFactory(role=role), dispatch=False)
    with pytest.raises(PermissionDenied):
        judge_run_pause(run=run, actor=None)  # type: ignore[arg-type]


def test_the_batched_finish_is_one_statement_guarded_by_the_lease(world) -> None:
    judge = world.judge("mock-judge", "harmbench-unsafe")
    run = _running(world, judge)
    claim = judge_items_claim(run_id=run.pk, limit=20)
    stale = claim.items[0]
    JudgeItem.objects.filter(pk=stale.id).update(lease_token=uuid.uuid4())  # its lease moved on
    JudgeItem.objects.filter(pk=claim.items[1].id).update(attempts=1, errors=[{"body": "earlier"}])
    entries = [
        (claim.token, JudgeItemResult(
            id=item.id, outcome=JudgeOutcome.PARSED, parsed={"unsafe": False}, raw_output="No",
            attempts=1, errors=[{"body": "now"}] if item.id == claim.items[1].id else [],
        ))
        for item in claim.items
    ]  # fmt: skip
    with CaptureQueriesContext(connection) as queries:
        written = judge_items_finish(entries=entries)
    updates = [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().upper().startswith("UPDATE")]
    assert written == 19
    if connection.vendor == "postgresql":
        assert len(updates) == 1
        assert "FROM jsonb_to_recordset(" in updates[0]
    assert JudgeItem.objects.get(pk=stale.id).state == "leased"
    kept = JudgeItem.objects.get(pk=claim.items[1].id)
    assert (kept.attempts, [e["body"] for e in kept.errors]) == (2, ["earlier", "now"])
    one = JudgeItem.objects.get(pk=claim.items[2].id)
    assert (one.state, one.outcome, one.parsed, one.lease_token) == (
        "finished",
        "parsed",
        {"unsafe": False},
        None,
    )


def test_run_actions_on_the_page_and_the_api(world, client) -> None:
    judge = world.judge("mock-judge", "harmbench-unsafe")
    run = _running(world, judge)
    client.force_login(world.maintainer)
    page = client.get(f"/judges/runs/{run.pk}/")
    assert b'id="pause-run"' in page.content
    assert b'id="resume-run"' not in page.content
    response = client.post(f"/judges/runs/{run.pk}/pause/")
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == RunStatus.PAUSED
    page = client.get(f"/judges/runs/{run.pk}/")
    assert b'id="resume-run"' in page.content
    assert b'id="pause-run"' not in page.content
    assert client.get(f"/judges/runs/{run.pk}/pause/").status_code == 405

    token = Token.objects.create(user=world.maintainer)
    api = {"HTTP_AUTHORIZATION": f"Token {token.key}"}
    conflict = client.post(f"/api/v1/judge-runs/{run.pk}/pause/", **api)
    assert conflict.status_code == 409
    assert "cannot be paused" in conflict.json()["detail"]
    retried = client.post(f"/api/v1/judge-runs/{run.pk}/retry-failed/", **api)
    assert (retried.status_code, retried.json()["items"]) == (200, 0)
    cancelled = client.post(f"/api/v1/judge-runs/{run.pk}/cancel/", **api)
    assert (cancelled.status_code, cancelled.json()["status"]) == (200, "cancelled")
    assert client.post(f"/api/v1/judge-runs/{run.pk}/resume/", **api).status_code == 409
    client.logout()
    clinician = Token.objects.create(user=world.clinicians[0])
    assert (
        client.post(
            f"/api/v1/judge-runs/{run.pk}/pause/", HTTP_AUTHORIZATION=f"Token {clinician.key}"
        ).status_code
        == 403
    )
    with pytest.raises(ValidationError):
        judge_run_cancel(run=run, actor=world.maintainer)


def _quiet(run: JudgeRun, *, held: int = 0) -> None:
    """As if the run's worker died five minutes ago (with the process it ran in), holding ``held``
    items under a lease that has since expired."""
    five_minutes_ago = timezone.now() - timedelta(minutes=5)
    if held:
        claim = judge_items_claim(run_id=run.pk, limit=held)
        JudgeItem.objects.filter(lease_token=claim.token).update(lease_expires_at=five_minutes_ago)
    JudgeRun.objects.filter(pk=run.pk).update(heartbeat_at=five_minutes_ago)


def test_the_watchdog_restarts_quiet_runs_and_completes_the_finished_ones(world, settings) -> None:
    """The beat task's work, which the local watchdog runs too: a worker for a quiet run with items
    left (held ones included), none for a live run, completion for a quiet run with nothing left."""
    settings.COLLECTION_DISPATCH_IN_THREAD = False  # the tests' eager Celery runs the task in place
    with MockServerThread(MockServerConfig(latency_ms=1)) as server:
        judge = _judge_on(world, server, "watched-judge")
        quiet = _running(world, judge)
        _quiet(quiet, held=4)
        live = _running(world, judge)
        JudgeRun.objects.filter(pk=live.pk).update(heartbeat_at=timezone.now())
        done = _running(world, judge)
        judge_run_collect(run_id=done.pk)
        JudgeRun.objects.filter(pk=done.pk).update(status=RunStatus.RUNNING, finished_at=None)
        _quiet(done)  # its worker died between its last write and the completion
        requests = server.stats()["requests"]

        assert judge_runs_restart_quiet() == [quiet.pk]

        statuses = dict(
            JudgeRun.objects.filter(pk__in=[quiet.pk, live.pk, done.pk]).values_list("pk", "status")
        )
        assert statuses == {
            quiet.pk: RunStatus.COMPLETED,
            live.pk: RunStatus.RUNNING,
            done.pk: RunStatus.COMPLETED,
        }
        assert judge_run_progress(run=quiet).parsed == 90
        assert judge_run_progress(run=live).finished == 0
        assert server.stats()["requests"] - requests == 90  # the quiet run's items, each once
    assert judge_runs_restart_quiet() == []  # the live run is not quiet yet


def test_without_a_broker_a_watched_judge_run_whose_thread_died_is_picked_up_again(
    world, settings, client
) -> None:
    settings.COLLECTION_DISPATCH_IN_THREAD = True  # bin/serve: no REDIS_URL, no beat
    settings.COLLECTION_LIVENESS_SECONDS = 1
    settings.COLLECTION_STALE_SECONDS = 1
    settings.COLLECTION_WATCHDOG_SECONDS = 0.3
    with MockServerThread(MockServerConfig(latency_ms=1)) as server:
        run = _running(world, _judge_on(world, server, "embedded-judge"))
        _quiet(run, held=4)  # its thread died with the previous server process, holding 4 items
        before = judge_run_services.judge_watchdog.thread
        assert before is None or not before.is_alive()  # nothing watches it yet
        client.force_login(world.maintainer)

        page = client.get(f"/judges/runs/{run.pk}/")  # someone watches the run
        assert page.status_code == 200
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and JudgeRun.objects.get(pk=run.pk).status == RunStatus.RUNNING:
            time.sleep(0.2)
        watchdog = judge_run_services.judge_watchdog.thread
        assert watchdog is not None
        assert watchdog is not before
        watchdog.join(5)  # it ends by itself once no judge run is running

        run.refresh_from_db()
        assert run.status == RunStatus.COMPLETED
        assert not watchdog.is_alive()
        assert judge_run_progress(run=run).parsed == 90
        assert JudgeItem.objects.filter(run=run).exclude(state="finished").count() == 0
        assert server.stats()["requests"] == 90  # every item judged once, the 4 held ones included
    assert _actions(run) == ["judge_run_create", "judge_run_complete"]


def test_the_audit_is_cached_by_what_it_is_computed_from(world) -> None:
    cache.clear()
    campaign = world.labelled_campaign()
    run = world.judged_run(world.judge("mock-judge-lenient", "harmbench-unsafe"))
    source = JudgeSource(f"run:{run.pk}", run.name, ["unsafe"], run.judge, run)

    def audit_and_reads():
        with CaptureQueriesContext(connection) as queries:
            result = judge_audit_compute(
                user=world.maintainer, campaign=campaign, source=source, resamples=100
            )
        reads = [q["sql"] for q in queries.captured_queries if '"parsed"' in q["sql"]]
        return result.audits["unsafe"], reads

    first, reads = audit_and_reads()
    assert len(reads) == 1  # the verdicts read once, joined with the responses' details
    again, reads = audit_and_reads()
    assert reads == []  # nothing changed: from the cache
    assert again.overall.kappa.value == first.overall.kappa.value
    assert again.overall.n == first.overall.n == 90
    assert first.self_consistency is None  # one sample per response: no self-consistency to show

    # A clinician value changes (as an adjudication would): a new audit, computed again.
    item = CampaignItem.objects.filter(campaign=campaign).order_by("pk").first()
    CampaignItem.objects.filter(pk=item.pk).update(gold_values=None, gold_source="")
    changed, reads = audit_and_reads()
    assert len(reads) == 1
    assert changed.overall.n == 89
    # A verdict changes: computed again.
    JudgeItem.objects.filter(run=run).update(finished_at=None)
    _, reads = audit_and_reads()
    assert len(reads) == 1
