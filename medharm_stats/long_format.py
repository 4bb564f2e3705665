"""Reads released long-format ratings (CSV or JSONL: item, rater, value, optional field).

Rules (``docs/statistics.md``): one rating per row; ``item`` and ``rater`` are required and
compared as text; an empty ``value`` (or JSON ``null``) is a missing rating and is skipped;
rows without a field belong to the field named ``value``; a rater rating the same item twice in
one field is an error. Every error names the file, the line and the column or field at fault.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .ratings import RatingsError, RatingTable, canonical_value

DEFAULT_FIELD = "value"
REQUIRED = ("item", "rater", "value")


class LongFormatError(ValueError):
    """A file that cannot be read as ratings; the message names file, line and field."""

    def __init__(self, path: Path | str, message: str, *, line: int | None = None, field: str | None = None):
        where = str(path) if line is None else f"{path}, line {line}"
        if field is not None:
            where += f", {field}"
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class LongRecord:
    item: str
    rater: str
    value: object
    field: str
    line: int


def read_long_format(path: Path | str) -> dict[str, list[LongRecord]]:
    """Records grouped by field, fields in the order first seen."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise LongFormatError(path, "no such file") from None
    except UnicodeDecodeError as exc:
        raise LongFormatError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise LongFormatError(path, f"cannot read ({exc.strerror})") from None
    suffix = path.suffix.lower()
    if suffix in {".jsonl", ".ndjson", ".json"} or (suffix != ".csv" and text.lstrip().startswith("{")):
        records = _read_jsonl(path, text)
    else:
        records = _read_csv(path, text)
    if not any(r.value is not None for r in records):
        raise LongFormatError(path, "no ratings found")
    grouped: dict[str, list[LongRecord]] = {}
    seen: dict[tuple[str, str, str], int] = {}
    for record in records:
        key = (record.field, record.item, record.rater)
        if record.value is not None:
            if key in seen:
                raise LongFormatError(
                    path,
                    f"rater {record.rater!r} already rated item {record.item!r} on line {seen[key]}",
                    line=record.line,
                    field=f"field {record.field!r}",
                )
            seen[key] = record.line
        grouped.setdefault(record.field, []).append(record)
    return grouped


def _read_csv(path: Path, text: str) -> list[LongRecord]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [name.strip() for name in reader.fieldnames or []]
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        raise LongFormatError(
            path, f"missing column(s) {', '.join(missing)} (need item, rater, value; optional field)", line=1
        )
    reader.fieldnames = header
    has_field = "field" in header
    records = []
    try:
        for row in reader:
            line = reader.line_num
            if None in row:
                raise LongFormatError(path, "more values than columns", line=line)
            if all(not (v or "").strip() for v in row.values()):
                continue
            item = _text(path, line, "item", row["item"])
            rater = _text(path, line, "rater", row["rater"])
            field = _text(path, line, "field", row["field"]) if has_field else DEFAULT_FIELD
            value = row["value"]
            if value is None:
                raise LongFormatError(path, "fewer values than columns", line=line)
            records.append(LongRecord(item, rater, value if value.strip() else None, field, line))
    except csv.Error as exc:
        raise LongFormatError(path, f"not valid CSV ({exc})", line=reader.line_num) from None
    return records


def _read_jsonl(path: Path, text: str) -> list[LongRecord]:
    records = []
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise LongFormatError(path, f"not valid JSON ({exc.msg})", line=line) from None
        if not isinstance(row, dict):
            raise LongFormatError(path, "each line must be a JSON object", line=line)
        for name in REQUIRED:
            if name not in row:
                raise LongFormatError(path, f"no {name!r} key", line=line)
        item = _text(path, line, "item", row["item"])
        rater = _text(path, line, "rater", row["rater"])
        field = _text(path, line, "field", row["field"]) if "field" in row else DEFAULT_FIELD
        records.append(LongRecord(item, rater, _json_value(path, line, row["value"]), field, line))
    return records


def _text(path: Path, line: int, column: str, value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise LongFormatError(path, "must be text or a whole number", line=line, field=f"column {column!r}")
    text = str(value).strip()
    if not text:
        raise LongFormatError(path, "is empty", line=line, field=f"column {column!r}")
    return text


def _json_value(path: Path, line: int, value: object) -> object:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        raise LongFormatError(path, "is not a finite number", line=line, field="column 'value'")
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, int | float):
        return value
    raise LongFormatError(path, "must be a label or a number", line=line, field="column 'value'")


def table_for_field(
    path: Path | str, field: str, records: Sequence[LongRecord], categories: Sequence[str] | None
) -> RatingTable:
    """The rating table of one field; a value outside ``categories`` is an error at its line."""
    if categories is not None:
        declared = {canonical_value(c) for c in categories}
        for record in records:
            value = canonical_value(record.value)
            if value is not None and value not in declared:
                raise LongFormatError(
                    path,
                    f"value {record.value!r} is not among the declared categories",
                    line=record.line,
                    field=f"field {field!r}",
                )
    try:
        return RatingTable.from_records(((r.item, r.rater, r.value) for r in records), categories=categories)
    except RatingsError as exc:
        raise LongFormatError(path, str(exc), field=f"field {field!r}") from None
