"""Every page of the app answers 200 for the role it is for, on PostgreSQL and on the embedded SQLite
default (``portable``: bin/test runs it on both). A page that only works on one database engine
(DISTINCT ON, a PostgreSQL-only lookup) fails here on the other."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.db import connection
from django.test import Client

from accounts.models import User
from accounts.roles import Role
from annotations.models import Guideline, Label
from annotations.services.labelling import item_next, label_submit, session_start
from scoring.models import Report
from scoring.services import report_create
from tests.annotations.factories import SAFE_VALUES, response_campaign
from tests.factories import QueryFactory
from tests.scoring.factories import ScoringWorld, scoring_world

pytestmark = [pytest.mark.django_db, pytest.mark.portable]

# {c} a closed campaign with labels and gold, {o} an open campaign the clinician is labelling,
# {item} an item of {c} to adjudicate, {label} the clinician's label in {o}, {r} a report of {c},
# {run} a collection run with {resp} one of its responses, {q} a query, {g} the guideline.
PAGES: dict[str, list[str]] = {
    "maintainer": [
        "/",
        "/queries/",
        "/queries/?q=Query&category=toxicology&page=2",
        "/queries/{q}/",
        "/queries/import/",
        "/queries/export.csv",
        "/queries/export.jsonl",
        "/queries/taxonomies/",
        "/accounts/invite/",
        "/accounts/email/",
        "/accounts/2fa/",
        "/collection/",
        "/collection/registry/",
        "/collection/registry/endpoints/new/",
        "/collection/registry/pipelines/new/",
        "/collection/runs/new/",
        "/collection/runs/{run}/",
        "/collection/runs/{run}/responses/",
        "/collection/runs/{run}/responses/?outcome=collected&category=toxicology",
        "/collection/runs/{run}/responses/{resp}/",
        "/collection/runs/{run}/cancel/",
        "/collection/runs/{run}/export.csv",
        "/collection/runs/{run}/export.jsonl",
        "/annotate/",
        "/annotate/campaigns/new/",
        "/annotate/campaigns/{c}/",
        "/annotate/campaigns/{o}/",
        "/annotate/campaigns/{o}/edit/",
        "/annotate/campaigns/{o}/close/",
        "/annotate/campaigns/{c}/items/{item}/identity/",
        "/annotate/import/",
        "/annotate/guidelines/{g}/",
        "/scores/",
        "/scores/campaigns/{c}/",
        "/scores/campaigns/{c}/heatmap/",
        "/scores/campaigns/{c}/compare/",
        "/scores/campaigns/{c}/agreement/",
        "/scores/campaigns/{c}/reports/",
        "/scores/campaigns/{c}/?source=judge",
        "/scores/campaigns/{c}/rows/",
        "/scores/campaigns/{c}/rows/?target=Alpha general&category=toxicology",
        "/scores/campaigns/{c}/rows/?target=Alpha general&export=csv",
        "/scores/campaigns/{c}/agreement/rows/",
        "/scores/reports/{r}/",
        "/scores/reports/{r}/report.json",
        "/scores/reports/{r}/report.pdf",
        "/scores/reports/{r}/tables/{table}.csv",
        "/api/docs/",
    ],
    "clinician": [
        "/",
        "/queries/",
        "/queries/{q}/",
        "/annotate/",
        "/annotate/campaigns/{o}/",
        "/annotate/campaigns/{o}/start/",
        "/annotate/campaigns/{o}/label/",
        "/annotate/campaigns/{o}/mine/",
        "/annotate/campaigns/{o}/undo/",
        "/annotate/labels/{label}/edit/",
        "/annotate/guidelines/{g}/",
        "/scores/",
        "/scores/campaigns/{c}/mine/",
        "/api/docs/",
    ],
    "adjudicator": [
        "/",
        "/queries/",
        "/annotate/",
        "/annotate/adjudication/",
        "/annotate/adjudication/{item}/",
        "/scores/",
        "/scores/campaigns/{c}/",
        "/scores/campaigns/{c}/heatmap/",
        "/scores/campaigns/{c}/compare/",
        "/scores/campaigns/{c}/agreement/",
        "/scores/reports/{r}/",
    ],
    "researcher": ["/", "/api/docs/"],
    "committee": ["/", "/api/docs/"],
}


@dataclass
class Site:
    world: ScoringWorld
    ids: dict[str, int | str]
    label: Label
    report: Report

    def user(self, role: str) -> User:
        return self.world.user(role)  # type: ignore[return-value]


@pytest.fixture
def site(db: None) -> Site:
    world = scoring_world(close=True)
    report = report_create(campaign=world.campaign, actor=world.maintainer, resamples=20)
    labelling = response_campaign(queries=3, models=1, overlap=1, annotators=[world.annotator_a])
    session_start(campaign=labelling.campaign, annotator=world.annotator_a)
    first = item_next(campaign=labelling.campaign, annotator=world.annotator_a).item
    label = label_submit(item=first, annotator=world.annotator_a, values=SAFE_VALUES)
    item_next(campaign=labelling.campaign, annotator=world.annotator_a)  # holds the next one
    disputed = next(item for key, item in world.items.items() if key == ("Alpha general", 2))
    response = next(iter(world.responses.values()))
    ids = {
        "c": world.campaign.pk,
        "o": labelling.campaign.pk,
        "item": disputed.pk,
        "label": label.pk,
        "r": report.pk,
        "run": world.run.pk,
        "resp": response.pk,
        "q": QueryFactory().pk,
        "g": Guideline.objects.latest("pk").pk,
        "table": next(iter(report.payload["tables"])),
    }
    return Site(world=world, ids=ids, label=label, report=report)


@pytest.mark.parametrize("role", sorted(PAGES))
def test_every_page_answers_200_for_its_role(site: Site, role: str) -> None:
    client = Client()
    client.force_login(site.user(role))
    got = {}
    for path in PAGES[role]:
        response = client.get(path.format(**site.ids))
        if hasattr(response, "streaming_content"):
            b"".join(response.streaming_content)  # an export fails while its body is read
        got[path] = response.status_code
    assert {path: status for path, status in got.items() if status != 200} == {}, connection.vendor


def test_the_new_campaign_form_offers_the_newest_rubric_of_each_slug(site: Site) -> None:
    client = Client()
    client.force_login(site.user("maintainer"))
    form = client.get("/annotate/campaigns/new/").context["form"]
    offered = [(r.slug, r.version) for r in form.fields["rubric"].queryset]
    assert len(offered) == len({slug for slug, _ in offered}) >= 2


@pytest.mark.parametrize(
    ("path", "notice", "not_shown"),
    [
        ("/scores/", "scores-access-notice", "researcher-access-notice"),
        ("/collection/", "collection-access-notice", "researcher-access-notice"),
        ("/queries/", "researcher-access-notice", "scores-access-notice"),
    ],
)
def test_a_researcher_refused_a_page_is_told_why_for_that_page(
    make_user: object, path: str, notice: str, not_shown: str
) -> None:
    client = Client()
    client.force_login(make_user(Role.RESEARCHER))  # type: ignore[operator]
    response = client.get(path)
    assert response.status_code == 403
    assert (f'id="{notice}"' in response.text, f'id="{not_shown}"' in response.text) == (True, False)


def test_a_signed_out_visitor_to_the_api_docs_is_asked_to_sign_in() -> None:
    response = Client().get("/api/docs/")
    assert (response.status_code, response["Location"]) == (302, "/accounts/login/?next=/api/docs/")
