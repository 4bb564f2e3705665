"""Benchmark: "next item" and "submit" latency with 32 concurrent annotators as the label table
grows from 10k to 1M rows. Target: p95 < 50 ms at 1M, and p95(1M) within 1.5x of p95(10k).

    .venv/bin/python bench/annotate.py                          # 10k, 100k, 1M labels
    .venv/bin/python bench/annotate.py --sizes 10000 100000     # quicker
    .venv/bin/python bench/annotate.py --think-ms 0             # no pause: CPU saturation

It creates its own PostgreSQL database (``medharm_bench_annotate`` on the server of DATABASE_URL,
default postgres://postgres@127.0.0.1:5432), migrates it, and drops it at the end. The label
history is one response campaign with k = 3: completed items with 3 labels each, COPYed in, plus
open items for the annotators to work on. Each annotator is its own process with its own
connection (no shared GIL) and calls the services the pages and API call: ``item_next`` then
``label_submit``, timing each. ``--think-ms`` is the time between getting an item and submitting
its label. Each size also reports one annotator alone (no queueing) and PostgreSQL's own
execution time of the candidate query, which isolate the effect of table size from CPU contention.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BENCH_DB = "medharm_bench_annotate"
ANNOTATORS = 32
OVERLAP = 3
OPEN_ITEMS = 6000
VALUES = {
    "unsafe": "no",
    "behaviour": "refusal_redirect",
    "actionability": "0",
    "harmfulness": "1",
    "safe_helpfulness": "4",
}
STORED_VALUES = {
    "unsafe": False,
    "behaviour": "refusal_redirect",
    "actionability": 0,
    "harmfulness": 1,
    "safe_helpfulness": 4,
}


def _server_url() -> str:
    return os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/medharm")


def _bench_url() -> str:
    parsed = urlparse(_server_url())
    return parsed._replace(path=f"/{BENCH_DB}").geturl()


def _admin(sql: str) -> None:
    import psycopg

    parsed = urlparse(_server_url())
    with psycopg.connect(
        host=parsed.hostname or "127.0.0.1",
        port=parsed.port or 5432,
        user=parsed.username or "postgres",
        password=parsed.password,
        dbname="postgres",
        autocommit=True,
    ) as conn:
        conn.execute(sql)


def _django() -> None:
    os.environ["DATABASE_URL"] = _bench_url()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medharm_web.settings.base")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


# --- building the data ------------------------------------------------------------------------------


def setup_world() -> dict[str, Any]:
    """Users, a run with 20 targets and 500 queries, and an open response campaign with its pool."""
    from django.contrib.auth.models import Group

    from accounts.models import User
    from accounts.roles import Role
    from annotations.models import Campaign, Guideline, Rubric
    from annotations.services.campaigns import campaign_open
    from evaluations.models import CollectionRun, Endpoint, RunTarget
    from querybank.models import Category, Query

    maintainer = User.objects.create_user("bench-maintainer@example.org")
    maintainer.groups.add(Group.objects.get(name=Role.MAINTAINER.value))
    clinicians = Group.objects.get(name=Role.CLINICIAN.value)
    annotators = [User.objects.create_user(f"bench-annotator-{i}@example.org") for i in range(ANNOTATORS)]
    for user in annotators:
        user.groups.add(clinicians)
    categories = list(Category.objects.filter(taxonomy__slug="medharm"))
    queries = Query.objects.bulk_create(
        Query(
            external_id=f"bench-{i}",
            text=f"Benchmark query shape {i}",
            category=categories[i % len(categories)],
            source="bench",
        )
        for i in range(500)
    )
    run = CollectionRun.objects.create(name="Benchmark run", status="completed", created_by=maintainer)
    targets = []
    for t in range(20):
        endpoint = Endpoint.objects.create(
            slug=f"bench-{t}",
            name=f"Bench model {t}",
            base_url="http://127.0.0.1:9/",
            model_name=f"bench/model-{t}",
        )
        targets.append(RunTarget.objects.create(run=run, endpoint=endpoint, label=endpoint.name, config={}))
    campaign = Campaign.objects.create(
        name="Benchmark campaign",
        target="response",
        rubric=Rubric.objects.get(slug="medharm-response", version=1),
        guideline=Guideline.objects.get(slug="medharm-annotation", version=1),
        overlap=OVERLAP,
        seed="bench-seed",
        created_by=maintainer,
        lease_minutes=20,
    )
    campaign.annotators.set(annotators)
    campaign_open(campaign=campaign, actor=maintainer)
    return {
        "campaign": campaign.pk,
        "run": run.pk,
        "targets": [t.pk for t in targets],
        "queries": [q.pk for q in queries],
        "annotators": [a.pk for a in annotators],
        "guideline": campaign.guideline_id,
        "rubric": campaign.rubric_id,
        "samples": 0,
        "items": 0,
    }


def _copy(table: str, columns: list[str], rows: Any) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg's own cursor: COPY streams rows without building them all
        with raw.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


def add_responses_and_items(world: dict[str, Any], count: int, *, complete: bool) -> list[int]:
    """``count`` new responses (new sample indexes) and campaign items; ids of the items."""
    from django.db import connection
    from django.utils import timezone

    pairs = [(q, t) for t in world["targets"] for q in world["queries"]]
    now = timezone.now()
    rows = []
    while len(rows) < count:
        sample = world["samples"]
        world["samples"] += 1
        for query, target in pairs:
            if len(rows) == count:
                break
            rows.append((world["run"], query, target, sample))
    _copy(
        "evaluations_modelresponse",
        [
            "run_id",
            "query_id",
            "target_id",
            "sample_index",
            "state",
            "outcome",
            "request",
            "resolved_model",
            "text",
            "finish_reason",
            "input_tokens",
            "output_tokens",
            "attempts",
            "errors",
            "error_reason",
            "cost",
            "finished_at",
        ],
        (
            (
                run,
                query,
                target,
                sample,
                "finished",
                "collected",
                "{}",
                "",
                f"Benchmark reply {query}/{target}/{sample}",
                "stop",
                10,
                20,
                1,
                "[]",
                "",
                0,
                now,
            )
            for run, query, target, sample in rows
        ),
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, query_id, target_id FROM evaluations_modelresponse "
            "WHERE run_id = %s AND sample_index >= %s "
            "ORDER BY id DESC LIMIT %s",
            [world["run"], rows[0][3], count],
        )
        responses = cursor.fetchall()
    start = world["items"]
    world["items"] += len(responses)
    labels = OVERLAP if complete else 0
    _copy(
        "annotations_campaignitem",
        [
            "campaign_id",
            "query_id",
            "response_id",
            "stratum",
            "sort_key",
            "required_labels",
            "label_count",
            "agreement",
            "disputed",
            "gold_source",
        ],
        (
            (
                world["campaign"],
                query,
                response,
                f"t{target}",
                start + i,
                OVERLAP,
                labels,
                1.0 if complete else None,
                False,
                "consensus" if complete else "",
            )
            for i, (response, query, target) in enumerate(responses)
        ),
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM annotations_campaignitem "
            "WHERE campaign_id = %s AND sort_key >= %s ORDER BY sort_key",
            [world["campaign"], start],
        )
        return [row[0] for row in cursor.fetchall()]


def grow_labels(world: dict[str, Any], target_labels: int) -> None:
    """Add completed items with k labels each until the label table holds ``target_labels`` rows."""
    from django.db import connection
    from django.utils import timezone

    from annotations.models import Guideline, Label

    have = Label.objects.count()
    missing = max(0, target_labels - have) // OVERLAP
    if missing == 0:
        return
    guideline_hash = Guideline.objects.get(pk=world["guideline"]).content_hash
    values = json.dumps(STORED_VALUES)
    now = timezone.now()
    annotators = world["annotators"]
    step = 100_000
    for offset in range(0, missing, step):
        items = add_responses_and_items(world, min(step, missing - offset), complete=True)
        _copy(
            "annotations_label",
            [
                "item_id",
                "campaign_id",
                "annotator_id",
                "external_rater",
                "rubric_id",
                "guideline_id",
                "guideline_hash",
                "values",
                "revision",
                "created_at",
                "updated_at",
            ],
            (
                (
                    item,
                    world["campaign"],
                    annotators[(n * OVERLAP + j) % len(annotators)],
                    "",
                    world["rubric"],
                    world["guideline"],
                    guideline_hash,
                    values,
                    1,
                    now,
                    now,
                )
                for n, item in enumerate(items)
                for j in range(OVERLAP)
            ),
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


# --- the annotators ---------------------------------------------------------------------------------


def annotator_process(
    campaign_id: int,
    annotator_id: int,
    operations: int,
    warmup: int,
    think: float,
    barrier: Any,
    results: Any,
) -> None:
    _django()
    from accounts.models import User
    from annotations.models import Campaign
    from annotations.services.labelling import ClaimOutcome, item_next, label_submit

    annotator = User.objects.get(pk=annotator_id)
    campaign = Campaign.objects.get(pk=campaign_id)
    next_times: list[float] = []
    submit_times: list[float] = []
    cpu = 0.0
    waits = 0
    barrier.wait()
    for n in range(warmup + operations):
        c0 = time.process_time()
        t0 = time.perf_counter()
        claim = item_next(campaign=campaign, annotator=annotator)
        t1 = time.perf_counter()
        c1 = time.process_time()
        while claim.outcome == ClaimOutcome.WAITING:  # "try again": what the page offers
            waits += 1
            time.sleep(0.05)
            t0 = time.perf_counter()
            claim = item_next(campaign=campaign, annotator=annotator)
            t1 = time.perf_counter()
        if claim.outcome != ClaimOutcome.ITEM:
            results.put(("error", f"no item: {claim.outcome}"))
            break
        if think:
            time.sleep(think)  # reading the item
        c2 = time.process_time()
        t2 = time.perf_counter()
        label_submit(item=claim.item, annotator=annotator, values=VALUES)
        t3 = time.perf_counter()
        c3 = time.process_time()
        if n >= warmup:
            next_times.append(t1 - t0)
            submit_times.append(t3 - t2)
            cpu += (c1 - c0) + (c3 - c2)
    results.put(("ok", next_times, submit_times, cpu, waits))


def uncontended(world: dict[str, Any], cycles: int) -> dict[str, float]:
    """One annotator alone, back to back: the latency with no queueing for CPU or locks."""
    from accounts.models import User
    from annotations.models import Campaign
    from annotations.services.labelling import item_next, label_submit

    annotator = User.objects.get(pk=world["annotators"][0])
    campaign = Campaign.objects.get(pk=world["campaign"])
    next_times, submit_times = [], []
    for _ in range(cycles):
        t0 = time.perf_counter()
        claim = item_next(campaign=campaign, annotator=annotator)
        t1 = time.perf_counter()
        label_submit(item=claim.item, annotator=annotator, values=VALUES)
        t2 = time.perf_counter()
        next_times.append(t1 - t0)
        submit_times.append(t2 - t1)
    return {
        "next_p50": percentile(next_times, 50) * 1000,
        "next_p95": percentile(next_times, 95) * 1000,
        "submit_p50": percentile(submit_times, 50) * 1000,
        "submit_p95": percentile(submit_times, 95) * 1000,
    }


def candidate_query_ms(world: dict[str, Any]) -> tuple[float, str]:
    """PostgreSQL's own execution time of the "next item" candidate query, and its plan's index."""
    from django.db import connection, transaction
    from django.utils import timezone

    from accounts.models import User
    from annotations.assignment import CHOICE_WINDOW
    from annotations.models import Campaign
    from annotations.services.labelling import _eligible

    campaign = Campaign.objects.get(pk=world["campaign"])
    annotator = User.objects.get(pk=world["annotators"][1])
    with transaction.atomic():
        query = (
            _eligible(campaign, annotator, timezone.now())
            .order_by("sort_key")
            .select_for_update(skip_locked=True, of=("self",))
            .only("pk", "label_count", "required_labels")
        )[:CHOICE_WINDOW]
        sql, params = query.query.sql_with_params()
        with connection.cursor() as cursor:
            times = []
            for _ in range(5):
                cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
                plan = cursor.fetchone()[0]
                plan = json.loads(plan) if isinstance(plan, str) else plan
                times.append(plan[0]["Execution Time"])
            text = json.dumps(plan)
        transaction.set_rollback(True)
    index = "item_needs_labels" if "item_needs_labels" in text else "other"
    return statistics.median(times), index


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def measure(world: dict[str, Any], operations: int, warmup: int, think: float) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(ANNOTATORS)
    results = ctx.Queue()
    processes = [
        ctx.Process(
            target=annotator_process,
            args=(world["campaign"], annotator, operations, warmup, think, barrier, results),
        )
        for annotator in world["annotators"]
    ]
    started = time.perf_counter()
    for process in processes:
        process.start()
    next_times: list[float] = []
    submit_times: list[float] = []
    cpu = 0.0
    waits = 0
    for _ in processes:
        result = results.get(timeout=1800)
        if result[0] != "ok":
            raise SystemExit(f"annotator failed: {result[1]}")
        next_times += result[1]
        submit_times += result[2]
        cpu += result[3]
        waits += result[4]
    for process in processes:
        process.join()
    wall = time.perf_counter() - started
    return {
        "next_p50": percentile(next_times, 50) * 1000,
        "next_p95": percentile(next_times, 95) * 1000,
        "submit_p50": percentile(submit_times, 50) * 1000,
        "submit_p95": percentile(submit_times, 95) * 1000,
        "next_mean": statistics.mean(next_times) * 1000,
        "ops": len(next_times),
        "wall": wall,
        # Client CPU per label cycle: when latency is far above it, the time went to waiting for a core.
        "cpu_per_cycle": cpu / len(next_times) * 1000,
        "waits": waits,  # "nothing free right now" answers, retried after 50 ms
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument(
        "--operations", type=int, default=25, help="measured label cycles per annotator and size"
    )
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument(
        "--think-ms",
        type=float,
        default=2000.0,
        help="pause between getting an item and submitting its label (a clinician takes 20-60 s)",
    )
    parser.add_argument("--single", type=int, default=100, help="cycles of the lone annotator per size")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    args = parser.parse_args()

    _admin(f"DROP DATABASE IF EXISTS {BENCH_DB}")
    _admin(f"CREATE DATABASE {BENCH_DB}")
    try:
        _django()
        from django.core.management import call_command
        from django.db import connection

        print(f"Migrating {BENCH_DB} ...", flush=True)
        call_command("migrate", verbosity=0)
        world = setup_world()
        needed = (
            len(args.sizes) * (ANNOTATORS * (args.operations + args.warmup) + args.single) // OVERLAP + 1000
        )
        add_responses_and_items(world, max(OPEN_ITEMS, needed), complete=False)
        rows = []
        for size in sorted(args.sizes):
            started = time.perf_counter()
            grow_labels(world, size)
            from annotations.models import Label

            count = Label.objects.count()
            built = time.perf_counter() - started
            print(f"labels: {count:>9,} (built in {built:.0f} s)", flush=True)
            db_ms, index = candidate_query_ms(world)
            alone = uncontended(world, args.single)
            connection.close()  # the annotators open their own; do not hold one across the fork
            print(
                f"  candidate query in PostgreSQL {db_ms:.2f} ms (index {index}); one annotator alone: "
                f"next p95 {alone['next_p95']:.1f} ms, submit p95 {alone['submit_p95']:.1f} ms",
                flush=True,
            )
            figures = measure(world, args.operations, args.warmup, args.think_ms / 1000)
            rows.append((count, figures, alone, db_ms))
            print(
                f"  {ANNOTATORS} annotators: next item p50 {figures['next_p50']:6.1f} ms  "
                f"p95 {figures['next_p95']:6.1f} ms"
                f" | submit p50 {figures['submit_p50']:6.1f} ms  p95 {figures['submit_p95']:6.1f} ms | "
                f"{figures['ops'] / figures['wall']:.1f} labels/s | "
                f"client CPU {figures['cpu_per_cycle']:.1f} ms/cycle | {figures['waits']} waits"
                f" | load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
                flush=True,
            )
        print()
        print(
            f"{ANNOTATORS} concurrent annotators, "
            f"{args.think_ms:.0f} ms between getting an item and submitting it:"
        )
        print(
            "| labels | next p50 | next p95 | submit p50 | submit p95 | alone: next p95 | alone: submit p95 "
            "| candidate query (PostgreSQL) |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for count, f, alone, db_ms in rows:
            print(
                f"| {count:,} | {f['next_p50']:.1f} ms | {f['next_p95']:.1f} ms | "
                f"{f['submit_p50']:.1f} ms | {f['submit_p95']:.1f} ms | {alone['next_p95']:.1f} ms | "
                f"{alone['submit_p95']:.1f} ms | {db_ms:.2f} ms |"
            )
        if len(rows) > 1:
            first, last = rows[0][1], rows[-1][1]
            print(
                f"\np95 ratio largest/smallest: next {last['next_p95'] / first['next_p95']:.2f}x, "
                f"submit {last['submit_p95'] / first['submit_p95']:.2f}x (target <= 1.5x); "
                f"p95 at the largest size: next {last['next_p95']:.1f} ms, "
                f"submit {last['submit_p95']:.1f} ms "
                "(target < 50 ms)"
            )
        connection.close()
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            _admin(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")


if __name__ == "__main__":
    main()
