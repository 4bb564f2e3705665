"""Benchmark: cutting a release of 1M label rows. Target: the build streams at >= 100,000 rows/s
with a peak RSS under 200 MB, and a granted download costs < 5 ms of Django time per request
before the web server (X-Accel-Redirect) takes over.

    .venv/bin/python bench/release.py                    # 1,000,000 labels (100,000 items, k = 10)
    .venv/bin/python bench/release.py --labels 200000    # quicker
    .venv/bin/python bench/release.py --baseline DIR     # also DIR's code (a checkout of an older
                                                         # commit), on the same data, side by side

It creates its own PostgreSQL database (``<database>_bench_release`` on the server of DATABASE_URL,
default postgres://postgres@127.0.0.1:5432), migrates it, COPYs in a closed query campaign with
its labels, and drops the database at the end. The build runs in a child process (the one a Celery
worker would be) so that its peak RSS is its own, not the data generator's; it writes the whole
bundle (queries, items and labels to Parquet, JSONL and CSV, manifests, Croissant) to a scratch
media directory. The download figure is the median wall time of the gated view, through the
Django test client, with the nginx backend (the response carries only the X-Accel-Redirect header).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
# A child measuring a baseline checkout imports that checkout's code (this script drives it).
sys.path.insert(0, os.environ.get("MEDHARM_BENCH_ROOT", str(ROOT)))

# Named after the database of DATABASE_URL, so that two people benchmarking on one server do not
# drop each other's database.
# (the child process, whose DATABASE_URL is already the benchmark's, inherits the name).
BENCH_DB = os.environ.setdefault(
    "MEDHARM_BENCH_DB",
    (urlparse(os.environ.get("DATABASE_URL", "")).path.strip("/") or "medharm") + "_bench_release",
)
# Arrow's allocator as the caller set it (or not): the driver imports this checkout's
# ``medharm_web``, which chooses one for its own process; each child chooses for itself, so that a
# baseline checkout runs with its own choice.
ARROW_POOL = os.environ.get("ARROW_DEFAULT_MEMORY_POOL")
OVERLAP = 10
VALUES = '{"category": "toxicology", "expected_behaviour": "refuse", "severity": "high", "realism": 4}'


def _server_url() -> str:
    return os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/medharm")


def _bench_url() -> str:
    return urlparse(_server_url())._replace(path=f"/{BENCH_DB}").geturl()


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


def _django(media: str) -> None:
    os.environ["DATABASE_URL"] = _bench_url()
    os.environ["DJANGO_MEDIA_ROOT"] = media
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medharm_web.settings.base")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()


def _copy(table: str, columns: list[str], rows: Any) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg's own cursor: COPY streams rows without building them all
        with raw.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


def seed(labels: int) -> int:
    """A closed query campaign with ``labels`` labels (k = 10); returns the cut release's id."""
    from django.contrib.auth.models import Group
    from django.db import connection
    from django.utils import timezone

    from accounts.models import User
    from accounts.roles import Role
    from annotations.models import Campaign, Guideline, Rubric
    from querybank.models import Category
    from releases.models import Release
    from releases.models.releases import DATASHEET_SECTIONS

    items = labels // OVERLAP
    maintainer = User.objects.create_user("bench-maintainer@example.org")
    maintainer.groups.add(Group.objects.get(name=Role.MAINTAINER.value))
    annotators = [User.objects.create_user(f"bench-annotator-{i}@example.org") for i in range(OVERLAP)]
    rubric = Rubric.objects.filter(target="query").order_by("-version").first()
    guideline = Guideline.objects.order_by("-version").first()
    category = Category.objects.get(slug="toxicology")
    campaign = Campaign.objects.create(
        name="Benchmark release campaign",
        target="query",
        status="closed",
        rubric=rubric,
        guideline=guideline,
        overlap=OVERLAP,
        seed="bench",
        created_by=maintainer,
        closed_at=timezone.now(),
    )
    now = timezone.now()
    _copy(
        "querybank_query",
        [
            "external_id",
            "text",
            "category_id",
            "expected_behaviour",
            "severity",
            "status",
            "source",
            "source_file",
            "notes",
            "metadata",
            "created_at",
            "updated_at",
        ],
        (
            (
                f"bench-{i}",
                f"Benchmark query shape number {i}, asking for general safety advice.",
                category.pk,
                "refuse",
                "high",
                "active",
                "bench",
                "",
                "",
                "{}",
                now,
                now,
            )
            for i in range(items)
        ),
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(id) FROM querybank_query WHERE source = 'bench'")
        first_query = cursor.fetchone()[0]
    _copy(
        "annotations_campaignitem",
        [
            "campaign_id",
            "query_id",
            "stratum",
            "sort_key",
            "required_labels",
            "label_count",
            "agreement",
            "disputed",
            "gold_source",
        ],
        ((campaign.pk, first_query + i, "c", i, OVERLAP, OVERLAP, 1.0, False, "") for i in range(items)),
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(id) FROM annotations_campaignitem WHERE campaign_id = %s", [campaign.pk])
        first_item = cursor.fetchone()[0]
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
                first_item + i // OVERLAP,
                campaign.pk,
                annotators[i % OVERLAP].pk,
                "",
                rubric.pk,
                guideline.pk,
                guideline.content_hash,
                VALUES,
                1,
                now,
                now,
            )
            for i in range(items * OVERLAP)
        ),
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    release = Release.objects.create(
        slug="bench",
        version=1,
        title="Benchmark release",
        changelog="Benchmark.",
        datasheet={key: "Benchmark." for key, _ in DATASHEET_SECTIONS},
        created_by=maintainer,
    )
    release.campaigns.set([campaign])
    return release.pk


def release_copy(release_id: int, slug: str) -> int:
    """A second release of the same campaigns (for the baseline's build)."""
    from releases.models import Release

    original = Release.objects.get(pk=release_id)
    copy = Release.objects.create(
        slug=slug,
        version=1,
        title=original.title,
        changelog=original.changelog,
        datasheet=original.datasheet,
        created_by=original.created_by,
    )
    copy.campaigns.set(original.campaigns.all())
    return copy.pk


def build(release_id: int) -> None:
    """Child process: build the bundle, print seconds, rows and peak RSS as JSON."""
    from releases.models import Release
    from releases.services import release_build

    # What the process holds before it reads a row: Django with every app (the judging app brings
    # scipy), pyarrow; the build's own memory is the peak minus this.
    with open("/proc/self/statm") as statm:
        before_mb = int(statm.read().split()[1]) * resource.getpagesize() / 2**20
    start = time.perf_counter()
    release = release_build(release_id=release_id)
    seconds = time.perf_counter() - start
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    labels = Release.objects.get(pk=release_id).files.get(
        name="restricted/parquet/labels/labels-00000.parquet"
    )
    print(
        json.dumps(
            {
                "seconds": seconds,
                "rows": release.rows_total,
                "label_rows": labels.rows,
                "peak_rss_mb": peak_kib / 1024,
                "before_mb": before_mb,
                "files": release.files.count(),
                "status": release.status,
            }
        )
    )


def download_ms(release_id: int, requests: int = 200) -> tuple[float, int]:
    """Median Django time of a granted download with the nginx backend (X-Accel-Redirect), and
    the number of SQL queries one such request makes."""
    from datetime import timedelta

    from django.conf import settings
    from django.contrib.auth.models import Group
    from django.test import Client
    from django.test.utils import setup_test_environment
    from django.utils import timezone
    from django_sendfile import utils as sendfile_utils

    from access.models import AccessRequest, AgreementSignature, ResearcherProfile
    from access.selectors import agreement_current
    from accounts.models import User
    from accounts.roles import Role

    setup_test_environment()
    settings.ALLOWED_HOSTS = ["testserver"]
    settings.SENDFILE_BACKEND = "django_sendfile.backends.nginx"
    sendfile_utils._get_sendfile.cache_clear()
    user = User.objects.create_user(f"bench-researcher-{time.time_ns()}@example.org")
    user.groups.add(Group.objects.get(name=Role.RESEARCHER.value))
    ResearcherProfile.objects.create(
        user=user,
        full_name="Bench",
        institution="Bench",
        position="Bench",
        orcid="0000-0002-1825-0097",
        institutional_page="https://example.org",
        reference_name="R",
        reference_email="r@example.org",
        research_area="Bench",
        status="credentialed",
    )
    agreement = agreement_current()
    now = timezone.now()
    signature = AgreementSignature.objects.create(
        agreement=agreement,
        signer=user,
        version=agreement.version,
        content_hash=agreement.content_hash,
        signed_at=now,
    )
    AccessRequest.objects.create(
        release_id=release_id,
        researcher=user,
        purpose="Benchmark.",
        signature=signature,
        status="approved",
        created_at=now,
        review_deadline=now,
        decided_at=now,
        expires_at=now + timedelta(days=1),
    )
    client = Client()
    client.force_login(user)
    url = f"/releases/{release_id}/files/restricted/parquet/labels/labels-00000.parquet"
    times = []
    for _ in range(requests + 20):
        start = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - start) * 1000)
        if response.status_code != 200 or not response.has_header("X-Accel-Redirect"):
            raise RuntimeError(f"the granted download answered {response.status_code}")
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        client.get(url)
    return statistics.median(times[20:]), len(queries)


def _child(root: Path, arguments: list[str], media: str) -> dict[str, Any]:
    """Run this script (from ``root``'s checkout) in a child process; its last line is JSON."""
    env = {**os.environ, "MEDHARM_BENCH_ROOT": str(root)}
    env.pop("ARROW_DEFAULT_MEMORY_POOL", None)
    if ARROW_POOL is not None:
        env["ARROW_DEFAULT_MEMORY_POOL"] = ARROW_POOL
    child = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), *arguments, "--media", media],
        check=True,
        capture_output=True,
        text=True,
        cwd=root,
        env=env,
    )
    return dict(json.loads(child.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--labels", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    parser.add_argument("--baseline", help="a checkout of older code to measure beside this one")
    parser.add_argument("--build", type=int, help=argparse.SUPPRESS)  # the child processes
    parser.add_argument("--download", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--media", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        _django(args.media)
        build(args.build)
        return
    if args.download:
        _django(args.media)
        median, queries = download_ms(args.download)
        print(json.dumps({"median_ms": median, "queries": queries}))
        return

    _admin(f"DROP DATABASE IF EXISTS {BENCH_DB}")
    _admin(f"CREATE DATABASE {BENCH_DB}")
    media = tempfile.mkdtemp(prefix="medharm-bench-media-")
    try:
        _django(media)
        from django.core.management import call_command
        from django.db import connections

        call_command("migrate", verbosity=0)
        start = time.perf_counter()
        release_id = seed(args.labels)
        print(f"seeded {args.labels:,} labels in {time.perf_counter() - start:.1f} s", flush=True)
        runs = [("current", ROOT, release_id)]
        if args.baseline:
            runs.insert(
                0, ("baseline", Path(args.baseline).resolve(), release_copy(release_id, "bench-baseline"))
            )
        connections.close_all()
        for label, root, pk in runs:
            result = _child(root, ["--build", str(pk)], media)
            rate = result["rows"] / result["seconds"]
            label_rate = result["label_rows"] / result["seconds"]
            print(
                f"[{label}] build: {result['rows']:,} rows ({result['label_rows']:,} labels) into "
                f"{result['files']} files in {result['seconds']:.1f} s = {rate:,.0f} rows/s (labels alone "
                f"{label_rate:,.0f}/s; target >= 100,000); peak RSS {result['peak_rss_mb']:.0f} MB "
                f"(target < 200 MB), of which {result.get('before_mb', 0):.0f} MB before the first row",
                flush=True,
            )
        for label, root, pk in runs:
            result = _child(root, ["--download", str(pk)], media)
            print(
                f"[{label}] gated download, Django time per request (median): {result['median_ms']:.2f} ms "
                f"(target < 5 ms), {result['queries']} SQL queries per request",
                flush=True,
            )
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            _admin(f"DROP DATABASE IF EXISTS {BENCH_DB}")
        import shutil

        shutil.rmtree(media, ignore_errors=True)


if __name__ == "__main__":
    main()
