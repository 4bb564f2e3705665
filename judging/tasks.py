"""Celery tasks for judge runs: each loads by id and calls the collector or a service."""

from celery import shared_task

from judging.collector import judge_run_collect
from judging.services.runs import judge_runs_restart_quiet


@shared_task(name="judging.judge_run_execute", acks_late=True, reject_on_worker_lost=True)
def judge_run_execute(run_id: int) -> int:
    return judge_run_collect(run_id=run_id)


@shared_task(name="judging.judge_runs_watchdog")
def judge_runs_watchdog() -> list[int]:
    """Restart judge runs whose workers went quiet; lease tokens make a spare worker harmless."""
    return judge_runs_restart_quiet()
