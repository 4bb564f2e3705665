"""The agreement pages: a field's agreement (coefficients, pairs, gold, drift), the annotator flag
threshold, and a clinician's own agreement with gold."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.http import AuthenticatedHttpRequest
from accounts.policy import can_manage_scores, can_view_identity_rows
from annotations.models import Campaign
from medharm_stats import DEFAULT_SEED
from scoring.figures.gold import Threshold
from scoring.figures.metrics import label_summary
from scoring.forms import ThresholdForm
from scoring.pages import agreement as agreement_pages
from scoring.resolution import LabelSource
from scoring.selectors.campaigns import campaign_get_for_own_agreement, threshold_for
from scoring.services import agreement_threshold_set
from scoring.snapshots import Snapshot
from scoring.views.base import (
    base_context,
    campaign_or_404,
    drift_params,
    error_text,
    field_of,
    manage_scores,
    snapshot_of,
    view_scores,
)


@login_required
@view_scores
def agreement(request: AuthenticatedHttpRequest, campaign_id: int) -> HttpResponse:
    campaign = campaign_or_404(request, campaign_id)
    snap = snapshot_of(request, campaign)
    spec = field_of(snap, request.GET.get("field"))
    model = request.GET.get("model") or None
    if model and model not in snap.cached(
        "item_targets", lambda: sorted({row.target for row in snap.data.items.values() if row.target})
    ):
        raise Http404("No such model in this campaign.")
    category = request.GET.get("category") or None
    if category and category not in snap.cached(
        "item_categories", lambda: sorted({row.category for row in snap.data.items.values()})
    ):
        raise Http404("No such category in this campaign.")
    by, window = drift_params(request)
    stored = threshold_for(campaign=campaign)
    threshold = Threshold(stored.statistic, stored.minimum, stored.min_items) if stored else None
    threshold_field = stored.field_name if stored else ""
    drill = can_view_identity_rows(request.user)
    context = base_context(request, campaign, snap, "agreement", LabelSource.GOLD)
    context.update(
        snap.cached(
            "agreement",
            lambda: agreement_pages.agreement_page(
                snap.data,
                spec,
                model=model,
                category=category,
                by=by,
                window=window,
                threshold=threshold,
                threshold_field=threshold_field,
                seed=DEFAULT_SEED,
                drill=drill,
            ),
            {
                "field": spec.name,
                "model": model,
                "category": category,
                "by": by,
                "window": window,
                "threshold": [threshold, threshold_field],
                "drill": drill,
            },
        )
    )
    context["threshold"] = stored
    context["category_filter"] = category or ""
    categorical = snap.cached("categorical_specs", lambda: snap.data.categorical_specs)
    context["fields"] = categorical
    if can_manage_scores(request.user):
        initial = (
            {
                "field_name": stored.field_name,
                "statistic": stored.statistic,
                "minimum": stored.minimum,
                "min_items": stored.min_items,
            }
            if stored
            else None
        )
        context["threshold_form"] = ThresholdForm(
            initial=initial, fields=[(s.name, s.label) for s in categorical]
        )
    return render(request, "scoring/agreement.html", context)


@login_required
@manage_scores
@require_POST
def threshold_set(request: AuthenticatedHttpRequest, campaign_id: int) -> HttpResponse:
    campaign = campaign_or_404(request, campaign_id)
    specs = [s for s in campaign.rubric.specs() if s.is_categorical]
    form = ThresholdForm(request.POST, fields=[(s.name, s.label) for s in specs])
    if form.is_valid():
        try:
            agreement_threshold_set(campaign=campaign, actor=request.user, **form.cleaned_data)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, "The flag threshold is saved.")
    else:
        messages.error(
            request,
            "The threshold was not saved: "
            + "; ".join(f"{name}: {error_text(errors)}" for name, errors in form.errors.items()),
        )
    return redirect("scoring:agreement", campaign.pk)


@login_required
def own_agreement(request: AuthenticatedHttpRequest, campaign_id: int) -> HttpResponse:
    try:
        campaign = campaign_get_for_own_agreement(user=request.user, campaign_id=campaign_id)
    except Campaign.DoesNotExist as exc:
        if not request.user.has_perm("scoring.view_own_agreement"):
            raise PermissionDenied from exc
        raise Http404("No closed campaign of yours with this number.") from exc
    by, window = drift_params(request)
    snap = Snapshot(campaign=campaign, user=None)
    rater = f"user:{request.user.pk}"
    context = {
        "campaign": campaign,
        "summary": snap.cached("summary", lambda: label_summary(snap.data)),
        "drift_by": by,
    }
    context.update(
        snap.cached(
            "own_agreement",
            lambda: agreement_pages.own_agreement(snap.data, rater, by=by, window=window),
            {"rater": rater, "by": by, "window": window},
        )
    )
    return render(request, "scoring/own_agreement.html", context)
