"""Writing audit events. Call inside the service's own ``transaction.atomic`` block.

Each event is chained to the one before (``audit.chain``): the writer takes a transaction-scoped
lock on PostgreSQL so that two transactions never chain onto the same predecessor (SQLite runs one
writer at a time anyway), and the lock is released when the writing transaction ends.
"""

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import models, transaction
from django.utils import timezone

from audit.actions import AuditAction
from audit.chain import GENESIS, event_digest
from audit.context import current_meta
from audit.models import AuditEvent
from core.actors import SystemActor
from core.locks import advisory_lock


def audit_record(
    *,
    actor: AbstractBaseUser | SystemActor | None,
    action: AuditAction,
    target: models.Model | None = None,
    details: dict[str, object] | None = None,
) -> AuditEvent:
    """Record ``action`` by ``actor``; ``SYSTEM`` (the platform) and ``None`` are recorded as no person."""
    if action not in AuditAction.values:
        raise ValueError(f"{action!r} is not an audit action; add it to audit.actions.AuditAction.")
    meta = current_meta()
    with transaction.atomic():
        advisory_lock("audit:chain")
        prev = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first() or GENESIS
        event = AuditEvent(
            # By id: ``audit`` sits below ``accounts`` and names no concrete user model.
            actor_id=actor.pk if isinstance(actor, AbstractBaseUser) and actor.pk else None,
            action=AuditAction(action),
            target_type=target._meta.label_lower if target is not None else "",
            target_id=str(target.pk) if target is not None else "",
            details=details or {},
            created_at=timezone.now(),
            ip_address=meta.ip_address,
            user_agent=meta.user_agent,
            prev_hash=prev,
        )
        event.hash = event_digest(
            prev,
            {
                "actor_id": event.actor_id,
                "action": event.action,
                "target_type": event.target_type,
                "target_id": event.target_id,
                "details": event.details,
                "created_at": event.created_at,
                "ip_address": event.ip_address,
                "user_agent": event.user_agent,
            },
        )
        event.save(force_insert=True)
    return event
