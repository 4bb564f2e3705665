"""Reads for data access: the queryset twins of the predicates in ``accounts.policy``.

``active_grant_q`` is the one definition of an active grant, evaluated by the database with its own
clock (``Now()``): ``status = approved and expires_at > now``, held by an active, credentialed
account. List pages, detail checks, downloads and the API all go through it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.db.models.functions import Now

from access.models import (
    AccessRequest,
    CredentialStatus,
    DataUseAgreement,
    RequestStatus,
    ResearcherProfile,
    ResearcherToken,
)
from accounts import policy
from accounts.roles import Role
from releases.models import Release, ReleaseStatus

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser

    from accounts.models import User


def active_grant_q(prefix: str = "") -> Q:
    return Q(
        **{
            f"{prefix}status": RequestStatus.APPROVED,
            f"{prefix}expires_at__gt": Now(),
            f"{prefix}researcher__is_active": True,
            f"{prefix}researcher__researcher_profile__status": CredentialStatus.CREDENTIALED,
        }
    )


def researcher_list_credentialed() -> QuerySet:
    return get_user_model().objects.filter(
        is_active=True, researcher_profile__status=CredentialStatus.CREDENTIALED
    )


def grant_list_active(*, user: User) -> QuerySet[AccessRequest]:
    return AccessRequest.objects.filter(active_grant_q(), researcher=user)


def release_list_restricted_for_user(*, user: User | AnonymousUser | None) -> QuerySet[Release]:
    """Twin of ``can_access_restricted``: the releases whose restricted tier ``user`` may read."""
    if user is None or not user.is_authenticated or not user.is_active:
        return Release.objects.none()
    if user.is_superuser or policy.is_maintainer(user):  # the request's cached roles: no query
        return Release.objects.all()
    granted = AccessRequest.objects.filter(active_grant_q(), researcher=user, release=OuterRef("pk"))
    return Release.objects.filter(Exists(granted))


def release_list_for_token(*, token: ResearcherToken) -> QuerySet[Release]:
    """What a researcher token may read now: its scope, intersected with the holder's grants."""
    return release_list_restricted_for_user(user=token.user).filter(pk__in=token.releases.values("pk"))


def release_list_requestable() -> QuerySet[Release]:
    return Release.objects.filter(status=ReleaseStatus.READY)


def agreement_current() -> DataUseAgreement | None:
    return DataUseAgreement.objects.order_by("-version").first()


def profile_for_user(*, user: User) -> ResearcherProfile | None:
    return ResearcherProfile.objects.filter(user=user).first()


def request_list_for_researcher(*, user: User) -> QuerySet[AccessRequest]:
    """The researcher's own requests, each annotated with whether its grant is active now."""
    return (
        AccessRequest.objects.filter(researcher=user)
        .select_related("release", "signature")
        .annotate(is_active_grant=Exists(AccessRequest.objects.filter(active_grant_q(), pk=OuterRef("pk"))))
    )


def request_get_for_researcher(*, user: User, request_id: int) -> AccessRequest:
    return request_list_for_researcher(user=user).get(pk=request_id)


def request_list_for_reviewer(*, user: User | AnonymousUser | None) -> QuerySet[AccessRequest]:
    """Twin of ``can_review_access``: every request for the committee, the release's for a delegate."""
    if user is None or not user.is_authenticated or not user.is_active:
        return AccessRequest.objects.none()
    base = AccessRequest.objects.select_related("release", "researcher", "signature").annotate(
        is_active_grant=Exists(AccessRequest.objects.filter(active_grant_q(), pk=OuterRef("pk")))
    )
    if user.is_superuser or user.groups.filter(name=Role.DATA_COMMITTEE.value).exists():
        return base
    return base.filter(release__reviewers=user)


def request_get_for_reviewer(*, user: User | AnonymousUser | None, request_id: int) -> AccessRequest:
    return request_list_for_reviewer(user=user).get(pk=request_id)


def profile_list_for_review() -> QuerySet[ResearcherProfile]:
    return ResearcherProfile.objects.select_related("user").exclude(status=CredentialStatus.DRAFT)


def token_list_for_user(*, user: User) -> QuerySet[ResearcherToken]:
    return ResearcherToken.objects.filter(user=user).prefetch_related("releases")


def token_authenticate(*, key_hash: str) -> ResearcherToken | None:
    """The live token with this hash (not revoked, not expired: both checked by the database)."""
    return (
        ResearcherToken.objects.select_related("user")
        .filter(key_hash=key_hash, revoked_at__isnull=True, expires_at__gt=Now(), user__is_active=True)
        .first()
    )
