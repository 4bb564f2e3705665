"""API for taxonomies, categories (maintainers write them through the services) and queries (read
only), scoped by the same selectors as the pages."""

from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api_permissions import rule_permission
from accounts.http import request_user
from querybank import services
from querybank.models import Category, Query, Taxonomy
from querybank.selectors import category_list_for_user, query_list_for_user
from querybank.serializers import (
    CategorySerializer,
    CategoryWriteSerializer,
    QuerySerializer,
    TaxonomySerializer,
    TaxonomyWriteSerializer,
)

_READ_ACTIONS = ("list", "retrieve")


class _MaintainersWrite:
    """Reads for any active user; writes for whoever may manage taxonomies (the services check
    the policy again)."""

    def get_permissions(self) -> list[BasePermission]:
        action = getattr(self, "action", None)
        perm = "querybank.browse_categories" if action in _READ_ACTIONS else "querybank.manage_taxonomies"
        return [rule_permission(perm)()]


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
class CategoryViewSet(_MaintainersWrite, mixins.DestroyModelMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = CategorySerializer
    pagination_class = QueryBankPagination
    filterset_fields = {"taxonomy__slug": ["exact"]}
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> QuerySet[Category]:
        if getattr(self, "swagger_fake_view", False):  # the schema generator may have no user
            return Category.objects.none()
        user = request_user(self.request)
        return category_list_for_user(user=user).order_by("taxonomy_id", "position", "name")

    @extend_schema(
        request=CategoryWriteSerializer, responses={201: CategorySerializer}, summary="New category"
    )
    def create(self, request: Request) -> Response:
        data = _valid(CategoryWriteSerializer, request.data, required=("taxonomy", "slug", "name"))
        category = services.category_create(actor=request_user(request), **data)
        return Response(CategorySerializer(category).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=CategoryWriteSerializer,
        responses={200: CategorySerializer},
        summary="Rename, reorder, describe or retire a category",
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        data = _valid(CategoryWriteSerializer, request.data, forbidden=("taxonomy", "slug"))
        category = services.category_update(actor=request_user(request), category=self.get_object(), **data)
        return Response(CategorySerializer(category).data)

    @extend_schema(summary="Delete a category no query is filed under (409 when in use: retire it)")
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.category_delete(actor=request_user(request), category=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(summary="List taxonomies"), retrieve=extend_schema(summary="One taxonomy")
)
class TaxonomyViewSet(_MaintainersWrite, mixins.DestroyModelMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = TaxonomySerializer
    pagination_class = QueryBankPagination
    lookup_value_regex = r"\d+"
    queryset = Taxonomy.objects.prefetch_related("categories").order_by("pk")

    @extend_schema(
        request=TaxonomyWriteSerializer, responses={201: TaxonomySerializer}, summary="New taxonomy"
    )
    def create(self, request: Request) -> Response:
        data = _valid(
            TaxonomyWriteSerializer, request.data, required=("slug", "name"), forbidden=("retired",)
        )
        taxonomy = services.taxonomy_create(actor=request_user(request), **data)
        return Response(TaxonomySerializer(taxonomy).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=TaxonomyWriteSerializer,
        responses={200: TaxonomySerializer},
        summary="Rename or retire a taxonomy",
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        data = _valid(TaxonomyWriteSerializer, request.data, forbidden=("slug",))
        taxonomy = services.taxonomy_update(actor=request_user(request), taxonomy=self.get_object(), **data)
        return Response(TaxonomySerializer(taxonomy).data)

    @extend_schema(summary="Delete a taxonomy none of whose categories holds a query (409 otherwise)")
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        services.taxonomy_delete(actor=request_user(request), taxonomy=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


def _valid(
    serializer_class: type, data: object, *, required: tuple[str, ...] = (), forbidden: tuple[str, ...] = ()
) -> dict[str, Any]:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    values: dict[str, Any] = dict(serializer.validated_data)
    errors = {name: "required" for name in required if name not in values}
    errors.update({name: "cannot be set here" for name in forbidden if name in values})
    if errors:
        raise ValidationError(errors)
    return values


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
