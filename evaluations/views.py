"""Collection pages: the registry, runs with live progress, and the response browser."""

from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from rules.contrib.views import permission_required

from evaluations import services
from evaluations.exporters import RESPONSE_EXPORT_FORMATS, responses_export_stream
from evaluations.forms import EndpointForm, PipelineForm, RunForm
from evaluations.models import CollectionRun, ModelResponse, ResponseOutcome
from evaluations.selectors import (
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


def _run_or_404(request: HttpRequest, run_id: int) -> CollectionRun:
    try:
        return run_get_for_user(user=request.user, run_id=run_id)
    except CollectionRun.DoesNotExist as exc:
        raise Http404("No such run.") from exc


@login_required
@manage
def registry(request: HttpRequest) -> HttpResponse:
    return render(request, "evaluations/registry.html", {
        "endpoints": endpoint_list_for_user(user=request.user),
        "pipelines": pipeline_list_for_user(user=request.user),
    })


@login_required
@manage
def endpoint_create(request: HttpRequest) -> HttpResponse:
    form = EndpointForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            endpoint = services.endpoint_create(actor=request.user, **form.cleaned_data)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"Registered {endpoint}.")
            return redirect("evaluations:registry")
    return render(request, "evaluations/endpoint_form.html", {"form": form})


@login_required
@manage
def pipeline_create(request: HttpRequest) -> HttpResponse:
    form = PipelineForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            pipeline = services.pipeline_create(actor=request.user, **form.cleaned_data)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"Created pipeline {pipeline}.")
            return redirect("evaluations:registry")
    return render(request, "evaluations/pipeline_form.html", {"form": form})


@login_required
@manage
def run_list(request: HttpRequest) -> HttpResponse:
    runs = run_list_for_user(user=request.user)
    return render(request, "evaluations/run_list.html", {"runs": runs})


@login_required
@manage
def run_create(request: HttpRequest) -> HttpResponse:
    form = RunForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        queries, selection = form.selected_queries(query_list_for_user(user=request.user))
        try:
            run = services.run_create(
                actor=request.user, name=form.cleaned_data["name"], queries=queries, targets=form.targets(),
                samples=form.cleaned_data["samples"], parameters=form.parameters(), selection=selection,
                concurrency=form.cleaned_data["concurrency"], max_attempts=form.cleaned_data["max_attempts"],
            )
            if "start" in request.POST:
                services.run_start(run=run, actor=request.user)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            return redirect("evaluations:run_detail", run_id=run.pk)
    return render(request, "evaluations/run_form.html", {"form": form})


@login_required
@manage
def run_detail(request: HttpRequest, run_id: int) -> HttpResponse:
    run = _run_or_404(request, run_id)
    context = {"run": run, "progress": run_progress(run=run), "targets": run.targets.all()}
    template = "evaluations/_run_progress.html" if request.htmx else "evaluations/run_detail.html"
    return render(request, template, context)


def _run_action(action: Callable[..., object], done: str) -> Callable[[HttpRequest, int], HttpResponse]:
    @login_required
    @manage
    @require_POST
    def view(request: HttpRequest, run_id: int) -> HttpResponse:
        run = _run_or_404(request, run_id)
        try:
            action(run=run, actor=request.user)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, done)
        return redirect("evaluations:run_detail", run_id=run.pk)

    return view


run_start = _run_action(services.run_start, "Run started.")
run_pause = _run_action(services.run_pause, "Run paused: items in flight finish, nothing new starts.")
run_resume = _run_action(services.run_resume, "Run resumed: only the missing items will be collected.")
run_cancel = _run_action(services.run_cancel, "Run cancelled.")
run_retry_failed = _run_action(services.run_retry_failed, "Failed items queued again.")


@login_required
@manage
def response_list(request: HttpRequest, run_id: int) -> HttpResponse:
    run = _run_or_404(request, run_id)
    filters = {
        "target_id": int(request.GET["target"]) if request.GET.get("target", "").isdigit() else None,
        "category_slug": request.GET.get("category", ""),
        "outcome": request.GET.get("outcome", ""),
    }
    responses = response_list_for_user(user=request.user, run_id=run.pk, **filters)
    page = Paginator(responses, 50).get_page(request.GET.get("page"))
    return render(request, "evaluations/response_list.html", {
        "run": run, "page": page, "filters": filters, "targets": run.targets.all(),
        "categories": category_list_for_user(user=request.user), "outcomes": ResponseOutcome.choices[1:],
    })


@login_required
@manage
def response_detail(request: HttpRequest, run_id: int, response_id: int) -> HttpResponse:
    try:
        response = response_get_for_user(user=request.user, run_id=run_id, response_id=response_id)
    except ModelResponse.DoesNotExist as exc:
        raise Http404("No such response.") from exc
    return render(request, "evaluations/response_detail.html", {"response": response, "run": response.run})


@login_required
@manage
def response_export(request: HttpRequest, run_id: int, file_format: str) -> StreamingHttpResponse:
    run = _run_or_404(request, run_id)
    if file_format not in RESPONSE_EXPORT_FORMATS:
        raise Http404("Unknown export format.")
    responses = response_list_for_user(user=request.user, run_id=run.pk)
    stream = StreamingHttpResponse(
        responses_export_stream(responses=responses, file_format=file_format),
        content_type=RESPONSE_EXPORT_FORMATS[file_format],
    )
    stream["Content-Disposition"] = f'attachment; filename="run-{run.pk}-responses.{file_format}"'
    return stream
