"""API representations of the query bank."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from querybank.models import Category, Query, Taxonomy


class CategorySerializer(serializers.ModelSerializer):
    taxonomy: "serializers.SlugRelatedField[Taxonomy]" = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )
    query_count = serializers.SerializerMethodField()

    class Meta:
        model = Category
        fields = ["id", "slug", "name", "description", "taxonomy", "position", "retired", "query_count"]

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_query_count(self, category: Category) -> int | None:
        # The selector annotates counts only for users who may read queries; null for the others.
        return getattr(category, "query_count", None)


class TaxonomySerializer(serializers.ModelSerializer):
    categories: "serializers.SlugRelatedField[Category]" = serializers.SlugRelatedField(
        slug_field="slug", many=True, read_only=True
    )

    class Meta:
        model = Taxonomy
        fields = ["id", "slug", "name", "description", "retired", "categories"]


class TaxonomyWriteSerializer(serializers.Serializer):
    """Input of a new taxonomy (``slug`` required) or of a change (every field optional)."""

    slug = serializers.SlugField(max_length=60, required=False)
    name = serializers.CharField(max_length=120, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    retired = serializers.BooleanField(required=False)


class CategoryWriteSerializer(serializers.Serializer):
    """Input of a new category (``taxonomy``, ``slug``, ``name``) or of a change (name, description,
    position, retired)."""

    taxonomy = serializers.SlugRelatedField(
        slug_field="slug", queryset=Taxonomy.objects.all(), required=False
    )
    slug = serializers.SlugField(max_length=80, required=False)
    name = serializers.CharField(max_length=160, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    position = serializers.IntegerField(min_value=0, max_value=32767, required=False)
    retired = serializers.BooleanField(required=False)


# Fields hidden on a query of the caller's open blind query campaign (querybank.selectors).
MASKED_ALWAYS = ("external_id", "source_file", "source_row", "notes", "updated_at")


class QuerySerializer(serializers.ModelSerializer):
    """A query; ``null`` in the fields an open blind campaign of the caller asks them to decide."""

    category: "serializers.SlugRelatedField[Category]" = serializers.SlugRelatedField(
        slug_field="slug", read_only=True, allow_null=True
    )

    class Meta:
        model = Query
        fields = [
            "id",
            "external_id",
            "text",
            "category",
            "expected_behaviour",
            "severity",
            "status",
            "source",
            "source_file",
            "source_row",
            "notes",
            "created_at",
            "updated_at",
        ]
        extra_kwargs = {
            name: {"allow_null": True} for name in (*MASKED_ALWAYS, "expected_behaviour", "severity")
        }

    def to_representation(self, query: Query) -> dict[str, object]:
        data = super().to_representation(query)
        if getattr(query, "masked", False):
            for name in MASKED_ALWAYS:
                data[name] = None
            for name in ("category", "expected_behaviour", "severity"):
                if getattr(query, f"mask_{name}", False):
                    data[name] = None
        return data
