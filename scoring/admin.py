"""Admin views of scoring records: read-only, since changes go through the audited services."""

from django.contrib import admin
from django.http import HttpRequest

from scoring.models import AnnotatorFlagThreshold, Report


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(AnnotatorFlagThreshold)
class AnnotatorFlagThresholdAdmin(ReadOnlyAdmin):
    list_display = ("campaign", "field_name", "statistic", "minimum", "min_items", "set_by", "set_at")


@admin.register(Report)
class ReportAdmin(ReadOnlyAdmin):
    list_display = ("title", "campaign", "label_source", "seed", "resamples", "created_by", "created_at")
    list_filter = ("label_source",)
    exclude = ("payload",)
