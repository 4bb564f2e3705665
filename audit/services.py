"""Writing audit events. Call inside the service's own ``transaction.atomic`` block."""

from django.db import models

from audit.actions import AuditAction
from audit.models import AuditEvent


def audit_record(
    *,
    actor: object,
    action: AuditAction,
    target: models.Model | None = None,
    details: dict[str, object] | None = None,
) -> AuditEvent:
    """Record ``action`` by ``actor`` (a user; anything without a primary key, such as the platform's
    ``SYSTEM`` actor, is recorded as no person) on ``target``."""
    if action not in AuditAction.values:
        raise ValueError(f"{action!r} is not an audit action; add it to audit.actions.AuditAction.")
    return AuditEvent.objects.create(
        actor=actor if actor is not None and getattr(actor, "pk", None) else None,
        action=AuditAction(action),
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        details=details or {},
    )
