"""Python's cyclic garbage collector paused while code builds many small, acyclic objects at once.

A campaign snapshot of 200k responses holds millions of Python objects; every full collection
walks all of them (0.3-0.5 s each), and a read, a figure or an export chunk that allocates a few
hundred thousand short-lived rows, tuples and strings sets off several (measured: half the time of
an audit reading 20,900 verdicts, of a snapshot reading 580,000 labels, and of the scores at 200k
responses; 0.35 s per collection during an export at 20k). Those objects hold no reference cycles,
so reference counting frees them as usual: pausing the collector changes no result and loses no
memory, it only defers the cycle search. Only the caller that found the collector running resumes
it, so nested or concurrent pauses leave it as they found it. The one home of this rule: reads
(``gc_paused``), figures (``without_collector``) and streamed downloads (``chunks_collector_paused``).
"""

from __future__ import annotations

import contextlib
import functools
import gc
from collections.abc import Callable, Iterator
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic collector paused for the block (resumed after it if it was running)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def without_collector(function: Callable[P, R]) -> Callable[P, R]:
    """``function`` runs with the cyclic collector paused (``gc_paused``)."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with gc_paused():
            return function(*args, **kwargs)

    return wrapper


def chunks_collector_paused(chunks: Iterator[T]) -> Iterator[T]:
    """``chunks``, each produced with the collector paused; it runs again between chunks (while the
    server writes), so a cycle made elsewhere is still collected. Closing the stream closes
    ``chunks`` (a server-side cursor is released at once)."""
    try:
        while True:
            with gc_paused():
                try:
                    chunk = next(chunks)
                except StopIteration:
                    return
            yield chunk
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
