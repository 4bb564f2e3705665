"""Reading annotations made in another tool (long format, JSONL or CSV): pure Python, no Django.

One row is one rating: ``item, model, prompt, response, rater, field, value`` and optionally
``adjudicated`` (the gold value of that item and field), ``category``, ``expected_behaviour`` and
``prompt_id``. A value listed in the rules' ``missing_values`` (or the field's declared missing
option) is a rating left empty, not an error. The format is documented in docs/annotation.md.
Every problem is reported with its file, line and field, and nothing is imported while any remains
(the query import's rule and error types).

The files are read twice and never held: ``AnnotationPlan.check`` reads every row, checks it and
keeps a few integers per item, prompt and rater (``AnnotationPlan``); the service then reads the
rows again (``AnnotationPlan.rows``) and writes each item as soon as its last row has gone by. A
file that is not the same bytes the second time is refused.
"""

from __future__ import annotations

import codecs
import difflib
import hashlib
import io
import shutil
import tempfile
from array import array
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, NamedTuple, Protocol

import orjson

from annotations.rubric_schema import FieldSpec, Kind

# The same text decoding and CSV/JSONL reading rules as every import (core.imports).
from core.imports import ImportProblem, ImportRejected, csv_rows, decode, jsonl_record, jsonl_records

FORMATS = ("jsonl", "csv")
REQUIRED = ("item", "model", "prompt", "response", "rater", "field", "value")
OPTIONAL = ("adjudicated", "category", "expected_behaviour", "prompt_id")
COLUMNS = (*REQUIRED, *OPTIONAL)
_COLUMN_SET = frozenset(COLUMNS)
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
_TEXT_PLAN = tuple(
    (key, key in _REQUIRED_SET, key in _VERBATIM_KEYS, MAX_LENGTHS.get(key), key in _ID_KEYS)
    for key in _TEXT_KEYS
)
_CHUNK = 1 << 16
_BOM = codecs.BOM_UTF8
# A value's canonical form is looked up by its raw JSON value or cell; a file of free text cells
# would otherwise make the table as large as the file.
_MEMO_LIMIT = 4096
# Beyond this a float from orjson may not be the integer the JSON text wrote (it reads big integers
# as floats): such a line takes the strict reader.
_EXACT_FLOAT = 2.0**53

__all__ = [
    "AnnotationImportRejected",
    "AnnotationPlan",
    "CheckedRow",
    "FileChanged",
    "ImportProblem",
    "ImportRules",
    "Source",
    "sources_open",
]


class _Digest(Protocol):
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


# --- the files --------------------------------------------------------------------------------------


@dataclass
class Source:
    """One file of an import, readable from its start as often as needed."""

    name: str
    stream: IO[bytes]
    size: int
    spooled: bool = False

    def close(self) -> None:
        if self.spooled:
            self.stream.close()


def sources_open(files: Sequence[tuple[str, bytes | IO[bytes]]]) -> list[Source]:
    """Each file as a seekable stream: bytes are read in place, a seekable file object as it is, and
    anything else (an upload held in memory, a pipe) is copied to a temporary file first, so that
    both readings see the same bytes without the file ever being held in memory whole."""
    sources = []
    for name, content in files:
        if isinstance(content, bytes | bytearray | memoryview):
            stream: IO[bytes] = io.BytesIO(content)  # shares the bytes object's buffer: no copy
            spooled = False
        elif _seekable(content):
            # A Django upload is read through the file it wraps: iterating the upload itself splits
            # lines at "\r" too, which would number them otherwise than the strict reader.
            stream = content if isinstance(content, io.IOBase) else getattr(content, "file", content)
            spooled = False
            stream.seek(0)
        else:
            stream, spooled = tempfile.TemporaryFile(), True  # noqa: SIM115 - closed by Source.close
            shutil.copyfileobj(content, stream, _CHUNK)
        size = stream.seek(0, io.SEEK_END)
        stream.seek(0)
        sources.append(Source(name=name, stream=stream, size=size, spooled=spooled))
    return sources


def _seekable(content: object) -> bool:
    seekable = getattr(content, "seekable", None)
    try:
        return bool(seekable and seekable())
    except (OSError, ValueError):
        return False


def _plain_text(source: Source) -> bool:
    """Whether the file is UTF-8 text with something in it, read in chunks: such a file is
    streamed line by line; any other is read whole by ``core.imports.decode``, whose problems name
    every bad line (it is refused anyway)."""
    stream = source.stream
    stream.seek(0)
    head = stream.read(2)
    if head in (b"\xff\xfe", b"\xfe\xff"):
        return False
    stream.seek(0)
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    something = False
    try:
        while chunk := stream.read(_CHUNK):
            text = decoder.decode(chunk)
            if not something and text.strip():
                something = True
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return something


class FileChanged(AnnotationImportRejected):
    """A file was not the same bytes on the second reading (written to while it was imported)."""

    def __init__(self, name: str) -> None:
        super().__init__(
            [
                ImportProblem(
                    name,
                    None,
                    None,
                    "the file changed while it was being imported; nothing was imported, import it again",
                )
            ]
        )


def _jsonl_stream(
    source: Source, digest: _Digest, problems: list[ImportProblem]
) -> Iterator[tuple[int, Mapping[str, object]]]:
    """``core.imports.jsonl_records`` line by line: orjson reads a flat object, and any line it
    cannot take exactly as the strict reader would (an escape, a nested value, a duplicate key, a
    big number, a syntax error) goes to the strict reader for its value or its problem."""
    loads = orjson.loads
    update = digest.update
    number = 0
    for line in source.stream:
        number += 1
        update(line)
        if number == 1 and line.startswith(_BOM):
            line = line[3:]
        try:
            value = loads(line)
        except orjson.JSONDecodeError:
            value = None
        if type(value) is dict and b"\\u" not in line and _flat_and_unique(line, value):
            yield number, value
            continue
        try:
            text = line.decode()
        except UnicodeDecodeError:
            raise FileChanged(source.name) from None
        record = jsonl_record(source.name, number, text.removesuffix("\n"), problems)
        if record is not None:
            yield number, record


def _flat_and_unique(line: bytes, value: dict[str, object]) -> bool:
    """Whether a line orjson read holds only strings, booleans, nulls and exact numbers, and no key
    twice. Without ``\\u`` escapes every colon of the line is after a key or inside a string, so a
    key given twice (orjson keeps the last) leaves a colon unaccounted for."""
    for inner in value.values():
        kind = type(inner)
        if kind is float:
            if not -_EXACT_FLOAT < inner < _EXACT_FLOAT:  # type: ignore[operator]
                return False
        elif kind is dict or kind is list:
            return False
    colons = line.count(b":")
    if colons == len(value):
        return True
    return colons == len(value) + sum(inner.count(":") for inner in value.values() if type(inner) is str)


def _jsonl_again(
    source: Source, digest: _Digest, problems: list[ImportProblem]
) -> Iterator[tuple[int, Mapping[str, object]]]:
    """The second reading of a JSONL file the first one accepted: orjson alone, as the bytes are
    the same (the caller compares their digest), save where orjson could read a number otherwise
    than the strict reader (a big number read as a float)."""
    loads = orjson.loads
    update = digest.update
    number = 0
    for line in source.stream:
        number += 1
        update(line)
        if number == 1 and line.startswith(_BOM):
            line = line[3:]
        try:
            value = loads(line)
        except orjson.JSONDecodeError:
            value = None
        if type(value) is dict:
            get = value.get
            # Only these are read again; a float among them may be a big integer to the strict reader.
            if not (
                type(get("value")) is float
                or type(get("adjudicated")) is float
                or type(get("item")) is float
                or type(get("rater")) is float
            ):
                yield number, value
                continue
        record = jsonl_record(source.name, number, line.decode(errors="replace").removesuffix("\n"), problems)
        if record is not None:
            yield number, record


def _csv_lines(source: Source, digest: _Digest) -> Iterator[str]:
    update = digest.update
    first = True
    for line in source.stream:
        update(line)
        if first:
            line, first = line.removeprefix(_BOM), False
        try:
            yield line.decode()
        except UnicodeDecodeError:
            raise FileChanged(source.name) from None


def _records(
    source: Source,
    file_format: str,
    digest: _Digest,
    problems: list[ImportProblem],
    *,
    plain: bool,
    again: bool = False,
) -> Iterator[tuple[int, Mapping[str, object]]]:
    source.stream.seek(0)
    if plain:
        if file_format == "jsonl":
            yield from (_jsonl_again if again else _jsonl_stream)(source, digest, problems)
        else:
            yield from _csv_records(
                source.name, csv_rows(source.name, _csv_lines(source, digest), problems), problems
            )
        return
    raw = source.stream.read()
    digest.update(raw)
    text = decode(source.name, raw, problems)
    if text is None:
        return
    if file_format == "jsonl":
        yield from jsonl_records(source.name, text, problems)
    else:
        yield from _csv_records(source.name, csv_rows(source.name, text, problems), problems)


def _csv_records(
    name: str, lines: Iterator[tuple[int, list[str]]], problems: list[ImportProblem]
) -> Iterator[tuple[int, Mapping[str, object]]]:
    header_line, header = next(lines, (1, []))
    columns = [column.strip() for column in header]
    header_problems = []
    for position, column in enumerate(columns, start=1):
        if not column:
            header_problems.append(
                ImportProblem(name, header_line, None, f"column {position} of the header has no name")
            )
        elif columns.index(column) != position - 1:
            header_problems.append(
                ImportProblem(name, header_line, column, "the column appears twice in the header")
            )
        elif column not in COLUMNS:
            header_problems.append(ImportProblem(name, header_line, column, _unknown(column, "column")))
    header_problems.extend(
        ImportProblem(name, header_line, required, "required column is missing from the header")
        for required in REQUIRED
        if required not in columns
    )
    if header_problems:
        problems.extend(header_problems)
        return
    width = len(columns)
    for line, cells in lines:
        if len(cells) != width:
            problems.append(
                ImportProblem(name, line, None, f"the row has {len(cells)} cells but the header has {width}")
            )
            continue
        yield line, dict(zip(columns, cells, strict=True))


# --- one row -----------------------------------------------------------------------------------------


class RowChecker:
    """Checks one row against the rules; each raw value's canonical form (or its problem) is worked
    out once per field and then looked up, so a row costs a few dictionary look-ups."""

    def __init__(self, rules: ImportRules) -> None:
        self.rules = rules
        self.fields = rules.fields
        self._resolved: dict[tuple[str, bool], dict[tuple[type, object], tuple[bool, object]]] = {}
        self._categories: dict[str, bool] = {}
        self._last_prompt: tuple[str, str] = ("", "")

    def check(
        self,
        name: str,
        line: int,
        record: Mapping[str, object],
        *,
        from_csv: bool,
        problems: list[ImportProblem],
    ) -> CheckedRow | None:
        fast = self._check_fast(record, from_csv)
        if fast is not None:
            return fast
        before = len(problems)
        if not _COLUMN_SET.issuperset(record):
            for key in record:
                if key not in _COLUMN_SET:
                    problems.append(ImportProblem(name, line, key, _unknown(key, "field")))
        get = record.get
        text: dict[str, str] = {}
        for key, required, verbatim, limit, id_key in _TEXT_PLAN:
            value = get(key)
            if value is None:
                if required:
                    problems.append(ImportProblem(name, line, key, "required field is missing"))
                continue
            if type(value) is not str:
                if id_key and isinstance(value, int) and not isinstance(value, bool):
                    value = str(value)  # numeric ids are common in other tools' exports
                else:
                    problems.append(ImportProblem(name, line, key, "must be a string"))
                    continue
            if "\x00" in value:
                problems.append(
                    ImportProblem(name, line, key, "contains a NUL character, which cannot be stored")
                )
                continue
            kept: str = value if verbatim else value.strip()
            text[key] = kept
            # isspace, not strip: a long prompt or response is scanned, never copied.
            if required and key != "response" and (not kept or kept.isspace()):
                problems.append(ImportProblem(name, line, key, "required field is empty"))
            if limit is not None and len(kept) > limit:
                problems.append(ImportProblem(name, line, key, f"longer than {limit} characters"))
        if "value" not in record:
            problems.append(ImportProblem(name, line, "value", "required field is missing"))

        field_name = text.get("field", "")
        spec = self.fields.get(field_name)
        if field_name and spec is None:
            close = difflib.get_close_matches(field_name, list(self.fields), n=1)
            hint = (
                f" (did you mean {close[0]!r}?)" if close else f"; the rubric has: {', '.join(self.fields)}"
            )
            problems.append(ImportProblem(name, line, "field", f"unknown rubric field {field_name!r}{hint}"))
        value = adjudicated = None
        if spec is not None:
            ok, value = self._resolve(spec, get("value"), from_csv)
            if not ok:
                problems.append(ImportProblem(name, line, "value", str(value)))
                value = None
            ok, adjudicated = self._resolve(spec, get("adjudicated"), from_csv)
            if not ok:
                problems.append(ImportProblem(name, line, "adjudicated", str(adjudicated)))
                adjudicated = None
        category = text.get("category") or None
        if category:
            exists = self._categories.get(category)
            if exists is None:
                exists = self._categories[category] = bool(self.rules.category_exists(category))
            if not exists:
                problems.append(ImportProblem(name, line, "category", f"unknown category {category!r}"))
        expected = text.get("expected_behaviour") or None
        if expected and expected not in self.rules.expected_choices:
            problems.append(
                ImportProblem(
                    name,
                    line,
                    "expected_behaviour",
                    f"{expected!r} is not one of: {', '.join(self.rules.expected_choices)}",
                )
            )
        if len(problems) > before:
            return None
        prompt = text["prompt"]
        prompt_id = text.get("prompt_id")
        if not prompt_id:
            last_prompt, last_key = self._last_prompt
            if prompt != last_prompt:
                last_key = prompt_key(prompt)
                self._last_prompt = (prompt, last_key)
            prompt_id = last_key
        return CheckedRow(
            item=text["item"],
            model=text["model"],
            prompt=prompt,
            prompt_id=prompt_id,
            response=text.get("response", ""),
            category=category,
            expected_behaviour=expected,
            rater=text["rater"],
            field=field_name,
            value=value,
            adjudicated=adjudicated,
        )

    def _check_fast(self, record: Mapping[str, object], from_csv: bool) -> CheckedRow | None:
        """The row of a record that breaks no rule, without a problem list: what ``check`` returns
        for it. ``None`` for any record this path does not take whole (``check`` then reads it the
        long way and says what is wrong, if anything is)."""
        if not _COLUMN_SET.issuperset(record) or "value" not in record:
            return None
        get = record.get
        item, model, prompt, response, rater, field_raw = (
            get("item"),
            get("model"),
            get("prompt"),
            get("response"),
            get("rater"),
            get("field"),
        )
        category, expected, prompt_id = get("category"), get("expected_behaviour"), get("prompt_id")
        if not (
            type(item) is str
            and type(model) is str
            and type(prompt) is str
            and type(response) is str
            and type(rater) is str
            and type(field_raw) is str
            and (category is None or type(category) is str)
            and (expected is None or type(expected) is str)
            and (prompt_id is None or type(prompt_id) is str)
        ):
            return None
        if (
            "\x00" in item
            or "\x00" in model
            or "\x00" in prompt
            or "\x00" in response
            or "\x00" in rater
            or "\x00" in field_raw
            or (category is not None and "\x00" in category)
            or (expected is not None and "\x00" in expected)
            or (prompt_id is not None and "\x00" in prompt_id)
        ):
            return None
        item, model, rater = item.strip(), model.strip(), rater.strip()
        spec = self.fields.get(field_raw.strip())
        if (
            spec is None
            or not item
            or not model
            or not rater
            or not prompt
            or prompt.isspace()
            or len(item) > 200
            or len(model) > 200
            or len(rater) > 120
        ):
            return None
        if category is not None:
            category = category.strip() or None
            if category is not None:
                if len(category) > 80:
                    return None
                exists = self._categories.get(category)
                if exists is None:
                    exists = self._categories[category] = bool(self.rules.category_exists(category))
                if not exists:
                    return None
        if expected is not None:
            expected = expected.strip() or None
            if expected is not None and (len(expected) > 16 or expected not in self.rules.expected_choices):
                return None
        if prompt_id is not None:
            prompt_id = prompt_id.strip()
            if len(prompt_id) > 200:
                return None
        value_ok, value = self._resolve(spec, get("value"), from_csv)
        gold_ok, gold = self._resolve(spec, get("adjudicated"), from_csv)
        if not (value_ok and gold_ok):
            return None
        if not prompt_id:
            last_prompt, prompt_id = self._last_prompt
            if prompt != last_prompt:
                prompt_id = prompt_key(prompt)
                self._last_prompt = (prompt, prompt_id)
        return CheckedRow(
            item, model, prompt, prompt_id, response, category, expected, rater, spec.name, value, gold
        )

    def _resolve(self, spec: FieldSpec, raw: object, from_csv: bool) -> tuple[bool, object]:
        """(True, canonical value or None) or (False, the problem's message)."""
        table = self._resolved.get((spec.name, from_csv))
        if table is None:
            table = self._resolved[(spec.name, from_csv)] = {}
        try:
            key: tuple[type, object] | None = (raw.__class__, raw)
            found = table.get(key)  # type: ignore[arg-type]
        except TypeError:  # a list or an object: not a value, and not hashable
            key = found = None
        if found is not None:
            return found
        result = self._resolve_once(spec, raw, from_csv)
        if key is not None and spec.kind != Kind.TEXT and len(table) < _MEMO_LIMIT:
            table[key] = result
        return result

    def _resolve_once(self, spec: FieldSpec, raw: object, from_csv: bool) -> tuple[bool, object]:
        if from_csv and isinstance(raw, str) and not raw.strip():
            raw = None
        if isinstance(raw, str) and raw.strip() in self.rules.missing_values:
            raw = None
        try:
            parsed = spec.parse(raw)
        except ValueError as exc:
            # Prose where a label belongs (a judge's explanation) is often "not rated".
            prose = isinstance(raw, str) and " " in raw.strip() and any(c.isalpha() for c in raw)
            hint = " (list it in the missing values if it means 'not rated')" if prose else ""
            return False, f"{spec.name}: {exc}{hint}"
        if parsed is not None and spec.is_missing(parsed):
            parsed = None
        return True, parsed


# --- the whole import ----------------------------------------------------------------------------------


class _Names:
    """Strings numbered in the order first seen."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.names: list[str] = []

    def of(self, name: str) -> int:
        number = self.index.get(name)
        if number is None:
            number = self.index[name] = len(self.names)
            self.names.append(name)
        return number


@dataclass
class AnnotationPlan:
    """What the first reading learnt, a few integers per item, prompt and rater: enough to check
    every cross-row rule, to say what an import would create, and to write each item when its last
    row comes by on the second reading. Strings are compared by their hash (texts are not kept)."""

    sources: list[Source]
    file_format: str
    rules: ImportRules
    judges: frozenset[str] = frozenset()
    rows: int = 0
    digests: list[bytes] = field(default_factory=list)
    plain: list[bool] = field(default_factory=list)
    items: _Names = field(default_factory=_Names)
    models: _Names = field(default_factory=_Names)
    raters: _Names = field(default_factory=_Names)
    prompts: _Names = field(default_factory=_Names)  # by prompt id
    categories: _Names = field(default_factory=_Names)
    # Per item (by number).
    item_model: array = field(default_factory=lambda: array("l"))
    item_prompt: array = field(default_factory=lambda: array("l"))
    item_prompt_hash: array = field(default_factory=lambda: array("q"))
    item_response_hash: array = field(default_factory=lambda: array("q"))
    item_category: array = field(default_factory=lambda: array("l"))  # -1: none given
    item_expected: array = field(default_factory=lambda: array("l"))  # -1: none given
    item_first_file: array = field(default_factory=lambda: array("l"))
    item_first_line: array = field(default_factory=lambda: array("l"))
    item_last_file: array = field(default_factory=lambda: array("l"))
    item_last_line: array = field(default_factory=lambda: array("l"))
    item_sample: array = field(default_factory=lambda: array("l"))
    item_rated: list[int] = field(default_factory=list)  # bit (rater * fields + field): rated
    item_labelled: list[int] = field(default_factory=list)  # bit rater: a person gave a value
    item_gold: list[int] = field(default_factory=list)  # 16 bits per field: option + 1
    gold_text: dict[tuple[int, int], int] = field(default_factory=dict)  # text fields: value hash
    # Per prompt id (by number): the prompt's hash and first row, and the row it is created from.
    prompt_hash: array = field(default_factory=lambda: array("q"))
    prompt_first_file: array = field(default_factory=lambda: array("l"))
    prompt_first_line: array = field(default_factory=lambda: array("l"))
    prompt_row_file: array = field(default_factory=lambda: array("l"))
    prompt_row_line: array = field(default_factory=lambda: array("l"))
    prompt_category: array = field(default_factory=lambda: array("l"))
    prompt_expected: array = field(default_factory=lambda: array("l"))
    samples: dict[tuple[int, int], int] = field(default_factory=dict)  # (prompt, model): count
    uncategorised: bool = False  # a row names no category (its prompt takes the default)
    judged_raters: set[int] = field(default_factory=set)  # judges with a value
    judge_labels: int = 0
    label_count: int = 0
    overlap_count: int = 1
    adjudicated_count: int = 0
    expected_names: tuple[str, ...] = ()

    @property
    def field_names(self) -> list[str]:
        return list(self.rules.fields)

    def file_names(self) -> list[str]:
        return [source.name for source in self.sources]

    # -- the first reading --

    def check(self, *, judge_field_check: Callable[[str, object], bool] | None = None) -> list[ImportProblem]:
        """Read every file once, checking each row and every cross-row rule; returns the judge
        problems (raised by the caller after the reader's); raises ``AnnotationImportRejected``
        with every problem the reader finds."""
        if self.file_format not in FORMATS:
            raise ValueError(
                f"Unknown import format {self.file_format!r}; expected one of {', '.join(FORMATS)}."
            )
        if not self.sources:
            raise ValueError("No files to import.")
        self.expected_names = tuple(self.rules.expected_choices)
        checker = RowChecker(self.rules)
        problems: list[ImportProblem] = []
        judge_problems: list[ImportProblem] = []
        field_number = {name: number for number, name in enumerate(self.rules.fields)}
        option_code: dict[str, dict[tuple[type, object], int]] = {
            name: {(type(o.value), o.value): position + 1 for position, o in enumerate(spec.options)}
            for name, spec in self.rules.fields.items()
        }
        width = len(field_number)
        from_csv = self.file_format == "csv"
        duplicates: list[tuple[int, int, int, int, int]] = []  # file, line, item, rater, field
        gold_conflicts: list[tuple[int, int, int, int]] = []  # file, line, item, field
        judges = self.judges
        judge_accepts: dict[tuple[str, type, object], bool] = {}
        names = self.file_names()
        last_part: tuple[object, ...] = ()
        last_item = -1
        for file_number, source in enumerate(self.sources):
            plain = _plain_text(source)
            self.plain.append(plain)
            digest = hashlib.sha256()
            found = False
            for line, record in _records(source, self.file_format, digest, problems, plain=plain):
                found = True
                row = checker.check(source.name, line, record, from_csv=from_csv, problems=problems)
                if row is None:
                    continue
                self.rows += 1
                item_part = row[:ITEM_PART]
                if item_part == last_part:
                    # The rows of an item usually follow each other: nothing new to check.
                    item = last_item
                    self.item_last_file[item] = file_number
                    self.item_last_line[item] = line
                else:
                    item = last_item = self.items.of(row.item)
                    last_part = item_part
                    self._item(item, row, file_number, line, names, problems)
                rater = self.raters.of(row.rater)
                field_position = field_number[row.field]
                bit = 1 << (rater * width + field_position)
                if self.item_rated[item] & bit:
                    duplicates.append((file_number, line, item, rater, field_position))
                else:
                    self.item_rated[item] |= bit
                if row.value is not None:
                    if row.rater in judges:
                        self.judged_raters.add(rater)
                        self.judge_labels += 1
                        if judge_field_check is not None:
                            key = (row.field, type(row.value), row.value)
                            accepted = judge_accepts.get(key)
                            if accepted is None:
                                accepted = judge_accepts[key] = judge_field_check(row.field, row.value)
                            if not accepted:
                                judge_problems.append(
                                    ImportProblem(
                                        source.name,
                                        line,
                                        "field",
                                        f"the judge's {row.field!r} = {row.value!r} cannot be stored as a "
                                        "judge label (the judging app audits the fields of the MedHarm "
                                        "response rubric)",
                                    )
                                )
                    else:
                        self.item_labelled[item] |= 1 << rater
                if row.adjudicated is not None:
                    spec_codes = option_code[row.field]
                    code = spec_codes.get((type(row.adjudicated), row.adjudicated))
                    if code is None or self.rules.fields[row.field].kind == Kind.TEXT:
                        mark = hash((type(row.adjudicated), row.adjudicated)) or 1
                        given = self.gold_text.setdefault((item, field_position), mark)
                        conflict = given != mark
                        self.item_gold[item] |= 1 << (16 * field_position)  # marks the item as adjudicated
                    else:
                        shift = 16 * field_position
                        given = (self.item_gold[item] >> shift) & 0xFFFF
                        if not given:
                            self.item_gold[item] |= code << shift
                        conflict = bool(given) and given != code
                    if conflict:
                        gold_conflicts.append((file_number, line, item, field_position))
            if not found and not any(p.file == source.name for p in problems):
                problems.append(ImportProblem(source.name, None, None, "the file holds no ratings"))
            self.digests.append(digest.digest())
        if duplicates or gold_conflicts:
            problems.extend(self._conflicts(checker, duplicates, gold_conflicts))
        if problems:
            order = {name: index for index, name in enumerate(names)}
            problems.sort(key=lambda p: (order.get(p.file, 0), p.line or 0))
            raise AnnotationImportRejected(problems)
        # What the counts need, then the per-item state only the first reading uses is let go.
        self.label_count = sum(mask.bit_count() for mask in self.item_labelled)
        self.overlap_count = max(1, *(mask.bit_count() for mask in self.item_labelled))
        self.adjudicated_count = sum(1 for gold in self.item_gold if gold)
        self.item_rated, self.item_labelled, self.item_gold = [], [], []
        self.gold_text, self.samples = {}, {}
        if judges:
            judge_problems[:0] = [
                ImportProblem(names[0], None, "rater", f"the judge {judge!r} rates nothing in these files")
                for judge in sorted(judges - set(self.raters.names))
            ]
        return judge_problems

    def _item(
        self,
        item: int,
        row: CheckedRow,
        file_number: int,
        line: int,
        names: list[str],
        problems: list[ImportProblem],
    ) -> None:
        """The item's and its prompt's rules: one model, prompt, response, prompt id, category and
        expected behaviour per item; one prompt per prompt id."""
        model = self.models.of(row.model)
        prompt = self.prompts.of(row.prompt_id)
        prompt_hash = hash(row.prompt)
        if row.category is None:
            category = -1
            self.uncategorised = True
        else:
            category = self.categories.of(row.category)
        expected = -1 if row.expected_behaviour is None else self.expected_names.index(row.expected_behaviour)
        response_hash = hash(row.response)
        if item == len(self.item_model):
            for column, value in (
                (self.item_model, model),
                (self.item_prompt, prompt),
                (self.item_prompt_hash, prompt_hash),
                (self.item_response_hash, response_hash),
                (self.item_category, category),
                (self.item_expected, expected),
                (self.item_first_file, file_number),
                (self.item_first_line, line),
                (self.item_last_file, file_number),
                (self.item_last_line, line),
            ):
                column.append(value)
            sample = self.samples.get((prompt, model), 0)
            self.samples[(prompt, model)] = sample + 1
            self.item_sample.append(sample)
            self.item_rated.append(0)
            self.item_labelled.append(0)
            self.item_gold.append(0)
        else:
            self.item_last_file[item] = file_number
            self.item_last_line[item] = line
            differs = []
            if model != self.item_model[item]:
                differs.append("model")
            if prompt_hash != self.item_prompt_hash[item]:
                differs.append("prompt")
            if response_hash != self.item_response_hash[item]:
                differs.append("response")
            if prompt != self.item_prompt[item]:
                differs.append("prompt_id")
            if category != self.item_category[item] and category != -1:
                differs.append("category")
            if expected != self.item_expected[item] and expected != -1:
                differs.append("expected_behaviour")
            if differs:
                where = f"{names[self.item_first_file[item]]}, line {self.item_first_line[item]}"
                problems.extend(
                    ImportProblem(
                        names[file_number], line, key, f"item {row.item!r} has a different {key} on {where}"
                    )
                    for key in differs
                )
        if prompt == len(self.prompt_hash):
            for column, value in (
                (self.prompt_hash, prompt_hash),
                (self.prompt_first_file, file_number),
                (self.prompt_first_line, line),
                (self.prompt_row_file, file_number),
                (self.prompt_row_line, line),
                (self.prompt_category, category),
                (self.prompt_expected, expected),
            ):
                column.append(value)
        else:
            if self.prompt_hash[prompt] != prompt_hash:
                where = f"{names[self.prompt_first_file[prompt]]}, line {self.prompt_first_line[prompt]}"
                problems.append(
                    ImportProblem(
                        names[file_number],
                        line,
                        "prompt_id",
                        f"prompt id {row.prompt_id!r} has a different prompt on {where}",
                    )
                )
            if self.prompt_expected[prompt] == -1 and expected != -1:
                # The prompt is created from its first row that gives an expected behaviour.
                self.prompt_row_file[prompt] = file_number
                self.prompt_row_line[prompt] = line
                self.prompt_category[prompt] = category
                self.prompt_expected[prompt] = expected

    def _conflicts(
        self,
        checker: RowChecker,
        duplicates: list[tuple[int, int, int, int, int]],
        gold_conflicts: list[tuple[int, int, int, int]],
    ) -> list[ImportProblem]:
        """The messages of ratings given twice and of adjudicated values that differ, which name the
        first row: found by reading the files again (only a refused import gets here)."""
        fields = self.field_names
        rating_keys = {(item, rater, field_position) for _, _, item, rater, field_position in duplicates}
        gold_keys = {(item, field_position) for _, _, item, field_position in gold_conflicts}
        first_rating: dict[tuple[int, int, int], tuple[int, int]] = {}
        first_gold: dict[tuple[int, int], tuple[int, int]] = {}
        field_number = {name: number for number, name in enumerate(fields)}
        for file_number, line, row in self.rows_again(checker, verify=False):
            item = self.items.index[row.item]
            rater = self.raters.index[row.rater]
            position = field_number[row.field]
            if (item, rater, position) in rating_keys:
                first_rating.setdefault((item, rater, position), (file_number, line))
            if row.adjudicated is not None and (item, position) in gold_keys:
                first_gold.setdefault((item, position), (file_number, line))
        names = self.file_names()
        problems = []
        for file_number, line, item, rater, position in duplicates:
            seen_file, seen_line = first_rating[(item, rater, position)]
            problems.append(
                ImportProblem(
                    names[file_number],
                    line,
                    "rater",
                    f"rater {self.raters.names[rater]!r} already rated {fields[position]!r} of item "
                    f"{self.items.names[item]!r} on {names[seen_file]}, line {seen_line}",
                )
            )
        for file_number, line, item, position in gold_conflicts:
            given_file, given_line = first_gold[(item, position)]
            problems.append(
                ImportProblem(
                    names[file_number],
                    line,
                    "adjudicated",
                    f"item {self.items.names[item]!r} has another adjudicated {fields[position]!r} "
                    f"on {names[given_file]}, line {given_line}",
                )
            )
        return problems

    # -- the second reading --

    def rows_again(
        self, checker: RowChecker | None = None, *, verify: bool = True
    ) -> Iterator[tuple[int, int, CheckedRow]]:
        """(file number, line, row) of every row, read again and checked again; raises
        ``FileChanged`` when a file is not the bytes the first reading checked."""
        checker = checker or RowChecker(self.rules)
        from_csv = self.file_format == "csv"
        for file_number, source in enumerate(self.sources):
            digest = hashlib.sha256()
            problems: list[ImportProblem] = []
            for line, record in _records(
                source, self.file_format, digest, problems, plain=self.plain[file_number]
            ):
                row = checker.check(source.name, line, record, from_csv=from_csv, problems=problems)
                if row is None:
                    if verify:
                        raise FileChanged(source.name)
                    continue
                yield file_number, line, row
            if verify and (problems or digest.digest() != self.digests[file_number]):
                raise FileChanged(source.name)

    def ratings_again(self) -> Iterator[tuple[int, int, int, str, str, object, object, Mapping[str, object]]]:
        """(file number, line, item number, rater, field, value, adjudicated value, the record) of
        every row, read again without checking it again: the rows were checked on the first
        reading, and ``FileChanged`` is raised when a file is not the same bytes (at its end, so a
        caller writing as it goes does so in a transaction it lets roll back)."""
        checker = RowChecker(self.rules)
        resolve = checker._resolve
        fields = self.rules.fields
        items = self.items.index
        from_csv = self.file_format == "csv"
        for file_number, source in enumerate(self.sources):
            digest = hashlib.sha256()
            problems: list[ImportProblem] = []
            for line, record in _records(
                source, self.file_format, digest, problems, plain=self.plain[file_number], again=True
            ):
                try:
                    item, rater, field_name = (
                        _text(record["item"]),
                        _text(record["rater"]),
                        _text(record["field"]),
                    )
                    spec = fields[field_name]
                    item_number = items[item]
                except (KeyError, AttributeError, TypeError):
                    raise FileChanged(source.name) from None
                value_ok, value = resolve(spec, record.get("value"), from_csv)
                gold_ok, gold = resolve(spec, record.get("adjudicated"), from_csv)
                if not (value_ok and gold_ok):
                    raise FileChanged(source.name)
                yield file_number, line, item_number, rater, field_name, value, gold, record
            if problems or digest.digest() != self.digests[file_number]:
                raise FileChanged(source.name)

    # -- what the import creates --

    def human_raters(self) -> list[str]:
        return sorted(name for name in self.raters.names if name not in self.judges)

    def labels(self) -> int:
        return self.label_count

    def overlap(self) -> int:
        return self.overlap_count

    def adjudicated(self) -> int:
        return self.adjudicated_count

    def category_slugs(self, default: str) -> list[str]:
        return sorted({*self.categories.names, *([default] if self.uncategorised else [])})


def _text(value: object) -> str:
    # The first reading allowed a string, or an integer for an id.
    return value.strip() if type(value) is str else str(int(value))  # type: ignore[call-overload]


def _unknown(name: str, kind: str) -> str:
    close = difflib.get_close_matches(name, COLUMNS, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else f"; allowed: {', '.join(COLUMNS)}"
    return f"unknown {kind}{hint}"
