"""Python's cyclic garbage collector paused while a figure is computed.

A campaign snapshot of 200k responses holds millions of Python objects; every full collection
walks all of them (0.3-0.5 s each), and a figure that allocates a few hundred thousand short-lived
tuples and arrays triggers several. Those temporaries hold no reference cycles, so reference
counting frees them anyway: pausing the collector for the computation changes no result and
loses no memory, it only defers the cycle search to after the figure (docs/scores.md,
"Measured"). Re-entrant and thread-tolerant: only the outermost pause that found the collector
running restarts it.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


@contextmanager
def collector_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def without_collector(function: Callable[P, R]) -> Callable[P, R]:
    """``function`` runs with the cyclic collector paused (``collector_paused``)."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with collector_paused():
            return function(*args, **kwargs)

    return wrapper
