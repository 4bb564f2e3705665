"""Template context: the current user's roles, for navigation."""

from django.http import HttpRequest

from accounts.roles import Role


def roles(request: HttpRequest) -> dict[str, object]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"user_roles": set(), "Role": Role}
    return {"user_roles": user.roles, "Role": Role}
