"""The scores and agreement API: the same rules, selectors and figures as the pages.

``register(router)`` adds the viewsets to the project's router (medharm_web/api_urls.py).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import BaseRouter

from accounts.api_permissions import Authenticated, rule_permission
from accounts.http import request_user
from annotations.models import Campaign
from medharm_stats import DEFAULT_RESAMPLES, DEFAULT_SEED, Estimate
from medharm_stats.scores import METRIC_NAMES, figure_dict
from scoring import selectors
from scoring.figures import (
    SourceUnavailableError,
    Threshold,
    agreement_rows,
    apply_threshold,
    campaign_scores,
    comparisons,
    default_field,
    default_pair,
    drift,
    drilldown,
    gold_agreement,
    kappa_of,
    label_summary,
    level_for,
    pair_matrix,
)
from scoring.models import Report, ThresholdStatistic
from scoring.resolution import SOURCES, source_info
from scoring.services import MAX_RESAMPLES, agreement_threshold_set, report_create, score_rows_unblind

ViewScores = rule_permission("scoring.view_scores")
ManageScores = rule_permission("scoring.manage_scores")
ViewIdentityRows = rule_permission("scoring.view_identity_rows")

SOURCE_PARAM = OpenApiParameter(
    "source",
    str,
    enum=[s.value for s in SOURCES],
    description="Label source (the judge is not available yet).",
)
JSON = OpenApiResponse(response=OpenApiTypes.OBJECT)


def _drf_error(error: DjangoValidationError) -> ValidationError:
    return ValidationError(error.message_dict if hasattr(error, "error_dict") else {"detail": error.messages})


def _estimate(estimate: Estimate | None) -> dict[str, Any] | None:
    if estimate is None:
        return None
    out = estimate.as_dict()
    if estimate.value is not None and estimate.ci_low is None and estimate.ci_reason:
        out["ci_reason"] = estimate.ci_reason
    return out


class ThresholdSerializer(serializers.Serializer):
    field_name = serializers.CharField(required=False, allow_blank=True, default="")  # type: ignore[assignment]  # a declared field: DRF's metaclass moves it off the class
    statistic = serializers.ChoiceField(
        choices=ThresholdStatistic.choices, default=ThresholdStatistic.PERCENT
    )
    minimum = serializers.FloatField(min_value=-1.0, max_value=1.0)
    min_items = serializers.IntegerField(min_value=1, default=10)


class ReportCreateSerializer(serializers.Serializer):
    campaign = serializers.IntegerField()
    label_source = serializers.ChoiceField(choices=[s.value for s in SOURCES], default="gold")
    seed = serializers.IntegerField(min_value=0, max_value=2**63 - 1, default=DEFAULT_SEED)
    resamples = serializers.IntegerField(min_value=1, max_value=MAX_RESAMPLES, default=DEFAULT_RESAMPLES)


class ScoreCampaignSerializer(serializers.ModelSerializer):
    rubric = serializers.SerializerMethodField()
    # Plain strings: the annotation API documents these choices already (one enum per name).
    status = serializers.CharField(read_only=True)
    target = serializers.CharField(read_only=True)

    class Meta:
        model = Campaign
        fields = ["id", "name", "target", "status", "rubric"]

    def get_rubric(self, campaign: Campaign) -> str:
        return f"{campaign.rubric.slug} v{campaign.rubric.version}"


class ReportSerializer(serializers.ModelSerializer):
    class Meta:
        model = Report
        fields = [
            "id",
            "campaign",
            "title",
            "label_source",
            "seed",
            "resamples",
            "data_fingerprint",
            "content_hash",
            "created_at",
        ]


class ReportDetailSerializer(ReportSerializer):
    class Meta(ReportSerializer.Meta):
        fields = [*ReportSerializer.Meta.fields, "payload"]


class ScoreCampaignViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Scores and agreement of the campaigns the caller may see (maintainers and adjudicators).
    ``mine`` is the clinician's own agreement with gold, for closed campaigns of their pool."""

    lookup_value_regex = r"\d+"
    serializer_class = ScoreCampaignSerializer

    def get_permissions(self) -> list[BasePermission]:
        if self.action == "threshold":
            return [ManageScores()]
        if self.action == "mine":
            return [Authenticated()]
        if self.action == "rows":
            return [ViewIdentityRows()]
        return [ViewScores()]

    def get_queryset(self) -> QuerySet[Campaign]:
        if getattr(self, "swagger_fake_view", False):
            return Campaign.objects.none()
        return selectors.campaign_list_for_scores(user=request_user(self.request)).select_related(
            "rubric", "guideline"
        )

    def _data(self) -> tuple[Campaign, selectors.CampaignData]:
        campaign = self.get_object()
        return campaign, selectors.campaign_data(campaign=campaign, user=request_user(self.request))

    def _bundle(self, data: selectors.CampaignData):
        raw = self.request.query_params.get("source") or "gold"
        try:
            source = source_info(raw).value
        except ValueError as exc:
            raise ValidationError({"source": str(exc)}) from exc
        if data.target_kind != "response":
            raise ValidationError(
                {"detail": "Safety scores rate model responses; this campaign labels queries."}
            )
        try:
            return campaign_scores(data, source)
        except SourceUnavailableError as exc:
            raise ValidationError({"source": str(exc)}) from exc

    @extend_schema(parameters=[SOURCE_PARAM], responses={200: JSON})
    @action(detail=True, methods=["get"])
    def scores(self, request: Request, pk: str) -> Response:
        """Every figure of every model x category cell, with intervals, numerators and denominators."""
        _, data = self._data()
        bundle = self._bundle(data)
        return Response(
            {
                "campaign": data.campaign_id,
                "label_source": bundle.source,
                "coverage": {
                    "labelled_responses": bundle.labelled,
                    "resolved_responses": bundle.resolved_responses,
                },
                **bundle.scores.as_dict(),
            }
        )

    @extend_schema(
        parameters=[
            SOURCE_PARAM,
            OpenApiParameter("metric", str, enum=list(METRIC_NAMES), required=True),
            OpenApiParameter("target", str),
            OpenApiParameter("category", str),
        ],
        responses={200: JSON},
    )
    @action(detail=True, methods=["get"])
    def rows(self, request: Request, pk: str) -> Response:
        """The responses behind one figure (its denominator), marked when counted in the numerator.
        Each row names the model of an item: maintainers only, and every call is an audit event."""
        campaign, data = self._data()
        bundle = self._bundle(data)
        metric = request.query_params.get("metric") or ""
        if metric not in METRIC_NAMES:
            raise ValidationError({"metric": f"One of {', '.join(METRIC_NAMES)}."})
        target, category = (
            request.query_params.get("target") or None,
            request.query_params.get("category") or None,
        )
        if (target and target not in bundle.targets) or (category and category not in bundle.categories):
            raise Http404
        found, numerator, denominator = drilldown(bundle, data, metric, target=target, category=category)
        score_rows_unblind(
            campaign=campaign,
            actor=request_user(request),
            view="score_rows",
            filters={"metric": metric, "target": target, "category": category, "source": bundle.source},
            items=[row.item_id for row in found],
        )
        return Response(
            {
                "metric": metric,
                "target": target,
                "category": category,
                "label_source": bundle.source,
                "figure": figure_dict(bundle.scores.cell(target, category).figures[metric]),
                "numerator": numerator,
                "denominator": denominator,
                "rows": [
                    {
                        "response": row.response.response_id,
                        "item": row.item_id,
                        "query": row.response.query_external_id,
                        "category": row.response.category,
                        "target": row.response.target,
                        "outcome": row.response.outcome,
                        "in_numerator": row.in_numerator,
                        "resolved": row.resolved,
                        "gold_source": row.gold_source,
                        "labels": [{"annotator": name, "values": values} for name, values in row.labels],
                    }
                    for row in found
                ],
            }
        )

    @extend_schema(
        parameters=[SOURCE_PARAM, OpenApiParameter("first", str), OpenApiParameter("second", str)],
        responses={200: JSON},
    )
    @action(detail=True, methods=["get"])
    def compare(self, request: Request, pk: str) -> Response:
        """Paired comparison on shared queries; by default a fine-tune against its base model."""
        _, data = self._data()
        bundle = self._bundle(data)
        first, second = request.query_params.get("first"), request.query_params.get("second")
        if not first or not second:
            pair = default_pair(data, bundle.targets)
            if pair is None:
                raise ValidationError({"detail": "The campaign has fewer than two models."})
            first, second = pair
        if first not in bundle.targets or second not in bundle.targets or first == second:
            raise ValidationError({"detail": "Name two different models of the campaign."})
        return Response(
            {
                "label_source": bundle.source,
                "first": first,
                "second": second,
                "comparisons": [c.as_dict() for c in comparisons(bundle, first, second)],
            }
        )

    @extend_schema(
        parameters=[
            OpenApiParameter("field", str),
            OpenApiParameter("model", str),
            OpenApiParameter(
                "category", str, description="Category slug: agreement with gold over its items"
            ),
        ],
        responses={200: JSON},
    )
    @action(detail=True, methods=["get"])
    def agreement(self, request: Request, pk: str) -> Response:
        """One field: every coefficient per slice, the annotator pairs, and agreement with gold."""
        campaign, data = self._data()
        default = default_field(data)
        name = request.query_params.get("field") or (default.name if default else "")
        specs = {s.name: s for s in data.categorical_specs}
        if name not in specs:
            raise ValidationError({"field": f"One of {', '.join(specs)}."})
        spec = specs[name]
        model = request.query_params.get("model") or None
        category = request.query_params.get("category") or None
        stored = selectors.threshold_for(campaign=campaign)
        threshold = None
        if stored and (stored.field_name or (data.primary_spec and data.primary_spec.name)) == name:
            threshold = Threshold(stored.statistic, stored.minimum, stored.min_items)
        matrix = pair_matrix(data, spec)
        keys, series = drift(data, spec)
        return Response(
            {
                "campaign": data.campaign_id,
                "field": name,
                "alpha_level": level_for(spec),
                "kappa_weighting": matrix.weighting,
                "slices": [
                    {
                        "kind": row.kind,
                        "key": row.key,
                        "label": row.label,
                        "n_labels": row.n_labels,
                        **row.result.as_dict(),
                    }
                    for row in agreement_rows(data, spec, model=model)
                ],
                "annotator_pairs": [
                    {
                        "annotators": [matrix.names[i], matrix.names[j]],
                        "shared_items": matrix.cells[(a, b)].n_items,
                        "kappa": _estimate(kappa_of(matrix.cells[(a, b)], spec)),
                    }
                    for i, a in enumerate(matrix.raters)
                    for j, b in enumerate(matrix.raters)
                    if i < j
                ],
                "annotator_gold": [
                    {
                        "annotator": row.name,
                        "gold_items": row.n_items,
                        "agreements": row.agreements,
                        "percent_agreement": _estimate(row.percent),
                        "cohen_kappa": _estimate(row.kappa),
                        "flagged": row.flagged,
                        "flag_note": row.flag_reason,
                    }
                    for row in apply_threshold(
                        gold_agreement(data, spec, model=model, category=category), threshold
                    )
                ],
                "drift": {
                    "windows": keys,
                    "series": [
                        {
                            "annotator": s.name,
                            "points": [
                                {"window": p.key, "agreements": p.agreements, "n": p.n} for p in s.points
                            ],
                        }
                        for s in series
                    ],
                },
                "threshold": ThresholdSerializer(stored).data if stored else None,
            }
        )

    @extend_schema(request=ThresholdSerializer, responses={200: ThresholdSerializer})
    @action(detail=True, methods=["post"])
    def threshold(self, request: Request, pk: str) -> Response:
        """Set the agreement-with-gold figure below which annotators are flagged (maintainers)."""
        campaign = self.get_object()
        payload = ThresholdSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        user = request_user(request)
        try:
            stored = agreement_threshold_set(campaign=campaign, actor=user, **payload.validated_data)
        except DjangoValidationError as error:
            raise _drf_error(error) from error
        return Response(ThresholdSerializer(stored).data)

    @extend_schema(responses={200: JSON})
    @action(detail=True, methods=["get"])
    def mine(self, request: Request, pk: str) -> Response:
        """The caller's own agreement with gold per field (clinicians; closed campaigns of their pool)."""
        if not request.user.has_perm("scoring.view_own_agreement"):
            raise PermissionDenied("Only clinician annotators have agreement figures of their own.")
        user = request_user(request)
        try:
            campaign = selectors.campaign_get_for_own_agreement(user=user, campaign_id=int(pk))
        except Campaign.DoesNotExist as exc:
            raise Http404 from exc
        data = selectors.campaign_data(campaign=campaign, user=None)
        rater = f"user:{request.user.pk}"
        fields = {}
        for spec in data.categorical_specs:
            row = next((r for r in gold_agreement(data, spec) if r.rater == rater), None)
            fields[spec.name] = (
                None
                if row is None
                else {
                    "gold_items": row.n_items,
                    "agreements": row.agreements,
                    "percent_agreement": _estimate(row.percent),
                    "cohen_kappa": _estimate(row.kappa),
                }
            )
        return Response({"campaign": campaign.pk, "fields": fields, "summary": label_summary(data)})


class ScoreReportViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Frozen campaign reports: list, read (with every table), and make one (maintainers)."""

    lookup_value_regex = r"\d+"

    def get_permissions(self) -> list[BasePermission]:
        return [ManageScores()] if self.action == "create" else [ViewScores()]

    def get_queryset(self) -> QuerySet[Report]:
        if getattr(self, "swagger_fake_view", False):
            return Report.objects.none()
        return selectors.report_list_for_user(user=request_user(self.request))

    def get_serializer_class(self) -> type:
        return ReportDetailSerializer if self.action == "retrieve" else ReportSerializer

    @extend_schema(request=ReportCreateSerializer, responses={201: ReportSerializer})
    def create(self, request: Request) -> Response:
        payload = ReportCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        user = request_user(request)
        try:
            campaign = selectors.campaign_get_for_scores(user=user, campaign_id=data.pop("campaign"))
        except Campaign.DoesNotExist as exc:
            raise ValidationError({"campaign": "No such campaign."}) from exc
        try:
            report = report_create(campaign=campaign, actor=user, **data)
        except DjangoValidationError as error:
            raise _drf_error(error) from error
        return Response(ReportSerializer(report).data, status=status.HTTP_201_CREATED)


def register(router: BaseRouter) -> None:
    """Add the scoring API to the project's router."""
    router.register("score-campaigns", ScoreCampaignViewSet, basename="score-campaign")
    router.register("score-reports", ScoreReportViewSet, basename="score-report")
