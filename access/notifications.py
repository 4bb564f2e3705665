"""E-mails of the access workflow, sent after the deciding transaction commits (never before)."""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mass_mail
from django.db import transaction

from accounts.roles import Role


def committee_addresses(*, release: object | None = None) -> list[str]:
    users = get_user_model().objects.filter(is_active=True, groups__name=Role.DATA_COMMITTEE.value)
    addresses = set(users.values_list("email", flat=True))
    if release is not None:
        addresses |= set(release.reviewers.filter(is_active=True).values_list("email", flat=True))  # type: ignore[attr-defined]
    return sorted(addresses)


def notify(*, subject: str, body: str, recipients: Iterable[str]) -> None:
    """Queue one e-mail per recipient for when the current transaction commits."""
    recipients = [r for r in recipients if r]
    if not recipients:
        return
    footer = f"\n\n-- \nMedHarm data access · {settings.SITE_URL}/access/\n"
    messages = [(f"[MedHarm] {subject}", body + footer, None, [r]) for r in recipients]
    transaction.on_commit(lambda: send_mass_mail(messages, fail_silently=False))
