"""Hardening of the privileged roles around data access: a release's delegated reviewer must use a
second factor (as the committee does), and gets the shorter privileged session."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import User
from accounts.policy import is_mfa_required, needs_mfa_enrolment
from accounts.roles import Role
from releases.models import Release
from releases.models.releases import DATASHEET_SECTIONS
from tests.factories import UserFactory, totp_enrol

pytestmark = pytest.mark.django_db


def _release(maintainer: User) -> Release:
    return Release.objects.create(
        slug="hardening",
        version=1,
        title="Hardening",
        changelog="Test.",
        datasheet={key: "Test." for key, _ in DATASHEET_SECTIONS},
        created_by=maintainer,
    )


def test_a_delegated_reviewer_must_enrol_a_second_factor(client: Client) -> None:
    release = _release(UserFactory(role=Role.MAINTAINER))
    reviewer = UserFactory(role=Role.CLINICIAN)
    assert needs_mfa_enrolment(reviewer) is False
    release.reviewers.add(reviewer)
    fresh = User.objects.get(pk=reviewer.pk)  # the policy caches its answers on the user object
    assert is_mfa_required(fresh) is True
    assert needs_mfa_enrolment(fresh) is True
    client.force_login(reviewer)
    response = client.get("/access/review/")
    assert (response.status_code, response["Location"]) == (302, "/accounts/2fa/totp/activate/")
    assert client.get("/api/v1/categories/").status_code == 403
    # Once enrolled the reviewer reaches the review pages, in a privileged (30-minute idle) session.
    totp_enrol(reviewer)
    assert client.get("/access/review/").status_code == 200
    assert client.session.get_expiry_age() == 30 * 60


def test_a_reviewer_of_no_release_is_not_privileged() -> None:
    _release(UserFactory(role=Role.MAINTAINER))
    assert is_mfa_required(UserFactory(role=Role.CLINICIAN)) is False
    assert is_mfa_required(UserFactory(role=Role.RESEARCHER)) is False
