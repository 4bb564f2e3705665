"""Admin views of scoring records: read-only, since changes go through the audited services."""

from django.contrib import admin

from core.admin import ReadOnlyAdmin
from scoring.models import AnnotatorFlagThreshold, Report


@admin.register(AnnotatorFlagThreshold)
class AnnotatorFlagThresholdAdmin(ReadOnlyAdmin):
    list_display = ("campaign", "field_name", "statistic", "minimum", "min_items", "set_by", "set_at")


@admin.register(Report)
class ReportAdmin(ReadOnlyAdmin):
    list_display = ("title", "campaign", "label_source", "seed", "resamples", "created_by", "created_at")
    list_filter = ("label_source",)
    exclude = ("payload",)
