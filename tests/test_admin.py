"""Every model of ours is in the Django admin, and each changelist renders for a superuser."""

import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse

from tests.factories import UserFactory

OUR_APPS = (
    "accounts",
    "audit",
    "querybank",
    "annotations",
    "evaluations",
    "scoring",
    "judging",
    "releases",
    "access",
)


def our_models() -> list[type]:
    return [
        model
        for label in OUR_APPS
        for model in apps.get_app_config(label).get_models()
        if not model.__name__.startswith("Historical")  # simple_history's shadow tables
    ]


def test_every_model_is_registered() -> None:
    missing = [m._meta.label for m in our_models() if not admin.site.is_registered(m)]
    assert missing == []


@pytest.mark.django_db
@pytest.mark.parametrize("model", our_models(), ids=lambda m: m._meta.label)
def test_changelist_renders(client, model: type) -> None:
    superuser = UserFactory(is_staff=True, is_superuser=True)
    client.force_login(superuser)
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    response = client.get(url)
    assert response.status_code == 200, url
