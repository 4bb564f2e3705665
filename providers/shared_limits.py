"""Endpoint limits shared by every collector process through Redis: concurrency with the same
adaptive (AIMD) back-off as ``limits.AdaptiveConcurrencyLimiter``, and requests/tokens-per-minute
buckets. The provider sees the configured limit whatever the number of workers.

- Concurrency: a sorted set of slots per endpoint, each slot scored with its expiry (Redis clock,
  ``slot_ttl_s``, 10 s), renewed every few seconds by the process holding it, so the slots of a
  killed process free themselves within that time while a long call keeps its slot. The current
  limit, its epoch and the recent answers live in a hash and a list beside it; acquire and release
  are Lua scripts, atomic across processes.
- Processes that wait for a slot queue in Redis too (first come, first served: a freed slot goes
  to the process that has waited longest, which then goes to the back if it wants more), so a
  collector that polls a little later than another is not starved by it.
- Within a process, waiters queue on an ``asyncio.Lock`` (first come, first served) and only the
  one at the head polls Redis, woken at once by a local release, so polling stays one small call
  every few milliseconds per endpoint and process. A call that ends well keeps its slot for the
  process's next call (one waiting now, or one asking within ``keep_s``, 20 ms), up to ``reuse``
  (8) calls, then gives it back to Redis with the successes it carried: a busy process makes
  about one Redis round trip per eight calls instead of two per call, and still returns every slot
  to the shared pool often enough that a collector joining later gets its share. While the
  endpoint's pool is less than half taken (as the last acquire saw it), a kept slot waits up to
  ``keep_idle_s`` (250 ms) instead: a run over many endpoints calls each one only every few tens of
  milliseconds, so a 20 ms wait gave nearly every slot back unused (profiled: the limiter's
  Redis calls were a fifth of the collector's loop), and a pool with that much room has no
  waiter for the slot to keep from.
- Rates: a token bucket in a hash (Redis clock), ten seconds' worth of capacity, as in process.
- If Redis does not answer, the call goes through the process's own limiter of the same
  maximum (logged once): a Redis outage slows nothing, at the cost of the cap holding per process
  until Redis is back.

No Django import: the collector passes a URL.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import logging
import uuid
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from providers.limits import AdaptiveConcurrencyLimiter, RateLimiter
from providers.types import RECORDED_KINDS, EndpointConfig, OutcomeKind

logger = logging.getLogger(__name__)

STATE_TTL_MS = 24 * 3600 * 1000

_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local me = ARGV[4]
-- waiting processes not seen polling for a second (died, or stopped waiting) leave the queue
local stale = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now - 1000)
for _, w in ipairs(stale) do
  redis.call('ZREM', KEYS[3], w)
  redis.call('ZREM', KEYS[4], w)
end
local max = tonumber(ARGV[1])
local limit = tonumber(redis.call('HGET', KEYS[2], 'limit') or max)
if limit > max then limit = max end
local epoch = tonumber(redis.call('HGET', KEYS[2], 'epoch') or '0')
local taken = redis.call('ZCARD', KEYS[1])
if taken < limit then
  local first = redis.call('ZRANGE', KEYS[3], 0, 0)[1]
  if first == nil or first == me then
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
    redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
    redis.call('ZREM', KEYS[3], me)
    redis.call('ZREM', KEYS[4], me)
    return {1, epoch, limit, taken + 1}
  end
end
-- not served: queue behind the processes already waiting (first come, first served)
redis.call('ZADD', KEYS[3], 'NX', now, me)
redis.call('ZADD', KEYS[4], now, me)
redis.call('PEXPIRE', KEYS[3], 60000)
redis.call('PEXPIRE', KEYS[4], 60000)
return {0, epoch, limit, taken}
"""

_RELEASE = """
redis.call('ZREM', KEYS[1], ARGV[1])
local max = tonumber(ARGV[4])
local min = tonumber(ARGV[5])
local limit = tonumber(redis.call('HGET', KEYS[2], 'limit') or max)
if limit > max then limit = max end
local epoch = tonumber(redis.call('HGET', KEYS[2], 'epoch') or '0')
local successes = tonumber(redis.call('HGET', KEYS[2], 'successes') or '0')
local cut = 0
if ARGV[3] == '429' then
  if tonumber(ARGV[2]) == epoch then
    redis.call('LPUSH', KEYS[3], '1')
    redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[8]) - 1)
    local recent = redis.call('LRANGE', KEYS[3], 0, -1)
    local bad = 0
    for _, v in ipairs(recent) do if v == '1' then bad = bad + 1 end end
    if bad / #recent > tonumber(ARGV[7]) then
      limit = math.max(min, math.floor(limit * tonumber(ARGV[6])))
      epoch = epoch + 1
      successes = 0
      cut = 1
    end
  end
end
-- successes: this call's (if ok) and those of calls that reused the slot before it (ARGV[10])
local ok = tonumber(ARGV[10] or '0')
if ARGV[3] == 'ok' then ok = ok + 1 end
for _ = 1, math.min(ok, tonumber(ARGV[8])) do redis.call('LPUSH', KEYS[3], '0') end
redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[8]) - 1)
successes = successes + ok
while successes >= limit and limit < max do
  successes = successes - limit
  limit = limit + 1
end
if limit >= max then successes = 0 end
redis.call('HSET', KEYS[2], 'limit', limit, 'epoch', epoch, 'successes', successes)
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[9]))
redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[9]))
return {limit, cut}
"""

_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[i])
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]))
return 1
"""

# Token bucket: KEYS[1] hash {tokens, at}; ARGV: per_minute, capacity, amount, mode
# mode 'take': take amount if available (or bucket full), else return the wait in ms
# mode 'adjust': add amount (negative takes) without waiting
_BUCKET = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate = tonumber(ARGV[1]) / 60000.0
local capacity = tonumber(ARGV[2])
local amount = tonumber(ARGV[3])
local tokens = tonumber(redis.call('HGET', KEYS[1], 'tokens') or capacity)
local at = tonumber(redis.call('HGET', KEYS[1], 'at') or now)
tokens = math.min(capacity, tokens + (now - at) * rate)
local wait = 0
if ARGV[4] == 'take' then
  local needed = math.min(amount, capacity)
  if tokens >= needed then
    tokens = tokens - amount
  else
    wait = math.ceil((needed - tokens) / rate)
  end
else
  tokens = math.min(capacity, tokens + amount)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], 3600000)
return wait
"""


def endpoint_key(endpoint: EndpointConfig) -> str:
    """One key per provider endpoint (name, URL and model), whichever run or collector calls it."""
    digest = hashlib.sha256(f"{endpoint.base_url}|{endpoint.model}".encode()).hexdigest()[:12]
    return f"medharm:limits:{endpoint.name or 'endpoint'}:{digest}"


@dataclass(frozen=True)
class SlotToken:
    member: str
    epoch: int
    shared: bool  # False: taken from the local fallback limiter
    uses: int = 1  # calls made on this slot since it was taken from Redis
    carried: int = 0  # successes of the earlier calls on it, not yet reported to Redis


class RedisConcurrencyLimiter:
    """Same interface as ``AdaptiveConcurrencyLimiter`` (acquire / release / limit / in_flight /
    peak_in_flight / decreases), with the slots and the adaptive limit held in Redis."""

    def __init__(
        self,
        client: aioredis.Redis,
        key: str,
        max_concurrency: int,
        *,
        min_concurrency: int = 1,
        slot_ttl_s: float = 10.0,
        decrease_factor: float = 0.5,
        tolerance: float = 0.25,
        history: int = 50,
        poll_s: tuple[float, float] = (0.002, 0.02),
        reuse: int = 8,
        keep_s: float = 0.02,
        keep_idle_s: float = 0.25,
    ) -> None:
        self.client = client
        self.keys = [f"{key}:slots", f"{key}:aimd", f"{key}:recent"]
        self.queue_keys = [f"{key}:waiting", f"{key}:seen"]
        self.process_id = uuid.uuid4().hex  # this limiter's place in the queue of processes
        self.max_concurrency = max_concurrency
        self.min_concurrency = min_concurrency
        self.limit = max_concurrency
        self.slot_ttl_ms = int(slot_ttl_s * 1000)
        self.decrease_factor = decrease_factor
        self.tolerance = tolerance
        self.history = history
        self.poll_s = poll_s
        self.reuse = reuse
        self.keep_s = keep_s
        self.keep_idle_s = keep_idle_s
        self.last_taken = max_concurrency  # slots taken in all, as the last acquire saw it
        self._handed: collections.deque[SlotToken] = collections.deque()
        self.in_flight = 0  # this process's calls
        self.peak_in_flight = 0
        self.peak_shared = 0  # all processes' calls, as seen at acquire
        self.decreases = 0
        self.slots_taken = 0  # slots taken from Redis (a handed-over slot is not taken again)
        self.fallback = AdaptiveConcurrencyLimiter(max_concurrency, min_concurrency=min_concurrency)
        self._queue = asyncio.Lock()
        self._released = asyncio.Event()
        self._pending: set[asyncio.Task[Any]] = set()
        self._acquire = client.register_script(_ACQUIRE)
        self._release = client.register_script(_RELEASE)
        self._renew = client.register_script(_RENEW)
        self._held: set[str] = set()
        self._renewer: asyncio.Task[None] | None = None
        self._warned = False

    async def _renew_forever(self) -> None:
        """Keep the slots of calls still running alive (a third of their lifetime ahead)."""
        while True:
            await asyncio.sleep(self.slot_ttl_ms / 3000)
            if self._held:
                try:
                    await self._renew(keys=self.keys[:1], args=[self.slot_ttl_ms, *self._held])
                except (RedisError, OSError) as error:
                    self._redis_failed(error)

    def _redis_failed(self, error: Exception) -> None:
        if not self._warned:
            logger.warning("shared limits unavailable (%s): limiting in this process", type(error).__name__)
            self._warned = True

    async def acquire(self) -> SlotToken:
        member = uuid.uuid4().hex
        async with self._queue:
            delay = self.poll_s[0]
            while True:
                if self._handed:  # a slot passed on by a call of ours that just ended
                    token = self._handed.popleft()
                    self._take()
                    return token
                try:
                    got, epoch, limit, taken = await self._acquire(
                        keys=[*self.keys[:2], *self.queue_keys],
                        args=[self.max_concurrency, member, self.slot_ttl_ms, self.process_id],
                    )
                except (RedisError, OSError) as error:
                    self._redis_failed(error)
                    epoch = await self.fallback.acquire()
                    self._take()
                    return SlotToken(member=member, epoch=epoch, shared=False)
                self.limit = int(limit)
                self.last_taken = int(taken)
                if got:
                    self.slots_taken += 1
                    self._warned = False
                    self.peak_shared = max(self.peak_shared, int(taken))
                    self._take()
                    self._held.add(member)
                    if self._renewer is None:
                        self._renewer = asyncio.ensure_future(self._renew_forever())
                    return SlotToken(member=member, epoch=int(epoch), shared=True)
                self._released.clear()
                if self._handed:
                    continue
                try:
                    await asyncio.wait_for(self._released.wait(), delay)
                    delay = self.poll_s[0]
                except TimeoutError:
                    delay = min(delay * 2, self.poll_s[1])

    def _take(self) -> None:
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    def release(self, token: SlotToken, kind: OutcomeKind | None) -> None:
        """Free the slot (the Redis call runs as a task of its own, so release never blocks)."""
        self.in_flight -= 1
        if not token.shared:
            self.fallback.release(token.epoch, kind)
            return
        ok = kind in RECORDED_KINDS
        if ok and token.uses < self.reuse and self.in_flight + len(self._handed) < self.limit:
            # Kept for the next call of ours (a waiter now, or one within ``keep_s``); its success
            # is reported with the slot when the slot goes back.
            handed = SlotToken(token.member, token.epoch, True, token.uses + 1, token.carried + 1)
            self._handed.append(handed)
            self._released.set()
            if not self._queue.locked():
                roomy = 2 * self.last_taken < self.limit
                keep = self.keep_idle_s if roomy else self.keep_s
                asyncio.get_running_loop().call_later(keep, self._give_back, handed)
            return
        self._held.discard(token.member)
        outcome = "429" if kind == OutcomeKind.RATE_LIMITED else "ok" if ok else "other"
        task = asyncio.ensure_future(self._release_shared(token, outcome))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def _give_back(self, token: SlotToken) -> None:
        """A kept slot nobody took within ``keep_s`` goes back to the shared pool."""
        try:
            self._handed.remove(token)
        except ValueError:
            return  # taken meanwhile
        self._held.discard(token.member)
        task = asyncio.ensure_future(self._release_shared(token, "other"))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _release_shared(self, token: SlotToken, outcome: str) -> None:
        try:
            limit, cut = await self._release(
                keys=self.keys,
                args=[
                    token.member,
                    token.epoch,
                    outcome,
                    self.max_concurrency,
                    self.min_concurrency,
                    self.decrease_factor,
                    self.tolerance,
                    self.history,
                    STATE_TTL_MS,
                    token.carried,
                ],
            )
            self.limit = int(limit)
            self.decreases += int(cut)
        except (RedisError, OSError) as error:
            self._redis_failed(error)  # the slot expires by itself
        finally:
            self._released.set()

    async def drain(self) -> None:
        """Give back handed-over slots nobody took, wait for the releases on their way, and stop
        renewing slots."""
        while self._handed:
            token = self._handed.popleft()
            self._held.discard(token.member)
            await self._release_shared(token, "other")
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        if self._renewer is not None:
            self._renewer.cancel()
            await asyncio.gather(self._renewer, return_exceptions=True)
            self._renewer = None


class RedisRateLimiter:
    """Requests- and tokens-per-minute buckets in Redis (same interface as ``RateLimiter``)."""

    def __init__(
        self,
        client: aioredis.Redis,
        key: str,
        *,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
    ) -> None:
        self.client = client
        self.buckets: list[tuple[str, float, float, bool]] = []  # key, per minute, capacity, is tokens
        if requests_per_minute:
            self.buckets.append((f"{key}:rpm", requests_per_minute, max(1.0, requests_per_minute / 6), False))
        if tokens_per_minute:
            self.buckets.append((f"{key}:tpm", tokens_per_minute, max(1.0, tokens_per_minute / 6), True))
        self.fallback = RateLimiter(
            requests_per_minute=requests_per_minute, tokens_per_minute=tokens_per_minute
        )
        self._pending: set[asyncio.Task[Any]] = set()
        self._script = client.register_script(_BUCKET)
        self._queue = asyncio.Lock()
        self._local = False

    async def acquire(self, estimated_tokens: int) -> None:
        async with self._queue:
            try:
                for key, per_minute, capacity, is_tokens in self.buckets:
                    amount = estimated_tokens if is_tokens else 1
                    while True:
                        wait_ms = await self._script(keys=[key], args=[per_minute, capacity, amount, "take"])
                        if not int(wait_ms):
                            break
                        await asyncio.sleep(int(wait_ms) / 1000)
                self._local = False
            except (RedisError, OSError):
                logger.warning("shared rate limits unavailable: limiting in this process")
                self._local = True
                await self.fallback.acquire(estimated_tokens)

    def settle(self, estimated_tokens: int, actual_tokens: int) -> None:
        if self._local:
            self.fallback.settle(estimated_tokens, actual_tokens)
            return
        for key, per_minute, capacity, is_tokens in self.buckets:
            if is_tokens and actual_tokens != estimated_tokens:
                task = asyncio.ensure_future(
                    self._adjust(key, per_minute, capacity, estimated_tokens - actual_tokens)
                )
                self._pending.add(task)
                task.add_done_callback(self._pending.discard)

    async def _adjust(self, key: str, per_minute: float, capacity: float, amount: int) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self._script(keys=[key], args=[per_minute, capacity, amount, "adjust"])


class SharedLimits:
    """One Redis client per collector; ``for_endpoint`` gives ``EndpointCaller``'s limiter keywords."""

    def __init__(self, client: aioredis.Redis, *, slot_ttl_s: float = 10.0) -> None:
        self.client = client
        self.slot_ttl_s = slot_ttl_s
        self.limiters: list[RedisConcurrencyLimiter] = []

    @classmethod
    def connect(cls, url: str, *, slot_ttl_s: float = 10.0) -> SharedLimits:
        """``slot_ttl_s``: how long the slots of a process that died stay taken (the collector
        passes its liveness time, so a dead collector's slots and items come back together)."""
        client = aioredis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        return cls(client, slot_ttl_s=slot_ttl_s)

    def for_endpoint(self, endpoint: EndpointConfig) -> dict[str, Any]:
        key = endpoint_key(endpoint)
        limiter = RedisConcurrencyLimiter(
            self.client, key, endpoint.max_concurrency, slot_ttl_s=self.slot_ttl_s
        )
        self.limiters.append(limiter)
        limits: dict[str, Any] = {"limiter": limiter}
        if endpoint.requests_per_minute or endpoint.tokens_per_minute:
            limits["rate_limiter"] = RedisRateLimiter(
                self.client,
                key,
                requests_per_minute=endpoint.requests_per_minute,
                tokens_per_minute=endpoint.tokens_per_minute,
            )
        return limits

    async def aclose(self) -> None:
        for limiter in self.limiters:
            await limiter.drain()
        await self.client.aclose()
