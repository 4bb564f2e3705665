"""Periodic task: expire access requests left pending past their review deadline."""

from celery import shared_task

from access.services import requests_expire


@shared_task(name="access.tasks.requests_expire")
def requests_expire_task() -> int:
    return requests_expire()
