"""Sends staff who have not enrolled a second factor to enrolment before anything else."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse

from accounts.policy import needs_mfa_enrolment

# Paths a user without a second factor may still reach: enrolment itself, logout, static files.
_ALLOWED_PREFIXES = ("/accounts/", "/static/")


class StaffMfaRequiredMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if (
            user.is_authenticated
            and not request.path.startswith(_ALLOWED_PREFIXES)
            and needs_mfa_enrolment(user)
        ):
            if request.path.startswith("/api/"):
                return JsonResponse(
                    {"detail": "Two-factor authentication is required for this account: enrol at "
                               + reverse("mfa_activate_totp")},
                    status=403,
                )
            return redirect(f"{reverse('mfa_activate_totp')}?next={request.path}")
        return self.get_response(request)
