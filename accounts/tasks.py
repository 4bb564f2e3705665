"""Periodic housekeeping for accounts."""

from celery import shared_task
from django.core.management import call_command


@shared_task(name="accounts.tasks.sessions_clear_expired")
def sessions_clear_expired() -> None:
    call_command("clearsessions")
