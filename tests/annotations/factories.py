"""Factories for annotation tests: endpoints, runs and responses to label, and campaigns over them.

Model names are distinctive strings ("Zephyrine-Model-7") so that a blinding test can search every
page and JSON answer an annotator receives for them and be sure a hit is a leak.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import factory

from accounts.models import User
from accounts.roles import Role
from annotations.defaults import GUIDELINE_SLUG, QUERY_RUBRIC_SLUG, RESPONSE_RUBRIC_SLUG
from annotations.models import Campaign, Guideline, Rubric
from annotations.services.campaigns import campaign_create, campaign_open
from evaluations.models import (
    CollectionRun,
    Endpoint,
    ModelResponse,
    ResponseOutcome,
    ResponseState,
    RunStatus,
    RunTarget,
)
from querybank.models import Category, Query
from tests.factories import QueryFactory, UserFactory


class EndpointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Endpoint

    slug = factory.Sequence(lambda n: f"zephyrine-{n}")
    name = factory.Sequence(lambda n: f"Zephyrine-Model-{n}")
    base_url = "http://127.0.0.1:9/v1"
    model_name = factory.Sequence(lambda n: f"acme/zephyrine-weights-{n}")


class RunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CollectionRun

    name = factory.Sequence(lambda n: f"Collection run {n}")
    status = RunStatus.COMPLETED
    created_by = factory.SubFactory(UserFactory, role=Role.MAINTAINER)


def run_target(run: CollectionRun, endpoint: Endpoint) -> RunTarget:
    return RunTarget.objects.create(
        run=run,
        endpoint=endpoint,
        label=endpoint.name,
        config={
            "input_guard": None,
            "output_guard": None,
            "model": {"name": endpoint.name, "slug": endpoint.slug, "model_name": endpoint.model_name},
        },
    )


def response(
    run: CollectionRun,
    query: Query,
    target: RunTarget,
    *,
    text: str | None = None,
    outcome: str = ResponseOutcome.COLLECTED,
) -> ModelResponse:
    body = (
        text
        if text is not None
        else (f"A synthetic reply to query {query.pk}: it declines and suggests speaking to a clinician.")
    )
    if outcome not in (ResponseOutcome.COLLECTED, ResponseOutcome.EMPTY):
        body = ""
    return ModelResponse.objects.create(
        run=run,
        query=query,
        target=target,
        state=ResponseState.FINISHED,
        outcome=outcome,
        text=body,
        resolved_model=target.config["model"]["model_name"],
    )


def response_rubric() -> Rubric:
    return Rubric.objects.filter(slug=RESPONSE_RUBRIC_SLUG).order_by("-version").first()


def query_rubric() -> Rubric:
    return Rubric.objects.filter(slug=QUERY_RUBRIC_SLUG).order_by("-version").first()


def guideline() -> Guideline:
    return Guideline.objects.filter(slug=GUIDELINE_SLUG).order_by("-version").first()


@dataclass
class ResponseSetup:
    campaign: Campaign
    run: CollectionRun
    endpoints: list[Endpoint]
    targets: list[RunTarget]
    queries: list[Query]
    annotators: list[User]
    maintainer: User


def response_campaign(
    *,
    queries: int = 3,
    models: int = 2,
    overlap: int = 2,
    annotators: Sequence[User] | int = 2,
    open_it: bool = True,
    password: str | None = None,
    categories: Sequence[str] = ("toxicology", "pharmacology"),
    **options: object,
) -> ResponseSetup:
    """A campaign over ``queries`` x ``models`` collected responses, with ``annotators`` clinicians."""
    maintainer = UserFactory(role=Role.MAINTAINER)
    if isinstance(annotators, int):
        annotators = [UserFactory(role=Role.CLINICIAN, password=password) for _ in range(annotators)]
    run = RunFactory(created_by=maintainer)
    endpoints = [EndpointFactory() for _ in range(models)]
    targets = [run_target(run, endpoint) for endpoint in endpoints]
    cats = [Category.objects.get(slug=slug) for slug in categories]
    query_rows = [QueryFactory(category=cats[i % len(cats)]) for i in range(queries)]
    for query in query_rows:
        for target in targets:
            response(run, query, target)
    campaign = campaign_create(
        actor=maintainer,
        name="Response campaign",
        target="response",
        rubric=response_rubric(),
        guideline=guideline(),
        overlap=overlap,
        annotators=annotators,
        runs=[run.pk],
        **options,
    )
    if open_it:
        campaign_open(campaign=campaign, actor=maintainer)
    return ResponseSetup(campaign, run, endpoints, targets, query_rows, list(annotators), maintainer)


def query_campaign(
    *,
    queries: Sequence[Query],
    overlap: int = 2,
    annotators: Sequence[User],
    open_it: bool = True,
    **options: object,
) -> Campaign:
    maintainer = UserFactory(role=Role.MAINTAINER)
    categories = sorted({q.category_id for q in queries})
    campaign = campaign_create(
        actor=maintainer,
        name="Query campaign",
        target="query",
        rubric=query_rubric(),
        guideline=guideline(),
        overlap=overlap,
        annotators=annotators,
        categories=categories,
        sources=sorted({q.source for q in queries}),
        **options,
    )
    if open_it:
        campaign_open(campaign=campaign, actor=maintainer)
    return campaign


SAFE_VALUES = {
    "unsafe": "no",
    "behaviour": "refusal_redirect",
    "actionability": "0",
    "harmfulness": "1",
    "safe_helpfulness": "4",
    "rationale": "Declines and points to care.",
}
UNSAFE_VALUES = {
    "unsafe": "yes",
    "behaviour": "full_compliance",
    "actionability": "3",
    "harmfulness": "5",
    "safe_helpfulness": "1",
    "rationale": "Complies.",
}
