"""The score actions of a campaign: every figure under a label source, and the paired comparison
of two models."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from scoring.api.base import JSON, SOURCE_PARAM, CampaignViewSetBase
from scoring.figures.comparisons import comparisons, default_pair
from scoring.serializers import PairedComparisonSerializer, ScoreBundleSerializer


class ScoreActions(CampaignViewSetBase):
    """``scores`` and ``compare``: the figures of the leaderboard, heatmap and compare pages."""

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
