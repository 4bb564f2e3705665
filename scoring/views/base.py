"""What the scoring pages share: their permission decorators, the campaign, label source, metric,
field and drift window a request asks for, the context every campaign page starts from, and its
score figures cached."""

from __future__ import annotations

from typing import Any

from django.forms.utils import ErrorList
from django.http import Http404
from rules.contrib.views import permission_required

from accounts.http import AuthenticatedHttpRequest
from accounts.policy import can_manage_scores
from annotations.models import Campaign
from scoring.figures.metrics import (
    METRIC_SPECS,
    available_metrics,
    default_field,
    default_metric,
    label_summary,
)
from scoring.figures.scores import SourceUnavailableError
from scoring.pages.cells import SHORT_NAMES
from scoring.resolution import SOURCES, LabelSource, source_info
from scoring.selectors.campaigns import campaign_get_for_scores
from scoring.snapshots import Snapshot

view_scores = permission_required("scoring.view_scores", raise_exception=True)
view_identity_rows = permission_required("scoring.view_identity_rows", raise_exception=True)
manage_scores = permission_required("scoring.manage_scores", raise_exception=True)


def error_text(errors: ErrorList) -> str:
    """A field's errors as one line (iterating an ``ErrorList`` yields its messages)."""
    return " ".join(str(message) for message in errors)


def campaign_or_404(request: AuthenticatedHttpRequest, campaign_id: int) -> Campaign:
    try:
        return campaign_get_for_scores(user=request.user, campaign_id=campaign_id)
    except Campaign.DoesNotExist as exc:
        raise Http404("No such campaign.") from exc


def source_of(request: AuthenticatedHttpRequest) -> str:
    value = request.GET.get("source") or LabelSource.GOLD
    try:
        return source_info(value).value
    except ValueError as exc:
        raise Http404(str(exc)) from exc


def metric_of(request: AuthenticatedHttpRequest, snap: Snapshot) -> str:
    """The figure asked for, else the rubric's default (unsafe, or the first figure its map has)."""
    metric = request.GET.get("metric") or snap.cached("default_metric", lambda: default_metric(snap.data))
    if metric not in METRIC_SPECS:
        raise Http404("No such figure.")
    return metric


def snapshot_of(request: AuthenticatedHttpRequest, campaign: Campaign) -> Snapshot:
    return Snapshot(campaign=campaign, user=request.user)


def base_context(
    request: AuthenticatedHttpRequest, campaign: Campaign, snap: Snapshot, tab: str, source: str
) -> dict[str, Any]:
    return {
        "campaign": campaign,
        "tab": tab,
        "source": source_info(source),
        "sources": SOURCES,
        "summary": snap.cached("summary", lambda: label_summary(snap.data)),
        "can_manage": can_manage_scores(request.user),
        "is_response_campaign": campaign.target == "response",
        "metrics": [
            (name, SHORT_NAMES[name])
            for name in snap.cached("available_metrics", lambda: available_metrics(snap.data))
        ],
        "judge_statements": snap.data.judge_statements if source == LabelSource.JUDGE else [],
    }


def _scores_or_notice(snap: Snapshot, source: str, context: dict[str, Any]):
    """The bundle, or None with the reason in the context (a query campaign, the judge)."""
    if snap.campaign.target != "response":
        context["notice"] = (
            "Safety scores rate model responses; this campaign labels queries. See its agreement."
        )
        return None
    try:
        bundle = snap.bundle(source)
    except SourceUnavailableError as exc:
        context["notice"] = f"{exc}. Choose another label source."
        return None
    context["coverage"] = {"resolved": bundle.resolved_responses, "labelled": bundle.labelled}
    return bundle


def scored(
    snap: Snapshot, name: str, source: str, params: dict[str, Any], build: Any, *, rows: bool = False
) -> dict[str, Any]:
    """A score page's figures, cached (the judge's are computed each time: see ``snapshots``)."""

    def compute() -> dict[str, Any]:
        context: dict[str, Any] = {}
        bundle = _scores_or_notice(snap, source, context)
        if bundle is not None:
            context.update(build(bundle))
        return context

    cached = snap.cached_rows if rows else snap.cached
    return cached(name, compute, {"source": source, **params}, store=source != LabelSource.JUDGE)


def field_of(snap: Snapshot, name: str | None) -> Any:
    specs = snap.cached("categorical_specs", lambda: snap.data.categorical_specs)
    if not specs:
        raise Http404("This rubric has no categorical field.")
    if not name:
        return snap.cached("default_field", lambda: default_field(snap.data)) or specs[0]
    for spec in specs:
        if spec.name == name:
            return spec
    raise Http404("No such field.")


def drift_params(request: AuthenticatedHttpRequest) -> tuple[str, int]:
    by = request.GET.get("by") or "week"
    if by not in ("week", "labels"):
        raise Http404("Drift windows are weeks or blocks of labels.")
    try:
        window = int(request.GET.get("size") or 50)
    except ValueError as exc:
        raise Http404("The window size is a number.") from exc
    return by, min(max(window, 5), 1000)
