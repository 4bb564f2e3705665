"""Sends staff who have not enrolled a second factor to enrolment before anything else."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import Resolver404, resolve, reverse

from accounts.api_permissions import mfa_enrolment_message
from accounts.policy import needs_mfa_enrolment


def _is_own_account_page(request: HttpRequest) -> bool:
    """allauth's pages (enrolment, re-authentication, logout, e-mail, password) stay reachable.

    Matched by the view's module, not by a path prefix: the platform's own pages under /accounts/
    (inviting a colleague) are staff actions and must not be reachable without the second factor.
    """
    if request.path_info.startswith("/static/"):
        return True
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return False
    return match.func.__module__.startswith("allauth.")


class StaffMfaRequiredMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if user.is_authenticated and needs_mfa_enrolment(user) and not _is_own_account_page(request):
            if request.path_info.startswith("/api/"):
                return JsonResponse({"detail": mfa_enrolment_message()}, status=403)
            if request.headers.get("HX-Request") == "true":
                # An htmx swap would follow a 302 and paste the enrolment page into a fragment.
                response = HttpResponse(status=204)
                response["HX-Redirect"] = reverse("mfa_activate_totp")
                return response
            return redirect("mfa_activate_totp")
        return self.get_response(request)
