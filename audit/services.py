"""Writing audit events. Call inside the service's own ``transaction.atomic`` block.

Each event is chained to the one before (``audit.chain``): the writer takes a transaction-scoped
lock on PostgreSQL so that two transactions never chain onto the same predecessor (SQLite runs one
writer at a time anyway), and the lock is released when the writing transaction ends.
"""

from django.db import connection, models, transaction
from django.utils import timezone

from audit.chain import GENESIS, event_digest
from audit.context import current_meta
from audit.models import AuditEvent

# An arbitrary constant naming the audit chain's advisory lock.
_CHAIN_LOCK = 0x6D656468  # "medh"


def audit_record(
    *,
    actor: models.Model | None,
    action: str,
    target: models.Model | None = None,
    details: dict[str, object] | None = None,
) -> AuditEvent:
    meta = current_meta()
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK])
        prev = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first() or GENESIS
        event = AuditEvent(
            actor=actor if actor is not None and getattr(actor, "pk", None) else None,
            action=str(action),
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
