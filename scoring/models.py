"""Scoring records: the per-campaign threshold that flags annotators, and frozen campaign reports."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from annotations.models import Campaign


class ThresholdStatistic(models.TextChoices):
    PERCENT = "percent_agreement", "Percent agreement with gold"
    KAPPA = "cohen_kappa", "Cohen's kappa against gold"


class AnnotatorFlagThreshold(models.Model):
    """Annotators of the campaign whose agreement with the gold labels falls below ``minimum`` are
    flagged. One live row per campaign; a change is an update recorded in the audit log."""

    campaign = models.OneToOneField(Campaign, on_delete=models.CASCADE, related_name="flag_threshold")
    field_name = models.SlugField(
        max_length=40, blank=True, help_text="The rubric field compared with gold (empty: the primary field)."
    )
    statistic = models.CharField(
        max_length=24, choices=ThresholdStatistic.choices, default=ThresholdStatistic.PERCENT
    )
    minimum = models.FloatField(validators=[MinValueValidator(-1.0), MaxValueValidator(1.0)])
    # Below this many gold-labelled items an annotator's figure is too uncertain to flag them.
    min_items = models.PositiveIntegerField(default=10, validators=[MinValueValidator(1)])
    set_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    set_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(minimum__gte=-1.0) & Q(minimum__lte=1.0), name="flag_threshold_minimum_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.campaign}: {self.get_statistic_display()} below {self.minimum:g}"


class Report(models.Model):
    """A campaign report frozen when it was made: its tables and the provenance that reproduces them.

    ``payload`` holds everything the HTML, PDF, CSV and JSON downloads show, so a report reads the
    same tomorrow whatever labels arrive later; ``data_fingerprint`` identifies the labels,
    adjudications and responses it was computed from, and ``content_hash`` the payload itself.
    """

    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="reports")
    title = models.CharField(max_length=255)
    label_source = models.CharField(max_length=16)
    seed = models.BigIntegerField()
    resamples = models.PositiveIntegerField()
    payload = models.JSONField()
    data_fingerprint = models.CharField(max_length=64)
    content_hash = models.CharField(max_length=64)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.title
