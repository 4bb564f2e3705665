"""The extension point through which the access app (above this one) gates release data.

``releases`` owns the bundles, their pages and API; who holds a grant, what a researcher token may
read and which agreement is current are the access app's to say. ``access/apps.py`` registers its
answers here when Django starts, so the release pages ask without importing upwards. Without a
registration nothing restricted is granted to anyone but the roles the policy names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import QuerySet

from releases.models import Release


@dataclass
class AccessHooks:
    # Twin of ``accounts.policy.can_access_restricted``: the releases whose restricted tier a user
    # may read now (an active grant, computed in SQL; every release for maintainers).
    restricted_list_for_user: Callable[[Any], QuerySet[Release]] = lambda user: Release.objects.none()
    # What the credential a request authenticated with (DRF's ``request.auth``) may read, or None
    # when it is not a scoped credential (a session): the scope intersected with the holder's grants.
    restricted_list_for_credential: Callable[[Any], QuerySet[Release] | None] = lambda auth: None
    # How an audit event names that credential (a token's public prefix), or None.
    credential_label: Callable[[Any], str | None] = lambda auth: None
    # The DRF authentication classes of the release API besides the session.
    authentication_classes: list[type] = field(default_factory=list)
    # The data use agreement a request would be signed under (shown on a release's page).
    agreement_current: Callable[[], Any] = lambda: None


HOOKS = AccessHooks()


def access_hooks_register(**answers: Any) -> None:
    """Called once by ``access/apps.py``; names the fields of ``AccessHooks`` it answers."""
    for name, value in answers.items():
        if not hasattr(HOOKS, name):
            raise TypeError(f"AccessHooks has no {name!r}.")
        setattr(HOOKS, name, value)
