"""Writing audit events. Call inside the service's own ``transaction.atomic`` block."""

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import models

from audit.actions import AuditAction
from audit.models import AuditEvent
from core.actors import SystemActor


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
    return AuditEvent.objects.create(
        # By id: ``audit`` sits below ``accounts`` and names no concrete user model.
        actor_id=actor.pk if isinstance(actor, AbstractBaseUser) and actor.pk else None,
        action=AuditAction(action),
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        details=details or {},
    )
