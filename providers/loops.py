"""The event loop a collector runs on: uvloop where it is installed, asyncio's own loop elsewhere.

uvloop (libuv, the loop under Node.js) does a loop turn and a socket write in C: a collector keeps
64 calls in flight and spends most of its CPU in the loop and its transports, so the loop is where
the latency each call adds beyond the provider's comes from (docs/collection.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def event_loop_run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on a uvloop loop when uvloop is installed."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - a platform uvloop does not build on (Windows)
        return asyncio.run(main)
    return uvloop.run(main)
