"""Collection under faults, with real processes: a private redis-server and Celery workers that
the tests kill and restart, our mock model server in its own process, the test database in
PostgreSQL. Nothing of ours is mocked; the shared Redis on 6379 is never touched.

Leases are the production default (300 s): a killed collector's items must come back within the
liveness time (3 s here), not the lease."""

import os
import re
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
from evaluations.models import CollectionRun, Collector, ModelResponse, RunStatus
from mockmodel.app import MockServerConfig
from mockmodel.behaviours import FaultRates
from mockmodel.runner import MockServerProcess
from querybank.models import Query
from tests.factories import QueryFactory, UserFactory

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

CELERY = str(Path(sys.executable).with_name("celery"))
PROJECT_DIR = Path(settings.BASE_DIR)
SECRET = "sk-medharm-test-" + uuid.uuid4().hex  # a key no log or row may ever show


# A private redis-server takes a port of this checkout's range (MEDHARM_TEST_PORTS="18500-18599").
_FIRST, _LAST = (int(p) for p in os.environ.get("MEDHARM_TEST_PORTS", "18500-18599").split("-"))
PORTS = range(_FIRST, _LAST + 1)
LIVENESS_SECONDS = 3


def free_port() -> int:
    for port in PORTS:
        with socket.socket() as probe:
            # As redis-server binds: a port whose last connections linger in TIME_WAIT is free.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {PORTS}")


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
            "COLLECTION_LIVENESS_SECONDS": str(LIVENESS_SECONDS),
            "COLLECTION_DISPATCH_GRACE_SECONDS": "60",
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

    def worker(self, pool: str = "solo", concurrency: int = 1) -> subprocess.Popen[bytes]:
        return self._spawn(
            "worker",
            [
                "worker",
                f"--pool={pool}",
                f"--concurrency={concurrency}",
                "--loglevel=DEBUG",
                "--without-gossip",
                "--without-mingle",
                "-n",
                f"fault-{uuid.uuid4().hex[:6]}@%h",
            ],
        )

    def documented_worker(self) -> subprocess.Popen[bytes]:
        """The worker exactly as the README and compose start it: prefork, gossip, mingle."""
        return self._spawn("worker", ["worker", "-l", "info", "-n", f"readme-{uuid.uuid4().hex[:6]}@%h"])

    def beat(self) -> subprocess.Popen[bytes]:
        schedule = self.log_dir / f"beat-schedule-{len(self.logs)}"
        return self._spawn("beat", ["beat", "--loglevel=INFO", "-s", str(schedule)])

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


def send_run(redis_url: str, run_id: int, collectors: int = 1) -> None:
    client = Celery(broker=redis_url, set_as_current=False)  # never the app shared_task uses
    for _ in range(collectors):
        client.send_task("evaluations.run_execute", args=[run_id])
    client.close()


def create_run(
    server: MockServerProcess,
    *,
    queries: int,
    concurrency: int = 16,
    max_attempts: int = 5,
    lease_seconds: int = 300,
    timeout_seconds: float = 5.0,
    api_key_env: str = "",
    caps: tuple[int, ...] | None = None,
    workers: int | None = None,
    new_queries: bool = True,
) -> CollectionRun:
    if new_queries:
        QueryFactory.create_batch(queries)
    endpoints = [
        services.endpoint_create(
            actor=SYSTEM,
            slug=f"mock-{uuid.uuid4().hex[:6]}",
            name=f"Mock {index}",
            base_url=server.openai_base_url,
            model_name=f"mock-model-{index}",
            max_concurrency=cap,
            timeout_seconds=timeout_seconds,
            api_key_env=api_key_env,
            price_input_per_million=Decimal(1),
            price_output_per_million=Decimal(2),
        )
        for index, cap in enumerate(caps or (concurrency,))
    ]
    run = services.run_create(
        actor=UserFactory(role=Role.MAINTAINER),
        name="fault run",
        queries=Query.objects.all(),
        targets=endpoints,
        concurrency=concurrency,
        max_attempts=max_attempts,
        lease_seconds=lease_seconds,
        workers=workers,
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
    assert rows.filter(attempts__lt=1).count() == 0  # every item was written by a call


def run_status(run: CollectionRun) -> str:
    return CollectionRun.objects.get(pk=run.pk).status


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
    failed = list(rows.filter(outcome="error"))
    assert failed  # 30% faults thrice in a row: a few items (the mock's draws are deterministic)
    assert all(row.error_reason for row in failed)  # e.g. "timeout: gave up after 3 attempts: ..."
    assert {(row.attempts, len(row.errors)) for row in failed} == {(3, 3)}
    retried = rows.filter(outcome="collected", attempts__gt=1)
    assert retried.exists()
    assert all(len(r.errors) == r.attempts - 1 for r in retried)
    # Recorded attempts are the calls the mock received, no more, no less.
    assert stats["requests"] == sum(rows.values_list("attempts", flat=True))


def test_three_workers_on_one_run_one_killed_every_item_once_caps_held(redis_server, workers) -> None:
    with MockServerProcess(MockServerConfig(latency_ms=200)) as server:
        # 2 endpoints x 300 queries; caps 4 and 6 across every worker; each collector alone
        # would send up to 16 at once (the run's concurrency), three of them up to 48.
        run = create_run(server, queries=300, concurrency=16, caps=(4, 6), workers=3)
        processes = [workers.worker() for _ in range(3)]
        workers.beat()
        send_run(redis_server.url, run.pk, collectors=3)
        wait_until(
            lambda: (
                Collector.objects.filter(run=run, state="running").values("pid").distinct().count() == 3
                and finished_count(run) >= 100
            ),
            60,
            "three collectors at work",
            workers,
        )
        victim = processes[0]
        leased = set(ModelResponse.objects.filter(run=run, state="leased").values_list("id", "lease_token"))
        workers.kill(victim)
        killed_at = time.monotonic()
        assert finished_count(run) < 600  # really killed mid-run

        def stranded() -> int:  # items still leased under the tokens they had at the kill
            return sum(
                ModelResponse.objects.filter(pk=pk, lease_token=token, state="leased").exists()
                for pk, token in leased
            )

        wait_until(lambda: stranded() == 0, 30, "the dead collector's items back in work", workers)
        back_after = time.monotonic() - killed_at
        wait_until(lambda: run_status(run) == RunStatus.COMPLETED, 90, "the run to complete", workers)
        stats = server.stats()
        alive = [p.poll() is None for p in processes[1:]]

    assert_exactly_once(run, 600)
    assert set(ModelResponse.objects.filter(run=run).values_list("outcome", flat=True)) == {"collected"}
    # Back within twice the liveness time (3 s), never the 300 s lease.
    assert back_after <= 2 * LIVENESS_SECONDS + 1, back_after
    # The provider saw each endpoint's cap, whatever the number of workers.
    peaks = stats["max_in_flight_by_model"]
    assert peaks["mock-model-0"] <= 4, peaks
    assert peaks["mock-model-1"] <= 6, peaks
    assert peaks["mock-model-0"] + peaks["mock-model-1"] >= 8  # and the caps were used
    assert stats["requests_by_model"]["mock-model-0"] >= 300
    assert alive == [True, True]
    writers = Collector.objects.filter(run=run, written__gt=0).values("pid").distinct().count()
    assert writers >= 2  # the run really spread


def test_a_worker_added_mid_run_takes_the_waiting_collector_and_speeds_the_run_up(
    redis_server, workers
) -> None:
    with MockServerProcess(MockServerConfig(latency_ms=200)) as server:
        # One endpoint capped at 16; each collector runs at most 4 at once: two collectors, 8.
        run = create_run(server, queries=400, concurrency=4, caps=(16,), workers=2)
        first = workers.worker()
        send_run(redis_server.url, run.pk, collectors=2)  # the second waits: one solo worker
        wait_until(lambda: finished_count(run) >= 30, 60, "the first collector at work", workers)
        alone_from, alone_count = time.monotonic(), finished_count(run)
        time.sleep(3)
        alone_rate = (finished_count(run) - alone_count) / (time.monotonic() - alone_from)
        second = workers.worker()
        wait_until(
            lambda: Collector.objects.filter(run=run, state="running").values("pid").distinct().count() == 2,
            30,
            "the added worker to start the waiting collector",
            workers,
        )
        both_from, both_count = time.monotonic(), finished_count(run)
        time.sleep(3)
        both_rate = (finished_count(run) - both_count) / (time.monotonic() - both_from)
        wait_until(lambda: run_status(run) == RunStatus.COMPLETED, 90, "the run to complete", workers)

    assert_exactly_once(run, 400)
    written = dict(Collector.objects.filter(run=run).values_list("pid", "written"))
    assert set(written) == {first.pid, second.pid}
    assert min(written.values()) > 0
    assert both_rate > 1.5 * alone_rate, (alone_rate, both_rate)  # 4 in flight, then 8


def test_the_watchdog_dispatches_what_is_missing_once_even_with_a_second_beat(redis_server, workers) -> None:
    with MockServerProcess(MockServerConfig(latency_ms=300)) as server:
        run = create_run(server, queries=60, concurrency=2, workers=2)  # about 5 s with 2 collectors
        assert not Collector.objects.filter(run=run).exists()  # nothing sent: the watchdog must
        # Three processes: two for the collectors, one for the watchdog ticks of both beats.
        workers.worker(pool="prefork", concurrency=3)
        workers.beat()
        workers.beat()
        wait_until(lambda: run_status(run) == RunStatus.COMPLETED, 60, "the run to complete", workers)
        time.sleep(2)  # ticks after the run: nothing is missing any more
        ticks = workers.output().count("Task evaluations.runs_watchdog[")

    collectors = Collector.objects.filter(run=run)
    assert collectors.count() == 2  # two wanted, two dispatched, once, whatever the beats
    assert set(collectors.values_list("state", flat=True)) == {"stopped"}
    assert sum(collectors.values_list("written", flat=True)) == 60
    assert ticks >= 8  # both beats really ticked every second (received + succeeded lines)
    assert_exactly_once(run, 60)


def test_redis_restarted_mid_run_the_worker_survives_and_collects_the_next_run(redis_server, workers) -> None:
    with MockServerProcess(MockServerConfig(latency_ms=150)) as server:
        # Long enough (about 6 s) that the task is still running when Redis is back.
        run = create_run(server, queries=300, concurrency=8)
        worker = workers.documented_worker()
        workers.beat()
        send_run(redis_server.url, run.pk)
        wait_until(lambda: finished_count(run) >= 40, 60, "some progress", workers)
        redis_server.stop()
        # Mid-run: the collector holds the task (acked late, so unacknowledged) while Redis is gone.
        assert run_status(run) == RunStatus.RUNNING
        assert finished_count(run) < 300
        time.sleep(1.0)
        redis_server.start()  # empty: it keeps nothing on disk, so queued messages are gone
        wait_until(
            lambda: run_status(run) == RunStatus.COMPLETED,
            120,
            "the run to complete after the Redis restart",
            workers,
        )
        time.sleep(3)  # a worker that dies of the restart does so once the task returns
        assert worker.poll() is None, workers.output()[-4000:]

        second = create_run(server, queries=30, concurrency=8, new_queries=False)
        send_run(redis_server.url, second.pk)
        wait_until(lambda: run_status(second) == RunStatus.COMPLETED, 60, "the second run", workers)
        assert worker.poll() is None
        collectors = set(Collector.objects.filter(run=second).values_list("pid", flat=True))

    assert_exactly_once(run, 300)
    assert len(collectors) == 1  # one of the surviving worker's processes collected the second run
    worker_log = workers.logs[0].read_text(errors="replace")
    assert "Unrecoverable error" not in worker_log
    # The consumer lost the broker and connected again: the restart really reached this worker.
    assert "Connection to broker lost" in worker_log
    connected = re.findall(rf"Connected to redis://\S*127\.0\.0\.1:{redis_server.port}/0", worker_log)
    assert len(connected) >= 2, worker_log[-4000:]


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
