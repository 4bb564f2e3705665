"""What an annotation file may hold (columns, lengths) and the rules an import checks it against."""

from __future__ import annotations

import codecs
import difflib
import hashlib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from annotations.rubric_schema import FieldSpec

# The same text decoding and CSV/JSONL reading rules as every import (core.imports).
from core.imports import ImportRejected

FORMATS = ("jsonl", "csv")
REQUIRED = ("item", "model", "prompt", "response", "rater", "field", "value")
OPTIONAL = ("adjudicated", "category", "expected_behaviour", "prompt_id")
COLUMNS = (*REQUIRED, *OPTIONAL)
COLUMN_SET = frozenset(COLUMNS)
_REQUIRED_SET = frozenset(REQUIRED)
_ID_KEYS = frozenset(("item", "prompt_id", "rater"))
_VERBATIM_KEYS = frozenset(("prompt", "response"))
MAX_LENGTHS = {
    "item": 200,
    "model": 200,
    "rater": 120,
    "prompt_id": 200,
    "category": 80,
    "expected_behaviour": 16,
}
_TEXT_KEYS = (
    "item",
    "model",
    "prompt",
    "response",
    "rater",
    "field",
    "category",
    "expected_behaviour",
    "prompt_id",
)
# Per text key: required, kept verbatim, length limit, may be a JSON integer (an id).
TEXT_PLAN = tuple(
    (key, key in _REQUIRED_SET, key in _VERBATIM_KEYS, MAX_LENGTHS.get(key), key in _ID_KEYS)
    for key in _TEXT_KEYS
)
CHUNK = 1 << 16
BOM = codecs.BOM_UTF8
# A value's canonical form is looked up by its raw JSON value or cell; a file of free text cells
# would otherwise make the table as large as the file.
MEMO_LIMIT = 4096
# Beyond this a float from orjson may not be the integer the JSON text wrote (it reads big integers
# as floats): such a line takes the strict reader.
EXACT_FLOAT = 2.0**53


class Digest(Protocol):
    def update(self, data: bytes, /) -> None: ...


class AnnotationImportRejected(ImportRejected):
    """Raised with every problem found; the query import's rejection shares the base."""


@dataclass(frozen=True)
class ImportRules:
    fields: Mapping[str, FieldSpec]
    category_exists: Callable[[str], bool]
    expected_choices: Collection[str] = ()
    # Cell values that mean "not rated" (a judge's prose, "n/a"): compared after stripping.
    missing_values: frozenset[str] = frozenset()


class CheckedRow(NamedTuple):
    # What describes the item first: rows of one item repeat it (``ITEM_PART``).
    item: str
    model: str
    prompt: str
    prompt_id: str
    response: str
    category: str | None
    expected_behaviour: str | None
    rater: str
    field: str
    value: object | None  # canonical; None: the rater left this field empty
    adjudicated: object | None


ITEM_PART = 7


def prompt_key(prompt: str) -> str:
    """The id of a prompt that came without one: stable across files and re-exports."""
    return "sha256-" + hashlib.sha256(prompt.strip().encode()).hexdigest()[:24]


def unknown_name(name: str, kind: str) -> str:
    close = difflib.get_close_matches(name, COLUMNS, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else f"; allowed: {', '.join(COLUMNS)}"
    return f"unknown {kind}{hint}"
