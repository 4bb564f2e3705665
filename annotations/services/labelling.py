"""Labelling: sessions, "next item" (leases), submitting and editing labels, skips and flags.

Race-freedom rests on one lock: every change to an item's labels or leases happens while holding
that item's row lock (``SELECT ... FOR UPDATE``). "Next item" takes its candidates with
``SKIP LOCKED``, so annotators never queue behind each other, and re-counts live leases after the
lock is held, so no item is ever handed out more often than it can still be labelled. The
database's check constraint (label_count <= required_labels) and the unique (item, annotator)
constraint hold the k rule even against code that forgets all this.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, Exists, F, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.models import User
from accounts.policy import can_annotate, can_manage_campaigns, require
from annotations.assignment import CHOICE_WINDOW, free_slots, preference, session_remaining
from annotations.models import (
    AnnotationSession,
    Campaign,
    CampaignItem,
    Flag,
    FlagReason,
    Label,
    Lease,
    Skip,
    SkipReason,
)
from annotations.rubric_schema import check_values
from annotations.selectors import rubric_specs
from annotations.services.adjudication import item_agreement_refresh
from annotations.services.campaigns import campaign_data_version_raise
from audit.actions import AuditAction
from audit.services import audit_record
from core.locks import advisory_lock

# Stretches of the campaign order "next item" tries before it answers "nothing free right now".
WINDOWS_TRIED = 4

# A session left this long without a label is over: the next visit starts a new one (and shows
# the content warning again).
SESSION_IDLE = timedelta(hours=4)


class ClaimOutcome(enum.StrEnum):
    """What asking for the next item gave: an item, or why there is none now."""

    ITEM = "item"
    SESSION_LIMIT = "session_limit"  # the session's item limit is reached: time for a break
    WAITING = "waiting"  # items remain, but others hold them now; some may come back
    DONE = "done"  # nothing left that this annotator can label
    CLOSED = "closed"  # the campaign does not take labels (not open, or past its deadline)


@dataclass(frozen=True)
class NextItem:
    """What ``item_next`` answers: the item leased to the annotator, or the reason there is none."""

    outcome: ClaimOutcome
    item: CampaignItem | None = None
    lease: Lease | None = None


def _require_annotator(campaign: Campaign, annotator: User) -> None:
    # The views ask the same rule first; a service is a boundary too (API, commands, tests).
    if not can_annotate(annotator, campaign):
        raise PermissionDenied("You are not an annotator of this campaign.")


def _require_open(campaign: Campaign, now: datetime) -> None:
    if not campaign.accepts_labels(now):
        raise ValidationError("This campaign is not taking labels (it is closed or past its deadline).")


# --- sessions -------------------------------------------------------------------------------------


def session_current(
    *, campaign: Campaign, annotator: User, now: datetime | None = None
) -> AnnotationSession | None:
    """The annotator's running session, or ``None`` if the last one ended or went idle."""
    now = now or timezone.now()
    session = (
        AnnotationSession.objects.filter(campaign=campaign, annotator=annotator, ended_at__isnull=True)
        .order_by("-started_at", "-id")
        .first()
    )
    if session is None:
        return None
    last = (
        Label.objects.filter(session=session)
        .order_by("-created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    if (last or session.started_at) < now - SESSION_IDLE:
        return None
    return session


@transaction.atomic
def session_start(*, campaign: Campaign, annotator: User, now: datetime | None = None) -> AnnotationSession:
    """Start a session: the annotator has read the content warning. Ends any earlier session."""
    now = now or timezone.now()
    _require_annotator(campaign, annotator)
    _require_open(campaign, now)
    AnnotationSession.objects.filter(campaign=campaign, annotator=annotator, ended_at__isnull=True).update(
        ended_at=now
    )
    session = AnnotationSession.objects.create(
        campaign=campaign, annotator=annotator, item_limit=campaign.session_item_limit, started_at=now
    )
    audit_record(
        actor=annotator, action=AuditAction.SESSION_START, target=session, details={"campaign": campaign.pk}
    )
    return session


def session_done(session: AnnotationSession) -> int:
    return Label.objects.filter(session=session).count()


# --- next item --------------------------------------------------------------------------------------


def _live_leases_of_others(annotator: User, now: datetime) -> Subquery:
    return Subquery(
        Lease.objects.filter(item=OuterRef("pk"), expires_at__gt=now)
        .exclude(annotator=annotator)
        .order_by()
        .values("item")
        .annotate(n=Count("pk"))
        .values("n")
    )


def _eligible(campaign: Campaign, annotator: User, now: datetime):
    """Items this annotator may be given now: they need labels, the annotator has neither
    labelled nor skipped them, and live leases of others leave a slot free."""
    return (
        CampaignItem.objects.filter(campaign=campaign, label_count__lt=F("required_labels"))
        .exclude(Exists(Label.objects.filter(item=OuterRef("pk"), annotator=annotator)))
        .exclude(Exists(Skip.objects.filter(item=OuterRef("pk"), annotator=annotator)))
        .annotate(leased=Coalesce(_live_leases_of_others(annotator, now), 0))
        .filter(label_count__lt=F("required_labels") - F("leased"))
    )


def _has_room(candidate: CampaignItem, annotator: User, now: datetime) -> bool:
    """Re-counted once the row is locked: leases committed after the window was read count too."""
    leased = Lease.objects.filter(item=candidate, expires_at__gt=now).exclude(annotator=annotator).count()
    return (
        free_slots(
            required=candidate.required_labels, labelled=candidate.label_count, leased_by_others=leased
        )
        > 0
    )


def _lease(
    campaign: Campaign,
    annotator: User,
    item: CampaignItem,
    lease: Lease | None,
    session: AnnotationSession | None,
    now: datetime,
    expires: datetime,
) -> NextItem:
    if lease is None:
        lease = Lease.objects.create(
            campaign=campaign,
            annotator=annotator,
            item=item,
            session=session,
            leased_at=now,
            expires_at=expires,
        )
    else:
        lease.item, lease.session, lease.leased_at, lease.expires_at = item, session, now, expires
        lease.save(update_fields=["item", "session", "leased_at", "expires_at"])
    # Who was shown which item, and when: query text is sensitive data.
    audit_record(
        actor=annotator,
        action=AuditAction.ITEM_CLAIM,
        target=item,
        details={"campaign": campaign.pk, "expires_at": expires.isoformat()},
    )
    return NextItem(ClaimOutcome.ITEM, item=item, lease=lease)


@transaction.atomic
def item_next(
    *,
    campaign: Campaign,
    annotator: User,
    session: AnnotationSession | None = None,
    now: datetime | None = None,
) -> NextItem:
    """The item this annotator should label now, reserved for ``campaign.lease_minutes``.

    Returns the item already held if its lease is live (a reload or a second tab gets the same
    item); otherwise reserves a new one from the front of the campaign order.
    """
    now = now or timezone.now()
    _require_annotator(campaign, annotator)
    if not campaign.accepts_labels(now):
        return NextItem(ClaimOutcome.CLOSED)
    if session is not None and session_remaining(limit=session.item_limit, done=session_done(session)) == 0:
        return NextItem(ClaimOutcome.SESSION_LIMIT)
    expires = now + timedelta(minutes=campaign.lease_minutes)

    # One claim at a time per annotator and campaign (two tabs, a double click): the lease row
    # may not exist yet, so a row lock cannot serialise them.
    advisory_lock(f"annotations:claim:{campaign.pk}:{annotator.pk}")
    lease = Lease.objects.filter(campaign=campaign, annotator=annotator).first()
    if lease is not None and lease.expires_at > now:
        # Renewing the lease: the annotator is still at it.
        lease.expires_at = expires
        lease.session = session or lease.session
        lease.save(update_fields=["expires_at", "session"])
        item = CampaignItem.objects.select_related("query", "query__category", "response").get(
            pk=lease.item_id
        )
        return NextItem(ClaimOutcome.ITEM, item=item, lease=lease)

    # The front of the campaign order is read without locks; then the annotator's preferred item is
    # locked alone, with SKIP LOCKED (an item another claim or submit holds this instant is passed
    # over), so a claim never holds more than one item while others are submitting theirs. When
    # others took every item of the window meanwhile, the next stretch of the order is tried.
    locked = CampaignItem.objects.select_for_update(skip_locked=True, of=("self",)).select_related(
        "query", "query__category", "response"
    )
    after = -1
    for _ in range(WINDOWS_TRIED):
        window = list(
            _eligible(campaign, annotator, now)
            .filter(sort_key__gt=after)
            .order_by("sort_key")
            .values_list("pk", "sort_key")[:CHOICE_WINDOW]
        )
        if not window:
            break
        after = window[-1][1]
        window.sort(key=lambda row: preference(seed=campaign.seed, annotator_id=annotator.pk, item_id=row[0]))
        for item_id, _sort_key in window:
            candidate = locked.filter(pk=item_id, label_count__lt=F("required_labels")).first()
            # None: locked by someone else this instant, or filled since the window was read.
            if candidate is not None and _has_room(candidate, annotator, now):
                return _lease(campaign, annotator, candidate, lease, session, now, expires)

    if lease is not None:
        lease.delete()  # expired and nothing to replace it: do not keep a stale reservation
    # Nothing free now. Items others hold (or are locking this instant) may still come back.
    remaining = (
        CampaignItem.objects.filter(campaign=campaign, label_count__lt=F("required_labels"))
        .exclude(Exists(Label.objects.filter(item=OuterRef("pk"), annotator=annotator)))
        .exclude(Exists(Skip.objects.filter(item=OuterRef("pk"), annotator=annotator)))
        .exists()
    )
    return NextItem(ClaimOutcome.WAITING if remaining else ClaimOutcome.DONE)


def _locked_item(item_id: int) -> CampaignItem:
    return (
        CampaignItem.objects.select_for_update(of=("self",))
        .select_related("campaign", "campaign__rubric", "campaign__guideline", "query", "query__category")
        .get(pk=item_id)
    )


# --- labels -----------------------------------------------------------------------------------------


@transaction.atomic
def label_submit(
    *, item: CampaignItem, annotator: User, values: dict[str, Any], now: datetime | None = None
) -> Label:
    """Record the annotator's label for the item they were given. Refused when the campaign is not
    taking labels, the annotator was never given the item, or their reservation ran out and the
    item has since gone to others."""
    now = now or timezone.now()
    item = _locked_item(item.pk)
    campaign = item.campaign
    _require_annotator(campaign, annotator)
    _require_open(campaign, now)
    advisory_lock(f"annotations:claim:{campaign.pk}:{annotator.pk}")
    # Every lease on the item, in one read: the annotator's own, and the live ones of others.
    leases = list(Lease.objects.filter(item=item))
    lease = next((held for held in leases if held.annotator_id == annotator.pk), None)
    if lease is None:
        # A lease exists until its label is made, so without one the item is done or not theirs.
        if Label.objects.filter(item=item, annotator=annotator).exists():
            raise ValidationError("You have already labelled this item; edit your label instead.")
        raise ValidationError("This item is not assigned to you: ask for the next item.")
    leased = sum(1 for held in leases if held.annotator_id != annotator.pk and held.expires_at > now)
    if free_slots(required=item.required_labels, labelled=item.label_count, leased_by_others=leased) <= 0:
        lease.delete()
        raise ValidationError("Your time on this item ran out and it went to other annotators.")
    checked = check_values(rubric_specs(campaign=campaign, item=item), values)
    if not checked.ok:
        raise ValidationError(checked.errors)

    label = Label.objects.create(
        item=item,
        campaign=campaign,
        annotator=annotator,
        session=lease.session,
        rubric=campaign.rubric,
        guideline=campaign.guideline,
        guideline_hash=campaign.guideline.content_hash,
        values=checked.values,
    )
    # The row is locked: the new count is exact, and the refresh below writes it with the agreement.
    item.label_count += 1
    # Before the lease goes: closing a campaign locks its row, then deletes leases; same order here.
    campaign_data_version_raise(campaign_ids=[campaign.pk])
    lease.delete()
    audit_record(
        actor=annotator,
        action=AuditAction.LABEL_SUBMIT,
        target=label,
        details={
            "item": item.pk,
            "campaign": campaign.pk,
            "rubric": campaign.rubric_id,
            "guideline": campaign.guideline_id,
            "guideline_hash": campaign.guideline.content_hash,
        },
    )
    item_agreement_refresh(item=item, actor=annotator)
    return label


@transaction.atomic
def label_edit(
    *, label: Label, annotator: User, values: dict[str, Any], now: datetime | None = None
) -> Label:
    """Change one's own label while the campaign is open. The audit event keeps the old values."""
    now = now or timezone.now()
    item = _locked_item(label.item_id)
    label = Label.objects.select_for_update().get(pk=label.pk)
    if label.annotator_id != annotator.pk:
        raise PermissionDenied("Only the annotator who made a label may change it.")
    campaign = item.campaign
    _require_annotator(campaign, annotator)
    _require_open(campaign, now)
    checked = check_values(rubric_specs(campaign=campaign, item=item), values)
    if not checked.ok:
        raise ValidationError(checked.errors)
    before = label.values
    if before == checked.values:
        return label
    label.values = checked.values
    label.revision += 1
    label.save(update_fields=["values", "revision", "updated_at"])
    audit_record(
        actor=annotator,
        action=AuditAction.LABEL_EDIT,
        target=label,
        details={"item": item.pk, "before": before, "after": checked.values, "revision": label.revision},
    )
    item_agreement_refresh(item=item, actor=annotator)
    campaign_data_version_raise(campaign_ids=[campaign.pk])
    return label


@transaction.atomic
def item_skip(
    *, item: CampaignItem, annotator: User, reason: str, note: str = "", now: datetime | None = None
) -> Skip:
    """Pass on the item held; it is not offered to this annotator again and returns to the pool."""
    now = now or timezone.now()
    if reason not in SkipReason.values:
        raise ValidationError({"reason": "Choose a reason for skipping."})
    item = _locked_item(item.pk)
    _require_annotator(item.campaign, annotator)
    advisory_lock(f"annotations:claim:{item.campaign_id}:{annotator.pk}")
    lease = Lease.objects.filter(campaign=item.campaign, annotator=annotator, item=item).first()
    if lease is None:
        raise ValidationError("This item is not assigned to you.")
    skip = Skip(item=item, campaign=item.campaign, annotator=annotator, reason=reason, note=note.strip())
    skip.full_clean(exclude=["item", "campaign", "annotator"])
    skip.save()
    lease.delete()
    audit_record(
        actor=annotator,
        action=AuditAction.ITEM_SKIP,
        target=item,
        details={"reason": reason, "note": skip.note},
    )
    return skip


@transaction.atomic
def item_flag(*, item: CampaignItem, annotator: User, reason: str, note: str = "") -> Flag:
    """Report the item's content to the maintainers (the item held, or one already labelled)."""
    if reason not in FlagReason.values:
        raise ValidationError({"reason": "Choose what is wrong with the content."})
    item = CampaignItem.objects.select_related("campaign").get(pk=item.pk)
    _require_annotator(item.campaign, annotator)
    holds = Lease.objects.filter(campaign=item.campaign, annotator=annotator, item=item).exists()
    if not holds and not Label.objects.filter(item=item, annotator=annotator).exists():
        raise ValidationError("You can flag only an item you are labelling or have labelled.")
    flag = Flag(item=item, campaign=item.campaign, annotator=annotator, reason=reason, note=note.strip())
    flag.full_clean(exclude=["item", "campaign", "annotator"])
    flag.save()
    audit_record(
        actor=annotator,
        action=AuditAction.ITEM_FLAG,
        target=flag,
        details={"item": item.pk, "reason": reason},
    )
    return flag


@transaction.atomic
def flag_resolve(*, flag: Flag, actor: User, now: datetime | None = None) -> Flag:
    require(can_manage_campaigns, actor, message="Only maintainers resolve flags.")
    if flag.resolved_at is not None:
        return flag
    flag.resolved_at = now or timezone.now()
    flag.resolved_by = actor
    flag.save(update_fields=["resolved_at", "resolved_by"])
    audit_record(actor=actor, action=AuditAction.FLAG_RESOLVE, target=flag, details={"item": flag.item_id})
    return flag
