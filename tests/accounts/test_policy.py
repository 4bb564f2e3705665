"""The access policy's predicates agree with their selectors, and say what each kind of user may do."""

import pytest
from django.contrib.auth.models import AnonymousUser

from accounts.policy import (
    can_export_queries,
    can_import_queries,
    can_invite_users,
    can_read_query_text,
    needs_mfa_enrolment,
)
from accounts.roles import Role
from querybank.models import Query
from querybank.selectors import category_list_for_user, query_get_for_user, query_list_for_user
from tests.factories import QueryFactory, UserFactory

pytestmark = pytest.mark.django_db


def _user(kind: str):
    if kind == "anonymous":
        return AnonymousUser()
    if kind == "superuser":
        return UserFactory(is_superuser=True, is_staff=True)
    if kind == "no role":
        return UserFactory()
    if kind == "inactive clinician":
        return UserFactory(role=Role.CLINICIAN, is_active=False)
    if kind == "inactive superuser":
        return UserFactory(is_superuser=True, is_staff=True, is_active=False)
    return UserFactory(role=Role(kind))


# kind of user → may read query text (the table the policy must implement)
READS = {
    Role.CLINICIAN.value: True,
    Role.ADJUDICATOR.value: True,
    Role.MAINTAINER.value: True,
    Role.DATA_COMMITTEE.value: False,
    Role.RESEARCHER.value: False,
    "superuser": True,
    "no role": False,
    "inactive clinician": False,
    "inactive superuser": False,
    "anonymous": False,
}


@pytest.mark.parametrize(("kind", "reads"), READS.items())
def test_can_read_query_text_agrees_with_query_list_for_user(kind: str, reads: bool) -> None:
    all_ids = {q.pk for q in QueryFactory.create_batch(3)}
    user = _user(kind)
    listed = set(query_list_for_user(user=user).values_list("pk", flat=True))
    assert can_read_query_text(user) is reads
    # The predicate is true exactly when the selector returns every query, false exactly when none.
    assert (listed == all_ids) is reads
    assert (listed == set()) is (not reads)
    assert user.has_perm("querybank.read_query_text") is reads


@pytest.mark.parametrize(("kind", "reads"), READS.items())
def test_single_query_look_up_follows_the_same_rule(kind: str, reads: bool) -> None:
    query = QueryFactory()
    user = _user(kind)
    if reads:
        assert query_get_for_user(user=user, query_id=query.pk) == query
    else:
        with pytest.raises(Query.DoesNotExist):
            query_get_for_user(user=user, query_id=query.pk)


@pytest.mark.parametrize(("kind", "reads"), READS.items())
def test_categories_are_listed_to_active_users_with_counts_for_readers(kind: str, reads: bool) -> None:
    user = _user(kind)
    categories = category_list_for_user(user=user)
    active = kind not in {"anonymous", "inactive clinician", "inactive superuser"}
    assert categories.count() == (19 if active else 0)
    if active:
        assert hasattr(categories.first(), "query_count") is reads


# kind → (import, export, invite): the staff actions, maintainers (and superusers) only
STAFF_ACTIONS = {
    Role.CLINICIAN.value: False,
    Role.ADJUDICATOR.value: False,
    Role.MAINTAINER.value: True,
    Role.DATA_COMMITTEE.value: False,
    Role.RESEARCHER.value: False,
    "superuser": True,
    "no role": False,
    "inactive superuser": False,
    "anonymous": False,
}


@pytest.mark.parametrize(("kind", "allowed"), STAFF_ACTIONS.items())
def test_staff_actions(kind: str, allowed: bool) -> None:
    user = _user(kind)
    assert can_import_queries(user) is allowed
    assert can_export_queries(user) is allowed
    assert can_invite_users(user) is allowed


@pytest.mark.parametrize(
    ("kind", "enrolled", "must_enrol"),
    [
        (Role.MAINTAINER.value, False, True),
        (Role.MAINTAINER.value, True, False),
        (Role.DATA_COMMITTEE.value, False, True),
        (Role.DATA_COMMITTEE.value, True, False),
        ("staff", False, True),
        ("superuser", False, True),
        (Role.CLINICIAN.value, False, False),
        (Role.ADJUDICATOR.value, False, True),
        (Role.ADJUDICATOR.value, True, False),
        (Role.RESEARCHER.value, False, False),
        ("anonymous", False, False),
    ],
)
def test_who_must_enrol_a_second_factor(kind: str, enrolled: bool, must_enrol: bool) -> None:
    if kind == "anonymous":
        user = AnonymousUser()
    elif kind == "staff":
        user = UserFactory(is_staff=True, mfa=enrolled)
    elif kind == "superuser":
        user = UserFactory(is_staff=True, is_superuser=True, mfa=enrolled)
    else:
        user = UserFactory(role=Role(kind), mfa=enrolled)
    assert needs_mfa_enrolment(user) is must_enrol


def test_the_role_names_read_in_sql_are_the_users_groups() -> None:
    """``_role_names`` reads the groups by hand-written SQL (it runs on every request): the same
    names as the ORM's ``user.groups``, and none for a user without a role."""
    from django.contrib.auth.models import Group

    from accounts.models import User
    from accounts.policy import _role_names

    user = UserFactory(role=Role.CLINICIAN)
    user.groups.add(Group.objects.get_or_create(name=Role.ADJUDICATOR.value)[0])
    fresh = User.objects.get(pk=user.pk)
    assert _role_names(fresh) == set(fresh.groups.values_list("name", flat=True))
    assert _role_names(fresh) == {Role.CLINICIAN.value, Role.ADJUDICATOR.value}
    assert _role_names(User.objects.get(pk=UserFactory().pk)) == set()
