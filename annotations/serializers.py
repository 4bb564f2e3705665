"""API representations. What annotators receive is built from ``BlindItem`` and their own labels
only; the campaign serializer for non-maintainers leaves out the selection (run and target ids)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import User
from accounts.roles import Role
from annotations.importers import FORMATS
from annotations.models import (
    Campaign,
    FlagReason,
    Guideline,
    Label,
    Rubric,
    RubricField,
    RubricTarget,
    SkipReason,
)
from annotations.rubric_schema import FieldSpec
from querybank.models import Category


def spec_data(spec: FieldSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "label": spec.label,
        "kind": spec.kind.value,
        "required": spec.required,
        "primary": spec.primary,
        "help_text": spec.help_text,
        "options": [
            {"value": option.value, "label": option.label, "key": spec.key_for(position, option)}
            for position, option in enumerate(spec.options)
        ],
    }


class RubricFieldSerializer(serializers.ModelSerializer):
    class Meta:
        model = RubricField
        fields = [
            "name",
            "label",
            "kind",
            "help_text",
            "required",
            "primary",
            "options",
            "options_source",
            "query_attribute",
            "missing",
        ]


class RubricSerializer(serializers.ModelSerializer):
    fields = RubricFieldSerializer(many=True, read_only=True)  # type: ignore[assignment]

    class Meta:
        model = Rubric
        fields = [
            "id",
            "slug",
            "version",
            "target",
            "title",
            "description",
            "content_hash",
            "metric_map",
            "created_at",
            "fields",
        ]


class RubricCreateSerializer(serializers.Serializer):
    slug = serializers.SlugField(max_length=60)
    target = serializers.ChoiceField(choices=RubricTarget.choices)
    title = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    fields = serializers.ListField(child=serializers.DictField(), min_length=1)  # type: ignore[assignment]
    metric_map = serializers.DictField(required=False, default=dict)


class GuidelineSerializer(serializers.ModelSerializer):
    class Meta:
        model = Guideline
        fields = ["id", "slug", "version", "title", "body", "body_html", "content_hash", "created_at"]
        read_only_fields = ["version", "body_html", "content_hash", "created_at"]


class VersionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    slug = serializers.CharField()
    version = serializers.IntegerField()


class CampaignSerializer(serializers.ModelSerializer):
    """What any member of a campaign may see about it."""

    rubric = VersionSerializer(read_only=True)
    guideline = VersionSerializer(read_only=True)
    guideline_hash = serializers.CharField(source="guideline.content_hash", read_only=True)

    class Meta:
        model = Campaign
        fields = [
            "id",
            "name",
            "description",
            "target",
            "status",
            "rubric",
            "guideline",
            "guideline_hash",
            "overlap",
            "blind",
            "deadline",
            "session_item_limit",
            "lease_minutes",
            "created_at",
        ]


class CampaignManageSerializer(CampaignSerializer):
    """Maintainers: also the selection, the pool and the adjudication rule."""

    annotators: serializers.PrimaryKeyRelatedField[User] = serializers.PrimaryKeyRelatedField(
        many=True, read_only=True
    )

    class Meta(CampaignSerializer.Meta):
        fields = [
            *CampaignSerializer.Meta.fields,
            "annotators",
            "selection",
            "adjudicate_primary_disagreement",
            "adjudicate_ordinal_spread",
            "imported_from",
            "opened_at",
            "closed_at",
        ]


class CampaignCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    target = serializers.ChoiceField(choices=RubricTarget.choices)
    rubric = serializers.PrimaryKeyRelatedField(queryset=Rubric.objects.all())
    guideline = serializers.PrimaryKeyRelatedField(queryset=Guideline.objects.all())
    overlap = serializers.IntegerField(min_value=1, max_value=20, default=2)
    annotators = serializers.PrimaryKeyRelatedField(
        many=True,
        queryset=User.objects.filter(groups__name=Role.CLINICIAN.value),
        required=False,
        default=list,
    )
    blind = serializers.BooleanField(default=True)
    deadline = serializers.DateTimeField(required=False, allow_null=True, default=None)
    session_item_limit = serializers.IntegerField(required=False, allow_null=True, min_value=1, default=None)
    lease_minutes = serializers.IntegerField(min_value=1, max_value=24 * 60, default=20)
    adjudicate_primary_disagreement = serializers.BooleanField(default=True)
    adjudicate_ordinal_spread = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, default=2
    )
    runs = serializers.ListField(child=serializers.IntegerField(), required=False, default=list)
    run_targets = serializers.ListField(child=serializers.IntegerField(), required=False, default=list)
    categories = serializers.SlugRelatedField(
        many=True,
        slug_field="slug",
        queryset=Category.objects.all(),
        required=False,
        # The stubs type ``default`` as one object; with many=True DRF builds a list field.
        default=list,  # type: ignore[arg-type]
    )
    sources = serializers.ListField(child=serializers.SlugField(), required=False, default=list)


class CampaignUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    deadline = serializers.DateTimeField(required=False, allow_null=True)
    session_item_limit = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    lease_minutes = serializers.IntegerField(required=False, min_value=1, max_value=24 * 60)
    annotators = serializers.PrimaryKeyRelatedField(many=True, queryset=User.objects.all(), required=False)


class CampaignProgressSerializer(serializers.Serializer):
    items = serializers.IntegerField()
    complete = serializers.IntegerField()
    labels = serializers.IntegerField()
    labels_needed = serializers.IntegerField()
    disputed = serializers.IntegerField()
    adjudicated = serializers.IntegerField()


class OwnProgressSerializer(serializers.Serializer):
    """An annotator's own progress in an open campaign: nothing that depends on others' labels."""

    done = serializers.IntegerField(help_text="Labels the caller made in the campaign.")
    available = serializers.IntegerField(help_text="Items in the campaign.")
    remaining = serializers.IntegerField(help_text="Items the caller has not labelled.")
    session_done = serializers.IntegerField()
    session_limit = serializers.IntegerField(allow_null=True)
    session_remaining = serializers.IntegerField(allow_null=True)


class BlindItemSerializer(serializers.Serializer):
    """An item as an annotator may receive it: text to judge, the rubric, their own label."""

    id = serializers.IntegerField(source="item_id")
    campaign = serializers.IntegerField(source="campaign_id")
    target = serializers.CharField()
    query_text = serializers.CharField()
    response_text = serializers.CharField(allow_null=True)
    category = serializers.CharField(allow_null=True)
    rubric = serializers.SerializerMethodField()
    own_label = serializers.SerializerMethodField()

    @extend_schema_field(serializers.ListField(child=serializers.DictField()))
    def get_rubric(self, item: Any) -> list[dict[str, Any]]:
        """The fields to fill in, with their options and number keys."""
        return [spec_data(spec) for spec in item.specs]

    @extend_schema_field(serializers.DictField(allow_null=True))
    def get_own_label(self, item: Any) -> dict[str, Any] | None:
        if item.own_label_id is None:
            return None
        return {"id": item.own_label_id, "values": item.own_values}


class ClaimSerializer(serializers.Serializer):
    outcome = serializers.CharField()
    lease_expires_at = serializers.DateTimeField(allow_null=True)
    item = BlindItemSerializer(allow_null=True)


class LabelSerializer(serializers.ModelSerializer):
    """One's own label: values and the exact rubric and guideline versions it was made under."""

    rubric = VersionSerializer(read_only=True)
    guideline = VersionSerializer(read_only=True)

    class Meta:
        model = Label
        fields = [
            "id",
            "item",
            "campaign",
            "values",
            "rubric",
            "guideline",
            "guideline_hash",
            "revision",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class LabelCreateSerializer(serializers.Serializer):
    item = serializers.IntegerField()
    values = serializers.DictField()


class LabelEditSerializer(serializers.Serializer):
    values = serializers.DictField()


class SkipSerializer(serializers.Serializer):
    reason = serializers.ChoiceField(choices=SkipReason.choices)
    note = serializers.CharField(required=False, allow_blank=True, max_length=500, default="")


class FlagSerializer(serializers.Serializer):
    reason = serializers.ChoiceField(choices=FlagReason.choices)
    note = serializers.CharField(required=False, allow_blank=True, max_length=1000, default="")


class QueueItemSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    campaign = serializers.IntegerField(source="campaign_id")
    campaign_name = serializers.CharField(source="campaign.name")
    label_count = serializers.IntegerField()
    agreement = serializers.FloatField(allow_null=True)


class PseudonymousLabelSerializer(serializers.Serializer):
    annotator = serializers.CharField()
    values = serializers.DictField()
    guideline_version = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()


class DecisionSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    values = serializers.DictField()
    rationale = serializers.CharField()
    imported = serializers.BooleanField()
    supersedes = serializers.IntegerField(source="supersedes_id", allow_null=True)
    created_at = serializers.DateTimeField()


class AdjudicationViewSerializer(serializers.Serializer):
    item = BlindItemSerializer()
    agreement = serializers.FloatField(allow_null=True)
    labels = PseudonymousLabelSerializer(many=True)
    history = DecisionSerializer(many=True)


class AdjudicationCreateSerializer(serializers.Serializer):
    values = serializers.DictField()
    rationale = serializers.CharField(max_length=5000)


class AnnotationImportSerializer(serializers.Serializer):
    files = serializers.ListField(child=serializers.FileField(), min_length=1)
    file_format = serializers.ChoiceField(choices=FORMATS)
    name = serializers.CharField(max_length=200)
    rubric = serializers.PrimaryKeyRelatedField(queryset=Rubric.objects.filter(target=RubricTarget.RESPONSE))
    guideline = serializers.PrimaryKeyRelatedField(queryset=Guideline.objects.all())
    default_category = serializers.SlugRelatedField(slug_field="slug", queryset=Category.objects.all())
    missing_values = serializers.ListField(
        child=serializers.CharField(max_length=200), required=False, default=list
    )
    judges = serializers.ListField(child=serializers.CharField(max_length=120), required=False, default=list)
    dry_run = serializers.BooleanField(required=False, default=False)
    source = serializers.SlugField(default="annotation-import")  # type: ignore[assignment]  # a declared field: DRF's metaclass moves it off the class
