"""Writing a release bundle: each table streamed batch by batch to Parquet, JSONL and CSV at once.

Files are written to a scratch directory, hashed while read back in chunks, and saved to Django's
default storage under ``releases/<slug>/v<version>/``. The Parquet files sit one directory per
table (``<tier>/parquet/<table>/<table>-00000.parquet``), the layout
``datasets.load_dataset("parquet", data_files={"train": ".../parquet/labels/*.parquet"})`` reads
(one table per call).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from django.core.files import File
from django.core.files.storage import Storage

from releases.arrow_values import null_scalar, string_scalar
from releases.tables import TableSpec

CROISSANT_CONTEXT = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}


@dataclass
class WrittenFile:
    tier: str
    name: str
    storage_name: str
    table: str
    file_format: str
    size: int
    sha256: str
    rows: int | None


def _neutralise(array: pa.Array) -> pa.Array:
    """Text starting with = + - @, a control character or an apostrophe gets a leading apostrophe
    (as ``core.csv_cells.neutralise`` does cell by cell)."""
    risky = pc.match_substring_regex(array, pattern=_RISKY_FIRST)
    if not pc.any(risky).as_py():
        return array
    quoted = pc.binary_join_element_wise(string_scalar("'"), array, string_scalar(""))
    return pc.if_else(risky, quoted, array)


# A pattern, not an array of the characters: building an Arrow array from a Python list loads
# pandas (see ``releases.arrow_values``).
_RISKY_FIRST = "^[=+\\-@\t\r\n']"


# JSON string escapes, as orjson writes them: the two that must be escaped, the five short forms,
# then \u00XX for the remaining control characters.
_JSON_ESCAPES = [
    ("\\", "\\\\"),
    ('"', '\\"'),
    ("\n", "\\n"),
    ("\r", "\\r"),
    ("\t", "\\t"),
    ("\b", "\\b"),
    ("\f", "\\f"),
]
_OTHER_CONTROLS = [chr(c) for c in range(0x20) if chr(c) not in "\n\r\t\b\f"]
# A byte search per character that may need escaping (re searches a buffer without copying it).
_FIND = {char: re.compile(re.escape(char.encode())) for char in ["\\", '"', *map(chr, range(0x20))]}


def _string_bytes(array: pa.Array) -> memoryview:
    """The UTF-8 bytes of every value of a string array, back to back (a null holds none): a view
    of the array's data buffer, not a copy."""
    if len(array) == 0:
        return memoryview(b"")
    _, offsets, data = array.buffers()
    if data is None:
        return memoryview(b"")
    bounds = memoryview(offsets).cast("i")  # a string array's offsets are int32
    return memoryview(data)[bounds[array.offset] : bounds[array.offset + len(array)]]


def _json_escaped(array: pa.Array) -> pa.Array:
    """Each string with JSON's escapes, not yet quoted (null stays null)."""
    # Which escapes are needed is found on the column's bytes at once (a byte search, and numpy's
    # minimum for control characters: far cheaper than a match per value, and no copy: Python
    # bytes that large would be glibc's to keep). Most columns (names, hashes, times) need none,
    # the JSON ones only the quote. No escaped character is part of a multi-byte UTF-8 sequence.
    text = _string_bytes(array)
    controls = len(text) > 0 and int(np.frombuffer(text, dtype=np.uint8).min()) < 0x20
    for raw, escaped in _JSON_ESCAPES:
        if (controls or raw in '\\"') and _FIND[raw].search(text):
            array = pc.replace_substring(array, raw, escaped)
    if controls:
        for char in _OTHER_CONTROLS:
            if _FIND[char].search(text):
                array = pc.replace_substring(array, char, f"\\u{ord(char):04x}")
    return array


def _json_text(array: pa.Array) -> pa.Array:
    """Each string as a JSON string literal (null as ``null``)."""
    quote = string_scalar('"')
    return pc.fill_null(
        pc.binary_join_element_wise(quote, _json_escaped(array), quote, string_scalar("")),
        string_scalar("null"),
    )


def _json_value(array: pa.Array) -> pa.Array:
    if pa.types.is_string(array.type):
        return _json_text(array)
    if pa.types.is_floating(array.type):
        # NaN and infinities are not JSON: null, as orjson writes them.
        array = pc.if_else(pc.is_finite(array), array, null_scalar(array.type))
        text = pc.cast(array, pa.string())
        # Arrow writes 1.0 as "1"; JSON readers would take it for an integer.
        whole = pc.and_(pc.invert(pc.match_substring_regex(text, "[.eE]")), pc.is_valid(text))
        text = pc.if_else(
            whole, pc.binary_join_element_wise(text, string_scalar(".0"), string_scalar("")), text
        )
        return pc.fill_null(text, string_scalar("null"))
    text = pc.cast(array, pa.string())
    return pc.fill_null(text, string_scalar("null")) if array.null_count else text


def _json_pieces(array: pa.Array) -> list[str | pa.Array]:
    """A column's values as JSON: literal text and arrays, to be joined row by row. A string
    column without nulls leaves its quotes to the literals around it (one join fewer)."""
    if pa.types.is_string(array.type) and array.null_count == 0:
        return ['"', _json_escaped(array), '"']
    return [_json_value(array)]


def jsonl_lines(batch: pa.RecordBatch) -> memoryview:
    """The batch as JSON Lines, built column by column in Arrow: one string array holding
    ``{"name": value, ...}\\n`` per row, whose data buffer is exactly the file's bytes."""
    if batch.num_rows == 0:
        return memoryview(b"")
    pieces: list[str | pa.Array] = []
    for index, name in enumerate(batch.schema.names):
        pieces.append(("{" if index == 0 else ",") + orjson.dumps(name).decode() + ":")
        pieces.extend(_json_pieces(batch.column(index)))
    pieces.append("}\n")
    parts: list[Any] = []
    for piece in pieces:  # adjacent literals become one
        if isinstance(piece, str) and parts and isinstance(parts[-1], str):
            parts[-1] += piece
        else:
            parts.append(piece)
    lines = pc.binary_join_element_wise(
        *(string_scalar(part) if isinstance(part, str) else part for part in parts), string_scalar("")
    )
    if isinstance(lines, pa.ChunkedArray):
        lines = lines.combine_chunks()
    _, offsets, data = lines.buffers()
    bounds = memoryview(offsets).cast("i")  # a string array's offsets are int32
    return memoryview(data)[bounds[lines.offset] : bounds[lines.offset + len(lines)]]


def _digest(path: Path) -> tuple[str, int]:
    sha = hashlib.sha256()
    size = 0
    # Read into one buffer, not a new bytes object per MiB (glibc would keep their memory).
    chunk = bytearray(1 << 20)
    view = memoryview(chunk)
    with path.open("rb") as fh:
        while count := fh.readinto(chunk):
            sha.update(view[:count])
            size += count
    return sha.hexdigest(), size


class _ScratchFile(File):
    """A finished scratch file. Django's FileSystemStorage moves a file that has a
    ``temporary_file_path`` into place (as it does an upload spooled to disk), a rename when the
    scratch directory is on the same file system, instead of copying it; other storages read it."""

    def __init__(self, file: Any, path: Path, name: str) -> None:
        super().__init__(file, name=name)
        self.path = path

    def temporary_file_path(self) -> str:
        return str(self.path)


class BundleWriter:
    def __init__(
        self, *, storage: Storage, prefix: str, batch_rows: int, on_rows: Callable[[int], None]
    ) -> None:
        self.storage = storage
        self.prefix = prefix.rstrip("/")
        self.batch_rows = batch_rows
        self.on_rows = on_rows
        self.scratch = tempfile.TemporaryDirectory(prefix="medharm-release-")
        self.files: list[WrittenFile] = []

    def close(self) -> None:
        self.scratch.cleanup()

    def _store(
        self,
        local: Path,
        *,
        tier: str,
        name: str,
        table: str,
        file_format: str,
        rows: int | None,
        digest: tuple[str, int] | None = None,
    ) -> WrittenFile:
        """Save ``local`` (then gone) under ``name``; ``digest``: its SHA-256 and size, if known."""
        sha, size = digest or _digest(local)
        with local.open("rb") as fh:
            stored = self.storage.save(f"{self.prefix}/{name}", _ScratchFile(fh, local, name=Path(name).name))
        local.unlink(missing_ok=True)
        written = WrittenFile(tier, name, stored, table, file_format, size, sha, rows)
        self.files.append(written)
        return written

    def write_table(self, spec: TableSpec, tiers: tuple[str, ...]) -> int:
        """Stream ``spec``'s batches once into Parquet, JSONL and CSV; store a copy per tier.

        Each batch is an Arrow record batch and stays columnar to the file: Parquet and CSV are
        written by Arrow (CSV text cells a spreadsheet would run are neutralised with Arrow
        compute), JSONL lines are assembled column-wise by Arrow compute too (``jsonl_lines``).
        """
        root = Path(self.scratch.name)
        parquet_path, jsonl_path, csv_path = (
            root / f"{spec.name}.{ext}" for ext in ("parquet", "jsonl", "csv")
        )
        text_columns = [i for i, c in enumerate(spec.columns) if c.kind == "text"]
        rows = 0
        with (
            pq.ParquetWriter(parquet_path, spec.schema, compression="zstd") as parquet,
            pa_csv.CSVWriter(str(csv_path), spec.schema) as csv_writer,
            jsonl_path.open("wb") as jsonl,
        ):
            for batch in spec.batches(self.batch_rows):
                parquet.write_batch(batch, row_group_size=self.batch_rows)
                arrays = list(batch.columns)
                for index in text_columns:
                    arrays[index] = _neutralise(arrays[index])
                csv_writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=spec.schema))
                jsonl.write(jsonl_lines(batch))
                rows += batch.num_rows
                self.on_rows(batch.num_rows)
        # Each file is hashed once; every tier but the last stores a copy, the last the file itself.
        digests = {path: _digest(path) for path in (parquet_path, jsonl_path, csv_path)}
        for index, tier in enumerate(tiers):
            for path, fmt, name in (
                (parquet_path, "parquet", f"{tier}/parquet/{spec.name}/{spec.name}-00000.parquet"),
                (jsonl_path, "jsonl", f"{tier}/jsonl/{spec.name}.jsonl"),
                (csv_path, "csv", f"{tier}/csv/{spec.name}.csv"),
            ):
                local = path
                if index < len(tiers) - 1:
                    local = path.with_suffix(f".{tier}{path.suffix}")
                    shutil.copyfile(path, local)
                self._store(
                    local,
                    tier=tier,
                    name=name,
                    table=spec.name,
                    file_format=fmt,
                    rows=rows,
                    digest=digests[path],
                )
        for path in (parquet_path, jsonl_path, csv_path):
            path.unlink(missing_ok=True)
        return rows

    def write_text(self, *, tier: str, name: str, text: str, file_format: str) -> WrittenFile:
        local = Path(self.scratch.name) / f"doc-{len(self.files)}"
        local.write_text(text, encoding="utf-8")
        return self._store(local, tier=tier, name=name, table="", file_format=file_format, rows=None)


def croissant(
    *,
    name: str,
    description: str,
    version: str,
    license_text: str,
    url: str,
    files: list[WrittenFile],
    specs: list[TableSpec],
    tier: str,
    date_published: str,
) -> dict[str, Any]:
    """Croissant 1.0 metadata (MLCommons) for the Parquet files of one tier."""
    by_table = {f.table: f for f in files if f.tier == tier and f.file_format == "parquet"}
    distribution = []
    record_sets = []
    for spec in specs:
        file = by_table.get(spec.name)
        if file is None:
            continue
        file_id = f"{spec.name}-parquet"
        distribution.append(
            {
                "@type": "cr:FileObject",
                "@id": file_id,
                "name": file_id,
                "contentUrl": file.name.removeprefix(f"{tier}/"),
                "encodingFormat": "application/x-parquet",
                "sha256": file.sha256,
                "contentSize": f"{file.size} B",
            }
        )
        record_sets.append(
            {
                "@type": "cr:RecordSet",
                "@id": spec.name,
                "name": spec.name,
                "description": spec.description,
                "field": [
                    {
                        "@type": "cr:Field",
                        "@id": f"{spec.name}/{column.name}",
                        "name": column.name,
                        "dataType": column.croissant_type,
                        "source": {"fileObject": {"@id": file_id}, "extract": {"column": column.name}},
                    }
                    for column in spec.columns
                ],
            }
        )
    return {
        "@context": CROISSANT_CONTEXT,
        "@type": "sc:Dataset",
        "name": name,
        "description": description,
        "conformsTo": "http://mlcommons.org/croissant/1.0",
        "citeAs": "MedHarm: When Medical Safety Alignment Fails (arXiv 2606.28332)",
        "license": license_text,
        "url": url,
        "version": version,
        "datePublished": date_published,
        "distribution": distribution,
        "recordSet": record_sets,
    }
