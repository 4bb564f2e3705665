"""The bundle's encoders, value by value: JSONL lines are orjson's bytes, arrays made from Python
values without pandas are ``pa.array``'s, CSV neutralisation is ``core.csv_cells``'; and the
release build's encoders never load pandas."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pyarrow as pa
import pytest

from core.csv_cells import neutralise
from releases.arrow_values import from_pylist, null_scalar, string_scalar
from releases.builder import _neutralise, jsonl_lines

pytestmark = pytest.mark.portable

ROOT = Path(__file__).resolve().parents[2]

TEXTS = [
    "plain",
    "",
    None,
    'quote " inside',
    "back\\slash",
    "line\nbreak",
    "\r\t\b\f",
    "".join(chr(c) for c in range(0x20)),
    "unicode é ß 漢字 🙂 \u2028 \u2029 \x7f",
    '{"category": "toxicology", "severity": "high"}',
    "=HYPERLINK(1)",
    "+1",
    "-1",
    "@sum",
    "'quoted",
    "\ttab first",
]
INTS = [0, -1, 2**62, None, 7, -(2**63), 3, 4, 5, 6, 8, 9, 10, 11, 12, 13]
FLOATS = [
    0.5,
    1.0,
    -0.0,
    1 / 3,
    1e20,
    1e-7,
    2.5e-5,
    float("nan"),
    float("inf"),
    None,
    0.0,
    100.0,
    7.25,
    -3.5,
    1e16,
    2.0,
]
BOOLS = [True, False, None, True] * 4


@pytest.mark.parametrize(
    ("values", "arrow_type"),
    [
        (TEXTS, pa.string()),
        (INTS, pa.int64()),
        (FLOATS, pa.float64()),
        (BOOLS, pa.bool_()),
        ([], pa.string()),
        ([None, None], pa.int64()),
        ([1, 2.5], pa.float64()),  # an int in a float column, as pa.array takes it
        (["x"] * 9, pa.string()),  # a validity bitmap of more than one byte, none null
    ],
)
def test_arrays_from_python_values_are_pa_arrays(values, arrow_type) -> None:
    made = from_pylist(values, arrow_type)
    expected = pa.array(values, type=arrow_type)
    assert made.type == expected.type
    assert made.null_count == expected.null_count
    # repr: NaN is not equal to itself (so Array.equals fails on it), and -0.0 == 0.0.
    assert [repr(v) for v in made.to_pylist()] == [repr(v) for v in expected.to_pylist()]
    assert made.is_null().equals(expected.is_null())


def test_literals_are_arrow_scalars() -> None:
    assert string_scalar("external:").as_py() == "external:"
    assert string_scalar("").as_py() == ""
    assert null_scalar(pa.float64()).as_py() is None
    assert null_scalar(pa.float64()).type == pa.float64()


def _batch() -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays(
        [
            from_pylist(TEXTS, pa.string()),
            from_pylist(INTS, pa.int64()),
            from_pylist(FLOATS, pa.float64()),
            from_pylist(BOOLS, pa.bool_()),
        ],
        names=["text", "number", "ratio", "flag"],
    )


def _orjson_lines(batch: pa.RecordBatch) -> bytes:
    return b"".join(orjson.dumps(row) + b"\n" for row in batch.to_pylist())


def test_jsonl_lines_are_orjsons_bytes_for_every_kind_of_value() -> None:
    batch = _batch()
    assert bytes(jsonl_lines(batch)) == _orjson_lines(batch)
    # A slice (an offset into the buffers), a column without escapes, and an empty batch.
    part = batch.slice(3, 9)
    assert bytes(jsonl_lines(part)) == _orjson_lines(part)
    plain = batch.slice(0, 2)
    assert bytes(jsonl_lines(plain)) == _orjson_lines(plain)
    assert bytes(jsonl_lines(batch.slice(0, 0))) == b""


def test_each_escape_alone_is_found_in_a_column_of_its_own() -> None:
    """The escapes are looked for on the column's bytes: one character that needs one, anywhere
    in the column, must still be escaped in its value and only there."""
    for code in [*range(0x20), ord('"'), ord("\\")]:
        values = ["a", None, f"x{chr(code)}y", "b"]
        batch = pa.RecordBatch.from_arrays([from_pylist(values, pa.string())], names=["v"])
        assert bytes(jsonl_lines(batch)) == _orjson_lines(batch), code
        sliced = batch.slice(2, 2)
        assert bytes(jsonl_lines(sliced)) == _orjson_lines(sliced), code


def test_csv_neutralisation_is_the_cell_by_cell_rule() -> None:
    array = from_pylist(TEXTS, pa.string())
    assert _neutralise(array).to_pylist() == [None if v is None else neutralise(v) for v in TEXTS]


def test_a_build_worker_loads_no_pandas_nor_api_tooling_and_arrow_allocates_with_jemalloc() -> None:
    """pyarrow imports pandas (about 40 MB of a build worker's memory) on the first conversion of
    a Python value; the build makes its arrays and literals from buffers instead. Loading the apps
    does not bring drf-spectacular's plumbing and Django's test tools (about 12 MB): the OpenAPI
    description of researcher tokens is loaded with the URLs (``access.openapi``)."""
    code = """
import sys, django
django.setup()
import pyarrow as pa, pyarrow.csv as pa_csv
from releases.arrow_values import from_pylist
from releases.builder import _neutralise, jsonl_lines
from releases.tables import PseudonymColumn, _arrow_column
assert 'pandas' not in sys.modules, 'loaded on import'
texts = from_pylist(['=a', None, 'b"c'], pa.string())
ints = _arrow_column([1, None, 3], 'int')
floats = from_pylist([1.0, float('nan'), None], pa.float64())
batch = pa.RecordBatch.from_arrays([texts, ints, floats], names=['t', 'i', 'f'])
jsonl_lines(batch)
_neutralise(texts)
class Release:
    slug = 'r'
from releases.tables import Pseudonyms
PseudonymColumn(Pseudonyms(Release()))(ints)
pa_csv.read_csv(pa.py_buffer(b'a,b\\n1,x\\n'))
print(pa.default_memory_pool().backend_name)
print(sorted(m for m in ('pandas', 'scipy', 'drf_spectacular.plumbing', 'django.test') if m in sys.modules))
"""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "medharm_web.settings.base"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    *_, pool, loaded = done.stdout.strip().splitlines()
    assert loaded == "[]"
    # medharm_web.celery picks Arrow's allocator before pyarrow is imported: jemalloc gives freed
    # memory back (mimalloc, pyarrow's default, keeps a build worker at its highest).
    assert pool == "jemalloc"


def test_a_copy_pages_last_key_is_read_from_its_last_field() -> None:
    """The next page is asked for before this one is parsed, from the last field of its CSV
    (``release__pk``, the last column: an integer PostgreSQL never quotes)."""
    from releases.tables import _last_key

    header = b"release_text,release__pk\n"
    assert _last_key(pa.py_buffer(header)) is None  # a page of the header alone: no next page
    assert _last_key(pa.py_buffer(header + b"a,1\n" + b'"two\nlines, and a comma",12345\n')) == 12345
    assert _last_key(pa.py_buffer(header + b'"' + b"x" * 100 + b'",7\n')) == 7
