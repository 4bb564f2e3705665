"""Writing audit events. Call inside the service's own ``transaction.atomic`` block."""

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import models

from audit.models import AuditEvent
from core.actors import SystemActor


def audit_record(
    *,
    actor: AbstractBaseUser | SystemActor | None,
    action: str,
    target: models.Model | None = None,
    details: dict[str, object] | None = None,
) -> AuditEvent:
    """Record ``action`` by ``actor``; ``SYSTEM`` (the platform) and ``None`` are recorded as no person."""
    return AuditEvent.objects.create(
        # By id: ``audit`` sits below ``accounts`` and names no concrete user model.
        actor_id=actor.pk if isinstance(actor, AbstractBaseUser) and actor.pk else None,
        action=action,
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        details=details or {},
    )
