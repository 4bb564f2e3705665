"""The admin is no side door: models whose writes are audited by a service can be viewed there, never
added, changed or deleted; roles change only through the audited role actions."""

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Group
from django.test import RequestFactory

from accounts.roles import Role
from audit.models import AuditEvent
from tests.factories import UserFactory
from tests.test_admin import OUR_APPS

# The models that may still be edited in the admin, and why: no service writes them yet.
EDITABLE = {
    "querybank.Taxonomy": "taxonomies get pages and services with issue 14",
    "querybank.Category": "categories get pages and services with issue 14",
    "annotations.Guideline": "adding publishes a new version through guideline_publish",
}


def audited_models() -> list[type]:
    return [
        model
        for label in OUR_APPS
        for model in apps.get_app_config(label).get_models()
        if admin.site.is_registered(model) and model._meta.label not in EDITABLE
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("model", audited_models(), ids=lambda m: m._meta.label)
def test_no_add_change_or_delete(model: type) -> None:
    request = RequestFactory().get("/admin/")
    request.user = UserFactory(is_staff=True, is_superuser=True)
    model_admin = admin.site._registry[model]
    assert (
        model_admin.has_add_permission(request),
        model_admin.has_change_permission(request, None),
        model_admin.has_delete_permission(request, None),
    ) == (False, False, False)


@pytest.mark.django_db
def test_user_change_form_is_refused(client) -> None:
    superuser = UserFactory(is_staff=True, is_superuser=True)
    target = UserFactory()
    client.force_login(superuser)
    response = client.post(
        f"/admin/accounts/user/{target.pk}/change/",
        {"email": target.email, "groups": [Group.objects.get(name=Role.MAINTAINER.value).pk]},
    )
    assert response.status_code == 403
    assert not target.groups.filter(name=Role.MAINTAINER.value).exists()


@pytest.mark.django_db
def test_role_action_goes_through_the_audited_service(client) -> None:
    superuser = UserFactory(is_staff=True, is_superuser=True)
    target = UserFactory()
    client.force_login(superuser)
    response = client.post(
        "/admin/accounts/user/",
        {"action": "grant_adjudicator", "_selected_action": [target.pk]},
    )
    assert response.status_code == 302
    assert list(target.groups.values_list("name", flat=True)) == [Role.ADJUDICATOR.value]
    event = AuditEvent.objects.get(action="role_assign", target_id=str(target.pk))
    assert (event.actor_id, event.details) == (superuser.pk, {"role": Role.ADJUDICATOR.value})
