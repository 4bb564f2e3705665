"""Typed requests for views: what a page may assume about ``request`` once its decorators have run.

The classes only annotate; at run time every request is a plain ``HttpRequest`` (Django's
``AuthenticationMiddleware`` sets ``user``, django-htmx's middleware sets ``htmx``). They live in
``accounts`` because the user model does, and every app's views already depend on it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails
from rest_framework.exceptions import NotAuthenticated

from accounts.models import User

if TYPE_CHECKING:  # rest_framework.views imports accounts.api_permissions, which imports accounts
    from rest_framework.request import Request


class AuthenticatedHttpRequest(HttpRequest):
    """A request behind ``login_required``: the user is a signed-in ``User``, never anonymous."""

    user: User


class HtmxHttpRequest(HttpRequest):
    """A request that may have come from htmx (``request.htmx`` is falsy when it did not)."""

    htmx: HtmxDetails


class AuthenticatedHtmxHttpRequest(AuthenticatedHttpRequest, HtmxHttpRequest):
    """Both of the above: a signed-in page that answers htmx requests with a partial."""

    user: User


def signed_in_user(request: HttpRequest) -> User:
    """The signed-in user of a page request whose signature cannot be narrowed (admin actions and
    ``ModelAdmin`` hooks: the admin site lets only active staff in). Refuses an anonymous user."""
    user = request.user
    if not isinstance(user, User):
        raise PermissionDenied("Sign in first.")
    return user


def request_user(request: Request) -> User:
    """The signed-in user of an API request.

    For API views whose permission classes already require authentication (DRF's method signatures
    take a plain ``Request``, so they cannot be narrowed). An anonymous user here means a view lost
    its permission class: answer 401 rather than pass an anonymous user to a service.
    """
    user = request.user
    if not isinstance(user, User):
        raise NotAuthenticated()
    return user
