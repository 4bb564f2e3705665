"""The permission table of the scoring pages and API: role x endpoint x object -> status.

Dashboards are for adjudicators and maintainers; a clinician sees only their own agreement, of a
closed campaign in whose pool they are; researchers and the data committee see none of it.
"""

import json

import pytest
from django.test import Client

from annotations.models import Campaign, CampaignStatus
from scoring.models import Report
from scoring.services import report_create
from tests.scoring.factories import ALPHA, ScoringWorld, scoring_world

pytestmark = pytest.mark.django_db

ROLES = ["anonymous", "researcher", "clinician", "outsider", "adjudicator", "maintainer", "committee"]
LOGIN = "LOGIN"
DASHBOARD = (LOGIN, 403, 403, 403, 200, 200, 403)
REPORT_FILE = DASHBOARD
# Drill-downs that map items to models: an unblinding, for maintainers only (adjudication is blind).
IDENTITY = (LOGIN, 403, 403, 403, 403, 200, 403)
API_IDENTITY = (403, 403, 403, 403, 403, 200, 403)

# {c} the (closed) campaign, {r} a report of it. Columns: anonymous, researcher, clinician (in the
# pool), outsider (a clinician outside it), adjudicator, maintainer, data committee.
PAGES: dict[str, tuple[object, ...]] = {
    "/scores/": (LOGIN, 403, 200, 200, 200, 200, 403),
    "/scores/campaigns/{c}/": DASHBOARD,
    "/scores/campaigns/{c}/?source=majority&metric=refusal_rate": DASHBOARD,
    "/scores/campaigns/{c}/heatmap/": DASHBOARD,
    "/scores/campaigns/{c}/compare/": DASHBOARD,
    "/scores/campaigns/{c}/rows/?metric=unsafe_rate&target=" + ALPHA: IDENTITY,
    "/scores/campaigns/{c}/rows/?metric=unsafe_rate": IDENTITY,
    "/scores/campaigns/{c}/agreement/": DASHBOARD,
    "/scores/campaigns/{c}/agreement/rows/?field=unsafe&a=0&b=1": DASHBOARD,
    "/scores/campaigns/{c}/agreement/rows/?field=unsafe&annotator=0": DASHBOARD,
    "/scores/campaigns/{c}/agreement/rows/?field=unsafe": DASHBOARD,  # without the model column
    "/scores/campaigns/{c}/agreement/rows/?field=unsafe&model=" + ALPHA: IDENTITY,
    "/scores/campaigns/{c}/reports/": DASHBOARD,
    "/scores/campaigns/{c}/mine/": (LOGIN, 403, 200, 404, 403, 403, 403),
    "/scores/reports/{r}/": REPORT_FILE,
    "/scores/reports/{r}/report.pdf": REPORT_FILE,
    "/scores/reports/{r}/report.json": REPORT_FILE,
    "/scores/reports/{r}/report.zip": REPORT_FILE,
    "/scores/reports/{r}/tables/scores.csv": REPORT_FILE,
}
PAGE_POSTS: dict[str, tuple[object, ...]] = {
    "/scores/campaigns/{c}/agreement/threshold/": (LOGIN, 403, 403, 403, 403, 302, 403),
    "/scores/campaigns/{c}/reports/new/": (LOGIN, 403, 403, 403, 403, 302, 403),
}
API_GET: dict[str, tuple[int, ...]] = {
    "/api/v1/score-campaigns/": (403, 403, 403, 403, 200, 200, 403),
    "/api/v1/score-campaigns/{c}/scores/": (403, 403, 403, 403, 200, 200, 403),
    "/api/v1/score-campaigns/{c}/rows/?metric=unsafe_rate": API_IDENTITY,
    "/api/v1/score-campaigns/{c}/rows/?metric=unsafe_rate&target=" + ALPHA: API_IDENTITY,
    "/api/v1/score-campaigns/{c}/compare/": (403, 403, 403, 403, 200, 200, 403),
    "/api/v1/score-campaigns/{c}/agreement/": (403, 403, 403, 403, 200, 200, 403),
    "/api/v1/score-campaigns/{c}/mine/": (403, 403, 200, 404, 403, 403, 403),
    "/api/v1/score-reports/": (403, 403, 403, 403, 200, 200, 403),
    "/api/v1/score-reports/{r}/": (403, 403, 403, 403, 200, 200, 403),
}
API_POST: dict[str, tuple[int, ...]] = {
    "/api/v1/score-campaigns/{c}/threshold/": (403, 403, 403, 403, 403, 200, 403),
    "/api/v1/score-reports/": (403, 403, 403, 403, 403, 201, 403),
}
POST_DATA = {
    "threshold": {"statistic": "percent_agreement", "minimum": "0.8", "min_items": "5", "field_name": ""},
    "reports": {"label_source": "gold", "seed": "7", "resamples": "20"},
}


@pytest.fixture
def closed_world(db: None) -> tuple[ScoringWorld, Report]:
    world = scoring_world(close=True)
    report = report_create(campaign=world.campaign, actor=world.maintainer, resamples=20)
    return world, report


def _client(world: ScoringWorld, role: str) -> Client:
    client = Client()
    user = world.user(role)
    if user is not None:
        client.force_login(user)
    return client


def _url(path: str, world: ScoringWorld, report: Report) -> str:
    return path.format(c=world.campaign.pk, r=report.pk)


def _status(response: object) -> object:
    """The status, or LOGIN for a redirect to the login page."""
    if response.status_code == 302 and "/accounts/login/" in response["Location"]:  # type: ignore[attr-defined]
        return LOGIN
    return response.status_code  # type: ignore[attr-defined]


# One world per role (building it is the slow part); every endpoint of the table is asked, and
# the test reports every mismatch at once as {path: (expected, got)}.
@pytest.mark.parametrize("role", ROLES)
def test_permission_table(closed_world: tuple[ScoringWorld, Report], role: str) -> None:
    world, report = closed_world
    client = _client(world, role)
    column = ROLES.index(role)
    got: dict[str, tuple[object, object]] = {}
    for path, expected in PAGES.items():
        got[f"GET {path}"] = (expected[column], _status(client.get(_url(path, world, report))))
    for path, expected in API_GET.items():
        got[f"API GET {path}"] = (expected[column], _status(client.get(_url(path, world, report))))
    for path, expected in PAGE_POSTS.items():
        data = POST_DATA["threshold" if "threshold" in path else "reports"]
        got[f"POST {path}"] = (expected[column], _status(client.post(_url(path, world, report), data)))
    for path, expected in API_POST.items():
        body = (
            {"minimum": 0.8, "min_items": 5}
            if "threshold" in path
            else {"campaign": world.campaign.pk, "resamples": 20}
        )
        response = client.post(_url(path, world, report), json.dumps(body), content_type="application/json")
        got[f"API POST {path}"] = (expected[column], _status(response))
    mismatches = {path: pair for path, pair in got.items() if pair[0] != pair[1]}
    assert mismatches == {}
    assert len(got) == len(PAGES) + len(API_GET) + len(PAGE_POSTS) + len(API_POST)


def test_own_agreement_waits_for_the_campaign_to_close(db: None) -> None:
    world = scoring_world()  # open
    client = _client(world, "clinician")
    assert client.get(f"/scores/campaigns/{world.campaign.pk}/mine/").status_code == 404
    assert client.get(f"/api/v1/score-campaigns/{world.campaign.pk}/mine/").status_code == 404


def test_drafts_are_for_maintainers_only(db: None) -> None:
    world = scoring_world(label=False)
    Campaign.objects.filter(pk=world.campaign.pk).update(status=CampaignStatus.DRAFT)
    path = f"/scores/campaigns/{world.campaign.pk}/"
    assert _client(world, "adjudicator").get(path).status_code == 404
    assert _client(world, "maintainer").get(path).status_code == 200
    for role, expected in (("adjudicator", []), ("maintainer", [world.campaign.pk])):
        body = _client(world, role).get("/api/v1/score-campaigns/").json()
        results = body["results"] if isinstance(body, dict) else body
        assert [c["id"] for c in results] == expected


def test_a_report_of_another_campaign_is_not_reachable_through_a_hidden_campaign(db: None) -> None:
    world = scoring_world(label=False)
    report = report_create(campaign=world.campaign, actor=world.maintainer, resamples=20)
    Campaign.objects.filter(pk=world.campaign.pk).update(status=CampaignStatus.DRAFT)
    assert _client(world, "adjudicator").get(f"/scores/reports/{report.pk}/").status_code == 404
    assert _client(world, "adjudicator").get(f"/api/v1/score-reports/{report.pk}/").status_code == 404
    assert _client(world, "maintainer").get(f"/scores/reports/{report.pk}/").status_code == 200
