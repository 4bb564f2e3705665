"""API for judges: templates (new versions, preview), judges, judge runs, external label imports,
audits, thresholds, trust and the disagreement queue. Maintainers only (``accounts.policy``)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import DefaultRouter

from accounts.api_permissions import rule_permission
from accounts.http import request_user
from accounts.policy import can_view_judges
from core.errors import Conflict
from evaluations.selectors import endpoint_list_for_user, run_list_for_user
from judging import selectors, services
from judging.importers import JudgeImportRejected
from judging.models import ExternalLabelImport, Judge, JudgeRun, JudgeTemplate, JudgeTrust, TrustThreshold
from judging.serializers import (
    JudgeDisagreementsInputSerializer,
    JudgeImportInputSerializer,
    JudgeImportSerializer,
    JudgeInputSerializer,
    JudgePlanInputSerializer,
    JudgePreviewInputSerializer,
    JudgeRunInputSerializer,
    JudgeRunSerializer,
    JudgeSerializer,
    JudgeTemplateInputSerializer,
    JudgeTemplateSerializer,
    JudgeThresholdSerializer,
    JudgeTrustInputSerializer,
    JudgeTrustSerializer,
)

ManageJudges = rule_permission("judging.manage_judges")
ViewAudits = rule_permission("judging.view_audits")


def _errors(error: DjangoValidationError) -> ValidationError:
    return ValidationError(error.message_dict if hasattr(error, "error_dict") else error.messages)


class TemplateViewSet(viewsets.ReadOnlyModelViewSet):
    """Template versions. POST makes a new version (of an existing slug or a new one); nothing is edited."""

    serializer_class = JudgeTemplateSerializer
    permission_classes = [ManageJudges]

    def get_queryset(self) -> QuerySet[JudgeTemplate]:
        if getattr(self, "swagger_fake_view", False):  # the schema generator may have no user
            return JudgeTemplate.objects.none()
        return selectors.template_list_for_user(user=request_user(self.request))

    @extend_schema(request=JudgeTemplateInputSerializer, responses={201: JudgeTemplateSerializer})
    def create(self, request: Request) -> Response:
        payload = JudgeTemplateInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            template = services.template_version_create(actor=request_user(request), **payload.validated_data)
        except DjangoValidationError as error:
            raise _errors(error) from error
        return Response(JudgeTemplateSerializer(template).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=JudgePreviewInputSerializer, responses={200: dict})
    @action(detail=False, methods=["post"])
    def preview(self, request: Request) -> Response:
        """The exact messages the template would send for a response, and its parser's reading of
        a sample output. Nothing is saved and no model is called."""
        payload = JudgePreviewInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        preview = selectors.template_preview(
            user=request_user(request), prompt=data["prompt"], system_prompt=data["system_prompt"],
            parser=data["parser"],
            fields=data["fields"], response_id=data["response"], output=data["output"],
        )  # fmt: skip
        if preview.errors:
            raise ValidationError(preview.errors)
        return Response(
            {
                "messages": list(preview.messages),
                "parsed": preview.parsed,
                "parse_error": preview.parse_error or None,
            }
        )


class JudgeViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = JudgeSerializer
    permission_classes = [ManageJudges]
    lookup_field = "slug"

    def get_queryset(self) -> QuerySet[Judge]:
        if getattr(self, "swagger_fake_view", False):  # the schema generator may have no user
            return Judge.objects.none()
        return selectors.judge_list_for_user(user=request_user(self.request))

    @extend_schema(request=JudgeInputSerializer, responses={201: JudgeSerializer})
    def create(self, request: Request) -> Response:
        user = request_user(request)
        payload = JudgeInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        endpoint = endpoint_list_for_user(user=user).filter(slug=data.pop("endpoint")).first()
        if endpoint is None:
            raise ValidationError({"endpoint": "No such endpoint."})
        template = selectors.template_list_for_user(user=user).filter(pk=data.pop("template")).first()
        if template is None:
            raise ValidationError({"template": "No such template version."})
        try:
            judge = services.judge_create(actor=user, endpoint=endpoint, template=template, **data)
        except DjangoValidationError as error:
            raise _errors(error) from error
        return Response(JudgeSerializer(judge).data, status=status.HTTP_201_CREATED)


class JudgeRunViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = JudgeRunSerializer
    permission_classes = [ManageJudges]

    def get_queryset(self) -> QuerySet[JudgeRun]:
        if getattr(self, "swagger_fake_view", False):  # the schema generator may have no user
            return JudgeRun.objects.none()
        return selectors.judge_run_list_for_user(user=request_user(self.request))

    @extend_schema(request=JudgeRunInputSerializer, responses={201: JudgeRunSerializer})
    def create(self, request: Request) -> Response:
        user = request_user(request)
        payload = JudgeRunInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        judge = selectors.judge_list_for_user(user=user).filter(slug=data["judge"]).first()
        if judge is None:
            raise ValidationError({"judge": "No such judge."})
        collection_run = campaign = None
        if data["collection_run"] is not None:
            collection_run = run_list_for_user(user=user).filter(pk=data["collection_run"]).first()
            if collection_run is None:
                raise ValidationError({"collection_run": "No such collection run."})
        if data["campaign"] is not None:
            campaign = selectors.audit_campaign_list_for_user(user=user).filter(pk=data["campaign"]).first()
            if campaign is None:
                raise ValidationError({"campaign": "No such response campaign."})
        try:
            run = services.judge_run_create(
                actor=user, judge=judge, collection_run=collection_run, campaign=campaign,
                name=data["name"], concurrency=data["concurrency"],
            )  # fmt: skip
            if data["start"]:
                run = services.judge_run_start(run=run, actor=user)
        except DjangoValidationError as error:
            raise _errors(error) from error
        return Response(JudgeRunSerializer(run).data, status=status.HTTP_201_CREATED)

    def _act(self, service: Any) -> Response:
        run = self.get_object()
        try:
            service(run=run, actor=request_user(self.request))
        except DjangoValidationError as error:  # the run is in the wrong state for this action
            raise Conflict(" ".join(error.messages)) from error
        run.refresh_from_db()
        return Response(JudgeRunSerializer(run).data)

    @extend_schema(request=None, responses=JudgeRunSerializer)
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, pk: str) -> Response:
        """Running → paused: calls in flight finish and are written, no new one starts (409 otherwise)."""
        return self._act(services.judge_run_pause)

    @extend_schema(request=None, responses=JudgeRunSerializer)
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: str) -> Response:
        """Paused or failed → running: what is missing is judged, nothing twice (409 otherwise)."""
        return self._act(services.judge_run_resume)

    @extend_schema(request=None, responses=JudgeRunSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        return self._act(services.judge_run_cancel)

    @extend_schema(request=None, responses={200: dict})
    @action(detail=True, methods=["post"], url_path="retry-failed")
    def retry_failed(self, request: Request, pk: str) -> Response:
        """Items whose calls failed go back to pending and the run runs again; ``{"items": n}``.
        Parse failures stay (findings about the judge). 409 while the run is queued or running."""
        run = self.get_object()
        try:
            count = services.judge_run_retry_failed(run=run, actor=request_user(request))
        except DjangoValidationError as error:
            raise Conflict(" ".join(error.messages)) from error
        run.refresh_from_db()
        return Response({"items": count, "run": JudgeRunSerializer(run).data})

    @extend_schema(request=JudgePlanInputSerializer, responses={200: dict})
    @action(detail=True, methods=["post"], url_path="audit-sample")
    def audit_sample(self, request: Request, pk: str) -> Response:
        """The audit-sample plan (per model, per stratum, clinician hours); with ``open``, the blind
        campaign over it is opened with ``annotators`` (clinician ids) as its pool."""
        from accounts.models import User
        from accounts.roles import Role

        run = self.get_object()
        payload = JudgePlanInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        annotators, open_it = data.pop("annotators"), data.pop("open")
        planned = services.audit_plan_for_run(run=run, seed=f"run{run.pk}", **data)
        answer: dict[str, Any] = {
            "field": planned.field,
            "per_model": planned.plan.per_model,
            "strata": [
                {
                    "model": k[0],
                    "category": k[1],
                    "verdict": k[2],
                    "responses": len(v),
                    "sampled": planned.plan.per_stratum.get(k, 0),
                }
                for k, v in sorted(planned.strata.items())
            ],
            "items": planned.plan.items,
            "clinician_hours": planned.plan.clinician_hours,
        }
        if open_it:
            pool = list(User.objects.filter(pk__in=annotators, groups__name=Role.CLINICIAN.value))
            try:
                campaign = services.audit_campaign_open(
                    actor=request_user(request), run=run, annotators=pool, **data
                )
            except DjangoValidationError as error:
                raise _errors(error) from error
            answer["campaign"] = campaign.pk
        return Response(answer)


class ExternalImportViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = JudgeImportSerializer
    permission_classes = [ManageJudges]
    parser_classes = [MultiPartParser, FormParser]

    def get_queryset(self) -> QuerySet[ExternalLabelImport]:
        if getattr(self, "swagger_fake_view", False):  # the schema generator may have no user
            return ExternalLabelImport.objects.none()
        return selectors.import_list_for_user(user=request_user(self.request))

    @extend_schema(request=JudgeImportInputSerializer, responses={201: JudgeImportSerializer})
    def create(self, request: Request) -> Response:
        payload = JudgeImportInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        upload = payload.validated_data["file"]
        try:
            batch = services.external_labels_import(
                actor=request_user(request),
                name=upload.name,
                raw=upload.read(),
                file_format=payload.validated_data["format"],
            )
        except JudgeImportRejected as rejected:
            raise ValidationError({"file": [str(p) for p in rejected.problems]}) from rejected
        return Response(JudgeImportSerializer(batch).data, status=status.HTTP_201_CREATED)


def audit_payload(result: selectors.AuditResult) -> dict[str, Any]:
    return {
        "campaign": result.campaign.pk,
        "judge": result.source.key,
        "judge_label": result.source.label,
        "gold_source": result.gold_source,
        "gold_statement": result.statement,
        "fields": {name: audit.as_dict() for name, audit in result.audits.items()},
    }


class AuditViewSet(viewsets.ViewSet):
    """GET ?campaign=<id>&judge=run:<id>|external:<name>[&gold=gold|majority]: every audit figure."""

    permission_classes = [ViewAudits]

    @extend_schema(
        parameters=[
            OpenApiParameter("campaign", int, required=True),
            OpenApiParameter("judge", str, required=True, description="run:<id> or external:<name>"),
            OpenApiParameter("gold", str, required=False, enum=["gold", "majority"]),
        ],
        responses={200: dict},
    )
    def list(self, request: Request) -> Response:
        user = request_user(request)
        params = request.query_params
        campaign_id = params.get("campaign", "")
        if not campaign_id.isdigit():
            raise ValidationError({"campaign": "A campaign id is required."})
        campaign = selectors.audit_campaign_list_for_user(user=user).filter(pk=int(campaign_id)).first()
        if campaign is None:
            raise NotFound("No such response campaign.")
        try:
            source = selectors.judge_source_get(user=user, key=params.get("judge", ""))
        except JudgeRun.DoesNotExist as exc:
            raise ValidationError({"judge": "No such judge run or imported judge."}) from exc
        gold = params.get("gold", "gold")
        if gold not in selectors.GOLD_STATEMENTS:
            raise ValidationError({"gold": "gold or majority."})
        result = selectors.judge_audit_compute(user=user, campaign=campaign, source=source, gold_source=gold)
        return Response(audit_payload(result))


class ThresholdViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = JudgeThresholdSerializer
    permission_classes = [ManageJudges]
    lookup_field = "field"
    pagination_class = None

    def get_queryset(self) -> QuerySet[TrustThreshold]:
        return (
            TrustThreshold.objects.all()
            if can_view_judges(self.request.user)
            else TrustThreshold.objects.none()
        )

    @extend_schema(request=JudgeThresholdSerializer, responses={200: JudgeThresholdSerializer})
    def create(self, request: Request) -> Response:
        payload = JudgeThresholdSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        try:
            threshold = services.threshold_set(
                actor=request_user(request), field_name=data["field"], min_kappa=data["min_kappa"],
                max_abs_bias=data["max_abs_bias"], recall_class=data.get("recall_class"),
                min_recall=data.get("min_recall"), min_items=data.get("min_items", 30),
            )  # fmt: skip
        except DjangoValidationError as error:
            raise _errors(error) from error
        return Response(JudgeThresholdSerializer(threshold).data)


class TrustViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = JudgeTrustSerializer
    permission_classes = [ManageJudges]

    def get_queryset(self) -> QuerySet[JudgeTrust]:
        if not can_view_judges(self.request.user):
            return JudgeTrust.objects.none()
        return JudgeTrust.objects.select_related("judge", "template").prefetch_related("imports")

    @extend_schema(request=JudgeTrustInputSerializer, responses={201: JudgeTrustSerializer})
    def create(self, request: Request) -> Response:
        user = request_user(request)
        payload = JudgeTrustInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        run = None
        if data.get("judge_run") is not None:
            run = selectors.judge_run_list_for_user(user=user).filter(pk=data["judge_run"]).first()
            if run is None:
                raise ValidationError({"judge_run": "Not found."})
        external = data.get("external_judge") or ""
        if external and not selectors.import_list_for_user(user=user).filter(judge_name=external).exists():
            raise ValidationError({"external_judge": "No imported judge of that name."})
        campaign = selectors.audit_campaign_list_for_user(user=user).filter(pk=data["campaign"]).first()
        if campaign is None:
            raise ValidationError({"campaign": "Not found."})
        try:
            trust = services.judge_trust_grant(
                actor=user, run=run, external_judge=external, campaign=campaign, field_name=data["field"],
                gold_source=data["gold_source"],
            )  # fmt: skip
        except DjangoValidationError as error:
            raise _errors(error) from error
        return Response(JudgeTrustSerializer(trust).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=JudgeTrustSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request: Request, pk: str) -> Response:
        try:
            trust = services.judge_trust_revoke(actor=request_user(request), trust=self.get_object())
        except DjangoValidationError as error:
            raise _errors(error) from error
        return Response(JudgeTrustSerializer(trust).data)

    @extend_schema(request=JudgeDisagreementsInputSerializer, responses={200: dict})
    @action(detail=False, methods=["post"], url_path="send-to-adjudication", parser_classes=[JSONParser])
    def send_to_adjudication(self, request: Request) -> Response:
        user = request_user(request)
        payload = JudgeDisagreementsInputSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        campaign = (
            selectors.audit_campaign_list_for_user(user=user)
            .filter(pk=payload.validated_data["campaign"])
            .first()
        )
        if campaign is None:
            raise ValidationError({"campaign": "Not found."})
        return Response(
            services.disagreements_send_to_adjudication(
                actor=user, campaign=campaign, item_ids=payload.validated_data["items"]
            )
        )


def register(router: DefaultRouter) -> None:
    router.register("judge-templates", TemplateViewSet, basename="judge-template")
    router.register("judges", JudgeViewSet, basename="judge")
    router.register("judge-runs", JudgeRunViewSet, basename="judge-run")
    router.register("judge-imports", ExternalImportViewSet, basename="judge-import")
    router.register("judge-audits", AuditViewSet, basename="judge-audit")
    router.register("judge-thresholds", ThresholdViewSet, basename="judge-threshold")
    router.register("judge-trust", TrustViewSet, basename="judge-trust")
