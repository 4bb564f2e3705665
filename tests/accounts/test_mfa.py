"""Two-factor authentication: required for staff, maintainers and the data committee; open to all."""

import json
from datetime import UTC, datetime

import pytest
import time_machine
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value, yield_hotp_counters_from_time
from django.core.cache import cache
from django.test import Client

from accounts.models import ApiToken as Token
from accounts.roles import Role
from tests.factories import QueryFactory, totp_enrol

pytestmark = pytest.mark.django_db

ACTIVATE = "/accounts/2fa/totp/activate/"
AUTHENTICATE = "/accounts/2fa/authenticate/"
LOGIN = "/accounts/login/"
REAUTHENTICATE = "/accounts/reauthenticate/"


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    # allauth keeps rate limits and used TOTP codes in the cache, which outlives each test.
    cache.clear()


@pytest.fixture
def frozen_clock():
    # A TOTP code is valid for one 30-second step: freeze time so that computing a code and
    # submitting it can never straddle a step boundary.
    with time_machine.travel(datetime.now(tz=UTC), tick=False) as traveller:
        yield traveller


def current_code(secret: str) -> str:
    """The code an authenticator app shows now, computed with allauth's own TOTP functions."""
    counters = list(yield_hotp_counters_from_time())
    return format_hotp_value(hotp_value(secret, counters[len(counters) // 2]))


def wrong_code(secret: str) -> str:
    valid = {format_hotp_value(hotp_value(secret, c)) for c in yield_hotp_counters_from_time()}
    return next(f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" not in valid)


def open_enrolment(client: Client, password: str) -> str:
    """Open the TOTP activation page; returns the secret it offers.

    allauth asks for the password again before any change to the second factor, even right after
    login (a session left open on a shared computer must not be enough).
    """
    response = client.get(ACTIVATE)
    assert response.status_code == 302
    assert response["Location"] == f"{REAUTHENTICATE}?next=%2Faccounts%2F2fa%2Ftotp%2Factivate%2F"
    response = client.post(response["Location"], {"password": password})
    assert response["Location"] == ACTIVATE
    page = client.get(ACTIVATE)
    assert page.status_code == 200
    return client.session["mfa.totp.secret"]


def logged_in_user_id(client: Client) -> str | None:
    return client.session.get("_auth_user_id")


def _unenrolled(make_user, who: str):
    if who == "staff":
        return make_user(None, is_staff=True, mfa=False)
    return make_user(Role(who), mfa=False)


MUST_ENROL = [Role.MAINTAINER.value, Role.DATA_COMMITTEE.value, Role.ADJUDICATOR.value, "staff"]
PAGES = ["/", "/queries/", "/queries/import/", "/accounts/invite/", "/admin/"]
API = ["/api/v1/categories/", "/api/v1/queries/", "/api/schema/", "/api/docs/"]


@pytest.mark.parametrize("who", MUST_ENROL)
@pytest.mark.parametrize("path", PAGES)
def test_staff_without_a_second_factor_are_sent_to_enrol_from_every_page(
    client: Client, make_user, who: str, path: str
) -> None:
    client.force_login(_unenrolled(make_user, who))
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == ACTIVATE


def test_an_htmx_request_is_redirected_as_a_whole_page(client: Client, make_user) -> None:
    client.force_login(_unenrolled(make_user, Role.MAINTAINER.value))
    response = client.get("/queries/?q=x", HTTP_HX_REQUEST="true")
    assert response.status_code == 204
    assert response["HX-Redirect"] == ACTIVATE


@pytest.mark.parametrize("who", MUST_ENROL)
@pytest.mark.parametrize("path", API)
def test_staff_without_a_second_factor_get_403_from_the_api(
    client: Client, make_user, who: str, path: str
) -> None:
    client.force_login(_unenrolled(make_user, who))
    response = client.get(path)
    assert response.status_code == 403
    assert "Two-factor authentication is required" in json.loads(response.content)["detail"]


@pytest.mark.parametrize("who", MUST_ENROL)
@pytest.mark.parametrize("path", ["/api/v1/categories/", "/api/v1/queries/", "/api/v1/auth/token/"])
def test_staff_without_a_second_factor_get_403_with_a_token_too(
    client: Client, make_user, who: str, path: str
) -> None:
    # Token requests pass the page middleware as anonymous; the API permission must catch them.
    token = Token.objects.create(user=_unenrolled(make_user, who))
    response = client.get(path, HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 403
    assert "Two-factor authentication is required" in response.json()["detail"]


def test_enrolment_pages_and_logout_stay_reachable(client: Client, make_user) -> None:
    client.force_login(_unenrolled(make_user, Role.MAINTAINER.value))
    assert client.get("/accounts/2fa/").status_code == 200
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert logged_in_user_id(client) is None


@pytest.mark.parametrize("role", [Role.CLINICIAN, Role.RESEARCHER])
def test_other_roles_are_not_forced_to_enrol(client: Client, make_user, role: Role) -> None:
    user = make_user(role)
    assert not Authenticator.objects.filter(user=user).exists()
    client.force_login(user)
    assert client.get("/").status_code == 200
    assert client.get("/api/v1/categories/").status_code == 200


def test_a_clinician_may_enrol_and_then_needs_the_code_to_log_in(
    client: Client, make_user, password: str, frozen_clock: object
) -> None:
    user = make_user(Role.CLINICIAN)
    assert client.post(LOGIN, {"login": user.email, "password": password}).status_code == 302
    secret = open_enrolment(client, password)
    assert client.post(ACTIVATE, {"code": wrong_code(secret)}).status_code == 200
    assert not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()
    assert client.post(ACTIVATE, {"code": current_code(secret)}).status_code == 302
    assert Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()

    client.post("/accounts/logout/")
    response = client.post(LOGIN, {"login": user.email, "password": password})
    assert response["Location"] == AUTHENTICATE
    assert logged_in_user_id(client) is None


def test_an_unenrolled_maintainer_enrols_after_login_and_then_reaches_the_platform(
    client: Client, make_user, password: str, frozen_clock: object
) -> None:
    user = make_user(Role.MAINTAINER, mfa=False)
    assert client.post(LOGIN, {"login": user.email, "password": password})["Location"] == "/"
    assert client.get("/")["Location"] == ACTIVATE
    code = current_code(open_enrolment(client, password))
    assert client.post(ACTIVATE, {"code": code}).status_code == 302
    assert client.get("/").status_code == 200


def test_an_enrolled_maintainer_logs_in_with_password_then_code(
    client: Client, make_user, password: str, frozen_clock: object
) -> None:
    user = make_user(Role.MAINTAINER, mfa=False)
    secret = totp_enrol(user)
    query = QueryFactory()

    response = client.post(LOGIN, {"login": user.email, "password": password})
    assert response.status_code == 302
    assert response["Location"] == AUTHENTICATE
    # The password alone logs no one in.
    assert logged_in_user_id(client) is None
    assert client.get(f"/queries/{query.pk}/")["Location"] == f"{LOGIN}?next=/queries/{query.pk}/"

    refused = client.post(AUTHENTICATE, {"code": wrong_code(secret)})
    assert refused.status_code == 200
    assert "Incorrect code." in refused.content.decode()
    assert logged_in_user_id(client) is None

    accepted = client.post(AUTHENTICATE, {"code": current_code(secret)})
    assert accepted.status_code == 302
    assert accepted["Location"] == "/"
    assert logged_in_user_id(client) == str(user.pk)
    assert client.get(f"/queries/{query.pk}/").status_code == 200


def test_a_used_code_cannot_be_replayed(
    client: Client, make_user, password: str, frozen_clock: object
) -> None:
    user = make_user(Role.DATA_COMMITTEE, mfa=False)
    secret = totp_enrol(user)
    code = current_code(secret)
    client.post(LOGIN, {"login": user.email, "password": password})
    assert client.post(AUTHENTICATE, {"code": code})["Location"] == "/"
    client.post("/accounts/logout/")

    client.post(LOGIN, {"login": user.email, "password": password})
    assert client.post(AUTHENTICATE, {"code": code}).status_code == 200
    assert logged_in_user_id(client) is None


def test_the_admin_login_page_cannot_skip_the_second_factor(client: Client, make_user, password: str) -> None:
    # Django's own admin login form checks only the password; staff must log in through allauth's
    # flow, which asks for the TOTP code.
    staff = make_user(None, is_staff=True, is_superuser=True)
    assert Authenticator.objects.filter(user=staff, type=Authenticator.Type.TOTP).exists()
    credentials = {"username": staff.email, "password": password, "next": "/admin/"}
    response = client.post("/admin/login/", credentials)
    assert logged_in_user_id(client) is None
    assert response.status_code == 302
    assert response["Location"].startswith(f"{LOGIN}?next=")
