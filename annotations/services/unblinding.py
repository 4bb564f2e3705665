"""Unblinding: showing a maintainer which model wrote an item. Every look is an audit event."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction

from accounts.models import User
from accounts.policy import can_unblind
from annotations.models import Campaign, CampaignItem, Label
from annotations.selectors import item_identity
from audit.actions import AuditAction
from audit.services import audit_record


@transaction.atomic
def item_unblind(*, item: CampaignItem, actor: User, reason: str = "") -> dict[str, Any]:
    """The run, target, endpoint and model behind ``item``, recorded as seen by ``actor``."""
    if not can_unblind(actor):
        raise PermissionDenied("Only maintainers may see which model wrote an item.")
    identity = item_identity(item=item)
    audit_record(
        actor=actor,
        action=AuditAction.ITEM_UNBLIND,
        target=item,
        details={
            "campaign": item.campaign_id,
            "reason": reason.strip()[:500],
            "target": identity.get("target"),
        },
    )
    return identity


@transaction.atomic
def campaign_unblind_labels(*, campaign: Campaign, actor: User) -> list[dict[str, Any]]:
    """Every label of ``campaign`` in long format (one row per field) with the model that wrote the
    item: what scoring needs, and an unblinding, so it is recorded."""
    if not can_unblind(actor):
        raise PermissionDenied("Only maintainers may see which model wrote an item.")
    labels = (
        Label.objects.filter(campaign=campaign)
        .select_related("item", "item__response__target", "rubric", "guideline")
        .order_by("item_id", "created_at", "pk")
    )
    rows: list[dict[str, Any]] = []
    for label in labels:
        item = label.item
        response = item.response
        for field, value in label.values.items():
            rows.append(
                {
                    "item": item.pk,
                    "query": item.query_id,
                    "response": item.response_id,
                    "model": response.target.label if response is not None else None,
                    "rater": label.rater_key,
                    "field": field,
                    "value": value,
                    "gold": (item.gold_values or {}).get(field),
                    "gold_source": item.gold_source,
                    "rubric": f"{label.rubric.slug}@{label.rubric.version}",
                    "guideline": f"{label.guideline.slug}@{label.guideline.version}"
                    if label.guideline is not None
                    else None,
                }
            )
    audit_record(
        actor=actor,
        action=AuditAction.CAMPAIGN_UNBLIND,
        target=campaign,
        details={"labels": labels.count(), "rows": len(rows)},
    )
    return rows
