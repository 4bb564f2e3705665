"""Serializers of the judging API: output shapes shared with the pages, and the inputs of writes."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from evaluations.models import Endpoint
from judging.models import (
    PARSER_CHOICES,
    ExternalLabelImport,
    Judge,
    JudgeRun,
    JudgeTemplate,
    JudgeTrust,
    TrustThreshold,
)
from judging.parsers import AUDIT_FIELD_CHOICES

IMPORT_FORMAT_CHOICES = [("csv", "CSV"), ("jsonl", "JSON lines")]


class JudgeTemplateSerializer(serializers.ModelSerializer):
    class Meta:
        model = JudgeTemplate
        fields = [
            "id", "slug", "version", "title", "description", "system_prompt", "prompt", "parser", "fields",
            "content_hash", "builtin", "created_at",
        ]  # fmt: skip
        read_only_fields = ["id", "version", "content_hash", "builtin", "created_at"]


class JudgeTemplateInputSerializer(serializers.Serializer):
    slug = serializers.SlugField(max_length=60)
    title = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    system_prompt = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)
    prompt = serializers.CharField(allow_blank=True, trim_whitespace=False)
    parser = serializers.ChoiceField(choices=PARSER_CHOICES)
    fields = serializers.ListField(  # type: ignore[assignment]  # a declared field: DRF's metaclass moves it off the class
        child=serializers.ChoiceField(choices=AUDIT_FIELD_CHOICES), allow_empty=False
    )


class JudgePreviewInputSerializer(serializers.Serializer):
    system_prompt = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)
    prompt = serializers.CharField(allow_blank=True, trim_whitespace=False)
    parser = serializers.ChoiceField(choices=PARSER_CHOICES)
    fields = serializers.ListField(  # type: ignore[assignment]  # a declared field: DRF's metaclass moves it off the class
        child=serializers.ChoiceField(choices=AUDIT_FIELD_CHOICES), allow_empty=False
    )
    response = serializers.IntegerField(required=False, allow_null=True, default=None)
    output = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)


class JudgeSerializer(serializers.ModelSerializer):
    endpoint: serializers.SlugRelatedField[Endpoint] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )
    template = serializers.SerializerMethodField()

    class Meta:
        model = Judge
        fields = [
            "id",
            "slug",
            "name",
            "endpoint",
            "template",
            "temperature",
            "seed",
            "max_tokens",
            "samples",
        ]

    def get_template(self, judge: Judge) -> dict[str, Any]:
        return {"id": judge.template_id, "slug": judge.template.slug, "version": judge.template.version}


class JudgeInputSerializer(serializers.Serializer):
    slug = serializers.SlugField(max_length=80)
    name = serializers.CharField(max_length=160)
    endpoint = serializers.SlugField()
    template = serializers.IntegerField(help_text="Template version id.")
    temperature = serializers.FloatField(required=False, allow_null=True, default=0.0)
    seed = serializers.IntegerField(required=False, allow_null=True, default=None)
    max_tokens = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=1)
    samples = serializers.IntegerField(required=False, default=1, min_value=1, max_value=15)


class JudgeRunSerializer(serializers.ModelSerializer):
    judge: serializers.SlugRelatedField[Judge] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )
    template = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()

    class Meta:
        model = JudgeRun
        fields = [
            "id", "name", "judge", "template", "collection_run", "campaign", "status", "samples",
            "skipped_responses", "created_at", "started_at", "finished_at", "failure_reason", "progress",
        ]  # fmt: skip

    def get_template(self, run: JudgeRun) -> dict[str, Any]:
        return {"slug": run.template.slug, "version": run.template.version, "hash": run.template.content_hash}

    def get_progress(self, run: JudgeRun) -> dict[str, int]:
        from judging.selectors import judge_run_progress

        p = judge_run_progress(run=run)
        return {"total": p.total, "finished": p.finished, "parsed": p.parsed,
                "parse_failures": p.parse_failures, "errors": p.errors}  # fmt: skip


class JudgeRunInputSerializer(serializers.Serializer):
    judge = serializers.SlugField()
    collection_run = serializers.IntegerField(required=False, allow_null=True, default=None)
    campaign = serializers.IntegerField(required=False, allow_null=True, default=None)
    name = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)
    concurrency = serializers.IntegerField(required=False, default=64, min_value=1, max_value=512)
    start = serializers.BooleanField(required=False, default=True)


class JudgePlanInputSerializer(serializers.Serializer):
    half_width = serializers.FloatField(min_value=0.001, max_value=0.5)
    disagreement = serializers.FloatField(min_value=0.001, max_value=1, default=0.2)
    labels_per_item = serializers.IntegerField(min_value=1, max_value=20, default=2)
    minutes_per_label = serializers.FloatField(min_value=0.1, max_value=120, default=1.5)
    annotators = serializers.ListField(child=serializers.IntegerField(), required=False, default=list)
    open = serializers.BooleanField(default=False)


class JudgeImportSerializer(serializers.ModelSerializer):
    class Meta:
        model = ExternalLabelImport
        fields = ["id", "judge_name", "file_name", "file_hash", "rows", "created_at"]


class JudgeImportInputSerializer(serializers.Serializer):
    file = serializers.FileField()
    format = serializers.ChoiceField(choices=IMPORT_FORMAT_CHOICES)


class JudgeThresholdSerializer(serializers.ModelSerializer):
    class Meta:
        model = TrustThreshold
        fields = ["field", "min_kappa", "max_abs_bias", "recall_class", "min_recall", "min_items", "set_at"]
        read_only_fields = ["set_at"]


class JudgeTrustSerializer(serializers.ModelSerializer):
    judge: serializers.SlugRelatedField[Judge] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )
    status = serializers.SerializerMethodField()
    statement = serializers.CharField(read_only=True)

    class Meta:
        model = JudgeTrust
        fields = [
            "id", "judge", "external_judge", "imports", "field", "template", "template_hash", "rubric",
            "judge_run", "audit_campaign",
            "gold_source", "categories", "run_ids", "n_items", "kappa", "max_abs_bias", "recall",
            "thresholds", "granted_at", "revoked_at", "status", "statement",
        ]  # fmt: skip

    def get_status(self, trust: JudgeTrust) -> str:
        from judging.selectors import trust_status

        return trust_status(trust)


class JudgeTrustInputSerializer(serializers.Serializer):
    """Either ``judge_run`` (a judge run on the platform) or ``external_judge`` (an imported judge's
    name: trusted on the import files audited)."""

    judge_run = serializers.IntegerField(required=False, allow_null=True, default=None)
    external_judge = serializers.CharField(required=False, allow_blank=True, default="", max_length=120)
    campaign = serializers.IntegerField()
    field = serializers.ChoiceField(choices=AUDIT_FIELD_CHOICES)
    gold_source = serializers.ChoiceField(choices=["gold", "majority"], default="gold")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if (attrs.get("judge_run") is None) == (not attrs.get("external_judge")):
            raise serializers.ValidationError("Give either judge_run or external_judge.")
        return attrs


class JudgeDisagreementsInputSerializer(serializers.Serializer):
    campaign = serializers.IntegerField()
    items = serializers.ListField(
        child=serializers.IntegerField(min_value=1), allow_empty=False, max_length=5000
    )
