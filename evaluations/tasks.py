"""Celery tasks for collection: each loads by id and calls the collector or a service."""

from celery import shared_task
from django.conf import settings

from evaluations.collector import run_collect
from evaluations.services.runs import runs_needing_workers


@shared_task(name="evaluations.run_execute", acks_late=True, reject_on_worker_lost=True)
def run_execute(run_id: int) -> int:
    return run_collect(run_id=run_id)


@shared_task(name="evaluations.runs_watchdog")
def runs_watchdog() -> list[int]:
    """Restart runs whose workers went quiet; claims and lease tokens make a spare worker harmless."""
    run_ids = runs_needing_workers(stale_after_seconds=settings.COLLECTION_STALE_SECONDS)
    for run_id in run_ids:
        run_execute.delay(run_id)
    return run_ids
