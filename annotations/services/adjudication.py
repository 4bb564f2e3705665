"""Agreement per item, gold labels (consensus or adjudicated), and gold query labels on the query."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from accounts.models import User
from accounts.policy import can_adjudicate
from annotations.models import (
    Adjudication,
    CampaignItem,
    GoldSource,
    Label,
    Rubric,
    RubricTarget,
)
from annotations.rubric_schema import check_values, consensus, item_agreement
from annotations.selectors import rubric_specs
from annotations.services.campaigns import campaign_data_version_raise
from audit.actions import AuditAction
from audit.services import audit_record
from querybank.models import Query
from querybank.services import query_attributes_set


def item_agreement_refresh(*, item: CampaignItem, actor: User | None = None) -> CampaignItem:
    """Recompute the item's agreement, whether the campaign's rule calls it disputed, and its
    consensus gold label, and store them with ``item.label_count``. The caller holds the item's
    row lock (or is the only writer)."""
    campaign = item.campaign
    labels = list(Label.objects.filter(item=item).values_list("values", flat=True))
    specs = campaign.rubric.specs()
    result = item_agreement(
        specs,
        labels,
        on_primary=campaign.adjudicate_primary_disagreement,
        ordinal_spread=campaign.adjudicate_ordinal_spread,
    )
    gold_values, gold_source = item.gold_values, item.gold_source
    if gold_source != GoldSource.ADJUDICATION:
        # An adjudicated gold label stands until an adjudicator changes it; a consensus follows the labels.
        if item.label_count >= item.required_labels and not result.disputed:
            gold_values, gold_source = consensus(specs, labels), GoldSource.CONSENSUS
        else:
            gold_values, gold_source = None, GoldSource.NONE
    gold_changed = gold_values != item.gold_values
    item.agreement, item.disputed = result.score, result.disputed
    item.gold_values, item.gold_source = gold_values, gold_source
    CampaignItem.objects.filter(pk=item.pk).update(
        label_count=item.label_count,
        agreement=item.agreement,
        disputed=item.disputed,
        gold_values=gold_values,
        gold_source=gold_source,
    )
    if gold_changed:
        campaign_data_version_raise(campaign_ids=[campaign.pk])
    if gold_changed and gold_values and campaign.target == RubricTarget.QUERY:
        query_gold_apply(
            query=item.query,
            rubric=campaign.rubric,
            values=gold_values,
            actor=actor,
            reason=f"consensus of annotation item {item.pk}",
        )
    return item


@transaction.atomic
def adjudication_record(
    *, item: CampaignItem, adjudicator: User, values: dict[str, Any], rationale: str
) -> Adjudication:
    """Record the gold label of ``item``. Appends: an earlier decision is superseded, not changed."""
    if not can_adjudicate(adjudicator):
        raise PermissionDenied("Only adjudicators record gold labels.")
    item = (
        CampaignItem.objects.select_for_update(of=("self",))
        .select_related("campaign", "campaign__rubric", "campaign__guideline", "query", "query__category")
        .get(pk=item.pk)
    )
    campaign = item.campaign
    if item.label_count == 0:
        raise ValidationError("This item has no labels to adjudicate.")
    if Label.objects.filter(item=item, annotator=adjudicator).exists():
        raise ValidationError("You labelled this item yourself: another adjudicator must decide it.")
    rationale = rationale.strip()
    if not rationale:
        raise ValidationError({"rationale": "Give the reason for the gold label."})
    checked = check_values(rubric_specs(campaign=campaign, item=item), values)
    if not checked.ok:
        raise ValidationError(checked.errors)
    previous = Adjudication.objects.filter(item=item, superseded_by__isnull=True).first()
    decision = Adjudication.objects.create(
        item=item,
        adjudicator=adjudicator,
        values=checked.values,
        rationale=rationale,
        rubric=campaign.rubric,
        guideline=campaign.guideline,
        guideline_hash=campaign.guideline.content_hash,
        supersedes=previous,
    )
    CampaignItem.objects.filter(pk=item.pk).update(
        gold_values=checked.values, gold_source=GoldSource.ADJUDICATION
    )
    campaign_data_version_raise(campaign_ids=[campaign.pk])
    audit_record(
        actor=adjudicator,
        action=AuditAction.ADJUDICATION_RECORD,
        target=decision,
        details={"item": item.pk, "supersedes": previous.pk if previous else None, "values": checked.values},
    )
    if campaign.target == RubricTarget.QUERY:
        query_gold_apply(
            query=item.query,
            rubric=campaign.rubric,
            values=checked.values,
            actor=adjudicator,
            reason=f"adjudication {decision.pk}",
        )
    return decision


def query_gold_apply(
    *, query: Query, rubric: Rubric, values: dict[str, Any], actor: User | None, reason: str
) -> list[str]:
    """Set the query's category, expected behaviour and severity from a gold query label (the
    rubric fields that name a query attribute), through the query bank's own service; returns what
    changed."""
    changes = {
        field.query_attribute: str(values[field.name])
        for field in rubric.fields.exclude(query_attribute="")
        if values.get(field.name) not in (None, "")
    }
    return query_attributes_set(query=query, changes=changes, actor=actor, reason=f"gold label: {reason}")
