"""Per-endpoint throttles: an adaptive (AIMD) concurrency limiter and request/token buckets.

``AdaptiveConcurrencyLimiter`` starts at the endpoint's configured maximum, halves its limit on a
429 and grows it by one after a window of successes (one window = as many successes as the current
limit, about one round trip of the whole pool), never above the maximum nor below the minimum. Like
TCP it cuts at most once per window: 429s from calls that started before the last cut were caused
by the old limit and do not cut again, so a burst of 64 rate-limited calls halves once, not 64 times.
And it cuts only while 429s are more than ``tolerance`` (25%) of the last ``history`` (50) answers:
sporadic 429s (a steady 10% from a shared provider) cost their retries, not a collapse of the limit
to a few calls in flight, while an endpoint that really is over its limit answers mostly 429s and is
cut at once. ``providers.shared_limits`` holds the same algorithm in Redis, shared by
every collector process.

``RateLimiter`` enforces requests-per-minute and tokens-per-minute with token buckets that hold ten
seconds' worth (a minute's quota at once is what trips providers' short-window limits). Tokens are
taken on an estimate before the call and settled with the real usage after it.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from providers.types import RECORDED_KINDS, EndpointConfig, OutcomeKind


class AdaptiveConcurrencyLimiter:
    def __init__(
        self,
        max_concurrency: int,
        *,
        min_concurrency: int = 1,
        initial: int | None = None,
        decrease_factor: float = 0.5,
        tolerance: float = 0.25,
        history: int = 50,
    ) -> None:
        if not 1 <= min_concurrency <= max_concurrency:
            raise ValueError("need 1 <= min_concurrency <= max_concurrency")
        self.max_concurrency = max_concurrency
        self.min_concurrency = min_concurrency
        self.limit = max(min_concurrency, min(max_concurrency, initial or max_concurrency))
        self.decrease_factor = decrease_factor
        self.tolerance = tolerance
        self._recent: collections.deque[bool] = collections.deque(maxlen=history)  # True: a 429
        self.in_flight = 0
        self.peak_in_flight = 0
        self.decreases = 0
        self._epoch = 0
        self._successes = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    async def acquire(self) -> int:
        """Wait for a slot; returns a token to hand back to ``release``."""
        if self.in_flight < self.limit and not self._waiters:
            self._take()
            return self._epoch
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                # The slot was handed over just as we were cancelled: pass it on.
                self.in_flight -= 1
                self._wake()
            else:
                self._waiters.remove(waiter)
            raise
        return self._epoch

    def release(self, token: int, kind: OutcomeKind | None) -> None:
        """Free the slot; ``kind`` is the call's outcome (``None`` if it never finished)."""
        self.in_flight -= 1
        if kind == OutcomeKind.RATE_LIMITED:
            if token == self._epoch:  # a 429 of a call sent before the last cut is old news
                self._recent.append(True)
                if sum(self._recent) / len(self._recent) > self.tolerance:
                    self.limit = max(self.min_concurrency, int(self.limit * self.decrease_factor))
                    self._epoch += 1
                    self.decreases += 1
                    self._successes = 0
        elif kind in RECORDED_KINDS:
            self._recent.append(False)
            self._successes += 1
            if self._successes >= self.limit:
                self._successes = 0
                self.limit = min(self.max_concurrency, self.limit + 1)
        self._wake()

    def _take(self) -> None:
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    def _wake(self) -> None:
        while self._waiters and self.in_flight < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._take()
                waiter.set_result(None)


class TokenBucket:
    """``per_minute`` units a minute, holding at most ``capacity`` (ten seconds' worth by default)."""

    def __init__(
        self, per_minute: float, *, capacity: float | None = None, clock: Callable[[], float]
    ) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.rate = per_minute / 60.0
        self.capacity = capacity if capacity is not None else max(1.0, per_minute / 6.0)
        self.tokens = self.capacity
        self._clock = clock
        self._updated = clock()

    def _refill(self) -> None:
        now = self._clock()
        self.tokens = min(self.capacity, self.tokens + (now - self._updated) * self.rate)
        self._updated = now

    def wait_for(self, amount: float) -> float:
        """Seconds until ``amount`` can be taken (0 = now). A request larger than the bucket goes
        through when the bucket is full and leaves it in debt, so it is slowed, not starved."""
        self._refill()
        needed = min(amount, self.capacity)
        return 0.0 if self.tokens >= needed else (needed - self.tokens) / self.rate

    def take(self, amount: float) -> None:
        self._refill()
        self.tokens -= amount

    def give_back(self, amount: float) -> None:
        self._refill()
        self.tokens = min(self.capacity, self.tokens + amount)


class RateLimiter:
    """Requests-per-minute and tokens-per-minute buckets; callers queue in arrival order."""

    def __init__(
        self,
        *,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.requests = TokenBucket(requests_per_minute, clock=clock) if requests_per_minute else None
        self.tokens = TokenBucket(tokens_per_minute, clock=clock) if tokens_per_minute else None
        self._sleep = sleep
        self._lock = asyncio.Lock()

    @classmethod
    def for_endpoint(cls, endpoint: EndpointConfig) -> RateLimiter | None:
        if not endpoint.requests_per_minute and not endpoint.tokens_per_minute:
            return None
        return cls(
            requests_per_minute=endpoint.requests_per_minute, tokens_per_minute=endpoint.tokens_per_minute
        )

    async def acquire(self, estimated_tokens: int) -> None:
        async with self._lock:
            while True:
                wait = max(
                    self.requests.wait_for(1) if self.requests else 0.0,
                    self.tokens.wait_for(estimated_tokens) if self.tokens else 0.0,
                )
                if wait <= 0:
                    break
                await self._sleep(wait)
            if self.requests:
                self.requests.take(1)
            if self.tokens:
                self.tokens.take(estimated_tokens)

    def settle(self, estimated_tokens: int, actual_tokens: int) -> None:
        """Correct the token bucket once the real usage is known (refund or debt)."""
        if self.tokens:
            if actual_tokens < estimated_tokens:
                self.tokens.give_back(estimated_tokens - actual_tokens)
            else:
                self.tokens.take(actual_tokens - estimated_tokens)


@dataclass(frozen=True)
class LimiterSnapshot:
    limit: int
    peak_in_flight: int
    decreases: int

    @classmethod
    def of(cls, limiter: AdaptiveConcurrencyLimiter) -> LimiterSnapshot:
        return cls(limit=limiter.limit, peak_in_flight=limiter.peak_in_flight, decreases=limiter.decreases)
