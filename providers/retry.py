"""Retry policy: which outcomes are retried, how long to wait, and when an item gives up.

- 5xx, timeouts and connection errors: exponential backoff with full jitter,
  ``uniform(0, min(max_delay, base_delay * 2**(attempt-1)))`` (AWS "full jitter").
- 429: the server's ``Retry-After`` (capped at ``max_retry_after``) plus up to 10% jitter so a
  burst of rate-limited calls does not come back in lockstep; without the header, backoff as above.
- content filter, empty, ok and other 4xx: never retried.
- every attempt counts, 429s included, so an item always ends after ``max_attempts``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from providers.types import CallOutcome, OutcomeKind


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 60.0
    jitter: bool = True
    max_retry_after: float = 300.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("delays must not be negative")

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Delay after failed attempt number ``attempt`` (1-based)."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        if not self.jitter:
            return ceiling
        return (rng or random).uniform(0, ceiling)

    def delay_after(
        self, outcome: CallOutcome, attempt: int, rng: random.Random | None = None
    ) -> float | None:
        """Seconds to wait before the next attempt, or ``None`` when the item must stop here."""
        if not outcome.is_retryable or attempt >= self.max_attempts:
            return None
        if outcome.kind == OutcomeKind.RATE_LIMITED and outcome.retry_after_s is not None:
            wait = min(outcome.retry_after_s, self.max_retry_after)
            return wait * (1 + (rng or random).uniform(0, 0.1)) if self.jitter else wait
        return self.backoff(attempt, rng)

    def terminal_reason(self, outcome: CallOutcome, attempt: int) -> str | None:
        """Why the item failed, or ``None`` when its last outcome is a recorded answer."""
        if outcome.is_recorded:
            return None
        detail = outcome.error or str(outcome.kind)
        if not outcome.is_retryable:
            return f"{outcome.kind}: not retried: {detail}"
        return f"{outcome.kind}: gave up after {attempt} attempt{'s' if attempt != 1 else ''}: {detail}"
