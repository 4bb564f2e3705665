"""Privileged sessions are shorter: whoever must use a second factor is signed out after
PRIVILEGED_SESSION_IDLE without a request and PRIVILEGED_SESSION_MAX after sign-in; other
accounts keep SESSION_COOKIE_AGE."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.conf import settings
from django.test import Client

from accounts.roles import Role
from tests.accounts.test_signup_and_invite import logged_in_user_id

pytestmark = pytest.mark.django_db

START = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def test_the_durations_are_those_documented() -> None:
    assert (settings.PRIVILEGED_SESSION_IDLE, settings.PRIVILEGED_SESSION_MAX) == (30 * 60, 8 * 3600)
    assert settings.SESSION_COOKIE_AGE == 14 * 24 * 3600


@pytest.mark.parametrize("role", [Role.MAINTAINER, Role.DATA_COMMITTEE, Role.ADJUDICATOR])
def test_a_privileged_session_expires_when_idle(client: Client, make_user, role: Role) -> None:
    user = make_user(role)
    with time_machine.travel(START, tick=False) as clock:
        client.force_login(user)
        assert client.get("/").status_code == 200
        assert client.session.get_expiry_age() == 30 * 60
        clock.shift(timedelta(minutes=29))
        assert client.get("/").status_code == 200  # activity pushes the idle limit back
        assert logged_in_user_id(client) == str(user.pk)
        clock.shift(timedelta(minutes=31))
        assert client.get("/").status_code == 302
        assert logged_in_user_id(client) is None


def test_a_busy_privileged_session_still_ends_eight_hours_after_sign_in(client: Client, make_user) -> None:
    user = make_user(Role.MAINTAINER)
    with time_machine.travel(START, tick=False) as clock:
        client.force_login(user)
        for _ in range(16 * 2 - 1):  # a request every 15 minutes for 7 h 45 min
            clock.shift(timedelta(minutes=15))
            assert client.get("/").status_code == 200
        # Within the last half hour the idle limit shrinks to what is left of the eight hours.
        assert client.session.get_expiry_age() == 15 * 60
        clock.shift(timedelta(minutes=15))
        response = client.get("/queries/")
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")
        assert logged_in_user_id(client) is None
        assert client.get("/api/v1/categories/").status_code == 403


@pytest.mark.parametrize("role", [Role.RESEARCHER, Role.CLINICIAN])
def test_other_sessions_keep_the_default_length(client: Client, make_user, role: Role) -> None:
    user = make_user(role)
    with time_machine.travel(START, tick=False) as clock:
        client.force_login(user)
        assert client.get("/").status_code == 200
        assert client.session.get_expiry_age() == 14 * 24 * 3600
        clock.shift(timedelta(hours=9))
        assert client.get("/").status_code == 200
        assert logged_in_user_id(client) == str(user.pk)
