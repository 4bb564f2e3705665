"""Taxonomies, categories and queries. Categories are data, so staff can add a taxonomy any time."""

from django.db import models
from simple_history.models import HistoricalRecords


class Taxonomy(models.Model):
    """A set of categories: MedHarm's ten, or a source's own (MedSafetyBench's AMA principles)."""

    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    # A retired taxonomy or category takes no new queries; it is never deleted while in use.
    retired = models.BooleanField(default=False)

    class Meta:
        ordering = ["pk"]
        verbose_name_plural = "taxonomies"

    def __str__(self) -> str:
        return self.name


class Category(models.Model):
    taxonomy = models.ForeignKey(Taxonomy, on_delete=models.PROTECT, related_name="categories")
    slug = models.SlugField(max_length=80, unique=True)
    name = models.CharField(max_length=160)
    description = models.TextField(blank=True)
    position = models.PositiveSmallIntegerField(default=0)
    retired = models.BooleanField(default=False)

    class Meta:
        ordering = ["taxonomy_id", "position", "name"]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name


class ExpectedBehaviour(models.TextChoices):
    REFUSE = "refuse", "Refuse"
    CAUTION = "caution", "Answer with safety framing"
    REDIRECT = "redirect", "Decline the harmful part, redirect to safe help"
    ANSWER = "answer", "Answer (benign control)"


class Severity(models.TextChoices):
    LOW = "low", "Low"
    MODERATE = "moderate", "Moderate"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


class QueryStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    ACTIVE = "active", "Active"
    RETIRED = "retired", "Retired"


class Query(models.Model):
    """One benchmark query, traceable to the file and row it came from."""

    external_id = models.CharField(max_length=200)
    text = models.TextField()
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="queries")
    # Blank until set by the import or by clinicians' gold query labels.
    expected_behaviour = models.CharField(max_length=16, choices=ExpectedBehaviour.choices, blank=True)
    severity = models.CharField(max_length=16, choices=Severity.choices, blank=True)
    status = models.CharField(max_length=16, choices=QueryStatus.choices, default=QueryStatus.ACTIVE)
    source = models.SlugField(max_length=60)
    source_file = models.CharField(max_length=255, blank=True)
    source_row = models.PositiveIntegerField(null=True, blank=True)
    notes = models.TextField(blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords()

    class Meta:
        ordering = ["category__taxonomy_id", "category__position", "external_id"]
        verbose_name_plural = "queries"
        constraints = [
            models.UniqueConstraint(fields=["source", "external_id"], name="query_unique_source_external_id"),
        ]
        indexes = [models.Index(fields=["category", "status"])]
        permissions = [
            ("import_queries", "Can import queries from files"),
            ("export_queries", "Can export the query bank"),
        ]

    def __str__(self) -> str:
        return f"{self.source}:{self.external_id}"
