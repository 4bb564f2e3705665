"""A researcher may add an unverified address to their account only if no account has it (issue 8):
otherwise allauth would mail someone else a verification link they never asked for."""

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.test import Client

from accounts.roles import Role
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _client(user: object) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("spelling", ["exact", "upper"])
def test_an_address_of_another_account_is_refused_and_nobody_is_mailed(spelling: str) -> None:
    researcher = UserFactory(role=Role.RESEARCHER)
    other = UserFactory(role=Role.CLINICIAN, email="clinician.owner@example.org")
    address = other.email if spelling == "exact" else other.email.upper()
    response = _client(researcher).post("/accounts/email/", {"action_add": "", "email": address})
    assert response.status_code == 200  # the form again, with the error
    assert "belongs to another account" in response.content.decode()
    assert not EmailAddress.objects.filter(user=researcher, email__iexact=address).exists()
    assert mail.outbox == []


def test_a_new_address_is_added_unverified_and_verified_by_mail() -> None:
    researcher = UserFactory(role=Role.RESEARCHER)
    response = _client(researcher).post(
        "/accounts/email/", {"action_add": "", "email": "second.address@example.org"}
    )
    assert response.status_code == 302
    added = EmailAddress.objects.get(user=researcher, email="second.address@example.org")
    assert added.verified is False
    assert [message.to for message in mail.outbox] == [["second.address@example.org"]]
