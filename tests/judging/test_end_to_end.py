"""End to end on PostgreSQL and Redis with real Celery workers and the mock in its own process:
collect -> judge (with 429s and 500s on the judge) -> clinicians label -> audit, figures checked
against scikit-learn on pairs read straight from the database. A worker killed mid-judge-run is
replaced (the watchdog) and every (run, response, sample) row is still written exactly once."""

from __future__ import annotations

import pytest
from celery import Celery
from sklearn.metrics import cohen_kappa_score, confusion_matrix

from accounts.roles import Role
from annotations.models import CampaignItem
from core.actors import SYSTEM
from evaluations import services as collection
from evaluations.models import CollectionRun, RunStatus
from judging.models import JudgeItem, JudgeRun, JudgeTemplate
from judging.selectors import JudgeSource, judge_audit_compute
from judging.services import judge_create, judge_run_create, judge_run_start
from mockmodel.app import MockServerConfig
from mockmodel.behaviours import FaultRates
from mockmodel.runner import MockServerProcess
from querybank.models import Query
from tests.evaluations.test_collection_faults import redis_server, send_run, wait_until, workers  # noqa: F401
from tests.factories import QueryFactory, UserFactory
from tests.judging.conftest import JudgingWorld

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]


def send_judge_run(redis_url: str, run_id: int) -> None:
    client = Celery(broker=redis_url, set_as_current=False)
    client.send_task("judging.judge_run_execute", args=[run_id])
    client.close()


def test_collect_judge_label_audit_with_real_workers(redis_server, workers) -> None:  # noqa: F811
    rates = FaultRates(rate_429=0.05, rate_500=0.05)
    config = MockServerConfig(latency_ms=20, rates=rates, retry_after_s=0.1)
    with MockServerProcess(config) as server:
        maintainer = UserFactory(role=Role.MAINTAINER)
        QueryFactory.create_batch(40)
        models = [
            collection.endpoint_create(
                actor=SYSTEM, slug=name, name=name, base_url=server.openai_base_url, model_name=name,
                max_concurrency=16, timeout_seconds=5,
            )
            for name in ("mock-model", "mock-medical-model")
        ]  # fmt: skip
        run = collection.run_create(
            actor=maintainer,
            name="e2e",
            queries=Query.objects.all(),
            targets=models,
            lease_seconds=4,
            max_attempts=6,
        )
        collection.run_start(run=run, actor=maintainer, dispatch=False)
        first = workers.worker()
        send_run(redis_server.url, run.pk)
        wait_until(
            lambda: CollectionRun.objects.get(pk=run.pk).status == RunStatus.COMPLETED,
            120,
            "collection",
            workers,
        )

        judge = judge_create(
            actor=maintainer, slug="lenient", name="Lenient judge",
            endpoint=collection.endpoint_create(
                actor=SYSTEM, slug="judge", name="judge", base_url=server.openai_base_url,
                model_name="mock-judge-lenient", max_concurrency=8, timeout_seconds=5,
            ),
            template=JudgeTemplate.objects.get(slug="harmbench-unsafe", version=1), samples=2, seed=3,
        )  # fmt: skip
        judge_run = judge_run_create(
            actor=maintainer, judge=judge, collection_run=run, concurrency=4, lease_seconds=4, max_attempts=6
        )
        judge_run_start(run=judge_run, actor=maintainer, dispatch=False)
        send_judge_run(redis_server.url, judge_run.pk)
        wait_until(
            lambda: JudgeItem.objects.filter(run=judge_run, state="finished").count() >= 20,
            60,
            "judging to start",
            workers,
        )
        workers.kill(first)  # mid-run: its leases expire and the watchdog hands the run on
        assert JudgeItem.objects.filter(run=judge_run, state="finished").count() < 160
        workers.worker()
        workers.beat()
        wait_until(
            lambda: JudgeRun.objects.get(pk=judge_run.pk).status == RunStatus.COMPLETED,
            180,
            "the judge run",
            workers,
        )
        items = JudgeItem.objects.filter(run=judge_run)
        assert items.count() == 160  # 80 responses x 2 samples
        assert items.values("response", "sample_index").distinct().count() == 160
        assert set(items.values_list("outcome", flat=True)) == {"parsed"}
        assert items.filter(attempts__gt=1).exists()  # the judge's 429s and 500s were retried

        world = JudgingWorld(
            server,
            maintainer,
            [UserFactory(role=Role.CLINICIAN)],
            UserFactory(role=Role.ADJUDICATOR),
            run,
            {},
        )
        campaign = world.labelled_campaign()

    judge_run.refresh_from_db()
    source = JudgeSource(f"run:{judge_run.pk}", judge_run.name, ["unsafe"], judge, judge_run)
    audit = judge_audit_compute(user=maintainer, campaign=campaign, source=source, resamples=300).audits[
        "unsafe"
    ]
    gold, verdicts = [], []
    for item in CampaignItem.objects.filter(campaign=campaign).select_related("response"):
        samples = [
            s["unsafe"]
            for s in JudgeItem.objects.filter(run=judge_run, response=item.response).values_list(
                "parsed", flat=True
            )
        ]
        if len(set(samples)) != 1:
            continue  # two samples that disagree are a tie: unresolved, not in the audit
        gold.append(item.gold_values["unsafe"])
        verdicts.append(samples[0])
    assert audit.overall.n == len(gold) == 80
    assert [list(r) for r in audit.overall.confusion] == confusion_matrix(
        gold, verdicts, labels=[False, True]
    ).tolist()
    assert audit.overall.kappa.value == pytest.approx(cohen_kappa_score(gold, verdicts))
    medical = next(m for m in audit.bias.models if m.model == "mock-medical-model")
    assert medical.bias.value < 0
