"""Judge-run throughput beside collection's, and the audit page's time: 1,100 queries x 19 targets =
20,900 responses collected, then judged by ``mock-judge``, both against one mock at 200 ms latency,
concurrency 64, through the same real Celery worker writing to PostgreSQL; then 2,000 of the
responses given clinician gold labels and the audit page rendered for them.

    .venv/bin/python bench/judge.py                       # the issue's workload
    .venv/bin/python bench/judge.py --queries 200         # quicker, same per-second figures

The issue's target is that a judge run reaches the same share of the latency bound as collection
does; on a shared machine only the ratio of the two, measured side by side in one invocation, means
anything, so both are measured here and the ratio printed. The audit page is timed cold (its cache
cleared before each render: every figure computed from the database) and warm (cached by the
fingerprint of its inputs).

Needs PostgreSQL and Redis on this machine. It works in its own database (``medharm_bench_judge``,
dropped at the end) and Redis database 8.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

DB_NAME = "medharm_bench_judge"
PG = "postgres://postgres@127.0.0.1:5432"
REDIS_URL = "redis://127.0.0.1:6379/8"


def _database(drop_only: bool = False) -> None:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        if not drop_only:
            connection.execute(f"CREATE DATABASE {DB_NAME}")


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
    """User + system CPU of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--queries", type=int, default=1100)
    parser.add_argument("--targets", type=int, default=19)
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--gold", type=int, default=2000)
    options = parser.parse_args()

    os.environ.update(environment())
    _database()
    import django

    django.setup()
    import redis
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    redis.Redis.from_url(REDIS_URL).flushdb()

    from celery import Celery
    from django.test import RequestFactory

    from accounts.models import User
    from accounts.roles import Role
    from annotations.defaults import GUIDELINE_SLUG, RESPONSE_RUBRIC_SLUG
    from annotations.demo import reference_values
    from annotations.models import Campaign, CampaignItem, Guideline, Rubric
    from annotations.services.campaigns import campaign_create
    from core.actors import SYSTEM
    from evaluations import services
    from evaluations.models import CollectionRun, RunStatus
    from judging import views
    from judging.models import JudgeItem, JudgeRun, JudgeTemplate
    from judging.services import judge_create, judge_run_create
    from mockmodel import MockServerConfig, MockServerProcess
    from querybank.models import Category, Query

    total = options.queries * options.targets
    bound = options.concurrency / (options.latency_ms / 1000)
    print(
        f"{options.queries} queries x {options.targets} targets = {total} responses to collect, then "
        f"judge; mock latency {options.latency_ms:g} ms; concurrency {options.concurrency}; "
        f"latency bound {bound:.0f} items/s; load average {os.getloadavg()[0]:.1f}; "
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
    maintainer.groups.add(
        *__import__("django.contrib.auth.models", fromlist=["Group"]).Group.objects.filter(
            name=Role.MAINTAINER.value
        )
    )
    worker = None
    client = Celery(broker=REDIS_URL, set_as_current=False)

    def measure(label: str, task: str, run_model: Any, run_id: int, unit: str, mock_pid: int) -> float:
        """Send ``task`` for a running run to the worker, wait until it stops, print its share."""
        assert worker is not None
        cpu_before = cpu_seconds(worker.pid)
        mock_before = cpu_seconds(mock_pid)
        started = time.perf_counter()
        client.send_task(task, args=[run_id])
        while run_model.objects.values_list("status", flat=True).get(pk=run_id) == RunStatus.RUNNING:
            time.sleep(0.25)
        wall = time.perf_counter() - started
        cpu = cpu_seconds(worker.pid) - cpu_before
        mock_cpu = cpu_seconds(mock_pid) - mock_before
        rate = total / wall
        print(
            f"{label}: wall {wall:6.1f} s  {rate:6.1f} {unit}/s  {rate / bound:5.1%} of the latency bound  "
            f"CPU per item: worker {1000 * cpu / total:.2f} ms, mock {1000 * mock_cpu / total:.2f} ms"
        )
        return rate / bound

    try:
        with MockServerProcess(MockServerConfig(latency_ms=options.latency_ms)) as server:
            log_path = ROOT / "var" / "bench-judge-worker.log"
            log_path.parent.mkdir(exist_ok=True)
            worker = subprocess.Popen(
                [str(Path(sys.executable).with_name("celery")), "-A", "medharm_web", "worker", "--pool=solo",
                 "--loglevel=INFO", "--without-gossip", "--without-mingle", "-n", "bench-judge@%h"],
                cwd=ROOT, env=environment(), stdout=log_path.open("wb"), stderr=subprocess.STDOUT,
            )  # fmt: skip
            deadline = time.monotonic() + 60
            while b"ready." not in log_path.read_bytes():
                if time.monotonic() > deadline or worker.poll() is not None:
                    raise SystemExit("the worker did not start; see var/bench-judge-worker.log")
                time.sleep(0.2)

            endpoints = [
                services.endpoint_create(
                    actor=SYSTEM, slug=f"bench-target-{t:02d}", name=f"Bench target {t:02d}",
                    base_url=server.openai_base_url, model_name=f"mock-target-{t:02d}",
                    max_concurrency=options.concurrency, timeout_seconds=60,
                )
                for t in range(options.targets)
            ]  # fmt: skip
            run = services.run_create(
                actor=maintainer, name="bench", queries=Query.objects.all(), targets=endpoints,
                concurrency=options.concurrency, workers=1,
            )  # fmt: skip
            CollectionRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
            collected = measure(
                "collection (Celery worker + PostgreSQL)", "evaluations.run_execute", CollectionRun, run.pk,
                "responses", server.pid,
            )  # fmt: skip

            judge = judge_create(
                actor=maintainer, slug="bench-judge", name="Bench judge",
                endpoint=services.endpoint_create(
                    actor=SYSTEM, slug="bench-judge", name="Bench judge", base_url=server.openai_base_url,
                    model_name="mock-judge", max_concurrency=options.concurrency, timeout_seconds=60,
                ),
                template=JudgeTemplate.objects.get(slug="harmbench-unsafe", version=1),
            )  # fmt: skip
            judge_run = judge_run_create(
                actor=maintainer, judge=judge, collection_run=run, concurrency=options.concurrency
            )
            JudgeRun.objects.filter(pk=judge_run.pk).update(status=RunStatus.RUNNING)
            judged_share = measure(
                "judge run  (Celery worker + PostgreSQL)", "judging.judge_run_execute", JudgeRun,
                judge_run.pk, "verdicts", server.pid,
            )  # fmt: skip
            judge_run.refresh_from_db()
            items = JudgeItem.objects.filter(run=judge_run)
            print(
                f"judge run / collection share of the bound = {judged_share / collected:.2f}  "
                f"(judge rows {items.count()}, each once: "
                f"{items.values('response', 'sample_index').distinct().count()}; "
                f"parsed {items.filter(outcome='parsed').count()}; "
                f"responses without text skipped: {judge_run.skipped_responses})"
            )
        client.close()

        campaign = campaign_create(
            actor=maintainer, name="bench audit", target="response",
            rubric=Rubric.objects.filter(slug=RESPONSE_RUBRIC_SLUG).order_by("-version").first(),
            guideline=Guideline.objects.filter(slug=GUIDELINE_SLUG).order_by("-version").first(),
            overlap=1, runs=[run.pk],
        )  # fmt: skip
        sample = list(
            CampaignItem.objects.filter(campaign=campaign).select_related("response")[: options.gold]
        )
        for item in sample:
            item.gold_values, item.gold_source = {**reference_values(item), "rationale": ""}, "consensus"
        CampaignItem.objects.bulk_update(sample, ["gold_values", "gold_source"], batch_size=1000)
        # As if clinicians had labelled the sample and the campaign were closed (bench data only).
        Campaign.objects.filter(pk=campaign.pk).update(status="closed")

        request = RequestFactory().get(
            "/judges/audit/", {"campaign": campaign.pk, "judge": f"run:{judge_run.pk}", "gold": "gold"}
        )
        request.user = maintainer
        request.htmx = False  # type: ignore[attr-defined]
        from django.core.cache import cache

        def render() -> float:
            started = time.perf_counter()
            response = views.audit(request)
            elapsed = time.perf_counter() - started
            assert response.status_code == 200, response.status_code
            return elapsed

        cold = []
        for _ in range(3):
            cache.clear()
            cold.append(render())
        warm = [render() for _ in range(3)]
        print(
            f"audit page ({total} judged responses, {len(sample)} clinician labels): "
            f"cold {min(cold):.2f} s best of 3 (first {cold[0]:.2f} s); "
            f"warm (cached by fingerprint) {min(warm):.3f} s best of 3; target < 1 s"
        )
    finally:
        if worker is not None and worker.poll() is None:
            worker.terminate()
            worker.wait(timeout=30)
        from django.db import connections

        connections.close_all()
        _database(drop_only=True)


if __name__ == "__main__":
    main()
