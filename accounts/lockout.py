"""How django-axes names the account and the address behind a login attempt, for lockout by both."""

from django.http import HttpRequest

from core.client_ip import client_ip


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
    """The client address for django-axes: the same one allauth's own rate limits use."""
    return client_ip(request)
