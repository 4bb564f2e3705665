"""Query bank pages: browse (htmx-filtered list), detail, import and export for maintainers."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_http_methods
from rules.contrib.views import permission_required

from accounts.http import AuthenticatedHtmxHttpRequest, AuthenticatedHttpRequest
from core.errors import Conflict
from core.imports import ImportRejected
from querybank import services
from querybank.exporters import EXPORT_FORMATS, export_stream
from querybank.forms import CategoryForm, QueryFilterForm, QueryImportForm, TaxonomyFileForm, TaxonomyForm
from querybank.importers import read_taxonomy_file
from querybank.models import Category, Query, Taxonomy
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
            taxonomy_file = form.taxonomy_file()
            taxonomy = None if taxonomy_file is None else read_taxonomy_file(*taxonomy_file)
            result = queries_import(
                files=form.named_files(),
                file_format=form.cleaned_data["file_format"],
                actor=request.user,
                taxonomy=taxonomy,
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


# --- taxonomies and categories --------------------------------------------------------------------


@login_required
@permission_required("querybank.manage_taxonomies", raise_exception=True)
@require_http_methods(["GET", "POST"])
def taxonomy_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Every taxonomy with its categories in order; new taxonomies by hand or from a file."""
    form = TaxonomyForm(request.POST if request.POST.get("action") == "create" else None)
    file_form = TaxonomyFileForm(
        request.POST if request.POST.get("action") == "import" else None, request.FILES or None
    )
    problems = None
    if request.method == "POST":
        try:
            if request.POST.get("action") == "import" and file_form.is_valid():
                (name, raw), *_ = file_form.named_files()
                taxonomy = services.taxonomy_import(actor=request.user, spec=read_taxonomy_file(name, raw))
                messages.success(request, f"Imported taxonomy {taxonomy.name}.")
                return redirect("querybank:taxonomy_list")
            if request.POST.get("action") == "create" and form.is_valid():
                taxonomy = services.taxonomy_create(actor=request.user, **form.cleaned_data)
                messages.success(request, f"Created taxonomy {taxonomy.name}.")
                return redirect("querybank:taxonomy_list")
        except ImportRejected as error:
            problems = error.problems
        except ValidationError as error:
            form.add_error(None, error)
    taxonomies = Taxonomy.objects.prefetch_related("categories").annotate(
        queries=Count("categories__queries")
    )
    counts = dict(Category.objects.annotate(n=Count("queries")).values_list("pk", "n"))
    status = 400 if request.method == "POST" else 200
    context = {
        "taxonomies": taxonomies,
        "counts": counts,
        "form": form,
        "file_form": file_form,
        "problems": problems,
        "category_form": CategoryForm(),
    }
    return render(request, "querybank/taxonomy_list.html", context, status=status)


@login_required
@permission_required("querybank.manage_taxonomies", raise_exception=True)
@require_http_methods(["POST"])
def taxonomy_change(request: AuthenticatedHttpRequest, taxonomy_id: int) -> HttpResponse:
    """Rename, retire, bring back or delete a taxonomy, or add a category to it."""
    taxonomy = get_object_or_404(Taxonomy, pk=taxonomy_id)
    action = request.POST.get("action", "")
    try:
        if action in ("retire", "restore"):
            services.taxonomy_update(actor=request.user, taxonomy=taxonomy, retired=action == "retire")
        elif action == "rename":
            form = TaxonomyForm({"slug": taxonomy.slug, **request.POST.dict()})
            if not form.is_valid():
                raise ValidationError(form.errors.as_text())
            services.taxonomy_update(
                actor=request.user,
                taxonomy=taxonomy,
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
            )
        elif action == "delete":
            services.taxonomy_delete(actor=request.user, taxonomy=taxonomy)
        elif action == "add-category":
            category_form = CategoryForm(request.POST)
            if not category_form.is_valid() or not category_form.cleaned_data["slug"]:
                raise ValidationError(category_form.errors.as_text() or "A new category needs a slug.")
            services.category_create(actor=request.user, taxonomy=taxonomy, **category_form.cleaned_data)
        else:
            raise Http404("Unknown action.")
    except (ValidationError, Conflict) as error:
        messages.error(request, _message(error))
    return redirect("querybank:taxonomy_list")


@login_required
@permission_required("querybank.manage_taxonomies", raise_exception=True)
@require_http_methods(["POST"])
def category_change(request: AuthenticatedHttpRequest, category_id: int) -> HttpResponse:
    """Rename, reorder, retire, bring back or delete a category."""
    category = get_object_or_404(Category, pk=category_id)
    action = request.POST.get("action", "")
    try:
        if action in ("retire", "restore"):
            services.category_update(actor=request.user, category=category, retired=action == "retire")
        elif action == "save":
            form = CategoryForm(request.POST)
            if not form.is_valid():
                raise ValidationError(form.errors.as_text())
            data = {k: v for k, v in form.cleaned_data.items() if k != "slug"}
            services.category_update(actor=request.user, category=category, **data)
        elif action in ("up", "down"):
            services.category_update(
                actor=request.user,
                category=category,
                position=max(0, category.position + (-1 if action == "up" else 1)),
            )
        elif action == "delete":
            services.category_delete(actor=request.user, category=category)
        else:
            raise Http404("Unknown action.")
    except (ValidationError, Conflict) as error:
        messages.error(request, _message(error))
    return redirect("querybank:taxonomy_list")


def _message(error: ValidationError | Conflict) -> str:
    if isinstance(error, ValidationError):
        return "; ".join(error.messages)
    return str(error.detail)
