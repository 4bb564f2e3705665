"""Read-only API for categories and queries, scoped by the same selectors as the pages."""

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import viewsets

from accounts.api_permissions import rule_permission
from querybank.models import Category, Query
from querybank.selectors import category_list_for_user, query_list_for_user
from querybank.serializers import CategorySerializer, QuerySerializer


class CategoryViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = CategorySerializer
    permission_classes = [rule_permission("querybank.browse_categories")]
    filterset_fields = {"taxonomy__slug": ["exact"]}

    def get_queryset(self) -> QuerySet[Category]:
        return category_list_for_user(user=self.request.user).order_by("taxonomy_id", "position", "name")


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("search", str, description="Substring of the text or external id."),
            OpenApiParameter("category", str, description="Category slug."),
            OpenApiParameter("source", str, description="Source slug, e.g. medsafetybench."),
        ]
    )
)
class QueryViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = QuerySerializer
    permission_classes = [rule_permission("querybank.read_query_text")]
    filter_backends: list[type] = []

    def get_queryset(self) -> QuerySet[Query]:
        params = self.request.query_params
        return query_list_for_user(
            user=self.request.user,
            search=params.get("search", ""),
            category_slug=params.get("category", ""),
            source=params.get("source", ""),
        )
