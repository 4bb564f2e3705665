"""DRF permission classes built on ``accounts.policy``: the API asks the same rules as the pages."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.urls import reverse
from rest_framework.permissions import BasePermission

if TYPE_CHECKING:  # rest_framework.views imports this module through DEFAULT_PERMISSION_CLASSES
    from rest_framework.request import Request
    from rest_framework.views import APIView

from accounts.policy import needs_mfa_enrolment


def mfa_enrolment_message() -> str:
    """Why an account that must use a second factor, and has none yet, is refused."""
    return (
        "Two-factor authentication is required for this account: enrol an authenticator app at "
        f"{reverse('mfa_activate_totp')} first."
    )


class Authenticated(BasePermission):
    """Logged in, and enrolled in MFA where the role requires it (token requests included).

    The page middleware cannot see token users (DRF authenticates inside the view), so the API
    enforces enrolment here as well.
    """

    message = "Authentication credentials were not provided."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if needs_mfa_enrolment(user):
            # Instance attribute: DRF reads ``message`` after a refusal, so the reason is specific.
            self.message = mfa_enrolment_message()
            return False
        return True


def rule_permission(perm: str) -> type[BasePermission]:
    """A permission class that requires ``Authenticated`` and the named rule permission."""

    class _RulePermission(Authenticated):
        def has_permission(self, request: Request, view: APIView) -> bool:
            if not super().has_permission(request, view):
                return False
            if not request.user.has_perm(perm):
                self.message = f"Your role does not allow this ({perm})."
                return False
            return True

    _RulePermission.__name__ = f"Has_{perm.replace('.', '_')}"
    return _RulePermission
