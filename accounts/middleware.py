"""Privileged accounts: a shorter session, and enrolment in a second factor before anything else.

Both follow the one rule of who is privileged, ``accounts.policy.is_mfa_required``.
"""

import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import Resolver404, resolve, reverse

from accounts.api_permissions import mfa_enrolment_message
from accounts.policy import is_mfa_required, needs_mfa_enrolment

# Session keys: when the privileged session began (set at sign-in) and when its idle clock was last
# pushed back (at most once a minute, so that a busy page does not write the session every request).
PRIVILEGED_SINCE = "privileged_since"
PRIVILEGED_TOUCHED = "privileged_touched"
_TOUCH_EVERY = 60


def privileged_session_start(sender: object, request: HttpRequest, user: Any, **kwargs: object) -> None:
    """``user_logged_in``: every sign-in restarts the privileged clock (the session is new)."""
    if request is not None and hasattr(request, "session"):
        request.session[PRIVILEGED_SINCE] = int(time.time())
        request.session.pop(PRIVILEGED_TOUCHED, None)


class PrivilegedSessionMiddleware:
    """Privileged sessions end after ``PRIVILEGED_SESSION_IDLE`` seconds without a request and
    ``PRIVILEGED_SESSION_MAX`` seconds after sign-in; other sessions last ``SESSION_COOKIE_AGE``.

    The idle limit is the session's own expiry (Django's ``set_expiry``: the cookie and the stored
    session both end then); the absolute limit is checked here and signs the user out.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if user.is_authenticated and is_mfa_required(user):
            session = request.session
            now = int(time.time())
            since = session.setdefault(PRIVILEGED_SINCE, now)
            if now - int(since) >= settings.PRIVILEGED_SESSION_MAX:
                logout(request)
                if request.path_info.startswith("/api/"):
                    return JsonResponse({"detail": "Your session has ended: sign in again."}, status=403)
                return redirect_to_login(request.get_full_path())
            if now - int(session.get(PRIVILEGED_TOUCHED, 0)) >= _TOUCH_EVERY:
                session[PRIVILEGED_TOUCHED] = now
                remaining = settings.PRIVILEGED_SESSION_MAX - (now - int(since))
                session.set_expiry(min(settings.PRIVILEGED_SESSION_IDLE, remaining))
        return self.get_response(request)


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
