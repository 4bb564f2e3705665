"""Read-only API for categories and queries, scoped by the same selectors as the pages."""

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.pagination import PageNumberPagination

from accounts.api_permissions import rule_permission
from accounts.http import request_user
from querybank.models import Category, Query
from querybank.selectors import category_list_for_user, query_list_for_user
from querybank.serializers import CategorySerializer, QuerySerializer


class QueryBankPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


@extend_schema_view(
    list=extend_schema(
        summary="List categories",
        description=(
            "Every taxonomy's categories; `query_count` is given only to roles that may read queries."
        ),
    ),
    retrieve=extend_schema(summary="One category"),
)
class CategoryViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = CategorySerializer
    permission_classes = [rule_permission("querybank.browse_categories")]
    pagination_class = QueryBankPagination
    filterset_fields = {"taxonomy__slug": ["exact"]}
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> QuerySet[Category]:
        if getattr(self, "swagger_fake_view", False):  # the schema generator may have no user
            return Category.objects.none()
        user = request_user(self.request)
        return category_list_for_user(user=user).order_by("taxonomy_id", "position", "name")


@extend_schema_view(
    list=extend_schema(
        summary="List queries",
        description="The benchmark queries the caller's role may read (researchers: none).",
        parameters=[
            OpenApiParameter("search", str, description="Substring of the text or external id."),
            OpenApiParameter("category", str, description="Category slug, e.g. toxicology."),
            OpenApiParameter("source", str, description="Source slug, e.g. medsafetybench."),
        ],
    ),
    retrieve=extend_schema(summary="One query"),
)
class QueryViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = QuerySerializer
    permission_classes = [rule_permission("querybank.read_query_text")]
    pagination_class = QueryBankPagination
    # Filtering is the selector's job (the same one the pages use), not a filter backend's.
    filter_backends: list[type] = []
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> QuerySet[Query]:
        if getattr(self, "swagger_fake_view", False):  # the schema generator may have no user
            return Query.objects.none()
        params = self.request.query_params
        return query_list_for_user(
            user=request_user(self.request),
            search=params.get("search", "").strip(),
            category_slug=params.get("category", "").strip(),
            source=params.get("source", "").strip(),
        )
