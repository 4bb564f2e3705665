"""Admin views of the judging records: read-only, since every change goes through the audited services
(templates are versioned, runs are executed by the engine, trust is granted by an audit)."""

from django.contrib import admin

from core.admin import ReadOnlyAdmin
from judging.models import (
    ExternalJudgeLabel,
    ExternalLabelImport,
    Judge,
    JudgeItem,
    JudgeRun,
    JudgeTemplate,
    JudgeTrust,
    TrustThreshold,
)


@admin.register(JudgeTemplate)
class JudgeTemplateAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "created_at")


@admin.register(Judge)
class JudgeAdmin(ReadOnlyAdmin):
    list_display = ("__str__",)


@admin.register(JudgeRun)
class JudgeRunAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "status", "created_at")
    list_filter = ("status",)


@admin.register(JudgeItem)
class JudgeItemAdmin(ReadOnlyAdmin):
    list_display = ("id", "run", "state", "outcome")
    list_filter = ("state", "outcome")
    raw_id_fields = ("run",)


@admin.register(ExternalLabelImport)
class ExternalLabelImportAdmin(ReadOnlyAdmin):
    list_display = ("__str__",)


@admin.register(ExternalJudgeLabel)
class ExternalJudgeLabelAdmin(ReadOnlyAdmin):
    list_display = ("id", "__str__")


@admin.register(TrustThreshold)
class TrustThresholdAdmin(ReadOnlyAdmin):
    list_display = ("__str__",)


@admin.register(JudgeTrust)
class JudgeTrustAdmin(ReadOnlyAdmin):
    list_display = ("__str__",)
