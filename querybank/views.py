"""Query bank pages: browse (htmx-filtered list), detail, import and export for maintainers."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_http_methods
from rules.contrib.views import permission_required

from accounts.http import AuthenticatedHtmxHttpRequest, AuthenticatedHttpRequest
from core.imports import ImportRejected
from querybank.exporters import EXPORT_FORMATS, export_stream
from querybank.forms import QueryFilterForm, QueryImportForm
from querybank.models import Query
from querybank.selectors import category_list_for_user, is_masked, query_get_for_user, query_list_for_user
from querybank.services import queries_import

PAGE_SIZE = 25


@login_required
@permission_required("querybank.read_query_text", raise_exception=True)
def query_list(request: AuthenticatedHtmxHttpRequest) -> HttpResponse:
    categories = category_list_for_user(user=request.user).order_by("taxonomy_id", "position", "name")
    form = QueryFilterForm(request.GET or None, categories=categories)
    filters = form.cleaned_filters() if form.is_valid() else {}
    queries = query_list_for_user(user=request.user, **filters)
    page = Paginator(queries, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "form": form,
        "page": page,
        "total": page.paginator.count,
        "page_range": page.paginator.get_elided_page_range(page.number, on_each_side=2, on_ends=1),
    }
    # htmx swaps only the table; a history restore or a plain request needs the whole page.
    partial = request.htmx and not request.htmx.history_restore_request
    template = "querybank/_query_table.html" if partial else "querybank/query_list.html"
    response = render(request, template, context)
    # The same URL answers with a fragment or a page: caches must key on the htmx header.
    patch_vary_headers(response, ("HX-Request",))
    return response


@login_required
@permission_required("querybank.read_query_text", raise_exception=True)
def query_detail(request: AuthenticatedHttpRequest, query_id: int) -> HttpResponse:
    try:
        query = query_get_for_user(user=request.user, query_id=query_id)
    except Query.DoesNotExist as exc:
        raise Http404("No such query.") from exc
    # The edit history of a query in the user's open blind campaign would show its gold label arrive.
    history = [] if is_masked(query) else query.history.select_related("history_user").all()[:20]
    return render(request, "querybank/query_detail.html", {"query": query, "history": history})


@login_required
@permission_required("querybank.run_import", raise_exception=True)
@require_http_methods(["GET", "POST"])
def query_import(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = QueryImportForm(request.POST or None, request.FILES or None)
    problems = None
    if request.method == "POST" and form.is_valid():
        try:
            result = queries_import(
                files=form.named_files(), file_format=form.cleaned_data["file_format"], actor=request.user
            )
        except ImportRejected as error:
            problems = error.problems
        else:
            messages.success(
                request,
                f"Imported {len(result.files)} file(s): {result.created} new, {result.updated} updated, "
                f"{result.unchanged} unchanged.",
            )
            return redirect("querybank:query_list")
    rejected = problems or (request.method == "POST" and not form.is_valid())
    status = 400 if rejected else 200
    return render(request, "querybank/query_import.html", {"form": form, "problems": problems}, status=status)


@login_required
@permission_required("querybank.run_export", raise_exception=True)
def query_export(request: AuthenticatedHttpRequest, file_format: str) -> StreamingHttpResponse:
    if file_format not in EXPORT_FORMATS:
        raise Http404("Unknown export format.")
    queries = query_list_for_user(user=request.user)
    response = StreamingHttpResponse(
        export_stream(queries=queries, file_format=file_format), content_type=EXPORT_FORMATS[file_format]
    )
    response["Content-Disposition"] = f'attachment; filename="medharm-queries.{file_format}"'
    return response
