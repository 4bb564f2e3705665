"""Judge pages: templates (new version with a preview), judges, runs, imports, audits and trust.
Thin: parse input, call one service or selector, render."""

from __future__ import annotations

import json
from typing import Any, TypedDict

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.forms import BaseForm
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from rules.contrib.views import permission_required

from accounts.http import AuthenticatedHtmxHttpRequest, AuthenticatedHttpRequest
from evaluations.models import RunStatus
from evaluations.selectors import endpoint_list_for_user, run_list_for_user
from judging import selectors, services
from judging.charts import bias_chart, confusion_chart, flips_text
from judging.forms import ImportForm, JudgeForm, JudgeRunForm, TemplateForm, ThresholdForm
from judging.importers import JudgeImportRejected
from judging.models import JudgeRun, JudgeTrust
from judging.parsers import AUDIT_FIELDS

manage = permission_required("judging.manage_judges", raise_exception=True)
audits = permission_required("judging.view_audits", raise_exception=True)


def _service_errors(form: BaseForm, error: ValidationError) -> None:
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for name, errors in error.error_dict.items():
        form.add_error(name if name in form.fields else None, errors)


@login_required
@manage
def index(request: AuthenticatedHttpRequest) -> HttpResponse:
    user = request.user
    trusts = JudgeTrust.objects.select_related("judge", "template", "rubric").order_by("-granted_at")[:50]
    return render(
        request,
        "judging/index.html",
        {
            "templates": selectors.template_latest_list(user=user),
            "judges": selectors.judge_list_for_user(user=user),
            "runs": selectors.judge_run_list_for_user(user=user)[:50],
            "imports": selectors.import_list_for_user(user=user)[:20],
            "trusts": [(t, selectors.trust_status(t)) for t in trusts],
            "campaigns": selectors.audit_campaign_list_for_user(user=user),
            "sources": selectors.judge_sources(user=user),
        },
    )


def _preview(request: AuthenticatedHttpRequest, form: TemplateForm) -> selectors.Preview:
    data = form.cleaned_data
    return selectors.template_preview(
        user=request.user, prompt=data.get("prompt") or "", system_prompt=data.get("system_prompt") or "",
        parser=data["parser"], fields=data["fields"], response_id=data.get("preview_response"),
        output=data.get("preview_output") or "",
    )  # fmt: skip


@login_required
@manage
def template_new(request: AuthenticatedHtmxHttpRequest) -> HttpResponse:
    """A new template version, from a copy of an existing one (``?from=<id>``) or blank."""
    preview = None
    if request.method == "POST":
        form = TemplateForm(request.POST)
        if form.is_valid():
            if request.POST.get("action") == "preview":
                preview = _preview(request, form)
                if request.htmx:
                    return render(request, "judging/_preview.html", {"preview": preview})
            else:
                data = form.cleaned_data
                try:
                    template = services.template_version_create(
                        actor=request.user, slug=data["slug"], title=data["title"], prompt=data["prompt"],
                        parser=data["parser"], fields=data["fields"], system_prompt=data["system_prompt"],
                        description=data["description"],
                    )  # fmt: skip
                except ValidationError as error:
                    _service_errors(form, error)
                else:
                    messages.success(request, f"Saved {template.slug} v{template.version}.")
                    return redirect("judging:index")
    else:
        initial: dict[str, Any] = {}
        base_id = request.GET.get("from", "")
        if base_id.isdigit():
            base = selectors.template_list_for_user(user=request.user).filter(pk=int(base_id)).first()
            if base is None:
                raise Http404("No such template.")
            initial = {
                "slug": base.slug, "title": base.title, "description": base.description,
                "system_prompt": base.system_prompt, "prompt": base.prompt, "parser": base.parser,
                "fields": base.fields,
            }  # fmt: skip
        form = TemplateForm(initial=initial)
    versions = []
    slug = form["slug"].value()
    if slug:
        versions = list(
            selectors.template_list_for_user(user=request.user).filter(slug=slug).order_by("-version")
        )
    return render(
        request, "judging/template_form.html", {"form": form, "preview": preview, "versions": versions}
    )


@login_required
@manage
def judge_new(request: AuthenticatedHttpRequest) -> HttpResponse:
    endpoints = endpoint_list_for_user(user=request.user).filter(is_active=True)
    templates = selectors.template_list_for_user(user=request.user)
    form = JudgeForm(request.POST or None, endpoints=endpoints, templates=templates)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.judge_create(actor=request.user, **data)
        except ValidationError as error:
            _service_errors(form, error)
        else:
            messages.success(request, f"Judge {data['name']} registered.")
            return redirect("judging:index")
    return render(request, "judging/judge_form.html", {"form": form})


@login_required
@manage
def run_new(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = JudgeRunForm(
        request.POST or None,
        judges=selectors.judge_list_for_user(user=request.user),
        runs=run_list_for_user(user=request.user).filter(status="completed"),
        campaigns=selectors.audit_campaign_list_for_user(user=request.user),
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            run = services.judge_run_create(
                actor=request.user, judge=data["judge"], collection_run=data["collection_run"],
                campaign=data["campaign"], concurrency=data["concurrency"],
            )  # fmt: skip
            run = services.judge_run_start(run=run, actor=request.user)
        except ValidationError as error:
            _service_errors(form, error)
        else:
            return redirect("judging:run_detail", run_id=run.pk)
    return render(request, "judging/run_form.html", {"form": form})


def _run(request: AuthenticatedHttpRequest, run_id: int) -> JudgeRun:
    run = selectors.judge_run_list_for_user(user=request.user).filter(pk=run_id).first()
    if run is None:
        raise Http404("No such judge run.")
    return run


@login_required
@manage
def run_detail(request: AuthenticatedHtmxHttpRequest, run_id: int) -> HttpResponse:
    run = _run(request, run_id)
    if run.status == RunStatus.RUNNING:
        services.judge_supervise_locally()  # no broker: a run watched is a run kept going
    context = {
        "run": run,
        "progress": selectors.judge_run_progress(run=run),
        "failures": run.items.filter(outcome__in=["parse_failure", "error"]).order_by("pk")[:50],
        "sample": run.items.filter(outcome="parsed").order_by("pk")[:20],
    }
    if request.htmx:
        return render(request, "judging/_run_progress.html", context)
    return render(request, "judging/run_detail.html", context)


class PlanInputs(TypedDict):
    """The planner's inputs, as ``audit_plan_for_run`` and ``audit_campaign_open`` take them."""

    half_width: float
    disagreement: float
    labels_per_item: int
    minutes_per_label: float


def _plan_inputs(data: Any) -> PlanInputs:
    def number(key: str, default: float, low: float, high: float) -> float:
        try:
            value = float(data.get(key, default))
        except (TypeError, ValueError):
            raise Http404(f"{key} must be a number.") from None
        if not low < value <= high:
            raise Http404(f"{key} out of range.")
        return value

    return {
        "half_width": number("half_width", 0.05, 0, 0.5),
        "disagreement": number("disagreement", 0.2, 0, 1),
        "labels_per_item": int(number("labels_per_item", 2, 0, 20)),
        "minutes_per_label": number("minutes_per_label", 1.5, 0, 120),
    }


@login_required
@manage
def run_plan(request: AuthenticatedHttpRequest, run_id: int) -> HttpResponse:
    """The audit-sample planner: strata, sizes per model, clinician hours; POST opens the campaign."""
    run = _run(request, run_id)
    inputs = _plan_inputs(request.POST if request.method == "POST" else request.GET)
    from accounts.models import User
    from accounts.roles import Role

    clinicians = User.objects.filter(groups__name=Role.CLINICIAN.value, is_active=True).order_by("email")
    if request.method == "POST":
        chosen = clinicians.filter(pk__in=[int(v) for v in request.POST.getlist("annotators") if v.isdigit()])
        try:
            campaign = services.audit_campaign_open(
                actor=request.user, run=run, annotators=list(chosen), **inputs
            )
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(
                request, f"Opened the blind campaign “{campaign.name}” with {campaign.items.count()} items."
            )
            return redirect("annotations:campaign_detail", campaign_id=campaign.pk)
    planned = services.audit_plan_for_run(run=run, seed=f"run{run.pk}", **inputs)
    strata = sorted(
        ((key, len(ids), planned.plan.per_stratum.get(key, 0)) for key, ids in planned.strata.items()),
        key=lambda row: row[0],
    )
    return render(
        request, "judging/plan.html",
        {"run": run, "planned": planned, "strata": strata, "inputs": inputs, "clinicians": clinicians},
    )  # fmt: skip


RUN_ACTIONS = {
    "pause": (services.judge_run_pause, "Paused: the calls in flight finish, no new one starts."),
    "resume": (services.judge_run_resume, "Resumed: what is missing is judged, nothing twice."),
    "cancel": (services.judge_run_cancel, "Cancelled."),
}


@login_required
@manage
@require_POST
def run_action(request: AuthenticatedHttpRequest, run_id: int, action: str) -> HttpResponse:
    """Pause, resume or cancel a judge run; the service checks the actor and the run's state."""
    run = _run(request, run_id)
    if action not in RUN_ACTIONS:
        raise Http404("No such action.")
    service, done = RUN_ACTIONS[action]
    try:
        service(run=run, actor=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, done)
    return redirect("judging:run_detail", run_id=run.pk)


@login_required
@manage
@require_POST
def run_retry_failed(request: AuthenticatedHttpRequest, run_id: int) -> HttpResponse:
    run = _run(request, run_id)
    try:
        count = services.judge_run_retry_failed(run=run, actor=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(
            request,
            f"{count} failed item{'s' if count != 1 else ''} sent again." if count else "No failed item.",
        )
    return redirect("judging:run_detail", run_id=run.pk)


@login_required
@manage
def imports(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = ImportForm(request.POST or None, request.FILES or None)
    problems: list[str] = []
    status = 200
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            batch = services.external_labels_import(
                actor=request.user,
                name=upload.name,
                raw=upload.read(),
                file_format=form.cleaned_data["format"],
            )
        except JudgeImportRejected as rejected:
            problems = [str(p) for p in rejected.problems]
            status = 400
        else:
            messages.success(request, f"Imported {batch.rows} labels of {batch.judge_name}.")
            return redirect("judging:imports")
    elif request.method == "POST":
        status = 400
    return render(
        request,
        "judging/imports.html",
        {
            "form": form,
            "problems": problems,
            "imports": selectors.import_list_for_user(user=request.user)[:50],
        },
        status=status,
    )


def _audit_target(
    request: AuthenticatedHttpRequest, sources: list[selectors.JudgeSource] | None = None
) -> tuple[Any, selectors.JudgeSource, str, str]:
    params = request.GET if request.method == "GET" else request.POST
    campaign_id = params.get("campaign", "")
    campaign = (
        selectors.audit_campaign_list_for_user(user=request.user).filter(pk=int(campaign_id)).first()
        if campaign_id.isdigit()
        else None
    )
    if campaign is None:
        raise Http404("Choose a response campaign.")
    key = params.get("judge", "")
    source = next((s for s in sources or selectors.judge_sources(user=request.user) if s.key == key), None)
    if source is None:
        raise Http404("No such judge.")
    gold = params.get("gold", "gold")
    if gold not in selectors.GOLD_STATEMENTS:
        raise Http404("Unknown gold source.")
    field = params.get("field") or source.fields[0]
    if field not in source.fields:
        raise Http404("The judge does not answer that field.")
    return campaign, source, gold, field


@login_required
@audits
def audit(request: AuthenticatedHttpRequest) -> HttpResponse:
    sources = selectors.judge_sources(user=request.user)
    campaign, source, gold, field = _audit_target(request, sources)
    result = selectors.judge_audit_compute(
        user=request.user, campaign=campaign, source=source, gold_source=gold, fields=[field]
    )
    figures = result.audits[field]
    threshold = selectors.threshold_for(field_name=field)
    trust = selectors.trust_for(field_name=field, judge=source.judge, external_judge=source.external_name)
    query = {"campaign": campaign.pk, "judge": source.key, "gold": gold}
    return render(
        request,
        "judging/audit.html",
        {
            "campaign": campaign,
            "source": source,
            "gold": gold,
            "field": field,
            "field_label": AUDIT_FIELDS[field].label,
            "result": result,
            "audit": figures,
            "confusion_svg": confusion_chart(figures.overall, field=field),
            "bias_svg": bias_chart(figures.bias, field=field) if figures.bias else "",
            "flips": flips_text(figures.bias.ranking.flips) if figures.bias else [],
            "disagreements": figures.disagreements[:200],
            "threshold": threshold,
            "threshold_form": ThresholdForm(initial={"field": field}),
            "trust": trust,
            "query": query,
            "other_fields": [(f, AUDIT_FIELDS[f].label) for f in source.fields],
            "sources": sources,
        },
    )


def _back_to_audit(request: AuthenticatedHttpRequest) -> HttpResponse:
    keys = ("campaign", "judge", "gold", "field")
    query = "&".join(f"{k}={request.POST.get(k, '')}" for k in keys)
    return redirect(f"{reverse('judging:audit')}?{query}")


@login_required
@manage
@require_POST
def threshold_set(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = ThresholdForm(request.POST)
    if not form.is_valid():
        messages.error(
            request,
            "Thresholds not saved: "
            + "; ".join(f"{k}: {' '.join(str(m) for m in v)}" for k, v in form.errors.items()),
        )
        return _back_to_audit(request)
    data = form.cleaned_data
    recall_class: Any = None
    if data["recall_class"]:
        try:
            recall_class = json.loads(data["recall_class"])
        except ValueError:
            recall_class = data["recall_class"]
    try:
        services.threshold_set(
            actor=request.user, field_name=data["field"], min_kappa=data["min_kappa"],
            max_abs_bias=data["max_abs_bias"],
            recall_class=recall_class, min_recall=data["min_recall"], min_items=data["min_items"],
        )  # fmt: skip
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"Thresholds for {data['field']} saved.")
    return _back_to_audit(request)


@login_required
@manage
@require_POST
def trust_grant(request: AuthenticatedHttpRequest) -> HttpResponse:
    campaign, source, gold, field = _audit_target(request)
    try:
        trust = services.judge_trust_grant(
            actor=request.user, run=source.run, external_judge=source.external_name, campaign=campaign,
            field_name=field, gold_source=gold,
        )  # fmt: skip
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"Trusted for {field}: {trust.statement}.")
    return _back_to_audit(request)


@login_required
@manage
@require_POST
def trust_revoke(request: AuthenticatedHttpRequest, trust_id: int) -> HttpResponse:
    trust = JudgeTrust.objects.filter(pk=trust_id).first()
    if trust is None:
        raise Http404("No such trust.")
    try:
        services.judge_trust_revoke(actor=request.user, trust=trust)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return redirect("judging:index")


@login_required
@manage
@require_POST
def disagreements_send(request: AuthenticatedHttpRequest) -> HttpResponse:
    campaign, _source, _gold, _field = _audit_target(request)
    item_ids = [int(v) for v in request.POST.getlist("item") if v.isdigit()]
    if not item_ids:
        messages.error(request, "Choose at least one disagreement.")
        return _back_to_audit(request)
    sent = services.disagreements_send_to_adjudication(
        actor=request.user, campaign=campaign, item_ids=item_ids
    )
    messages.success(
        request,
        f"{sent['sent']} items sent to blind adjudication "
        f"({sent['already_adjudicated']} already adjudicated).",
    )
    return _back_to_audit(request)
