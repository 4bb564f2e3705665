"""Judge-run throughput and audit-page time: 1,100 queries x 19 targets = 20,900 collected responses
judged by ``mock-judge`` at 200 ms latency, concurrency 64, through a real Celery worker writing to
PostgreSQL; then 2,000 of them given clinician gold labels and the audit page rendered for them.

    .venv/bin/python bench/judge.py                       # the issue's workload
    .venv/bin/python bench/judge.py --queries 200         # quicker, same per-second figures

Needs PostgreSQL and Redis on this machine. It works in its own database (``medharm_bench_judge``,
dropped at the end) and Redis database 8. The responses are collected first, in-process, from a
fast mock (not measured); the judge run is measured like ``bench/collect.py`` measures collection.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

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
    from evaluations.collector import run_collect
    from evaluations.models import CollectionRun, RunStatus
    from judging import views
    from judging.models import JudgeItem, JudgeRun, JudgeTemplate
    from judging.services import judge_create, judge_run_create
    from mockmodel import MockServerConfig, MockServerProcess
    from querybank.models import Category, Query

    total = options.queries * options.targets
    bound = options.concurrency / (options.latency_ms / 1000)
    print(
        f"{options.queries} queries x {options.targets} targets = {total} responses to judge; "
        f"judge latency {options.latency_ms:g} ms; concurrency {options.concurrency}; "
        f"latency bound {bound:.0f} verdicts/s; "
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
    try:
        with MockServerProcess(MockServerConfig(latency_ms=0)) as fast:
            endpoints = [
                services.endpoint_create(
                    actor=SYSTEM, slug=f"bench-target-{t:02d}", name=f"Bench target {t:02d}",
                    base_url=fast.openai_base_url, model_name=f"mock-target-{t:02d}",
                    max_concurrency=options.concurrency, timeout_seconds=60,
                )
                for t in range(options.targets)
            ]  # fmt: skip
            run = services.run_create(
                actor=maintainer, name="bench", queries=Query.objects.all(), targets=endpoints,
                concurrency=options.concurrency,
            )  # fmt: skip
            CollectionRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
            started = time.perf_counter()
            run_collect(run_id=run.pk)
            print(f"collected {total} responses in {time.perf_counter() - started:.1f} s (not measured)")

        with MockServerProcess(MockServerConfig(latency_ms=options.latency_ms)) as server:
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
            judge_run.refresh_from_db()
            started = time.perf_counter()
            JudgeRun.objects.filter(pk=judge_run.pk).update(status=RunStatus.RUNNING)
            client = Celery(broker=REDIS_URL, set_as_current=False)
            client.send_task("judging.judge_run_execute", args=[judge_run.pk])
            while JudgeRun.objects.values_list("status", flat=True).get(pk=judge_run.pk) == RunStatus.RUNNING:
                time.sleep(0.25)
            wall = time.perf_counter() - started
            items = JudgeItem.objects.filter(run=judge_run)
            judged = items.count()
            rate = judged / wall
            print(
                f"judge run (Celery worker + PostgreSQL): wall {wall:6.1f} s  {rate:6.1f} verdicts/s  "
                f"{rate / bound:5.1%} of the latency bound  rows {judged} "
                f"(responses without text skipped: {judge_run.skipped_responses})  "
                f"parsed {items.filter(outcome='parsed').count()}"
            )

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
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            response = views.audit(request)
            timings.append(time.perf_counter() - started)
            assert response.status_code == 200, response.status_code
        print(
            f"audit page ({total} judged responses, {len(sample)} clinician labels): "
            f"{min(timings):.2f} s best of 3 (first {timings[0]:.2f} s); target < 1 s"
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
