"""Reading annotations made in another tool (long format, JSONL or CSV): pure Python, no Django.

One row is one rating: ``item, model, prompt, response, rater, field, value`` and optionally
``adjudicated`` (the gold value of that item and field), ``category``, ``expected_behaviour`` and
``prompt_id``. A value listed in the rules' ``missing_values`` (or the field's declared missing
option) is a rating left empty, not an error. The
format is documented in docs/annotation.md. Every problem is reported with its file, line and
field, and nothing is imported while any remains (the query import's rule and error types).
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass

from annotations.rubric_schema import FieldSpec

# The same text decoding and CSV/JSONL reading rules as every import (core.imports).
from core.imports import ImportProblem, ImportRejected, csv_rows, decode, jsonl_records

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

__all__ = ["AnnotationImportRejected", "ImportProblem", "ImportRow", "ImportRules", "read_annotation_files"]


class AnnotationImportRejected(ImportRejected):
    """Raised with every problem found; the query import's rejection shares the base."""


@dataclass(frozen=True)
class ImportRules:
    fields: Mapping[str, FieldSpec]
    category_exists: Callable[[str], bool]
    expected_choices: Collection[str] = ()
    # Cell values that mean "not rated" (a judge's prose, "n/a"): compared after stripping.
    missing_values: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ImportRow:
    file: str
    line: int
    item: str
    model: str
    prompt: str
    prompt_id: str
    response: str
    rater: str
    field: str
    value: object | None  # canonical; None: the rater left this field empty
    adjudicated: object | None
    category: str | None
    expected_behaviour: str | None = None


def prompt_key(prompt: str) -> str:
    """The id of a prompt that came without one: stable across files and re-exports."""
    return "sha256-" + hashlib.sha256(prompt.strip().encode()).hexdigest()[:24]


def read_annotation_files(
    files: Sequence[tuple[str, bytes]], file_format: str, *, rules: ImportRules
) -> list[ImportRow]:
    """Every checked row of every file, or ``AnnotationImportRejected`` listing all problems."""
    if file_format not in FORMATS:
        raise ValueError(f"Unknown import format {file_format!r}; expected one of {', '.join(FORMATS)}.")
    if not files:
        raise ValueError("No files to import.")
    problems: list[ImportProblem] = []
    rows: list[ImportRow] = []
    for name, raw in files:
        text = decode(name, raw, problems)
        if text is None:
            continue
        records = (
            jsonl_records(name, text, problems)
            if file_format == "jsonl"
            else _csv_records(name, text, problems)
        )
        found = False
        for line, record in records:
            found = True
            row = _check(name, line, record, from_csv=file_format == "csv", rules=rules, problems=problems)
            if row is not None:
                rows.append(row)
        if not found and not any(p.file == name for p in problems):
            problems.append(ImportProblem(name, None, None, "the file holds no ratings"))
    problems.extend(_consistency_problems(rows))
    if problems:
        order = {name: index for index, (name, _) in enumerate(files)}
        problems.sort(key=lambda p: (order.get(p.file, 0), p.line or 0))
        raise AnnotationImportRejected(problems)
    return rows


def _csv_records(
    name: str, text: str, problems: list[ImportProblem]
) -> Iterator[tuple[int, Mapping[str, object]]]:
    lines = csv_rows(name, text, problems)
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
    for line, cells in lines:
        if len(cells) != len(columns):
            problems.append(
                ImportProblem(
                    name, line, None, f"the row has {len(cells)} cells but the header has {len(columns)}"
                )
            )
            continue
        yield line, dict(zip(columns, cells, strict=True))


def _check(
    name: str,
    line: int,
    record: Mapping[str, object],
    *,
    from_csv: bool,
    rules: ImportRules,
    problems: list[ImportProblem],
) -> ImportRow | None:
    before = len(problems)

    def problem(field_name: str | None, message: str) -> None:
        problems.append(ImportProblem(name, line, field_name, message))

    if not _COLUMN_SET.issuperset(record):
        for key in record:
            if key not in _COLUMN_SET:
                problem(key, _unknown(key, "field"))
    text: dict[str, str] = {}
    for key in _TEXT_KEYS:
        value = record.get(key)
        if value is None:
            if key in _REQUIRED_SET:
                problem(key, "required field is missing")
            continue
        if type(value) is not str:
            if isinstance(value, int) and not isinstance(value, bool) and key in _ID_KEYS:
                value = str(value)  # numeric ids are common in other tools' exports
            else:
                problem(key, "must be a string")
                continue
        if "\x00" in value:
            problem(key, "contains a NUL character, which cannot be stored")
            continue
        kept = value if key in _VERBATIM_KEYS else value.strip()
        text[key] = kept
        # isspace, not strip: a long prompt or response is scanned, never copied.
        if key in _REQUIRED_SET and key != "response" and (not kept or kept.isspace()):
            problem(key, "required field is empty")
        limit = MAX_LENGTHS.get(key)
        if limit is not None and len(kept) > limit:
            problem(key, f"longer than {limit} characters")
    if "value" not in record:
        problem("value", "required field is missing")

    spec = rules.fields.get(text.get("field", ""))
    if text.get("field") and spec is None:
        close = difflib.get_close_matches(text["field"], list(rules.fields), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else f"; the rubric has: {', '.join(rules.fields)}"
        problem("field", f"unknown rubric field {text['field']!r}{hint}")
    value = adjudicated = None
    if spec is not None:
        for key in ("value", "adjudicated"):
            raw = record.get(key)
            if from_csv and isinstance(raw, str) and not raw.strip():
                raw = None
            if isinstance(raw, str) and raw.strip() in rules.missing_values:
                raw = None
            try:
                parsed = spec.parse(raw)
            except ValueError as exc:
                # Prose where a label belongs (a judge's explanation) is often "not rated".
                prose = isinstance(raw, str) and " " in raw.strip() and any(c.isalpha() for c in raw)
                hint = " (list it in the missing values if it means 'not rated')" if prose else ""
                problem(key, f"{spec.name}: {exc}{hint}")
                continue
            if parsed is not None and spec.is_missing(parsed):
                parsed = None
            if key == "value":
                value = parsed
            else:
                adjudicated = parsed
    category = text.get("category") or None
    if category and not rules.category_exists(category):
        problem("category", f"unknown category {category!r}")
    expected = text.get("expected_behaviour") or None
    if expected and expected not in rules.expected_choices:
        problem("expected_behaviour", f"{expected!r} is not one of: {', '.join(rules.expected_choices)}")
    if len(problems) > before:
        return None
    return ImportRow(
        file=name,
        line=line,
        item=text["item"],
        model=text["model"],
        prompt=text["prompt"],
        prompt_id=text.get("prompt_id") or prompt_key(text["prompt"]),
        response=text.get("response", ""),
        rater=text["rater"],
        field=text["field"],
        value=value,
        adjudicated=adjudicated,
        category=category,
        expected_behaviour=expected,
    )


def _consistency_problems(rows: list[ImportRow]) -> Iterator[ImportProblem]:
    """An item is one response: its model, prompt and response must agree on every row; a rater
    rates a field of an item once; an item's adjudicated value of a field is given once."""
    first_of_item: dict[str, ImportRow] = {}
    first_rating: dict[tuple[str, str, str], ImportRow] = {}
    gold: dict[tuple[str, str], ImportRow] = {}
    prompt_of_id: dict[str, ImportRow] = {}
    for row in rows:
        earlier = first_of_item.setdefault(row.item, row)
        for key in ("model", "prompt", "response", "prompt_id", "category", "expected_behaviour"):
            if getattr(row, key) != getattr(earlier, key) and not (
                key in ("category", "expected_behaviour") and getattr(row, key) is None
            ):
                yield ImportProblem(
                    row.file,
                    row.line,
                    key,
                    f"item {row.item!r} has a different {key} on {earlier.file}, line {earlier.line}",
                )
        prior = prompt_of_id.setdefault(row.prompt_id, row)
        if prior.prompt != row.prompt:
            yield ImportProblem(
                row.file,
                row.line,
                "prompt_id",
                f"prompt id {row.prompt_id!r} has a different prompt on {prior.file}, line {prior.line}",
            )
        key3 = (row.item, row.rater, row.field)
        seen = first_rating.setdefault(key3, row)
        if seen is not row:
            yield ImportProblem(
                row.file,
                row.line,
                "rater",
                f"rater {row.rater!r} already rated {row.field!r} of item {row.item!r} "
                f"on {seen.file}, line {seen.line}",
            )
        if row.adjudicated is not None:
            given = gold.setdefault((row.item, row.field), row)
            if given.adjudicated != row.adjudicated or type(given.adjudicated) is not type(row.adjudicated):
                yield ImportProblem(
                    row.file,
                    row.line,
                    "adjudicated",
                    f"item {row.item!r} has another adjudicated {row.field!r} "
                    f"on {given.file}, line {given.line}",
                )


def _unknown(name: str, kind: str) -> str:
    close = difflib.get_close_matches(name, COLUMNS, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else f"; allowed: {', '.join(COLUMNS)}"
    return f"unknown {kind}{hint}"
