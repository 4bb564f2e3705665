"""Collection throughput, end to end: 1,100 queries x 19 targets = 20,900 requests against our
mock model server at 200 ms latency, concurrency 64, through a real Celery worker that writes every
row to PostgreSQL; and, in the same run against the same mock, a plain asyncio loop with the
``openai`` SDK and a semaphore of 64 that writes nothing. Prints both and their ratios.

    .venv/bin/python bench/collect.py                      # the issue's workload
    .venv/bin/python bench/collect.py --queries 200        # quicker, same per-second figures

Needs PostgreSQL and Redis on this machine (``bin/services`` starts them). It works in its own
database (``medharm_bench_collect``, dropped at the end) and Redis database 7.
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

DB_NAME = "medharm_bench_collect"
PG = "postgres://postgres@127.0.0.1:5432"
REDIS_URL = "redis://127.0.0.1:6379/7"


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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--queries", type=int, default=1100)
    parser.add_argument("--targets", type=int, default=19)
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--concurrency", type=int, default=64)
    options = parser.parse_args()

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
    from evaluations.mock_server import MockServerConfig, MockServerProcess
    from evaluations.models import CollectionRun, ModelResponse, RunStatus
    from querybank.models import Category, Query

    total = options.queries * options.targets
    bound = options.concurrency / (options.latency_ms / 1000)
    print(
        f"{options.queries} queries x {options.targets} targets = {total} requests; mock latency "
        f"{options.latency_ms:g} ms; concurrency {options.concurrency}; "
        f"latency bound {bound:.0f} responses/s; "
        f"{os.cpu_count()} CPUs shared by the mock, the worker and PostgreSQL"
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

    worker = None
    try:
        with MockServerProcess(MockServerConfig(latency_ms=options.latency_ms)) as server:
            endpoints = [
                services.endpoint_create(
                    actor=SYSTEM,
                    slug=f"bench-target-{t:02d}",
                    name=f"Bench target {t:02d}",
                    base_url=server.openai_base_url,
                    model_name=f"mock-target-{t:02d}",
                    max_concurrency=options.concurrency,
                    timeout_seconds=60,
                )
                for t in range(options.targets)
            ]
            run = services.run_create(
                actor=maintainer,
                name="bench",
                queries=Query.objects.all(),
                targets=endpoints,
                parameters={"temperature": 0.0, "max_tokens": 256},
                concurrency=options.concurrency,
            )
            log = open(ROOT / "var" / "bench-collect-worker.log", "wb")  # noqa: SIM115
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
                    "bench@%h",
                ],
                cwd=ROOT,
                env=environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            deadline = time.monotonic() + 60
            while b"ready." not in (ROOT / "var" / "bench-collect-worker.log").read_bytes():
                if time.monotonic() > deadline or worker.poll() is not None:
                    raise SystemExit("the worker did not start; see var/bench-collect-worker.log")
                time.sleep(0.2)

            from celery import Celery

            started = time.perf_counter()
            CollectionRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
            client = Celery(broker=REDIS_URL, set_as_current=False)
            client.send_task("evaluations.run_execute", args=[run.pk])
            while CollectionRun.objects.values_list("status", flat=True).get(pk=run.pk) == RunStatus.RUNNING:
                time.sleep(0.25)
            wall = time.perf_counter() - started
            rss = peak_rss_mb(worker.pid)
            rows = ModelResponse.objects.filter(run=run)
            finished = rows.filter(state="finished").count()
            collected = rows.filter(outcome="collected").count()
            ours = total / wall
            print(
                f"platform (Celery worker + PostgreSQL): wall {wall:6.1f} s  {ours:6.1f} responses/s  "
                f"{ours / bound:5.1%} of the latency bound  rows {rows.count()} finished {finished} "
                f"collected {collected}  worker peak RSS {rss:.0f} MB"
            )

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
                f"plain asyncio loop, openai SDK, semaphore {options.concurrency} (writes nothing): wall "
                f"{plain_wall:6.1f} s  {theirs:6.1f} responses/s  "
                f"{theirs / bound:5.1%} of the latency bound  "
                f"ok {done}"
            )
            print(f"platform / plain loop throughput = {ours / theirs:.2f}")
    finally:
        if worker is not None and worker.poll() is None:
            worker.terminate()
            worker.wait(timeout=30)
        from django.db import connections

        connections.close_all()
        database_drop()


if __name__ == "__main__":
    main()
