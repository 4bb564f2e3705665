"""Login lockout (django-axes behind allauth's login form): by account and address, 5 failures."""

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.core.cache import cache
from django.test import Client

from accounts.roles import Role

pytestmark = pytest.mark.django_db

LOGIN = "/accounts/login/"
WRONG = "not-the-password-at-all"


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    # allauth's own login rate limits live in the cache, which outlives each test's transaction.
    cache.clear()


def attempt(client: Client, email: str, password: str):
    return client.post(LOGIN, {"login": email, "password": password})


def is_lockout_page(response: object) -> bool:
    names = [t.name for t in response.templates]  # type: ignore[attr-defined]
    return "account/lockout.html" in names and b"Too many failed logins" in response.content  # type: ignore[attr-defined]


def test_the_settings_under_test() -> None:
    assert settings.AXES_FAILURE_LIMIT == 5
    assert settings.AXES_LOCKOUT_PARAMETERS == [["username", "ip_address"]]


def test_five_failures_lock_the_account_even_against_the_right_password(
    client: Client, make_user, password: str
) -> None:
    user = make_user(Role.CLINICIAN)
    for _ in range(4):
        response = attempt(client, user.email, WRONG)
        assert response.status_code == 200  # the form again, with its error
        assert not is_lockout_page(response)
    fifth = attempt(client, user.email, WRONG)
    assert fifth.status_code == 429  # axes' default AXES_HTTP_RESPONSE_CODE
    assert is_lockout_page(fifth)

    right = attempt(client, user.email, password)
    assert right.status_code == 429
    assert is_lockout_page(right)
    assert "_auth_user_id" not in client.session
    assert client.get("/")["Location"] == "/accounts/login/?next=/"

    record = AccessAttempt.objects.get()
    assert (record.username, record.ip_address, record.failures_since_start) == (user.email, "127.0.0.1", 5)


def test_the_lockout_ignores_the_case_of_the_address(client: Client, make_user, password: str) -> None:
    user = make_user(Role.CLINICIAN)
    for variant in ["A", "B", "C", "D", "E"]:
        attempt(client, user.email.upper() if variant in "ACE" else user.email, WRONG)
    assert attempt(client, user.email, password).status_code == 429


def test_another_account_from_the_same_address_is_not_locked(
    client: Client, make_user, password: str
) -> None:
    locked, other = make_user(Role.CLINICIAN), make_user(Role.CLINICIAN)
    for _ in range(5):
        attempt(client, locked.email, WRONG)
    assert attempt(client, locked.email, password).status_code == 429

    response = Client().post(LOGIN, {"login": other.email, "password": password})
    assert response.status_code == 302
    assert response["Location"] == "/"


def test_a_successful_login_clears_earlier_failures(client: Client, make_user, password: str) -> None:
    user = make_user(Role.CLINICIAN)
    for _ in range(4):
        attempt(client, user.email, WRONG)
    assert attempt(client, user.email, password)["Location"] == "/"
    assert not AccessAttempt.objects.filter(username=user.email).exists()  # AXES_RESET_ON_SUCCESS
    client.post("/accounts/logout/")
    assert attempt(client, user.email, WRONG).status_code == 200  # one failure, not the sixth
