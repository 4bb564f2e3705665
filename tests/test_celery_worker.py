"""A real Celery worker and beat start with the README's commands against Redis and do their jobs."""

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery
from django.conf import settings

pytestmark = pytest.mark.worker

CELERY = str(Path(sys.executable).with_name("celery"))
PROJECT_DIR = Path(settings.BASE_DIR)


def _service_env() -> dict[str, str]:
    """The environment of a worker or beat in full-stack mode: base settings, Redis, PostgreSQL."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "medharm_web.settings.base",
        "REDIS_URL": settings.REDIS_URL,
        "DATABASE_URL": os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/medharm"),
        "PYTHONUNBUFFERED": "1",
    }


def _stop(process: subprocess.Popen[bytes]) -> str:
    """Warm shutdown first (SIGTERM), then kill: never wait without a bound. Says which it took."""
    if process.poll() is not None:
        return "already exited"
    process.terminate()
    try:
        process.wait(timeout=20)
        return "terminated"
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
        return "killed"


def _wait_for(log: Path, text: str, process: subprocess.Popen[bytes], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        output = log.read_text(errors="replace")
        if text in output or process.poll() is not None:
            return output
        time.sleep(0.2)
    return log.read_text(errors="replace")


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    log = tmp_path / "worker.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                CELERY,
                "-A",
                "medharm_web",
                "worker",
                "--pool=solo",
                "-Q",
                "celery",
                "--loglevel=INFO",
                "-n",
                f"medharm-test-{uuid.uuid4().hex[:8]}@%h",
                "--without-gossip",
                "--without-mingle",
            ],
            cwd=PROJECT_DIR,
            env=_service_env(),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process, log
    finally:
        _stop(process)


def test_a_real_worker_answers_ping(worker: tuple[subprocess.Popen[bytes], Path]) -> None:
    process, log = worker
    # A client of its own, not the project app: test settings run tasks eagerly in-process, and
    # this test is about a message crossing Redis to another process.
    # Not the current app: shared tasks called later in the suite must keep the project's app.
    client = Celery(
        "medharm-test-client", broker=settings.REDIS_URL, backend=settings.REDIS_URL, set_as_current=False
    )
    try:
        result = client.send_task("medharm.ping", queue="celery")
        try:
            answer = result.get(timeout=30)
        except Exception as exc:
            pytest.fail(f"no answer from the worker within 30 s ({exc!r}); its log:\n{log.read_text()}")
        assert answer == "pong"
        assert result.status == "SUCCESS"
        output = _wait_for(log, "succeeded", process, timeout=10)
        assert "[tasks]" in output
        assert ". medharm.ping" in output  # the worker registered the project's tasks
        assert f"Task medharm.ping[{result.id}] succeeded" in output
        assert process.poll() is None  # still running after the task
    finally:
        client.close()


def test_beat_starts_with_the_schedule(tmp_path: Path) -> None:
    log = tmp_path / "beat.log"
    schedule = tmp_path / "celerybeat-schedule"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [CELERY, "-A", "medharm_web", "beat", "--loglevel=INFO", "-s", str(schedule)],
            cwd=PROJECT_DIR,
            env=_service_env(),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        output = _wait_for(log, "beat: Starting...", process, timeout=30)
        assert "beat: Starting..." in output, output
        time.sleep(2)  # a beat that fails on its first tick (broker, schedule file) exits here
        assert process.poll() is None, log.read_text()
        output = log.read_text()
        assert "Traceback" not in output, output
        assert "ERROR" not in output, output
        assert "broker -> redis://" in output
        assert any(path.name.startswith("celerybeat-schedule") for path in tmp_path.iterdir())
        # Beat stops on SIGTERM within the bound, as a supervisor expects, and says it did.
        assert _stop(process) == "terminated"
        assert process.returncode == 0, log.read_text()
    finally:
        _stop(process)


@pytest.mark.parametrize(
    ("role", "argv"),
    [("worker", ["worker", "--pool=solo", "--loglevel=INFO"]), ("beat", ["beat", "--loglevel=INFO"])],
)
def test_worker_and_beat_refuse_the_in_memory_broker(role: str, argv: list[str], tmp_path: Path) -> None:
    """With REDIS_URL unset (an empty value beats a .env file) the broker would be ``memory://``,
    which no other process can reach: the process exits with status 1 and says why, instead of
    running and never seeing a task."""
    if "beat" in argv:
        argv = [*argv, "-s", str(tmp_path / "celerybeat-schedule")]
    done = subprocess.run(
        [CELERY, "-A", "medharm_web", *argv],
        cwd=PROJECT_DIR,
        env={**_service_env(), "REDIS_URL": ""},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert f"Refusing to start a Celery {role} on the in-memory broker: REDIS_URL is not set" in output
    assert "ready." not in output


def test_a_redis_channel_whose_connection_closed_raises_a_recoverable_error() -> None:
    """The cause of workers exiting on a Redis restart (kombu's ``_connparams`` reading the
    hostname of a closed connection): with our patch it is a connection error, which the consumer
    recovers from, not an AttributeError, which Celery calls unrecoverable."""
    from kombu import Connection

    import medharm_web.celery  # noqa: F401 - the patch is applied where the app is made

    connection = Connection(settings.REDIS_URL)
    channel = connection.default_channel
    connection._do_close_transport()  # what the consumer does to the old connection on reconnect
    channel._pool = None
    # Not AttributeError: one of the errors the consumer recovers from by reconnecting.
    with pytest.raises(tuple(channel.connection_errors), match="connection of this channel was closed"):
        channel._create_client()
