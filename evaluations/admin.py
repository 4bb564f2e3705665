"""Admin views of the collection records: read-only. Endpoints, pipelines and runs change only
through the services (pages, API, commands), which validate, check the actor and audit."""

from django.contrib import admin

from core.admin import ReadOnlyAdmin
from evaluations.models import CollectionRun, Collector, Endpoint, ModelResponse, Pipeline, RunTarget


@admin.register(Endpoint)
class EndpointAdmin(ReadOnlyAdmin):
    list_display = ("name", "slug", "kind", "model_name", "family", "max_concurrency", "is_active")
    list_filter = ("kind", "family", "is_active")
    search_fields = ("name", "slug", "model_name")


@admin.register(Pipeline)
class PipelineAdmin(ReadOnlyAdmin):
    list_display = ("name", "input_guard", "model", "output_guard")


class RunTargetInline(admin.TabularInline):
    model = RunTarget
    extra = 0
    readonly_fields = ("endpoint", "pipeline", "label", "config")
    can_delete = False

    def has_add_permission(self, request: object, obj: object = None) -> bool:
        return False


@admin.register(CollectionRun)
class CollectionRunAdmin(ReadOnlyAdmin):
    list_display = ("name", "status", "samples", "created_by", "created_at", "finished_at")
    list_filter = ("status",)
    inlines = [RunTargetInline]


@admin.register(RunTarget)
class RunTargetAdmin(ReadOnlyAdmin):
    list_display = ("label", "run", "endpoint", "pipeline")


@admin.register(ModelResponse)
class ModelResponseAdmin(ReadOnlyAdmin):
    list_display = ("id", "run", "target", "query", "sample_index", "state", "outcome", "attempts")
    list_filter = ("state", "outcome", "run")
    raw_id_fields = ("run", "query", "target")


@admin.register(Collector)
class CollectorAdmin(ReadOnlyAdmin):
    list_display = ("id", "run", "state", "hostname", "pid", "heartbeat_at", "requests_in_flight", "written")
    list_filter = ("state",)
    raw_id_fields = ("run",)
