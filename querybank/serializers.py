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
        fields = ["id", "slug", "name", "description", "taxonomy", "position", "query_count"]

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_query_count(self, category: Category) -> int | None:
        # The selector annotates counts only for users who may read queries; null for the others.
        return getattr(category, "query_count", None)


class QuerySerializer(serializers.ModelSerializer):
    category: "serializers.SlugRelatedField[Category]" = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
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
