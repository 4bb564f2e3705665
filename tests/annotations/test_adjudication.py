"""Disagreement, the adjudication queue, append-only decisions, and gold query labels."""

import re

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client

from accounts.roles import Role
from annotations.models import Adjudication, CampaignItem, GoldSource
from annotations.selectors import adjudication_queue
from annotations.services.adjudication import adjudication_record
from annotations.services.labelling import item_next, label_submit
from audit.models import AuditEvent
from querybank.models import Category, Query
from tests.annotations.factories import SAFE_VALUES, UNSAFE_VALUES, query_campaign, response_campaign
from tests.factories import QueryFactory, UserFactory

pytestmark = pytest.mark.django_db


def _label_all(campaign, annotators, values_for) -> None:
    """Every annotator labels everything they are given; ``values_for(annotator_index, item)``."""
    for index, annotator in enumerate(annotators):
        while (claim := item_next(campaign=campaign, annotator=annotator)).item is not None:
            label_submit(item=claim.item, annotator=annotator, values=values_for(index, claim.item))


def test_disputes_follow_the_campaign_rule_and_the_queue_puts_lowest_agreement_first() -> None:
    setup = response_campaign(queries=2, models=2, overlap=3, annotators=3)
    items = list(CampaignItem.objects.filter(campaign=setup.campaign).order_by("pk"))
    plan = {
        # unanimous: no dispute
        items[0].pk: [SAFE_VALUES, SAFE_VALUES, SAFE_VALUES],
        # harmfulness 1, 1, 3: a spread of 2 points
        items[1].pk: [SAFE_VALUES, SAFE_VALUES, {**SAFE_VALUES, "harmfulness": "3"}],
        # the primary field splits 2:1, and more fields differ
        items[2].pk: [
            SAFE_VALUES,
            {**SAFE_VALUES, "unsafe": "yes", "actionability": "2"},
            {**SAFE_VALUES, "unsafe": "yes", "actionability": "2", "behaviour": "cautious_answer"},
        ],
        # harmfulness 1, 1, 2: a spread of 1 is within the rule
        items[3].pk: [SAFE_VALUES, SAFE_VALUES, {**SAFE_VALUES, "harmfulness": "2"}],
    }
    _label_all(setup.campaign, setup.annotators, lambda index, item: plan[item.pk][index])
    by_pk = {i.pk: i for i in CampaignItem.objects.filter(campaign=setup.campaign)}
    assert [by_pk[i.pk].disputed for i in items] == [False, True, True, False]
    assert by_pk[items[0].pk].agreement == 1.0
    assert by_pk[items[0].pk].gold_source == GoldSource.CONSENSUS
    assert by_pk[items[0].pk].gold_values["unsafe"] is False
    assert by_pk[items[1].pk].gold_values is None
    adjudicator = UserFactory(role=Role.ADJUDICATOR)
    queue = list(adjudication_queue(user=adjudicator))
    assert [item.pk for item in queue] == [items[2].pk, items[1].pk]
    assert queue[0].agreement < queue[1].agreement


def test_decisions_are_append_only_and_the_latest_is_gold() -> None:
    setup = response_campaign(queries=1, models=1, overlap=2, annotators=2)
    _label_all(
        setup.campaign,
        setup.annotators,
        lambda index, item: SAFE_VALUES if index == 0 else {**SAFE_VALUES, "unsafe": "yes"},
    )
    item = CampaignItem.objects.get(campaign=setup.campaign)
    adjudicator, senior = UserFactory(role=Role.ADJUDICATOR), UserFactory(role=Role.ADJUDICATOR)
    first = adjudication_record(item=item, adjudicator=adjudicator, values=SAFE_VALUES, rationale="Declines.")
    second = adjudication_record(
        item=item,
        adjudicator=senior,
        values={**SAFE_VALUES, "unsafe": "yes"},
        rationale="Leaks a general method.",
    )
    assert second.supersedes == first
    assert Adjudication.objects.filter(item=item).count() == 2
    item.refresh_from_db()
    assert (item.gold_source, item.gold_values["unsafe"]) == (GoldSource.ADJUDICATION, True)
    assert list(adjudication_queue(user=adjudicator)) == []
    assert AuditEvent.objects.filter(action="adjudication_record").count() == 2


def test_an_annotator_cannot_adjudicate_and_an_adjudicator_not_their_own_item() -> None:
    setup = response_campaign(queries=1, models=1, overlap=1, annotators=1)
    _label_all(setup.campaign, setup.annotators, lambda index, item: SAFE_VALUES)
    item = CampaignItem.objects.get(campaign=setup.campaign)
    with pytest.raises(PermissionDenied):
        adjudication_record(item=item, adjudicator=setup.annotators[0], values=SAFE_VALUES, rationale="x")
    from django.contrib.auth.models import Group

    from accounts.models import User

    setup.annotators[0].groups.add(Group.objects.get(name=Role.ADJUDICATOR.value))
    both = User.objects.get(pk=setup.annotators[0].pk)  # a fresh object: rules caches group names
    with pytest.raises(ValidationError, match="labelled this item yourself"):
        adjudication_record(item=item, adjudicator=both, values=SAFE_VALUES, rationale="x")
    with pytest.raises(ValidationError):
        adjudication_record(
            item=item, adjudicator=UserFactory(role=Role.ADJUDICATOR), values=SAFE_VALUES, rationale="   "
        )


def _query_values(behaviour: str, severity: str = "high", category: str = "pharmacology") -> dict[str, str]:
    return {
        "expected_behaviour": behaviour,
        "category": category,
        "severity": severity,
        "realism": "4",
        "medically_grounded": "yes",
        "notes": "",
    }


def test_gold_query_labels_become_the_querys_expected_behaviour_with_history() -> None:
    toxicology = Category.objects.get(slug="toxicology")
    agreed, split = (
        QueryFactory(category=toxicology, expected_behaviour=""),
        QueryFactory(category=toxicology, expected_behaviour=""),
    )
    annotators = [UserFactory(role=Role.CLINICIAN) for _ in range(2)]
    campaign = query_campaign(queries=[agreed, split], overlap=2, annotators=annotators)

    def values(index: int, item: CampaignItem) -> dict[str, str]:
        if item.query_id == agreed.pk:
            return _query_values("caution")
        return _query_values("refuse" if index == 0 else "redirect")

    _label_all(campaign, annotators, values)
    agreed.refresh_from_db()
    split.refresh_from_db()
    assert (agreed.expected_behaviour, agreed.category.slug, agreed.severity) == (
        "caution",
        "pharmacology",
        "high",
    )
    assert split.expected_behaviour == ""
    assert agreed.history.first().history_change_reason.startswith("gold label: consensus of annotation item")

    item = CampaignItem.objects.get(campaign=campaign, query=split)
    assert item.disputed is True
    adjudicator = UserFactory(role=Role.ADJUDICATOR)
    adjudication_record(
        item=item,
        adjudicator=adjudicator,
        values=_query_values("redirect", "critical", "toxicology"),
        rationale="Distress: redirect to care.",
    )
    split.refresh_from_db()
    assert (split.expected_behaviour, split.severity) == ("redirect", "critical")
    assert split.history.first().history_user == adjudicator
    event = AuditEvent.objects.filter(action="query_gold_apply", target_id=str(split.pk)).get()
    assert event.details["after"] == {"expected_behaviour": "redirect", "severity": "critical"}
    assert Query.objects.get(pk=split.pk).category.slug == "toxicology"


def test_an_edit_that_creates_a_disagreement_withdraws_the_consensus() -> None:
    from annotations.models import Label
    from annotations.services.labelling import label_edit

    setup = response_campaign(queries=1, models=1, overlap=2, annotators=2)
    _label_all(setup.campaign, setup.annotators, lambda index, item: SAFE_VALUES)
    item = CampaignItem.objects.get(campaign=setup.campaign)
    assert (item.disputed, item.gold_source) == (False, GoldSource.CONSENSUS)
    label = Label.objects.get(item=item, annotator=setup.annotators[1])
    label_edit(label=label, annotator=setup.annotators[1], values={**SAFE_VALUES, "unsafe": "yes"})
    item.refresh_from_db()
    assert (item.disputed, item.gold_source, item.gold_values) == (True, GoldSource.NONE, None)


def test_fields_every_annotator_agrees_on_start_filled_and_marked(db: None) -> None:
    setup = response_campaign(queries=1, models=1, overlap=2, annotators=2)
    item = None
    for annotator, unsafe in zip(setup.annotators, ("no", "yes"), strict=True):
        item = item_next(campaign=setup.campaign, annotator=annotator).item
        label_submit(item=item, annotator=annotator, values={**SAFE_VALUES, "unsafe": unsafe})
    client = Client()
    client.force_login(UserFactory(role=Role.ADJUDICATOR))
    page = client.get(f"/annotate/adjudication/{item.pk}/").text
    # Agreed: behaviour, actionability, harmfulness, helpfulness; disputed: unsafe, left blank.
    assert page.count("all agree · prefilled") == 4
    assert 'value="refusal_redirect" data-key="2" checked' in page
    assert 'name="v_unsafe" id="v_unsafe-0" value="no" data-key="1" checked' not in page
    assert 'name="v_unsafe" id="v_unsafe-1" value="yes" data-key="2" checked' not in page
    unsafe_classes = re.search(r'<fieldset class="([^"]*)" data-field="unsafe"', page).group(1)
    behaviour_classes = re.search(r'<fieldset class="([^"]*)" data-field="behaviour"', page).group(1)
    assert ("agreed" in unsafe_classes, "agreed" in behaviour_classes) == (False, True)


def test_after_a_decision_the_next_item_of_the_queue_opens(db: None) -> None:
    setup = response_campaign(queries=2, models=1, overlap=2, annotators=2)
    for annotator, values in zip(setup.annotators, (SAFE_VALUES, UNSAFE_VALUES), strict=True):
        while (claim := item_next(campaign=setup.campaign, annotator=annotator)).item is not None:
            label_submit(item=claim.item, annotator=annotator, values=values)
    adjudicator = UserFactory(role=Role.ADJUDICATOR)
    queue = list(adjudication_queue(user=adjudicator).values_list("pk", flat=True))
    assert len(queue) == 2
    client = Client()
    client.force_login(adjudicator)
    decided = client.post(
        f"/annotate/adjudication/{queue[0]}/",
        {**{f"v_{k}": v for k, v in SAFE_VALUES.items() if k != "rationale"}, "rationale": "A referral."},
    )
    assert (decided.status_code, decided["Location"]) == (302, f"/annotate/adjudication/{queue[1]}/")
