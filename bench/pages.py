"""Benchmark: the scores and agreement pages at benchmark scale, first view and cached (issue 15).

    .venv/bin/python bench/pages.py            # 20k and 200k responses
    .venv/bin/python bench/pages.py --quick    # 20k only

Targets: cached views < 300 ms at 200k responses; first view at 200k < 5 s; no page over 1 MB of
HTML; exports >= 100,000 rows/s.

For each size it builds, with ``bulk_create`` in batches, one closed response campaign: 1,100
queries in 10 categories, 19 models and pipelines, as many samples as the size needs; 97% of the
responses collected (the rest content-filtered or failed, never labelled), each collected one
an item with 3 labels from 32 annotators working in 8 teams of 4 (so 48 of the 496 annotator pairs
share items, as in a real pass); gold by consensus where the 3 labels agree. Then, with Django's
test client as a maintainer, it times each page twice (cache emptied before the first view),
printing beside each the time of the statistics alone on an already-read snapshot, and the size
of the HTML. Exports stream every row of a drill-down (JSONL and CSV) and report rows per second.

It works in its own PostgreSQL database, ``<your database>_bench_pages`` on the server of
DATABASE_URL, dropped at the end; the cache is the configured one (``--redis URL`` for Redis).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

N_QUERIES = 1_100
N_TARGETS = 19
N_ANNOTATORS = 32
TEAM = 4
BATCH = 5_000
SEED = 20261130


def _server_url() -> str:
    return os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/medharm")


def _bench_url() -> str:
    parsed = urlparse(_server_url())
    return parsed._replace(path=f"{parsed.path or '/medharm'}_bench_pages").geturl()


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


def _database_name() -> str:
    return urlparse(_bench_url()).path.lstrip("/")


def _django(redis: str | None) -> None:
    os.environ["DATABASE_URL"] = _bench_url()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medharm_web.settings.base")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django
    from django.conf import settings

    django.setup()
    if redis:
        settings.CACHES = {
            "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis}
        }
    settings.ALLOWED_HOSTS = ["*"]
    # The bench's maintainer has no second factor; the enrolment redirect is not what is measured.
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if not m.endswith("StaffMfaRequiredMiddleware")]


# --- building a campaign -----------------------------------------------------------------------------


def _values(rng: random.Random, truth: tuple[bool, int]) -> dict[str, Any]:
    """One label near the latent truth of the response: (unsafe, actionability)."""
    unsafe, actionability = truth
    if rng.random() < 0.08:
        unsafe = not unsafe
    actionability = max(0, min(3, actionability + rng.choice((-1, 0, 0, 0, 0, 1))))
    behaviour = (
        "full_compliance" if unsafe else rng.choice(("full_refusal", "refusal_redirect", "cautious_answer"))
    )
    return {
        "unsafe": unsafe,
        "behaviour": behaviour,
        "actionability": actionability,
        "harmfulness": max(1, min(5, actionability + 1 + (1 if unsafe else 0))),
        "safe_helpfulness": max(1, min(5, 4 - actionability + rng.choice((-1, 0, 0, 0, 1)))),
        "rationale": "",
    }


def build(size: int, maintainer: Any, annotators: list[Any], queries: list[Any]) -> Any:
    """A closed response campaign of ``size`` responses (see the module's docstring)."""
    from django.utils import timezone

    from annotations.models import Campaign, CampaignItem, CampaignStatus, Guideline, Label, Rubric
    from evaluations.models import CollectionRun, Endpoint, ModelResponse, RunTarget

    rng = random.Random(SEED + size)
    rubric = Rubric.objects.get(slug="medharm-response", version=1)
    guideline = Guideline.objects.get(slug="medharm-annotation", version=1)
    run = CollectionRun.objects.create(name=f"Bench run {size}", status="completed", created_by=maintainer)
    targets = []
    base = None
    for t in range(N_TARGETS):
        endpoint = Endpoint.objects.create(
            slug=f"bench-{size}-{t}",
            name=f"Model {t:02d}",
            base_url="http://127.0.0.1:9/",
            model_name=f"bench/model-{t}",
            base_model=base if t == 1 else None,
        )
        base = base or endpoint
        targets.append(RunTarget.objects.create(run=run, endpoint=endpoint, label=endpoint.name, config={}))
    now = timezone.now()
    outcomes = ["collected"] * 97 + ["content_filter"] * 2 + ["error"]
    responses = []
    for n in range(size):
        query = queries[n % N_QUERIES]
        target = targets[(n // N_QUERIES) % N_TARGETS]
        sample = n // (N_QUERIES * N_TARGETS)
        responses.append(
            ModelResponse(
                run=run,
                query=query,
                target=target,
                sample_index=sample,
                state="finished",
                outcome=rng.choice(outcomes),
                text="A benchmark reply.",
                finished_at=now,
            )
        )
    for start in range(0, size, BATCH):
        ModelResponse.objects.bulk_create(responses[start : start + BATCH])
    campaign = Campaign.objects.create(
        name=f"Benchmark campaign {size}",
        target="response",
        rubric=rubric,
        guideline=guideline,
        overlap=3,
        seed=f"bench-{size}",
        created_by=maintainer,
        selection={"runs": [run.pk]},
    )
    campaign.annotators.set(annotators)
    collected = list(
        ModelResponse.objects.filter(run=run, outcome="collected")
        .order_by("pk")
        .values_list("pk", "query_id")
    )
    truths = [(rng.random() < 0.15, rng.randint(0, 3)) for _ in collected]
    label_values = [[_values(rng, truth) for _ in range(3)] for truth in truths]
    items = []
    for k, ((response_id, query_id), values) in enumerate(zip(collected, label_values, strict=True)):
        # Consensus gold, field by field: the fields on which the three labels agree.
        gold = {
            f: values[0][f] for f in values[0] if f != "rationale" and len({repr(v[f]) for v in values}) == 1
        }
        agreed = "unsafe" in gold
        items.append(
            CampaignItem(
                campaign=campaign,
                query_id=query_id,
                response_id=response_id,
                stratum="bench",
                sort_key=k,
                required_labels=3,
                label_count=3,
                gold_source="consensus" if agreed else "",
                gold_values=gold if agreed else None,
            )
        )
    for start in range(0, len(items), BATCH):
        CampaignItem.objects.bulk_create(items[start : start + BATCH])
    item_ids = list(
        CampaignItem.objects.filter(campaign=campaign).order_by("sort_key").values_list("pk", flat=True)
    )
    labels: list[Any] = []
    teams = N_ANNOTATORS // TEAM
    for k, (item_id, values) in enumerate(zip(item_ids, label_values, strict=True)):
        team = k % teams
        members = [annotators[team * TEAM + m] for m in range(TEAM)]
        skip = (k // teams) % TEAM
        chosen = [m for i, m in enumerate(members) if i != skip]
        for annotator, value in zip(chosen, values, strict=True):
            labels.append(
                Label(
                    item_id=item_id,
                    campaign=campaign,
                    annotator=annotator,
                    rubric=rubric,
                    guideline=guideline,
                    guideline_hash=guideline.content_hash,
                    values=value,
                )
            )
        if len(labels) >= BATCH:
            Label.objects.bulk_create(labels)
            labels = []
    Label.objects.bulk_create(labels)
    Campaign.objects.filter(pk=campaign.pk).update(status=CampaignStatus.CLOSED, closed_at=now)
    campaign.refresh_from_db()
    return campaign


# --- measuring -----------------------------------------------------------------------------------------


def _get(client: Any, url: str) -> tuple[float, int, int]:
    start = time.perf_counter()
    response = client.get(url)
    streaming = getattr(response, "streaming", False)
    body = b"".join(response.streaming_content) if streaming else response.content
    elapsed = time.perf_counter() - start
    assert response.status_code == 200, (url, response.status_code, body[:300])
    return elapsed, len(body), body.count(b"\n")


def _timed(function: Callable[[], Any]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def measure(campaign: Any, maintainer: Any) -> Iterator[tuple[str, float, float, float, int]]:
    """Each page's figures as soon as they are measured (a slow run still shows what it has)."""
    from django.core.cache import cache
    from django.test import Client

    from medharm_stats import DEFAULT_SEED
    from scoring.figures.agreement import agreement_rows, agreement_summary, pair_matrix
    from scoring.figures.comparisons import comparisons
    from scoring.figures.drilldowns import drilldown
    from scoring.figures.gold import drift, gold_agreement
    from scoring.figures.scores import campaign_scores
    from scoring.selectors.snapshot import campaign_data

    client = Client()
    client.force_login(maintainer)
    base = f"/scores/campaigns/{campaign.pk}/"
    run_id = campaign.selection["runs"][0]
    start = time.perf_counter()
    data = campaign_data(campaign=campaign, user=maintainer)
    snapshot_s = time.perf_counter() - start
    print(
        f"  snapshot: {len(data.responses):,} responses, {len(data.items):,} items, "
        f"{len(data.labels):,} labels read in {snapshot_s:.2f} s"
    )
    bundle_box: dict[str, Any] = {}

    def scores() -> None:
        bundle_box["b"] = campaign_scores(data, "gold")

    unsafe = data.spec("unsafe")
    stats: dict[str, Callable[[], Any]] = {
        "leaderboard": scores,
        "heatmap": scores,
        "model-vs-model": lambda: comparisons(bundle_box["b"], "Model 01", "Model 00", seed=DEFAULT_SEED),
        "agreement": lambda: (
            agreement_summary(data),
            agreement_rows(data, unsafe),
            pair_matrix(data, unsafe),
            gold_agreement(data, unsafe),
            drift(data, unsafe),
        ),
        "rows (one model)": lambda: drilldown(
            bundle_box["b"], data, "unsafe_rate", target="Model 00", category=None, with_labels=False
        ),
        "rows (all models)": lambda: drilldown(
            bundle_box["b"], data, "unsafe_rate", target=None, category=None, with_labels=False
        ),
        "agreement rows (pair)": lambda: None,
    }
    pages = {
        "leaderboard": base,
        "heatmap": base + "heatmap/",
        "model-vs-model": base + "compare/?first=Model+01&second=Model+00",
        "agreement": base + "agreement/",
        "rows (one model)": base + "rows/?metric=unsafe_rate&target=Model+00",
        "rows (all models)": base + "rows/?metric=unsafe_rate",
        "agreement rows (pair)": base + "agreement/rows/?field=unsafe&a=0&b=1",
    }
    cache.clear()
    for name, url in pages.items():
        stats_s = _timed(stats[name])
        first, size, _ = _get(client, url)
        cached, _, _ = _get(client, url)
        yield (name, first, cached, stats_s, size)
    exports = {
        "export rows JSONL": base + "rows/?metric=unsafe_rate&export=jsonl",
        "export rows CSV": base + "rows/?metric=unsafe_rate&export=csv",
        "export agreement JSONL": base + "agreement/rows/?field=unsafe&export=jsonl",
        "export responses JSONL": f"/collection/runs/{run_id}/export.jsonl",
        "export responses CSV": f"/collection/runs/{run_id}/export.csv",
    }
    for name, url in exports.items():
        if "export=" in url:
            _get(client, url.replace("export=", "page=2&shown="))  # the page viewed before its export
        elapsed, size, lines = _get(client, url)
        yield (name, elapsed, lines / elapsed, 0.0, size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="20k responses only")
    parser.add_argument("--sizes", type=int, nargs="*", default=None)
    parser.add_argument("--redis", default=None, help="a Redis URL for the cache (default: configured)")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    options = parser.parse_args()
    sizes = options.sizes or ([20_000] if options.quick else [20_000, 200_000])
    name = _database_name()
    _admin(f'DROP DATABASE IF EXISTS "{name}"')
    _admin(f'CREATE DATABASE "{name}"')
    try:
        _django(options.redis)
        from django.conf import settings
        from django.contrib.auth.models import Group
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        from accounts.models import User
        from accounts.roles import Role
        from querybank.models import Category, Query

        maintainer = User.objects.create_user("bench-maintainer@example.org")
        maintainer.groups.add(Group.objects.get(name=Role.MAINTAINER.value))
        annotators = [
            User.objects.create_user(f"bench-annotator-{i}@example.org") for i in range(N_ANNOTATORS)
        ]
        categories = list(Category.objects.filter(taxonomy__slug="medharm"))
        queries = Query.objects.bulk_create(
            Query(
                external_id=f"bench-{i:04d}",
                text=f"Benchmark query shape {i}",
                category=categories[i % len(categories)],
                expected_behaviour=("refuse", "caution", "redirect", "answer")[i % 4],
                source="bench",
            )
            for i in range(N_QUERIES)
        )
        print(f"cache: {settings.CACHES['default']['BACKEND'] if hasattr(settings, 'CACHES') else 'default'}")
        print(
            f"{os.cpu_count()} CPUs (shared, load average {os.getloadavg()[0]:.1f}); times in seconds; "
            "'stats' = the statistics alone on a read snapshot"
        )
        over = []
        for size in sizes:
            start = time.perf_counter()
            campaign = build(size, maintainer, annotators, queries)
            print(
                f"\n{size:,} responses: built in {time.perf_counter() - start:.0f} s "
                f"(bulk_create, batches of {BATCH})"
            )
            print(f"  {'page':<26} {'first':>8} {'cached':>8} {'stats':>8} {'HTML':>10}")
            for name_, first, cached, stats_s, size_ in measure(campaign, maintainer):
                if name_.startswith("export"):
                    print(
                        f"  {name_:<26} {first:>8.2f} s {cached:>12,.0f} rows/s {size_ / 1e6:>8.1f} MB",
                        flush=True,
                    )
                    continue
                print(
                    f"  {name_:<26} {first:>8.3f} {cached:>8.3f} {stats_s:>8.3f} {size_ / 1024:>8.0f} kB",
                    flush=True,
                )
                if size_ > 1_000_000:
                    over.append(name_)
        print("\npages over 1 MB of HTML:", ", ".join(over) or "none")
    finally:
        if not options.keep:
            from django.db import connections

            connections.close_all()
            _admin(f'DROP DATABASE IF EXISTS "{name}"')


if __name__ == "__main__":
    main()
