"""Where the scores learn what the judging app knows. Judging sits above scoring (its audits read
the scores' snapshot), so it registers its two readers here when Django starts
(``judging.apps``) instead of scoring importing it; without the app, the judge source is empty."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class JudgeReaders:
    # response ids -> (response id -> trusted values, the trusts used: each with .field, .statement
    # (which says how many of the responses it judged were outside its audited scope) and .trust).
    # A trusted judge's value counts only for responses of the runs and categories it was audited on.
    trusted_labels: Callable[..., tuple[dict[int, dict[str, Any]], list[Any]]]
    # user -> per-field tables of clinician-only, judge-only and PPI / PPI++ rates
    assisted_rates: Callable[..., list[Any]]


_readers: list[JudgeReaders] = []


def judge_readers_register(readers: JudgeReaders) -> None:
    _readers[:] = [readers]


def judge_readers() -> JudgeReaders | None:
    return _readers[0] if _readers else None
