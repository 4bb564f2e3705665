"""The scoring records are in the Django admin, read-only, and their changelists render."""

import pytest
from django.contrib import admin

from scoring.models import AnnotatorFlagThreshold, Report
from scoring.services import agreement_threshold_set, report_create
from tests.factories import UserFactory
from tests.scoring.factories import ScoringWorld

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("model", [AnnotatorFlagThreshold, Report])
def test_changelist_renders_read_only(client, world: ScoringWorld, model: type) -> None:
    agreement_threshold_set(campaign=world.campaign, actor=world.maintainer, minimum=0.7)
    report_create(campaign=world.campaign, actor=world.maintainer, resamples=20)
    superuser = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(superuser)
    url = f"/admin/scoring/{model._meta.model_name}/"
    response = client.get(url)
    assert response.status_code == 200
    assert world.campaign.name in response.content.decode()
    assert client.get(url + "add/").status_code == 403
    assert not admin.site._registry[model].has_delete_permission(None)
