"""The cyclic garbage collector paused while a read builds many small objects at once."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a read builds hundreds of thousands of small,
    acyclic objects (rows, dicts): each collection the allocations set off would walk every object
    already made again (measured: half the time of an audit reading 20,900 verdicts, and of a
    campaign snapshot reading 580,000 labels). Reference counting still frees everything as usual.
    Only the caller that paused the collector resumes it, so nested or concurrent reads leave it
    as they found it."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
