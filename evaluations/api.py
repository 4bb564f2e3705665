"""API for the registry and collection runs: create, start, pause, resume, cancel, retry, export."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.http import Http404, StreamingHttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from accounts.api_permissions import rule_permission
from accounts.http import request_user
from core.errors import Conflict
from evaluations import services
from evaluations.exporters import RESPONSE_EXPORT_FORMATS, responses_export_chunks
from evaluations.models import CollectionRun, Endpoint, ModelResponse, Pipeline
from evaluations.selectors import (
    endpoint_list_for_user,
    pipeline_list_for_user,
    response_list_for_user,
    run_list_with_progress,
)
from evaluations.serializers import (
    EndpointSerializer,
    ModelResponseSerializer,
    PipelineSerializer,
    RunCreateSerializer,
    RunSerializer,
)
from querybank.selectors import query_list_for_user, query_selection

ManageCollection = rule_permission("evaluations.manage_collection")


def _django_errors(error: DjangoValidationError) -> ValidationError:
    return ValidationError(error.message_dict if hasattr(error, "error_dict") else error.messages)


class EndpointViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = EndpointSerializer
    permission_classes = [ManageCollection]
    lookup_field = "slug"

    def get_queryset(self) -> QuerySet[Endpoint]:
        if getattr(self, "swagger_fake_view", False):  # the schema generator may have no user
            return Endpoint.objects.none()
        return endpoint_list_for_user(user=request_user(self.request))

    def perform_create(self, serializer: "BaseSerializer[Endpoint]") -> None:
        try:
            serializer.instance = services.endpoint_create(
                actor=request_user(self.request), **serializer.validated_data
            )
        except DjangoValidationError as error:
            raise _django_errors(error) from error


class PipelineViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = PipelineSerializer
    permission_classes = [ManageCollection]
    lookup_field = "slug"

    def get_queryset(self) -> QuerySet[Pipeline]:
        if getattr(self, "swagger_fake_view", False):  # the schema generator may have no user
            return Pipeline.objects.none()
        return pipeline_list_for_user(user=request_user(self.request))

    def perform_create(self, serializer: "BaseSerializer[Pipeline]") -> None:
        try:
            serializer.instance = services.pipeline_create(
                actor=request_user(self.request), **serializer.validated_data
            )
        except DjangoValidationError as error:
            raise _django_errors(error) from error


class RunViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = RunSerializer
    permission_classes = [ManageCollection]

    def get_queryset(self) -> QuerySet[CollectionRun]:
        if getattr(self, "swagger_fake_view", False):  # the schema generator may have no user
            return CollectionRun.objects.none()
        return run_list_with_progress(user=request_user(self.request)).prefetch_related("targets")

    @extend_schema(request=RunCreateSerializer, responses={201: RunSerializer})
    def create(self, request: Request) -> Response:
        payload = RunCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        user = request_user(request)
        queries, selection = query_selection(
            queries=query_list_for_user(user=user),
            category=data.get("category"),
            source=data.get("source"),
            external_ids=data.get("external_ids"),
        )
        targets: list[Endpoint | Pipeline] = []
        for slug in data["endpoints"]:
            targets.append(self._lookup(endpoint_list_for_user(user=user), slug, "endpoints"))
        for slug in data["pipelines"]:
            targets.append(self._lookup(pipeline_list_for_user(user=user), slug, "pipelines"))
        try:
            run = services.run_create(
                actor=user,
                name=data["name"],
                queries=queries,
                targets=targets,
                samples=data["samples"],
                parameters=data["parameters"],
                selection=selection,
                concurrency=data["concurrency"],
                max_attempts=data["max_attempts"],
            )
            if data["start"]:
                run = services.run_start(run=run, actor=user)
        except DjangoValidationError as error:
            raise _django_errors(error) from error
        return Response(RunSerializer(run).data, status=status.HTTP_201_CREATED)

    @staticmethod
    def _lookup(queryset: QuerySet, slug: str, field: str) -> Endpoint | Pipeline:
        found = queryset.filter(slug=slug).first()
        if found is None:
            raise ValidationError({field: f"No such {field[:-1]}: {slug}"})
        return found

    def _act(self, request: Request, service: object) -> Response:
        run = self.get_object()
        try:
            service(run=run, actor=request.user)  # type: ignore[operator]
        except DjangoValidationError as error:  # the run is in the wrong state for this action
            raise Conflict(" ".join(error.messages)) from error
        run.refresh_from_db()
        return Response(RunSerializer(run).data)

    @extend_schema(request=None, responses=RunSerializer)
    @action(detail=True, methods=["post"])
    def start(self, request: Request, pk: str) -> Response:
        return self._act(request, services.run_start)

    @extend_schema(request=None, responses=RunSerializer)
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, pk: str) -> Response:
        return self._act(request, services.run_pause)

    @extend_schema(request=None, responses=RunSerializer)
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: str) -> Response:
        return self._act(request, services.run_resume)

    @extend_schema(request=None, responses=RunSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        return self._act(request, services.run_cancel)

    @extend_schema(request=None, responses=RunSerializer)
    @action(detail=True, methods=["post"], url_path="retry-failed")
    def retry_failed(self, request: Request, pk: str) -> Response:
        return self._act(request, services.run_retry_failed)

    @extend_schema(responses={(200, "application/jsonl"): str})
    @action(detail=True, methods=["get"], url_path=r"export\.(?P<file_format>jsonl|csv)")
    def export(self, request: Request, pk: str, file_format: str) -> StreamingHttpResponse:
        run = self.get_object()
        if file_format not in RESPONSE_EXPORT_FORMATS:
            raise Http404
        user = request_user(request)
        response = StreamingHttpResponse(
            responses_export_chunks(
                responses=response_list_for_user(user=user, run_id=run.pk), file_format=file_format
            ),
            content_type=RESPONSE_EXPORT_FORMATS[file_format],
        )
        response["Content-Disposition"] = f'attachment; filename="run-{run.pk}-responses.{file_format}"'
        return response


class ResponseViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ModelResponseSerializer
    permission_classes = [ManageCollection]

    def get_queryset(self) -> QuerySet[ModelResponse]:
        if getattr(self, "swagger_fake_view", False):  # the schema generator may have no user
            return ModelResponse.objects.none()
        params = self.request.query_params
        return response_list_for_user(
            user=request_user(self.request),
            run_id=int(params["run"]) if params.get("run", "").isdigit() else None,
            target_id=int(params["target"]) if params.get("target", "").isdigit() else None,
            category_slug=params.get("category", ""),
            outcome=params.get("outcome", ""),
        )
