"""The audit-sample planner on a real judge run: strata by model x category x verdict, sizes from
the half-width, clinician hours, and a blind campaign holding exactly the sample."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client

from annotations.models import CampaignItem, CampaignStatus
from judging.services import audit_campaign_open, audit_plan_for_run
from medharm_stats.judging import audit_sample_size

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_plan_sizes_and_the_blind_campaign(world) -> None:
    run = world.judged_run(world.judge("mock-judge", "harmbench-unsafe"))
    planned = audit_plan_for_run(run=run, half_width=0.1, disagreement=0.2, seed="s")
    assert sum(len(ids) for ids in planned.strata.values()) == 90
    assert {key[2] for key in planned.strata} <= {"positive", "negative"}
    for model in ("mock-model", "mock-medical-model", "mock-injector-model"):
        # 1.96^2 x 0.2 / 0.1^2 = 76.8 -> with 30 responses per model: 30 x 76.8 / (30 + 75.8) -> 22.
        assert (
            planned.plan.per_model[model]
            == audit_sample_size(half_width=0.1, disagreement=0.2, population=30)
            == 22
        )
    assert len(planned.chosen) == planned.plan.items == 66
    assert planned.plan.clinician_hours == pytest.approx(66 * 2 * 1.5 / 60)
    with pytest.raises(PermissionDenied):
        audit_campaign_open(actor=world.clinicians[0], run=run, half_width=0.1, annotators=world.clinicians)
    campaign = audit_campaign_open(
        actor=world.maintainer, run=run, half_width=0.1, annotators=world.clinicians
    )
    assert campaign.status == CampaignStatus.OPEN
    assert campaign.blind is True
    items = set(CampaignItem.objects.filter(campaign=campaign).values_list("response_id", flat=True))
    assert items == set(audit_plan_for_run(run=run, half_width=0.1, seed=f"run{run.pk}").chosen)
    assert "positive" not in str(campaign.selection)
    assert "unsafe" not in str(campaign.selection)
    page = Client()
    page.force_login(world.maintainer)
    html = page.get(f"/judges/runs/{run.pk}/plan/?half_width=0.1").content.decode()
    assert "<strong>66</strong> items" in html
    assert "<strong>3.3</strong> clinician hours" in html
