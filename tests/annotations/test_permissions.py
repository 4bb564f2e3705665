"""The permission table of the annotation pages and API: role x endpoint x object → status."""

import pytest
from django.test import Client

from tests.annotations.conftest import World

pytestmark = pytest.mark.django_db

ROLES = ["anonymous", "researcher", "annotator", "outsider", "adjudicator", "maintainer", "committee"]
LOGIN = "LOGIN"

# {c} the open campaign, {h} the item the annotator holds, {i} the item two annotators labelled
# (differently: it is in the adjudication queue), {l} the annotator's label, {g} the guideline.
# Columns: anonymous, researcher, annotator (in the pool), outsider (a clinician outside it),
# adjudicator, maintainer, data committee.
PAGES: dict[str, tuple[object, ...]] = {
    "/annotate/": (LOGIN, 403, 200, 200, 200, 200, 403),
    "/annotate/campaigns/new/": (LOGIN, 403, 403, 403, 403, 200, 403),
    "/annotate/campaigns/{c}/": (LOGIN, 403, 200, 404, 403, 200, 403),
    "/annotate/campaigns/{c}/edit/": (LOGIN, 403, 403, 403, 403, 200, 403),
    "/annotate/campaigns/{c}/start/": (LOGIN, 403, 200, 404, 403, 403, 403),
    "/annotate/campaigns/{c}/label/": (LOGIN, 403, 302, 404, 403, 403, 403),
    "/annotate/campaigns/{c}/mine/": (LOGIN, 403, 200, 404, 403, 403, 403),
    "/annotate/labels/{l}/edit/": (LOGIN, 403, 200, 404, 403, 403, 403),
    "/annotate/adjudication/": (LOGIN, 403, 403, 403, 200, 403, 403),
    "/annotate/adjudication/{i}/": (LOGIN, 403, 403, 403, 200, 403, 403),
    "/annotate/campaigns/{c}/items/{i}/identity/": (LOGIN, 403, 403, 403, 403, 200, 403),
    "/annotate/import/": (LOGIN, 403, 403, 403, 403, 200, 403),
    "/annotate/guidelines/{g}/": (LOGIN, 403, 200, 200, 200, 200, 403),
}
# The API answers anonymous callers 403 (session authentication has no challenge).
API_GET: dict[str, tuple[int, ...]] = {
    "/api/v1/annotation-campaigns/": (403, 200, 200, 200, 200, 200, 200),
    "/api/v1/annotation-campaigns/{c}/": (403, 404, 200, 404, 200, 200, 404),
    "/api/v1/annotation-campaigns/{c}/progress/": (403, 404, 200, 404, 200, 200, 404),
    "/api/v1/annotation-campaigns/{c}/labels/": (403, 403, 403, 403, 403, 200, 403),
    "/api/v1/annotation-labels/": (403, 403, 200, 200, 403, 403, 403),
    "/api/v1/annotation-labels/{l}/": (403, 403, 200, 404, 403, 403, 403),
    "/api/v1/annotation-items/{h}/": (403, 403, 200, 404, 403, 403, 403),
    "/api/v1/annotation-items/{i}/identity/": (403, 403, 403, 403, 403, 200, 403),
    "/api/v1/adjudication/": (403, 403, 403, 403, 200, 403, 403),
    "/api/v1/adjudication/{i}/": (403, 403, 403, 403, 200, 403, 403),
    "/api/v1/annotation-rubrics/": (403, 403, 200, 200, 200, 200, 403),
    "/api/v1/annotation-guidelines/": (403, 403, 200, 200, 200, 200, 403),
}
API_POST: dict[str, tuple[int, ...]] = {
    "/api/v1/annotation-campaigns/": (403, 403, 403, 403, 403, 400, 403),
    "/api/v1/annotation-campaigns/{c}/next/": (403, 403, 200, 404, 403, 403, 403),
    "/api/v1/annotation-campaigns/{c}/close/": (403, 403, 403, 403, 403, 200, 403),
    "/api/v1/annotation-labels/": (403, 403, 400, 400, 403, 403, 403),
    "/api/v1/annotation-items/{h}/skip/": (403, 403, 400, 404, 403, 403, 403),
    "/api/v1/adjudication/{i}/decide/": (403, 403, 403, 403, 400, 403, 403),
    "/api/v1/annotation-rubrics/": (403, 403, 403, 403, 403, 400, 403),
    "/api/v1/annotation-guidelines/": (403, 403, 403, 403, 403, 400, 403),
    "/api/v1/annotation-imports/": (403, 403, 403, 403, 403, 400, 403),
}


def _cases(table: dict[str, tuple[object, ...]]) -> list[object]:
    return [
        pytest.param(role, path, expected[ROLES.index(role)], id=f"{role}-{path}")
        for path, expected in table.items()
        for role in ROLES
    ]


def _url(path: str, world: World) -> str:
    return path.format(
        c=world.setup.campaign.pk,
        h=world.held.pk,
        i=world.labelled.pk,
        l=world.label.pk,
        g=world.setup.campaign.guideline_id,
    )


def _client(world: World, role: str) -> Client:
    client = Client()
    user = world.user(role)
    if user is not None:
        client.force_login(user)
    return client


@pytest.mark.parametrize(("role", "path", "expected"), _cases(PAGES))
def test_pages(world: World, role: str, path: str, expected: object) -> None:
    url = _url(path, world)
    response = _client(world, role).get(url)
    if expected == LOGIN:
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")
    else:
        assert response.status_code == expected, url


@pytest.mark.parametrize(("role", "path", "expected"), _cases(API_GET))
def test_api_reads(world: World, role: str, path: str, expected: int) -> None:
    assert _client(world, role).get(_url(path, world)).status_code == expected


@pytest.mark.parametrize(("role", "path", "expected"), _cases(API_POST))
def test_api_writes(world: World, role: str, path: str, expected: int) -> None:
    response = _client(world, role).post(_url(path, world), {})
    assert response.status_code == expected, response.content[:300]


@pytest.mark.parametrize(
    ("role", "visible"),
    [
        ("researcher", 0),
        ("annotator", 1),
        ("outsider", 0),
        ("adjudicator", 1),
        ("maintainer", 1),
        ("committee", 0),
    ],
)
def test_campaign_list_is_scoped_by_role(world: World, role: str, visible: int) -> None:
    body = _client(world, role).get("/api/v1/annotation-campaigns/").json()
    assert body["count"] == visible


def test_the_pool_rule_and_its_selector_agree(world: World) -> None:
    from accounts.policy import can_annotate
    from annotations.selectors import campaign_list_for_annotator

    campaign = world.setup.campaign
    for role in ROLES[1:]:
        user = world.user(role)
        listed = campaign_list_for_annotator(user=user).filter(pk=campaign.pk).exists()
        assert listed == can_annotate(user, campaign), role
    assert can_annotate(world.annotator, campaign) is True
    assert can_annotate(world.outsider, campaign) is False
