"""Campaign reports: the list, a new report (maintainers), a report's page and its downloads."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.http import AuthenticatedHttpRequest
from accounts.policy import can_manage_scores
from scoring.forms import ReportForm
from scoring.models import Report
from scoring.reports.display import display_tables, provenance_lines
from scoring.reports.files import report_json, report_zip, table_csv, table_names
from scoring.reports.pdf import report_pdf
from scoring.resolution import LabelSource
from scoring.selectors.campaigns import report_get_for_user, report_list_for_user
from scoring.services import report_create
from scoring.views.base import (
    base_context,
    campaign_or_404,
    error_text,
    manage_scores,
    snapshot_of,
    view_scores,
)


@login_required
@view_scores
def report_list(request: AuthenticatedHttpRequest, campaign_id: int) -> HttpResponse:
    campaign = campaign_or_404(request, campaign_id)
    context = base_context(request, campaign, snapshot_of(request, campaign), "reports", LabelSource.GOLD)
    context["reports"] = report_list_for_user(user=request.user, campaign=campaign)
    if can_manage_scores(request.user):
        context["report_form"] = ReportForm()
    return render(request, "scoring/report_list.html", context)


@login_required
@manage_scores
@require_POST
def report_new(request: AuthenticatedHttpRequest, campaign_id: int) -> HttpResponse:
    campaign = campaign_or_404(request, campaign_id)
    form = ReportForm(request.POST)
    if not form.is_valid():
        messages.error(
            request,
            "The report was not made: "
            + "; ".join(f"{name}: {error_text(errors)}" for name, errors in form.errors.items()),
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
