"""The scores and agreement API: the same rules, selectors and figures as the pages.

``register(router)`` adds the viewsets to the project's router (medharm_web/api_urls.py).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.http import Http404, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import BaseRouter

from accounts.api_permissions import Authenticated, rule_permission
from accounts.http import request_user
from accounts.policy import can_view_identity_rows
from annotations.models import Campaign
from medharm_stats.scores import METRIC_NAMES, figure_dict
from scoring import drill_exports
from scoring.figures.agreement import agreement_rows, level_for, pair_matrix
from scoring.figures.comparisons import comparisons, default_pair
from scoring.figures.drilldowns import attach_labels, packed_item_id, unpack_row
from scoring.figures.gold import Threshold, drift, gold_agreement, gold_section
from scoring.figures.metrics import default_field, label_summary
from scoring.figures.scores import SourceUnavailableError
from scoring.models import Report
from scoring.pages.drilldowns import DRILL_PAGE_SIZE, agreement_item_rows
from scoring.resolution import SOURCES, source_info
from scoring.selectors.campaigns import (
    campaign_get_for_own_agreement,
    campaign_get_for_scores,
    campaign_list_for_scores,
    report_list_for_user,
    threshold_for,
)
from scoring.selectors.drilldowns import labels_of_items
from scoring.serializers import (
    AgreementItemSerializer,
    AgreementSliceSerializer,
    AnnotatorGoldSerializer,
    DriftSeriesSerializer,
    OwnGoldSerializer,
    PairedComparisonSerializer,
    PairMatrixSerializer,
    ReportCreateSerializer,
    ReportDetailSerializer,
    ReportSerializer,
    ScoreBundleSerializer,
    ScoreCampaignSerializer,
    ScoreRowSerializer,
    ThresholdSerializer,
)
from scoring.services import agreement_threshold_set, report_create, score_rows_unblind
from scoring.snapshots import Snapshot, score_rows_build

MAX_PAGE_SIZE = DRILL_PAGE_SIZE

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


PAGE_PARAMS = [
    OpenApiParameter("page", int, description="Page number (from 1)."),
    OpenApiParameter("page_size", int, description=f"Rows per page (default and at most {MAX_PAGE_SIZE})."),
    OpenApiParameter(
        "export", str, enum=list(drill_exports.FORMATS), description="Stream every row instead."
    ),
]


def _export_format(request: Request) -> str:
    value = request.query_params.get("export") or ""
    if value and value not in drill_exports.FORMATS:
        raise ValidationError({"export": f"One of {', '.join(drill_exports.FORMATS)}."})
    return value


def _page(request: Request, rows: list[Any]) -> tuple[list[Any], dict[str, Any]]:
    """One page of a drill-down and its place: the same pages as the HTML drill-downs."""
    try:
        size = int(request.query_params.get("page_size") or MAX_PAGE_SIZE)
        number = int(request.query_params.get("page") or 1)
    except ValueError as exc:
        raise ValidationError({"detail": "page and page_size are numbers."}) from exc
    size = min(max(size, 1), MAX_PAGE_SIZE)
    pages_count = max(1, -(-len(rows) // size))
    if not 1 <= number <= pages_count:
        raise Http404
    start = (number - 1) * size
    return rows[start : start + size], {
        "count": len(rows),
        "page": number,
        "pages": pages_count,
        "page_size": size,
    }


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
        return campaign_list_for_scores(user=request_user(self.request)).select_related("rubric", "guideline")

    def _snapshot(self) -> Snapshot:
        return Snapshot(campaign=self.get_object(), user=request_user(self.request))

    def _source(self, snap: Snapshot) -> str:
        raw = self.request.query_params.get("source") or "gold"
        try:
            source = source_info(raw).value
        except ValueError as exc:
            raise ValidationError({"source": str(exc)}) from exc
        if snap.campaign.target != "response":
            raise ValidationError(
                {"detail": "Safety scores rate model responses; this campaign labels queries."}
            )
        return source

    def _scored(
        self,
        snap: Snapshot,
        name: str,
        source: str,
        params: dict[str, Any],
        build: Any,
        *,
        rows: bool = False,
    ) -> Any:
        """A figure under ``source``, cached like the pages' (the judge's computed each time)."""

        def compute() -> Any:
            try:
                bundle = snap.bundle(source)
            except SourceUnavailableError as exc:
                raise ValidationError({"source": str(exc)}) from exc
            return build(bundle)

        cached = snap.cached_rows if rows else snap.cached
        return cached(f"api_{name}", compute, {"source": source, **params}, store=source != "judge")

    @extend_schema(parameters=[SOURCE_PARAM], responses={200: JSON})
    @action(detail=True, methods=["get"])
    def scores(self, request: Request, pk: str) -> Response:
        """Every figure of every model x category cell, with intervals, numerators and denominators."""
        snap = self._snapshot()
        source = self._source(snap)
        return Response(
            self._scored(
                snap,
                "scores",
                source,
                {},
                lambda bundle: {"campaign": snap.campaign.pk, **ScoreBundleSerializer(bundle).data},
            )
        )

    @extend_schema(
        parameters=[
            SOURCE_PARAM,
            OpenApiParameter("metric", str, enum=list(METRIC_NAMES), required=True),
            OpenApiParameter("target", str),
            OpenApiParameter("category", str),
            *PAGE_PARAMS,
        ],
        responses={200: JSON},
    )
    @action(detail=True, methods=["get"])
    def rows(self, request: Request, pk: str) -> Response | StreamingHttpResponse:
        """The responses behind one figure (its denominator), marked when counted in the numerator,
        a page at a time (``count`` is the denominator); ``export=csv|jsonl`` streams them all.
        Each row names the model of an item: maintainers only, and every call is an audit event."""
        snap = self._snapshot()
        source = self._source(snap)
        metric = request.query_params.get("metric") or ""
        if metric not in METRIC_NAMES:
            raise ValidationError({"metric": f"One of {', '.join(METRIC_NAMES)}."})
        target, category = (
            request.query_params.get("target") or None,
            request.query_params.get("category") or None,
        )
        file_format = _export_format(request)
        selection = self._scored(
            snap,
            "score_rows",
            source,
            {"metric": metric, "target": target, "category": category},
            lambda bundle: score_rows_build(snap, bundle, metric, target, category),
            rows=True,
        )
        if selection.get("missing"):
            raise Http404
        found = selection["rows"]
        names = snap.cached("rater_names", lambda: snap.data.rater_names)
        filters: dict[str, object] = {
            "metric": metric,
            "target": target,
            "category": category,
            "source": source,
        }
        if file_format:
            score_rows_unblind(
                campaign=snap.campaign,
                actor=request_user(request),
                view=f"score_rows_{file_format}",
                filters=filters,
                items=[packed_item_id(row) for row in found],
            )
            return drill_exports.score_rows_response(
                campaign=snap.campaign, rows=found, rater_names=names, file_format=file_format
            )
        page, paging = _page(request, found)
        unpacked = [unpack_row(row) for row in page]
        shown = attach_labels(unpacked, labels_of_items(item_ids=[row.item_id for row in unpacked]), names)
        score_rows_unblind(
            campaign=snap.campaign,
            actor=request_user(request),
            view="score_rows",
            filters=filters,
            items=[row.item_id for row in shown],
        )
        return Response(
            {
                "metric": metric,
                "target": target,
                "category": category,
                "label_source": source,
                "figure": figure_dict(selection["figure"].estimate),
                "numerator": selection["numerator"],
                "denominator": selection["denominator"],
                **paging,
                "rows": ScoreRowSerializer(shown, many=True).data,
            }
        )

    @extend_schema(
        parameters=[SOURCE_PARAM, OpenApiParameter("first", str), OpenApiParameter("second", str)],
        responses={200: JSON},
    )
    @action(detail=True, methods=["get"])
    def compare(self, request: Request, pk: str) -> Response:
        """Paired comparison on shared queries; by default a fine-tune against its base model."""
        snap = self._snapshot()
        source = self._source(snap)
        targets, default = self._scored(
            snap,
            "compare_targets",
            source,
            {},
            lambda bundle: (list(bundle.targets), default_pair(snap.data, list(bundle.targets))),
        )
        first, second = request.query_params.get("first"), request.query_params.get("second")
        if not first or not second:
            if default is None:
                raise ValidationError({"detail": "The campaign has fewer than two models."})
            first, second = default
        if first not in targets or second not in targets or first == second:
            raise ValidationError({"detail": "Name two different models of the campaign."})
        return Response(
            self._scored(
                snap,
                "compare",
                source,
                {"first": first, "second": second},
                lambda bundle: {
                    "label_source": bundle.source,
                    "first": first,
                    "second": second,
                    "comparisons": PairedComparisonSerializer(
                        comparisons(bundle, first, second), many=True
                    ).data,
                },
            )
        )

    def _spec(self, snap: Snapshot) -> Any:
        default = snap.cached("default_field", lambda: default_field(snap.data))
        name = self.request.query_params.get("field") or (default.name if default else "")
        specs = {s.name: s for s in snap.cached("categorical_specs", lambda: snap.data.categorical_specs)}
        if name not in specs:
            raise ValidationError({"field": f"One of {', '.join(specs)}."})
        return specs[name]

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
        """One field: every coefficient per slice, the annotator pairs that share items, agreement
        with gold (on the flag threshold's field, with its flags, when one is set: ``gold_field``)."""
        snap = self._snapshot()
        spec = self._spec(snap)
        model = request.query_params.get("model") or None
        category = request.query_params.get("category") or None
        stored = threshold_for(campaign=snap.campaign)
        threshold = Threshold(stored.statistic, stored.minimum, stored.min_items) if stored else None
        threshold_field = stored.field_name if stored else ""

        def build() -> dict[str, Any]:
            data = snap.data
            matrix = pair_matrix(data, spec)
            keys, series = drift(data, spec)
            gold_spec, gold_rows = gold_section(
                data, spec, threshold, threshold_field, model=model, category=category
            )
            return {
                "campaign": data.campaign_id,
                "field": spec.name,
                "alpha_level": level_for(spec),
                "kappa_weighting": matrix.weighting,
                "slices": AgreementSliceSerializer(agreement_rows(data, spec, model=model), many=True).data,
                "annotator_pairs": PairMatrixSerializer(matrix, context={"spec": spec}).data,
                "gold_field": gold_spec.name,
                "annotator_gold": AnnotatorGoldSerializer(gold_rows, many=True).data,
                "drift": {"windows": keys, "series": DriftSeriesSerializer(series, many=True).data},
            }

        body = snap.cached(
            "api_agreement",
            build,
            {
                "field": spec.name,
                "model": model,
                "category": category,
                "threshold": [threshold, threshold_field],
            },
        )
        return Response({**body, "threshold": ThresholdSerializer(stored).data if stored else None})

    @extend_schema(
        parameters=[
            OpenApiParameter("field", str),
            OpenApiParameter("category", str),
            OpenApiParameter("model", str),
            OpenApiParameter("a", int),
            OpenApiParameter("b", int),
            *PAGE_PARAMS,
        ],
        responses={200: JSON},
    )
    @action(detail=True, methods=["get"], url_path="agreement-rows")
    def agreement_rows(self, request: Request, pk: str) -> Response | StreamingHttpResponse:
        """The items behind an agreement figure: a slice (``category``, ``model``) or a pair (``a``,
        ``b``: pseudonym indices), a page at a time (``count`` is the figure's item count);
        ``export=csv|jsonl`` streams them all. Only maintainers see (and list by) the model."""
        params = request.query_params
        snap = self._snapshot()
        spec = self._spec(snap)
        model, category = params.get("model") or None, params.get("category") or None
        shows_models = snap.campaign.target == "response" and can_view_identity_rows(request_user(request))
        if model and not shows_models:
            raise PermissionDenied("Only maintainers may list the items of one model.")
        try:
            a = int(params["a"]) if params.get("a") not in (None, "") else None
            b = int(params["b"]) if params.get("b") not in (None, "") else None
        except ValueError as exc:
            raise ValidationError({"detail": "a and b are annotator numbers."}) from exc
        pair = (a, b) if a is not None and b is not None else None
        file_format = _export_format(request)

        def compute() -> dict[str, Any]:
            try:
                return agreement_item_rows(snap.data, spec, category=category, model=model, pair=pair)
            except LookupError as exc:
                return {"missing": str(exc)}

        found = snap.cached_rows(
            "agreement_rows",
            compute,
            {
                "field": spec.name,
                "category": category,
                "model": model,
                "pair": pair,
                "annotator": None,
                "window": None,
                "by": "week",
                "window_size": 50,
            },
        )
        if "missing" in found:
            raise Http404
        filters: dict[str, object] = {"field": spec.name, "model": model, "category": category}
        if file_format:
            if shows_models:
                score_rows_unblind(
                    campaign=snap.campaign,
                    actor=request_user(request),
                    view=f"agreement_rows_{file_format}",
                    filters=filters,
                    items=[row["item"].item_id for row in found["rows"]],
                )
            return drill_exports.agreement_rows_response(
                campaign=snap.campaign, found=found, shows_models=shows_models, file_format=file_format
            )
        page, paging = _page(request, found["rows"])
        if shows_models:
            score_rows_unblind(
                campaign=snap.campaign,
                actor=request_user(request),
                view="agreement_rows",
                filters=filters,
                items=[row["item"].item_id for row in page],
            )
        return Response(
            {
                "field": spec.name,
                "title": found["title"],
                "agreements": found["agreements"],
                "n": found["n"],
                **paging,
                "rows": AgreementItemSerializer(page, many=True, context={"shows_models": shows_models}).data,
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
            campaign = campaign_get_for_own_agreement(user=user, campaign_id=int(pk))
        except Campaign.DoesNotExist as exc:
            raise Http404 from exc
        snap = Snapshot(campaign=campaign, user=None)
        rater = f"user:{request.user.pk}"

        def build() -> dict[str, Any]:
            fields = {}
            for spec in snap.data.categorical_specs:
                row = next((r for r in gold_agreement(snap.data, spec) if r.rater == rater), None)
                fields[spec.name] = None if row is None else OwnGoldSerializer(row).data
            return {"campaign": campaign.pk, "fields": fields, "summary": label_summary(snap.data)}

        return Response(snap.cached("api_mine", build, {"rater": rater}))


class ScoreReportViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Frozen campaign reports: list, read (with every table), and make one (maintainers)."""

    lookup_value_regex = r"\d+"

    def get_permissions(self) -> list[BasePermission]:
        return [ManageScores()] if self.action == "create" else [ViewScores()]

    def get_queryset(self) -> QuerySet[Report]:
        if getattr(self, "swagger_fake_view", False):
            return Report.objects.none()
        return report_list_for_user(user=request_user(self.request))

    def get_serializer_class(self) -> type:
        return ReportDetailSerializer if self.action == "retrieve" else ReportSerializer

    @extend_schema(request=ReportCreateSerializer, responses={201: ReportSerializer})
    def create(self, request: Request) -> Response:
        payload = ReportCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        user = request_user(request)
        try:
            campaign = campaign_get_for_scores(user=user, campaign_id=data.pop("campaign"))
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
