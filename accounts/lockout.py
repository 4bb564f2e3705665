"""How django-axes names the account behind a login attempt, for lockout by account and address."""

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
