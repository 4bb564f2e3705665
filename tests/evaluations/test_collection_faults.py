"""Collection under faults, with real processes: a private redis-server and Celery workers that
the tests kill and restart, our mock model server in its own process, the test database in
PostgreSQL. Nothing of ours is mocked; the shared Redis on 6379 is never touched."""

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from celery import Celery
from django.conf import settings
from django.db import connection

from accounts.roles import Role
from core.actors import SYSTEM
from evaluations import services
from evaluations.mock_server.app import MockServerConfig
from evaluations.mock_server.behaviours import FaultRates
from evaluations.mock_server.runner import MockServerProcess
from evaluations.models import CollectionRun, ModelResponse, RunStatus
from querybank.models import Query
from tests.factories import QueryFactory, UserFactory

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

CELERY = str(Path(sys.executable).with_name("celery"))
PROJECT_DIR = Path(settings.BASE_DIR)
SECRET = "sk-medharm-test-" + uuid.uuid4().hex  # a key no log or row may ever show


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """A redis-server of our own on a free port, so a test can stop and restart it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


class Workers:
    """Celery worker and beat processes against the private Redis and the test database."""

    def __init__(self, redis_url: str, log_dir: Path) -> None:
        self.redis_url = redis_url
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []

    def env(self) -> dict[str, str]:
        db = settings.DATABASES["default"]
        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "medharm_web.settings.base",
            "REDIS_URL": self.redis_url,
            "DATABASE_URL": "postgres://{}@{}:{}/{}".format(
                db["USER"] or "postgres", db["HOST"] or "127.0.0.1", db["PORT"] or 5432, db["NAME"]
            ),
            "COLLECTION_WATCHDOG_SECONDS": "1",
            "COLLECTION_STALE_SECONDS": "3",
            "MEDHARM_KEY_TEST_API": SECRET,
            "LOG_LEVEL": "DEBUG",
            "PYTHONUNBUFFERED": "1",
        }

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = self.log_dir / f"{name}-{len(self.logs)}.log"
        self.logs.append(log)
        process = subprocess.Popen(
            [CELERY, "-A", "medharm_web", *argv],
            cwd=PROJECT_DIR,
            env=self.env(),
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append(process)
        return process

    def worker(self) -> subprocess.Popen[bytes]:
        return self._spawn(
            "worker",
            [
                "worker",
                "--pool=solo",
                "--loglevel=DEBUG",
                "--without-gossip",
                "--without-mingle",
                "-n",
                f"fault-{uuid.uuid4().hex[:6]}@%h",
            ],
        )

    def beat(self) -> subprocess.Popen[bytes]:
        return self._spawn("beat", ["beat", "--loglevel=INFO", "-s", str(self.log_dir / "beat-schedule")])

    @staticmethod
    def kill(process: subprocess.Popen[bytes]) -> None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)

    def output(self) -> str:
        return "".join(log.read_text(errors="replace") for log in self.logs)


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def workers(redis_server: RedisServer, tmp_path: Path) -> Iterator[Workers]:
    pool = Workers(redis_server.url, tmp_path)
    yield pool
    pool.stop_all()


def send_run(redis_url: str, run_id: int) -> None:
    client = Celery(broker=redis_url, set_as_current=False)  # never the app shared_task uses
    client.send_task("evaluations.run_execute", args=[run_id])
    client.close()


def create_run(
    server: MockServerProcess,
    *,
    queries: int,
    concurrency: int = 16,
    max_attempts: int = 5,
    lease_seconds: int = 4,
    timeout_seconds: float = 5.0,
    api_key_env: str = "",
) -> CollectionRun:
    QueryFactory.create_batch(queries)
    endpoint = services.endpoint_create(
        actor=SYSTEM,
        slug="mock",
        name="Mock",
        base_url=server.openai_base_url,
        model_name="mock-model",
        max_concurrency=concurrency,
        timeout_seconds=timeout_seconds,
        api_key_env=api_key_env,
        price_input_per_million=Decimal(1),
        price_output_per_million=Decimal(2),
    )
    run = services.run_create(
        actor=UserFactory(role=Role.MAINTAINER),
        name="fault run",
        queries=Query.objects.all(),
        targets=[endpoint],
        concurrency=concurrency,
        max_attempts=max_attempts,
        lease_seconds=lease_seconds,
    )
    CollectionRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
    return run


def finished_count(run: CollectionRun) -> int:
    return ModelResponse.objects.filter(run=run, state="finished").count()


def wait_until(predicate, timeout: float, what: str, workers: Workers) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}\n--- worker output ---\n{workers.output()[-4000:]}")


def assert_exactly_once(run: CollectionRun, planned: int) -> None:
    rows = ModelResponse.objects.filter(run=run)
    assert rows.count() == planned
    assert rows.values("query", "target", "sample_index").distinct().count() == planned
    assert rows.exclude(state="finished").count() == 0


def test_sigkill_mid_run_then_a_new_worker_finishes_every_item_once(redis_server, workers) -> None:
    with MockServerProcess(MockServerConfig(latency_ms=60)) as server:
        run = create_run(server, queries=400, concurrency=8)
        first = workers.worker()
        send_run(redis_server.url, run.pk)
        wait_until(lambda: finished_count(run) >= 60, 60, "a fifth of the run", workers)
        workers.kill(first)
        killed_at = finished_count(run)
        assert killed_at < 400  # really killed mid-run
        assert ModelResponse.objects.filter(run=run, state="leased").exists()  # it held a lease

        workers.worker()
        workers.beat()  # the watchdog notices the silent run and hands it to the new worker
        wait_until(
            lambda: CollectionRun.objects.get(pk=run.pk).status == RunStatus.COMPLETED,
            120,
            "the run to complete",
            workers,
        )

    assert_exactly_once(run, 400)
    assert set(ModelResponse.objects.filter(run=run).values_list("outcome", flat=True)) == {"collected"}


def test_thirty_percent_faults_end_collected_or_errored_with_a_reason(redis_server, workers) -> None:
    rates = FaultRates(rate_429=0.1, rate_500=0.1, rate_timeout=0.1)
    config = MockServerConfig(latency_ms=20, rates=rates, retry_after_s=0.2, hang_s=3.0)
    with MockServerProcess(config) as server:
        run = create_run(server, queries=200, concurrency=32, max_attempts=3, timeout_seconds=0.5)
        workers.worker()
        send_run(redis_server.url, run.pk)
        wait_until(
            lambda: CollectionRun.objects.get(pk=run.pk).status == RunStatus.COMPLETED,
            180,
            "the run to complete",
            workers,
        )
        stats = server.stats()

    assert_exactly_once(run, 200)
    rows = ModelResponse.objects.filter(run=run)
    assert set(rows.values_list("outcome", flat=True)) <= {"collected", "error"}
    assert rows.filter(outcome="collected").count() > 150  # 3 attempts beat a 30% fault rate mostly
    for failed in rows.filter(outcome="error"):
        assert failed.error_reason  # e.g. "timeout: gave up after 3 attempts: ..."
        assert failed.attempts == 3
        assert len(failed.errors) == 3
    retried = rows.filter(outcome="collected", attempts__gt=1)
    assert retried.exists()
    assert all(len(r.errors) == r.attempts - 1 for r in retried)
    assert stats["requests"] >= 200 + retried.count()


def test_redis_restarted_mid_run_the_run_still_finishes(redis_server, workers) -> None:
    with MockServerProcess(MockServerConfig(latency_ms=40)) as server:
        run = create_run(server, queries=300, concurrency=8)
        workers.worker()
        workers.beat()
        send_run(redis_server.url, run.pk)
        wait_until(lambda: finished_count(run) >= 40, 60, "some progress", workers)
        redis_server.stop()
        time.sleep(1.0)
        redis_server.start()  # empty: it keeps nothing on disk, so queued messages are gone
        wait_until(
            lambda: CollectionRun.objects.get(pk=run.pk).status == RunStatus.COMPLETED,
            120,
            "the run to complete after the Redis restart",
            workers,
        )
    assert_exactly_once(run, 300)


def test_the_api_key_never_appears_in_a_row_or_a_log_line(redis_server, workers) -> None:
    config = MockServerConfig(latency_ms=5, require_api_key=SECRET, rates=FaultRates(rate_500=0.2))
    with MockServerProcess(config) as server:
        run = create_run(server, queries=30, api_key_env="MEDHARM_KEY_TEST_API", max_attempts=3)
        workers.worker()
        send_run(redis_server.url, run.pk)
        wait_until(
            lambda: CollectionRun.objects.get(pk=run.pk).status == RunStatus.COMPLETED,
            60,
            "the run to complete",
            workers,
        )
        server_output = "".join(server.output)

    rows = ModelResponse.objects.filter(run=run)
    assert rows.filter(outcome="collected").count() > 0  # the key was sent and accepted
    with connection.cursor() as cursor:
        dumped = []
        for table in (
            "evaluations_modelresponse",
            "evaluations_collectionrun",
            "evaluations_runtarget",
            "evaluations_endpoint",
            "audit_auditevent",
        ):
            cursor.execute(f"SELECT row_to_json(t)::text FROM {table} t")  # noqa: S608 - fixed names
            dumped += [row[0] for row in cursor.fetchall()]
    assert dumped
    assert not any(SECRET in row for row in dumped)
    log = workers.output()
    assert "run_execute" in log  # the log really captured the worker's DEBUG output
    assert SECRET not in log
    assert SECRET not in server_output
