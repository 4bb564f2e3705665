"""The drill-down actions of a campaign: the responses behind a score figure and the items behind
an agreement figure, a page at a time (the same pages as the HTML drill-downs) or streamed whole."""

from __future__ import annotations

from typing import Any

from django.http import Http404, StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.http import request_user
from accounts.policy import can_view_identity_rows
from medharm_stats.scores import METRIC_NAMES, figure_dict
from scoring import drill_exports
from scoring.api.base import JSON, SOURCE_PARAM, CampaignViewSetBase
from scoring.figures.drilldowns import attach_labels, unpack_row
from scoring.pages.drilldowns import DRILL_PAGE_SIZE, agreement_item_rows
from scoring.selectors.drilldowns import labels_of_items
from scoring.serializers import AgreementItemSerializer, ScoreRowSerializer
from scoring.services import score_rows_unblind
from scoring.snapshots import score_rows_build

MAX_PAGE_SIZE = DRILL_PAGE_SIZE
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


class DrillDownActions(CampaignViewSetBase):
    """``rows`` and ``agreement-rows``: every call that names a model is an audited unblinding."""

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
                items=found,
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
                    items=found["rows"],
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
