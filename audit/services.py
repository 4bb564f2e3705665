"""Writing audit events. Call inside the service's own ``transaction.atomic`` block."""

from django.db import models

from audit.models import AuditEvent


def audit_record(
    *,
    actor: models.Model | None,
    action: str,
    target: models.Model | None = None,
    details: dict[str, object] | None = None,
) -> AuditEvent:
    return AuditEvent.objects.create(
        actor=actor if actor is not None and getattr(actor, "pk", None) else None,
        action=action,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        details=details or {},
    )
