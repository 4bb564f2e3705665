"""Labelling services: next item, leases, submit, edit, skip, flag, sessions and the k rule."""

from datetime import timedelta

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.roles import Role
from annotations.models import CampaignItem, Label, Lease, Skip
from annotations.services.campaigns import campaign_close
from annotations.services.labelling import (
    ClaimOutcome,
    item_flag,
    item_next,
    item_skip,
    label_edit,
    label_submit,
    session_start,
)
from audit.models import AuditEvent
from tests.annotations.factories import SAFE_VALUES, UNSAFE_VALUES, response_campaign
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_next_item_reserves_an_item_and_gives_the_same_one_until_it_is_labelled() -> None:
    setup = response_campaign(queries=2, models=2, overlap=2)
    annotator = setup.annotators[0]
    first = item_next(campaign=setup.campaign, annotator=annotator)
    again = item_next(campaign=setup.campaign, annotator=annotator)
    assert first.outcome == ClaimOutcome.ITEM
    assert again.item.pk == first.item.pk
    assert Lease.objects.get(annotator=annotator).item_id == first.item.pk
    label_submit(item=first.item, annotator=annotator, values=SAFE_VALUES)
    after = item_next(campaign=setup.campaign, annotator=annotator)
    assert after.item.pk != first.item.pk
    assert AuditEvent.objects.filter(action="item_claim", actor=annotator).count() == 2


def test_labels_store_typed_values_and_the_rubric_and_guideline_versions() -> None:
    setup = response_campaign(queries=1, models=1, overlap=1, annotators=1)
    annotator = setup.annotators[0]
    claim = item_next(campaign=setup.campaign, annotator=annotator)
    label = label_submit(item=claim.item, annotator=annotator, values=SAFE_VALUES)
    assert label.values == {
        "unsafe": False,
        "behaviour": "refusal_redirect",
        "actionability": 0,
        "harmfulness": 1,
        "safe_helpfulness": 4,
        "rationale": "Declines and points to care.",
    }
    assert (label.rubric.slug, label.rubric.version) == ("medharm-response", 1)
    assert label.guideline.version == 1
    assert label.guideline_hash == setup.campaign.guideline.content_hash
    assert len(label.guideline_hash) == 64
    assert CampaignItem.objects.get(pk=claim.item.pk).label_count == 1


def test_an_annotator_never_gets_an_item_twice_and_each_item_gets_exactly_k_labels() -> None:
    setup = response_campaign(queries=3, models=2, overlap=2, annotators=3)
    seen: dict[int, list[int]] = {}
    for annotator in setup.annotators:
        while (claim := item_next(campaign=setup.campaign, annotator=annotator)).outcome == ClaimOutcome.ITEM:
            label_submit(item=claim.item, annotator=annotator, values=SAFE_VALUES)
            seen.setdefault(annotator.pk, []).append(claim.item.pk)
        assert claim.outcome == ClaimOutcome.DONE
    for items in seen.values():
        assert len(items) == len(set(items))
    counts = sorted(
        CampaignItem.objects.filter(campaign=setup.campaign).values_list("label_count", flat=True)
    )
    assert counts == [2] * 6
    assert sum(len(v) for v in seen.values()) == 12


def test_a_leased_item_is_not_given_beyond_k_and_returns_when_the_lease_expires() -> None:
    setup = response_campaign(queries=1, models=1, overlap=1, annotators=2)
    first, second = setup.annotators
    claim = item_next(campaign=setup.campaign, annotator=first)
    assert claim.outcome == ClaimOutcome.ITEM
    assert item_next(campaign=setup.campaign, annotator=second).outcome == ClaimOutcome.WAITING
    with time_machine.travel(timezone.now() + timedelta(minutes=setup.campaign.lease_minutes + 1)):
        taken = item_next(campaign=setup.campaign, annotator=second)
        assert taken.item.pk == claim.item.pk
        # The first annotator's reservation ran out and the item went to someone else.
        with pytest.raises(ValidationError, match="ran out"):
            label_submit(item=claim.item, annotator=first, values=SAFE_VALUES)
        label_submit(item=claim.item, annotator=second, values=SAFE_VALUES)
    assert Label.objects.filter(item=claim.item).count() == 1


def test_an_expired_lease_still_counts_if_nobody_took_the_item() -> None:
    setup = response_campaign(queries=1, models=1, overlap=1, annotators=2)
    annotator = setup.annotators[0]
    claim = item_next(campaign=setup.campaign, annotator=annotator)
    with time_machine.travel(timezone.now() + timedelta(hours=3)):
        label = label_submit(item=claim.item, annotator=annotator, values=SAFE_VALUES)
    assert label.item_id == claim.item.pk


def test_the_database_refuses_a_label_count_above_k() -> None:
    setup = response_campaign(queries=1, models=1, overlap=1, annotators=1)
    item = CampaignItem.objects.get(campaign=setup.campaign)
    with pytest.raises(IntegrityError), transaction.atomic():
        CampaignItem.objects.filter(pk=item.pk).update(label_count=2)


def test_submit_without_being_given_the_item_is_refused() -> None:
    setup = response_campaign(queries=2, models=1, overlap=2, annotators=2)
    annotator = setup.annotators[0]
    item = CampaignItem.objects.filter(campaign=setup.campaign).first()
    with pytest.raises(ValidationError, match="not assigned to you"):
        label_submit(item=item, annotator=annotator, values=SAFE_VALUES)


def test_invalid_values_are_refused_field_by_field() -> None:
    setup = response_campaign(queries=1, models=1, overlap=1, annotators=1)
    annotator = setup.annotators[0]
    claim = item_next(campaign=setup.campaign, annotator=annotator)
    with pytest.raises(ValidationError) as caught:
        label_submit(
            item=claim.item,
            annotator=annotator,
            values={**SAFE_VALUES, "actionability": "7", "harmfulness": "", "colour": "blue"},
        )
    assert set(caught.value.message_dict) == {"actionability", "harmfulness", "colour"}
    assert caught.value.message_dict["harmfulness"] == ["required"]
    assert Label.objects.count() == 0


def test_someone_outside_the_pool_cannot_claim_or_submit() -> None:
    setup = response_campaign(queries=1, models=1, overlap=1, annotators=1)
    outsider = UserFactory(role=Role.CLINICIAN)
    adjudicator = UserFactory(role=Role.ADJUDICATOR)
    for user in (outsider, adjudicator):
        with pytest.raises(PermissionDenied):
            item_next(campaign=setup.campaign, annotator=user)


def test_a_closed_campaign_or_one_past_its_deadline_takes_no_labels() -> None:
    setup = response_campaign(
        queries=1, models=1, overlap=1, annotators=1, deadline=timezone.now() + timedelta(days=1)
    )
    annotator = setup.annotators[0]
    claim = item_next(campaign=setup.campaign, annotator=annotator)
    with time_machine.travel(timezone.now() + timedelta(days=2)):
        assert item_next(campaign=setup.campaign, annotator=annotator).outcome == ClaimOutcome.CLOSED
        with pytest.raises(ValidationError, match="not taking labels"):
            label_submit(item=claim.item, annotator=annotator, values=SAFE_VALUES)
    campaign_close(campaign=setup.campaign, actor=setup.maintainer)
    assert Lease.objects.count() == 0
    assert item_next(campaign=setup.campaign, annotator=annotator).outcome == ClaimOutcome.CLOSED


def test_editing_ones_own_label_keeps_the_old_values_in_the_audit_trail() -> None:
    setup = response_campaign(queries=1, models=1, overlap=2, annotators=2)
    first, second = setup.annotators
    claim = item_next(campaign=setup.campaign, annotator=first)
    label = label_submit(item=claim.item, annotator=first, values=SAFE_VALUES)
    with pytest.raises(PermissionDenied):
        label_edit(label=label, annotator=second, values=UNSAFE_VALUES)
    edited = label_edit(label=label, annotator=first, values=UNSAFE_VALUES)
    assert edited.values["unsafe"] is True
    assert edited.revision == 2
    event = AuditEvent.objects.get(action="label_edit")
    assert event.details["before"]["unsafe"] is False
    assert event.details["after"]["unsafe"] is True
    campaign_close(campaign=setup.campaign, actor=setup.maintainer)
    with pytest.raises(ValidationError, match="not taking labels"):
        label_edit(label=label, annotator=first, values=SAFE_VALUES)


def test_a_skipped_item_returns_to_the_pool_but_never_to_the_annotator_who_skipped_it() -> None:
    setup = response_campaign(queries=1, models=1, overlap=1, annotators=2)
    first, second = setup.annotators
    claim = item_next(campaign=setup.campaign, annotator=first)
    item_skip(item=claim.item, annotator=first, reason="expertise", note="Paediatrics")
    assert Skip.objects.get().note == "Paediatrics"
    assert item_next(campaign=setup.campaign, annotator=first).outcome == ClaimOutcome.DONE
    assert item_next(campaign=setup.campaign, annotator=second).item.pk == claim.item.pk
    with pytest.raises(ValidationError):
        item_skip(item=claim.item, annotator=first, reason="because")


def test_flagging_needs_the_item_in_hand_and_does_not_skip_it() -> None:
    setup = response_campaign(queries=2, models=1, overlap=1, annotators=1)
    annotator = setup.annotators[0]
    claim = item_next(campaign=setup.campaign, annotator=annotator)
    other = CampaignItem.objects.filter(campaign=setup.campaign).exclude(pk=claim.item.pk).get()
    flag = item_flag(item=claim.item, annotator=annotator, reason="identity", note="Names itself")
    assert flag.get_reason_display() == "Reveals which model wrote it"
    assert item_next(campaign=setup.campaign, annotator=annotator).item.pk == claim.item.pk
    with pytest.raises(ValidationError, match="only an item you are labelling"):
        item_flag(item=other, annotator=annotator, reason="broken")


def test_a_session_stops_at_its_item_limit() -> None:
    setup = response_campaign(queries=3, models=1, overlap=1, annotators=1, session_item_limit=2)
    annotator = setup.annotators[0]
    session = session_start(campaign=setup.campaign, annotator=annotator)
    for _ in range(2):
        claim = item_next(campaign=setup.campaign, annotator=annotator, session=session)
        label_submit(item=claim.item, annotator=annotator, values=SAFE_VALUES)
    assert (
        item_next(campaign=setup.campaign, annotator=annotator, session=session).outcome
        == ClaimOutcome.SESSION_LIMIT
    )
    fresh = session_start(campaign=setup.campaign, annotator=annotator)
    assert item_next(campaign=setup.campaign, annotator=annotator, session=fresh).outcome == ClaimOutcome.ITEM
    assert Label.objects.filter(session=session).count() == 2
