"""Researcher API tokens: scoped to releases, expiring, revocable, stored only as a hash."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from releases.models import Release


class ResearcherToken(models.Model):
    """The secret is shown once; only its sha256 is kept (256 random bits need no slow hash).

    A request is allowed only for a release that is in ``releases`` AND on which the holder has an
    active grant at that moment: a revoked or expired grant stops the token at the next request.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="researcher_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12)  # shown in lists so the holder can tell tokens apart
    key_hash = models.CharField(max_length=64, unique=True)
    releases = models.ManyToManyField(Release, related_name="+")
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
