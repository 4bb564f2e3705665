"""allauth adapter: who may sign up, what a self-registered account becomes, and login lockout."""

from typing import Any

from allauth.account.adapter import DefaultAccountAdapter
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_credentials
from django.http import HttpRequest

from accounts.models import User
from accounts.roles import Role
from core.actors import SYSTEM


class AccountAdapter(DefaultAccountAdapter):
    def save_user(self, request: HttpRequest, user: User, form: object, commit: bool = True) -> User:
        from accounts.services import role_assign

        user = super().save_user(request, user, form, commit=commit)
        if commit:
            # Anyone who signs up is a researcher: clinicians and staff are invited, never self-made.
            role_assign(user=user, role=Role.RESEARCHER, actor=SYSTEM)
        return user

    def pre_authenticate(self, request: HttpRequest, **credentials: Any) -> None:
        # allauth counts failed logins itself (5 per address per 5 minutes, in the cache) and,
        # once over its limit, refuses *before* calling django.contrib.auth.authenticate - so
        # django-axes, which only sees attempts that reach authenticate(), would never be asked
        # again and its lockout page never shown. Ask axes first: a locked (account, address)
        # pair gets axes' lockout response (AxesMiddleware renders it from this flag).
        axes_credentials = get_credentials(**credentials)
        if not AxesProxyHandler.is_allowed(request, axes_credentials):
            request.axes_locked_out = True  # type: ignore[attr-defined]
            request.axes_credentials = axes_credentials  # type: ignore[attr-defined]
            raise self.validation_error("too_many_login_attempts")
        super().pre_authenticate(request, **credentials)
