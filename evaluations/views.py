"""Collection pages: the registry, runs with live progress, and the response browser."""

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.forms import BaseForm
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from rules.contrib.views import permission_required

from accounts.http import AuthenticatedHtmxHttpRequest, AuthenticatedHttpRequest
from evaluations import services
from evaluations.exporters import RESPONSE_EXPORT_FORMATS, responses_export_chunks
from evaluations.forms import EndpointForm, PipelineForm, RunForm
from evaluations.models import CollectionRun, ModelResponse, ResponseOutcome, RunStatus
from evaluations.selectors import (
    RunProgress,
    endpoint_list_for_user,
    pipeline_list_for_user,
    response_get_for_user,
    response_list_for_user,
    run_get_for_user,
    run_list_for_user,
    run_progress,
)
from querybank.selectors import category_list_for_user, query_list_for_user

manage = permission_required("evaluations.manage_collection", raise_exception=True)

RUNS_PER_PAGE = 25
RESPONSES_PER_PAGE = 50
BAR_WIDTH = 1000  # SVG user units; the bar scales to its box
PARAMETER_LABELS = {
    "temperature": "Temperature",
    "top_p": "Top p",
    "max_tokens": "Max tokens",
    "seed": "Seed",
    "system_prompt": "System prompt",
}


def _run_or_404(request: AuthenticatedHttpRequest, run_id: int) -> CollectionRun:
    try:
        return run_get_for_user(user=request.user, run_id=run_id)
    except CollectionRun.DoesNotExist as exc:
        raise Http404("No such run.") from exc


def _service_errors(form: BaseForm, error: ValidationError) -> None:
    """Show a service's ValidationError on the form: on its field when the form has one, else on top
    (``add_error`` refuses a dict naming a field the form lacks, e.g. ``queries``)."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for name, errors in error.error_dict.items():
        form.add_error(name if name in form.fields else None, errors)


# ---- Registry ---------------------------------------------------------------------------------
@login_required
@manage
def registry(request: AuthenticatedHttpRequest) -> HttpResponse:
    return render(
        request,
        "evaluations/registry.html",
        {
            "endpoints": endpoint_list_for_user(user=request.user).select_related("base_model"),
            "pipelines": pipeline_list_for_user(user=request.user),
        },
    )


@login_required
@manage
def endpoint_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = EndpointForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            endpoint = services.endpoint_create(actor=request.user, **form.cleaned_data)
        except ValidationError as error:
            _service_errors(form, error)
        else:
            messages.success(request, f"Registered the endpoint “{endpoint}”.")
            return redirect("evaluations:registry")
    return render(request, "evaluations/endpoint_form.html", {"form": form})


@login_required
@manage
def pipeline_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = PipelineForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            pipeline = services.pipeline_create(actor=request.user, **form.cleaned_data)
        except ValidationError as error:
            _service_errors(form, error)
        else:
            messages.success(request, f"Created the pipeline “{pipeline}”.")
            return redirect("evaluations:registry")
    return render(request, "evaluations/pipeline_form.html", {"form": form})


# ---- Runs -------------------------------------------------------------------------------------
@login_required
@manage
def run_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    runs = run_list_for_user(user=request.user).prefetch_related("targets")
    page = Paginator(runs, RUNS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "evaluations/run_list.html", {"page": page})


@login_required
@manage
def run_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = RunForm(request.POST or None, queries=query_list_for_user(user=request.user))
    if request.method == "POST" and form.is_valid():
        try:
            run = services.run_create(actor=request.user, **form.run_arguments())
        except ValidationError as error:
            _service_errors(form, error)
        else:
            messages.success(request, f"Created the run “{run}”.")
            if "start" in request.POST:
                try:
                    services.run_start(run=run, actor=request.user)
                except ValidationError as error:
                    messages.error(request, " ".join(error.messages))
            return redirect("evaluations:run_detail", run_id=run.pk)
    return render(request, "evaluations/run_form.html", {"form": form})


@dataclass(frozen=True)
class OutcomeRow:
    """One line of the outcome table and one segment of the outcome bar."""

    key: str
    label: str
    count: int
    share: float  # of all items, in percent
    x: int
    width: int
    filterable: bool  # a finished outcome the response list can filter on


def _outcome_rows(progress: RunProgress) -> list[OutcomeRow]:
    counts = [
        (o.value, o.label, progress.by_outcome.get(o.value, 0), True) for o in ResponseOutcome if o.value
    ]
    counts += [
        ("in_flight", "Leased", progress.leased, False),
        ("pending", "Pending", progress.pending, False),
    ]
    rows, done = [], 0
    for key, label, count, filterable in counts:
        # Edges are rounded from the running total, so the segments always add up to the full width.
        x = round(done * BAR_WIDTH / progress.total) if progress.total else 0
        done += count
        end = round(done * BAR_WIDTH / progress.total) if progress.total else 0
        share = 100.0 * count / progress.total if progress.total else 0.0
        rows.append(OutcomeRow(key, str(label), count, share, x, end - x, filterable))
    return rows


@login_required
@manage
def run_detail(request: AuthenticatedHtmxHttpRequest, run_id: int) -> HttpResponse:
    run = _run_or_404(request, run_id)
    if run.status == RunStatus.RUNNING:
        services.collection_supervise_locally()  # no broker: a run watched is a run kept going
    progress = run_progress(run=run)
    context: dict[str, Any] = {
        "run": run,
        "progress": progress,
        "outcomes": _outcome_rows(progress),
        "bar_width": BAR_WIDTH,
    }
    if request.htmx:
        # The poll says which status its page shows; when that changed, the head with its buttons
        # is swapped too (out of band), so a finished run never offers "Pause".
        context["status_changed"] = request.GET.get("seen") != run.status
        return render(request, "evaluations/_run_progress.html", context)
    context["targets"] = run.targets.all()
    # In a fixed order: the JSON column keeps keys in its own order, not the form's.
    context["parameters"] = [
        (label, key, run.parameters[key]) for key, label in PARAMETER_LABELS.items() if key in run.parameters
    ]
    return render(request, "evaluations/run_detail.html", context)


def _run_action(
    action: Callable[..., Any], done: str | Callable[[Any], str]
) -> Callable[[AuthenticatedHttpRequest, int], HttpResponse]:
    @login_required
    @manage
    @require_POST
    def view(request: AuthenticatedHttpRequest, run_id: int) -> HttpResponse:
        run = _run_or_404(request, run_id)
        try:
            result = action(run=run, actor=request.user)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, done(result) if callable(done) else done)
        return redirect("evaluations:run_detail", run_id=run.pk)

    return view


run_start = _run_action(services.run_start, "Run started.")
run_pause = _run_action(services.run_pause, "Run paused: items in flight finish, nothing new starts.")
run_resume = _run_action(services.run_resume, "Run resumed: only the missing items will be collected.")
_run_cancel = _run_action(services.run_cancel, "Run cancelled.")


@login_required
@manage
def run_cancel(request: AuthenticatedHttpRequest, run_id: int) -> HttpResponse:
    """GET asks for confirmation (a cancelled run cannot be resumed); POST cancels."""
    if request.method == "POST":
        return _run_cancel(request, run_id)
    run = _run_or_404(request, run_id)
    detail = reverse("evaluations:run_detail", args=[run.pk])
    return render(
        request,
        "includes/confirm.html",
        {
            "confirm_title": f"Cancel the run {run.name}",
            "consequences": [
                "Items not yet collected are never sent; items in flight finish and are kept.",
                "Responses already collected stay, with their requests and costs.",
                "A cancelled run cannot be resumed: collecting the rest takes a new run.",
            ],
            "confirm_button": "Cancel the run",
            "action_url": reverse("evaluations:run_cancel", args=[run.pk]),
            "back_url": detail,
            "back_label": run.name,
        },
    )


def _retried(count: int) -> str:
    if not count:
        return "No failed items to retry."
    return f"{count} failed item{'s' if count != 1 else ''} queued again."


run_retry_failed = _run_action(services.run_retry_failed, _retried)


# ---- Responses --------------------------------------------------------------------------------
def _response_filters(request: AuthenticatedHttpRequest) -> dict[str, Any]:
    target = request.GET.get("target", "")
    return {
        "target_id": int(target) if target.isdigit() else None,
        "category_slug": request.GET.get("category", ""),
        "outcome": request.GET.get("outcome", ""),
    }


@login_required
@manage
def response_list(request: AuthenticatedHttpRequest, run_id: int) -> HttpResponse:
    run = _run_or_404(request, run_id)
    filters = _response_filters(request)
    responses = response_list_for_user(user=request.user, run_id=run.pk, **filters)
    page = Paginator(responses, RESPONSES_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "evaluations/response_list.html",
        {
            "run": run,
            "page": page,
            "filters": filters,
            "targets": run.targets.all(),
            "page_range": page.paginator.get_elided_page_range(page.number, on_each_side=2, on_ends=1),
            "categories": category_list_for_user(user=request.user),
            "outcomes": ResponseOutcome.choices[1:],
            "filtered": any(filters.values()),
        },
    )


def _pretty(value: object) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


@login_required
@manage
def response_detail(request: AuthenticatedHttpRequest, run_id: int, response_id: int) -> HttpResponse:
    try:
        response = response_get_for_user(user=request.user, run_id=run_id, response_id=response_id)
    except ModelResponse.DoesNotExist as exc:
        raise Http404("No such response.") from exc
    guards = [
        {
            "stage": stage,
            "verdict": verdict,
            "request": _pretty(verdict.get("request")),
            "errors": verdict.get("errors") or [],
        }
        for stage, verdict in (("Input guard", response.input_guard), ("Output guard", response.output_guard))
        if verdict
    ]
    return render(
        request,
        "evaluations/response_detail.html",
        {
            "response": response,
            "run": response.run,
            "guards": guards,
            "request_json": _pretty(response.request),
            "raw_reply_json": _pretty(response.raw_reply),
        },
    )


@login_required
@manage
def response_export(
    request: AuthenticatedHttpRequest, run_id: int, file_format: str
) -> StreamingHttpResponse:
    run = _run_or_404(request, run_id)
    if file_format not in RESPONSE_EXPORT_FORMATS:
        raise Http404("Unknown export format.")
    # The response list's filters apply here too: "export what I am looking at".
    responses = response_list_for_user(user=request.user, run_id=run.pk, **_response_filters(request))
    stream = StreamingHttpResponse(
        responses_export_chunks(responses=responses, file_format=file_format),
        content_type=RESPONSE_EXPORT_FORMATS[file_format],
    )
    stream["Content-Disposition"] = f'attachment; filename="run-{run.pk}-responses.{file_format}"'
    return stream
