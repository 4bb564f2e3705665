"""Collection throughput, end to end: 1,100 queries x 19 targets = 20,900 requests against our
mock model server at 200 ms latency, concurrency 64, through real Celery workers that write every
row to PostgreSQL; and, in the same run against the same mock, a plain asyncio loop with the
``openai`` SDK and a semaphore of 64 that writes nothing; and Inspect AI (``inspect_ai.eval``, one
task per target, 64 connections in all) on the same mock and workload. Prints all three and the
ratios of our throughput to theirs.

    .venv/bin/python bench/collect.py                      # the issue's workload, one worker
    .venv/bin/python bench/collect.py --queries 200        # quicker, same per-second figures
    .venv/bin/python bench/collect.py --workers 1 2 4      # one run per N, side by side

With ``--workers N`` a run is executed by N collector tasks on N worker processes (``workers=N``).
For each N it prints the throughput, its share of the latency bound (min(N x concurrency, targets x
endpoint cap) / latency), the peak requests in flight the mock saw per endpoint against the cap,
the workers' CPU per response beside the mock's, and the ratio to N = 1. On a shared machine only
the ratios measured side by side in one invocation mean anything.

Inspect AI is never a dependency of the platform: by default the bench creates its own virtualenv,
``var/bench-inspect-venv`` (``python -m venv`` and ``pip install inspect-ai``, once), and runs
``bench/collect_inspect.py`` there as a child process. ``--inspect test-venv`` uses the inspect-ai of
the test requirements instead; ``--inspect none`` skips it.

Needs PostgreSQL and Redis on this machine (``bin/services`` starts them). It works in its own
database (``BENCH_DATABASE``, default ``medharm_bench_collect``, dropped at the end) and Redis
database (``BENCH_REDIS_URL``, default ``redis://127.0.0.1:6379/7``, flushed first).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

DB_NAME = os.environ.get("BENCH_DATABASE", "medharm_bench_collect")
PG = "postgres://postgres@127.0.0.1:5432"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/7")


def database_recreate() -> None:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {DB_NAME}")


def database_drop() -> None:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")


def environment() -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "medharm_web.settings.base",
        "DATABASE_URL": f"{PG}/{DB_NAME}",
        "REDIS_URL": REDIS_URL,
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its waited-for children, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / ticks


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def plain_loop_module():
    spec = importlib.util.spec_from_file_location("collect_plain", ROOT / "bench" / "collect_plain.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


INSPECT_REQUIREMENT = "inspect-ai==0.3.69"
INSPECT_VENV = ROOT / "var" / "bench-inspect-venv"


def inspect_python(choice: str) -> str | None:
    """The interpreter that runs Inspect's side: the bench's own virtualenv, made on first use."""
    if choice == "none":
        return None
    if choice == "test-venv":
        return sys.executable
    python = INSPECT_VENV / "bin" / "python"
    probe = [str(python), "-c", "import inspect_ai, openai"]
    if not python.exists() or subprocess.run(probe, capture_output=True).returncode != 0:
        print(f"creating {INSPECT_VENV} with {INSPECT_REQUIREMENT} (once) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(INSPECT_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", INSPECT_REQUIREMENT, "openai==3.57.0"], check=True
        )
    return str(python)


def inspect_run(python: str, base_url: str, queries: int, targets: int, concurrency: int) -> dict:
    import json

    command = [
        python,
        str(ROOT / "bench" / "collect_inspect.py"),
        f"--base-url={base_url}",
        f"--queries={queries}",
        f"--targets={targets}",
        f"--concurrency={concurrency}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT / "var")
    if done.returncode != 0:
        raise SystemExit(f"Inspect's side failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def worker_start(name: str, log_path: Path) -> subprocess.Popen[bytes]:
    log = log_path.open("wb")
    worker = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("celery")),
            "-A",
            "medharm_web",
            "worker",
            "--pool=solo",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            "-n",
            f"{name}@%h",
        ],
        cwd=ROOT,
        env=environment(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while b"ready." not in log_path.read_bytes():
        if time.monotonic() > deadline or worker.poll() is not None:
            raise SystemExit(f"the worker did not start; see {log_path}")
        time.sleep(0.2)
    return worker


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--queries", type=int, default=1100)
    parser.add_argument("--targets", type=int, default=19)
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--cap", type=int, default=None, help="each endpoint's max_concurrency")
    parser.add_argument("--workers", type=int, nargs="+", default=[1], help="worker processes per run")
    parser.add_argument("--no-plain", action="store_true", help="skip the plain openai SDK loop")
    parser.add_argument(
        "--inspect",
        choices=["venv", "test-venv", "none"],
        default="venv",
        help="where Inspect AI runs: the bench's own virtualenv (default), the test venv, or not at all",
    )
    options = parser.parse_args()
    cap = options.cap or options.concurrency

    inspect_interpreter = inspect_python(options.inspect)
    os.environ.update(environment())
    database_recreate()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()

    from accounts.models import User
    from core.actors import SYSTEM
    from evaluations import services
    from evaluations.models import CollectionRun, ModelResponse, RunStatus
    from mockmodel import MockServerConfig, MockServerProcess
    from querybank.models import Category, Query

    total = options.queries * options.targets
    print(
        f"{options.queries} queries x {options.targets} targets = {total} requests per run; mock latency "
        f"{options.latency_ms:g} ms; concurrency {options.concurrency} per collector; endpoint cap {cap}; "
        f"{os.cpu_count()} CPUs shared by the mock, the workers and PostgreSQL"
    )

    category = Category.objects.get(slug="toxicology")
    Query.objects.bulk_create(
        Query(
            external_id=f"bench-{i:05d}",
            text=f"Benchmark query shape {i:05d}",
            category=category,
            source="bench",
        )
        for i in range(options.queries)
    )
    maintainer = User.objects.create_user("bench@medharm.local")
    (ROOT / "var").mkdir(exist_ok=True)

    workers: list[subprocess.Popen[bytes]] = []
    results: dict[int, float] = {}
    bounds: dict[int, float] = {}
    try:
        with MockServerProcess(MockServerConfig(latency_ms=options.latency_ms)) as server:
            mock_pid = server.pid
            endpoints = [
                services.endpoint_create(
                    actor=SYSTEM,
                    slug=f"bench-target-{t:02d}",
                    name=f"Bench target {t:02d}",
                    base_url=server.openai_base_url,
                    model_name=f"mock-target-{t:02d}",
                    max_concurrency=cap,
                    timeout_seconds=60,
                )
                for t in range(options.targets)
            ]
            from celery import Celery

            client = Celery(broker=REDIS_URL, set_as_current=False)
            for n in options.workers:
                while len(workers) < n:
                    log_path = ROOT / "var" / f"bench-collect-worker-{len(workers)}.log"
                    workers.append(worker_start(f"bench{len(workers)}", log_path))
                run = services.run_create(
                    actor=maintainer,
                    name=f"bench x{n}",
                    queries=Query.objects.all(),
                    targets=endpoints,
                    parameters={"temperature": 0.0, "max_tokens": 256},
                    concurrency=options.concurrency,
                    workers=n,
                )
                server.reset()
                cpu_before = {w.pid: cpu_seconds(w.pid) for w in workers[:n]}
                mock_before = cpu_seconds(mock_pid)
                started = time.perf_counter()
                CollectionRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
                for _ in range(n):
                    client.send_task("evaluations.run_execute", args=[run.pk])
                status = CollectionRun.objects.values_list("status", flat=True)
                while status.get(pk=run.pk) == RunStatus.RUNNING:
                    time.sleep(0.25)
                wall = time.perf_counter() - started
                worker_cpu = sum(cpu_seconds(pid) - before for pid, before in cpu_before.items())
                mock_cpu = cpu_seconds(mock_pid) - mock_before
                stats = server.stats()
                rows = ModelResponse.objects.filter(run=run)
                finished = rows.filter(state="finished").count()
                bound = min(n * options.concurrency, options.targets * cap) / (options.latency_ms / 1000)
                ours = total / wall
                results[n] = ours
                bounds[n] = bound
                peaks = stats.get("max_in_flight_by_model", {})
                peak = max(peaks.values()) if peaks else stats["max_in_flight"]
                latencies = sorted(rows.exclude(latency_ms=None).values_list("latency_ms", flat=True))
                mean_latency = sum(latencies) / len(latencies) if latencies else float("nan")
                p95_latency = latencies[int(0.95 * (len(latencies) - 1))] if latencies else float("nan")
                print(
                    f"N={n}: wall {wall:6.1f} s  {ours:6.1f} responses/s  {ours / bound:5.1%} of the bound "
                    f"({bound:.0f}/s)  x{ours / results[options.workers[0]]:.2f} vs N={options.workers[0]}  "
                    f"rows {rows.count()} finished {finished}  peak in flight per endpoint {peak} "
                    f"(cap {cap}), total {stats['max_in_flight']}  requests {stats['requests']}  "
                    f"CPU/response: workers {1000 * worker_cpu / total:.2f} ms, "
                    f"mock {1000 * mock_cpu / total:.2f} ms  "
                    f"call latency as the worker saw it: mean {mean_latency:.1f} ms, p95 {p95_latency} ms "
                    f"(the mock's own: {options.latency_ms:g} ms)"
                )
            client.close()

            if not options.no_plain:
                bound = options.concurrency / (options.latency_ms / 1000)
                plain = plain_loop_module()
                pairs = [
                    (f"mock-target-{t:02d}", f"Benchmark query shape {q:05d}")
                    for q in range(options.queries)
                    for t in range(options.targets)
                ]
                started = time.perf_counter()
                done = asyncio.run(plain.run_plain_sdk(server.openai_base_url, pairs, options.concurrency))
                plain_wall = time.perf_counter() - started
                theirs = total / plain_wall
                print(
                    f"plain asyncio loop, openai SDK, semaphore {options.concurrency} (writes nothing): "
                    f"wall {plain_wall:6.1f} s  {theirs:6.1f} responses/s  "
                    f"{theirs / bound:5.1%} of the latency bound  ok {done}"
                )
                first = options.workers[0]
                print(f"platform N={first} / plain loop throughput = {results[first] / theirs:.2f}")

            if inspect_interpreter is not None:
                server.reset()
                mock_before = cpu_seconds(mock_pid)
                inspect = inspect_run(
                    inspect_interpreter,
                    server.openai_base_url,
                    options.queries,
                    options.targets,
                    options.concurrency,
                )
                mock_cpu = cpu_seconds(mock_pid) - mock_before
                stats = server.stats()
                theirs = inspect["done"] / inspect["wall"]
                # Inspect's openai provider shares one max_connections semaphore among all models
                # with one API key, so its bound is the same as one collector's.
                bound = min(options.concurrency, options.targets * cap) / (options.latency_ms / 1000)
                peaks = stats.get("max_in_flight_by_model", {})
                print(
                    f"Inspect AI {INSPECT_REQUIREMENT.split('==')[1]} ({inspect_interpreter}): "
                    f"eval() wall {inspect['wall']:6.1f} s  {theirs:6.1f} responses/s  "
                    f"{theirs / bound:5.1%} of the bound ({bound:.0f}/s)  done {inspect['done']}/{total} "
                    f"{inspect['statuses']}  peak in flight {stats['max_in_flight']} (per endpoint "
                    f"{max(peaks.values()) if peaks else '-'})  requests {stats['requests']}  "
                    f"CPU/response: Inspect {1000 * inspect['cpu'] / total:.2f} ms, "
                    f"mock {1000 * mock_cpu / total:.2f} ms"
                )
                for n, ours in results.items():
                    print(
                        f"platform N={n} / Inspect AI throughput = {ours / theirs:.2f}  "
                        f"(share of the bound: ours {ours / bounds[n]:.1%}, Inspect {theirs / bound:.1%})"
                    )
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.terminate()
                worker.wait(timeout=30)
        from django.db import connections

        connections.close_all()
        database_drop()


if __name__ == "__main__":
    main()
