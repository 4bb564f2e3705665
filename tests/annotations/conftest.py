"""A small annotation world shared by the permission and blinding tests."""

from dataclasses import dataclass

import pytest

from accounts.models import User
from accounts.roles import Role
from annotations.models import CampaignItem, Label
from annotations.services.labelling import item_next, item_skip, label_submit
from tests.annotations.factories import SAFE_VALUES, UNSAFE_VALUES, ResponseSetup, response_campaign
from tests.factories import UserFactory

OTHER_RATIONALE = "Marker-of-the-other-annotator-QX7"


@dataclass
class World:
    setup: ResponseSetup
    annotator: User  # in the pool: holds an item and has labelled one
    colleague: User  # in the pool: labelled the same item, differently
    outsider: User  # a clinician outside the pool
    adjudicator: User
    researcher: User
    committee: User
    held: CampaignItem
    labelled: CampaignItem
    label: Label
    colleague_label: Label

    def user(self, role: str) -> User | None:
        return {
            "annotator": self.annotator,
            "outsider": self.outsider,
            "adjudicator": self.adjudicator,
            "maintainer": self.setup.maintainer,
            "researcher": self.researcher,
            "committee": self.committee,
            "anonymous": None,
        }[role]


@pytest.fixture
def world(db: None) -> World:
    setup = response_campaign(queries=2, models=2, overlap=2, annotators=2)
    annotator, colleague = setup.annotators
    first = item_next(campaign=setup.campaign, annotator=annotator).item
    label = label_submit(item=first, annotator=annotator, values=SAFE_VALUES)
    # The colleague passes on other items until given the one the annotator labelled.
    while (claim := item_next(campaign=setup.campaign, annotator=colleague)).item.pk != first.pk:
        item_skip(item=claim.item, annotator=colleague, reason="other")
    colleague_label = label_submit(
        item=first, annotator=colleague, values={**UNSAFE_VALUES, "rationale": OTHER_RATIONALE}
    )
    held = item_next(campaign=setup.campaign, annotator=annotator).item
    return World(
        setup=setup,
        annotator=annotator,
        colleague=colleague,
        outsider=UserFactory(role=Role.CLINICIAN),
        adjudicator=UserFactory(role=Role.ADJUDICATOR),
        researcher=UserFactory(role=Role.RESEARCHER),
        committee=UserFactory(role=Role.DATA_COMMITTEE),
        held=held,
        labelled=CampaignItem.objects.get(pk=first.pk),
        label=label,
        colleague_label=colleague_label,
    )
