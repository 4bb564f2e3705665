"""Celery task: build a cut release's bundle (loads by id, calls the service)."""

from celery import shared_task

from releases.services import release_build


@shared_task(name="releases.release_build")
def release_build_task(release_id: int) -> str:
    return release_build(release_id=release_id).status
