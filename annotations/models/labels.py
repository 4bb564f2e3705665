"""Labels, skips, content flags and adjudications: what annotators and adjudicators record."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotations.models.campaigns import AnnotationSession, Campaign, CampaignItem
from annotations.models.rubrics import Guideline, Rubric


class Label(models.Model):
    """One annotator's values for one item, stamped with the rubric and guideline it was made under.

    Imported labels come from another tool's raters, who have no account: ``external_rater``
    names them instead of ``annotator``, and their guideline may be unknown.
    """

    item = models.ForeignKey(CampaignItem, on_delete=models.PROTECT, related_name="labels")
    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="labels")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="annotation_labels",
    )
    external_rater = models.CharField(max_length=120, blank=True)
    session = models.ForeignKey(
        AnnotationSession, null=True, blank=True, on_delete=models.SET_NULL, related_name="labels"
    )
    rubric = models.ForeignKey(Rubric, on_delete=models.PROTECT, related_name="+")
    guideline = models.ForeignKey(
        Guideline, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    guideline_hash = models.CharField(max_length=64, blank=True)
    values = models.JSONField()
    revision = models.PositiveSmallIntegerField(default=1)  # 1 + edits made while the campaign was open
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["item_id", "created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["item", "annotator"],
                condition=Q(annotator__isnull=False),
                name="label_once_per_annotator",
            ),
            models.UniqueConstraint(
                fields=["item", "external_rater"],
                condition=~Q(external_rater=""),
                name="label_once_per_rater",
            ),
            models.CheckConstraint(
                condition=Q(annotator__isnull=False, external_rater="")
                | Q(annotator__isnull=True) & ~Q(external_rater=""),
                name="label_annotator_xor_external_rater",
            ),
            models.CheckConstraint(
                condition=Q(annotator__isnull=True) | Q(guideline__isnull=False) & ~Q(guideline_hash=""),
                name="label_platform_labels_stamp_guideline",
            ),
        ]
        indexes = [models.Index(fields=["campaign", "annotator"], name="label_campaign_annotator")]

    def __str__(self) -> str:
        return f"label {self.pk} on item {self.item_id}"

    @property
    def rater_key(self) -> str:
        return f"user:{self.annotator_id}" if self.annotator_id else f"external:{self.external_rater}"


class SkipReason(models.TextChoices):
    UNCLEAR = "unclear", "The item is unclear or incomplete"
    EXPERTISE = "expertise", "Outside my clinical expertise"
    DISTRESSING = "distressing", "I prefer not to label this item"
    CONFLICT = "conflict", "Conflict of interest"
    OTHER = "other", "Other reason"


class Skip(models.Model):
    """An annotator passed on an item; it is not offered to them again in this campaign."""

    item = models.ForeignKey(CampaignItem, on_delete=models.CASCADE, related_name="skips")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="skips")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=16, choices=SkipReason.choices)
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["item", "annotator"], name="skip_once_per_annotator")]

    def __str__(self) -> str:
        return f"{self.annotator} skipped item {self.item_id}"


class FlagReason(models.TextChoices):
    DISTRESSING = "distressing", "Distressing content"
    HARMFUL_DETAIL = "harmful_detail", "Contains actionable harmful detail"
    PERSONAL_DATA = "personal_data", "Contains personal data"
    IDENTITY = "identity", "Reveals which model wrote it"
    BROKEN = "broken", "Garbled or broken text"
    OTHER = "other", "Other"


class Flag(models.Model):
    """Content an annotator reports to the maintainers; flagging does not skip the item."""

    item = models.ForeignKey(CampaignItem, on_delete=models.CASCADE, related_name="flags")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="flags")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=16, choices=FlagReason.choices)
    note = models.CharField(max_length=1000, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_reason_display()} on item {self.item_id}"


class Adjudication(models.Model):
    """A gold label with its rationale. Append-only: a new decision supersedes the last one, and
    the chain of ``supersedes`` is the item's history."""

    item = models.ForeignKey(CampaignItem, on_delete=models.PROTECT, related_name="adjudications")
    adjudicator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    values = models.JSONField()
    rationale = models.TextField()
    rubric = models.ForeignKey(Rubric, on_delete=models.PROTECT, related_name="+")
    guideline = models.ForeignKey(
        Guideline, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    guideline_hash = models.CharField(max_length=64, blank=True)
    supersedes = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="superseded_by"
    )
    imported = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["item_id", "created_at", "id"]
        constraints = [
            # One first decision per item; later ones each supersede exactly one, so history is a line.
            models.UniqueConstraint(
                fields=["item"], condition=Q(supersedes__isnull=True), name="adjudication_one_first_per_item"
            ),
            models.CheckConstraint(
                condition=Q(imported=True) | Q(adjudicator__isnull=False), name="adjudication_has_adjudicator"
            ),
        ]

    def __str__(self) -> str:
        return f"adjudication {self.pk} of item {self.item_id}"
