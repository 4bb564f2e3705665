"""The Celery application: broker and options come from Django settings (``CELERY_*``)."""

import os
from typing import Any

from celery import Celery
from celery.signals import beat_init, celeryd_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medharm_web.settings.base")
# Arrow's allocator, chosen when pyarrow is first imported (so here, before any app imports it;
# every process of ours imports this module through ``medharm_web``). pyarrow's default, mimalloc,
# keeps what was freed for reuse, so a release build's worker stays at its highest memory; Arrow's
# jemalloc gives freed pages back at once: peak RSS 183 MB against 198 MB for a build of 200,000
# labels (docs/access.md, Benchmark). An environment that sets the variable keeps its choice.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")

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

IN_MEMORY_BROKER_REFUSED = (
    "Refusing to start a Celery {role} on the in-memory broker: REDIS_URL is not set (neither in the "
    "environment nor in .env). The in-memory broker lives inside one process: no task another "
    "process sends reaches it and none it sends leaves it, so runs would wait forever. Set "
    "REDIS_URL (cp .env.example .env), or run without a worker: with no REDIS_URL, tasks run in "
    "the process that sends them."
)


def broker_refusal(role: str) -> str | None:
    """Why a worker or beat must not start with this configuration, or None when it may."""
    if app.connection_for_read().transport_cls == "memory":
        return IN_MEMORY_BROKER_REFUSED.format(role=role)
    return None


@celeryd_init.connect
def _worker_refuses_the_in_memory_broker(**_: Any) -> None:
    # SystemExit, not an exception: Celery logs and swallows exceptions raised by signal receivers.
    if (reason := broker_refusal("worker")) is not None:
        raise SystemExit(reason)


@beat_init.connect
def _beat_refuses_the_in_memory_broker(**_: Any) -> None:
    if (reason := broker_refusal("beat")) is not None:
        raise SystemExit(reason)


@app.task(name="medharm.ping")
def ping() -> str:
    """Answers "pong": lets a health check or a test prove that a worker consumes the queue."""
    return "pong"
