"""API representations of the query bank."""

from rest_framework import serializers

from querybank.models import Category, Query


class CategorySerializer(serializers.ModelSerializer):
    taxonomy = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Category
        fields = ["id", "slug", "name", "description", "taxonomy", "position"]


class QuerySerializer(serializers.ModelSerializer):
    category = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Query
        fields = [
            "id", "external_id", "text", "category", "expected_behaviour", "severity", "status",
            "source", "source_file", "source_row", "notes", "created_at", "updated_at",
        ]
