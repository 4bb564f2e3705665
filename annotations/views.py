"""Annotation pages: the annotator's screen (htmx), campaigns, adjudication, unblinding, import.

Annotator-facing templates receive a ``BlindItem`` (see ``annotations.selectors``), never a
campaign item or a response: what is not in their context cannot leak into the HTML.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_POST
from rules.contrib.views import permission_required

from accounts.http import AuthenticatedHtmxHttpRequest, AuthenticatedHttpRequest
from annotations import selectors
from annotations.forms import (
    AdjudicationForm,
    AnnotationImportForm,
    CampaignForm,
    CampaignUpdateForm,
    FlagForm,
    SkipForm,
    raw_values,
    rubric_field_views,
    values_from_post,
)
from annotations.models import Campaign, CampaignItem, CampaignStatus, Flag, Guideline, Label
from annotations.services.adjudication import adjudication_record
from annotations.services.campaigns import (
    campaign_close,
    campaign_create,
    campaign_open,
    campaign_update,
)
from annotations.services.imports import annotations_import
from annotations.services.labelling import (
    ClaimOutcome,
    NextItem,
    flag_resolve,
    item_flag,
    item_next,
    item_skip,
    label_edit,
    label_submit,
    session_current,
    session_start,
)
from annotations.services.unblinding import item_unblind
from core.imports import ImportRejected

annotate = permission_required("annotations.annotate", raise_exception=True)
adjudicate = permission_required("annotations.adjudicate", raise_exception=True)
manage = permission_required("annotations.manage_campaigns", raise_exception=True)
# Invalid input re-renders the form with this status; annotate.js lets htmx swap it in.
UNPROCESSABLE = 422


def _errors(error: ValidationError) -> tuple[dict[str, Any], list[str]]:
    """(field errors, form-wide errors) of a service's ValidationError."""
    if hasattr(error, "error_dict"):
        fields = {name: " ".join(messages) for name, messages in error.message_dict.items()}
        return {k: v for k, v in fields.items() if k != "__all__"}, error.message_dict.get("__all__", [])
    return {}, error.messages


def _annotator_campaign(request: AuthenticatedHttpRequest, campaign_id: int) -> Campaign:
    try:
        campaign = selectors.campaign_get_for_annotator(user=request.user, campaign_id=campaign_id)
    except Campaign.DoesNotExist as exc:
        raise Http404("No such campaign.") from exc
    if not request.user.has_perm("annotations.annotate", campaign):
        raise PermissionDenied
    return campaign


def _managed_campaign(request: AuthenticatedHttpRequest, campaign_id: int) -> Campaign:
    try:
        return (
            selectors.campaign_list_for_user(user=request.user)
            .select_related("rubric", "guideline")
            .get(pk=campaign_id)
        )
    except Campaign.DoesNotExist as exc:
        raise Http404("No such campaign.") from exc


# --- dashboard and campaigns ---------------------------------------------------------------------


@login_required
def dashboard(request: AuthenticatedHttpRequest) -> HttpResponse:
    user = request.user
    can_manage = user.has_perm("annotations.manage_campaigns")
    can_adjudicate = user.has_perm("annotations.adjudicate")
    mine = [
        {"campaign": c, "progress": selectors.annotator_progress(campaign=c, annotator=user, session=None)}
        for c in selectors.campaign_list_for_annotator(user=user)
        .exclude(status=CampaignStatus.DRAFT)
        .order_by("-created_at")
    ]
    if not (mine or can_manage or can_adjudicate or user.has_perm("annotations.annotate")):
        raise PermissionDenied
    context: dict[str, Any] = {"mine": mine, "can_manage": can_manage, "can_adjudicate": can_adjudicate}
    if can_manage:
        context["campaigns"] = [
            {"campaign": c, "progress": selectors.campaign_progress(campaign=c)}
            for c in selectors.campaign_list_for_user(user=user).select_related("rubric")[:50]
        ]
    if can_adjudicate:
        context["queue_size"] = selectors.adjudication_queue(user=user).count()
    return render(request, "annotations/dashboard.html", context)


@login_required
@manage
def campaign_new(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = CampaignForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            campaign = campaign_create(actor=request.user, **form.service_kwargs())
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(
                request, f"Created the draft campaign {campaign.name} with {campaign.items.count()} items."
            )
            return redirect("annotations:campaign_detail", campaign_id=campaign.pk)
    status = 400 if request.method == "POST" else 200
    return render(request, "annotations/campaign_form.html", {"form": form, "creating": True}, status=status)


@login_required
def campaign_detail(request: AuthenticatedHttpRequest, campaign_id: int) -> HttpResponse:
    user = request.user
    if user.has_perm("annotations.manage_campaigns"):
        campaign = _managed_campaign(request, campaign_id)
        return render(
            request,
            "annotations/campaign_manage.html",
            {
                "campaign": campaign,
                "progress": selectors.campaign_progress(campaign=campaign),
                "annotators": selectors.annotator_counts(campaign=campaign),
                "flags": selectors.flag_list_for_user(user=user, campaign=campaign).filter(
                    resolved_at__isnull=True
                )[:50],
                "disputed": selectors.disputed_items(user=user, campaign=campaign)[:20],
            },
        )
    if not user.has_perm("annotations.annotate"):
        raise PermissionDenied
    campaign = _annotator_campaign(request, campaign_id)
    session = session_current(campaign=campaign, annotator=user)
    return render(
        request,
        "annotations/campaign_annotator.html",
        {
            "campaign": campaign,
            "progress": selectors.campaign_progress(campaign=campaign),
            "mine": selectors.annotator_progress(campaign=campaign, annotator=user, session=session),
            "session": session,
        },
    )


@login_required
@manage
def campaign_edit(request: AuthenticatedHttpRequest, campaign_id: int) -> HttpResponse:
    campaign = _managed_campaign(request, campaign_id)
    form = CampaignUpdateForm(request.POST or None, instance=campaign)
    if request.method == "POST" and form.is_valid():
        changes = {name: form.cleaned_data[name] for name in CampaignUpdateForm.Meta.fields}
        try:
            campaign_update(
                campaign=campaign, actor=request.user, annotators=form.cleaned_data["annotators"], **changes
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, "Campaign updated.")
            return redirect("annotations:campaign_detail", campaign_id=campaign.pk)
    return render(request, "annotations/campaign_form.html", {"form": form, "campaign": campaign})


def _state_change(
    request: AuthenticatedHttpRequest, campaign_id: int, service: Any, done: str
) -> HttpResponse:
    campaign = _managed_campaign(request, campaign_id)
    try:
        service(campaign=campaign, actor=request.user)
    except ValidationError as error:
        for message in error.messages:
            messages.error(request, message)
    else:
        messages.success(request, done)
    return redirect("annotations:campaign_detail", campaign_id=campaign.pk)


@login_required
@manage
@require_POST
def campaign_open_view(request: AuthenticatedHttpRequest, campaign_id: int) -> HttpResponse:
    return _state_change(
        request, campaign_id, campaign_open, "The campaign is open: its annotators can start."
    )


@login_required
@manage
def campaign_close_view(request: AuthenticatedHttpRequest, campaign_id: int) -> HttpResponse:
    """GET asks for confirmation (closing cannot be undone); POST closes."""
    if request.method != "POST":
        campaign = _managed_campaign(request, campaign_id)
        detail = reverse("annotations:campaign_detail", args=[campaign.pk])
        return render(
            request,
            "includes/confirm.html",
            {
                "confirm_title": f"Close the campaign {campaign.name}",
                "consequences": [
                    "Annotators can no longer label, skip or correct its items; held items are released.",
                    "Disputed items go to the adjudication queue even where labels are still missing.",
                    "Its labels are kept; a maintainer can reopen it later.",
                ],
                "confirm_button": "Close the campaign",
                "action_url": reverse("annotations:campaign_close", args=[campaign.pk]),
                "back_url": detail,
                "back_label": campaign.name,
            },
        )
    return _state_change(request, campaign_id, campaign_close, "The campaign is closed.")


@login_required
@manage
@require_POST
def flag_resolve_view(request: AuthenticatedHttpRequest, campaign_id: int, flag_id: int) -> HttpResponse:
    campaign = _managed_campaign(request, campaign_id)
    try:
        flag = selectors.flag_list_for_user(user=request.user, campaign=campaign).get(pk=flag_id)
    except Flag.DoesNotExist as exc:
        raise Http404("No such flag.") from exc
    flag_resolve(flag=flag, actor=request.user)
    messages.success(request, "Flag marked as resolved.")
    return redirect("annotations:campaign_detail", campaign_id=campaign.pk)


@login_required
@permission_required("annotations.unblind", raise_exception=True)
def item_identity(request: AuthenticatedHttpRequest, campaign_id: int, item_id: int) -> HttpResponse:
    """Unblinding: GET asks to confirm, POST reveals the model (and writes an audit event)."""
    campaign = _managed_campaign(request, campaign_id)
    try:
        item = CampaignItem.objects.select_related("response", "query").get(campaign=campaign, pk=item_id)
    except CampaignItem.DoesNotExist as exc:
        raise Http404("No such item.") from exc
    identity = None
    if request.method == "POST":
        identity = item_unblind(item=item, actor=request.user, reason=request.POST.get("reason", ""))
    return render(
        request, "annotations/identity.html", {"campaign": campaign, "item": item, "identity": identity}
    )


# --- labelling --------------------------------------------------------------------------------------


@login_required
@annotate
def session_new(request: AuthenticatedHttpRequest, campaign_id: int) -> HttpResponse:
    """The content warning; accepting it starts a session."""
    campaign = _annotator_campaign(request, campaign_id)
    if request.method == "POST":
        try:
            session_start(campaign=campaign, annotator=request.user)
        except ValidationError as error:
            for message in error.messages:
                messages.error(request, message)
            return redirect("annotations:campaign_detail", campaign_id=campaign.pk)
        return redirect("annotations:label", campaign_id=campaign.pk)
    return render(request, "annotations/start.html", {"campaign": campaign})


def _workspace(
    request: AuthenticatedHtmxHttpRequest,
    campaign: Campaign,
    claim: NextItem | None,
    *,
    status: int = 200,
    errors: dict[str, Any] | None = None,
    form_errors: list[str] | None = None,
    notice: str = "",
    correcting: Label | None = None,
) -> HttpResponse:
    """The workspace: the item held (``claim``), or one of the session's labels reopened for
    correction (``correcting``), in the same place and with the same keys."""
    user = request.user
    session = session_current(campaign=campaign, annotator=user)
    blind = None
    fields: list[Any] = []
    item = correcting.item if correcting is not None else (claim.item if claim is not None else None)
    if item is not None:
        blind = selectors.blind_item(item=item, annotator=user)
        raw = raw_values(blind.specs, request.POST) if errors or form_errors else None
        values = correcting.values if correcting is not None and raw is None else None
        fields = rubric_field_views(blind.specs, values=values, errors=errors, raw=raw)
    context = {
        "correcting": correcting,
        "campaign": campaign,
        "outcome": claim.outcome if claim else ClaimOutcome.ITEM,
        "item": blind,
        "fields": fields,
        "form_errors": form_errors or [],
        "notice": notice,
        "lease_expires_at": claim.lease.expires_at if claim and claim.lease and not correcting else None,
        "progress": selectors.campaign_progress(campaign=campaign),
        "mine": selectors.annotator_progress(campaign=campaign, annotator=user, session=session),
        "skip_form": SkipForm(),
        "flag_form": FlagForm(),
    }
    partial = request.htmx and not request.htmx.history_restore_request
    template = "annotations/_workspace.html" if partial else "annotations/label.html"
    response = render(request, template, context, status=status)
    patch_vary_headers(response, ("HX-Request",))
    # Item text is sensitive: never keep it in a shared or browser cache.
    response["Cache-Control"] = "no-store"
    return response


def _next(request: AuthenticatedHttpRequest, campaign: Campaign) -> NextItem:
    session = session_current(campaign=campaign, annotator=request.user)
    return item_next(campaign=campaign, annotator=request.user, session=session)


@login_required
@annotate
def label(request: AuthenticatedHtmxHttpRequest, campaign_id: int) -> HttpResponse:
    """The annotation screen: the item held, or the next one."""
    campaign = _annotator_campaign(request, campaign_id)
    if session_current(campaign=campaign, annotator=request.user) is None and campaign.accepts_labels():
        return redirect("annotations:session_new", campaign_id=campaign.pk)
    return _workspace(request, campaign, _next(request, campaign))


def _held_item(request: AuthenticatedHttpRequest, campaign: Campaign, item_id: int) -> CampaignItem | None:
    try:
        return selectors.item_get_for_annotator(user=request.user, campaign=campaign, item_id=item_id)
    except CampaignItem.DoesNotExist:
        return None


def _after_write(request: AuthenticatedHtmxHttpRequest, campaign: Campaign, notice: str) -> HttpResponse:
    if request.htmx:
        return _workspace(request, campaign, _next(request, campaign), notice=notice)
    messages.success(request, notice)
    return redirect("annotations:label", campaign_id=campaign.pk)


@login_required
@annotate
@require_POST
def label_create(request: AuthenticatedHtmxHttpRequest, campaign_id: int, item_id: int) -> HttpResponse:
    campaign = _annotator_campaign(request, campaign_id)
    item = _held_item(request, campaign, item_id)
    if item is None:
        return _after_write(
            request, campaign, "That item is no longer yours (its reservation ran out); here is the next."
        )
    if selectors.label_list_for_annotator(user=request.user).filter(item=item).exists():
        # A second Enter while the first submit was on its way: the label is saved, move on.
        return _after_write(request, campaign, "Label saved.")
    specs = selectors.rubric_specs(campaign=campaign, item=item)
    try:
        label_submit(item=item, annotator=request.user, values=values_from_post(specs, request.POST))
    except ValidationError as error:
        field_errors, form_errors = _errors(error)
        claim = NextItem(ClaimOutcome.ITEM, item=item)
        return _workspace(
            request, campaign, claim, status=UNPROCESSABLE, errors=field_errors, form_errors=form_errors
        )
    return _after_write(request, campaign, "Label saved.")


@login_required
@annotate
@require_POST
def skip(request: AuthenticatedHtmxHttpRequest, campaign_id: int, item_id: int) -> HttpResponse:
    campaign = _annotator_campaign(request, campaign_id)
    item = _held_item(request, campaign, item_id)
    if item is None:
        raise Http404("No such item.")
    form = SkipForm(request.POST)
    if not form.is_valid():
        claim = NextItem(ClaimOutcome.ITEM, item=item)
        return _workspace(
            request, campaign, claim, status=UNPROCESSABLE, form_errors=["Choose a reason for skipping."]
        )
    try:
        item_skip(item=item, annotator=request.user, **form.cleaned_data)
    except ValidationError as error:
        return _workspace(
            request,
            campaign,
            NextItem(ClaimOutcome.ITEM, item=item),
            status=UNPROCESSABLE,
            form_errors=error.messages,
        )
    return _after_write(request, campaign, "Item skipped: it goes to another annotator.")


@login_required
@annotate
@require_POST
def flag(request: AuthenticatedHtmxHttpRequest, campaign_id: int, item_id: int) -> HttpResponse:
    campaign = _annotator_campaign(request, campaign_id)
    item = _held_item(request, campaign, item_id)
    if item is None:
        raise Http404("No such item.")
    form = FlagForm(request.POST)
    message, status = "", 200
    if form.is_valid():
        try:
            item_flag(item=item, annotator=request.user, **form.cleaned_data)
        except ValidationError as error:
            message, status = " ".join(error.messages), UNPROCESSABLE
        else:
            message = "Thank you: the maintainers will review this content. You can go on labelling the item."
    else:
        message, status = "Choose what is wrong with the content.", UNPROCESSABLE
    if request.htmx:
        return render(
            request, "annotations/_flag_status.html", {"message": message, "ok": status == 200}, status=status
        )
    (messages.success if status == 200 else messages.error)(request, message)
    return redirect("annotations:label", campaign_id=campaign.pk)


@login_required
@annotate
def label_undo(request: AuthenticatedHtmxHttpRequest, campaign_id: int) -> HttpResponse:
    """The undo key: reopen the session's previous label (before ``?before=<label id>``, else the
    last one) in the workspace, for correction through the label edit service."""
    campaign = _annotator_campaign(request, campaign_id)
    session = session_current(campaign=campaign, annotator=request.user)
    before = request.GET.get("before", "")
    previous = selectors.label_previous_in_session(
        user=request.user,
        campaign=campaign,
        session=session,
        before=int(before) if before.isdigit() else None,
    )
    if previous is None or not campaign.accepts_labels():
        return _workspace(
            request, campaign, _next(request, campaign), notice="Nothing earlier to reopen in this session."
        )
    return _workspace(request, campaign, None, correcting=previous)


@login_required
@annotate
@require_POST
def label_correct(request: AuthenticatedHtmxHttpRequest, campaign_id: int, label_id: int) -> HttpResponse:
    """Save a correction made in the workspace (an edit with history), then back to the item held."""
    campaign = _annotator_campaign(request, campaign_id)
    try:
        own = selectors.label_get_for_user(user=request.user, label_id=label_id)
    except Label.DoesNotExist as exc:
        raise Http404("No such label.") from exc
    if own.campaign_id != campaign.pk:
        raise Http404("No such label.")
    specs = selectors.rubric_specs(campaign=campaign, item=own.item)
    try:
        edited = label_edit(label=own, annotator=request.user, values=values_from_post(specs, request.POST))
    except ValidationError as error:
        field_errors, form_errors = _errors(error)
        return _workspace(
            request,
            campaign,
            None,
            correcting=own,
            status=UNPROCESSABLE,
            errors=field_errors,
            form_errors=form_errors,
        )
    notice = "Label corrected." if edited.revision > own.revision else "Label unchanged."
    return _after_write(request, campaign, notice)


@login_required
@annotate
def my_labels(request: AuthenticatedHttpRequest, campaign_id: int) -> HttpResponse:
    campaign = _annotator_campaign(request, campaign_id)
    labels = selectors.label_list_for_annotator(user=request.user, campaign=campaign)
    page = Paginator(labels, 25).get_page(request.GET.get("page"))
    return render(request, "annotations/my_labels.html", {"campaign": campaign, "page": page})


@login_required
@annotate
def label_change(request: AuthenticatedHttpRequest, label_id: int) -> HttpResponse:
    """Edit one's own label while its campaign is open."""
    try:
        own = selectors.label_get_for_user(user=request.user, label_id=label_id)
    except Label.DoesNotExist as exc:
        raise Http404("No such label.") from exc
    campaign = _annotator_campaign(request, own.campaign_id)
    item = CampaignItem.objects.select_related("campaign", "query", "query__category", "response").get(
        pk=own.item_id
    )
    blind = selectors.blind_item(item=item, annotator=request.user)
    errors: dict[str, Any] = {}
    form_errors: list[str] = []
    if request.method == "POST":
        try:
            label_edit(label=own, annotator=request.user, values=values_from_post(blind.specs, request.POST))
        except ValidationError as error:
            errors, form_errors = _errors(error)
        else:
            messages.success(request, "Your label was updated.")
            return redirect("annotations:my_labels", campaign_id=campaign.pk)
    raw = raw_values(blind.specs, request.POST) if request.method == "POST" else None
    fields = rubric_field_views(blind.specs, values=own.values, errors=errors, raw=raw)
    return render(
        request,
        "annotations/label_edit.html",
        {
            "campaign": campaign,
            "item": blind,
            "label": own,
            "fields": fields,
            "form_errors": form_errors,
            "editable": campaign.accepts_labels(),
        },
        status=UNPROCESSABLE if errors or form_errors else 200,
    )


# --- adjudication -------------------------------------------------------------------------------------


@login_required
@adjudicate
def adjudication_queue(request: AuthenticatedHttpRequest) -> HttpResponse:
    queue = selectors.adjudication_queue(user=request.user)
    campaign_id = request.GET.get("campaign", "")
    if campaign_id.isdigit():
        queue = queue.filter(campaign_id=int(campaign_id))
    page = Paginator(queue, 25).get_page(request.GET.get("page"))
    return render(request, "annotations/adjudication_queue.html", {"page": page})


@login_required
@adjudicate
def adjudication_item(request: AuthenticatedHttpRequest, item_id: int) -> HttpResponse:
    try:
        item = selectors.adjudicable_items(user=request.user).get(pk=item_id)
    except CampaignItem.DoesNotExist as exc:
        raise Http404("No such item to adjudicate.") from exc
    form = AdjudicationForm(request.POST or None)
    view = selectors.adjudication_view(item=item, adjudicator=request.user)
    errors: dict[str, Any] = {}
    form_errors: list[str] = []
    if request.method == "POST" and form.is_valid():
        try:
            adjudication_record(
                item=item,
                adjudicator=request.user,
                values=values_from_post(view.item.specs, request.POST),
                rationale=form.cleaned_data["rationale"],
            )
        except ValidationError as error:
            errors, form_errors = _errors(error)
        else:
            messages.success(request, "Gold label recorded.")
            following = selectors.adjudication_queue(user=request.user).exclude(pk=item.pk).first()
            if following is not None:
                return redirect("annotations:adjudication_item", item_id=following.pk)
            return redirect("annotations:adjudication_queue")
    # Gold is for what is rated; the decision's rationale replaces the rubric's free-text fields.
    gold_specs = [spec for spec in view.item.specs if spec.is_categorical]
    if request.method == "POST":
        fields = rubric_field_views(gold_specs, errors=errors, raw=raw_values(gold_specs, request.POST))
    else:
        # A field every label agrees on starts filled in (and says so); the rest start blank.
        agreed = selectors.agreed_values(specs=gold_specs, labels=view.labels)
        current = view.history[0].values if view.history else (item.gold_values or agreed)
        fields = rubric_field_views(gold_specs, values=current, agreed=frozenset(agreed))
    status = UNPROCESSABLE if request.method == "POST" else 200
    return render(
        request,
        "annotations/adjudication_item.html",
        {
            "view": view,
            "campaign": item.campaign,
            "form": form,
            "fields": fields,
            "form_errors": form_errors,
            "item_id": item.pk,
        },
        status=status,
    )


# --- rubrics, guidelines, import ----------------------------------------------------------------------


@login_required
@permission_required("annotations.read_rubrics", raise_exception=True)
def guideline_detail(request: AuthenticatedHttpRequest, guideline_id: int) -> HttpResponse:
    try:
        guideline = Guideline.objects.get(pk=guideline_id)
    except Guideline.DoesNotExist as exc:
        raise Http404("No such guideline.") from exc
    return render(request, "annotations/guideline.html", {"guideline": guideline})


@login_required
@permission_required("annotations.import_annotations", raise_exception=True)
def annotation_import(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = AnnotationImportForm(request.POST or None, request.FILES or None)
    problems = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            result = annotations_import(
                files=form.named_files(),
                file_format=data["file_format"],
                actor=request.user,
                name=data["name"],
                rubric=data["rubric"],
                guideline=data["guideline"],
                default_category=data["default_category"],
                source=data["source"],
                missing_values=data["missing_values"],
                judges=data["judges"],
                dry_run=data["dry_run"],
            )
        except ImportRejected as rejected:  # AnnotationImportRejected and ImportTooLarge alike
            problems = rejected.problems
        else:
            if result.campaign is None:
                return render(
                    request, "annotations/import.html", {"form": form, "plan": result.summary()}, status=200
                )
            messages.success(
                request,
                f"Imported {result.items} items with {result.labels} labels by {result.raters} raters "
                f"({result.adjudicated} adjudicated).",
            )
            return redirect("annotations:campaign_detail", campaign_id=result.campaign.pk)
    status = 400 if problems or (request.method == "POST" and not form.is_valid()) else 200
    return render(request, "annotations/import.html", {"form": form, "problems": problems}, status=status)
