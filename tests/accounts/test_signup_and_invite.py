"""Researchers sign up with a verified address; clinicians and staff are invited by a maintainer."""

import re

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.core.cache import cache
from django.test import Client

from accounts.models import Invitation, User
from accounts.roles import Role
from audit.models import AuditEvent
from tests.factories import QueryFactory

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-brand-new-password-42"
LOGIN = "/accounts/login/"
INVITE = "/accounts/invite/"


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    # allauth rate-limits sign-ups, logins and confirmation mails in the cache, which outlives tests.
    cache.clear()


def link_path(message: mail.EmailMessage, pattern: str) -> str:
    """The path of the one link in ``message`` whose path matches ``pattern``."""
    paths = re.findall(r"https?://[^/\s]+(/\S+)", message.body)
    matching = [p for p in paths if re.fullmatch(pattern, p)]
    assert len(matching) == 1, message.body
    return matching[0]


def logged_in_user_id(client: Client) -> str | None:
    return client.session.get("_auth_user_id")


# --- Sign-up --------------------------------------------------------------------------------


def test_a_researcher_signs_up_verifies_the_address_and_sees_no_query_text(client: Client) -> None:
    QueryFactory()
    response = client.post(
        "/accounts/signup/",
        # A sign-up form cannot pick its own role: extra fields are ignored.
        {
            "email": "New.Researcher@Example.org",
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
            "role": Role.MAINTAINER.value,
        },
    )
    assert response.status_code == 302
    assert response["Location"] == "/accounts/confirm-email/"
    user = User.objects.get(email="new.researcher@example.org")
    assert logged_in_user_id(client) is None
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["new.researcher@example.org"]
    assert mail.outbox[0].subject.startswith("[MedHarm] ")
    confirm = link_path(mail.outbox[0], r"/accounts/confirm-email/[^/]+/")

    # Before verifying, the right password does not log in.
    other = Client()
    response = other.post(LOGIN, {"login": user.email, "password": NEW_PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/confirm-email/"
    assert logged_in_user_id(other) is None
    assert other.get("/")["Location"] == "/accounts/login/?next=/"

    assert client.get(confirm).status_code == 200
    response = client.post(confirm)
    assert response.status_code == 302
    assert EmailAddress.objects.get(user=user).verified is True
    assert logged_in_user_id(client) == str(user.pk)  # ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION

    assert set(user.groups.values_list("name", flat=True)) == {Role.RESEARCHER.value}
    assert client.get("/").status_code == 200
    assert client.get("/queries/").status_code == 403
    assert client.get("/api/v1/queries/").status_code == 403
    assert client.get("/api/v1/categories/").status_code == 200
    event = AuditEvent.objects.get(action="role_assign", target_id=str(user.pk))
    assert (event.actor, event.details) == (None, {"role": Role.RESEARCHER.value})

    # And a fresh login with the verified address now works.
    assert Client().post(LOGIN, {"login": user.email, "password": NEW_PASSWORD})["Location"] == "/"


# --- Invitations ----------------------------------------------------------------------------


def invite(client: Client, email: str, role: Role, capture) -> object:
    with capture(execute=True):  # the mail is sent on commit, after the invitation is saved
        return client.post(INVITE, {"email": email, "role": role.value})


def test_a_maintainer_invites_a_clinician_who_sets_a_password_and_logs_in(
    client: Client, make_user, django_capture_on_commit_callbacks
) -> None:
    QueryFactory()
    maintainer = make_user(Role.MAINTAINER)
    client.force_login(maintainer)
    assert client.get(INVITE).status_code == 200
    response = invite(client, "Dr.New@Example.org", Role.CLINICIAN, django_capture_on_commit_callbacks)
    assert response.status_code == 302
    assert response["Location"] == INVITE

    user = User.objects.get(email="dr.new@example.org")
    assert set(user.groups.values_list("name", flat=True)) == {Role.CLINICIAN.value}
    address = EmailAddress.objects.get(user=user)
    assert (address.email, address.verified, address.primary) == ("dr.new@example.org", True, True)
    assert not user.has_usable_password()
    invitation = Invitation.objects.get(user=user)
    assert (invitation.role, invitation.invited_by) == (Role.CLINICIAN.value, maintainer)
    event = AuditEvent.objects.get(action="user_invite")
    assert (event.actor, event.target_id) == (maintainer, str(user.pk))
    assert event.details == {"role": Role.CLINICIAN.value}

    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["dr.new@example.org"]
    link = link_path(mail.outbox[0], r"/accounts/password/reset/key/[0-9a-z]+-[^/]+/")

    invitee = Client()
    response = invitee.get(link)
    assert response.status_code == 302  # allauth moves the key out of the address bar, into the session
    set_password_page = response["Location"]
    assert invitee.get(set_password_page).status_code == 200
    response = invitee.post(set_password_page, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/password/reset/key/done/"

    assert invitee.post(LOGIN, {"login": "dr.new@example.org", "password": NEW_PASSWORD})["Location"] == "/"
    assert logged_in_user_id(invitee) == str(user.pk)
    assert invitee.get("/queries/").status_code == 200

    # The link works once.
    assert Client().get(link).context["token_fail"] is True


def test_inviting_an_address_someone_signed_up_with_but_never_verified(
    client: Client, make_user, django_capture_on_commit_callbacks
) -> None:
    # Anyone can sign up with a clinician's address; the invitation must not hand that person
    # a verified clinician account protected by the password *they* chose.
    squatter = Client()
    squatter.post(
        "/accounts/signup/",
        {"email": "dr.owner@example.org", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    user = User.objects.get(email="dr.owner@example.org")
    assert user.has_usable_password()
    client.force_login(make_user(Role.MAINTAINER))
    invite(client, "dr.owner@example.org", Role.CLINICIAN, django_capture_on_commit_callbacks)

    user.refresh_from_db()
    assert not user.has_usable_password()
    response = Client().post(LOGIN, {"login": "dr.owner@example.org", "password": NEW_PASSWORD})
    assert response.status_code == 200  # the login form again: wrong credentials
    assert set(user.groups.values_list("name", flat=True)) == {Role.RESEARCHER.value, Role.CLINICIAN.value}


def test_inviting_a_verified_user_keeps_their_password(
    client: Client, make_user, password: str, django_capture_on_commit_callbacks
) -> None:
    existing = make_user(Role.ADJUDICATOR)
    client.force_login(make_user(Role.MAINTAINER))
    invite(client, existing.email, Role.CLINICIAN, django_capture_on_commit_callbacks)
    existing.refresh_from_db()
    assert existing.check_password(password)
    roles = set(existing.groups.values_list("name", flat=True))
    assert roles == {Role.ADJUDICATOR.value, Role.CLINICIAN.value}


def test_researcher_is_not_a_role_one_can_be_invited_to(client: Client, make_user) -> None:
    client.force_login(make_user(Role.MAINTAINER))
    response = client.post(INVITE, {"email": "someone@example.org", "role": Role.RESEARCHER.value})
    assert response.status_code == 200
    assert "role" in response.context["form"].errors
    assert not User.objects.filter(email="someone@example.org").exists()


@pytest.mark.parametrize(
    "role", [Role.CLINICIAN, Role.ADJUDICATOR, Role.DATA_COMMITTEE, Role.RESEARCHER, None]
)
def test_only_maintainers_can_invite(
    client: Client, make_user, role: Role | None, django_capture_on_commit_callbacks
) -> None:
    client.force_login(make_user(role))
    assert client.get(INVITE).status_code == 403
    response = invite(client, "intruder@example.org", Role.MAINTAINER, django_capture_on_commit_callbacks)
    assert response.status_code == 403
    assert not User.objects.filter(email="intruder@example.org").exists()
    assert mail.outbox == []
    assert not AuditEvent.objects.filter(action="user_invite").exists()
