"""Reads of annotation data, scoped by the access policy, and the blinded views annotators get.

What an annotator receives is built here, field by field, from an allow-list (``BlindItem``):
never a model instance that a template or serializer could walk to the run, the target or the
model's name.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Sum
from django.db.models.functions import Coalesce

from accounts.models import User
from accounts.policy import can_adjudicate, can_annotate, can_manage_campaigns, is_clinician
from annotations.assignment import session_remaining
from annotations.blinding import identity_names, redact
from annotations.models import (
    Adjudication,
    AnnotationSession,
    Campaign,
    CampaignItem,
    CampaignStatus,
    Flag,
    GoldSource,
    Label,
    RubricTarget,
    Skip,
)
from annotations.rubric_schema import FieldSpec, pseudonyms
from evaluations.models import RunTarget
from querybank.models import Category, Query

# --- rubrics ------------------------------------------------------------------------------------


def categories_of(query: Query) -> list[tuple[str, str]]:
    """(slug, name) of the categories in the query's taxonomy: the options of a categories field."""
    return list(Category.objects.filter(taxonomy_id=query.category.taxonomy_id).values_list("slug", "name"))


def rubric_specs(*, campaign: Campaign, item: CampaignItem) -> list[FieldSpec]:
    """The campaign rubric's fields for ``item`` (a categories field offers the query's taxonomy)."""
    categories = categories_of(item.query) if campaign.target == RubricTarget.QUERY else []
    return campaign.rubric.specs(categories=categories)


# --- campaigns ----------------------------------------------------------------------------------


def campaign_list_for_annotator(*, user: User) -> QuerySet[Campaign]:
    """Campaigns ``user`` may label in: the queryset twin of ``can_annotate(user, campaign)``."""
    if not (getattr(user, "is_authenticated", False) and user.is_active and is_clinician(user)):
        return Campaign.objects.none()
    return Campaign.objects.filter(annotators=user)


def campaign_list_for_user(*, user: User) -> QuerySet[Campaign]:
    """Campaigns ``user`` may see: all for maintainers; non-draft ones for adjudicators; their own
    non-draft ones for annotators."""
    if can_manage_campaigns(user):
        return Campaign.objects.all()
    if can_adjudicate(user):
        mine = campaign_list_for_annotator(user=user).values("pk")
        return Campaign.objects.filter(~Q(status=CampaignStatus.DRAFT) | Q(pk__in=mine)).distinct()
    return campaign_list_for_annotator(user=user).exclude(status=CampaignStatus.DRAFT)


def campaign_get_for_user(*, user: User, campaign_id: int) -> Campaign:
    return campaign_list_for_user(user=user).select_related("rubric", "guideline").get(pk=campaign_id)


def campaign_get_for_annotator(*, user: User, campaign_id: int) -> Campaign:
    return (
        campaign_list_for_annotator(user=user)
        .exclude(status=CampaignStatus.DRAFT)
        .select_related("rubric", "guideline")
        .get(pk=campaign_id)
    )


@dataclass(frozen=True)
class CampaignProgress:
    items: int
    complete: int
    labels: int
    labels_needed: int
    disputed: int
    adjudicated: int

    @property
    def percent(self) -> float:
        return 100.0 * self.labels / self.labels_needed if self.labels_needed else 100.0


def campaign_progress(*, campaign: Campaign) -> CampaignProgress:
    row = CampaignItem.objects.filter(campaign=campaign).aggregate(
        items=Count("pk"),
        complete=Count("pk", filter=Q(label_count__gte=F("required_labels"))),
        labels=Coalesce(Sum("label_count"), 0),
        needed=Coalesce(Sum("required_labels"), 0),
        disputed=Count("pk", filter=Q(disputed=True)),
        adjudicated=Count("pk", filter=Q(gold_source=GoldSource.ADJUDICATION)),
    )
    return CampaignProgress(
        items=row["items"],
        complete=row["complete"],
        labels=row["labels"],
        labels_needed=row["needed"],
        disputed=row["disputed"],
        adjudicated=row["adjudicated"],
    )


@dataclass(frozen=True)
class AnnotatorProgress:
    done: int  # labels this annotator made in the campaign
    available: int  # items in the campaign
    session_done: int
    session_limit: int | None
    # Median seconds between this session's labels (from its start), None before the first label.
    seconds_per_item: float | None = None
    open_items: int = 0  # items of the campaign this annotator has neither labelled nor skipped

    @property
    def session_remaining(self) -> int | None:
        return session_remaining(limit=self.session_limit, done=self.session_done)

    @property
    def remaining(self) -> int:
        """Items left for this annotator now: the session's allowance, at most the campaign's items they
        have neither labelled nor skipped. Counted from their own work only: how far other annotators
        have got must not show (an item others finished is still counted here)."""
        left = self.session_remaining
        return self.open_items if left is None else min(left, self.open_items)

    @property
    def minutes_left(self) -> int | None:
        """An estimate of the time the remaining items take at this session's pace."""
        if self.seconds_per_item is None:
            return None
        return max(1, round(self.remaining * self.seconds_per_item / 60)) if self.remaining else 0


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def annotator_progress(
    *, campaign: Campaign, annotator: User, session: AnnotationSession | None
) -> AnnotatorProgress:
    times: list[datetime] = []
    if session is not None:
        times = list(
            Label.objects.filter(session=session).order_by("created_at").values_list("created_at", flat=True)
        )
    marks = [session.started_at, *times] if session is not None else []
    gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(marks)]
    # Counted from the annotator's own rows (a label or a skip each item at most once), so the cost
    # follows their own work, not the campaign's size, and nothing depends on other annotators.
    done = Label.objects.filter(campaign=campaign, annotator=annotator).count()
    available = CampaignItem.objects.filter(campaign=campaign).count()
    passed = (
        Skip.objects.filter(campaign=campaign, annotator=annotator)
        .exclude(Exists(Label.objects.filter(item=OuterRef("item_id"), annotator=annotator)))
        .count()
    )
    open_items = max(0, available - done - passed)
    return AnnotatorProgress(
        done=done,
        available=available,
        session_done=len(times),
        session_limit=session.item_limit if session else campaign.session_item_limit,
        seconds_per_item=_median(gaps),
        open_items=open_items,
    )


def label_previous_in_session(
    *, user: User, campaign: Campaign, session: AnnotationSession | None, before: int | None = None
) -> Label | None:
    """The annotator's label made in this session just before label ``before`` (or the last one):
    what the undo key reopens. Only the annotator's own labels, only in their running session."""
    if session is None or session.annotator_id != user.pk or session.campaign_id != campaign.pk:
        return None
    labels = label_list_for_annotator(user=user, campaign=campaign).filter(session=session)
    if before is not None:
        anchor = labels.filter(pk=before).values_list("created_at", flat=True).first()
        if anchor is None:
            return None
        labels = labels.filter(Q(created_at__lt=anchor) | Q(created_at=anchor, pk__lt=before))
    return labels.order_by("-created_at", "-pk").first()


def annotator_counts(*, campaign: Campaign) -> list[dict[str, Any]]:
    """Labels, skips and flags per annotator of the pool (maintainers' view)."""
    return list(
        campaign.annotators.annotate(
            label_total=Count(
                "annotation_labels", filter=Q(annotation_labels__campaign=campaign), distinct=True
            ),
        )
        .values("pk", "email", "display_name", "label_total")
        .order_by("email")
    )


# --- the blinded item ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BlindItem:
    """Everything an annotator is shown about an item, and nothing else."""

    item_id: int
    campaign_id: int
    target: str
    query_text: str
    response_text: str | None
    response_is_empty: bool
    category: str | None  # hidden when it is what a blind query campaign asks for
    specs: list[FieldSpec] = field(default_factory=list)
    own_values: dict[str, Any] | None = None
    own_label_id: int | None = None


def _identity_names(item: CampaignItem) -> list[str]:
    response = item.response  # no query when the item has no response
    if response is None:
        return []
    target = RunTarget.objects.select_related("endpoint", "pipeline").get(pk=response.target_id)
    values: list[object] = [target.label, response.resolved_model]
    if target.endpoint is not None:
        values += [target.endpoint.name, target.endpoint.slug, target.endpoint.model_name]
    if target.pipeline is not None:
        values += [target.pipeline.name, target.pipeline.slug]
    for part in ("input_guard", "model", "output_guard"):
        snapshot = (target.config or {}).get(part) or {}
        values += [snapshot.get("name"), snapshot.get("slug"), snapshot.get("model_name")]
    return identity_names(values)


def blind_item(*, item: CampaignItem, annotator: User) -> BlindItem:
    campaign = item.campaign
    own = Label.objects.filter(item=item, annotator=annotator).first()
    response = item.response  # no query when the item has no response
    response_text = None
    if response is not None:
        response_text = redact(response.text, _identity_names(item))
    show_category = not (campaign.target == RubricTarget.QUERY and campaign.blind)
    return BlindItem(
        item_id=item.pk,
        campaign_id=campaign.pk,
        target=campaign.target,
        query_text=item.query.text,
        response_text=response_text,
        response_is_empty=response is not None and not response.text.strip(),
        category=item.query.category.name if show_category else None,
        specs=rubric_specs(campaign=campaign, item=item),
        own_values=own.values if own else None,
        own_label_id=own.pk if own else None,
    )


def item_list_for_annotator(*, user: User) -> QuerySet[CampaignItem]:
    """Items ``user`` holds a lease on or has labelled, in campaigns whose pool holds them."""
    campaigns = campaign_list_for_annotator(user=user).values("pk")
    return (
        CampaignItem.objects.filter(campaign__in=campaigns)
        .filter(Q(leases__annotator=user) | Q(labels__annotator=user))
        .select_related("campaign", "campaign__rubric", "query", "query__category", "response")
        .distinct()
    )


def item_get_for_annotator(*, user: User, campaign: Campaign, item_id: int) -> CampaignItem:
    """An item of ``campaign`` that ``user`` holds or has labelled; else ``DoesNotExist``."""
    if not can_annotate(user, campaign):
        raise CampaignItem.DoesNotExist
    return item_list_for_annotator(user=user).get(campaign=campaign, pk=item_id)


def label_list_for_annotator(*, user: User, campaign: Campaign | None = None) -> QuerySet[Label]:
    """The annotator's own labels; nobody else's, whatever their role."""
    labels = Label.objects.filter(annotator=user, annotator__is_active=True)
    if campaign is not None:
        labels = labels.filter(campaign=campaign)
    return labels.select_related("item", "item__query", "campaign", "rubric", "guideline").order_by(
        "-created_at"
    )


def label_get_for_user(*, user: User, label_id: int) -> Label:
    return label_list_for_annotator(user=user).get(pk=label_id)


# --- adjudication -------------------------------------------------------------------------------


def adjudication_queue(*, user: User, campaign: Campaign | None = None) -> QuerySet[CampaignItem]:
    """Disputed items with all their labels (or in a closed campaign) and no gold decision yet,
    lowest agreement first. Items the adjudicator labelled are left to another adjudicator."""
    if not can_adjudicate(user):
        return CampaignItem.objects.none()
    items = CampaignItem.objects.filter(disputed=True).exclude(campaign__status=CampaignStatus.DRAFT)
    if campaign is not None:
        items = items.filter(campaign=campaign)
    return (
        items.filter(Q(label_count__gte=F("required_labels")) | Q(campaign__status=CampaignStatus.CLOSED))
        .exclude(Exists(Adjudication.objects.filter(item=OuterRef("pk"))))
        .exclude(Exists(Label.objects.filter(item=OuterRef("pk"), annotator=user)))
        .select_related("campaign", "query", "query__category")
        .order_by(F("agreement").asc(nulls_first=True), "pk")
    )


def adjudicable_items(*, user: User) -> QuerySet[CampaignItem]:
    """Items an adjudicator may open: any labelled item of a non-draft campaign, not labelled by them."""
    if not can_adjudicate(user):
        return CampaignItem.objects.none()
    return (
        CampaignItem.objects.filter(label_count__gt=0)
        .exclude(campaign__status=CampaignStatus.DRAFT)
        .exclude(Exists(Label.objects.filter(item=OuterRef("pk"), annotator=user)))
        .select_related(
            "campaign", "campaign__rubric", "campaign__guideline", "query", "query__category", "response"
        )
    )


@dataclass(frozen=True)
class PseudonymousLabel:
    annotator: str  # "Annotator A": by order of labelling, the same letter for the same person on the item
    values: dict[str, Any]
    guideline_version: int | None
    created_at: datetime


@dataclass(frozen=True)
class AdjudicationView:
    item: BlindItem
    labels: list[PseudonymousLabel]
    rows: list[dict[str, Any]]  # per field: label, values side by side, whether they differ
    history: list[Adjudication]
    agreement: float | None


def agreed_values(*, specs: list[FieldSpec], labels: list[PseudonymousLabel]) -> dict[str, Any]:
    """The value of each categorical field on which two or more labels all agree."""
    agreed: dict[str, Any] = {}
    for spec in specs:
        if not spec.is_categorical:
            continue
        values = [label.values.get(spec.name) for label in labels]
        if len(values) >= 2 and values[0] is not None and all(repr(v) == repr(values[0]) for v in values):
            agreed[spec.name] = values[0]
    return agreed


def adjudication_view(*, item: CampaignItem, adjudicator: User) -> AdjudicationView:
    labels = list(Label.objects.filter(item=item).order_by("created_at", "pk"))
    names = pseudonyms(len(labels))
    shown = [
        PseudonymousLabel(
            annotator=name,
            values=label.values,
            guideline_version=label.guideline.version if label.guideline is not None else None,
            created_at=label.created_at,
        )
        for name, label in zip(names, labels, strict=True)
    ]
    blind = blind_item(item=item, annotator=adjudicator)
    rows = []
    for spec in blind.specs:
        values = [label.values.get(spec.name) for label in labels]
        present = [repr(v) for v in values if v is not None]
        rows.append(
            {
                "spec": spec,
                "cells": [spec.option_label(v) if spec.is_categorical else (v or "") for v in values],
                "differs": spec.is_categorical and len(set(present)) > 1,
            }
        )
    history = list(
        Adjudication.objects.filter(item=item).select_related("adjudicator").order_by("-created_at", "-pk")
    )
    return AdjudicationView(item=blind, labels=shown, rows=rows, history=history, agreement=item.agreement)


# --- maintainers ----------------------------------------------------------------------------------


def flag_list_for_user(*, user: User, campaign: Campaign | None = None) -> QuerySet[Flag]:
    if not can_manage_campaigns(user):
        return Flag.objects.none()
    flags = Flag.objects.select_related("annotator", "item")
    if campaign is not None:
        flags = flags.filter(campaign=campaign)
    return flags


def disputed_items(*, user: User, campaign: Campaign) -> QuerySet[CampaignItem]:
    """A campaign's disputed items, lowest agreement first (maintainers' overview)."""
    if not can_manage_campaigns(user):
        return CampaignItem.objects.none()
    return (
        CampaignItem.objects.filter(campaign=campaign, disputed=True)
        .select_related("query")
        .order_by(F("agreement").asc(nulls_first=True), "pk")
    )


def item_identity(*, item: CampaignItem) -> dict[str, Any]:
    """Which model wrote the item: for maintainers only, through ``item_unblind`` (audited)."""
    response = item.response  # no query when the item has no response
    if response is None:
        return {}
    target = RunTarget.objects.select_related("run", "endpoint", "pipeline").get(pk=response.target_id)
    return {
        "run": target.run.name,
        "run_id": target.run_id,
        "target": target.label,
        "endpoint": target.endpoint.name if target.endpoint else None,
        "pipeline": target.pipeline.name if target.pipeline else None,
        "model_name": (target.config.get("model") or {}).get("model_name"),
        "resolved_model": response.resolved_model,
        "response_id": item.response_id,
    }


def query_items_blind_for(user: User) -> QuerySet[CampaignItem]:
    """Items of the open, blind query campaigns in whose pool ``user`` is: the queries whose asked
    fields the query bank hides from them (registered with ``querybank.selectors`` at start-up)."""
    return CampaignItem.objects.filter(
        campaign__annotators=user,
        campaign__status=CampaignStatus.OPEN,
        campaign__blind=True,
        campaign__target=RubricTarget.QUERY,
    )
