"""Parsing and checking query files (JSONL, CSV, MedSafetyBench CSV): pure Python, no Django."""

import difflib
import re
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass

from core import strict_json
from core.csv_cells import restore
from core.imports import (
    ImportProblem,
    ImportRejected,
    csv_rows,
    decode,
    jsonl_records,
)
from core.imports import json_type as _json_type

FORMATS = ("jsonl", "csv", "medsafetybench")

# The import schema, in the column order the exporter writes.
FIELDS = (
    "external_id",
    "text",
    "category",
    "expected_behaviour",
    "severity",
    "status",
    "source",
    "notes",
    "metadata",
)
REQUIRED_FIELDS = ("external_id", "text", "category")
CHOICE_FIELDS = ("expected_behaviour", "severity", "status")
DEFAULT_SOURCE = "import"

MEDSAFETYBENCH_SOURCE = "medsafetybench"
MEDSAFETYBENCH_TAXONOMY = "ama-principles"
MEDSAFETYBENCH_COLUMNS = ("", "harmful_medical_request", "safe_response")
MEDSAFETYBENCH_FILE_NAME = re.compile(
    r"^(?P<split>test)_(?P<generator>[a-z0-9]+)_category_(?P<number>[0-9]+)\.csv$"
)

_SLUG = re.compile(r"^[-a-zA-Z0-9_]+$")


class QueryImportRejected(ImportRejected):
    """A query import refused; see ``core.imports.ImportRejected``."""


@dataclass(frozen=True)
class CategoryAtPosition:
    """A category named by its place in a taxonomy: MedSafetyBench files say "category_N", not a slug."""

    taxonomy: str
    position: int

    def __str__(self) -> str:
        return f"category {self.position} of taxonomy {self.taxonomy!r}"


CategoryRef = str | CategoryAtPosition


@dataclass(frozen=True)
class RowRules:
    """What a row is checked against. The caller takes these from the model, so they are stated once."""

    choices: Mapping[str, Collection[str]]
    max_lengths: Mapping[str, int]
    category_exists: Callable[[CategoryRef], bool]


@dataclass(frozen=True)
class QueryRow:
    """One checked row. ``None`` in an optional field means the row did not give it: a new query
    gets the default, an existing one keeps its value (so a re-import never wipes clinicians' labels).
    """

    file: str
    line: int
    source_row: int
    source: str
    external_id: str
    text: str
    category: CategoryRef
    expected_behaviour: str | None = None
    severity: str | None = None
    status: str | None = None
    notes: str | None = None
    metadata: dict[str, object] | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.source, self.external_id)


def read_query_files(
    files: Sequence[tuple[str, bytes]], file_format: str, *, rules: RowRules
) -> list[QueryRow]:
    """Check every row of every file and return them all, or raise ``QueryImportRejected`` listing
    every problem found (not only the first)."""
    if file_format not in FORMATS:
        raise ValueError(f"Unknown import format {file_format!r}; expected one of {', '.join(FORMATS)}.")
    if not files:
        raise ValueError("No files to import.")
    problems: list[ImportProblem] = []
    rows: list[QueryRow] = []
    for name, raw in files:
        reader = _read_medsafetybench if file_format == "medsafetybench" else _read_schema_file
        rows.extend(reader(name, raw, file_format, rules, problems))
    problems.extend(_duplicate_problems(rows))
    if problems:
        order = {name: index for index, (name, _) in enumerate(files)}
        problems.sort(key=lambda p: (order.get(p.file, 0), p.line or 0))
        raise QueryImportRejected(problems)
    return rows


# --- decoding -------------------------------------------------------------------------------------


# --- JSONL and CSV in the import schema -----------------------------------------------------------


def _read_schema_file(
    name: str, raw: bytes, file_format: str, rules: RowRules, problems: list[ImportProblem]
) -> Iterator[QueryRow]:
    text = decode(name, raw, problems)
    if text is None:
        return
    records = (
        jsonl_records(name, text, problems) if file_format == "jsonl" else _csv_records(name, text, problems)
    )
    for line, record in records:
        row = _check_record(name, line, record, from_csv=file_format == "csv", rules=rules, problems=problems)
        if row is not None:
            yield row


def _csv_records(
    name: str, text: str, problems: list[ImportProblem]
) -> Iterator[tuple[int, Mapping[str, object]]]:
    lines = csv_rows(name, text, problems)
    header_line, header = next(lines, (1, []))
    columns = [column.strip() for column in header]
    header_problems = _header_problems(name, header_line, columns)
    if header_problems:
        # Rows cannot be read against a wrong header; the header problems say what to fix.
        problems.extend(header_problems)
        return
    before = len(problems)
    found = False
    for line, cells in lines:
        found = True
        if len(cells) != len(columns):
            problems.append(
                ImportProblem(
                    name, line, None, f"the row has {len(cells)} cells but the header has {len(columns)}"
                )
            )
            continue
        # A cell our CSV export protected from spreadsheets ("'=...") comes back as it was.
        yield line, dict(zip(columns, [restore(cell) for cell in cells], strict=True))
    if not found and len(problems) == before:  # an unreadable row is not an empty file
        problems.append(ImportProblem(name, None, None, "the file is empty: a header row but no queries"))


def _header_problems(name: str, line: int, columns: list[str]) -> list[ImportProblem]:
    problems = []
    seen: set[str] = set()
    for position, column in enumerate(columns, start=1):
        if not column:
            problems.append(ImportProblem(name, line, None, f"column {position} of the header has no name"))
        elif column in seen:
            problems.append(ImportProblem(name, line, column, "the column appears twice in the header"))
        elif column not in FIELDS:
            problems.append(ImportProblem(name, line, column, _unknown_field_message(column, "column")))
        seen.add(column)
    problems.extend(
        ImportProblem(name, line, required, "required column is missing from the header")
        for required in REQUIRED_FIELDS
        if required not in seen
    )
    return problems


def _check_record(
    name: str,
    line: int,
    record: Mapping[str, object],
    *,
    from_csv: bool,
    rules: RowRules,
    problems: list[ImportProblem],
) -> QueryRow | None:
    before = len(problems)

    def problem(field_name: str | None, message: str) -> None:
        problems.append(ImportProblem(name, line, field_name, message))

    for key in record:
        if key not in FIELDS:
            problem(key, _unknown_field_message(key, "field"))

    strings: dict[str, str | None] = {}
    for key in FIELDS:
        if key == "metadata":
            continue
        value = record.get(key)
        strings[key] = None
        if value is None:
            if key in REQUIRED_FIELDS:
                problem(key, "required field is missing")
        elif isinstance(value, str):
            strings[key] = value
            if key in REQUIRED_FIELDS and not value.strip():
                problem(key, "required field is empty")
            if "\x00" in value:
                problem(key, "contains a NUL character, which cannot be stored")
        elif key == "external_id" and isinstance(value, int) and not isinstance(value, bool):
            strings[key] = str(value)  # numeric ids are common in JSONL exports of other tools
        else:
            problem(key, f"must be a string, not {_json_type(value)}")

    external_id = (strings["external_id"] or "").strip()
    text = strings["text"] or ""
    category = (strings["category"] or "").strip()
    if external_id and len(external_id) > rules.max_lengths["external_id"]:
        problem("external_id", f"longer than {rules.max_lengths['external_id']} characters")
    if category and not rules.category_exists(category):
        problem("category", f"unknown category {category!r}")

    source = (strings["source"] or "").strip() or DEFAULT_SOURCE
    if not _SLUG.match(source):
        problem("source", f"{source!r} is not a slug (letters, digits, '-' and '_' only)")
    elif len(source) > rules.max_lengths["source"]:
        problem("source", f"longer than {rules.max_lengths['source']} characters")

    chosen: dict[str, str | None] = {}
    for key in CHOICE_FIELDS:
        value = (strings[key] or "").strip().lower()
        chosen[key] = value or None
        if value and value not in rules.choices[key]:
            problem(key, f"{value!r} is not one of: {', '.join(rules.choices[key])}")

    notes = strings["notes"] or None
    metadata = _metadata(record.get("metadata"), from_csv=from_csv, problem=problem)

    if len(problems) > before:
        return None
    return QueryRow(
        file=name,
        line=line,
        source_row=line,
        source=source,
        external_id=external_id,
        text=text,
        category=category,
        expected_behaviour=chosen["expected_behaviour"],
        severity=chosen["severity"],
        status=chosen["status"],
        notes=notes,
        metadata=metadata,
    )


def _metadata(
    value: object, *, from_csv: bool, problem: Callable[[str | None, str], None]
) -> dict[str, object] | None:
    if from_csv and isinstance(value, str):
        if not value.strip():
            return None
        try:
            value = strict_json.loads(value)
        except strict_json.StrictJSONError as exc:
            problem("metadata", f"the cell is not valid JSON: {exc.message.split(' at line ')[0]}")
            return None
    if value is None:
        return None
    if not isinstance(value, dict):
        problem("metadata", f"must be a JSON object, not {_json_type(value)}")
        return None
    if _holds_nul(value):
        problem("metadata", "contains a NUL character, which cannot be stored")
        return None
    return value


# --- MedSafetyBench preset ------------------------------------------------------------------------


def _read_medsafetybench(
    name: str, raw: bytes, file_format: str, rules: RowRules, problems: list[ImportProblem]
) -> Iterator[QueryRow]:
    match = MEDSAFETYBENCH_FILE_NAME.match(name)
    category: CategoryAtPosition | None = None
    if match is None:
        problems.append(
            ImportProblem(
                name,
                None,
                None,
                "the file name does not match the MedSafetyBench pattern test_<generator>_category_<N>.csv",
            )
        )
    else:
        category = CategoryAtPosition(MEDSAFETYBENCH_TAXONOMY, int(match["number"]))
        if not rules.category_exists(category):
            problems.append(ImportProblem(name, None, None, f"no {category} for this file"))
            category = None
    text = decode(name, raw, problems)
    if text is None:
        return
    lines = csv_rows(name, text, problems)
    header_line, header = next(lines, (1, []))
    if tuple(column.strip() for column in header) != MEDSAFETYBENCH_COLUMNS:
        found = ", ".join(repr(column) for column in header)
        problems.append(
            ImportProblem(
                name,
                header_line,
                None,
                "MedSafetyBench files have the columns (index), harmful_medical_request, safe_response; "
                f"this one has {found}",
            )
        )
        return
    before = len(problems)
    found_rows = False
    for line, cells in lines:
        found_rows = True
        row = _check_medsafetybench_row(name, line, cells, match, category, rules, problems)
        if row is not None:
            yield row
    if not found_rows and len(problems) == before:
        problems.append(ImportProblem(name, None, None, "the file is empty: a header row but no queries"))


def _check_medsafetybench_row(
    name: str,
    line: int,
    cells: list[str],
    match: re.Match[str] | None,
    category: CategoryAtPosition | None,
    rules: RowRules,
    problems: list[ImportProblem],
) -> QueryRow | None:
    if len(cells) != len(MEDSAFETYBENCH_COLUMNS):
        problems.append(
            ImportProblem(name, line, None, f"the row has {len(cells)} cells but the header has 3")
        )
        return None
    index_cell, request, safe_response = cells
    before = len(problems)
    if not index_cell.strip().isdigit():
        problems.append(
            ImportProblem(name, line, "index", f"{index_cell!r} is not a row index (0, 1, 2, ...)")
        )
    if not request.strip():
        problems.append(ImportProblem(name, line, "harmful_medical_request", "required field is empty"))
    for column, value in (("harmful_medical_request", request), ("safe_response", safe_response)):
        if "\x00" in value:
            problems.append(
                ImportProblem(name, line, column, "contains a NUL character, which cannot be stored")
            )
    if len(problems) > before or match is None or category is None:
        return None
    index = int(index_cell)
    generator = match["generator"]
    return QueryRow(
        file=name,
        line=line,
        source_row=index,
        source=MEDSAFETYBENCH_SOURCE,
        external_id=f"{generator}-c{category.position}-{index}",
        text=request,
        category=category,
        metadata={
            "safe_response": safe_response,
            "split": match["split"],
            "generator": generator,
            "ama_principle": category.position,
        },
    )


# --- across files ---------------------------------------------------------------------------------


def _duplicate_problems(rows: list[QueryRow]) -> Iterator[ImportProblem]:
    first: dict[tuple[str, str], QueryRow] = {}
    for row in rows:
        earlier = first.setdefault(row.key, row)
        if earlier is not row:
            yield ImportProblem(
                row.file,
                row.line,
                "external_id",
                f"duplicate external id {row.external_id!r} for source {row.source!r} "
                f"(first in {earlier.file}, line {earlier.line})",
            )


def _unknown_field_message(name: str, kind: str) -> str:
    close = difflib.get_close_matches(name, FIELDS, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else f"; allowed: {', '.join(FIELDS)}"
    return f"unknown {kind}{hint}"


def _holds_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False


# --- taxonomy files -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CategorySpec:
    slug: str
    name: str
    description: str = ""


@dataclass(frozen=True)
class TaxonomySpec:
    """A taxonomy as a file gives it: its categories in the order they are shown."""

    file: str
    slug: str
    name: str
    description: str
    categories: tuple[CategorySpec, ...]


def read_taxonomy_file(name: str, raw: bytes) -> TaxonomySpec:
    """A JSON object ``{"slug", "name", "description"?, "categories": [{"slug", "name",
    "description"?}, ...]}``, or ``QueryImportRejected`` listing every problem."""
    problems: list[ImportProblem] = []
    text = decode(name, raw, problems)
    data: object = None
    if text is not None:
        try:
            data = strict_json.loads(text)
        except strict_json.StrictJSONError as exc:
            problems.append(ImportProblem(name, None, exc.field, f"invalid JSON: {exc.message}"))
    if not problems and not isinstance(data, dict):
        problems.append(ImportProblem(name, None, None, f"must be a JSON object, not {_json_type(data)}"))
    if problems:
        raise QueryImportRejected(problems)
    assert isinstance(data, dict)

    def text_of(record: Mapping[str, object], key: str, where: str, *, required: bool, slug: bool) -> str:
        value = record.get(key, "")
        if not isinstance(value, str):
            problems.append(ImportProblem(name, None, f"{where}{key}", "must be a string"))
            return ""
        value = value.strip()
        if required and not value:
            problems.append(ImportProblem(name, None, f"{where}{key}", "required field is empty or missing"))
        elif slug and value and not _SLUG.match(value):
            problems.append(
                ImportProblem(name, None, f"{where}{key}", "a slug holds only letters, digits, - and _")
            )
        return value

    for key in data:
        if key not in ("slug", "name", "description", "categories"):
            problems.append(
                ImportProblem(name, None, key, "unknown field; allowed: slug, name, description, categories")
            )
    slug = text_of(data, "slug", "", required=True, slug=True)
    title = text_of(data, "name", "", required=True, slug=False)
    description = text_of(data, "description", "", required=False, slug=False)
    raw_categories = data.get("categories")
    categories: list[CategorySpec] = []
    if not isinstance(raw_categories, list) or not raw_categories:
        problems.append(ImportProblem(name, None, "categories", "must be a non-empty list of categories"))
        raw_categories = []
    seen: set[str] = set()
    for position, record in enumerate(raw_categories):
        where = f"categories[{position}]."
        if not isinstance(record, dict):
            problems.append(ImportProblem(name, None, where[:-1], "must be an object with slug and name"))
            continue
        category_slug = text_of(record, "slug", where, required=True, slug=True)
        if category_slug in seen:
            problems.append(ImportProblem(name, None, f"{where}slug", f"{category_slug!r} appears twice"))
        seen.add(category_slug)
        categories.append(
            CategorySpec(
                slug=category_slug,
                name=text_of(record, "name", where, required=True, slug=False),
                description=text_of(record, "description", where, required=False, slug=False),
            )
        )
    if problems:
        raise QueryImportRejected(problems)
    return TaxonomySpec(
        file=name, slug=slug, name=title, description=description, categories=tuple(categories)
    )
