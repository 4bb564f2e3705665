"""MedHarm project configuration: settings, URLs, Celery app, WSGI/ASGI entry points."""

from medharm_web.celery import app as celery_app

__all__ = ("celery_app",)
