"""A report's files: each table as CSV, the payload as JSON, and the ZIP of them all with the PDF."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from typing import Any

from core.csv_cells import neutralise


def table_names(payload: dict[str, Any]) -> list[str]:
    return list(payload["tables"])


def table_csv(payload: dict[str, Any], name: str) -> str:
    """One table as CSV with a header row; empty cells for missing values."""
    table = payload["tables"][name]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([neutralise(column) for column in table["columns"]])
    for row in table["rows"]:
        writer.writerow(["" if cell is None else neutralise(cell) for cell in row])
    return out.getvalue()


def report_json(payload: dict[str, Any]) -> str:
    return json.dumps(payload, indent=2, sort_keys=False, allow_nan=False)


def report_zip(payload: dict[str, Any], pdf: bytes) -> bytes:
    """Every table as CSV, the payload as JSON, and the PDF, in one archive."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("report.json", report_json(payload))
        archive.writestr("report.pdf", pdf)
        for name in table_names(payload):
            archive.writestr(f"{name}.csv", table_csv(payload, name))
    return buffer.getvalue()
