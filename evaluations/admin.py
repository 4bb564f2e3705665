from django.contrib import admin

from evaluations.models import CollectionRun, Endpoint, ModelResponse, Pipeline, RunTarget


@admin.register(Endpoint)
class EndpointAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "kind", "model_name", "family", "max_concurrency", "is_active")
    list_filter = ("kind", "family", "is_active")
    search_fields = ("name", "slug", "model_name")


@admin.register(Pipeline)
class PipelineAdmin(admin.ModelAdmin):
    list_display = ("name", "input_guard", "model", "output_guard")


class RunTargetInline(admin.TabularInline):
    model = RunTarget
    extra = 0
    readonly_fields = ("endpoint", "pipeline", "label", "config")
    can_delete = False


@admin.register(CollectionRun)
class CollectionRunAdmin(admin.ModelAdmin):
    list_display = ("name", "status", "samples", "created_by", "created_at", "finished_at")
    list_filter = ("status",)
    inlines = [RunTargetInline]
    readonly_fields = ("heartbeat_at", "started_at", "finished_at")


@admin.register(RunTarget)
class RunTargetAdmin(admin.ModelAdmin):
    list_display = ("label", "run", "endpoint", "pipeline")
    readonly_fields = ("run", "endpoint", "pipeline", "label", "config")


@admin.register(ModelResponse)
class ModelResponseAdmin(admin.ModelAdmin):
    list_display = ("id", "run", "target", "query", "sample_index", "state", "outcome", "attempts")
    list_filter = ("state", "outcome", "run")
    raw_id_fields = ("run", "query", "target")
    readonly_fields = [f.name for f in ModelResponse._meta.fields]
