"""Periodic sealing: events left unsealed when their sealer found another at work (and no audited
write came after) are chained within a minute."""

from celery import shared_task

from audit.services import audit_seal


@shared_task(name="audit.seal_pending")
def seal_pending() -> int:
    return audit_seal(wait=True)
