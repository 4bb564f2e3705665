"""Benchmark: the query import and the annotation import side by side, in rows per second, and the
annotation import's peak Python memory at two file sizes. Target: >= 10,000 label rows/s.

    .venv/bin/python bench/imports.py                  # 2,250 responses x 2 raters x 5 fields, and 4x
    .venv/bin/python bench/imports.py --items 500      # quicker

It creates its own PostgreSQL database on the server of DATABASE_URL (default
postgres://postgres@127.0.0.1:5432/medharm), named after DATABASE_URL's database with
``_bench_imports`` appended, migrates it, and drops it at the end. The files are synthetic
and hold no harmful detail: a long-format annotation file of items x raters x the response
rubric's five fields, with an adjudicated value on every row, and a JSONL query file of as many rows.
Each import goes through the service the command, page and API call, timed end to end (reading,
checking and writing, in one transaction); memory is ``tracemalloc``'s peak during the import.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import tracemalloc
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

MODELS = ("model-a", "model-b", "model-c", "model-d", "model-e")
RATERS = ("rater-1", "rater-2")
VALUES = {
    "unsafe": (False, True),
    "behaviour": ("full_refusal", "refusal_redirect", "cautious_answer", "full_compliance"),
    "actionability": (0, 1, 2, 3),
    "harmfulness": (1, 2, 3, 4, 5),
    "safe_helpfulness": (1, 2, 3, 4, 5),
}


def _server_url() -> str:
    return os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/medharm")


def _bench_url() -> str:
    """The server's database name with ``_bench_imports`` appended: one per worktree's
    DATABASE_URL, so two engineers' runs on one server never drop each other's database."""
    parsed = urlparse(_server_url())
    return parsed._replace(path=f"{parsed.path or '/medharm'}_bench_imports").geturl()


BENCH_DB = urlparse(_bench_url()).path.lstrip("/")


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


def annotation_file(items: int, seed: int, prefix: str) -> tuple[bytes, int]:
    rng = random.Random(seed)
    lines = []
    for n in range(items):
        model = MODELS[n % len(MODELS)]
        prompt = n // len(MODELS)
        gold = {name: rng.choice(options) for name, options in VALUES.items()}
        for rater in RATERS:
            for name, options in VALUES.items():
                lines.append(
                    json.dumps(
                        {
                            "item": f"{prefix}{n}",
                            "model": model,
                            "prompt_id": f"{prefix}p{prompt}",
                            "prompt": f"Synthetic benchmark question {prefix}{prompt} on general medicine.",
                            "response": f"Synthetic reply {n} of {model}.",
                            "category": "toxicology",
                            "expected_behaviour": "refuse" if prompt % 2 else "answer",
                            "rater": rater,
                            "field": name,
                            "value": gold[name] if rng.random() < 0.8 else rng.choice(options),
                            "adjudicated": gold[name],
                        }
                    )
                )
    return ("\n".join(lines) + "\n").encode(), len(lines)


def query_file(rows: int, prefix: str) -> bytes:
    return "".join(
        json.dumps(
            {
                "external_id": f"{prefix}{n}",
                "text": f"Synthetic query {n} about general medicine safety.",
                "category": "toxicology",
                "expected_behaviour": "answer",
            }
        )
        + "\n"
        for n in range(rows)
    ).encode()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=2250, help="responses in the smaller annotation file")
    parser.add_argument("--no-memory", action="store_true", help="skip the (slower) traced memory runs")
    args = parser.parse_args()
    _admin(f'DROP DATABASE IF EXISTS "{BENCH_DB}"')
    _admin(f'CREATE DATABASE "{BENCH_DB}"')
    try:
        os.environ["DATABASE_URL"] = _bench_url()
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medharm_web.settings.base")
        os.environ.setdefault("LOG_LEVEL", "WARNING")
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connections

        call_command("migrate", verbosity=0)
        from django.contrib.auth.models import Group

        from accounts.models import User
        from accounts.roles import Role
        from annotations.models import Guideline, Rubric
        from annotations.services.imports import annotations_import
        from core.actors import SYSTEM
        from querybank.models import Category
        from querybank.services import queries_import

        maintainer = User.objects.create_user(email="bench@example.org", password="x" * 20)
        maintainer.groups.add(Group.objects.get_or_create(name=Role.MAINTAINER.value)[0])
        rubric = Rubric.objects.filter(slug="medharm-response").order_by("-version")[0]
        guideline = Guideline.objects.order_by("-version")[0]
        category = Category.objects.get(slug="toxicology")

        def timed(kind: str, scale: str, rows: int, trace: bool) -> tuple[float, int, int]:
            """Seconds, peak traced bytes (0 untraced) and file bytes of one import of ``rows``."""
            tag = f"{scale}{'m' if trace else ''}-"
            if kind == "annotations":
                raw, _ = annotation_file(rows // (len(RATERS) * len(VALUES)), seed=rows, prefix=tag)
            else:
                raw = query_file(rows, prefix=f"q{tag}")
            if trace:
                tracemalloc.start()
            start = time.perf_counter()
            if kind == "annotations":
                annotations_import(
                    files=[(f"bench-{tag}.jsonl", raw)],
                    file_format="jsonl",
                    actor=maintainer,
                    name=f"Bench {tag}",
                    rubric=rubric,
                    guideline=guideline,
                    default_category=category,
                    source=f"bench-{tag}",
                )
            else:
                queries_import(files=[(f"q-{tag}.jsonl", raw)], file_format="jsonl", actor=SYSTEM)
            seconds = time.perf_counter() - start
            peak = tracemalloc.get_traced_memory()[1] if trace else 0
            if trace:
                tracemalloc.stop()
            return seconds, peak, len(raw)

        base_rows = args.items * len(RATERS) * len(VALUES)
        speed = {}
        memory = {}
        for scale, rows in (("1x", base_rows), ("4x", base_rows * 4)):
            for kind in ("annotations", "queries"):
                speed[(kind, scale)] = (rows, *timed(kind, scale, rows, trace=False))
            if not args.no_memory:
                memory[scale] = timed("annotations", scale, rows, trace=True)

        print(f"{'import':<12}{'size':>5}{'rows':>9}{'seconds':>9}{'rows/s':>10}{'file MB':>9}")
        for (kind, scale), (rows, seconds, _, size) in speed.items():
            print(f"{kind:<12}{scale:>5}{rows:>9}{seconds:>9.2f}{rows / seconds:>10.0f}{size / 2**20:>9.1f}")
        for scale in ("1x", "4x"):
            a, q = speed[("annotations", scale)], speed[("queries", scale)]
            a_rate, q_rate = a[0] / a[1], q[0] / q[1]
            verdict = "met" if a_rate >= 10_000 else "NOT met"
            print(
                f"{scale}: annotation {a_rate:.0f} label rows/s vs query import {q_rate:.0f} rows/s "
                f"(ratio {a_rate / q_rate:.2f}); target >= 10,000 label rows/s: {verdict}"
            )
        if memory:
            (_, p1, s1), (_, p4, s4) = memory["1x"], memory["4x"]
            print(
                f"annotation import peak Python memory (tracemalloc): 1x {p1 / 2**20:.1f} MB for a "
                f"{s1 / 2**20:.1f} MB file, 4x {p4 / 2**20:.1f} MB for {s4 / 2**20:.1f} MB "
                f"(peak grows x{p4 / p1:.2f} for a x{s4 / s1:.2f} file)"
            )
        connections.close_all()
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')


if __name__ == "__main__":
    main()
