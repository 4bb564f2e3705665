"""Arrow arrays and scalars from Python values, built from buffers: without pandas.

pyarrow imports pandas (about 40 MB of a build worker's memory, and a second of start-up) the first
time it converts a Python value: ``pa.array(list)``, ``pa.scalar(value)``, and any Python literal
handed to a compute function (``pc.fill_null(array, "null")`` converts ``"null"`` with
``pa.scalar``). The release build never needs pandas, so it makes its literals and its small
arrays here, from bytes, and hands compute functions Arrow scalars only. The arrays are the same as
``pa.array(values, type=...)`` makes for these four types (``tests/releases/test_arrow_values.py``).
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from functools import lru_cache
from itertools import accumulate
from typing import Any

import pyarrow as pa


def _bitmap(flags: Sequence[bool]) -> pa.Buffer:
    """Arrow's bit-packed layout (least significant bit first) of ``flags``."""
    packed = bytearray((len(flags) + 7) // 8)
    for index, flag in enumerate(flags):
        if flag:
            packed[index >> 3] |= 1 << (index & 7)
    return pa.py_buffer(bytes(packed))


def from_pylist(values: Sequence[Any], arrow_type: pa.DataType) -> pa.Array:
    """``pa.array(values, type=arrow_type)`` for string, int64, float64 and bool (None is null)."""
    count = len(values)
    valid = [value is not None for value in values]
    validity = None if all(valid) else _bitmap(valid)
    if pa.types.is_string(arrow_type):
        encoded = [value.encode() if value is not None else b"" for value in values]
        # int32 offsets: more than 2 GiB of text in one array raises OverflowError here.
        offsets = array("i", accumulate((len(chunk) for chunk in encoded), initial=0))
        buffers = [validity, pa.py_buffer(offsets.tobytes()), pa.py_buffer(b"".join(encoded))]
    elif pa.types.is_int64(arrow_type):
        buffers = [validity, pa.py_buffer(array("q", [v if v is not None else 0 for v in values]).tobytes())]
    elif pa.types.is_float64(arrow_type):
        buffers = [
            validity,
            pa.py_buffer(array("d", [v if v is not None else 0.0 for v in values]).tobytes()),
        ]
    elif pa.types.is_boolean(arrow_type):
        buffers = [validity, _bitmap([bool(v) for v in values])]
    else:
        raise TypeError(f"no buffer layout for {arrow_type}")
    result = pa.Array.from_buffers(arrow_type, count, buffers)
    result.validate(full=True)
    return result


@lru_cache(maxsize=1024)
def string_scalar(text: str) -> pa.StringScalar:
    """A string literal for a compute function (a Python ``str`` would be converted by pandas'
    import path)."""
    return from_pylist([text], pa.string())[0]


@lru_cache(maxsize=16)
def null_scalar(arrow_type: pa.DataType) -> pa.Scalar:
    return pa.nulls(1, arrow_type)[0]
