"""The agreement actions of a campaign: one field's coefficients, pairs, agreement with gold and
drift; the annotator flag threshold; and a clinician's own agreement with gold."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.http import request_user
from annotations.models import Campaign
from scoring.api.base import JSON, CampaignViewSetBase, drf_error
from scoring.figures.agreement import agreement_rows, level_for, pair_matrix
from scoring.figures.gold import Threshold, drift, gold_agreement, gold_section
from scoring.figures.metrics import label_summary
from scoring.selectors.campaigns import campaign_get_for_own_agreement, threshold_for
from scoring.serializers import (
    AgreementSliceSerializer,
    AnnotatorGoldSerializer,
    DriftSeriesSerializer,
    OwnGoldSerializer,
    PairMatrixSerializer,
    ThresholdSerializer,
)
from scoring.services import agreement_threshold_set
from scoring.snapshots import Snapshot


class AgreementActions(CampaignViewSetBase):
    """``agreement``, ``threshold`` (maintainers) and ``mine`` (a clinician's own figures)."""

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
            raise drf_error(error) from error
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
