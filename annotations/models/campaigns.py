"""Campaigns, their items, the leases that hand items out, and annotators' sessions."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from annotations.models.rubrics import Guideline, Rubric, RubricTarget
from evaluations.models import ModelResponse
from querybank.models import Query


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"


class Campaign(models.Model):
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    target = models.CharField(max_length=16, choices=RubricTarget.choices)
    status = models.CharField(max_length=8, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT)
    rubric = models.ForeignKey(Rubric, on_delete=models.PROTECT, related_name="campaigns")
    guideline = models.ForeignKey(Guideline, on_delete=models.PROTECT, related_name="campaigns")
    overlap = models.PositiveSmallIntegerField(
        default=2,
        validators=[MinValueValidator(1), MaxValueValidator(20)],
        help_text="Labels per item (k).",
    )
    annotators = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="annotation_campaigns"
    )
    # Blind: annotators never see model identity, others' labels, judges' labels or gold behaviour.
    blind = models.BooleanField(default=True)
    deadline = models.DateTimeField(null=True, blank=True)
    session_item_limit = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="Items per session before the annotator is asked to take a break.",
    )
    lease_minutes = models.PositiveSmallIntegerField(
        default=20,
        validators=[MinValueValidator(1), MaxValueValidator(24 * 60)],
        help_text="How long an item stays reserved for the annotator it was given to.",
    )
    # The adjudication rule: which disagreements send an item to the adjudicator.
    adjudicate_primary_disagreement = models.BooleanField(default=True)
    adjudicate_ordinal_spread = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        default=2,
        validators=[MinValueValidator(1)],
        help_text=(
            "Send an item to adjudication when an ordinal field spreads this many points (empty: never)."
        ),
    )
    selection = models.JSONField(default=dict, blank=True)  # what the items were chosen by
    # A per-campaign secret: the campaign order and each annotator's preferences derive from it.
    seed = models.CharField(max_length=32)
    # Imported campaigns hold another tool's labels; the file's hash refuses a second import.
    imported_from = models.CharField(max_length=255, blank=True)
    import_hash = models.CharField(max_length=64, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    # Raised (``F() + 1``, in the writer's transaction) by every service that changes what the
    # scores and agreement figures show: labels, adjudications, gold, items, status, selection.
    # The cached figures are keyed by it (``scoring.selectors.snapshot.campaign_state``).
    data_version = models.PositiveBigIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(overlap__gte=1), name="campaign_overlap_at_least_one"),
            models.UniqueConstraint(
                fields=["import_hash"], condition=~Q(import_hash=""), name="campaign_import_once"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_draft(self) -> bool:
        return self.status == CampaignStatus.DRAFT

    @property
    def is_closed(self) -> bool:
        return self.status == CampaignStatus.CLOSED

    def accepts_labels(self, now: datetime | None = None) -> bool:
        """Open and before its deadline: the only state in which labels are made or edited."""
        now = now or timezone.now()
        return self.status == CampaignStatus.OPEN and (self.deadline is None or self.deadline > now)


class GoldSource(models.TextChoices):
    NONE = "", "None yet"
    CONSENSUS = "consensus", "Annotators agree"
    ADJUDICATION = "adjudication", "Adjudicated"


class CampaignItem(models.Model):
    """One query or one response to label in a campaign, with its label count kept under lock."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="items")
    # Always the query; for a response campaign also the response (its query is the item's query).
    query = models.ForeignKey(Query, on_delete=models.PROTECT, related_name="+")
    response = models.ForeignKey(
        ModelResponse, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    stratum = models.CharField(max_length=64)  # "t<target>:c<category>": what the order spreads over
    sort_key = models.PositiveIntegerField()  # place in the campaign order
    required_labels = models.PositiveSmallIntegerField()  # the campaign's k when the item was made
    label_count = models.PositiveSmallIntegerField(default=0)
    agreement = models.FloatField(null=True, blank=True)
    disputed = models.BooleanField(default=False)
    gold_values = models.JSONField(null=True, blank=True)
    gold_source = models.CharField(max_length=16, choices=GoldSource.choices, blank=True, default="")

    class Meta:
        ordering = ["campaign_id", "sort_key"]
        constraints = [
            # The k rule, held by the database whatever the code does.
            models.CheckConstraint(
                condition=Q(label_count__lte=F("required_labels")), name="item_labels_at_most_k"
            ),
            models.UniqueConstraint(
                fields=["campaign", "query"], condition=Q(response__isnull=True), name="item_unique_query"
            ),
            models.UniqueConstraint(
                fields=["campaign", "response"],
                condition=Q(response__isnull=False),
                name="item_unique_response",
            ),
            models.UniqueConstraint(fields=["campaign", "sort_key"], name="item_unique_sort_key"),
        ]
        indexes = [
            # "Next item" walks only the items that still need labels, in campaign order.
            models.Index(
                fields=["campaign", "sort_key"],
                condition=Q(label_count__lt=F("required_labels")),
                name="item_needs_labels",
            ),
            models.Index(fields=["campaign", "agreement"], condition=Q(disputed=True), name="item_disputed"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign} item {self.pk}"

    @property
    def is_complete(self) -> bool:
        return self.label_count >= self.required_labels


class AnnotationSession(models.Model):
    """A sitting: starts when the annotator accepts the content warning, ends at the item limit."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="sessions")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    item_limit = models.PositiveIntegerField(null=True, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["campaign", "annotator", "-started_at"], name="session_latest")]

    def __str__(self) -> str:
        return f"{self.annotator} in {self.campaign} from {self.started_at:%Y-%m-%d %H:%M}"


class Lease(models.Model):
    """The item an annotator is working on: one per annotator per campaign, until it expires."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="leases")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    item = models.ForeignKey(CampaignItem, on_delete=models.CASCADE, related_name="leases")
    session = models.ForeignKey(
        AnnotationSession, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    leased_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "annotator"], name="lease_one_per_annotator"),
        ]
        indexes = [models.Index(fields=["item", "expires_at"], name="lease_item_live")]

    def __str__(self) -> str:
        return f"{self.annotator} holds {self.item_id} until {self.expires_at:%H:%M}"
