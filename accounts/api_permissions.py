"""DRF permission classes built on ``accounts.policy``: the API asks the same rules as the pages."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework.permissions import BasePermission

if TYPE_CHECKING:  # rest_framework.views imports this module through DEFAULT_PERMISSION_CLASSES
    from rest_framework.request import Request
    from rest_framework.views import APIView

from accounts.policy import needs_mfa_enrolment


class Authenticated(BasePermission):
    """Logged in, and enrolled in MFA where the role requires it (token requests included)."""

    message = "Authentication is required; staff accounts must enrol two-factor authentication."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and not needs_mfa_enrolment(user))


def rule_permission(perm: str) -> type[BasePermission]:
    """A permission class that requires ``Authenticated`` and the named rule permission."""

    class _RulePermission(Authenticated):
        message = f"Your role does not allow this ({perm})."

        def has_permission(self, request: Request, view: APIView) -> bool:
            return super().has_permission(request, view) and request.user.has_perm(perm)

    _RulePermission.__name__ = f"Has_{perm.replace('.', '_')}"
    return _RulePermission
