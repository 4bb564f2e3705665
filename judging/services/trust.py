"""Trust thresholds, trust grants (only when an audit meets them) and revocation; sending the
audit's disagreements to blind adjudication."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from accounts.policy import can_trust_judges
from annotations.models import Campaign, CampaignItem, Rubric
from audit.actions import AuditAction
from audit.services import audit_record
from judging.models import ExternalJudgeLabel, ExternalLabelImport, JudgeRun, JudgeTrust, TrustThreshold
from judging.parsers import AUDIT_FIELDS, valid_value
from judging.selectors import JudgeSource, judge_audit_compute


def _require(actor: User) -> None:
    if not can_trust_judges(actor):
        raise PermissionDenied("Only maintainers set judge thresholds and trust.")


@transaction.atomic
def threshold_set(
    *,
    actor: User,
    field_name: str,
    min_kappa: float,
    max_abs_bias: float,
    recall_class: Any = None,
    min_recall: float | None = None,
    min_items: int = 30,
) -> TrustThreshold:
    _require(actor)
    if field_name not in AUDIT_FIELDS:
        raise ValidationError({"field": f"Unknown field {field_name!r}."})
    if (recall_class is None) != (min_recall is None):
        raise ValidationError({"min_recall": "Name the class and its minimum recall together."})
    if recall_class is not None and not valid_value(field_name, recall_class):
        raise ValidationError({"recall_class": f"{recall_class!r} is not a value of {field_name}."})
    threshold, _ = TrustThreshold.objects.update_or_create(
        field=field_name,
        defaults={
            "min_kappa": min_kappa, "max_abs_bias": max_abs_bias, "recall_class": recall_class,
            "min_recall": min_recall, "min_items": min_items, "set_by": actor, "set_at": timezone.now(),
        },
    )  # fmt: skip
    threshold.full_clean()
    audit_record(
        actor=actor, action=AuditAction.JUDGE_THRESHOLD_SET, target=threshold,
        details={"field": field_name, "min_kappa": min_kappa, "max_abs_bias": max_abs_bias,
                 "recall_class": recall_class, "min_recall": min_recall, "min_items": min_items},
    )  # fmt: skip
    return threshold


def _check(threshold: TrustThreshold, audit: Any) -> tuple[list[str], dict[str, Any]]:
    failures: list[str] = []
    overall = audit.overall
    kappa = overall.kappa.value
    if overall.n < threshold.min_items:
        failures.append(f"audited on {overall.n} items; at least {threshold.min_items} needed")
    if kappa is None or kappa < threshold.min_kappa:
        failures.append(f"κ = {kappa if kappa is None else round(kappa, 3)} is below {threshold.min_kappa:g}")
    biases = [
        abs(m.bias.value) for m in (audit.bias.models if audit.bias else []) if m.bias.value is not None
    ]
    worst = max(biases) if biases else 0.0
    if worst > threshold.max_abs_bias:
        failures.append(f"a model's |bias| is {worst:.3f}, above {threshold.max_abs_bias:g}")
    recall = None
    if threshold.recall_class is not None:
        figures = overall.class_figures(threshold.recall_class)
        recall = figures.recall.value if figures else None
        if recall is None or recall < (threshold.min_recall or 0):
            failures.append(
                f"recall of {threshold.recall_class!r} is {recall}, below {threshold.min_recall:g}"
            )
    return failures, {"kappa": kappa, "max_abs_bias": worst, "recall": recall, "n": overall.n}


@transaction.atomic
def judge_trust_grant(
    *,
    actor: User,
    campaign: Campaign,
    field_name: str,
    gold_source: str = "gold",
    run: JudgeRun | None = None,
    external_judge: str = "",
) -> JudgeTrust:
    """Trust a judge for ``field_name`` if its audit against ``campaign`` meets the field's
    thresholds; otherwise ``ValidationError`` naming each threshold missed.

    The judge is either ``run``'s (trusted on its template version) or an imported judge named
    ``external_judge`` (trusted on the import files audited: labels imported later under the same
    name are not covered). Either way the trust records the rubric version, the audit campaign,
    its runs and categories, and the figures that met the thresholds."""
    _require(actor)
    if (run is None) == (not external_judge):
        raise ValidationError("Name either a judge run or an imported judge.")
    threshold = TrustThreshold.objects.filter(field=field_name).first()
    if threshold is None:
        raise ValidationError({"field": f"Set the thresholds for {field_name} first."})
    imports: list[ExternalLabelImport] = []
    if run is not None:
        judge = run.judge
        if run.template_id != judge.template_id:
            raise ValidationError(
                "The judge now uses another template version than this run: audit a new run."
            )
        if field_name not in run.template.fields:
            raise ValidationError({"field": f"The judge does not answer {field_name}."})
        source = JudgeSource(f"run:{run.pk}", run.name, list(run.template.fields), judge, run)
    else:
        imports = list(
            ExternalLabelImport.objects.filter(
                pk__in=ExternalJudgeLabel.objects.filter(judge_name=external_judge, field=field_name).values(
                    "batch_id"
                )
            ).order_by("pk")
        )
        if not imports:
            raise ValidationError({"field": f"{external_judge} has no imported labels of {field_name}."})
        source = JudgeSource(
            f"external:{external_judge}", f"{external_judge} (imported)", [field_name],
            imports=tuple(i.pk for i in imports),
        )  # fmt: skip
    result = judge_audit_compute(
        user=actor, campaign=campaign, source=source, gold_source=gold_source, fields=[field_name]
    )
    audit = result.audits[field_name]
    failures, figures = _check(threshold, audit)
    if failures:
        raise ValidationError({"field": [f"Not trusted: {f}." for f in failures]})
    categories = sorted(audit.by_category)
    runs = sorted(
        set(CampaignItem.objects.filter(campaign=campaign).values_list("response__run_id", flat=True))
        - {None}
    )
    trust = JudgeTrust.objects.create(
        judge=run.judge if run else None, external_judge=external_judge, field=field_name,
        template=run.template if run else None, template_hash=run.template.content_hash if run else "",
        rubric=campaign.rubric, judge_run=run, audit_campaign=campaign, gold_source=gold_source,
        categories=categories, run_ids=runs, n_items=figures["n"], kappa=figures["kappa"],
        max_abs_bias=figures["max_abs_bias"], recall=figures["recall"],
        thresholds={"min_kappa": threshold.min_kappa, "max_abs_bias": threshold.max_abs_bias,
                    "recall_class": threshold.recall_class, "min_recall": threshold.min_recall,
                    "min_items": threshold.min_items},
        granted_by=actor, granted_at=timezone.now(),
    )  # fmt: skip
    trust.imports.set(imports)
    audit_record(
        actor=actor,
        action=AuditAction.JUDGE_TRUST_GRANT,
        target=trust,
        details={
            "field": field_name, "judge": trust.judge_name, "imports": [i.file_hash for i in imports],
            **figures,
        },
    )  # fmt: skip
    return trust


@transaction.atomic
def judge_trust_revoke(*, actor: User, trust: JudgeTrust) -> JudgeTrust:
    _require(actor)
    if trust.revoked_at:
        raise ValidationError("This trust was revoked already.")
    trust.revoked_at, trust.revoked_by = timezone.now(), actor
    trust.save(update_fields=["revoked_at", "revoked_by"])
    audit_record(
        actor=actor, action=AuditAction.JUDGE_TRUST_REVOKE, target=trust, details={"field": trust.field}
    )
    return trust


@transaction.atomic
def disagreements_send_to_adjudication(
    *, actor: User, campaign: Campaign, item_ids: list[int]
) -> dict[str, int]:
    """Mark the items disputed so they enter the (blind) adjudication queue. The adjudicator sees the
    item as any disputed item: no judge verdict, no model identity. Items already adjudicated stay
    as they are (an adjudicator may still revisit them)."""
    _require(actor)
    items = CampaignItem.objects.select_for_update().filter(campaign=campaign, pk__in=item_ids)
    adjudicated = set(items.filter(adjudications__isnull=False).values_list("pk", flat=True))
    sent = items.exclude(pk__in=adjudicated).update(disputed=True)
    audit_record(
        actor=actor, action=AuditAction.JUDGE_DISAGREEMENTS_SEND, target=campaign,
        details={"sent": sent, "already_adjudicated": len(adjudicated)},
    )  # fmt: skip
    return {"sent": sent, "already_adjudicated": len(adjudicated)}


def latest_rubric(slug: str) -> Rubric | None:
    return Rubric.objects.filter(slug=slug).order_by("-version").first()
