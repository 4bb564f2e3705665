"""``core.collector.chunks_collector_paused``: the chunks unchanged, the cycle collector paused
while each is produced and as it was between them and after, the source closed with the stream."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from core.collector import chunks_collector_paused


def test_each_chunk_is_made_with_the_collector_paused_and_it_runs_between_chunks() -> None:
    seen: list[bool] = []

    def chunks() -> Iterator[bytes]:
        for chunk in (b"a", b"b", b"c"):
            seen.append(gc.isenabled())
            yield chunk

    assert gc.isenabled()
    stream = chunks_collector_paused(chunks())
    first = next(stream)
    assert gc.isenabled()  # between chunks
    assert [first, *stream] == [b"a", b"b", b"c"]
    assert seen == [False, False, False]
    assert gc.isenabled()


def test_a_collector_switched_off_stays_off_and_a_failure_restores_it() -> None:
    gc.disable()
    try:
        assert list(chunks_collector_paused(iter([b"x"]))) == [b"x"]
        assert not gc.isenabled()
    finally:
        gc.enable()

    def failing() -> Iterator[bytes]:
        yield b"ok"
        raise RuntimeError("broken")

    stream = chunks_collector_paused(failing())
    assert next(stream) == b"ok"
    with pytest.raises(RuntimeError):
        next(stream)
    assert gc.isenabled()


def test_closing_the_stream_closes_its_source() -> None:
    closed: list[bool] = []

    def source() -> Iterator[bytes]:
        try:
            yield b"1"
            yield b"2"
        finally:
            closed.append(True)

    stream = chunks_collector_paused(source())
    assert next(stream) == b"1"
    stream.close()
    assert closed == [True]
    assert gc.isenabled()
