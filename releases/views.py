"""Release pages, mounted at /releases/: the list, a release with its files and build progress,
cutting a release, approving its public tier, previews of restricted tables, and gated downloads."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from rules.contrib.views import permission_required

from accounts import policy
from accounts.http import AuthenticatedHttpRequest, signed_in_user
from audit.actions import AuditAction
from releases import selectors
from releases.access_hooks import HOOKS
from releases.downloads import file_response, table_rows
from releases.forms import ReleaseCutForm
from releases.models import Release, ReleaseFile, ReleaseStatus, Tier
from releases.models.releases import DATASHEET_SECTIONS
from releases.services import release_access_record, release_cut, release_public_approve

PREVIEW_ROWS = 50


def _release(request: HttpRequest, release_id: int) -> Release:
    try:
        return selectors.release_get_visible(user=request.user, release_id=release_id)
    except Release.DoesNotExist as exc:
        raise Http404("No such release.") from exc


def release_list(request: HttpRequest) -> HttpResponse:
    releases = selectors.release_list_visible(user=request.user).order_by("slug", "-version")
    granted = set(selectors.release_list_restricted_for_user(user=request.user).values_list("pk", flat=True))
    return render(
        request,
        "releases/release_list.html",
        {
            "releases": releases,
            "granted": granted,
            "can_cut": policy.can_cut_releases(request.user),
        },
    )


def release_detail(request: HttpRequest, release_id: int) -> HttpResponse:
    release = _release(request, release_id)
    user = request.user
    can_restricted = policy.can_access_restricted(user, release)
    context = {
        "release": release,
        "datasheet": [(question, release.datasheet.get(key, "")) for key, question in DATASHEET_SECTIONS],
        "public_files": selectors.file_list_for_release(release=release, tier=Tier.PUBLIC)
        if policy.can_read_public_tier(user, release)
        else None,
        "restricted_files": selectors.file_list_for_release(release=release, tier=Tier.RESTRICTED)
        if can_restricted
        else None,
        "can_restricted": can_restricted,
        "can_publish": policy.can_approve_public_tier(user)
        and release.status == ReleaseStatus.READY
        and release.public_approved_at is None,
        "can_request": policy.can_request_access(user) and release.status == ReleaseStatus.READY,
        "can_review": policy.can_review_access(user, release),
        "agreement": HOOKS.agreement_current(),
    }
    if can_restricted and release.status == ReleaseStatus.READY:
        # can_access_restricted holds only for an active, signed-in user: this refuses no one.
        release_access_record(
            actor=signed_in_user(request),
            action=AuditAction.RELEASE_VIEW,
            release=release,
            details={"page": "release"},
        )
    return render(request, "releases/release_detail.html", context)


def release_progress(request: HttpRequest, release_id: int) -> HttpResponse:
    release = _release(request, release_id)
    return render(request, "releases/_progress.html", {"release": release})


@login_required
@permission_required("releases.cut", raise_exception=True)
def release_new(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = ReleaseCutForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            release = release_cut(
                actor=request.user,
                slug=form.cleaned_data["slug"],
                title=form.cleaned_data["title"],
                changelog=form.cleaned_data["changelog"],
                datasheet=form.datasheet(),
                campaign_ids=[c.pk for c in form.cleaned_data["campaigns"]],
                sample_query_ids=form.cleaned_data["sample_query_ids"],
                reviewer_ids=[u.pk for u in form.cleaned_data["reviewers"]],
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, f"Release {release} is being built.")
            return redirect("releases:detail", release_id=release.pk)
    return render(request, "releases/release_new.html", {"form": form}, status=400 if form.errors else 200)


@login_required
@require_POST
def release_publish(request: AuthenticatedHttpRequest, release_id: int) -> HttpResponse:
    release = _release(request, release_id)
    try:
        release_public_approve(actor=request.user, release_id=release.pk)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "The public tier is published: anyone can download it now.")
    return redirect("releases:detail", release_id=release.pk)


def file_download(request: HttpRequest, release_id: int, name: str) -> HttpResponseBase:
    """A release file. The fast path of a granted download: one query finds the file and its
    release, one asks for the caller's active grant; one audit event; then the web server sends it."""
    user = request.user
    try:
        release_file = selectors.file_get_for_download(release_id=release_id, name=name)
    except ReleaseFile.DoesNotExist as exc:
        raise Http404("No such file in this release.") from exc
    release = release_file.release
    granted = policy.can_access_restricted(user, release)
    if not granted and not selectors.release_visible(user=user, release=release):
        raise Http404("No such release.")
    allowed = policy.can_read_public_tier(user, release) if release_file.tier == Tier.PUBLIC else granted
    if not allowed:
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        raise PermissionDenied("You have no active access grant on this release.")
    if release_file.tier == Tier.RESTRICTED:
        # Granted only to an active, signed-in user: this refuses no one.
        release_access_record(
            actor=signed_in_user(request),
            action=AuditAction.FILE_DOWNLOAD,
            release=release,
            details={
                "file": release_file.name,
                "sha256": release_file.sha256,
                "channel": "page",
                "range": request.headers.get("Range", ""),
            },
        )
    return file_response(request, release_file)


@login_required
def table_preview(request: AuthenticatedHttpRequest, release_id: int, table: str) -> HttpResponse:
    release = _release(request, release_id)
    if not policy.can_access_restricted(request.user, release):
        raise PermissionDenied("You have no active access grant on this release.")
    try:
        release_file = selectors.table_parquet(release=release, table=table)
    except ReleaseFile.DoesNotExist as exc:
        raise Http404("No such table in this release.") from exc
    rows, total = table_rows(release_file, offset=0, limit=PREVIEW_ROWS)
    release_access_record(
        actor=request.user,
        action=AuditAction.RELEASE_VIEW,
        release=release,
        details={"page": "preview", "table": table, "rows": len(rows)},
    )
    columns = list(rows[0]) if rows else []
    return render(
        request,
        "releases/table_preview.html",
        {
            "release": release,
            "table": table,
            "columns": columns,
            "rows": [[row[c] for c in columns] for row in rows],
            "total": total,
        },
    )
