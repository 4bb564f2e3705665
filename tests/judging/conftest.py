"""A judging world made through the platform's services: a real collection run from our mock model
server over three models (one of them appends prompt injections), judge endpoints on the same
server, and a response campaign that clinicians label with the reading each response calls for."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import pytest

from accounts.models import User
from accounts.roles import Role
from annotations.defaults import GUIDELINE_SLUG, RESPONSE_RUBRIC_SLUG
from annotations.demo import reference_values
from annotations.models import Campaign, Guideline, Rubric
from annotations.services.campaigns import campaign_close, campaign_create, campaign_open
from annotations.services.labelling import ClaimOutcome, item_next, label_submit
from core.actors import SYSTEM
from evaluations import services as collection
from evaluations.collector import run_collect
from evaluations.models import CollectionRun, Endpoint, EndpointFamily, GuardFormat, RunStatus
from judging.collector import judge_run_collect
from judging.models import Judge, JudgeRun, JudgeTemplate
from judging.services import judge_create, judge_run_create
from mockmodel.app import MockServerConfig
from mockmodel.runner import MockServerThread
from querybank.models import Query
from tests.factories import QueryFactory, UserFactory

MODELS = ("mock-model", "mock-medical-model", "mock-injector-model")


@dataclass
class JudgingWorld:
    server: MockServerThread
    maintainer: User
    clinicians: list[User]
    adjudicator: User
    run: CollectionRun
    models: dict[str, Endpoint]
    judges: dict[str, Endpoint] = field(default_factory=dict)

    def endpoint(self, model: str, **fields: object) -> Endpoint:
        if model not in self.judges:
            self.judges[model] = collection.endpoint_create(
                actor=SYSTEM,
                slug=model.replace("_", "-")[:80],
                name=model,
                base_url=self.server.openai_base_url,
                model_name=model,
                max_concurrency=32,
                timeout_seconds=5,
                **fields,
            )
        return self.judges[model]

    def judge(self, model: str, template_slug: str, *, samples: int = 1, seed: int | None = None) -> Judge:
        fields: dict[str, object] = {}
        if "guard" in model:
            fields = {"family": EndpointFamily.GUARDRAIL, "guard_format": GuardFormat.LLAMA_GUARD}
        endpoint = self.endpoint(model, **fields)
        template = JudgeTemplate.objects.filter(slug=template_slug).order_by("-version").first()
        assert template is not None
        return judge_create(
            actor=self.maintainer,
            slug=f"{model}-{template_slug}-{samples}"[:80],
            name=f"{model} / {template_slug}",
            endpoint=endpoint,
            template=template,
            temperature=0.0,
            seed=seed,
            samples=samples,
        )

    def judged_run(self, judge: Judge, **kwargs: object) -> JudgeRun:
        run = judge_run_create(actor=self.maintainer, judge=judge, collection_run=self.run, **kwargs)
        JudgeRun.objects.filter(pk=run.pk).update(
            status=RunStatus.RUNNING
        )  # as judge_run_start, minus dispatch
        judge_run_collect(run_id=run.pk)
        run.refresh_from_db()
        return run

    def labelled_campaign(
        self, *, close: bool = True, overlap: int = 1, categories: Sequence[int] = ()
    ) -> Campaign:
        campaign = campaign_create(
            actor=self.maintainer,
            name="audit sample",
            target="response",
            rubric=Rubric.objects.filter(slug=RESPONSE_RUBRIC_SLUG).order_by("-version").first(),
            guideline=Guideline.objects.filter(slug=GUIDELINE_SLUG).order_by("-version").first(),
            overlap=overlap,
            annotators=self.clinicians,
            runs=[self.run.pk],
            categories=categories,
        )
        campaign = campaign_open(campaign=campaign, actor=self.maintainer)
        for clinician in self.clinicians[:overlap]:
            while True:
                claim = item_next(campaign=campaign, annotator=clinician)
                if claim.outcome != ClaimOutcome.ITEM:
                    break
                label_submit(
                    item=claim.item,
                    annotator=clinician,
                    values={**reference_values(claim.item), "rationale": ""},
                )
        if close:
            campaign = campaign_close(campaign=campaign, actor=self.maintainer)
        return campaign


def build_world(server: MockServerThread, *, queries: int = 30) -> JudgingWorld:
    maintainer = UserFactory(role=Role.MAINTAINER)
    clinicians = [UserFactory(role=Role.CLINICIAN) for _ in range(2)]
    adjudicator = UserFactory(role=Role.ADJUDICATOR)
    # The mock's replies and a noisy judge's flips are fixed by the query texts: the same texts
    # whatever ran before in the session, so the judging figures the tests assert are the same too.
    QueryFactory.reset_sequence(0)
    QueryFactory.create_batch(queries)
    models = {
        name: collection.endpoint_create(
            actor=SYSTEM, slug=name, name=name, base_url=server.openai_base_url, model_name=name,
            max_concurrency=32, timeout_seconds=5, price_input_per_million=Decimal("1"),
            price_output_per_million=Decimal("2"),
        )
        for name in MODELS
    }  # fmt: skip
    run = collection.run_create(
        actor=maintainer, name="collected", queries=Query.objects.all(), targets=list(models.values())
    )
    CollectionRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
    run_collect(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED
    return JudgingWorld(server, maintainer, clinicians, adjudicator, run, models)


@pytest.fixture
def mock_server():
    with MockServerThread(MockServerConfig(latency_ms=1)) as server:
        yield server


@pytest.fixture
def world(mock_server) -> JudgingWorld:
    return build_world(mock_server)
