"""A researcher's profile and the data committee's decision on their credentials."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from access import orcid


def validate_orcid(value: str) -> None:
    reason = orcid.problem(value)
    if reason:
        raise ValidationError(reason, code="orcid")


class CredentialStatus(models.TextChoices):
    DRAFT = "draft", "Profile not yet submitted"
    PENDING = "pending", "Awaiting the data committee"
    CREDENTIALED = "credentialed", "Credentialed"
    REJECTED = "rejected", "Rejected"
    SUSPENDED = "suspended", "Suspended"


class ResearcherProfile(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="researcher_profile"
    )
    full_name = models.CharField(max_length=200)
    institution = models.CharField(max_length=200)
    position = models.CharField(max_length=120)
    orcid = models.CharField("ORCID iD", max_length=19, validators=[validate_orcid])
    institutional_page = models.URLField(
        max_length=300, help_text="A page at your institution that names you (staff list, lab page)."
    )
    reference_name = models.CharField(max_length=200, help_text="A senior colleague who can vouch for you.")
    reference_email = models.EmailField()
    research_area = models.TextField(help_text="Your field and what you study, in a few sentences.")
    status = models.CharField(max_length=16, choices=CredentialStatus.choices, default=CredentialStatus.DRAFT)
    applied_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decision_reason = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-applied_at", "-id"]

    def __str__(self) -> str:
        return f"{self.full_name} ({self.institution})"

    def clean(self) -> None:
        if self.orcid:
            self.orcid = orcid.normalise(self.orcid)
