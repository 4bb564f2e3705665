"""The drill-downs: the responses behind a score figure and the items behind an agreement figure, a
page at a time or exported whole; a page or export that names models is an audited unblinding."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import render

from accounts.http import AuthenticatedHttpRequest
from accounts.policy import can_manage_collection, can_view_identity_rows
from scoring import drill_exports
from scoring.figures.drilldowns import attach_labels, unpack_row
from scoring.figures.metrics import METRIC_SPECS, score_fields
from scoring.pages import drilldowns as drilldown_pages
from scoring.resolution import LabelSource
from scoring.selectors.drilldowns import labels_of_items
from scoring.services import score_rows_unblind
from scoring.snapshots import Snapshot, score_rows_build
from scoring.views.base import (
    base_context,
    campaign_or_404,
    drift_params,
    field_of,
    metric_of,
    scored,
    snapshot_of,
    source_of,
    view_identity_rows,
    view_scores,
)


def _page_number(request: AuthenticatedHttpRequest) -> str | None:
    return request.GET.get("page")


@login_required
@view_identity_rows
def rows(request: AuthenticatedHttpRequest, campaign_id: int) -> HttpResponse | StreamingHttpResponse:
    campaign = campaign_or_404(request, campaign_id)
    source = source_of(request)
    target, category = request.GET.get("target") or None, request.GET.get("category") or None
    file_format = request.GET.get("export") or ""
    if file_format and file_format not in drill_exports.FORMATS:
        raise Http404("No such format.")
    snap = snapshot_of(request, campaign)
    metric = metric_of(request, snap)
    context = base_context(request, campaign, snap, "rows", source)
    selection = score_row_selection(snap, source, metric, target, category)
    if selection.get("missing"):
        raise Http404("No such model or category in this campaign.")
    context.update({k: v for k, v in selection.items() if k != "rows"})
    if "figure" in selection:
        found = selection["rows"]
        filters: dict[str, object] = {
            "metric": metric,
            "target": target,
            "category": category,
            "source": source,
        }
        names = snap.cached("rater_names", lambda: snap.data.rater_names)
        if file_format:
            score_rows_unblind(
                campaign=campaign,
                actor=request.user,
                view=f"score_rows_{file_format}",
                filters=filters,
                items=found,
            )
            return drill_exports.score_rows_response(
                campaign=campaign, rows=found, rater_names=names, file_format=file_format
            )
        page = Paginator(found, drilldown_pages.DRILL_PAGE_SIZE).get_page(_page_number(request))
        unpacked = [unpack_row(row) for row in page]
        shown = attach_labels(unpacked, labels_of_items(item_ids=[row.item_id for row in unpacked]), names)
        score_rows_unblind(
            campaign=campaign,
            actor=request.user,
            view="score_rows_page",
            filters=filters,
            items=[row.item_id for row in shown],
        )
        context.update(
            {
                "rows": shown,
                "page": page,
                "page_range": page.paginator.get_elided_page_range(page.number),
                "metric": metric,
                "metric_label": METRIC_SPECS[metric].label,
                "metric_kind": METRIC_SPECS[metric].kind,
                "target": target,
                "category": category,
                "link_responses": can_manage_collection(request.user),
                "label_fields": snap.cached("score_fields", lambda: score_fields(snap.data)),
            }
        )
    return render(request, "scoring/rows.html", context)


def score_row_selection(
    snap: Snapshot, source: str, metric: str, target: str | None, category: str | None
) -> dict[str, Any]:
    """The rows behind one figure (without annotators' labels), cached."""
    return scored(
        snap,
        "score_rows",
        source,
        {"metric": metric, "target": target, "category": category},
        lambda bundle: score_rows_build(snap, bundle, metric, target, category),
        rows=True,
    )


@login_required
@view_scores
def agreement_rows(
    request: AuthenticatedHttpRequest, campaign_id: int
) -> HttpResponse | StreamingHttpResponse:
    campaign = campaign_or_404(request, campaign_id)
    if request.GET.get("model") and not can_view_identity_rows(request.user):
        raise PermissionDenied("Only maintainers may list the items of one model.")
    file_format = request.GET.get("export") or ""
    if file_format and file_format not in drill_exports.FORMATS:
        raise Http404("No such format.")
    snap = snapshot_of(request, campaign)
    spec = field_of(snap, request.GET.get("field"))
    by, window_size = drift_params(request)

    def index(name: str) -> int | None:
        raw = request.GET.get(name)
        if raw in (None, ""):
            return None
        try:
            return int(raw)
        except ValueError as exc:
            raise Http404("Not an annotator.") from exc

    a, b, annotator = index("a"), index("b"), index("annotator")
    params = {
        "field": spec.name,
        "category": request.GET.get("category") or None,
        "model": request.GET.get("model") or None,
        "pair": (a, b) if a is not None and b is not None else None,
        "annotator": annotator,
        "window": request.GET.get("window") or None,
        "by": by,
        "window_size": window_size,
    }

    def compute() -> dict[str, Any]:
        try:
            return drilldown_pages.agreement_item_rows(
                snap.data,
                spec,
                category=params["category"],
                model=params["model"],
                pair=params["pair"],
                annotator=annotator,
                window=params["window"],
                by=by,
                window_size=window_size,
            )
        except LookupError as exc:
            return {"missing": str(exc)}

    found = snap.cached_rows("agreement_rows", compute, params)
    if "missing" in found:
        raise Http404(found["missing"])
    # Items with their model are an unblinding (maintainers, audited); adjudicators get the items
    # without the model column and may not list one model's items.
    shows_models = campaign.target == "response" and can_view_identity_rows(request.user)
    if file_format:
        if shows_models:
            score_rows_unblind(
                campaign=campaign,
                actor=request.user,
                view=f"agreement_rows_{file_format}",
                filters={"field": spec.name, "model": params["model"], "category": params["category"]},
                items=found["rows"],
            )
        return drill_exports.agreement_rows_response(
            campaign=campaign, found=found, shows_models=shows_models, file_format=file_format
        )
    page = Paginator(found["rows"], drilldown_pages.DRILL_PAGE_SIZE).get_page(_page_number(request))
    if shows_models:
        score_rows_unblind(
            campaign=campaign,
            actor=request.user,
            view="agreement_rows_page",
            filters={"field": spec.name, "model": params["model"], "category": params["category"]},
            items=[row["item"].item_id for row in page],
        )
    context = base_context(request, campaign, snap, "agreement", LabelSource.GOLD)
    context.update(found)
    context.update(
        {
            "rows": list(page),
            "page": page,
            "page_range": page.paginator.get_elided_page_range(page.number),
            "spec": spec,
            "shows_models": shows_models,
        }
    )
    return render(request, "scoring/agreement_rows.html", context)
