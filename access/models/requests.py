"""Access requests to a restricted release, and the grants they become once approved."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from access.models.agreements import AgreementSignature
from releases.models import Release


class RequestStatus(models.TextChoices):
    PENDING = "pending", "Pending review"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    REVOKED = "revoked", "Revoked"
    EXPIRED = "expired", "Expired undecided"  # pending past its review window: never auto-accepted


class AccessRequest(models.Model):
    """A researcher's request for one release. Approved, it is the grant: it allows access while
    ``status = approved and expires_at > now`` (``access.selectors.ACTIVE_GRANT``)."""

    release = models.ForeignKey(Release, on_delete=models.PROTECT, related_name="access_requests")
    researcher = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="access_requests"
    )
    purpose = models.TextField()
    signature = models.OneToOneField(AgreementSignature, on_delete=models.PROTECT, related_name="request")
    renews = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="renewed_by"
    )
    status = models.CharField(max_length=10, choices=RequestStatus.choices, default=RequestStatus.PENDING)
    created_at = models.DateTimeField()
    review_deadline = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decision_reason = models.TextField(blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    revoke_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="approved") | Q(expires_at__isnull=False), name="grant_has_expiry"
            ),
            models.CheckConstraint(
                condition=~Q(status__in=["rejected", "revoked"])
                | ~Q(decision_reason="")
                | ~Q(revoke_reason=""),
                name="refusal_has_reason",
            ),
            # One open request per researcher and release: pending ones cannot pile up.
            models.UniqueConstraint(
                fields=["release", "researcher"], condition=Q(status="pending"), name="one_pending_request"
            ),
        ]
        indexes = [
            models.Index(fields=["researcher", "release", "status", "expires_at"], name="grant_lookup")
        ]

    def __str__(self) -> str:
        return f"{self.researcher} → {self.release} ({self.status})"
