"""The Celery application: broker and options come from Django settings (``CELERY_*``)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medharm_web.settings.base")

app = Celery("medharm_web")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="medharm.ping")
def ping() -> str:
    """Answers "pong": lets a health check or a test prove that a worker consumes the queue."""
    return "pong"
