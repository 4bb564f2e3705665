"""Scoring pages, mounted at /scores/: leaderboard, heatmap, model-vs-model, drill-downs,
agreement, a clinician's own agreement, and campaign reports with their downloads."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.forms.utils import ErrorList
from django.http import Http404, HttpResponse, StreamingHttpResponse
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
from scoring import drill_exports
from scoring.figures.comparisons import default_pair
from scoring.figures.drilldowns import attach_labels, packed_item_id, unpack_row
from scoring.figures.gold import Threshold
from scoring.figures.metrics import (
    METRIC_SPECS,
    available_metrics,
    default_field,
    default_metric,
    label_summary,
    score_fields,
)
from scoring.figures.scores import SourceUnavailableError
from scoring.forms import ReportForm, ThresholdForm
from scoring.judges import judge_readers
from scoring.models import Report
from scoring.pages import agreement as agreement_pages
from scoring.pages import drilldowns as drilldown_pages
from scoring.pages import scores as score_pages
from scoring.pages.cells import SHORT_NAMES
from scoring.reports.display import display_tables, provenance_lines
from scoring.reports.files import report_json, report_zip, table_csv, table_names
from scoring.reports.pdf import report_pdf
from scoring.resolution import SOURCES, LabelSource, source_info
from scoring.selectors.campaigns import (
    campaign_get_for_own_agreement,
    campaign_get_for_scores,
    campaign_list_for_own_agreement,
    campaign_list_for_scores,
    report_get_for_user,
    report_list_for_user,
    threshold_for,
)
from scoring.selectors.drilldowns import labels_of_items
from scoring.services import agreement_threshold_set, report_create, score_rows_unblind
from scoring.snapshots import Snapshot, score_rows_build

view_scores = permission_required("scoring.view_scores", raise_exception=True)
view_identity_rows = permission_required("scoring.view_identity_rows", raise_exception=True)
manage_scores = permission_required("scoring.manage_scores", raise_exception=True)


def _messages(errors: ErrorList) -> str:
    """A field's errors as one line (iterating an ``ErrorList`` yields its messages)."""
    return " ".join(str(message) for message in errors)


def _campaign(request: AuthenticatedHttpRequest, campaign_id: int) -> Campaign:
    try:
        return campaign_get_for_scores(user=request.user, campaign_id=campaign_id)
    except Campaign.DoesNotExist as exc:
        raise Http404("No such campaign.") from exc


def _source(request: AuthenticatedHttpRequest) -> str:
    value = request.GET.get("source") or LabelSource.GOLD
    try:
        return source_info(value).value
    except ValueError as exc:
        raise Http404(str(exc)) from exc


def _metric(request: AuthenticatedHttpRequest, snap: Snapshot) -> str:
    """The figure asked for, else the rubric's default (unsafe, or the first figure its map has)."""
    metric = request.GET.get("metric") or snap.cached("default_metric", lambda: default_metric(snap.data))
    if metric not in METRIC_SPECS:
        raise Http404("No such figure.")
    return metric


def _snapshot(request: AuthenticatedHttpRequest, campaign: Campaign) -> Snapshot:
    return Snapshot(campaign=campaign, user=request.user)


def _base_context(
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


def _scored(
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
    campaign = _campaign(request, campaign_id)
    source = _source(request)
    snap = _snapshot(request, campaign)
    metric = _metric(request, snap)
    context = _base_context(request, campaign, snap, "leaderboard", source)
    drill = can_view_identity_rows(request.user)
    context.update(
        _scored(
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
    campaign = _campaign(request, campaign_id)
    source = _source(request)
    snap = _snapshot(request, campaign)
    metric = _metric(request, snap)
    context = _base_context(request, campaign, snap, "heatmap", source)
    drill = can_view_identity_rows(request.user)
    context.update(
        _scored(
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
    campaign = _campaign(request, campaign_id)
    source = _source(request)
    snap = _snapshot(request, campaign)
    context = _base_context(request, campaign, snap, "compare", source)
    context.update(
        _scored(
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
                    _scored(
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


def _page_number(request: AuthenticatedHttpRequest) -> str | None:
    return request.GET.get("page")


@login_required
@view_identity_rows
def rows(request: AuthenticatedHttpRequest, campaign_id: int) -> HttpResponse | StreamingHttpResponse:
    campaign = _campaign(request, campaign_id)
    source = _source(request)
    target, category = request.GET.get("target") or None, request.GET.get("category") or None
    file_format = request.GET.get("export") or ""
    if file_format and file_format not in drill_exports.FORMATS:
        raise Http404("No such format.")
    snap = _snapshot(request, campaign)
    metric = _metric(request, snap)
    context = _base_context(request, campaign, snap, "rows", source)
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
                items=[packed_item_id(row) for row in found],
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
    return _scored(
        snap,
        "score_rows",
        source,
        {"metric": metric, "target": target, "category": category},
        lambda bundle: score_rows_build(snap, bundle, metric, target, category),
        rows=True,
    )


def _field(snap: Snapshot, name: str | None) -> Any:
    specs = snap.cached("categorical_specs", lambda: snap.data.categorical_specs)
    if not specs:
        raise Http404("This rubric has no categorical field.")
    if not name:
        return snap.cached("default_field", lambda: default_field(snap.data)) or specs[0]
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
    snap = _snapshot(request, campaign)
    spec = _field(snap, request.GET.get("field"))
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
    by, window = _drift_params(request)
    stored = threshold_for(campaign=campaign)
    threshold = Threshold(stored.statistic, stored.minimum, stored.min_items) if stored else None
    threshold_field = stored.field_name if stored else ""
    drill = can_view_identity_rows(request.user)
    context = _base_context(request, campaign, snap, "agreement", LabelSource.GOLD)
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
@view_scores
def agreement_rows(
    request: AuthenticatedHttpRequest, campaign_id: int
) -> HttpResponse | StreamingHttpResponse:
    campaign = _campaign(request, campaign_id)
    if request.GET.get("model") and not can_view_identity_rows(request.user):
        raise PermissionDenied("Only maintainers may list the items of one model.")
    file_format = request.GET.get("export") or ""
    if file_format and file_format not in drill_exports.FORMATS:
        raise Http404("No such format.")
    snap = _snapshot(request, campaign)
    spec = _field(snap, request.GET.get("field"))
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
                items=[row["item"].item_id for row in found["rows"]],
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
    context = _base_context(request, campaign, snap, "agreement", LabelSource.GOLD)
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
        campaign = campaign_get_for_own_agreement(user=request.user, campaign_id=campaign_id)
    except Campaign.DoesNotExist as exc:
        if not request.user.has_perm("scoring.view_own_agreement"):
            raise PermissionDenied from exc
        raise Http404("No closed campaign of yours with this number.") from exc
    by, window = _drift_params(request)
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


# --- reports ----------------------------------------------------------------------------------------


@login_required
@view_scores
def report_list(request: AuthenticatedHttpRequest, campaign_id: int) -> HttpResponse:
    campaign = _campaign(request, campaign_id)
    context = _base_context(request, campaign, _snapshot(request, campaign), "reports", LabelSource.GOLD)
    context["reports"] = report_list_for_user(user=request.user, campaign=campaign)
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
        return report_get_for_user(user=request.user, report_id=report_id)
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
            "provenance": provenance_lines(payload),
            "tables": display_tables(payload),
            "table_names": table_names(payload),
        },
    )


@login_required
@view_scores
def report_download(request: AuthenticatedHttpRequest, report_id: int, file_format: str) -> HttpResponse:
    report = _report(request, report_id)
    stem = f"medharm-report-{report.pk}"
    if file_format == "json":
        return _download(report_json(report.payload), "application/json", f"{stem}.json")
    if file_format == "pdf":
        return _download(report_pdf(report.payload), "application/pdf", f"{stem}.pdf")
    if file_format == "zip":
        archive = report_zip(report.payload, report_pdf(report.payload))
        return _download(archive, "application/zip", f"{stem}.zip")
    raise Http404("No such format.")


@login_required
@view_scores
def report_table(request: AuthenticatedHttpRequest, report_id: int, name: str) -> HttpResponse:
    report = _report(request, report_id)
    if name not in report.payload["tables"]:
        raise Http404("No such table.")
    return _download(
        table_csv(report.payload, name),
        "text/csv; charset=utf-8",
        f"medharm-report-{report.pk}-{name}.csv",
    )
