"""Reads of the audit trail: filtered event lists for the staff page and its CSV export."""

from __future__ import annotations

from datetime import date, datetime, time

from django.db.models import QuerySet
from django.utils import timezone

from audit.models import AuditEvent


def event_list(
    *,
    actor: str = "",
    action: str = "",
    target_type: str = "",
    target_id: str = "",
    since: date | None = None,
    until: date | None = None,
) -> QuerySet[AuditEvent]:
    events = AuditEvent.objects.select_related("actor").order_by("-created_at", "-id")
    if actor:
        events = events.filter(actor__email__icontains=actor.strip())
    if action:
        events = events.filter(action=action.strip())
    if target_type:
        events = events.filter(target_type=target_type.strip())
    if target_id:
        events = events.filter(target_id=target_id.strip())
    if since:
        events = events.filter(created_at__gte=timezone.make_aware(datetime.combine(since, time.min)))
    if until:
        events = events.filter(created_at__lte=timezone.make_aware(datetime.combine(until, time.max)))
    return events
