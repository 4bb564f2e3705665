"""Celery tasks for collection: each loads by id and calls the collector or a service."""

import uuid

from celery import shared_task

from evaluations.collector import run_collect
from evaluations.services.runs import runs_dispatch_missing


@shared_task(name="evaluations.run_execute", acks_late=True, reject_on_worker_lost=True)
def run_execute(run_id: int, collector_id: str | None = None) -> int:
    """One collector of a run; a run is executed by as many of these as its ``workers``."""
    return run_collect(run_id=run_id, collector_id=uuid.UUID(collector_id) if collector_id else None)


@shared_task(name="evaluations.runs_watchdog")
def runs_watchdog() -> dict[str, int]:
    """Dispatch the collectors each running run is missing (recorded, so a second beat does not
    dispatch them again); claims and lease tokens make a spare collector harmless anyway."""
    return {str(run_id): len(ids) for run_id, ids in runs_dispatch_missing()}
