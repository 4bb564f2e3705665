"""Reads for releases: which releases a user sees, and their files, always looked up by release."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from accounts import policy
from releases.models import Release, ReleaseFile, ReleaseStatus, Tier


def release_list_public() -> QuerySet[Release]:
    return Release.objects.filter(status=ReleaseStatus.READY, public_approved_at__isnull=False)


def release_list_visible(*, user: object) -> QuerySet[Release]:
    """Releases whose page a user sees: public ones to anyone; every built release to signed-in
    users (its existence and datasheet are not sensitive: a researcher must see it to request it);
    building and failed ones too to maintainers and the committee."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:  # type: ignore[attr-defined]
        return release_list_public()
    if policy.can_cut_releases(user) or policy.can_approve_public_tier(user):
        return Release.objects.all()
    return Release.objects.filter(Q(status=ReleaseStatus.READY) | Q(reviewers=user)).distinct()


def release_get_visible(*, user: object, release_id: int) -> Release:
    return release_list_visible(user=user).get(pk=release_id)


def file_list_for_release(*, release: Release, tier: str) -> QuerySet[ReleaseFile]:
    return ReleaseFile.objects.filter(release=release, tier=tier).order_by("name")


def file_get(*, release: Release, name: str) -> ReleaseFile:
    """A file of *this* release: the look-up is scoped to its parent, never by name alone."""
    return ReleaseFile.objects.get(release=release, name=name)


def table_parquet(*, release: Release, table: str) -> ReleaseFile:
    return ReleaseFile.objects.get(release=release, tier=Tier.RESTRICTED, table=table, file_format="parquet")
