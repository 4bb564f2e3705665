"""Data access pages, mounted at /access/: the researcher's profile, requests, downloads and tokens;
the committee's review queue, decisions and per-release access report."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from rules.contrib.views import permission_required

from access import selectors, services
from access.forms import CredentialDecisionForm, DecisionForm, ProfileForm, RequestForm, TokenForm
from access.models import AccessRequest, CredentialStatus, RequestStatus, ResearcherProfile, ResearcherToken
from accounts import policy
from accounts.http import AuthenticatedHttpRequest
from audit.context import meta_of
from audit.models import AuditEvent
from releases.models import Release
from releases.selectors import release_get_visible


def _form_errors(form: forms.BaseForm, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


@login_required
def dashboard(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The researcher's page: profile state, each request with its state, downloads, tokens."""
    user = request.user
    return render(
        request,
        "access/dashboard.html",
        {
            "profile": selectors.profile_for_user(user=user),
            "requests": selectors.request_list_for_researcher(user=user),
            "granted": selectors.grant_list_active(user=user).select_related("release"),
            "tokens": selectors.token_list_for_user(user=user),
            "can_apply": policy.can_apply_for_credentials(user),
            "can_request": policy.can_request_access(user),
        },
    )


@login_required
@permission_required("access.apply", raise_exception=True)
def profile(request: AuthenticatedHttpRequest) -> HttpResponse:
    current = selectors.profile_for_user(user=request.user)
    form = ProfileForm(request.POST or None, instance=current)
    if request.method == "POST" and form.is_valid():
        try:
            services.profile_save(actor=request.user, data=form.cleaned_data)
            if request.POST.get("apply"):
                services.credential_apply(actor=request.user)
                messages.success(request, "Your application is with the data committee.")
            else:
                messages.success(request, "Profile saved.")
            return redirect("access:dashboard")
        except ValidationError as exc:
            _form_errors(form, exc)
    locked = current is not None and current.status in (
        CredentialStatus.CREDENTIALED,
        CredentialStatus.SUSPENDED,
    )
    return render(
        request,
        "access/profile.html",
        {"form": form, "profile": current, "locked": locked},
        status=400 if form.errors else 200,
    )


def _request_page(
    request: AuthenticatedHttpRequest, release: Release, renews: AccessRequest | None
) -> HttpResponse:
    agreement = selectors.agreement_current()
    if agreement is None:
        raise Http404("No data use agreement has been published yet.")
    form = RequestForm(
        request.POST or None,
        initial={"agreement_version": agreement.version, "agreement_sha256": agreement.content_hash},
    )
    if request.method == "POST" and form.is_valid():
        meta = meta_of(request)
        try:
            if renews is not None:
                created = services.request_renew(
                    actor=request.user,
                    grant_id=renews.pk,
                    purpose=form.cleaned_data["purpose"],
                    agreement_version=form.cleaned_data["agreement_version"],
                    shown_hash=form.cleaned_data["agreement_sha256"],
                    ip_address=meta.ip_address,
                )
            else:
                created = services.request_submit(
                    actor=request.user,
                    release_id=release.pk,
                    purpose=form.cleaned_data["purpose"],
                    agreement_version=form.cleaned_data["agreement_version"],
                    shown_hash=form.cleaned_data["agreement_sha256"],
                    ip_address=meta.ip_address,
                )
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, "Request sent to the data committee.")
            return redirect("access:request_detail", request_id=created.pk)
    return render(
        request,
        "access/request_form.html",
        {
            "form": form,
            "release": release,
            "agreement": agreement,
            "renews": renews,
        },
        status=400 if form.errors else 200,
    )


@login_required
@permission_required("access.request", raise_exception=True)
def request_new(request: AuthenticatedHttpRequest, release_id: int) -> HttpResponse:
    try:
        release = release_get_visible(user=request.user, release_id=release_id)
    except Release.DoesNotExist as exc:
        raise Http404("No such release.") from exc
    return _request_page(request, release, None)


@login_required
@permission_required("access.request", raise_exception=True)
def request_renew(request: AuthenticatedHttpRequest, request_id: int) -> HttpResponse:
    try:
        grant = selectors.request_get_for_researcher(user=request.user, request_id=request_id)
    except AccessRequest.DoesNotExist as exc:
        raise Http404("No such request of yours.") from exc
    return _request_page(request, grant.release, grant)


@login_required
def request_detail(request: AuthenticatedHttpRequest, request_id: int) -> HttpResponse:
    try:
        access_request = selectors.request_get_for_researcher(user=request.user, request_id=request_id)
    except AccessRequest.DoesNotExist as exc:
        raise Http404("No such request of yours.") from exc
    return render(request, "access/request_detail.html", {"access_request": access_request})


@login_required
def tokens(request: AuthenticatedHttpRequest) -> HttpResponse:
    granted = selectors.release_list_restricted_for_user(user=request.user)
    form = TokenForm(request.POST or None, releases=granted)
    issued = None
    if request.method == "POST" and form.is_valid():
        try:
            issued = services.token_issue(
                actor=request.user,
                name=form.cleaned_data["name"],
                release_ids=[r.pk for r in form.cleaned_data["releases"]],
                days=form.cleaned_data["days"],
            )
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            form = TokenForm(releases=granted)
    response = render(
        request,
        "access/tokens.html",
        {
            "form": form,
            "issued": issued,
            "tokens": selectors.token_list_for_user(user=request.user),
        },
        status=400 if form.errors else 200,
    )
    response["Cache-Control"] = "no-store"  # the page may show a token once
    return response


@login_required
@require_POST
def token_revoke(request: AuthenticatedHttpRequest, token_id: int) -> HttpResponse:
    try:
        services.token_revoke(actor=request.user, token_id=token_id)
    except ResearcherToken.DoesNotExist as exc:
        raise Http404("No such token of yours.") from exc
    messages.success(request, "Token revoked.")
    return redirect("access:tokens")


# --- The data committee -----------------------------------------------------------------------


@login_required
def review_queue(request: AuthenticatedHttpRequest) -> HttpResponse:
    requests = selectors.request_list_for_reviewer(user=request.user)
    can_credentials = policy.can_review_credentials(request.user)
    if not can_credentials and not requests.exists() and not request.user.reviewed_releases.exists():
        raise PermissionDenied("Only the data committee and delegated reviewers review requests.")
    return render(
        request,
        "access/review_queue.html",
        {
            "pending": requests.filter(status=RequestStatus.PENDING).order_by("created_at"),
            "decided": requests.exclude(status=RequestStatus.PENDING).order_by("-decided_at")[:50],
            "applications": selectors.profile_list_for_review().filter(status=CredentialStatus.PENDING)
            if can_credentials
            else None,
            "credentialed": selectors.profile_list_for_review().exclude(status=CredentialStatus.PENDING)
            if can_credentials
            else None,
        },
    )


@login_required
@permission_required("access.review_credentials", raise_exception=True)
def credential_review(request: AuthenticatedHttpRequest, profile_id: int) -> HttpResponse:
    try:
        profile = selectors.profile_list_for_review().get(pk=profile_id)
    except ResearcherProfile.DoesNotExist as exc:
        raise Http404("No such application.") from exc
    form = CredentialDecisionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        decision, reason = form.cleaned_data["decision"], form.cleaned_data["reason"]
        try:
            if decision == "suspend":
                services.credential_suspend(actor=request.user, profile_id=profile.pk, reason=reason)
            else:
                services.credential_decide(
                    actor=request.user, profile_id=profile.pk, accept=decision == "accept", reason=reason
                )
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, "Decision recorded; the researcher is told by e-mail.")
            return redirect("access:review_queue")
    return render(
        request,
        "access/credential_review.html",
        {"profile": profile, "form": form},
        status=400 if form.errors else 200,
    )


@login_required
def request_review(request: AuthenticatedHttpRequest, request_id: int) -> HttpResponse:
    try:
        access_request = selectors.request_get_for_reviewer(user=request.user, request_id=request_id)
    except AccessRequest.DoesNotExist as exc:
        raise Http404("No such request to review.") from exc
    form = DecisionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        decision, reason = form.cleaned_data["decision"], form.cleaned_data["reason"]
        try:
            if decision == "approve":
                services.request_approve(
                    actor=request.user, request_id=access_request.pk, expires_at=form.expires_at()
                )
            elif decision == "reject":
                services.request_reject(actor=request.user, request_id=access_request.pk, reason=reason)
            else:
                services.request_revoke(actor=request.user, request_id=access_request.pk, reason=reason)
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, "Decision recorded; the researcher is told by e-mail.")
            return redirect("access:review_queue")
    profile = selectors.profile_for_user(user=access_request.researcher)
    return render(
        request,
        "access/request_review.html",
        {
            "access_request": access_request,
            "profile": profile,
            "form": form,
        },
        status=400 if form.errors else 200,
    )


@login_required
def access_report(request: AuthenticatedHttpRequest, release_id: int) -> HttpResponse:
    """Who holds or held access to a release, and every access event on it."""
    try:
        release = release_get_visible(user=request.user, release_id=release_id)
    except Release.DoesNotExist as exc:
        raise Http404("No such release.") from exc
    if not policy.can_review_access(request.user, release):
        raise PermissionDenied("Only the data committee and this release's reviewers see its access report.")
    grants = (
        selectors.request_list_for_reviewer(user=request.user).filter(release=release).order_by("-created_at")
    )
    events = (
        AuditEvent.objects.filter(target_type="releases.release", target_id=str(release.pk))
        .select_related("actor")
        .order_by("-created_at", "-id")[:500]
    )
    return render(
        request, "access/access_report.html", {"release": release, "grants": grants, "events": events}
    )
