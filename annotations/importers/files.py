"""The files of an annotation import: opened, spooled when they cannot seek, read twice (the
second reading refused when the bytes changed), as JSONL or CSV records."""

from __future__ import annotations

import codecs
import io
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import IO

import orjson

from annotations.importers.rules import (
    BOM,
    CHUNK,
    COLUMNS,
    EXACT_FLOAT,
    REQUIRED,
    AnnotationImportRejected,
    Digest,
    unknown_name,
)

# The same text decoding and CSV/JSONL reading rules as every import (core.imports).
from core.imports import ImportProblem, csv_rows, decode, jsonl_record, jsonl_records

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
            shutil.copyfileobj(content, stream, CHUNK)
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


def is_plain_text(source: Source) -> bool:
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
        while chunk := stream.read(CHUNK):
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
    source: Source, digest: Digest, problems: list[ImportProblem]
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
        if number == 1 and line.startswith(BOM):
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
            if not -EXACT_FLOAT < inner < EXACT_FLOAT:  # type: ignore[operator]
                return False
        elif kind is dict or kind is list:
            return False
    colons = line.count(b":")
    if colons == len(value):
        return True
    return colons == len(value) + sum(inner.count(":") for inner in value.values() if type(inner) is str)


def _jsonl_again(
    source: Source, digest: Digest, problems: list[ImportProblem]
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
        if number == 1 and line.startswith(BOM):
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


def _csv_lines(source: Source, digest: Digest) -> Iterator[str]:
    update = digest.update
    first = True
    for line in source.stream:
        update(line)
        if first:
            line, first = line.removeprefix(BOM), False
        try:
            yield line.decode()
        except UnicodeDecodeError:
            raise FileChanged(source.name) from None


def read_records(
    source: Source,
    file_format: str,
    digest: Digest,
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
            header_problems.append(ImportProblem(name, header_line, column, unknown_name(column, "column")))
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
