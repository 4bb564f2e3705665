"""Campaigns: creation with their items in campaign order, opening, closing, and changes."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from accounts.models import User
from accounts.policy import can_manage_campaigns, require
from accounts.roles import Role
from annotations.assignment import Candidate, stratified_order
from annotations.models import Campaign, CampaignItem, CampaignStatus, Guideline, Lease, Rubric, RubricTarget
from audit.actions import AuditAction
from audit.services import audit_record
from evaluations.models import ModelResponse, ResponseOutcome
from querybank.models import Query, QueryStatus

# Responses with text to judge. Blocks, errors and provider filters have none: scores count them
# from the collection itself, not from clinicians.
ANNOTATABLE_OUTCOMES = (ResponseOutcome.COLLECTED, ResponseOutcome.EMPTY)

_MANAGERS_ONLY = "Only maintainers set up, open, close or change campaigns."
_CHANGEABLE = ("name", "description", "deadline", "session_item_limit", "lease_minutes")


def campaign_data_version_raise(*, campaign_ids: Iterable[int] | QuerySet[Any]) -> None:
    """Raise the data version of ``campaign_ids`` (ids, or a query of them), so their cached
    scores and agreement figures are recomputed on the next view. Called by every service that
    changes what the figures show, inside its transaction: the increment is one ``UPDATE`` on the
    campaign row, committed (or rolled back) with the change it announces."""
    Campaign.objects.filter(pk__in=campaign_ids).update(data_version=F("data_version") + 1)


def _check_annotators(annotators: Iterable[User]) -> list[User]:
    annotators = list(annotators)
    not_clinicians = [u.email for u in annotators if not u.groups.filter(name=Role.CLINICIAN.value).exists()]
    if not_clinicians:
        raise ValidationError(
            {"annotators": f"Not clinician annotators: {', '.join(sorted(not_clinicians))}."}
        )
    return annotators


def campaign_responses(
    *, runs: Sequence[int], run_targets: Sequence[int] = (), categories: Sequence[int] = ()
) -> QuerySet[ModelResponse]:
    """The annotatable responses of ``runs``, narrowed to targets (models) and categories."""
    responses = ModelResponse.objects.filter(run_id__in=runs, outcome__in=ANNOTATABLE_OUTCOMES)
    if run_targets:
        responses = responses.filter(target_id__in=run_targets)
    if categories:
        responses = responses.filter(query__category_id__in=categories)
    return responses


def campaign_queries(*, categories: Sequence[int] = (), sources: Sequence[str] = ()) -> QuerySet[Query]:
    queries = Query.objects.filter(status=QueryStatus.ACTIVE)
    if categories:
        queries = queries.filter(category_id__in=categories)
    if sources:
        queries = queries.filter(source__in=sources)
    return queries


@transaction.atomic
def campaign_create(
    *,
    actor: User,
    name: str,
    target: str,
    rubric: Rubric,
    guideline: Guideline,
    overlap: int = 2,
    annotators: Iterable[User] = (),
    blind: bool = True,
    deadline: datetime | None = None,
    session_item_limit: int | None = None,
    lease_minutes: int = 20,
    adjudicate_primary_disagreement: bool = True,
    adjudicate_ordinal_spread: int | None = 2,
    description: str = "",
    runs: Sequence[int] = (),
    run_targets: Sequence[int] = (),
    categories: Sequence[int] = (),
    sources: Sequence[str] = (),
) -> Campaign:
    """A draft campaign over responses (of ``runs``, optionally narrowed by target and category)
    or over queries (optionally by category and source), with its items in campaign order."""
    require(can_manage_campaigns, actor, message=_MANAGERS_ONLY)
    if target not in RubricTarget.values:
        raise ValidationError({"target": f"Unknown target {target!r}."})
    if rubric.target != target:
        raise ValidationError(
            {"rubric": f"{rubric} rates {rubric.get_target_display().lower()}, not {target}s."}
        )
    annotators = _check_annotators(annotators)
    campaign = Campaign(
        name=name,
        description=description,
        target=target,
        rubric=rubric,
        guideline=guideline,
        overlap=overlap,
        blind=blind,
        deadline=deadline,
        session_item_limit=session_item_limit,
        lease_minutes=lease_minutes,
        adjudicate_primary_disagreement=adjudicate_primary_disagreement,
        adjudicate_ordinal_spread=adjudicate_ordinal_spread,
        seed=secrets.token_hex(16),
        created_by=actor,
        selection={
            "runs": list(runs),
            "run_targets": list(run_targets),
            "categories": list(categories),
            "sources": list(sources),
        },
    )
    campaign.full_clean()
    items: dict[int, tuple[int, int | None, str]]  # key -> (query, response or none, stratum)
    if target == RubricTarget.RESPONSE:
        if not runs:
            raise ValidationError({"runs": "Choose at least one collection run."})
        rows = list(
            campaign_responses(runs=runs, run_targets=run_targets, categories=categories).values_list(
                "pk", "query_id", "target_id", "query__category_id"
            )
        )
        items = {
            pk: (query_id, pk, f"t{target_id}:c{category_id}")
            for pk, query_id, target_id, category_id in rows
        }
    else:
        query_rows = campaign_queries(categories=categories, sources=sources).values_list("pk", "category_id")
        items = {pk: (pk, None, f"c{category_id}") for pk, category_id in query_rows}
    if not items:
        raise ValidationError("The selection holds nothing to annotate.")
    campaign.save()
    campaign.annotators.set(annotators)
    order = stratified_order(
        (Candidate(key, stratum) for key, (_, _, stratum) in items.items()), seed=campaign.seed
    )
    CampaignItem.objects.bulk_create(
        (
            CampaignItem(
                campaign=campaign,
                query_id=items[key][0],
                response_id=items[key][1],
                stratum=items[key][2],
                sort_key=position,
                required_labels=overlap,
            )
            for position, key in enumerate(order)
        ),
        batch_size=2000,
    )
    audit_record(
        actor=actor,
        action=AuditAction.CAMPAIGN_CREATE,
        target=campaign,
        details={
            "target": target,
            "items": len(order),
            "overlap": overlap,
            "blind": blind,
            "rubric": [rubric.slug, rubric.version],
            "guideline": [guideline.slug, guideline.version],
            "annotators": [u.pk for u in annotators],
            "selection": campaign.selection,
        },
    )
    return campaign


def _transition(
    *, campaign: Campaign, actor: User, action: AuditAction, allowed: Sequence[str], to: str, **fields: Any
) -> Campaign:
    # A conditional UPDATE: two maintainers pressing "open" and "close" at once cannot both win.
    updated = Campaign.objects.filter(pk=campaign.pk, status__in=list(allowed)).update(status=to, **fields)
    campaign.refresh_from_db()
    if not updated:
        raise ValidationError(
            f"A {campaign.get_status_display().lower()} campaign cannot be {action.split('_')[1]}ed."
        )
    campaign_data_version_raise(campaign_ids=[campaign.pk])
    campaign.refresh_from_db(fields=["data_version"])
    audit_record(actor=actor, action=action, target=campaign, details={"status": to})
    return campaign


@transaction.atomic
def campaign_open(*, campaign: Campaign, actor: User) -> Campaign:
    """Draft or closed → open. Needs at least k annotators, or no item could ever be finished."""
    require(can_manage_campaigns, actor, campaign, message=_MANAGERS_ONLY)
    pool = campaign.annotators.count()
    if pool < campaign.overlap:
        raise ValidationError(
            {"annotators": f"The pool has {pool} annotator(s); each item needs {campaign.overlap} labels."}
        )
    return _transition(
        campaign=campaign,
        actor=actor,
        action=AuditAction.CAMPAIGN_OPEN,
        allowed=[CampaignStatus.DRAFT, CampaignStatus.CLOSED],
        to=CampaignStatus.OPEN,
        opened_at=timezone.now(),
        closed_at=None,
    )


@transaction.atomic
def campaign_close(*, campaign: Campaign, actor: User) -> Campaign:
    """Open → closed: no more labels or edits; items handed out are released."""
    require(can_manage_campaigns, actor, campaign, message=_MANAGERS_ONLY)
    campaign = _transition(
        campaign=campaign,
        actor=actor,
        action=AuditAction.CAMPAIGN_CLOSE,
        allowed=[CampaignStatus.OPEN],
        to=CampaignStatus.CLOSED,
        closed_at=timezone.now(),
    )
    Lease.objects.filter(campaign=campaign).delete()
    return campaign


@transaction.atomic
def campaign_update(
    *, campaign: Campaign, actor: User, annotators: Iterable[User] | None = None, **changes: Any
) -> Campaign:
    """Change the name, description, deadline, session limit, lease length or the pool. The rubric,
    guideline, overlap and items are fixed once created: labels are comparable only under them."""
    require(can_manage_campaigns, actor, campaign, message=_MANAGERS_ONLY)
    unknown = set(changes) - set(_CHANGEABLE)
    if unknown:
        raise ValidationError(f"These cannot change after creation: {', '.join(sorted(unknown))}.")
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    before = {name: str(getattr(campaign, name)) for name in changes}
    for name, value in changes.items():
        setattr(campaign, name, value)
    campaign.full_clean()
    campaign.save()
    details: dict[str, object] = {"before": before, "after": {name: str(v) for name, v in changes.items()}}
    if annotators is not None:
        annotators = _check_annotators(annotators)
        removed = set(campaign.annotators.values_list("pk", flat=True)) - {u.pk for u in annotators}
        campaign.annotators.set(annotators)
        # Someone leaving the pool gives back the item they hold.
        Lease.objects.filter(campaign=campaign, annotator_id__in=removed).delete()
        details["annotators"] = sorted(u.pk for u in annotators)
    campaign_data_version_raise(campaign_ids=[campaign.pk])  # the name is in the figures
    campaign.refresh_from_db(fields=["data_version"])
    audit_record(actor=actor, action=AuditAction.CAMPAIGN_UPDATE, target=campaign, details=details)
    return campaign
