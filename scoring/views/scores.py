"""The score pages: the campaign list, the leaderboard, the category x model heatmap and the
model-vs-model comparison."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import render

from accounts.http import AuthenticatedHttpRequest
from accounts.policy import can_view_identity_rows, can_view_own_agreement, can_view_scores
from medharm_stats import DEFAULT_SEED
from scoring.figures.comparisons import default_pair
from scoring.judges import judge_readers
from scoring.pages import scores as score_pages
from scoring.resolution import LabelSource
from scoring.selectors.campaigns import (
    campaign_list_for_own_agreement,
    campaign_list_for_scores,
    report_list_for_user,
)
from scoring.views.base import (
    base_context,
    campaign_or_404,
    metric_of,
    scored,
    snapshot_of,
    source_of,
    view_scores,
)


@login_required
def index(request: AuthenticatedHttpRequest) -> HttpResponse:
    user = request.user
    scores = can_view_scores(user)
    own = campaign_list_for_own_agreement(user=user)
    if not scores and not can_view_own_agreement(user):
        raise PermissionDenied
    context = {
        "campaigns": campaign_list_for_scores(user=user).select_related("rubric")[:100] if scores else [],
        "own_campaigns": own,
        "reports": report_list_for_user(user=user)[:20] if scores else [],
    }
    return render(request, "scoring/index.html", context)


@login_required
@view_scores
def leaderboard(request: AuthenticatedHttpRequest, campaign_id: int) -> HttpResponse:
    campaign = campaign_or_404(request, campaign_id)
    source = source_of(request)
    snap = snapshot_of(request, campaign)
    metric = metric_of(request, snap)
    context = base_context(request, campaign, snap, "leaderboard", source)
    drill = can_view_identity_rows(request.user)
    context.update(
        scored(
            snap,
            "leaderboard",
            source,
            {"metric": metric, "drill": drill},
            lambda bundle: score_pages.leaderboard(snap.data, bundle, metric, drill=drill),
        )
    )
    readers = judge_readers()
    if source == LabelSource.JUDGE and "rows" in context and snap.data.judge_labels and readers is not None:
        context["judge_assisted"] = readers.assisted_rates(user=request.user)
    context["metric"] = metric
    return render(request, "scoring/leaderboard.html", context)


@login_required
@view_scores
def heatmap(request: AuthenticatedHttpRequest, campaign_id: int) -> HttpResponse:
    campaign = campaign_or_404(request, campaign_id)
    source = source_of(request)
    snap = snapshot_of(request, campaign)
    metric = metric_of(request, snap)
    context = base_context(request, campaign, snap, "heatmap", source)
    drill = can_view_identity_rows(request.user)
    context.update(
        scored(
            snap,
            "heatmap",
            source,
            {"metric": metric, "drill": drill},
            lambda bundle: score_pages.heatmap(snap.data, bundle, metric, drill=drill),
        )
    )
    context["metric"] = metric
    return render(request, "scoring/heatmap.html", context)


@login_required
@view_scores
def compare(request: AuthenticatedHttpRequest, campaign_id: int) -> HttpResponse:
    campaign = campaign_or_404(request, campaign_id)
    source = source_of(request)
    snap = snapshot_of(request, campaign)
    context = base_context(request, campaign, snap, "compare", source)
    context.update(
        scored(
            snap,
            "compare_targets",
            source,
            {},
            lambda bundle: {
                "targets": list(bundle.targets),
                "default": default_pair(snap.data, list(bundle.targets)),
            },
        )
    )
    if "targets" in context:
        targets = context["targets"]
        first, second = request.GET.get("first"), request.GET.get("second")
        if not first or not second:
            pair = context["default"]
            first, second = pair if pair else (None, None)
            context["default_pair"] = pair is not None
        if first and second:
            if first not in targets or second not in targets:
                raise Http404("No such model in this campaign.")
            if first == second:
                context["notice"] = "Choose two different models."
            else:
                drill = can_view_identity_rows(request.user)
                context.update(
                    scored(
                        snap,
                        "compare",
                        source,
                        {"first": first, "second": second, "drill": drill},
                        lambda bundle: score_pages.compare(
                            snap.data, bundle, first, second, seed=DEFAULT_SEED, drill=drill
                        ),
                    )
                )
        context["first"], context["second"] = first, second
    return render(request, "scoring/compare.html", context)
