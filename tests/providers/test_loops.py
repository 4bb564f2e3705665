"""The loop collectors run on (providers.loops)."""

from __future__ import annotations

import asyncio

from providers.loops import event_loop_run


def test_a_collector_runs_on_uvloop_and_gets_its_coroutine_result() -> None:
    async def which_loop() -> str:
        await asyncio.sleep(0)
        return type(asyncio.get_running_loop()).__module__

    assert event_loop_run(which_loop()).startswith("uvloop")  # installed from requirements/base.txt
