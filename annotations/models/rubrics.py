"""Rubrics and guidelines: versioned, immutable rows. A new version is a new row, never an edit."""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotations.rubric_schema import FieldSpec, Kind, Option


class RubricTarget(models.TextChoices):
    QUERY = "query", "Queries"
    RESPONSE = "response", "Model responses"


class FieldKind(models.TextChoices):
    BINARY = Kind.BINARY.value, "Binary (yes / no)"
    NOMINAL = Kind.NOMINAL.value, "Nominal (one of several)"
    ORDINAL = Kind.ORDINAL.value, "Ordinal scale with labelled points"
    INTERVAL = Kind.INTERVAL.value, "Interval scale with numeric points"
    TEXT = Kind.TEXT.value, "Free text"


class OptionsSource(models.TextChoices):
    FIXED = "", "The options stored on the field"
    CATEGORIES = "categories", "The categories of the query's taxonomy"


class QueryAttribute(models.TextChoices):
    """The query attribute a gold value of the field sets (query rubrics only)."""

    NONE = "", "None"
    CATEGORY = "category", "Category"
    EXPECTED_BEHAVIOUR = "expected_behaviour", "Expected behaviour"
    SEVERITY = "severity", "Severity"


class RubricQuerySet(models.QuerySet["Rubric"]):
    def latest_versions(self) -> RubricQuerySet:
        """The newest version of each rubric slug. A correlated subquery rather than PostgreSQL's
        DISTINCT ON, so it runs on the embedded SQLite default too."""
        newest = (
            Rubric.objects.filter(slug=models.OuterRef("slug")).order_by("-version").values("version")[:1]
        )
        return self.filter(version=models.Subquery(newest)).order_by("slug")


class Rubric(models.Model):
    slug = models.SlugField(max_length=60)
    version = models.PositiveIntegerField()
    target = models.CharField(max_length=16, choices=RubricTarget.choices)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    # sha256 of the fields' definitions: two versions with the same hash rate the same thing.
    content_hash = models.CharField(max_length=64)
    # Which field and values define each score input (``annotations.metric_map``); empty: the
    # default map of our response rubric.
    metric_map = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = RubricQuerySet.as_manager()

    class Meta:
        ordering = ["slug", "-version"]
        constraints = [models.UniqueConstraint(fields=["slug", "version"], name="rubric_unique_version")]

    def __str__(self) -> str:
        return f"{self.title} v{self.version}"

    def specs(self, *, categories: Iterable[tuple[str, str]] = ()) -> list[FieldSpec]:
        """The fields as ``FieldSpec``; ``categories`` (slug, name) fill fields whose options are
        the query bank's categories."""
        categories = list(categories)
        # A rubric version never changes, so its fields are read once per process (every label
        # submit needs them twice). Keyed by creation time too, so a re-created row is not confused.
        key = (self.pk, self.created_at)
        fields = _FIELDS.get(key)
        if fields is None:
            fields = _FIELDS[key] = list(self.fields.all())
        return [f.spec(categories=categories) for f in fields]


_FIELDS: dict[tuple[int, object], list[RubricField]] = {}


class RubricField(models.Model):
    rubric = models.ForeignKey(Rubric, on_delete=models.CASCADE, related_name="fields")
    name = models.SlugField(max_length=40)
    label = models.CharField(max_length=120)
    kind = models.CharField(max_length=16, choices=FieldKind.choices)
    help_text = models.TextField(blank=True)
    required = models.BooleanField(default=True)
    primary = models.BooleanField(default=False)
    position = models.PositiveSmallIntegerField(default=0)
    # [{"value": <bool|int|str>, "label": "..."}] in display order (ordinal: increasing).
    options = models.JSONField(default=list, blank=True)
    options_source = models.CharField(max_length=16, choices=OptionsSource.choices, blank=True, default="")
    query_attribute = models.CharField(max_length=32, choices=QueryAttribute.choices, blank=True, default="")
    # The option value that means "missing" ({"value": ...}); empty: every option is a rating.
    missing = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["rubric_id", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["rubric", "name"], name="rubric_field_unique_name"),
            models.UniqueConstraint(
                fields=["rubric"], condition=Q(primary=True), name="rubric_one_primary_field"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rubric}: {self.label}"

    def spec(self, *, categories: Iterable[tuple[str, str]] = ()) -> FieldSpec:
        if self.options_source == OptionsSource.CATEGORIES:
            options = tuple(Option(value=slug, label=name) for slug, name in categories)
        else:
            options = tuple(
                Option(value=o["value"], label=str(o.get("label", o["value"]))) for o in self.options
            )
        return FieldSpec(
            name=self.name,
            label=self.label,
            kind=Kind(self.kind),
            options=options,
            required=self.required,
            primary=self.primary,
            help_text=self.help_text,
            missing=self.missing.get("value") if isinstance(self.missing, dict) else None,
        )


class Guideline(models.Model):
    """Annotation guidelines in Markdown; ``body_html`` is the sanitised rendering, made once."""

    slug = models.SlugField(max_length=60)
    version = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    body = models.TextField()
    body_html = models.TextField()
    # sha256 of ``body``: what a label says its annotator read, checkable against any copy.
    content_hash = models.CharField(max_length=64)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug", "-version"]
        constraints = [models.UniqueConstraint(fields=["slug", "version"], name="guideline_unique_version")]

    def __str__(self) -> str:
        return f"{self.title} v{self.version}"
