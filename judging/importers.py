"""Reading judge labels produced outside the platform (CSV or JSONL). Pure module: no Django.

One row is one judge value: ``judge``, ``field``, ``value`` and either ``response`` (a collected
response's id) or ``item`` (a campaign item's id), optionally ``raw_output``. An empty value (JSON
``null`` or an empty CSV cell) records a parse failure of that judge on that response. Every
problem is reported with file, line and field; nothing is imported while any remains (the query
import's reading primitives and error types, ``querybank.importers``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from judging.parsers import AUDIT_FIELDS, valid_value
from querybank.importers import ImportProblem, QueryImportRejected, csv_rows, decode, jsonl_records

FORMATS = ("csv", "jsonl")
COLUMNS = ("judge", "response", "item", "field", "value", "raw_output")
MAX_JUDGE_NAME = 120

__all__ = ["ExternalLabelRow", "JudgeImportRejected", "read_judge_label_file"]


class JudgeImportRejected(QueryImportRejected):
    """Raised with every problem found."""


@dataclass(frozen=True)
class ExternalLabelRow:
    file: str
    line: int
    judge: str
    response: int | None
    item: int | None
    field: str
    value: Any  # None: a parse failure
    raw_output: str


def _csv_value(field: str, text: str) -> Any:
    text = text.strip()
    if text == "":
        return None
    spec = AUDIT_FIELDS[field]
    if spec.categories and isinstance(spec.categories[0], bool):
        lowered = text.lower()
        if lowered in ("true", "yes", "1"):
            return True
        if lowered in ("false", "no", "0"):
            return False
        return text
    if spec.categories and isinstance(spec.categories[0], int):
        try:
            return int(text)
        except ValueError:
            return text
    return text


def _records(
    name: str, text: str, file_format: str, problems: list[ImportProblem]
) -> Iterator[tuple[int, Mapping[str, Any]]]:
    if file_format == "jsonl":
        yield from jsonl_records(name, text, problems)
        return
    lines = csv_rows(name, text, problems)
    header_line, header = next(lines, (1, []))
    columns = [c.strip() for c in header]
    unknown = [c for c in columns if c not in COLUMNS]
    for column in unknown:
        problems.append(
            ImportProblem(name, header_line, column, f"unknown column (expected {', '.join(COLUMNS)})")
        )
    for required in ("judge", "field", "value"):
        if required not in columns:
            problems.append(
                ImportProblem(name, header_line, required, "required column is missing from the header")
            )
    if "response" not in columns and "item" not in columns:
        problems.append(
            ImportProblem(name, header_line, "response", "the header needs a response or an item column")
        )
    if unknown or any(p.line == header_line and p.file == name for p in problems):
        return
    for line, cells in lines:
        if len(cells) != len(columns):
            problems.append(
                ImportProblem(
                    name, line, None, f"the row has {len(cells)} cells but the header has {len(columns)}"
                )
            )
            continue
        yield line, {**dict(zip(columns, cells, strict=True)), "__csv__": True}


def _reference(
    name: str, line: int, record: Mapping[str, Any], key: str, problems: list[ImportProblem]
) -> int | None:
    raw = record.get(key)
    if raw in (None, ""):
        return None
    if isinstance(raw, bool):
        problems.append(ImportProblem(name, line, key, "must be a whole number (an id)"))
        return None
    try:
        number = int(str(raw).strip())
    except ValueError:
        problems.append(
            ImportProblem(name, line, key, f"must be a whole number (an id), not {str(raw)[:40]!r}")
        )
        return None
    if number < 1:
        problems.append(ImportProblem(name, line, key, "must be a positive id"))
        return None
    return number


def read_judge_label_file(name: str, raw: bytes, file_format: str) -> list[ExternalLabelRow]:
    """Every checked row of the file, or ``JudgeImportRejected`` listing all problems."""
    if file_format not in FORMATS:
        raise ValueError(f"Unknown import format {file_format!r}; expected one of {', '.join(FORMATS)}.")
    problems: list[ImportProblem] = []
    rows: list[ExternalLabelRow] = []
    text = decode(name, raw, problems)
    if text is not None:
        for line, record in _records(name, text, file_format, problems):
            from_csv = bool(record.get("__csv__"))
            extra = sorted(set(record) - set(COLUMNS) - {"__csv__"})
            for key in extra:
                problems.append(
                    ImportProblem(name, line, key, f"unknown key (expected {', '.join(COLUMNS)})")
                )
            judge = str(record.get("judge") or "").strip()
            if not judge:
                problems.append(ImportProblem(name, line, "judge", "required: the judge's name"))
            elif len(judge) > MAX_JUDGE_NAME:
                problems.append(
                    ImportProblem(name, line, "judge", f"longer than {MAX_JUDGE_NAME} characters")
                )
            response = _reference(name, line, record, "response", problems)
            item = _reference(name, line, record, "item", problems)
            if (
                response is None
                and item is None
                and not any(p.line == line and p.field in ("response", "item") for p in problems)
            ):
                problems.append(ImportProblem(name, line, "response", "give a response id or an item id"))
            if response is not None and item is not None:
                problems.append(
                    ImportProblem(name, line, "item", "give a response id or an item id, not both")
                )
            field = str(record.get("field") or "").strip()
            if field not in AUDIT_FIELDS:
                problems.append(
                    ImportProblem(
                        name, line, "field", f"unknown field {field!r} (one of {', '.join(AUDIT_FIELDS)})"
                    )
                )
                continue
            if "value" not in record:
                problems.append(ImportProblem(name, line, "value", "required (null for a parse failure)"))
                continue
            value = _csv_value(field, str(record["value"])) if from_csv else record["value"]
            if value is not None and not valid_value(field, value):
                allowed = ", ".join(repr(c) for c in AUDIT_FIELDS[field].categories)
                problems.append(
                    ImportProblem(name, line, "value", f"{record['value']!r} is not one of {allowed}")
                )
                continue
            raw_output = record.get("raw_output") or ""
            if not isinstance(raw_output, str):
                problems.append(ImportProblem(name, line, "raw_output", "must be text"))
                continue
            rows.append(ExternalLabelRow(name, line, judge, response, item, field, value, raw_output))
        if not rows and not problems:
            problems.append(ImportProblem(name, None, None, "the file holds no labels"))
        judges = sorted({row.judge for row in rows})
        if len(judges) > 1:
            problems.append(
                ImportProblem(name, None, "judge", f"one judge per file; found {', '.join(judges)}")
            )
    if problems:
        raise JudgeImportRejected(problems)
    return rows
