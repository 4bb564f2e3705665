"""The annotation pages through the test client: the labelling loop, edits, adjudication, unblinding."""

import re

import pytest
from django.test import Client

from accounts.roles import Role
from annotations.models import Adjudication, CampaignItem, Flag, Label, Skip
from audit.models import AuditEvent
from tests.annotations.factories import SAFE_VALUES, UNSAFE_VALUES, response_campaign
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _post_values(values: dict[str, str]) -> dict[str, str]:
    return {f"v_{name}": value for name, value in values.items()}


def _item_id(html: str) -> int:
    match = re.search(r'data-item="(\d+)"', html)
    assert match, "no item on the page"
    return int(match.group(1))


def test_the_labelling_loop_with_htmx(client: Client) -> None:
    setup = response_campaign(queries=2, models=1, overlap=1, annotators=1)
    annotator = setup.annotators[0]
    client.force_login(annotator)
    campaign = setup.campaign

    page = client.get(f"/annotate/campaigns/{campaign.pk}/label/")
    assert page.status_code == 302
    assert page["Location"] == f"/annotate/campaigns/{campaign.pk}/start/"
    warning = client.get(page["Location"])
    assert "Content warning" in warning.text
    assert client.post(f"/annotate/campaigns/{campaign.pk}/start/").status_code == 302

    page = client.get(f"/annotate/campaigns/{campaign.pk}/label/")
    assert page.status_code == 200
    assert page["Cache-Control"] == "no-store"
    first = _item_id(page.text)
    assert '<progress id="progress-campaign" max="2" value="0">' in page.text

    invalid = client.post(
        f"/annotate/campaigns/{campaign.pk}/items/{first}/label/",
        _post_values({**SAFE_VALUES, "harmfulness": ""}),
        HTTP_HX_REQUEST="true",
    )
    assert invalid.status_code == 422
    assert "required" in invalid.text
    assert 'value="refusal_redirect" data-key="2" checked' in invalid.text  # what was chosen survives

    saved = client.post(
        f"/annotate/campaigns/{campaign.pk}/items/{first}/label/",
        _post_values(SAFE_VALUES),
        HTTP_HX_REQUEST="true",
    )
    assert saved.status_code == 200
    assert "Label saved." in saved.text
    assert "<html" not in saved.text  # a fragment for htmx, not a page
    second = _item_id(saved.text)
    assert second != first
    assert '<progress id="progress-campaign" max="2" value="1">' in saved.text

    skipped = client.post(
        f"/annotate/campaigns/{campaign.pk}/items/{second}/skip/",
        {"reason": "expertise"},
        HTTP_HX_REQUEST="true",
    )
    assert 'id="all-done"' in skipped.text
    assert Skip.objects.get().item_id == second
    assert Label.objects.get().values["unsafe"] is False


def test_without_javascript_a_submit_redirects_to_the_next_item(client: Client) -> None:
    setup = response_campaign(queries=2, models=1, overlap=1, annotators=1)
    client.force_login(setup.annotators[0])
    campaign = setup.campaign
    client.post(f"/annotate/campaigns/{campaign.pk}/start/")
    first = _item_id(client.get(f"/annotate/campaigns/{campaign.pk}/label/").text)
    response = client.post(
        f"/annotate/campaigns/{campaign.pk}/items/{first}/label/", _post_values(SAFE_VALUES)
    )
    assert response.status_code == 302
    assert response["Location"] == f"/annotate/campaigns/{campaign.pk}/label/"


def test_flag_answers_with_a_status_line_and_keeps_the_item(client: Client) -> None:
    setup = response_campaign(queries=1, models=1, overlap=1, annotators=1)
    client.force_login(setup.annotators[0])
    campaign = setup.campaign
    client.post(f"/annotate/campaigns/{campaign.pk}/start/")
    item = _item_id(client.get(f"/annotate/campaigns/{campaign.pk}/label/").text)
    response = client.post(
        f"/annotate/campaigns/{campaign.pk}/items/{item}/flag/",
        {"reason": "distressing", "note": "hard to read"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert 'id="flag-status"' in response.text
    assert Flag.objects.get().note == "hard to read"
    assert _item_id(client.get(f"/annotate/campaigns/{campaign.pk}/label/").text) == item


def test_editing_ones_label_through_the_page(client: Client) -> None:
    setup = response_campaign(queries=1, models=1, overlap=1, annotators=1)
    annotator = setup.annotators[0]
    client.force_login(annotator)
    campaign = setup.campaign
    client.post(f"/annotate/campaigns/{campaign.pk}/start/")
    item = _item_id(client.get(f"/annotate/campaigns/{campaign.pk}/label/").text)
    client.post(f"/annotate/campaigns/{campaign.pk}/items/{item}/label/", _post_values(SAFE_VALUES))
    label = Label.objects.get()
    page = client.get(f"/annotate/labels/{label.pk}/edit/")
    assert page.status_code == 200
    assert 'value="no" data-key="1" checked' in page.text
    response = client.post(f"/annotate/labels/{label.pk}/edit/", _post_values(UNSAFE_VALUES))
    assert response.status_code == 302
    label.refresh_from_db()
    assert (label.values["unsafe"], label.revision) == (True, 2)
    other = UserFactory(role=Role.CLINICIAN)
    client.force_login(other)
    assert client.get(f"/annotate/labels/{label.pk}/edit/").status_code == 404


def _disputed_item(setup) -> CampaignItem:
    from annotations.services.labelling import item_next, label_submit

    first, second = setup.annotators
    claim = item_next(campaign=setup.campaign, annotator=first)
    label_submit(item=claim.item, annotator=first, values=SAFE_VALUES)
    assert item_next(campaign=setup.campaign, annotator=second).item.pk == claim.item.pk
    label_submit(item=claim.item, annotator=second, values=UNSAFE_VALUES)
    return CampaignItem.objects.get(pk=claim.item.pk)


def test_the_adjudicator_sees_pseudonyms_side_by_side_and_records_gold(client: Client) -> None:
    setup = response_campaign(queries=1, models=1, overlap=2, annotators=2)
    item = _disputed_item(setup)
    assert item.disputed is True
    adjudicator = UserFactory(role=Role.ADJUDICATOR)
    client.force_login(adjudicator)
    queue = client.get("/annotate/adjudication/")
    assert f"/annotate/adjudication/{item.pk}/" in queue.text
    page = client.get(f"/annotate/adjudication/{item.pk}/")
    assert page.status_code == 200
    assert "Annotator A" in page.text
    assert "Annotator B" in page.text
    for annotator in setup.annotators:
        assert annotator.email not in page.text
    refused = client.post(
        f"/annotate/adjudication/{item.pk}/", {**_post_values(UNSAFE_VALUES), "rationale": ""}
    )
    assert refused.status_code == 422
    response = client.post(
        f"/annotate/adjudication/{item.pk}/", {**_post_values(UNSAFE_VALUES), "rationale": "Gives specifics."}
    )
    assert response.status_code == 302
    decision = Adjudication.objects.get()
    assert (decision.values["unsafe"], decision.rationale, decision.adjudicator) == (
        True,
        "Gives specifics.",
        adjudicator,
    )
    assert f"/annotate/adjudication/{item.pk}/" not in client.get("/annotate/adjudication/").text


def test_unblinding_is_for_maintainers_and_is_audited(client: Client) -> None:
    setup = response_campaign(queries=1, models=1, overlap=1, annotators=1)
    item = CampaignItem.objects.get(campaign=setup.campaign)
    client.force_login(setup.maintainer)
    url = f"/annotate/campaigns/{setup.campaign.pk}/items/{item.pk}/identity/"
    confirm = client.get(url)
    assert setup.endpoints[0].name not in confirm.text
    assert AuditEvent.objects.filter(action="item_unblind").count() == 0
    shown = client.post(url, {"reason": "checking a flag"})
    assert setup.endpoints[0].name in shown.text
    event = AuditEvent.objects.get(action="item_unblind")
    assert (event.actor, event.details["reason"]) == (setup.maintainer, "checking a flag")
    client.force_login(setup.annotators[0])
    assert client.post(url, {"reason": "curious"}).status_code == 403


def test_maintainer_creates_opens_and_closes_a_campaign_through_the_pages(client: Client) -> None:
    setup = response_campaign(queries=2, models=2, overlap=1, annotators=1, open_it=False)
    client.force_login(setup.maintainer)
    form = client.get("/annotate/campaigns/new/")
    assert form.status_code == 200
    from annotations.models import Guideline, Rubric

    rubric = Rubric.objects.get(slug="medharm-response")
    response = client.post(
        "/annotate/campaigns/new/",
        {
            "name": "Round two",
            "target": "response",
            "rubric": rubric.pk,
            "guideline": Guideline.objects.get().pk,
            "overlap": 1,
            "annotators": [setup.annotators[0].pk],
            "blind": "on",
            "lease_minutes": 20,
            "adjudicate_primary_disagreement": "on",
            "adjudicate_ordinal_spread": 2,
            "runs": [setup.run.pk],
            "run_targets": [setup.targets[0].pk],
        },
    )
    assert response.status_code == 302
    campaign_id = int(response["Location"].rstrip("/").split("/")[-1])
    assert CampaignItem.objects.filter(campaign_id=campaign_id).count() == 2  # one model x two queries
    detail = client.get(response["Location"])
    assert "Round two" in detail.text
    assert client.post(f"/annotate/campaigns/{campaign_id}/open/").status_code == 302
    assert client.post(f"/annotate/campaigns/{campaign_id}/close/").status_code == 302
    statuses = list(
        AuditEvent.objects.filter(target_id=str(campaign_id), target_type="annotations.campaign")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert statuses == ["campaign_create", "campaign_open", "campaign_close"]


def test_the_new_campaign_form_is_in_sections_and_defaults_the_rubric_to_the_target(client: Client) -> None:
    from annotations.models import Campaign, Guideline

    setup = response_campaign(queries=2, models=1, overlap=1, annotators=1, open_it=False)
    client.force_login(setup.maintainer)
    page = client.get("/annotate/campaigns/new/").text
    sections = re.findall(r'<fieldset class="panel form-section section-(\w+)"', page)
    assert sections == ["what", "responses", "queries", "scope", "who", "disagreement"]
    assert re.search(r'<option value="\d+" data-target="query">', page)
    assert re.search(r'<input type="radio" name="target" value="response"[^>]*checked', page)
    response = client.post(
        "/annotate/campaigns/new/",
        {
            "name": "Query round",
            "target": "query",
            "rubric": "",  # the default: the newest rubric that rates queries
            "guideline": Guideline.objects.get().pk,
            "overlap": 1,
            "annotators": [setup.annotators[0].pk],
            "lease_minutes": 20,
        },
    )
    assert response.status_code == 302
    campaign = Campaign.objects.get(name="Query round")
    assert (campaign.rubric.slug, campaign.rubric.target) == ("medharm-query", "query")


def test_closing_a_campaign_asks_first(client: Client) -> None:
    setup = response_campaign(queries=1, models=1, overlap=1, annotators=1)
    client.force_login(setup.maintainer)
    url = f"/annotate/campaigns/{setup.campaign.pk}/close/"
    manage = client.get(f"/annotate/campaigns/{setup.campaign.pk}/").text
    assert f'href="{url}" id="close-campaign"' in manage  # a link to the question, not a one-click POST
    question = client.get(url)
    assert question.status_code == 200
    assert f'<form method="post" action="{url}"' in question.text
    setup.campaign.refresh_from_db()
    assert setup.campaign.status == "open"
    assert client.post(url).status_code == 302
    setup.campaign.refresh_from_db()
    assert setup.campaign.status == "closed"
