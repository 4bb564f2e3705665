"""How django-axes names the account and the address behind a login attempt, for lockout by both."""

from allauth.account.adapter import get_adapter
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest


def username_for_lockout(request: HttpRequest, credentials: dict[str, object] | None) -> str | None:
    # allauth authenticates with ``email=``; its form posts the address as ``login``; the admin
    # posts ``username``. Lower-casing makes "A@x" and "a@x" one account, as the user model does.
    for source in (credentials or {}, request.POST if request is not None else {}):
        for key in ("email", "login", "username"):
            value = source.get(key)
            if value:
                return str(value).strip().lower()
    return None


def client_ip_for_lockout(request: HttpRequest) -> str | None:
    """The client address as allauth's rate limits see it (``ALLAUTH_TRUSTED_PROXY_COUNT``).

    One definition for both counters: behind a reverse proxy REMOTE_ADDR is the proxy, and a
    lockout keyed on it would lock an account for every address at once.
    """
    try:
        return get_adapter(request).get_client_ip(request)
    except PermissionDenied:  # allauth's way of saying "no address at all"
        return None
