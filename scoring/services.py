"""Writes of the scoring app: the annotator flag threshold of a campaign, and frozen reports."""

from __future__ import annotations

from collections.abc import Sized

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from accounts.policy import can_manage_scores, can_view_identity_rows, require
from annotations.models import Campaign
from audit.actions import AuditAction
from audit.services import audit_record
from medharm_stats import DEFAULT_RESAMPLES, DEFAULT_SEED
from scoring.models import AnnotatorFlagThreshold, Report, ThresholdStatistic
from scoring.reports.build import build_payload, payload_hash
from scoring.resolution import source_info
from scoring.selectors.snapshot import campaign_data

MAX_RESAMPLES = 10_000


def _require_manager(actor: User) -> None:
    if not can_manage_scores(actor):
        raise PermissionDenied("Only benchmark maintainers change scoring settings or make reports.")


@transaction.atomic
def score_rows_unblind(
    *, campaign: Campaign, actor: User, view: str, filters: dict[str, object], items: Sized
) -> None:
    """Record that ``actor`` saw which model wrote ``items`` (a drill-down of a score or agreement
    figure): an unblinding, refused to roles the policy does not name. Only their number is
    recorded, so an export passes its rows as they are (not read once more to list their ids)."""
    require(
        can_view_identity_rows, actor, campaign, message="Only maintainers may see which model wrote an item."
    )
    audit_record(
        actor=actor,
        action=AuditAction.SCORE_ROWS_UNBLIND,
        target=campaign,
        details={"view": view, **{k: v for k, v in filters.items() if v}, "items": len(items)},
    )


@transaction.atomic
def agreement_threshold_set(
    *,
    campaign: Campaign,
    actor: User,
    minimum: float,
    statistic: str = ThresholdStatistic.PERCENT,
    field_name: str = "",
    min_items: int = 10,
) -> AnnotatorFlagThreshold:
    """Set the agreement-with-gold figure below which the campaign's annotators are flagged."""
    _require_manager(actor)
    specs = {spec.name: spec for spec in campaign.rubric.specs()}
    if field_name and (field_name not in specs or not specs[field_name].is_categorical):
        choices = ", ".join(name for name, spec in specs.items() if spec.is_categorical)
        raise ValidationError({"field_name": f"Choose a categorical field of the rubric: {choices}."})
    threshold = AnnotatorFlagThreshold.objects.select_for_update().filter(campaign=campaign).first()
    before = None
    if threshold is None:
        threshold = AnnotatorFlagThreshold(campaign=campaign)
    else:
        before = {
            "statistic": threshold.statistic,
            "minimum": threshold.minimum,
            "field_name": threshold.field_name,
            "min_items": threshold.min_items,
        }
    threshold.statistic, threshold.minimum = statistic, minimum
    threshold.field_name, threshold.min_items = field_name, min_items
    threshold.set_by, threshold.set_at = actor, timezone.now()
    if statistic == ThresholdStatistic.PERCENT and minimum < 0:
        raise ValidationError({"minimum": "Percent agreement runs from 0 to 1."})
    threshold.full_clean()
    threshold.save()
    audit_record(
        actor=actor,
        action=AuditAction.AGREEMENT_THRESHOLD_SET,
        target=threshold,
        details={
            "campaign": campaign.pk,
            "before": before,
            "after": {
                "statistic": statistic,
                "minimum": minimum,
                "field_name": field_name,
                "min_items": min_items,
            },
        },
    )
    return threshold


@transaction.atomic
def report_create(
    *,
    campaign: Campaign,
    actor: User,
    label_source: str = "gold",
    seed: int = DEFAULT_SEED,
    resamples: int = DEFAULT_RESAMPLES,
) -> Report:
    """Compute every table of ``campaign`` now and freeze it with its provenance."""
    _require_manager(actor)
    try:
        info = source_info(label_source)
    except ValueError as exc:
        raise ValidationError({"label_source": str(exc)}) from exc
    if not info.available:
        raise ValidationError({"label_source": f"{info.label}: {info.unavailable_reason}."})
    if not 1 <= resamples <= MAX_RESAMPLES:
        raise ValidationError({"resamples": f"Between 1 and {MAX_RESAMPLES}."})
    if not 0 <= seed < 2**63:
        raise ValidationError({"seed": "A non-negative integer below 2^63."})
    # Reports are publishable: annotators appear under pseudonyms whoever makes them.
    data = campaign_data(campaign=campaign, user=None, judge_user=actor)
    if label_source == "judge" and not data.judge_labels:
        raise ValidationError({"label_source": f"{info.label}: {data.judge_unavailable}."})
    title = f"{campaign.name}: scores and agreement"
    payload = build_payload(
        campaign=campaign,
        data=data,
        label_source=label_source,
        seed=seed,
        resamples=resamples,
        title=title,
    )
    report = Report.objects.create(
        campaign=campaign,
        title=title,
        label_source=label_source,
        seed=seed,
        resamples=resamples,
        payload=payload,
        data_fingerprint=payload["data"]["fingerprint"],
        content_hash=payload_hash(payload),
        created_by=actor,
    )
    audit_record(
        actor=actor,
        action=AuditAction.REPORT_CREATE,
        target=report,
        details={
            "campaign": campaign.pk,
            "label_source": label_source,
            "seed": seed,
            "resamples": resamples,
            "data_fingerprint": report.data_fingerprint,
            "content_hash": report.content_hash,
        },
    )
    return report
