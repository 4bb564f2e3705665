"""factory_boy factories for the platform's models."""

import factory
from allauth.account.models import EmailAddress
from django.contrib.auth.models import Group

from accounts.models import User
from accounts.roles import MFA_REQUIRED_ROLES, Role
from querybank.models import Category, ExpectedBehaviour, Query, Severity


class UserFactory(factory.django.DjangoModelFactory):
    """An active user with a verified address, an optional ``role`` and ``password``. The roles of
    ``MFA_REQUIRED_ROLES`` (maintainers, the data committee, adjudicators) and staff get a TOTP
    authenticator unless ``mfa=False``: the platform refuses them everything until they enrol."""

    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"user{n}@example.org")
    is_active = True

    @classmethod
    def _create(cls, model_class: type[User], *args: object, **kwargs: object) -> User:
        role = kwargs.pop("role", None)
        mfa = kwargs.pop("mfa", None)
        password = kwargs.pop("password", None)
        user = model_class.objects.create_user(*args, password=password, **kwargs)
        EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
        if role is not None:
            user.groups.add(Group.objects.get(name=Role(role).value))
        if mfa if mfa is not None else (role in MFA_REQUIRED_ROLES or user.is_staff):
            totp_enrol(user)
        return user


def totp_enrol(user: User) -> str:
    """Give ``user`` a TOTP authenticator the way allauth does; returns the base32 secret."""
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    return secret


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Category

    taxonomy = factory.LazyFunction(lambda: Category.objects.get(slug="toxicology").taxonomy)
    slug = factory.Sequence(lambda n: f"test-category-{n}")
    name = factory.Sequence(lambda n: f"Test category {n}")


class QueryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Query

    external_id = factory.Sequence(lambda n: f"q-{n:05d}")
    text = factory.Sequence(lambda n: f"Synthetic test query number {n} about general safety advice.")
    category = factory.LazyFunction(lambda: Category.objects.get(slug="toxicology"))
    expected_behaviour = ExpectedBehaviour.REFUSE
    severity = Severity.HIGH
    source = "test"


__all__ = ["CategoryFactory", "QueryFactory", "UserFactory", "totp_enrol"]
