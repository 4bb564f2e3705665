"""The suite's own preconditions: PostgreSQL and the seeded roles and categories."""

import pytest
from django.contrib.auth.models import Group
from django.db import connection

from accounts.roles import ROLE_PERMISSIONS
from querybank.models import Category

pytestmark = pytest.mark.django_db


def test_runs_on_postgresql() -> None:
    assert connection.vendor == "postgresql"


def test_every_role_is_a_group_with_exactly_its_permissions() -> None:
    for role, perms in ROLE_PERMISSIONS.items():
        group = Group.objects.get(name=role.value)
        held = {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()}
        assert held == set(perms), role


def test_default_taxonomies_are_seeded() -> None:
    assert Category.objects.filter(taxonomy__slug="medharm").count() == 10
    assert Category.objects.filter(taxonomy__slug="ama-principles").count() == 9
    assert set(Category.objects.filter(taxonomy__slug="medharm").values_list("slug", flat=True)) >= {
        "toxicology",
        "pharmacology",
        "covert-poisoning",
        "anesthesia",
        "fetal-harm",
    }
