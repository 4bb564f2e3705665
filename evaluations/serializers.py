"""API representations of the registry, runs and responses. No endpoint ever exposes a key."""

from typing import Any

from rest_framework import serializers

from evaluations.models import CollectionRun, Endpoint, ModelResponse, Pipeline, RunTarget
from evaluations.services.runs import GENERATION_PARAMETERS
from querybank.models import Query


class EndpointSerializer(serializers.ModelSerializer):
    class Meta:
        model = Endpoint
        fields = [
            "id",
            "slug",
            "name",
            "kind",
            "base_url",
            "model_name",
            "family",
            "guard_format",
            "base_model",
            "api_key_env",
            "default_parameters",
            "max_concurrency",
            "requests_per_minute",
            "tokens_per_minute",
            "timeout_seconds",
            "price_input_per_million",
            "price_output_per_million",
            "is_active",
        ]


class PipelineSerializer(serializers.ModelSerializer):
    class Meta:
        model = Pipeline
        fields = ["id", "slug", "name", "input_guard", "model", "output_guard"]


class RunTargetSerializer(serializers.ModelSerializer):
    class Meta:
        model = RunTarget
        fields = ["id", "label", "endpoint", "pipeline", "config"]


class RunSerializer(serializers.ModelSerializer):
    targets = RunTargetSerializer(many=True, read_only=True)
    progress = serializers.SerializerMethodField()

    class Meta:
        model = CollectionRun
        fields = [
            "id",
            "name",
            "status",
            "selection",
            "samples",
            "parameters",
            "concurrency",
            "max_attempts",
            "created_at",
            "started_at",
            "finished_at",
            "failure_reason",
            "targets",
            "progress",
        ]

    def get_progress(self, run: CollectionRun) -> dict[str, Any]:
        from evaluations.selectors import run_progress_of

        # Read from the list query's annotations (``run_list_with_progress``): no query per run.
        progress = run_progress_of(run)
        return {
            "total": progress.total,
            "finished": progress.finished,
            "in_flight": progress.in_flight,  # leased items, kept for API clients; see "leased"
            "leased": progress.leased,
            "requests_in_flight": progress.requests_in_flight,
            "collectors": progress.collectors,
            "pending": progress.pending,
            "by_outcome": progress.by_outcome,
            "cost": str(progress.cost),
            "throughput_per_second": progress.throughput_per_second,
            "eta_seconds": progress.eta_seconds,
        }


class RunCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    category = serializers.CharField(required=False, help_text="Only queries of this category slug.")
    source = serializers.CharField(required=False, help_text="Only queries of this source.")  # type: ignore[assignment]  # a declared field: DRF's metaclass moves it off the class
    external_ids = serializers.ListField(child=serializers.CharField(), required=False)
    endpoints = serializers.ListField(child=serializers.SlugField(), required=False, default=list)
    pipelines = serializers.ListField(child=serializers.SlugField(), required=False, default=list)
    samples = serializers.IntegerField(min_value=1, max_value=100, default=1)
    parameters = serializers.DictField(required=False, default=dict)
    concurrency = serializers.IntegerField(min_value=1, max_value=1024, default=64)
    max_attempts = serializers.IntegerField(min_value=1, max_value=20, default=5)
    start = serializers.BooleanField(default=False)

    def validate_parameters(self, value: dict[str, Any]) -> dict[str, Any]:
        unknown = set(value) - set(GENERATION_PARAMETERS)
        if unknown:
            raise serializers.ValidationError(f"Unknown generation parameters: {', '.join(sorted(unknown))}")
        return value


class ModelResponseSerializer(serializers.ModelSerializer):
    query: "serializers.SlugRelatedField[Query]" = serializers.SlugRelatedField(
        slug_field="external_id", read_only=True
    )
    target = serializers.CharField(source="target.label", read_only=True)

    class Meta:
        model = ModelResponse
        fields = [
            "id",
            "run",
            "query",
            "target",
            "sample_index",
            "state",
            "outcome",
            "text",
            "finish_reason",
            "resolved_model",
            "input_tokens",
            "output_tokens",
            "latency_ms",
            "attempts",
            "cost",
            "error_reason",
            "input_guard",
            "output_guard",
            "request",
            "raw_reply",
            "errors",
            "finished_at",
        ]
