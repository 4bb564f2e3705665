"""The result of every statistic: a value with its interval, or no value and the reason why."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


class NotFiniteError(ValueError):
    """Raised when a computation would hand out NaN or infinity: a bug, never a result."""


def _finite(name: str, number: float | None) -> float | None:
    if number is None:
        return None
    number = float(number)
    if not math.isfinite(number):
        raise NotFiniteError(f"{name} is {number}")
    return number


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its interval, or ``value is None`` and ``reason`` saying why.

    ``ci_low``/``ci_high`` are ``None`` when the value exists but no interval does (then
    ``ci_reason`` says why, e.g. a single item). ``interval`` names the method that produced the
    interval; ``details`` holds the intermediate numbers (observed and chance agreement, standard
    errors, resamples kept) so that a figure can be explained. No field is ever NaN.
    """

    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    reason: str | None = None
    ci_reason: str | None = None
    interval: str | None = None
    n_items: int = 0
    details: dict[str, float | int | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("value", "ci_low", "ci_high"):
            object.__setattr__(self, name, _finite(name, getattr(self, name)))
        for key, number in self.details.items():
            if isinstance(number, float):
                _finite(key, number)
        if self.value is None and not self.reason:
            raise ValueError("An estimate without a value needs a reason.")
        if (self.ci_low is None) != (self.ci_high is None):
            raise ValueError("An interval has both ends or none.")

    @classmethod
    def not_computable(cls, reason: str, *, n_items: int = 0) -> Estimate:
        return cls(value=None, reason=reason, n_items=n_items)

    @property
    def computable(self) -> bool:
        return self.value is not None

    def as_dict(self) -> dict[str, Any]:
        """The published shape: ``{"value", "ci_low", "ci_high"}`` or ``{"value": None, "reason"}``."""
        if self.value is None:
            return {"value": None, "reason": self.reason}
        return {"value": self.value, "ci_low": self.ci_low, "ci_high": self.ci_high}
