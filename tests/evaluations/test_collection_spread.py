"""One run over several collectors, in process: no lost write whatever is cancelled when, writes as
one statement that never hold up claims or lanes, fair claims across targets, per-collector
liveness on the database clock, a watchdog that dispatches only what is missing, shared endpoint
limits in Redis, and retried items that keep their history. Real HTTP to the mock model server,
real PostgreSQL and Redis; tests/evaluations/test_collection_faults.py does the same with real
worker processes."""

import asyncio
import threading
import time
import uuid
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
import redis
import time_machine
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.roles import Role
from core.actors import SYSTEM
from evaluations import services
from evaluations.collector import CollectorOptions, RunCollector, run_collect
from evaluations.models import (
    CollectionRun,
    Collector,
    CollectorState,
    ModelResponse,
    ResponseOutcome,
    RunStatus,
)
from evaluations.services.runs import (
    ResponseResult,
    collector_beat,
    collector_start,
    items_claim,
    items_finish_many,
    runs_dispatch_missing,
)
from mockmodel.app import MockServerConfig
from mockmodel.runner import MockServerThread
from providers import AdaptiveConcurrencyLimiter, OutcomeKind, RetryPolicy
from providers.shared_limits import RedisConcurrencyLimiter
from querybank.models import Query
from tests.factories import QueryFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def mock_server():
    with MockServerThread(MockServerConfig(latency_ms=5)) as server:
        yield server


def endpoint(server: MockServerThread, slug: str, **fields: object):
    defaults = {
        "slug": slug,
        "name": slug.title(),
        "base_url": server.openai_base_url,
        "model_name": f"mock-{slug}",
        "max_concurrency": 32,
        "timeout_seconds": 5,
        "price_input_per_million": Decimal("1"),
        "price_output_per_million": Decimal("2"),
    }
    return services.endpoint_create(actor=SYSTEM, **{**defaults, **fields})


def running_run(targets, *, queries=None, **kwargs) -> CollectionRun:
    run = services.run_create(
        actor=UserFactory(role=Role.MAINTAINER),
        name="spread run",
        queries=queries or Query.objects.all(),
        targets=targets,
        **kwargs,
    )
    CollectionRun.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING)
    run.refresh_from_db()
    return run


def states(run: CollectionRun) -> Counter[str]:
    return Counter(ModelResponse.objects.filter(run=run).values_list("state", flat=True))


class SlowDatabaseCollector(RunCollector):
    """A collector whose database threads are slow (every call waits first), which stops itself
    after ``stop_after`` results: the timing under which the old cleanup lost a queued batch."""

    def __init__(self, *args, db_delay_s: float, stop_after: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.db_delay_s = db_delay_s
        self.stop_after = stop_after
        self.recorded: list[int] = []

    async def _db(self, function, /, **kwargs):
        def slowed():
            time.sleep(self.db_delay_s)
            return function(**kwargs)

        return await asyncio.get_running_loop().run_in_executor(self.db, slowed)

    def _write_sync(self, pending):
        time.sleep(self.db_delay_s)
        return super()._write_sync(pending)

    def record(self, entry):
        self.recorded.append(entry[1].id)
        super().record(entry)
        if len(self.recorded) >= self.stop_after:
            self.stop = True  # as a pause or cancel seen by the heartbeat


def collect_with(collector: RunCollector) -> None:
    try:
        asyncio.run(collector.collect())
    finally:
        for pool in (collector.db, collector.db_write):
            pool.submit(lambda: connection.close()).result()  # the thread's own connection
            pool.shutdown(wait=True)


# --- 1. no lost write ----------------------------------------------------------------------------
def test_every_result_taken_is_written_or_handed_back_with_a_slow_database(mock_server) -> None:
    QueryFactory.create_batch(24)
    model = endpoint(mock_server, "slow-db")
    runs = 12
    for attempt in range(runs):
        run = running_run([model], concurrency=8)
        collector = SlowDatabaseCollector(
            run,
            # A write starts every 2 results, so one is always on its way when the stop comes.
            CollectorOptions(batch_size=8, limits_redis_url="", flush_every_items=2),
            db_delay_s=0.02 + 0.01 * (attempt % 4),
            stop_after=5 + attempt,
        )
        collect_with(collector)

        counts = states(run)
        finished = set(ModelResponse.objects.filter(run=run, state="finished").values_list("id", flat=True))
        assert counts["leased"] == 0, (attempt, counts)  # nothing stranded in a lease
        assert finished == set(collector.recorded), attempt  # every result recorded was written
        assert collector.written == len(finished)  # the counter is exact
        assert counts["pending"] == 24 - len(finished)  # the rest handed back


# --- 2. writes that keep up ------------------------------------------------------------------------
def test_a_flush_is_one_statement_that_adds_attempts_and_keeps_errors(mock_server) -> None:
    QueryFactory.create_batch(30)
    run = running_run([endpoint(mock_server, "one-statement")])
    first = items_claim(run_id=run.pk, limit=20)
    second = items_claim(run_id=run.pk, limit=10)
    stale = first.items[0]
    ModelResponse.objects.filter(pk=stale.id).update(lease_token=uuid.uuid4())  # lost its lease
    ModelResponse.objects.filter(pk=first.items[1].id).update(
        attempts=2, errors=[{"kind": "server_error", "body": "first round"}]
    )
    entries = [
        (
            claim.token,
            ResponseResult(
                id=item.id,
                outcome=ResponseOutcome.COLLECTED,
                text=f"reply {item.id}",
                attempts=1,
                errors=[{"kind": "rate_limited", "body": "again"}] if item.id == first.items[1].id else [],
                cost=Decimal("0.0000015"),
                raw_reply={"id": item.id},
                input_tokens=7,
            ),
        )
        for claim in (first, second)
        for item in claim.items
    ]

    with CaptureQueriesContext(connection) as queries:
        written = items_finish_many(entries=entries)

    updates = [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().upper().startswith("UPDATE")]
    assert len(updates) == 1  # 30 rows over two lease tokens: one statement
    assert "FROM jsonb_to_recordset(" in updates[0]
    assert written == 29  # the row whose lease moved on is not written
    assert ModelResponse.objects.get(pk=stale.id).state == "leased"
    kept = ModelResponse.objects.get(pk=first.items[1].id)
    assert kept.attempts == 3
    assert [e["body"] for e in kept.errors] == ["first round", "again"]
    one = ModelResponse.objects.get(pk=second.items[0].id)
    assert (one.state, one.text, one.raw_reply, one.input_tokens) == (
        "finished",
        f"reply {one.pk}",
        {"id": one.pk},
        7,
    )
    assert one.cost == Decimal("0.000002")  # rounded as the ORM rounds
    assert one.lease_token is None
    assert one.finished_at is not None


def test_a_reply_with_nul_characters_is_written_not_retried_forever(mock_server) -> None:
    QueryFactory.create_batch(2)
    run = running_run([endpoint(mock_server, "nul-reply")])
    claim = items_claim(run_id=run.pk, limit=2)
    odd, plain = claim.items
    entries = [
        (
            claim.token,
            ResponseResult(
                id=odd.id,
                outcome=ResponseOutcome.COLLECTED,
                text="before\x00after \\u0000 kept",
                raw_reply={"content": "x\x00y"},
                errors=[{"kind": "server_error", "body": "\x00"}],
            ),
        ),
        (claim.token, ResponseResult(id=plain.id, outcome=ResponseOutcome.COLLECTED, text="plain")),
    ]

    assert items_finish_many(entries=entries) == 2

    row = ModelResponse.objects.get(pk=odd.id)
    if connection.vendor == "postgresql":  # PostgreSQL keeps no NUL: the replacement character
        assert row.text == "before\ufffdafter \\u0000 kept"
        assert row.raw_reply == {"content": "x\ufffdy"}
        assert row.errors == [{"kind": "server_error", "body": "\ufffd"}]
    assert ModelResponse.objects.get(pk=plain.id).text == "plain"


def test_lanes_and_claims_go_on_while_a_write_is_slow(mock_server) -> None:
    QueryFactory.create_batch(60)
    run = running_run([endpoint(mock_server, "slow-write")], concurrency=8)
    timeline: dict[str, float] = {}

    class SlowWrites(RunCollector):
        def _write_sync(self, pending):
            time.sleep(1.5)
            timeline.setdefault("first write done", time.monotonic())
            return super()._write_sync(pending)

        def record(self, entry):
            timeline["last result"] = time.monotonic()
            super().record(entry)

    collector = SlowWrites(run, CollectorOptions(batch_size=8, limits_redis_url=""))
    collect_with(collector)

    # 60 items at 5 ms with 8 lanes take well under a second: they were all called, claimed
    # batch after batch, while the first write was still sleeping.
    assert timeline["last result"] < timeline["first write done"]
    assert mock_server.stats()["requests"] == 60
    assert states(run) == Counter({"finished": 60})
    assert collector.written == 60


# --- 3. liveness per collector ---------------------------------------------------------------------
def test_a_quiet_collectors_items_come_back_after_the_liveness_time(mock_server, settings) -> None:
    settings.COLLECTION_LIVENESS_SECONDS = 2
    QueryFactory.create_batch(6)
    run = running_run([endpoint(mock_server, "liveness")], lease_seconds=300)
    live, quiet = uuid.uuid4(), uuid.uuid4()
    collector_start(collector_id=live, run_id=run.pk)
    collector_start(collector_id=quiet, run_id=run.pk)
    live_claim = items_claim(run_id=run.pk, limit=3)
    quiet_claim = items_claim(run_id=run.pk, limit=3)
    assert items_claim(run_id=run.pk, limit=6).items == []

    # The host clock jumps an hour: leases run on the database clock, so nothing is stolen.
    with time_machine.travel(timezone.now() + timezone.timedelta(hours=1)):
        assert items_claim(run_id=run.pk, limit=6).items == []

    deadline = time.monotonic() + 3.5
    while time.monotonic() < deadline:  # only the live collector beats
        collector_beat(collector_id=live, run_id=run.pk, tokens=[live_claim.token], lease_seconds=2)
        time.sleep(0.25)
    again = items_claim(run_id=run.pk, limit=6)

    assert {i.id for i in again.items} == {i.id for i in quiet_claim.items}  # 300 s lease or not
    assert Collector.objects.get(pk=live).heartbeat_at > Collector.objects.get(pk=quiet).heartbeat_at


def test_the_watchdog_dispatches_only_what_is_missing_and_records_it(mock_server, settings) -> None:
    settings.COLLECTION_LIVENESS_SECONDS = 2
    QueryFactory.create_batch(4)
    run = running_run([endpoint(mock_server, "watchdog")], workers=3)
    Collector.objects.all().delete()
    sent: list[tuple[int, str]] = []

    from evaluations import tasks

    original = tasks.run_execute.delay
    tasks.run_execute.delay = lambda run_id, collector_id: sent.append((run_id, collector_id))
    try:
        first = runs_dispatch_missing()
        second = runs_dispatch_missing()  # a second beat right after
        assert [(r, len(ids)) for r, ids in first] == [(run.pk, 3)]
        assert second == []
        assert len(sent) == 3
        assert Collector.objects.filter(run=run, state=CollectorState.DISPATCHED).count() == 3

        # One starts and beats; two never start (their messages were lost) and pass the grace.
        beating = uuid.UUID(sent[0][1])
        collector_start(collector_id=beating, run_id=run.pk)
        settings.COLLECTION_DISPATCH_GRACE_SECONDS = 1
        time.sleep(1.3)
        collector_beat(collector_id=beating, run_id=run.pk, tokens=[], lease_seconds=2)
        third = runs_dispatch_missing()
        fourth = runs_dispatch_missing()
    finally:
        tasks.run_execute.delay = original

    assert [(r, len(ids)) for r, ids in third] == [(run.pk, 2)]  # 3 wanted, 1 live: 2
    assert fourth == []
    assert len(sent) == 5
    assert Collector.objects.filter(run=run, state=CollectorState.STOPPED).count() == 2


# --- 4. runs that spread, fairly -------------------------------------------------------------------
def test_claims_interleave_targets_and_pass_on_the_share_of_finished_ones(mock_server) -> None:
    QueryFactory.create_batch(10)
    a, b, c = (endpoint(mock_server, slug) for slug in ("fair-a", "fair-b", "fair-c"))
    run = running_run([a, b, c])
    target_of = dict(run.targets.values_list("pk", "endpoint__slug"))

    claim = items_claim(run_id=run.pk, limit=9)
    slugs = [target_of[item.target_id] for item in claim.items]
    assert Counter(slugs) == {"fair-a": 3, "fair-b": 3, "fair-c": 3}
    assert len(set(slugs[:3])) == 3  # interleaved, not target by target

    # fair-b and fair-c run out: their share of the next claim goes to fair-a.
    ModelResponse.objects.filter(run=run, state="pending").exclude(target__endpoint=a).update(
        state="finished", outcome="collected"
    )
    rest = items_claim(run_id=run.pk, limit=9)
    assert Counter(target_of[i.target_id] for i in rest.items) == {"fair-a": 7}  # b's and c's share


def test_a_claim_leases_exactly_what_it_returns_in_a_few_statements_whatever_the_targets(mock_server) -> None:
    QueryFactory.create_batch(5)
    run = running_run([endpoint(mock_server, f"count-{i}") for i in range(6)])
    stale = ModelResponse.objects.filter(run=run).order_by("-pk").first()
    ModelResponse.objects.filter(pk=stale.pk).update(
        state="leased", lease_token=uuid.uuid4(), lease_expires_at=timezone.now() - timedelta(seconds=5)
    )

    with CaptureQueriesContext(connection) as queries:
        claim = items_claim(run_id=run.pk, limit=8)

    assert len(claim.items) == 8
    leased = set(ModelResponse.objects.filter(run=run, lease_token=claim.token).values_list("pk", flat=True))
    assert leased == {item.id for item in claim.items}  # nothing leased that was not handed out
    assert sorted(Counter(item.target_id for item in claim.items).values()) == [1, 1, 1, 1, 2, 2]
    assert stale.pk in leased  # a dead collector's item comes before pending ones of its target
    texts = dict(Query.objects.values_list("pk", "text"))
    assert all(item.query_text == texts[item.query_id] for item in claim.items)
    if connection.vendor == "postgresql":
        # One statement picks, locks, leases and returns (the ORM took one query per target).
        assert len(queries) <= 6, [q["sql"][:80] for q in queries.captured_queries]


def test_two_collectors_share_one_run_and_write_every_item_once(mock_server) -> None:
    QueryFactory.create_batch(40)
    run = running_run(
        [endpoint(mock_server, "spread-a"), endpoint(mock_server, "spread-b")], samples=2, concurrency=8
    )
    written: list[int] = []

    def one_collector() -> None:
        try:
            options = CollectorOptions(batch_size=8, limits_redis_url="")
            written.append(run_collect(run_id=run.pk, options=options))
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=one_collector) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED
    assert sum(written) == 160
    assert min(written) > 0  # both collectors took part
    assert mock_server.stats()["requests"] == 160  # no item called twice
    assert states(run) == Counter({"finished": 160})
    assert Collector.objects.filter(run=run, state=CollectorState.STOPPED).count() == 2
    assert sorted(Collector.objects.filter(run=run).values_list("written", flat=True)) == sorted(written)


# --- 5. limits across processes --------------------------------------------------------------------
def test_redis_limiter_caps_calls_in_flight_across_two_processes_clients() -> None:
    key = f"medharm:test-limits:{uuid.uuid4().hex}"

    async def scenario() -> tuple[int, int]:
        import redis.asyncio as aioredis

        clients = [aioredis.Redis.from_url(settings.REDIS_URL) for _ in range(2)]
        limiters = [RedisConcurrencyLimiter(c, key, 3) for c in clients]  # as two collectors would
        running = peak = 0

        async def call(limiter: RedisConcurrencyLimiter) -> None:
            nonlocal running, peak
            token = await limiter.acquire()
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.01)
            running -= 1
            limiter.release(token, OutcomeKind.OK)

        await asyncio.gather(*(call(limiters[i % 2]) for i in range(40)))
        for limiter in limiters:
            await limiter.drain()
        taken = await clients[0].zcard(f"{key}:slots")
        for client in clients:
            await client.aclose()
        return peak, taken

    try:
        assert asyncio.run(scenario()) == (3, 0)
    finally:
        redis.Redis.from_url(settings.REDIS_URL).delete(f"{key}:slots", f"{key}:aimd", f"{key}:recent")


def test_sporadic_429s_cost_in_proportion_while_a_real_limit_cuts(tmp_path) -> None:
    import random

    async def scenario(rate: float, limiter_of) -> int:
        limiter = limiter_of()
        rng = random.Random(7)
        for _ in range(2000):
            token = await limiter.acquire()
            limiter.release(token, OutcomeKind.RATE_LIMITED if rng.random() < rate else OutcomeKind.OK)
            if hasattr(limiter, "drain"):
                await limiter.drain()
        return limiter.limit

    local = lambda: AdaptiveConcurrencyLimiter(32)  # noqa: E731
    assert asyncio.run(scenario(0.10, local)) >= 24  # a steady 10% of 429s: no collapse
    assert asyncio.run(scenario(0.60, local)) <= 2  # mostly 429s: cut to the floor

    key = f"medharm:test-aimd:{uuid.uuid4().hex}"

    async def shared_scenario(rate: float) -> int:
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(settings.REDIS_URL)
        try:
            return await scenario(rate, lambda: RedisConcurrencyLimiter(client, key + str(rate), 32))
        finally:
            await client.aclose()

    try:
        assert asyncio.run(shared_scenario(0.10)) >= 24
        assert asyncio.run(shared_scenario(0.60)) <= 2
    finally:
        client = redis.Redis.from_url(settings.REDIS_URL)
        for rate in ("0.1", "0.6"):
            client.delete(*(f"{key}{rate}:{part}" for part in ("slots", "aimd", "recent")))


# --- 7. history kept -------------------------------------------------------------------------------
def test_retry_failed_appends_attempts_and_errors_and_attempts_equal_calls(maintainer_run_env) -> None:
    server, run, failing = maintainer_run_env
    row = ModelResponse.objects.get(run=run, query=failing)
    assert (row.outcome, row.attempts, len(row.errors)) == ("error", 2, 2)
    first_bodies = [e["http_status"] for e in row.errors]

    services.run_retry_failed(run=run, actor=SYSTEM)  # dispatched in-process (eager) on commit

    row.refresh_from_db()
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED
    assert (row.outcome, row.attempts) == ("collected", 3)
    assert [e["http_status"] for e in row.errors] == first_bodies  # the first round's errors kept
    calls = server.stats()["requests"]
    assert sum(ModelResponse.objects.filter(run=run).values_list("attempts", flat=True)) == calls


@pytest.fixture
def maintainer_run_env():
    QueryFactory.create_batch(5)
    failing = Query.objects.order_by("pk").first()
    config = MockServerConfig(latency_ms=2, script={failing.text: ["500", "500", "ok"]})
    with MockServerThread(config) as server:
        run = running_run([endpoint(server, "history")], max_attempts=2)
        run_collect(
            run_id=run.pk,
            options=CollectorOptions(
                retry_policy=RetryPolicy(max_attempts=2, base_delay=0.01), limits_redis_url=""
            ),
        )
        run.refresh_from_db()
        assert run.status == RunStatus.COMPLETED
        yield server, run, failing


# --- 8. progress: requests in flight, leased items, throughput since the last resume -----------------
def test_progress_separates_requests_in_flight_from_leased_items_and_ignores_paused_time(mock_server) -> None:
    from evaluations.selectors import run_progress

    QueryFactory.create_batch(10)
    run = running_run([endpoint(mock_server, "progress")])
    collector = uuid.uuid4()
    collector_start(collector_id=collector, run_id=run.pk)
    claim = items_claim(run_id=run.pk, limit=6)
    collector_beat(
        collector_id=collector, run_id=run.pk, tokens=[claim.token], lease_seconds=30, requests_in_flight=2
    )
    now = timezone.now()
    # 2 items finished an hour ago (before a pause), 2 in the last 10 s since the resume.
    done = [(claim.token, ResponseResult(id=i.id, outcome="collected")) for i in claim.items[:4]]
    items_finish_many(entries=done)
    early, late = [i.id for i in claim.items[:2]], [i.id for i in claim.items[2:4]]
    ModelResponse.objects.filter(pk__in=early).update(finished_at=now - timezone.timedelta(hours=1))
    ModelResponse.objects.filter(pk__in=late).update(finished_at=now - timezone.timedelta(seconds=5))
    CollectionRun.objects.filter(pk=run.pk).update(
        started_at=now - timezone.timedelta(hours=2), resumed_at=now - timezone.timedelta(seconds=10)
    )
    run.refresh_from_db()

    progress = run_progress(run=run, now=now)

    assert (progress.finished, progress.leased, progress.pending) == (4, 2, 4)
    assert (progress.requests_in_flight, progress.collectors) == (2, 1)
    assert progress.throughput_per_second == pytest.approx(2 / 10)  # not 4 over two hours
    assert progress.eta_seconds == pytest.approx(6 / 0.2)


def test_a_busy_process_reuses_its_slots_a_few_times_then_shares_them() -> None:
    key = f"medharm:test-reuse:{uuid.uuid4().hex}"

    async def scenario() -> tuple[int, int, float, float]:
        import redis.asyncio as aioredis

        clients = [aioredis.Redis.from_url(settings.REDIS_URL) for _ in range(2)]
        first, late = (RedisConcurrencyLimiter(c, key, 2, reuse=4) for c in clients)
        running = peak = 0
        ends: dict[str, list[float]] = {"first": [], "late": []}

        async def call(limiter: RedisConcurrencyLimiter, name: str) -> None:
            nonlocal running, peak
            token = await limiter.acquire()
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.01)
            running -= 1
            ends[name].append(time.monotonic())
            limiter.release(token, OutcomeKind.OK)

        busy = [asyncio.ensure_future(call(first, "first")) for _ in range(40)]
        await asyncio.sleep(0.02)  # the second process asks once the first holds every slot
        await asyncio.gather(*busy, *(call(late, "late") for _ in range(10)))
        for limiter in (first, late):
            await limiter.drain()
        for client in clients:
            await client.aclose()
        return peak, first.slots_taken, min(ends["late"]), max(ends["first"])

    try:
        peak, taken, late_first_done, first_all_done = asyncio.run(scenario())
    finally:
        redis.Redis.from_url(settings.REDIS_URL).delete(
            *(f"{key}:{part}" for part in ("slots", "aimd", "recent", "waiting", "seen"))
        )
    assert peak == 2  # the cap holds across both
    assert taken <= 20  # 40 calls on far fewer round trips: slots handed over (at most 4 uses each)
    assert late_first_done < first_all_done  # the latecomer got a slot long before the busy one ended


# --- 8. no broker, no beat: a run whose collector died is picked up again by the web process ----------
def test_without_a_broker_a_watched_run_whose_collector_died_is_picked_up_again(
    mock_server, settings, client
) -> None:
    from django.urls import reverse

    from evaluations.services import runs as run_services

    settings.COLLECTION_DISPATCH_IN_THREAD = True  # bin/serve: no REDIS_URL, no beat
    settings.COLLECTION_LIVENESS_SECONDS = 1
    settings.COLLECTION_WATCHDOG_SECONDS = 0.3
    QueryFactory.create_batch(12)
    run = running_run([endpoint(mock_server, "embedded")])
    # Its collector thread died with the previous server process, holding 4 items.
    dead = uuid.uuid4()
    collector_start(collector_id=dead, run_id=run.pk)
    held = items_claim(run_id=run.pk, limit=4)
    five_minutes_ago = timezone.now() - timezone.timedelta(minutes=5)
    Collector.objects.filter(pk=dead).update(heartbeat_at=five_minutes_ago)
    ModelResponse.objects.filter(lease_token=held.token).update(lease_expires_at=five_minutes_ago)
    maintainer = UserFactory(role=Role.MAINTAINER)
    client.force_login(maintainer)

    page = client.get(reverse("evaluations:run_detail", args=[run.pk]))  # someone watches the run
    assert page.status_code == 200
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and CollectionRun.objects.get(pk=run.pk).status == RunStatus.RUNNING:
        time.sleep(0.2)
    run_services.collection_threads_wait(timeout=10)
    supervisor = run_services.collection_watchdog.thread
    assert supervisor is not None
    supervisor.join(5)  # it ends by itself once no run is running

    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED
    assert not supervisor.is_alive()
    assert states(run) == Counter({"finished": 12})
    assert Collector.objects.get(pk=dead).state == CollectorState.STOPPED
    assert Collector.objects.filter(run=run).exclude(pk=dead).count() == 1  # one thread, not one per tick
