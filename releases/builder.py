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
    risky = pc.match_substring_regex(array, r"^[=+\-@\t\r\n']")
    return pc.if_else(risky, pc.binary_join_element_wise("'", array, ""), array)


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

        Each batch becomes one Arrow table: Parquet and CSV are written by Arrow (CSV text cells a
        spreadsheet would run are neutralised with Arrow compute), JSONL by orjson.
        """
        root = Path(self.scratch.name)
        parquet_path, jsonl_path, csv_path = (
            root / f"{spec.name}.{ext}" for ext in ("parquet", "jsonl", "csv")
        )
        names = [c.name for c in spec.columns]
        text_columns = [i for i, c in enumerate(spec.columns) if c.kind == "text"]
        rows = 0
        with (
            pq.ParquetWriter(parquet_path, spec.schema, compression="zstd") as parquet,
            pa_csv.CSVWriter(str(csv_path), spec.schema) as csv_writer,
            jsonl_path.open("wb") as jsonl,
        ):
            for batch in spec.batches(self.batch_rows):
                arrays = [
                    pa.array(values, type=c.arrow_type) for values, c in zip(batch, spec.columns, strict=True)
                ]
                table = pa.Table.from_arrays(arrays, schema=spec.schema)
                parquet.write_table(table, row_group_size=self.batch_rows)
                for index in text_columns:
                    arrays[index] = _neutralise(arrays[index])
                csv_writer.write_table(pa.Table.from_arrays(arrays, schema=spec.schema))
                dumps = orjson.dumps
                jsonl.write(
                    b"".join(
                        dumps(dict(zip(names, row, strict=True))) + b"\n" for row in zip(*batch, strict=True)
                    )
                )
                rows += table.num_rows
                self.on_rows(table.num_rows)
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
