"""A release is cut once and never changed: a new cut of the same data is a new version."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotations.models import Campaign


class ReleaseStatus(models.TextChoices):
    BUILDING = "building", "Building"
    READY = "ready", "Ready"
    FAILED = "failed", "Failed"


class Tier(models.TextChoices):
    PUBLIC = "public", "Public (aggregates, guidelines, rubric, datasheet, sample)"
    RESTRICTED = "restricted", "Restricted (everything)"


# Gebru et al., "Datasheets for Datasets": the seven sections a datasheet answers.
DATASHEET_SECTIONS: tuple[tuple[str, str], ...] = (
    ("motivation", "Motivation: why was the dataset created, by whom, funded by whom?"),
    ("composition", "Composition: what do the instances represent, how many, is anything missing?"),
    ("collection", "Collection process: how was the data acquired, over what time frame?"),
    ("labelling", "Preprocessing and labelling: how were labels made, by whom, under which guidelines?"),
    ("uses", "Uses: what has it been used for, what should it not be used for?"),
    ("distribution", "Distribution: how is it distributed, under which terms and agreement?"),
    ("maintenance", "Maintenance: who maintains it, how are errors reported and new versions cut?"),
)


class Release(models.Model):
    slug = models.SlugField(max_length=80)
    version = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    changelog = models.TextField()
    datasheet = models.JSONField(default=dict)  # section key -> answer, for DATASHEET_SECTIONS
    campaigns = models.ManyToManyField(Campaign, related_name="releases")
    # Queries whose text the public tier shows: picked by the maintainer, approved by the committee.
    sample_query_ids = models.JSONField(default=list, blank=True)
    # Members who may decide this release's access requests beside the data committee.
    reviewers = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="reviewed_releases")
    status = models.CharField(max_length=10, choices=ReleaseStatus.choices, default=ReleaseStatus.BUILDING)
    rows_done = models.PositiveBigIntegerField(default=0)
    rows_total = models.PositiveBigIntegerField(default=0)
    failure_reason = models.TextField(blank=True)
    manifest_sha256 = models.CharField(max_length=64, blank=True)
    public_approved_at = models.DateTimeField(null=True, blank=True)
    public_approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    built_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["slug", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["slug", "version"], name="release_unique_version"),
            models.CheckConstraint(
                condition=Q(public_approved_at__isnull=True) | Q(status="ready"),
                name="release_public_only_when_ready",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.title} v{self.version}"

    @property
    def is_public(self) -> bool:
        return self.status == ReleaseStatus.READY and self.public_approved_at is not None

    @property
    def progress_percent(self) -> int:
        if not self.rows_total:
            return 100 if self.status == ReleaseStatus.READY else 0
        return min(100, int(100 * self.rows_done / self.rows_total))


class ReleaseFile(models.Model):
    """One file of a release; ``name`` is its path in the bundle (``restricted/parquet/labels/...``)."""

    release = models.ForeignKey(Release, on_delete=models.PROTECT, related_name="files")
    tier = models.CharField(max_length=10, choices=Tier.choices)
    name = models.CharField(max_length=255)
    storage_name = models.CharField(max_length=500)
    table = models.CharField(max_length=40, blank=True)
    file_format = models.CharField(max_length=16)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    rows = models.PositiveBigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["release_id", "tier", "name"]
        constraints = [models.UniqueConstraint(fields=["release", "name"], name="release_file_unique_name")]

    def __str__(self) -> str:
        return f"{self.release}: {self.name}"
