"""The release API: researchers read the releases they hold a grant on, by session or by a
researcher token scoped to those releases. Every read of restricted data writes an audit event.

Authentication: ``Authorization: Bearer mhr_...`` (a researcher token) or the browser session.
The DRF tokens of ``/api/v1/auth/token/`` are not accepted here, and researcher tokens are not
accepted anywhere else.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.http.response import HttpResponseBase
from django.urls import path
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, viewsets
from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import BaseRouter
from rest_framework.views import APIView

from accounts import policy
from accounts.api_permissions import Authenticated
from accounts.http import request_user
from audit.actions import AuditAction
from releases import selectors
from releases.access_hooks import HOOKS
from releases.downloads import file_response, table_rows
from releases.models import Release, ReleaseFile
from releases.services import release_access_record

MAX_LIMIT = 1000


class ReleaseFileSerializer(serializers.ModelSerializer):
    class Meta:
        model = ReleaseFile
        fields = ["name", "tier", "table", "file_format", "size", "sha256", "rows"]


class ReleaseSerializer(serializers.ModelSerializer):
    files = serializers.SerializerMethodField()

    class Meta:
        model = Release
        fields = [
            "id",
            "slug",
            "version",
            "title",
            "changelog",
            "datasheet",
            "status",
            "manifest_sha256",
            "built_at",
            "files",
        ]

    @extend_schema_field(ReleaseFileSerializer(many=True))
    def get_files(self, release: Release) -> list[dict[str, object]]:
        # The stubs type ``.data`` as a ReturnDict; with many=True it is a ReturnList of dicts.
        return ReleaseFileSerializer(release.files.order_by("tier", "name"), many=True).data  # type: ignore[return-value]


def _credential(request: Request) -> str | None:
    """How the audit trail names the caller's scoped credential (a researcher token's prefix)."""
    return HOOKS.credential_label(request.auth)


def releases_for_caller(request: Request) -> QuerySet[Release]:
    """The twin of ``_allowed``: the releases whose restricted data this caller may read now."""
    return selectors.release_list_for_credential(user=request.user, auth=request.auth)


def _allowed(request: Request, release: Release) -> bool:
    if not policy.can_access_restricted(request.user, release):
        return False
    scoped = HOOKS.restricted_list_for_credential(request.auth)
    return scoped is None or scoped.filter(pk=release.pk).exists()


def _release_for(request: Request, pk: object) -> Release:
    try:
        release = Release.objects.get(pk=int(pk))  # type: ignore[call-overload]
    except (Release.DoesNotExist, ValueError) as exc:
        raise NotFound("No such release.") from exc
    if not _allowed(request, release):
        raise PermissionDenied("No active access grant on this release for this caller (or token scope).")
    return release


class _ReleaseAuthentication:
    """Researcher tokens (registered by the access app) and the browser session, read per request
    so that the registration made when Django starts is the one used."""

    def get_authenticators(self) -> list[BaseAuthentication]:
        return [auth() for auth in [*HOOKS.authentication_classes, SessionAuthentication]]


class ReleaseViewSet(_ReleaseAuthentication, viewsets.GenericViewSet):
    permission_classes = [Authenticated]
    serializer_class = ReleaseSerializer
    queryset = Release.objects.none()

    def _release(self, request: Request, pk: str) -> Release:
        return _release_for(request, pk)

    @extend_schema(summary="Releases you may read now", responses=ReleaseSerializer(many=True))
    def list(self, request: Request) -> Response:
        releases = releases_for_caller(request).order_by("slug", "-version").prefetch_related("files")
        page = self.paginate_queryset(releases)
        return self.get_paginated_response(ReleaseSerializer(page, many=True).data)

    @extend_schema(summary="A release with its files and their hashes", responses=ReleaseSerializer)
    def retrieve(self, request: Request, pk: str) -> Response:
        release = self._release(request, pk)
        release_access_record(
            actor=request_user(request),
            action=AuditAction.API_READ,
            release=release,
            details={"endpoint": "release", "token": _credential(request)},
        )
        return Response(ReleaseSerializer(release).data)

    @extend_schema(
        summary="Rows of a restricted table",
        parameters=[OpenApiParameter("offset", int), OpenApiParameter("limit", int)],
        responses={200: OpenApiResponse(response=OpenApiTypes.OBJECT)},
    )
    @action(detail=True, methods=["get"], url_path=r"tables/(?P<table>[a-z_]+)")
    def tables(self, request: Request, pk: str, table: str) -> Response:
        release = self._release(request, pk)
        try:
            offset = int(request.query_params.get("offset", 0))
            limit = int(request.query_params.get("limit", 100))
        except ValueError as exc:
            raise ValidationError({"offset": "offset and limit are whole numbers."}) from exc
        if offset < 0 or not 1 <= limit <= MAX_LIMIT:
            raise ValidationError({"limit": f"offset >= 0 and 1 <= limit <= {MAX_LIMIT}."})
        try:
            release_file = selectors.table_parquet(release=release, table=table)
        except ReleaseFile.DoesNotExist as exc:
            raise NotFound(f"No table {table!r} in this release.") from exc
        rows, total = table_rows(release_file, offset=offset, limit=limit)
        release_access_record(
            actor=request_user(request),
            action=AuditAction.API_READ,
            release=release,
            details={
                "endpoint": "table",
                "table": table,
                "offset": offset,
                "rows": len(rows),
                "token": _credential(request),
            },
        )
        return Response({"table": table, "offset": offset, "count": total, "rows": rows})


class ReleaseFileView(_ReleaseAuthentication, APIView):
    """One file of a release, behind the same check as the pages (plain path: names hold dots)."""

    permission_classes = [Authenticated]

    @extend_schema(
        summary="Download a file of the release",
        responses={200: OpenApiResponse(response=OpenApiTypes.BINARY)},
    )
    def get(self, request: Request, pk: int, name: str) -> HttpResponseBase:
        release = _release_for(request, pk)
        try:
            release_file = selectors.file_get(release=release, name=name)
        except ReleaseFile.DoesNotExist as exc:
            raise NotFound("No such file in this release.") from exc
        release_access_record(
            actor=request_user(request),
            action=AuditAction.FILE_DOWNLOAD,
            release=release,
            details={
                "file": release_file.name,
                "sha256": release_file.sha256,
                "channel": "api",
                "token": _credential(request),
            },
        )
        return file_response(request._request, release_file)


def register(router: BaseRouter) -> None:
    router.register("releases", ReleaseViewSet, basename="release")


urlpatterns = [
    path("releases/<int:pk>/files/<path:name>", ReleaseFileView.as_view(), name="api-release-file"),
]
