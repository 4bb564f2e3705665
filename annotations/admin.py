"""Admin for annotation data: a read-only window. Writes go through the services (and the pages),
so that every change is validated and audited; a new guideline version is the one admin write."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from accounts.http import signed_in_user
from annotations.models import (
    Adjudication,
    AnnotationSession,
    Campaign,
    CampaignItem,
    Flag,
    Guideline,
    Label,
    Lease,
    Rubric,
    RubricField,
    Skip,
)
from annotations.services.rubrics import guideline_publish
from core.admin import ReadOnlyAdmin


class RubricFieldInline(admin.TabularInline):
    model = RubricField
    extra = 0
    can_delete = False
    fields = (
        "position",
        "name",
        "label",
        "kind",
        "primary",
        "required",
        "options",
        "options_source",
        "query_attribute",
    )
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Rubric)
class RubricAdmin(ReadOnlyAdmin):
    list_display = ("title", "slug", "version", "target", "created_at")
    list_filter = ("target", "slug")
    inlines = [RubricFieldInline]


@admin.register(RubricField)
class RubricFieldAdmin(ReadOnlyAdmin):
    list_display = ("rubric", "name", "kind", "primary", "required")
    list_filter = ("kind",)


@admin.register(Guideline)
class GuidelineAdmin(admin.ModelAdmin):
    """Adding publishes the next version of the slug; existing versions never change."""

    list_display = ("title", "slug", "version", "content_hash", "created_at")
    fields = ("slug", "title", "body")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None  # the add form only

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Guideline, form: Any, change: bool) -> None:
        published = guideline_publish(
            actor=signed_in_user(request), slug=obj.slug, title=obj.title, body=obj.body
        )
        obj.pk = published.pk
        obj.version = published.version


@admin.register(Campaign)
class CampaignAdmin(ReadOnlyAdmin):
    list_display = ("name", "target", "status", "overlap", "blind", "deadline", "created_at")
    list_filter = ("status", "target", "blind")
    search_fields = ("name",)


@admin.register(CampaignItem)
class CampaignItemAdmin(ReadOnlyAdmin):
    list_display = (
        "pk",
        "campaign",
        "label_count",
        "required_labels",
        "disputed",
        "agreement",
        "gold_source",
    )
    list_filter = ("disputed", "gold_source")
    list_select_related = ("campaign",)


@admin.register(Label)
class LabelAdmin(ReadOnlyAdmin):
    list_display = (
        "pk",
        "item",
        "annotator",
        "external_rater",
        "rubric",
        "guideline",
        "revision",
        "created_at",
    )
    list_select_related = ("item", "item__campaign", "annotator", "rubric", "guideline")


@admin.register(Adjudication)
class AdjudicationAdmin(ReadOnlyAdmin):
    list_display = ("pk", "item", "adjudicator", "imported", "supersedes", "created_at")
    list_select_related = ("item", "item__campaign", "adjudicator")


@admin.register(AnnotationSession)
class AnnotationSessionAdmin(ReadOnlyAdmin):
    list_display = ("campaign", "annotator", "item_limit", "started_at", "ended_at")


@admin.register(Lease)
class LeaseAdmin(ReadOnlyAdmin):
    list_display = ("campaign", "annotator", "item", "expires_at")


@admin.register(Skip)
class SkipAdmin(ReadOnlyAdmin):
    list_display = ("item", "annotator", "reason", "created_at")
    list_filter = ("reason",)


@admin.register(Flag)
class FlagAdmin(ReadOnlyAdmin):
    list_display = ("item", "annotator", "reason", "created_at", "resolved_at")
    list_filter = ("reason",)
