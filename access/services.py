"""Writes for data access: credentials, agreements, requests and grants, tokens, access records.

Every service checks its actor against ``accounts.policy`` itself, runs in a transaction, writes
its audit event in that transaction and sends its e-mails only once it commits.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from access.models import (
    AccessRequest,
    AgreementSignature,
    CredentialStatus,
    DataUseAgreement,
    RequestStatus,
    ResearcherProfile,
    ResearcherToken,
)
from access.models.agreements import text_sha256
from access.notifications import committee_addresses, notify
from access.selectors import agreement_current, grant_list_active, release_list_restricted_for_user
from accounts import policy
from accounts.models import User
from audit.actions import AuditAction
from audit.services import audit_record
from releases.models import Release, ReleaseStatus

PROFILE_FIELDS = (
    "full_name",
    "institution",
    "position",
    "orcid",
    "institutional_page",
    "reference_name",
    "reference_email",
    "research_area",
)
TOKEN_PREFIX = "mhr_"  # noqa: S105 - a public marker, not a secret


def _require(allowed: bool, message: str) -> None:
    if not allowed:
        raise PermissionDenied(message)


def _reason(reason: str, what: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": f"A reason is required to {what}."})
    return reason


# --- Credentials ------------------------------------------------------------------------------


def profile_save(*, actor: User, data: dict[str, Any]) -> ResearcherProfile:
    _require(
        policy.can_apply_for_credentials(actor), "Only a researcher with a verified address has a profile."
    )
    with transaction.atomic(durable=True):
        profile = ResearcherProfile.objects.select_for_update().filter(user=actor).first()
        if profile is None:
            profile = ResearcherProfile(user=actor)
        elif profile.status in (CredentialStatus.CREDENTIALED, CredentialStatus.SUSPENDED):
            raise ValidationError(
                "Your credentials have been decided: ask the data committee to change your profile."
            )
        for name in PROFILE_FIELDS:
            setattr(profile, name, data.get(name, getattr(profile, name)))
        profile.full_clean(exclude=["user"])
        profile.save()
        audit_record(actor=actor, action=AuditAction.PROFILE_SAVE, target=profile)
    return profile


def credential_apply(*, actor: User) -> ResearcherProfile:
    _require(policy.can_apply_for_credentials(actor), "Only a researcher with a verified address can apply.")
    with transaction.atomic(durable=True):
        profile = ResearcherProfile.objects.select_for_update().filter(user=actor).first()
        if profile is None:
            raise ValidationError("Complete your profile before applying.")
        if profile.status not in (CredentialStatus.DRAFT, CredentialStatus.REJECTED):
            raise ValidationError(f"Your application is already {profile.get_status_display().lower()}.")
        profile.full_clean(exclude=["user"])
        profile.status = CredentialStatus.PENDING
        profile.applied_at = timezone.now()
        profile.decided_at = profile.decided_by = None
        profile.decision_reason = ""
        profile.save()
        audit_record(actor=actor, action=AuditAction.CREDENTIAL_APPLY, target=profile)
        notify(
            subject="A researcher applied for credentials",
            body=f"{profile.full_name} ({profile.institution}) applied for credentials.",
            recipients=committee_addresses(),
        )
    return profile


def credential_decide(*, actor: User, profile_id: int, accept: bool, reason: str) -> ResearcherProfile:
    _require(policy.can_review_credentials(actor), "Only the data committee decides credentials.")
    reason = _reason(reason, "accept or reject an application")
    with transaction.atomic(durable=True):
        profile = ResearcherProfile.objects.select_for_update().select_related("user").get(pk=profile_id)
        if profile.user_id == actor.pk:
            raise PermissionDenied("Nobody decides their own credentials.")
        if profile.status != CredentialStatus.PENDING:
            raise ValidationError(f"This application is {profile.get_status_display().lower()}, not pending.")
        profile.status = CredentialStatus.CREDENTIALED if accept else CredentialStatus.REJECTED
        profile.decided_at = timezone.now()
        profile.decided_by = actor
        profile.decision_reason = reason
        profile.save()
        action = AuditAction.CREDENTIAL_ACCEPT if accept else AuditAction.CREDENTIAL_REJECT
        audit_record(actor=actor, action=action, target=profile, details={"reason": reason})
        notify(
            subject="Your credentials were " + ("accepted" if accept else "rejected"),
            body=f"The data committee {'accepted' if accept else 'rejected'} your application.\n\n"
            f"Reason: {reason}",
            recipients=[profile.user.email],
        )
    return profile


def credential_suspend(*, actor: User, profile_id: int, reason: str) -> ResearcherProfile:
    _require(policy.can_review_credentials(actor), "Only the data committee suspends credentials.")
    reason = _reason(reason, "suspend credentials")
    with transaction.atomic(durable=True):
        profile = ResearcherProfile.objects.select_for_update().select_related("user").get(pk=profile_id)
        if profile.status != CredentialStatus.CREDENTIALED:
            raise ValidationError("Only credentialed researchers can be suspended.")
        profile.status = CredentialStatus.SUSPENDED
        profile.decided_at = timezone.now()
        profile.decided_by = actor
        profile.decision_reason = reason
        profile.save()
        audit_record(
            actor=actor, action=AuditAction.CREDENTIAL_SUSPEND, target=profile, details={"reason": reason}
        )
        notify(
            subject="Your credentials were suspended",
            body="The data committee suspended your credentials; your grants stop at once.\n\n"
            f"Reason: {reason}",
            recipients=[profile.user.email],
        )
    return profile


# --- Data use agreements ------------------------------------------------------------------------


def agreement_create(*, actor: User | None, title: str, body: str) -> DataUseAgreement:
    if actor is not None:
        _require(policy.can_review_credentials(actor), "Only the data committee publishes agreements.")
    with transaction.atomic():
        version = (DataUseAgreement.objects.aggregate(v=Max("version"))["v"] or 0) + 1
        agreement = DataUseAgreement(
            version=version, title=title, body=body, content_hash=text_sha256(body), created_by=actor
        )
        agreement.full_clean()
        agreement.save()
        audit_record(
            actor=actor, action=AuditAction.AGREEMENT_CREATE, target=agreement, details={"version": version}
        )
    return agreement


# --- Access requests and grants ---------------------------------------------------------------------


def _sign(
    *, actor: User, agreement_version: int, shown_hash: str, ip_address: str | None
) -> AgreementSignature:
    current = agreement_current()
    if current is None:
        raise ValidationError("No data use agreement has been published yet.")
    if agreement_version != current.version or shown_hash != current.content_hash:
        raise ValidationError(
            {
                "agreement": f"The data use agreement changed (now version {current.version}): "
                "read it again and sign."
            }
        )
    return AgreementSignature.objects.create(
        agreement=current,
        signer=actor,
        version=current.version,
        content_hash=current.content_hash,
        signed_at=timezone.now(),
        ip_address=ip_address,
    )


def _new_request(
    *,
    actor: User,
    release: Release,
    purpose: str,
    agreement_version: int,
    shown_hash: str,
    ip_address: str | None,
    renews: AccessRequest | None,
) -> AccessRequest:
    purpose = (purpose or "").strip()
    if len(purpose) < 40:
        raise ValidationError({"purpose": "Describe your purpose in at least 40 characters."})
    if AccessRequest.objects.filter(release=release, researcher=actor, status=RequestStatus.PENDING).exists():
        raise ValidationError("You already have a pending request for this release.")
    signature = _sign(
        actor=actor, agreement_version=agreement_version, shown_hash=shown_hash, ip_address=ip_address
    )
    now = timezone.now()
    access_request = AccessRequest.objects.create(
        release=release,
        researcher=actor,
        purpose=purpose,
        signature=signature,
        renews=renews,
        created_at=now,
        review_deadline=now + timedelta(days=settings.ACCESS_PENDING_EXPIRY_DAYS),
    )
    audit_record(
        actor=actor,
        action=AuditAction.REQUEST_SUBMIT,
        target=access_request,
        details={
            "release": release.pk,
            "agreement_version": signature.version,
            "agreement_sha256": signature.content_hash,
            "renews": renews.pk if renews else None,
        },
    )
    notify(
        subject=f"Access request for {release}" + (" (renewal)" if renews else ""),
        body=f"{actor.email} requested access to {release}. Review it in the queue.",
        recipients=committee_addresses(release=release),
    )
    notify(
        subject=f"We received your request for {release}",
        body="The data committee will review it. You will get an e-mail at each step.",
        recipients=[actor.email],
    )
    return access_request


def request_submit(
    *,
    actor: User,
    release_id: int,
    purpose: str,
    agreement_version: int,
    shown_hash: str,
    ip_address: str | None = None,
) -> AccessRequest:
    _require(policy.can_request_access(actor), "Only a credentialed researcher can request access.")
    with transaction.atomic(durable=True):
        release = Release.objects.select_for_update().get(pk=release_id)
        if release.status != ReleaseStatus.READY:
            raise ValidationError("This release is not ready.")
        if grant_list_active(user=actor).filter(release=release).exists():
            raise ValidationError("You already have access to this release; renew it before it ends.")
        return _new_request(
            actor=actor,
            release=release,
            purpose=purpose,
            agreement_version=agreement_version,
            shown_hash=shown_hash,
            ip_address=ip_address,
            renews=None,
        )


def request_renew(
    *,
    actor: User,
    grant_id: int,
    purpose: str,
    agreement_version: int,
    shown_hash: str,
    ip_address: str | None = None,
) -> AccessRequest:
    """A renewal is a new request, signed under the current agreement, made before the grant ends."""
    _require(policy.can_request_access(actor), "Only a credentialed researcher can renew access.")
    with transaction.atomic(durable=True):
        grant = grant_list_active(user=actor).select_for_update(of=("self",)).filter(pk=grant_id).first()
        if grant is None:
            raise ValidationError("Only an active grant can be renewed; request access again instead.")
        if grant.expires_at is None:  # an active grant has an expiry (constraint grant_has_expiry)
            raise RuntimeError(f"Active grant {grant.pk} has no expiry.")
        window = timedelta(days=settings.ACCESS_RENEWAL_WINDOW_DAYS)
        if grant.expires_at - timezone.now() > window:
            raise ValidationError(
                f"Renewal opens {settings.ACCESS_RENEWAL_WINDOW_DAYS} days before the grant ends "
                f"({grant.expires_at:%Y-%m-%d})."
            )
        if AccessRequest.objects.filter(renews=grant).exists():
            raise ValidationError("This grant already has a renewal request.")
        return _new_request(
            actor=actor,
            release=grant.release,
            purpose=purpose,
            agreement_version=agreement_version,
            shown_hash=shown_hash,
            ip_address=ip_address,
            renews=grant,
        )


def _pending_for_review(actor: User, request_id: int) -> AccessRequest:
    access_request = (
        AccessRequest.objects.select_for_update(of=("self",))
        .select_related("release", "researcher", "renews")
        .get(pk=request_id)
    )
    _require(
        policy.can_review_access(actor, access_request.release),
        "Only the data committee or this release's reviewers decide its requests.",
    )
    if access_request.researcher_id == actor.pk:
        raise PermissionDenied("Nobody decides their own request.")
    return access_request


def request_approve(*, actor: User, request_id: int, expires_at: datetime | None = None) -> AccessRequest:
    with transaction.atomic(durable=True):
        access_request = _pending_for_review(actor, request_id)
        now = timezone.now()
        if access_request.status != RequestStatus.PENDING:
            raise ValidationError(
                f"This request is {access_request.get_status_display().lower()}, not pending."
            )
        if access_request.review_deadline <= now:
            raise ValidationError("This request passed its review deadline; the researcher must ask again.")
        profile = ResearcherProfile.objects.filter(user=access_request.researcher).first()
        if profile is None or profile.status != CredentialStatus.CREDENTIALED:
            raise ValidationError("The researcher is not credentialed (any more).")
        if expires_at is None:
            start = now
            if (
                access_request.renews
                and access_request.renews.expires_at
                and access_request.renews.expires_at > now
            ):
                start = access_request.renews.expires_at
            expires_at = start + timedelta(days=settings.ACCESS_GRANT_DEFAULT_DAYS)
        if expires_at <= now:
            raise ValidationError({"expires_at": "The expiry must be in the future."})
        access_request.status = RequestStatus.APPROVED
        access_request.decided_at = now
        access_request.decided_by = actor
        access_request.expires_at = expires_at
        access_request.save()
        audit_record(
            actor=actor,
            action=AuditAction.REQUEST_APPROVE,
            target=access_request,
            details={
                "release": access_request.release_id,
                "researcher": access_request.researcher_id,
                "expires_at": expires_at.isoformat(),
            },
        )
        notify(
            subject=f"Access to {access_request.release} approved",
            body=f"Your access is approved until {expires_at:%Y-%m-%d %H:%M} UTC.",
            recipients=[access_request.researcher.email],
        )
    return access_request


def request_reject(*, actor: User, request_id: int, reason: str) -> AccessRequest:
    reason = _reason(reason, "reject a request")
    with transaction.atomic(durable=True):
        access_request = _pending_for_review(actor, request_id)
        if access_request.status != RequestStatus.PENDING:
            raise ValidationError(
                f"This request is {access_request.get_status_display().lower()}, not pending."
            )
        access_request.status = RequestStatus.REJECTED
        access_request.decided_at = timezone.now()
        access_request.decided_by = actor
        access_request.decision_reason = reason
        access_request.save()
        audit_record(
            actor=actor,
            action=AuditAction.REQUEST_REJECT,
            target=access_request,
            details={"release": access_request.release_id, "reason": reason},
        )
        notify(
            subject=f"Access to {access_request.release} rejected",
            body=f"The data committee rejected your request.\n\nReason: {reason}",
            recipients=[access_request.researcher.email],
        )
    return access_request


def request_revoke(*, actor: User, request_id: int, reason: str) -> AccessRequest:
    reason = _reason(reason, "revoke a grant")
    with transaction.atomic(durable=True):
        access_request = _pending_for_review(actor, request_id)
        if access_request.status != RequestStatus.APPROVED:
            raise ValidationError("Only an approved grant can be revoked.")
        access_request.status = RequestStatus.REVOKED
        access_request.revoked_at = timezone.now()
        access_request.revoked_by = actor
        access_request.revoke_reason = reason
        access_request.save()
        audit_record(
            actor=actor,
            action=AuditAction.REQUEST_REVOKE,
            target=access_request,
            details={"release": access_request.release_id, "reason": reason},
        )
        notify(
            subject=f"Access to {access_request.release} revoked",
            body="The data committee revoked your access; downloads and API reads stop now.\n\n"
            f"Reason: {reason}",
            recipients=[access_request.researcher.email],
        )
    return access_request


def requests_expire(*, now: datetime | None = None) -> int:
    """Pending requests past their review deadline become expired: never approved by default."""
    now = now or timezone.now()
    count = 0
    with transaction.atomic(durable=True):
        stale = (
            AccessRequest.objects.select_for_update()
            .select_related("release", "researcher")
            .filter(status=RequestStatus.PENDING, review_deadline__lte=now)
        )
        for access_request in stale:
            access_request.status = RequestStatus.EXPIRED
            access_request.decided_at = now
            access_request.save(update_fields=["status", "decided_at"])
            audit_record(actor=None, action=AuditAction.REQUEST_EXPIRE, target=access_request)
            notify(
                subject=f"Your request for {access_request.release} expired",
                body="It was not reviewed in time. You may submit it again.",
                recipients=[access_request.researcher.email],
            )
            count += 1
    return count


# --- Researcher API tokens ------------------------------------------------------------------------


def token_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedToken:
    token: ResearcherToken
    key: str  # shown once, never stored


def token_issue(*, actor: User, name: str, release_ids: list[int], days: int | None = None) -> IssuedToken:
    days = days or settings.RESEARCHER_TOKEN_DEFAULT_DAYS
    if not 1 <= days <= settings.RESEARCHER_TOKEN_MAX_DAYS:
        raise ValidationError({"days": f"A token lasts 1 to {settings.RESEARCHER_TOKEN_MAX_DAYS} days."})
    name = (name or "").strip()[:100]
    if not name:
        raise ValidationError({"name": "Name the token (for example, the machine it is for)."})
    with transaction.atomic(durable=True):
        releases = list(release_list_restricted_for_user(user=actor).filter(pk__in=release_ids))
        if not releases or len(releases) != len(set(release_ids)):
            raise ValidationError(
                {"releases": "A token can only be scoped to releases you have access to now."}
            )
        key = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = timezone.now()
        token = ResearcherToken.objects.create(
            user=actor,
            name=name,
            prefix=key[:10],
            key_hash=token_hash(key),
            created_at=now,
            expires_at=now + timedelta(days=days),
        )
        token.releases.set(releases)
        audit_record(
            actor=actor,
            action=AuditAction.TOKEN_ISSUE,
            target=token,
            details={
                "releases": sorted(r.pk for r in releases),
                "prefix": token.prefix,
                "expires_at": token.expires_at.isoformat(),
            },
        )
    return IssuedToken(token=token, key=key)


def token_revoke(*, actor: User, token_id: int) -> ResearcherToken:
    with transaction.atomic(durable=True):
        token = ResearcherToken.objects.select_for_update().filter(pk=token_id, user=actor).first()
        if token is None:
            raise ResearcherToken.DoesNotExist("No such token of yours.")
        if token.revoked_at is None:
            token.revoked_at = timezone.now()
            token.save(update_fields=["revoked_at"])
            audit_record(
                actor=actor, action=AuditAction.TOKEN_REVOKE, target=token, details={"prefix": token.prefix}
            )
    return token
