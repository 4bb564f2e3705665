"""Blinding, enforced by the server: nothing an annotator can reach, page or JSON, names the model,
shows another annotator's label, or gives the query's gold behaviour."""

import json

import pytest
from django.test import Client

from annotations.models import Label
from annotations.services.labelling import item_next, label_submit
from evaluations.models import ModelResponse
from querybank.models import ExpectedBehaviour, Query
from tests.annotations.conftest import OTHER_RATIONALE, World
from tests.annotations.factories import SAFE_VALUES, UNSAFE_VALUES, response_campaign

pytestmark = pytest.mark.django_db

GOLD_DISPLAY = ExpectedBehaviour.REDIRECT.label  # "Decline the harmful part, redirect to safe help"


def _secrets(world: World) -> list[str]:
    setup = world.setup
    values = [setup.run.name, world.colleague.email, OTHER_RATIONALE, GOLD_DISPLAY]
    for endpoint, target in zip(setup.endpoints, setup.targets, strict=True):
        values += [endpoint.name, endpoint.slug, endpoint.model_name, target.label]
    return values


def _reachable(world: World) -> dict[str, str]:
    """Every page and API answer the annotator can get, keyed by what was asked."""
    c, h, i, own, g = (
        world.setup.campaign.pk,
        world.held.pk,
        world.labelled.pk,
        world.label.pk,
        world.setup.campaign.guideline_id,
    )
    client = Client()
    client.force_login(world.annotator)
    client.post(f"/annotate/campaigns/{c}/start/")
    gets = [
        "/",
        "/annotate/",
        f"/annotate/campaigns/{c}/",
        f"/annotate/campaigns/{c}/start/",
        f"/annotate/campaigns/{c}/label/",
        f"/annotate/campaigns/{c}/mine/",
        f"/annotate/labels/{own}/edit/",
        f"/annotate/guidelines/{g}/",
        "/api/v1/annotation-campaigns/",
        f"/api/v1/annotation-campaigns/{c}/",
        f"/api/v1/annotation-campaigns/{c}/progress/",
        "/api/v1/annotation-labels/",
        f"/api/v1/annotation-labels/{own}/",
        f"/api/v1/annotation-items/{h}/",
        f"/api/v1/annotation-items/{i}/",
        "/api/v1/annotation-rubrics/",
        "/api/v1/annotation-guidelines/",
        # Endpoints of other roles and apps: refused, and the refusal must not leak either.
        f"/api/v1/annotation-items/{i}/identity/",
        f"/api/v1/adjudication/{i}/",
        f"/api/v1/annotation-campaigns/{c}/labels/",
        "/api/v1/responses/",
        "/api/v1/runs/",
        "/api/v1/endpoints/",
        f"/annotate/adjudication/{i}/",
        f"/annotate/campaigns/{c}/items/{i}/identity/",
        f"/collection/runs/{world.setup.run.pk}/",
        f"/collection/runs/{world.setup.run.pk}/responses/",
    ]
    answers = {f"GET {url}": client.get(url).content.decode() for url in gets}
    answers[f"POST next {c}"] = client.post(f"/api/v1/annotation-campaigns/{c}/next/").content.decode()
    answers["POST label page"] = client.post(
        f"/annotate/campaigns/{c}/items/{h}/label/", {"v_unsafe": "no"}, HTTP_HX_REQUEST="true"
    ).content.decode()
    return answers


def test_no_page_or_json_an_annotator_reaches_names_the_model_or_shows_others_labels(world: World) -> None:
    query = world.labelled.query
    Query.objects.filter(pk=query.pk).update(expected_behaviour=ExpectedBehaviour.REDIRECT)
    answers = _reachable(world)
    # The answers are real: the labelling screen shows the query, the API lists the annotator's label.
    assert world.held.query.text in answers[f"GET /annotate/campaigns/{world.setup.campaign.pk}/label/"]
    assert json.loads(answers["GET /api/v1/annotation-labels/"])["count"] == 1
    leaks = [
        (where, secret) for where, body in answers.items() for secret in _secrets(world) if secret in body
    ]
    assert leaks == []
    for where, body in answers.items():
        assert '"expected_behaviour":"redirect"' not in body, where
        assert "tag-behaviour-redirect" not in body, where


def test_the_item_api_gives_the_annotators_own_label_only(world: World) -> None:
    client = Client()
    client.force_login(world.annotator)
    body = client.get(f"/api/v1/annotation-items/{world.labelled.pk}/").json()
    assert body["own_label"] == {"id": world.label.pk, "values": world.label.values}
    assert set(body) == {
        "id",
        "campaign",
        "target",
        "query_text",
        "response_text",
        "category",
        "rubric",
        "own_label",
    }
    assert Label.objects.filter(item=world.labelled).count() == 2


def test_a_response_naming_its_model_is_redacted() -> None:
    setup = response_campaign(queries=1, models=1, overlap=1, annotators=1)
    endpoint = setup.endpoints[0]
    ModelResponse.objects.filter(target__run=setup.run).update(
        text=f"As {endpoint.name.upper()}, built on {endpoint.model_name}, I cannot help with that."
    )
    annotator = setup.annotators[0]
    client = Client()
    client.force_login(annotator)
    body = client.post(f"/api/v1/annotation-campaigns/{setup.campaign.pk}/next/").json()
    assert body["item"]["response_text"] == "As [model], built on [model], I cannot help with that."


def test_a_blind_query_campaign_hides_the_category_being_asked_for() -> None:
    from tests.annotations.factories import query_campaign
    from tests.factories import QueryFactory, UserFactory

    annotators = [UserFactory(role="clinician annotator") for _ in range(2)]
    campaign = query_campaign(queries=[QueryFactory()], overlap=1, annotators=annotators)
    client = Client()
    client.force_login(annotators[0])
    body = client.post(f"/api/v1/annotation-campaigns/{campaign.pk}/next/").json()
    assert body["item"]["category"] is None
    assert body["item"]["response_text"] is None
    assert [f["name"] for f in body["item"]["rubric"]][:3] == ["expected_behaviour", "category", "severity"]


def test_presentation_order_differs_between_annotators() -> None:
    setup = response_campaign(queries=8, models=2, overlap=4, annotators=4)
    orders = []
    for annotator in setup.annotators:
        order = []
        while (claim := item_next(campaign=setup.campaign, annotator=annotator)).item is not None:
            order.append(claim.item.pk)
            label_submit(item=claim.item, annotator=annotator, values=SAFE_VALUES)
        orders.append(order)
    assert all(sorted(order) == sorted(orders[0]) for order in orders)  # everyone labels everything (k = 4)
    assert len({tuple(order) for order in orders}) == 4


# --- the progress count side channel (issue 8, leak 1) ----------------------------------------------

EDITS = [
    {"unsafe": "yes"},
    {"behaviour": "full_compliance"},
    {"actionability": "3"},
    {"harmfulness": "5"},
    {"safe_helpfulness": "1"},
    {"unsafe": "no"},
]


def _second_clinicians_view(first_values: dict[str, str]) -> list[dict[str, object]]:
    """One item, two clinicians: the first labels it with ``first_values``; the second labels it,
    then changes one field at a time, reading campaign progress before and after every step."""
    setup = response_campaign(queries=1, models=1, overlap=2, annotators=2)
    first, second = setup.annotators
    item = item_next(campaign=setup.campaign, annotator=first).item
    label_submit(item=item, annotator=first, values=first_values)
    client = Client()
    client.force_login(second)
    progress = f"/api/v1/annotation-campaigns/{setup.campaign.pk}/progress/"
    seen = [client.get(progress).json()]
    claimed = client.post(f"/api/v1/annotation-campaigns/{setup.campaign.pk}/next/").json()
    assert claimed["item"]["id"] == item.pk
    created = client.post(
        "/api/v1/annotation-labels/",
        json.dumps({"item": item.pk, "values": SAFE_VALUES}),
        content_type="application/json",
    )
    assert created.status_code == 201
    seen.append(client.get(progress).json())
    values = dict(SAFE_VALUES)
    for change in EDITS:
        values.update(change)
        edited = client.patch(
            f"/api/v1/annotation-labels/{created.json()['id']}/",
            json.dumps({"values": values}),
            content_type="application/json",
        )
        assert edited.status_code == 200
        seen.append(client.get(progress).json())
    return seen


def test_progress_an_annotator_reads_does_not_depend_on_another_annotators_values(db: None) -> None:
    """The reproduction of the probe: label an item someone else labelled, edit one field at a
    time, re-read progress. Whatever the first clinician chose, the second sees the same answers."""
    agreeing = _second_clinicians_view(SAFE_VALUES)
    disagreeing = _second_clinicians_view({**UNSAFE_VALUES, "rationale": OTHER_RATIONALE})
    assert agreeing == disagreeing
    assert len(agreeing) == 2 + len(EDITS)
    # Only the annotator's own progress: one item, none then one labelled by them.
    assert agreeing[0] == {
        "done": 0,
        "available": 1,
        "remaining": 1,
        "session_done": 0,
        "session_limit": None,
        "session_remaining": None,
    }
    assert {key: agreeing[-1][key] for key in ("done", "remaining")} == {"done": 1, "remaining": 0}
    assert all("disputed" not in answer and "complete" not in answer for answer in agreeing)


def test_maintainers_and_adjudicators_outside_the_pool_still_see_campaign_progress(world: World) -> None:
    c = world.setup.campaign.pk
    for user in (world.setup.maintainer, world.adjudicator):
        client = Client()
        client.force_login(user)
        body = client.get(f"/api/v1/annotation-campaigns/{c}/progress/").json()
        assert set(body) == {"items", "complete", "labels", "labels_needed", "disputed", "adjudicated"}
        assert (body["labels"], body["disputed"]) == (2, 1)
