"""The Celery application: broker and options come from Django settings (``CELERY_*``)."""

import os
from typing import Any

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medharm_web.settings.base")

app = Celery("medharm_web")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _redis_channel_patch() -> None:
    """A Redis channel whose connection was closed under it (the consumer reconnecting after a
    broker restart, then the old channel restoring its unacknowledged messages or deleting its
    gossip queue) reads ``self.connection.client.hostname`` with ``client`` set to ``None``: an
    ``AttributeError``, which Celery treats as unrecoverable, so the worker exits once the task in
    hand returns (kombu issue #582, still in kombu 5.7.0). Raised as a redis ``ConnectionError``
    instead, it is a connection error like any other and the consumer reconnects."""
    from kombu.transport import redis as kombu_redis
    from redis.exceptions import ConnectionError as RedisConnectionError

    original = kombu_redis.Channel._connparams  # type: ignore[attr-defined]  # private: not in the kombu stubs
    if getattr(original, "medharm_patched", False):
        return

    def _connparams(self: kombu_redis.Channel, asynchronous: bool = False) -> Any:
        if self.connection.client is None:
            raise RedisConnectionError("the broker connection of this channel was closed")
        return original(self, asynchronous=asynchronous)

    _connparams.medharm_patched = True  # type: ignore[attr-defined]  # a marker on the function: mypy allows no attributes there
    kombu_redis.Channel._connparams = _connparams  # type: ignore[attr-defined]  # private: not in the kombu stubs


_redis_channel_patch()


@app.task(name="medharm.ping")
def ping() -> str:
    """Answers "pong": lets a health check or a test prove that a worker consumes the queue."""
    return "pong"
