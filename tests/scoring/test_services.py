"""The flag threshold service: validation, permission, and the audit trail of every change."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from audit.models import AuditEvent
from scoring.models import AnnotatorFlagThreshold
from scoring.services import agreement_threshold_set
from tests.scoring.factories import ScoringWorld, scoring_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def bare(db: None) -> ScoringWorld:
    return scoring_world(label=False)


def test_set_then_change_keeps_one_row_and_audits_both(bare: ScoringWorld) -> None:
    first = agreement_threshold_set(campaign=bare.campaign, actor=bare.maintainer, minimum=0.7)
    second = agreement_threshold_set(
        campaign=bare.campaign,
        actor=bare.maintainer,
        minimum=0.4,
        statistic="cohen_kappa",
        field_name="harmfulness",
        min_items=20,
    )
    assert first.pk == second.pk
    assert AnnotatorFlagThreshold.objects.count() == 1
    events = list(AuditEvent.objects.filter(action="agreement_threshold_set").order_by("pk"))
    assert [e.details["before"] for e in events] == [
        None,
        {"statistic": "percent_agreement", "minimum": 0.7, "field_name": "", "min_items": 10},
    ]
    assert events[1].details["after"] == {
        "statistic": "cohen_kappa",
        "minimum": 0.4,
        "field_name": "harmfulness",
        "min_items": 20,
    }


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"field_name": "rationale"}, "Choose a categorical field"),
        ({"field_name": "nonexistent"}, "Choose a categorical field"),
        ({"minimum": -0.2}, "Percent agreement runs from 0 to 1"),
        ({"minimum": 1.2, "statistic": "cohen_kappa"}, "less than or equal to 1.0"),
        ({"statistic": "accuracy"}, "not a valid choice"),
    ],
)
def test_invalid_thresholds_are_refused(bare: ScoringWorld, changes: dict[str, object], message: str) -> None:
    arguments = {"minimum": 0.7, **changes}
    with pytest.raises(ValidationError, match=message):
        agreement_threshold_set(campaign=bare.campaign, actor=bare.maintainer, **arguments)
    assert not AnnotatorFlagThreshold.objects.exists()
    assert not AuditEvent.objects.filter(action="agreement_threshold_set").exists()


def test_only_maintainers_set_thresholds(bare: ScoringWorld) -> None:
    with pytest.raises(PermissionDenied):
        agreement_threshold_set(campaign=bare.campaign, actor=bare.adjudicator, minimum=0.5)
