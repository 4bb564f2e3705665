"""What every file import shares (queries, annotations, judge labels): the problem record, the
rejection types, the size limit, and the text, JSON Lines and CSV readers. Pure Python apart from
the one setting the size limit reads."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from core import strict_json


@dataclass(frozen=True)
class ImportProblem:
    file: str
    line: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = self.file + (f", line {self.line}" if self.line is not None else "")
        return f"{where}" + (f", field {self.field!r}" if self.field else "") + f": {self.message}"


class ImportRejected(Exception):  # noqa: N818 - an outcome callers catch, named for what it means
    """An import refused with every problem found (file, line, field); nothing was written."""

    def __init__(self, problems: list[ImportProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class ImportTooLarge(ImportRejected):
    """The files of an import are over the size limit: refused before any of them is read."""


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def size_check(sizes: Sequence[tuple[str, int]], max_bytes: int) -> None:
    """Raise ``ImportTooLarge`` when one file, or all of them together, exceed ``max_bytes``: the one
    limit of every import (query and annotation files; page, API, command line)."""
    limit = _megabytes(max_bytes)
    problems = [
        ImportProblem(name, None, None, f"the file is {_megabytes(size)}; the limit is {limit} per import")
        for name, size in sizes
        if size > max_bytes
    ]
    total = sum(size for _, size in sizes)
    if not problems and total > max_bytes:
        problems.append(
            ImportProblem(
                sizes[-1][0], None, None, f"the files are {_megabytes(total)} together; the limit is {limit}"
            )
        )
    if problems:
        raise ImportTooLarge(problems)


def import_size_check(*, sizes: Sequence[tuple[str, int]]) -> None:
    """The one size limit of every import (queries and annotations; page, API, command line):
    raises ``ImportTooLarge`` naming the file before anything is read or parsed."""
    from django.conf import settings

    size_check(sizes, int(settings.IMPORT_MAX_BYTES))


# --- decoding -------------------------------------------------------------------------------------


def decode(name: str, raw: bytes, problems: list[ImportProblem]) -> str | None:
    """The file's text (a UTF-8 BOM is dropped), or ``None`` when there is nothing to read."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        problems.append(ImportProblem(name, None, None, "the file is UTF-16; save it as UTF-8"))
        return None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Report every undecodable line, then read on with replacement characters so that the
        # other lines are still checked. No UTF-8 sequence contains b"\n", so splitting is safe.
        for number, chunk in enumerate(raw.split(b"\n"), start=1):
            try:
                chunk.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                problems.append(
                    ImportProblem(
                        name,
                        number,
                        None,
                        f"not UTF-8 text (byte 0x{chunk[exc.start]:02x} at column {exc.start + 1}); "
                        "save the file as UTF-8",
                    )
                )
        text = raw.decode("utf-8-sig", errors="replace")
    if not text.strip():
        problems.append(ImportProblem(name, None, None, "the file is empty"))
        return None
    return text


# --- records ---------------------------------------------------------------------------------------


def jsonl_records(
    name: str, text: str, problems: list[ImportProblem]
) -> Iterator[tuple[int, Mapping[str, object]]]:
    # split("\n"), not splitlines(): JSON strings may hold U+2028 and other line breaks verbatim.
    for number, line in enumerate(text.split("\n"), start=1):
        record = jsonl_record(name, number, line, problems)
        if record is not None:
            yield number, record


def jsonl_record(
    name: str, number: int, line: str, problems: list[ImportProblem]
) -> Mapping[str, object] | None:
    """The object on one line (``None``: a blank line, or a problem recorded), by the rules of
    ``jsonl_records``; a streaming reader calls it for the lines its fast path does not take."""
    if not line.strip():
        return None
    try:
        # Duplicate keys, NaN, deep nesting, NUL and lone surrogates are errors, not last-wins.
        value = strict_json.loads(line)
    except strict_json.StrictJSONError as exc:
        detail = exc.message.replace(" at line 1 column ", " at column ")
        # Text that cannot be stored is a problem of the field, not of the JSON syntax.
        unstorable = detail.startswith(("contains", "a key contains"))
        message = detail if unstorable else f"invalid JSON: {detail}"
        problems.append(ImportProblem(name, number, exc.field, message))
        return None
    if not isinstance(value, dict):
        problems.append(
            ImportProblem(name, number, None, f"each line must be a JSON object, not {json_type(value)}")
        )
        return None
    return value


# The csv module refuses cells over 128 KB by default; a cell is bounded by the file size limit
# instead, as a JSONL string is, so both formats take the same files.
CSV_FIELD_LIMIT = 2**31 - 1


def csv_rows(
    name: str, text: str | Iterable[str], problems: list[ImportProblem]
) -> Iterator[tuple[int, list[str]]]:
    """Non-blank CSV records with the line each starts on (a quoted cell may span lines). ``text``
    is the file's text, or its lines with their line ends (a streaming reader's)."""
    if csv.field_size_limit() < CSV_FIELD_LIMIT:
        csv.field_size_limit(CSV_FIELD_LIMIT)
    reader = csv.reader(io.StringIO(text, newline="") if isinstance(text, str) else text)
    end_of_previous = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            problems.append(ImportProblem(name, reader.line_num, None, f"unreadable CSV: {exc}"))
            return
        start = end_of_previous + 1
        end_of_previous = reader.line_num
        if cells and any(cell.strip() for cell in cells):
            yield start, cells


def json_type(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")
