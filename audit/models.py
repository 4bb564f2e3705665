"""Audit events: who did what to which object, when, from where, with the details to explain it.

Append-only, held by the database: on PostgreSQL triggers refuse DELETE on the table and any UPDATE
but the one that seals an event (django-pgtrigger; no trigger on SQLite). Each event is written
unsealed and sealed right after its transaction commits (``audit.services.audit_seal``): it gets the
next ``seq`` and a hash chained to the event before it in that order, which ``manage.py
audit_verify`` checks. Sealing after commit means no audited write waits for another's transaction
to end (a global lock held to commit serialised every audited write of the platform).
"""

import pgtrigger
from django.conf import settings
from django.db import models
from django.utils import timezone

# The columns an event's hash covers: never changed, sealed or not.
SEALED_CONTENT = (
    "id",
    "actor_id",
    "action",
    "target_type",
    "target_id",
    "details",
    "created_at",
    "ip_address",
    "user_agent",
)


class AuditEvent(models.Model):
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    action = models.CharField(max_length=80, db_index=True)  # "<noun>_<verb>", the service's name
    target_type = models.CharField(max_length=80, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=400, blank=True)
    # Set once, by the sealer: the position in the chain, the previous event's hash and this one's.
    seq = models.BigIntegerField(null=True, blank=True, unique=True)
    prev_hash = models.CharField(max_length=64, blank=True)
    hash = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["target_type", "target_id"]),
            # What the sealer looks for: the few events not chained yet.
            models.Index(fields=["id"], condition=models.Q(seq__isnull=True), name="audit_unsealed"),
        ]
        triggers = [
            pgtrigger.Protect(name="audit_no_delete", operation=pgtrigger.Delete),
            # The only UPDATE allowed: sealing an unsealed event, its content unchanged.
            pgtrigger.Protect(
                name="audit_seal_only",
                operation=pgtrigger.Update,
                condition=pgtrigger.Condition(
                    "OLD.seq IS NOT NULL OR OLD.hash <> '' OR NEW.seq IS NULL OR "
                    + " OR ".join(f"NEW.{column} IS DISTINCT FROM OLD.{column}" for column in SEALED_CONTENT)
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action} {self.target_type}:{self.target_id}"
