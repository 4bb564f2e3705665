"""Passwords are hashed with Argon2id: in the platform's settings, and in what is stored."""

import pytest

from medharm_web.settings import base
from tests.factories import UserFactory


def test_the_platform_hashes_with_argon2_first() -> None:
    assert base.PASSWORD_HASHERS[0] == "django.contrib.auth.hashers.Argon2PasswordHasher"


@pytest.mark.django_db
def test_a_stored_password_is_an_argon2id_hash() -> None:
    user = UserFactory(password="a-long-test-password-1")
    assert user.password.startswith("argon2$argon2id$")
    assert user.check_password("a-long-test-password-1")
    assert not user.check_password("a-long-test-password-2")
