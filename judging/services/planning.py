"""The audit-sample planner: a stratified sample of a judge run's responses (model x category x
judge verdict) sized for a per-model bias half-width, opened as a blind response campaign."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from accounts.models import User
from accounts.policy import can_manage_campaigns, can_manage_judges
from annotations.defaults import GUIDELINE_SLUG, RESPONSE_RUBRIC_SLUG
from annotations.models import Campaign, CampaignItem, Guideline, Rubric
from annotations.services.campaigns import campaign_create, campaign_data_version_raise, campaign_open
from audit.actions import AuditAction
from audit.services import audit_record
from judging.models import JudgeRun
from judging.parsers import positive_indicator
from judging.selectors import JudgeSource, judge_verdicts_with_info
from medharm_stats.judging import SamplePlan, audit_plan


@dataclass(frozen=True)
class AuditPlan:
    plan: SamplePlan
    field: str
    strata: dict[tuple[str, ...], list[int]]  # (model, category, verdict) -> response ids
    chosen: list[int]


def _draw(seed: str, response_id: int) -> str:
    return hashlib.sha256(f"{seed}:{response_id}".encode()).hexdigest()


def audit_plan_for_run(
    *,
    run: JudgeRun,
    half_width: float,
    disagreement: float = 0.2,
    labels_per_item: int = 2,
    minutes_per_label: float = 1.5,
    seed: str = "audit",
) -> AuditPlan:
    """The plan for ``run``'s first field: strata from its verdicts, a deterministic draw in each."""
    field = run.template.fields[0]
    verdicts, info = judge_verdicts_with_info(
        source=JudgeSource(f"run:{run.pk}", run.name, [field], run.judge, run), fields=[field]
    )
    strata: dict[tuple[str, ...], list[int]] = {}
    for response_id, verdict in verdicts.items():
        meta = info.get(response_id)
        if meta is None:
            continue
        value = verdict.values.get(field)
        indicator = positive_indicator(field, value) if value is not None else None
        label = "failed" if indicator is None else ("positive" if indicator else "negative")
        strata.setdefault((meta.model, meta.category, label), []).append(response_id)
    plan = audit_plan(
        {key: len(ids) for key, ids in strata.items()}, half_width=half_width, disagreement=disagreement,
        labels_per_item=labels_per_item, minutes_per_label=minutes_per_label,
    )  # fmt: skip
    chosen: list[int] = []
    for key, ids in strata.items():
        take = plan.per_stratum.get(key, 0)
        chosen += sorted(ids, key=lambda pk: _draw(seed, pk))[:take]
    return AuditPlan(plan, field, strata, sorted(chosen))


@transaction.atomic
def audit_campaign_open(
    *,
    actor: User,
    run: JudgeRun,
    half_width: float,
    annotators: Sequence[User],
    name: str = "",
    disagreement: float = 0.2,
    labels_per_item: int = 2,
    minutes_per_label: float = 1.5,
) -> Campaign:
    """Open a blind response campaign over the planned sample. Annotators see the items as any
    campaign's: nothing says how they were chosen (the judge's verdicts stay out of the campaign)."""
    if not (can_manage_judges(actor) and can_manage_campaigns(actor)):
        raise PermissionDenied("Only maintainers plan audit samples.")
    if run.collection_run_id is None:
        raise ValidationError("Plan audit samples over a judge run of a collection run.")
    planned = audit_plan_for_run(
        run=run, half_width=half_width, disagreement=disagreement, labels_per_item=labels_per_item,
        minutes_per_label=minutes_per_label, seed=f"run{run.pk}",
    )  # fmt: skip
    if not planned.chosen:
        raise ValidationError("The judge run has no judged response to sample.")
    rubric = Rubric.objects.filter(slug=RESPONSE_RUBRIC_SLUG).order_by("-version").first()
    guideline = Guideline.objects.filter(slug=GUIDELINE_SLUG).order_by("-version").first()
    if rubric is None or guideline is None:  # both come with the annotations migrations
        raise ValidationError(
            f"The default response rubric ({RESPONSE_RUBRIC_SLUG}) or guideline ({GUIDELINE_SLUG}) is "
            "missing: run the migrations."
        )
    campaign = campaign_create(
        actor=actor,
        name=name or f"Audit sample for {run.name}",
        target="response",
        rubric=rubric,
        guideline=guideline,
        overlap=labels_per_item,
        annotators=annotators,
        runs=[run.collection_run_id],
        description="A stratified audit sample for a judge (the strata are not shown to annotators).",
    )
    CampaignItem.objects.filter(campaign=campaign).exclude(response_id__in=planned.chosen).delete()
    selection = {**campaign.selection, "audit_sample_of_judge_run": run.pk, "half_width": half_width}
    Campaign.objects.filter(pk=campaign.pk).update(selection=selection)
    campaign_data_version_raise(campaign_ids=[campaign.pk])
    campaign.refresh_from_db()
    audit_record(
        actor=actor, action=AuditAction.JUDGE_AUDIT_SAMPLE_OPEN, target=campaign,
        details={"judge_run": run.pk, "items": len(planned.chosen), "per_model": planned.plan.per_model,
                 "half_width": half_width, "clinician_hours": round(planned.plan.clinician_hours, 2)},
    )  # fmt: skip
    return campaign_open(campaign=campaign, actor=actor)
