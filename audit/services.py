"""Writing audit events. Call inside the service's own ``transaction.atomic`` block.

An event is inserted unsealed, with no lock: audited writes never wait for each other. Once the
writing transaction commits, ``audit_seal`` chains every committed unsealed event (``audit.chain``):
one sealer at a time (a PostgreSQL advisory lock; a sealer that finds it taken leaves the work to
the holder, the next write or the periodic task), in the order the events are found, each taking
the next ``seq`` and the hash of the event before it. ``audit_verify`` seals what is pending first.

Reads of released data (a download, an API read: ``seal=False``) are committed the same way but not
sealed by their own request: a sealing transaction is a second commit, which doubled the Django time
of a granted download. The next audited write, the periodic task (within a minute) or
``audit_verify`` chains them; until then they are stored, listed and exported like any other event.
"""

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import connection, models, transaction
from django.utils import timezone

from audit.actions import AuditAction
from audit.chain import GENESIS, event_digest
from audit.context import current_meta
from audit.models import SEALED_CONTENT, AuditEvent
from core.actors import SystemActor

CHAINED_FIELDS = tuple(column for column in SEALED_CONTENT if column != "id")  # what the hash covers


def audit_record(
    *,
    actor: AbstractBaseUser | SystemActor | None,
    action: AuditAction,
    target: models.Model | None = None,
    details: dict[str, object] | None = None,
    seal: bool = True,
) -> AuditEvent:
    """Record ``action`` by ``actor``; ``SYSTEM`` (the platform) and ``None`` are recorded as no person.
    ``seal=False`` leaves the chaining to the next sealer (see the module's note: reads only)."""
    if action not in AuditAction.values:
        raise ValueError(f"{action!r} is not an audit action; add it to audit.actions.AuditAction.")
    meta = current_meta()
    event = AuditEvent.objects.create(
        # By id: ``audit`` sits below ``accounts`` and names no concrete user model.
        actor_id=actor.pk if isinstance(actor, AbstractBaseUser) and actor.pk else None,
        action=AuditAction(action),
        target_type=target._meta.label_lower if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        details=details or {},
        created_at=timezone.now(),
        ip_address=meta.ip_address,
        user_agent=meta.user_agent,
    )
    if seal:
        _seal_after_commit()
    return event


SEAL_BATCH = 2000


def _seal_committed() -> None:
    audit_seal()


def _seal_after_commit() -> None:
    """Seal once the writing transaction commits: one callback per transaction, however many events."""
    if connection.in_atomic_block and any(entry[1] is _seal_committed for entry in connection.run_on_commit):
        return
    transaction.on_commit(_seal_committed, robust=True)


def audit_seal(*, wait: bool = False) -> int:
    """Chain every committed unsealed event; returns how many were sealed. Without ``wait``, a sealer
    that finds another at work returns at once (that one, or the next, seals what is left)."""
    sealed = 0
    while True:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    if wait:
                        cursor.execute("SELECT pg_advisory_xact_lock(hashtext('audit:seal'))")
                    else:
                        cursor.execute("SELECT pg_try_advisory_xact_lock(hashtext('audit:seal'))")
                        if not cursor.fetchone()[0]:
                            return sealed
            tail = (
                AuditEvent.objects.filter(seq__isnull=False)
                .order_by("-seq")
                .values_list("seq", "hash")
                .first()
            )
            seq, prev = (tail[0] or 0, tail[1]) if tail is not None else (0, GENESIS)
            pending = list(
                AuditEvent.objects.filter(seq__isnull=True)
                .order_by("id")
                .values("id", *CHAINED_FIELDS)[:SEAL_BATCH]
            )
            if not pending:
                return sealed
            rows = []
            for event in pending:
                seq += 1
                digest = event_digest(prev, event)
                rows.append(AuditEvent(pk=event["id"], seq=seq, prev_hash=prev, hash=digest))
                prev = digest
            AuditEvent.objects.bulk_update(rows, ["seq", "prev_hash", "hash"])
            sealed += len(rows)
        if len(pending) < SEAL_BATCH:
            return sealed
