"""Data use agreements: immutable versioned texts, and signatures that name the exact text signed."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.db import models


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class DataUseAgreement(models.Model):
    """A version of the agreement. Never edited: a change is a new version (a new row)."""

    version = models.PositiveIntegerField(unique=True)
    title = models.CharField(max_length=200)
    body = models.TextField()
    content_hash = models.CharField(max_length=64)  # sha256 of ``body``, exactly as shown
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-version"]

    def __str__(self) -> str:
        return f"{self.title} v{self.version}"


class AgreementSignature(models.Model):
    agreement = models.ForeignKey(DataUseAgreement, on_delete=models.PROTECT, related_name="signatures")
    signer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # What the signer was shown, as its hash: checkable against any copy of the agreement text.
    version = models.PositiveIntegerField()
    content_hash = models.CharField(max_length=64)
    signed_at = models.DateTimeField()
    ip_address = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-signed_at"]

    def __str__(self) -> str:
        return f"{self.signer} signed v{self.version} at {self.signed_at:%Y-%m-%d %H:%M}"
