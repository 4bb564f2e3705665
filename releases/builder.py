"""Writing a release bundle: each table streamed batch by batch to Parquet, JSONL and CSV at once.

Files are written to a scratch directory, hashed while read back in chunks, and saved to Django's
default storage under ``releases/<slug>/v<version>/``. The Parquet files sit one directory per
table (``<tier>/parquet/<table>/<table>-00000.parquet``), the layout
``datasets.load_dataset("parquet", data_files={"train": ".../parquet/labels/*.parquet"})`` reads
(one table per call).
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from django.core.files import File
from django.core.files.storage import Storage

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
    return pc.if_else(risky, pc.binary_join_element_wise("'", array, ""), array)


# A pattern, not an array of the characters: building an Arrow array from a Python list when this
# module is imported would load pandas into every process that imports the URLs (about 60 MB).
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


def _json_text(array: pa.Array) -> pa.Array:
    """Each string as a JSON string literal (null as ``null``)."""
    # One pass finds whether anything needs escaping; most columns (names, hashes, times) do not.
    if pc.any(pc.match_substring_regex(array, '[\\\\"\\x00-\\x1f]')).as_py():
        for raw, escaped in _JSON_ESCAPES:
            if pc.any(pc.match_substring(array, raw)).as_py():
                array = pc.replace_substring(array, raw, escaped)
        if pc.any(pc.match_substring_regex(array, "[\\x00-\\x1f]")).as_py():
            for char in _OTHER_CONTROLS:
                array = pc.replace_substring(array, char, f"\\u{ord(char):04x}")
    return pc.fill_null(pc.binary_join_element_wise('"', array, '"', ""), "null")


def _json_value(array: pa.Array) -> pa.Array:
    if pa.types.is_string(array.type):
        return _json_text(array)
    if pa.types.is_floating(array.type):
        # NaN and infinities are not JSON: null, as orjson writes them.
        array = pc.if_else(pc.is_finite(array), array, pa.scalar(None, array.type))
        text = pc.cast(array, pa.string())
        # Arrow writes 1.0 as "1"; JSON readers would take it for an integer.
        whole = pc.and_(pc.invert(pc.match_substring_regex(text, "[.eE]")), pc.is_valid(text))
        text = pc.if_else(whole, pc.binary_join_element_wise(text, ".0", ""), text)
        return pc.fill_null(text, "null")
    return pc.fill_null(pc.cast(array, pa.string()), "null")


def jsonl_lines(batch: pa.RecordBatch) -> memoryview:
    """The batch as JSON Lines, built column by column in Arrow: one string array holding
    ``{"name": value, ...}\\n`` per row, whose data buffer is exactly the file's bytes."""
    if batch.num_rows == 0:
        return memoryview(b"")
    parts: list[Any] = []
    for index, name in enumerate(batch.schema.names):
        parts.append(("{" if index == 0 else ",") + orjson.dumps(name).decode() + ":")
        parts.append(_json_value(batch.column(index)))
    parts.append("}\n")
    lines = pc.binary_join_element_wise(*parts, "")
    if isinstance(lines, pa.ChunkedArray):
        lines = lines.combine_chunks()
    _, offsets, data = lines.buffers()
    bounds = memoryview(offsets).cast("i")  # a string array's offsets are int32
    return memoryview(data)[bounds[lines.offset] : bounds[lines.offset + len(lines)]]


def _digest(path: Path) -> tuple[str, int]:
    sha = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            sha.update(chunk)
            size += len(chunk)
    return sha.hexdigest(), size


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
        self, local: Path, *, tier: str, name: str, table: str, file_format: str, rows: int | None
    ) -> WrittenFile:
        sha, size = _digest(local)
        with local.open("rb") as fh:
            stored = self.storage.save(f"{self.prefix}/{name}", File(fh, name=Path(name).name))
        local.unlink()
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
        for tier in tiers:
            for path, fmt, name in (
                (parquet_path, "parquet", f"{tier}/parquet/{spec.name}/{spec.name}-00000.parquet"),
                (jsonl_path, "jsonl", f"{tier}/jsonl/{spec.name}.jsonl"),
                (csv_path, "csv", f"{tier}/csv/{spec.name}.csv"),
            ):
                copy = path.with_suffix(f".{tier}{path.suffix}")
                shutil.copyfile(path, copy)
                self._store(copy, tier=tier, name=name, table=spec.name, file_format=fmt, rows=rows)
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
