"""Scoring pages, mounted at /scores/: leaderboard, heatmap, model-vs-model, drill-downs,
agreement, a clinician's own agreement, and campaign reports with their downloads."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.forms.utils import ErrorList
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from rules.contrib.views import permission_required

from accounts.http import AuthenticatedHttpRequest
from accounts.policy import (
    can_manage_collection,
    can_manage_scores,
    can_view_identity_rows,
    can_view_own_agreement,
    can_view_scores,
)
from annotations.models import Campaign
from medharm_stats import DEFAULT_SEED
from scoring import pages, reports, selectors
from scoring.figures import (
    METRIC_SPECS,
    SourceUnavailableError,
    Threshold,
    available_metrics,
    campaign_scores,
    default_field,
    default_metric,
    default_pair,
    drilldown,
    label_summary,
    score_fields,
)
from scoring.forms import ReportForm, ThresholdForm
from scoring.judges import judge_readers
from scoring.models import Report
from scoring.resolution import SOURCES, LabelSource, source_info
from scoring.services import agreement_threshold_set, report_create, score_rows_unblind

view_scores = permission_required("scoring.view_scores", raise_exception=True)
view_identity_rows = permission_required("scoring.view_identity_rows", raise_exception=True)
manage_scores = permission_required("scoring.manage_scores", raise_exception=True)


def _messages(errors: ErrorList) -> str:
    """A field's errors as one line (iterating an ``ErrorList`` yields its messages)."""
    return " ".join(str(message) for message in errors)


def _campaign(request: AuthenticatedHttpRequest, campaign_id: int) -> Campaign:
    try:
        return selectors.campaign_get_for_scores(user=request.user, campaign_id=campaign_id)
    except Campaign.DoesNotExist as exc:
        raise Http404("No such campaign.") from exc


def _source(request: AuthenticatedHttpRequest) -> str:
    value = request.GET.get("source") or LabelSource.GOLD
    try:
        return source_info(value).value
    except ValueError as exc:
        raise Http404(str(exc)) from exc


def _metric(request: AuthenticatedHttpRequest, data: selectors.CampaignData) -> str:
    """The figure asked for, else the rubric's default (unsafe, or the first figure its map has)."""
    metric = request.GET.get("metric") or default_metric(data)
    if metric not in METRIC_SPECS:
        raise Http404("No such figure.")
    return metric


def _base_context(
    request: AuthenticatedHttpRequest, campaign: Campaign, data: selectors.CampaignData, tab: str, source: str
) -> dict[str, Any]:
    return {
        "campaign": campaign,
        "tab": tab,
        "source": source_info(source),
        "sources": SOURCES,
        "summary": label_summary(data),
        "can_manage": can_manage_scores(request.user),
        "is_response_campaign": campaign.target == "response",
        "metrics": [(name, pages.SHORT_NAMES[name]) for name in available_metrics(data)],
        "judge_statements": data.judge_statements if source == LabelSource.JUDGE else [],
    }


def _scores_or_notice(data: selectors.CampaignData, source: str, context: dict[str, Any]):
    """The bundle, or None with the reason in the context (a query campaign, the judge)."""
    if data.target_kind != "response":
        context["notice"] = (
            "Safety scores rate model responses; this campaign labels queries. See its agreement."
        )
        return None
    try:
        bundle = campaign_scores(data, source)
    except SourceUnavailableError as exc:
        context["notice"] = f"{exc}. Choose another label source."
        return None
    context["coverage"] = {"resolved": bundle.resolved_responses, "labelled": bundle.labelled}
    return bundle


@login_required
def index(request: AuthenticatedHttpRequest) -> HttpResponse:
    user = request.user
    scores = can_view_scores(user)
    own = selectors.campaign_list_for_own_agreement(user=user)
    if not scores and not can_view_own_agreement(user):
        raise PermissionDenied
    context = {
        "campaigns": selectors.campaign_list_for_scores(user=user).select_related("rubric")[:100]
        if scores
        else [],
        "own_campaigns": own,
        "reports": selectors.report_list_for_user(user=user)[:20] if scores else [],
    }
    return render(request, "scoring/index.html", context)


@login_required
@view_scores
def leaderboard(request: AuthenticatedHttpRequest, campaign_id: int) -> HttpResponse:
    campaign = _campaign(request, campaign_id)
    source = _source(request)
    data = selectors.campaign_data(campaign=campaign, user=request.user)
    metric = _metric(request, data)
    context = _base_context(request, campaign, data, "leaderboard", source)
    bundle = _scores_or_notice(data, source, context)
    if bundle is not None:
        context.update(pages.leaderboard(data, bundle, metric, drill=can_view_identity_rows(request.user)))
        readers = judge_readers()
        if source == LabelSource.JUDGE and data.judge_labels and readers is not None:
            context["judge_assisted"] = readers.assisted_rates(user=request.user)
    context["metric"] = metric
    return render(request, "scoring/leaderboard.html", context)


@login_required
@view_scores
def heatmap(request: AuthenticatedHttpRequest, campaign_id: int) -> HttpResponse:
    campaign = _campaign(request, campaign_id)
    source = _source(request)
    data = selectors.campaign_data(campaign=campaign, user=request.user)
    metric = _metric(request, data)
    context = _base_context(request, campaign, data, "heatmap", source)
    bundle = _scores_or_notice(data, source, context)
    if bundle is not None:
        context.update(pages.heatmap(data, bundle, metric, drill=can_view_identity_rows(request.user)))
    context["metric"] = metric
    return render(request, "scoring/heatmap.html", context)


@login_required
@view_scores
def compare(request: AuthenticatedHttpRequest, campaign_id: int) -> HttpResponse:
    campaign = _campaign(request, campaign_id)
    source = _source(request)
    data = selectors.campaign_data(campaign=campaign, user=request.user)
    context = _base_context(request, campaign, data, "compare", source)
    bundle = _scores_or_notice(data, source, context)
    if bundle is not None:
        targets = list(bundle.targets)
        context["targets"] = targets
        first, second = request.GET.get("first"), request.GET.get("second")
        if not first or not second:
            pair = default_pair(data, targets)
            first, second = pair if pair else (None, None)
            context["default_pair"] = pair is not None
        if first and second:
            if first not in targets or second not in targets:
                raise Http404("No such model in this campaign.")
            if first == second:
                context["notice"] = "Choose two different models."
            else:
                drill = can_view_identity_rows(request.user)
                context.update(pages.compare(data, bundle, first, second, seed=DEFAULT_SEED, drill=drill))
        context["first"], context["second"] = first, second
    return render(request, "scoring/compare.html", context)


@login_required
@view_identity_rows
def rows(request: AuthenticatedHttpRequest, campaign_id: int) -> HttpResponse:
    campaign = _campaign(request, campaign_id)
    source = _source(request)
    target, category = request.GET.get("target") or None, request.GET.get("category") or None
    data = selectors.campaign_data(campaign=campaign, user=request.user)
    metric = _metric(request, data)
    context = _base_context(request, campaign, data, "rows", source)
    bundle = _scores_or_notice(data, source, context)
    if bundle is not None:
        if (target and target not in bundle.targets) or (category and category not in bundle.categories):
            raise Http404("No such model or category in this campaign.")
        found, numerator, denominator = drilldown(bundle, data, metric, target=target, category=category)
        score_rows_unblind(
            campaign=campaign,
            actor=request.user,
            view="score_rows_page",
            filters={"metric": metric, "target": target, "category": category, "source": bundle.source},
            items=[row.item_id for row in found],
        )
        figure = bundle.scores.cell(target, category).figures[metric]
        context.update(
            {
                "rows": found,
                "numerator": numerator,
                "denominator": denominator,
                "figure": pages.FigureCell(metric, figure, ""),
                "metric": metric,
                "metric_label": METRIC_SPECS[metric].label,
                "metric_kind": METRIC_SPECS[metric].kind,
                "target": target,
                "category": category,
                "category_name": data.categories.get(category or "", category),
                "link_responses": can_manage_collection(request.user),
                "label_fields": score_fields(data),
            }
        )
    return render(request, "scoring/rows.html", context)


def _field(data: selectors.CampaignData, name: str | None) -> Any:
    specs = data.categorical_specs
    if not specs:
        raise Http404("This rubric has no categorical field.")
    if not name:
        return default_field(data) or specs[0]
    for spec in specs:
        if spec.name == name:
            return spec
    raise Http404("No such field.")


def _drift_params(request: AuthenticatedHttpRequest) -> tuple[str, int]:
    by = request.GET.get("by") or "week"
    if by not in ("week", "labels"):
        raise Http404("Drift windows are weeks or blocks of labels.")
    try:
        window = int(request.GET.get("size") or 50)
    except ValueError as exc:
        raise Http404("The window size is a number.") from exc
    return by, min(max(window, 5), 1000)


@login_required
@view_scores
def agreement(request: AuthenticatedHttpRequest, campaign_id: int) -> HttpResponse:
    campaign = _campaign(request, campaign_id)
    data = selectors.campaign_data(campaign=campaign, user=request.user)
    spec = _field(data, request.GET.get("field"))
    model = request.GET.get("model") or None
    if model and model not in {row.target for row in data.items.values()}:
        raise Http404("No such model in this campaign.")
    category = request.GET.get("category") or None
    if category and category not in {row.category for row in data.items.values()}:
        raise Http404("No such category in this campaign.")
    by, window = _drift_params(request)
    stored = selectors.threshold_for(campaign=campaign)
    threshold = Threshold(stored.statistic, stored.minimum, stored.min_items) if stored else None
    context = _base_context(request, campaign, data, "agreement", LabelSource.GOLD)
    context.update(
        pages.agreement_page(
            data,
            spec,
            model=model,
            category=category,
            by=by,
            window=window,
            threshold=threshold,
            threshold_field=stored.field_name if stored else "",
            seed=DEFAULT_SEED,
            drill=can_view_identity_rows(request.user),
        )
    )
    context["threshold"] = stored
    context["category_filter"] = category or ""
    context["fields"] = data.categorical_specs
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
            initial=initial, fields=[(s.name, s.label) for s in data.categorical_specs]
        )
    return render(request, "scoring/agreement.html", context)


@login_required
@view_scores
def agreement_rows(request: AuthenticatedHttpRequest, campaign_id: int) -> HttpResponse:
    campaign = _campaign(request, campaign_id)
    if request.GET.get("model") and not can_view_identity_rows(request.user):
        raise PermissionDenied("Only maintainers may list the items of one model.")
    data = selectors.campaign_data(campaign=campaign, user=request.user)
    spec = _field(data, request.GET.get("field"))
    by, window_size = _drift_params(request)

    def index(name: str) -> int | None:
        raw = request.GET.get(name)
        if raw in (None, ""):
            return None
        try:
            return int(raw)
        except ValueError as exc:
            raise Http404("Not an annotator.") from exc

    a, b, annotator = index("a"), index("b"), index("annotator")
    try:
        found = pages.agreement_item_rows(
            data,
            spec,
            category=request.GET.get("category") or None,
            model=request.GET.get("model") or None,
            pair=(a, b) if a is not None and b is not None else None,
            annotator=annotator,
            window=request.GET.get("window") or None,
            by=by,
            window_size=window_size,
        )
    except LookupError as exc:
        raise Http404(str(exc)) from exc
    # Items with their model are an unblinding (maintainers, audited); adjudicators get the items
    # without the model column and may not list one model's items.
    shows_models = campaign.target == "response"
    if shows_models and can_view_identity_rows(request.user):
        score_rows_unblind(
            campaign=campaign,
            actor=request.user,
            view="agreement_rows_page",
            filters={
                "field": spec.name,
                "model": request.GET.get("model"),
                "category": request.GET.get("category"),
            },
            items=[row["item"].item_id for row in found["rows"] if row.get("item")],
        )
    else:
        shows_models = False
    context = _base_context(request, campaign, data, "agreement", LabelSource.GOLD)
    context.update(found)
    context["spec"] = spec
    context["shows_models"] = shows_models
    return render(request, "scoring/agreement_rows.html", context)


@login_required
@manage_scores
@require_POST
def threshold_set(request: AuthenticatedHttpRequest, campaign_id: int) -> HttpResponse:
    campaign = _campaign(request, campaign_id)
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
            + "; ".join(f"{name}: {_messages(errors)}" for name, errors in form.errors.items()),
        )
    return redirect("scoring:agreement", campaign.pk)


@login_required
def own_agreement(request: AuthenticatedHttpRequest, campaign_id: int) -> HttpResponse:
    try:
        campaign = selectors.campaign_get_for_own_agreement(user=request.user, campaign_id=campaign_id)
    except Campaign.DoesNotExist as exc:
        if not request.user.has_perm("scoring.view_own_agreement"):
            raise PermissionDenied from exc
        raise Http404("No closed campaign of yours with this number.") from exc
    by, window = _drift_params(request)
    data = selectors.campaign_data(campaign=campaign, user=None)
    context = {"campaign": campaign, "summary": label_summary(data), "drift_by": by}
    context.update(pages.own_agreement(data, f"user:{request.user.pk}", by=by, window=window))
    return render(request, "scoring/own_agreement.html", context)


# --- reports ----------------------------------------------------------------------------------------


@login_required
@view_scores
def report_list(request: AuthenticatedHttpRequest, campaign_id: int) -> HttpResponse:
    campaign = _campaign(request, campaign_id)
    data = selectors.campaign_data(campaign=campaign, user=request.user)
    context = _base_context(request, campaign, data, "reports", LabelSource.GOLD)
    context["reports"] = selectors.report_list_for_user(user=request.user, campaign=campaign)
    if can_manage_scores(request.user):
        context["report_form"] = ReportForm()
    return render(request, "scoring/report_list.html", context)


@login_required
@manage_scores
@require_POST
def report_new(request: AuthenticatedHttpRequest, campaign_id: int) -> HttpResponse:
    campaign = _campaign(request, campaign_id)
    form = ReportForm(request.POST)
    if not form.is_valid():
        messages.error(
            request,
            "The report was not made: "
            + "; ".join(f"{name}: {_messages(errors)}" for name, errors in form.errors.items()),
        )
        return redirect("scoring:report_list", campaign.pk)
    try:
        report = report_create(campaign=campaign, actor=request.user, **form.cleaned_data)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("scoring:report_list", campaign.pk)
    return redirect("scoring:report_detail", report.pk)


def _report(request: AuthenticatedHttpRequest, report_id: int) -> Report:
    try:
        return selectors.report_get_for_user(user=request.user, report_id=report_id)
    except Report.DoesNotExist as exc:
        raise Http404("No such report.") from exc


def _download(content: bytes | str, content_type: str, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@login_required
@view_scores
def report_detail(request: AuthenticatedHttpRequest, report_id: int) -> HttpResponse:
    report = _report(request, report_id)
    payload = report.payload
    return render(
        request,
        "scoring/report_detail.html",
        {
            "report": report,
            "payload": payload,
            "provenance": reports.provenance_lines(payload),
            "tables": reports.display_tables(payload),
            "table_names": reports.table_names(payload),
        },
    )


@login_required
@view_scores
def report_download(request: AuthenticatedHttpRequest, report_id: int, file_format: str) -> HttpResponse:
    report = _report(request, report_id)
    stem = f"medharm-report-{report.pk}"
    if file_format == "json":
        return _download(reports.report_json(report.payload), "application/json", f"{stem}.json")
    if file_format == "pdf":
        return _download(reports.report_pdf(report.payload), "application/pdf", f"{stem}.pdf")
    if file_format == "zip":
        archive = reports.report_zip(report.payload, reports.report_pdf(report.payload))
        return _download(archive, "application/zip", f"{stem}.zip")
    raise Http404("No such format.")


@login_required
@view_scores
def report_table(request: AuthenticatedHttpRequest, report_id: int, name: str) -> HttpResponse:
    report = _report(request, report_id)
    if name not in report.payload["tables"]:
        raise Http404("No such table.")
    return _download(
        reports.table_csv(report.payload, name),
        "text/csv; charset=utf-8",
        f"medharm-report-{report.pk}-{name}.csv",
    )
