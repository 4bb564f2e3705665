"""The annotation API: campaigns, next item, labels, skips and flags, adjudication, rubrics,
guidelines, import and (audited) unblinding. The same rules, selectors and services as the pages.

``register(router)`` adds every viewset to the project's router (medharm_web/api_urls.py).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import BaseRouter

from accounts.api_permissions import Authenticated, rule_permission
from accounts.http import request_user
from accounts.policy import can_annotate, can_manage_campaigns, can_view_campaign_progress
from annotations import selectors
from annotations.models import Campaign, CampaignItem, Guideline, Label, Rubric
from annotations.serializers import (
    AdjudicationCreateSerializer,
    AdjudicationViewSerializer,
    AnnotationImportSerializer,
    BlindItemSerializer,
    CampaignCreateSerializer,
    CampaignManageSerializer,
    CampaignProgressSerializer,
    CampaignSerializer,
    CampaignUpdateSerializer,
    ClaimSerializer,
    DecisionSerializer,
    FlagSerializer,
    GuidelineSerializer,
    LabelCreateSerializer,
    LabelEditSerializer,
    LabelSerializer,
    OwnProgressSerializer,
    QueueItemSerializer,
    RubricCreateSerializer,
    RubricSerializer,
    SkipSerializer,
)
from annotations.services.adjudication import adjudication_record
from annotations.services.campaigns import campaign_close, campaign_create, campaign_open, campaign_update
from annotations.services.imports import annotations_import
from annotations.services.labelling import (
    item_flag,
    item_next,
    item_skip,
    label_edit,
    label_submit,
    session_current,
    session_start,
)
from annotations.services.rubrics import guideline_publish, rubric_create
from annotations.services.unblinding import campaign_unblind_labels, item_unblind
from core.errors import Conflict, error_body
from core.imports import ImportRejected, ImportTooLarge
from querybank.services import import_size_check

ManageCampaigns = rule_permission("annotations.manage_campaigns")
Annotate = rule_permission("annotations.annotate")
Adjudicate = rule_permission("annotations.adjudicate")
ReadRubrics = rule_permission("annotations.read_rubrics")
Unblind = rule_permission("annotations.unblind")
ImportAnnotations = rule_permission("annotations.import_annotations")


def _drf_error(error: DjangoValidationError) -> ValidationError:
    return ValidationError(error.message_dict if hasattr(error, "error_dict") else {"detail": error.messages})


# --- campaigns ----------------------------------------------------------------------------------


class CampaignViewSet(viewsets.ReadOnlyModelViewSet):
    """Campaigns the caller may see. Annotators get the annotator view; maintainers everything."""

    lookup_value_regex = r"\d+"

    def get_permissions(self) -> list[BasePermission]:
        if self.action in ("create", "partial_update", "open", "close", "labels"):
            return [ManageCampaigns()]
        if self.action in ("next", "session"):
            return [Annotate()]
        return [Authenticated()]

    def get_queryset(self) -> QuerySet[Campaign]:
        if getattr(self, "swagger_fake_view", False):  # the schema generator may have no user
            return Campaign.objects.none()
        user = request_user(self.request)
        return selectors.campaign_list_for_user(user=user).select_related("rubric", "guideline")

    def get_serializer_class(self) -> type:
        if can_manage_campaigns(self.request.user):
            return CampaignManageSerializer
        return CampaignSerializer

    def _annotator_campaign(self) -> Campaign:
        try:
            campaign = selectors.campaign_get_for_annotator(
                user=request_user(self.request), campaign_id=int(self.kwargs["pk"])
            )
        except Campaign.DoesNotExist as exc:
            raise Http404 from exc
        if not can_annotate(self.request.user, campaign):
            raise PermissionDenied("You are not an annotator of this campaign.")
        return campaign

    @extend_schema(request=CampaignCreateSerializer, responses={201: CampaignManageSerializer})
    def create(self, request: Request) -> Response:
        payload = CampaignCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        data["categories"] = [c.pk for c in data["categories"]]
        try:
            campaign = campaign_create(actor=request_user(request), **data)
        except DjangoValidationError as error:
            raise _drf_error(error) from error
        return Response(CampaignManageSerializer(campaign).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=CampaignUpdateSerializer, responses={200: CampaignManageSerializer})
    def partial_update(self, request: Request, pk: str) -> Response:
        campaign = self.get_object()
        payload = CampaignUpdateSerializer(data=request.data, partial=True)
        payload.is_valid(raise_exception=True)
        changes = dict(payload.validated_data)
        annotators = changes.pop("annotators", None)
        try:
            campaign = campaign_update(
                campaign=campaign, actor=request_user(request), annotators=annotators, **changes
            )
        except DjangoValidationError as error:
            raise _drf_error(error) from error
        return Response(CampaignManageSerializer(campaign).data)

    def _transition(self, service: Any) -> Response:
        campaign = self.get_object()
        try:
            campaign = service(campaign=campaign, actor=self.request.user)
        except DjangoValidationError as error:
            raise Conflict(" ".join(error.messages)) from error
        return Response(CampaignManageSerializer(campaign).data)

    @extend_schema(
        request=None,
        responses={200: CampaignManageSerializer, 409: OpenApiResponse(description="Wrong state")},
    )
    @action(detail=True, methods=["post"])
    def open(self, request: Request, pk: str) -> Response:
        return self._transition(campaign_open)

    @extend_schema(
        request=None,
        responses={200: CampaignManageSerializer, 409: OpenApiResponse(description="Wrong state")},
    )
    @action(detail=True, methods=["post"])
    def close(self, request: Request, pk: str) -> Response:
        return self._transition(campaign_close)

    @extend_schema(
        responses={
            200: PolymorphicProxySerializer(
                component_name="CampaignProgressAnswer",
                serializers=[CampaignProgressSerializer, OwnProgressSerializer],
                resource_type_field_name=None,
            )
        }
    )
    @action(detail=True, methods=["get"])
    def progress(self, request: Request, pk: str) -> Response:
        """Campaign-wide progress (maintainers, adjudicators outside the pool, anyone once closed);
        an annotator of an open campaign gets their own progress only."""
        campaign = self.get_object()
        if can_view_campaign_progress(request.user, campaign):
            return Response(CampaignProgressSerializer(selectors.campaign_progress(campaign=campaign)).data)
        annotator = request_user(request)
        session = session_current(campaign=campaign, annotator=annotator)
        mine = selectors.annotator_progress(campaign=campaign, annotator=annotator, session=session)
        return Response(OwnProgressSerializer(mine).data)

    @extend_schema(request=None, responses={201: OpenApiResponse(description="Session started")})
    @action(detail=True, methods=["post"])
    def session(self, request: Request, pk: str) -> Response:
        """Start a labelling session (the client has shown the content warning)."""
        campaign = self._annotator_campaign()
        try:
            session = session_start(campaign=campaign, annotator=request_user(request))
        except DjangoValidationError as error:
            raise Conflict(" ".join(error.messages)) from error
        return Response(
            {"session": session.pk, "item_limit": session.item_limit}, status=status.HTTP_201_CREATED
        )

    @extend_schema(request=None, responses={200: ClaimSerializer})
    @action(detail=True, methods=["post"])
    def next(self, request: Request, pk: str) -> Response:
        """The item to label now (reserved for the campaign's lease time), or why there is none."""
        campaign = self._annotator_campaign()
        user = request_user(request)
        session = session_current(campaign=campaign, annotator=user)
        claim = item_next(campaign=campaign, annotator=user, session=session)
        item = selectors.blind_item(item=claim.item, annotator=user) if claim.item else None
        return Response(
            ClaimSerializer(
                {
                    "outcome": claim.outcome,
                    "item": item,
                    "lease_expires_at": claim.lease.expires_at if claim.lease else None,
                }
            ).data
        )

    @extend_schema(responses={200: OpenApiResponse(description="Long-format rows with model identity")})
    @action(detail=True, methods=["get"])
    def labels(self, request: Request, pk: str) -> Response:
        """Every label of the campaign with the model that wrote each item: unblinding, audited."""
        campaign = self.get_object()
        return Response(campaign_unblind_labels(campaign=campaign, actor=request_user(request)))


# --- items: read the one held, skip, flag, unblind ---------------------------------------------


class ItemViewSet(viewsets.GenericViewSet):
    lookup_value_regex = r"\d+"
    serializer_class = BlindItemSerializer

    def get_permissions(self) -> list[BasePermission]:
        if self.action == "identity":
            return [Unblind()]
        return [Annotate()]

    def get_queryset(self) -> QuerySet[CampaignItem]:
        if getattr(self, "swagger_fake_view", False):  # the schema generator may have no user
            return CampaignItem.objects.none()
        return selectors.item_list_for_annotator(user=request_user(self.request))

    def retrieve(self, request: Request, pk: str) -> Response:
        """An item the caller holds or has labelled, blinded."""
        item = self.get_object()
        user = request_user(request)
        return Response(BlindItemSerializer(selectors.blind_item(item=item, annotator=user)).data)

    @extend_schema(request=SkipSerializer, responses={204: None})
    @action(detail=True, methods=["post"])
    def skip(self, request: Request, pk: str) -> Response:
        item = self.get_object()
        payload = SkipSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            item_skip(item=item, annotator=request_user(request), **payload.validated_data)
        except DjangoValidationError as error:
            raise _drf_error(error) from error
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=FlagSerializer, responses={201: None})
    @action(detail=True, methods=["post"])
    def flag(self, request: Request, pk: str) -> Response:
        item = self.get_object()
        payload = FlagSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            flag = item_flag(item=item, annotator=request_user(request), **payload.validated_data)
        except DjangoValidationError as error:
            raise _drf_error(error) from error
        return Response({"id": flag.pk}, status=status.HTTP_201_CREATED)

    @extend_schema(
        responses={200: OpenApiResponse(description="Run, target, endpoint and model of the item")}
    )
    @action(detail=True, methods=["get"])
    def identity(self, request: Request, pk: str) -> Response:
        """Which model wrote the item (maintainers; every call is an audit event)."""
        user = request_user(request)
        campaigns = selectors.campaign_list_for_user(user=user).values("pk")
        try:
            item = CampaignItem.objects.select_related("response").get(campaign__in=campaigns, pk=int(pk))
        except CampaignItem.DoesNotExist as exc:
            raise Http404 from exc
        return Response(item_unblind(item=item, actor=user, reason=request.query_params.get("reason", "")))


# --- labels -------------------------------------------------------------------------------------


class LabelViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """The caller's own labels. Nobody, whatever their role, reads another annotator's label here."""

    serializer_class = LabelSerializer
    permission_classes = [Annotate]
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> QuerySet[Label]:
        if getattr(self, "swagger_fake_view", False):  # the schema generator has no user
            return Label.objects.none()
        labels = selectors.label_list_for_annotator(user=request_user(self.request))
        campaign = self.request.query_params.get("campaign", "")
        if campaign.isdigit():
            labels = labels.filter(campaign_id=int(campaign))
        return labels

    @extend_schema(request=LabelCreateSerializer, responses={201: LabelSerializer})
    def create(self, request: Request) -> Response:
        """Submit a label for the item the caller holds."""
        payload = LabelCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        user = request_user(request)
        items = selectors.item_list_for_annotator(user=user)
        item = items.filter(pk=payload.validated_data["item"]).first()
        if item is None:
            raise Http404("No such item assigned to you.")
        try:
            label = label_submit(item=item, annotator=user, values=payload.validated_data["values"])
        except DjangoValidationError as error:
            raise _drf_error(error) from error
        except DjangoPermissionDenied as error:
            raise PermissionDenied(str(error)) from error
        return Response(LabelSerializer(label).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=LabelEditSerializer, responses={200: LabelSerializer})
    def partial_update(self, request: Request, pk: str) -> Response:
        """Change one's own label while the campaign is open."""
        label = self.get_object()
        payload = LabelEditSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        user = request_user(request)
        try:
            label = label_edit(label=label, annotator=user, values=payload.validated_data["values"])
        except DjangoValidationError as error:
            raise _drf_error(error) from error
        except DjangoPermissionDenied as error:
            raise PermissionDenied(str(error)) from error
        return Response(LabelSerializer(label).data)


# --- adjudication -------------------------------------------------------------------------------


class AdjudicationViewSet(viewsets.GenericViewSet):
    """The queue of disputed items, each item's pseudonymous labels, and gold decisions."""

    permission_classes = [Adjudicate]
    lookup_value_regex = r"\d+"
    serializer_class = QueueItemSerializer

    def get_queryset(self) -> QuerySet[CampaignItem]:
        if getattr(self, "swagger_fake_view", False):  # the schema generator may have no user
            return CampaignItem.objects.none()
        return selectors.adjudicable_items(user=request_user(self.request))

    def list(self, request: Request) -> Response:
        queue = selectors.adjudication_queue(user=request_user(request))
        campaign = request.query_params.get("campaign", "")
        if campaign.isdigit():
            queue = queue.filter(campaign_id=int(campaign))
        page = self.paginate_queryset(queue)
        return self.get_paginated_response(QueueItemSerializer(page, many=True).data)

    @extend_schema(responses={200: AdjudicationViewSerializer})
    def retrieve(self, request: Request, pk: str) -> Response:
        item = self.get_object()
        view = selectors.adjudication_view(item=item, adjudicator=request_user(request))
        return Response(AdjudicationViewSerializer(view).data)

    @extend_schema(request=AdjudicationCreateSerializer, responses={201: DecisionSerializer})
    @action(detail=True, methods=["post"])
    def decide(self, request: Request, pk: str) -> Response:
        """Record the gold label; an earlier decision is superseded and kept."""
        item = self.get_object()
        payload = AdjudicationCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        user = request_user(request)
        try:
            decision = adjudication_record(item=item, adjudicator=user, **payload.validated_data)
        except DjangoValidationError as error:
            raise _drf_error(error) from error
        return Response(DecisionSerializer(decision).data, status=status.HTTP_201_CREATED)


# --- rubrics and guidelines -----------------------------------------------------------------------


class RubricViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Rubric versions. Creating publishes the next version of the slug; none is ever edited."""

    serializer_class = RubricSerializer
    lookup_value_regex = r"\d+"

    def get_permissions(self) -> list[BasePermission]:
        return [ManageCampaigns()] if self.action == "create" else [ReadRubrics()]

    def get_queryset(self) -> QuerySet[Rubric]:
        return Rubric.objects.prefetch_related("fields").order_by("slug", "-version")

    @extend_schema(request=RubricCreateSerializer, responses={201: RubricSerializer})
    def create(self, request: Request) -> Response:
        payload = RubricCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            rubric = rubric_create(actor=request_user(request), **payload.validated_data)
        except DjangoValidationError as error:
            raise _drf_error(error) from error
        return Response(RubricSerializer(rubric).data, status=status.HTTP_201_CREATED)


class GuidelineViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Guideline versions; the HTML is sanitised once, when a version is published."""

    serializer_class = GuidelineSerializer
    lookup_value_regex = r"\d+"

    def get_permissions(self) -> list[BasePermission]:
        return [ManageCampaigns()] if self.action == "create" else [ReadRubrics()]

    def get_queryset(self) -> QuerySet[Guideline]:
        return Guideline.objects.order_by("slug", "-version")

    def create(self, request: Request) -> Response:
        payload = GuidelineSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            guideline = guideline_publish(actor=request_user(request), **payload.validated_data)
        except DjangoValidationError as error:
            raise _drf_error(error) from error
        return Response(GuidelineSerializer(guideline).data, status=status.HTTP_201_CREATED)


class AnnotationImportViewSet(viewsets.GenericViewSet):
    """Import another tool's responses and labels (long format) as a closed campaign."""

    permission_classes = [ImportAnnotations]
    parser_classes = [MultiPartParser, FormParser]
    serializer_class = AnnotationImportSerializer

    @extend_schema(request=AnnotationImportSerializer, responses={201: CampaignManageSerializer})
    def create(self, request: Request) -> Response:
        payload = AnnotationImportSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        uploads = data.pop("files")
        try:
            # The size limit is checked on the uploads' sizes, before a byte of them is parsed.
            import_size_check(sizes=[(f.name, f.size) for f in uploads])
            # The uploads themselves: the import streams them (spooling any that cannot seek).
            files = [(f.name, f) for f in uploads]
            result = annotations_import(files=files, actor=request_user(request), **data)
        except ImportRejected as rejected:
            too_large = isinstance(rejected, ImportTooLarge)
            code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE if too_large else status.HTTP_400_BAD_REQUEST
            return Response(
                error_body(
                    code,
                    f"Import rejected: {len(rejected.problems)} problem(s); nothing was imported.",
                    problems=[
                        {"file": p.file, "line": p.line, "field": p.field, "message": p.message}
                        for p in rejected.problems
                    ],
                ),
                status=code,
            )
        body = {
            "campaign": CampaignManageSerializer(result.campaign).data if result.campaign else None,
            "dry_run": result.dry_run,
            "items": result.items,
            "labels": result.labels,
            "raters": result.raters,
            "adjudicated": result.adjudicated,
            "new_queries": result.new_queries,
            "models": list(result.models),
            "rater_names": list(result.rater_names),
            "categories": list(result.categories),
            "judges": list(result.judges),
            "judge_labels": result.judge_labels,
        }
        return Response(body, status=status.HTTP_200_OK if result.dry_run else status.HTTP_201_CREATED)


def register(router: BaseRouter) -> None:
    """Add the annotation API to the project's router."""
    router.register("annotation-campaigns", CampaignViewSet, basename="annotation-campaign")
    router.register("annotation-items", ItemViewSet, basename="annotation-item")
    router.register("annotation-labels", LabelViewSet, basename="annotation-label")
    router.register("adjudication", AdjudicationViewSet, basename="adjudication")
    router.register("annotation-rubrics", RubricViewSet, basename="annotation-rubric")
    router.register("annotation-guidelines", GuidelineViewSet, basename="annotation-guideline")
    router.register("annotation-imports", AnnotationImportViewSet, basename="annotation-import")
