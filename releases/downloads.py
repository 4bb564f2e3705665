"""Handing a release file to the client once the view has checked the caller may have it.

On filesystem storage django-sendfile2 answers: X-Accel-Redirect under production settings (nginx
serves the bytes and the range requests from its internal location), streaming with ranges from
Django otherwise. Storage without local paths (an S3 bucket) streams through Django.
"""

from __future__ import annotations

from pathlib import PurePosixPath

import pyarrow.parquet as pq
from django.core.files.storage import default_storage
from django.http import FileResponse, HttpRequest
from django.http.response import HttpResponseBase
from django_sendfile import sendfile

from releases.models import ReleaseFile


def file_response(request: HttpRequest, release_file: ReleaseFile) -> HttpResponseBase:
    filename = PurePosixPath(release_file.name).name
    try:
        path = default_storage.path(release_file.storage_name)
    except NotImplementedError:
        return FileResponse(
            default_storage.open(release_file.storage_name, "rb"), as_attachment=True, filename=filename
        )
    response = sendfile(request, path, attachment=True, attachment_filename=filename)
    if response.has_header("X-Accel-Redirect"):
        # The body is nginx's to send: the file's length on an empty reply would be a lie.
        del response["Content-Length"]
    if response.status_code == 206:
        # django-sendfile2 stamps the whole file's length; a partial answer carries the range's.
        first_last = response["Content-Range"].split(" ")[1].split("/")[0].split("-")
        response["Content-Length"] = str(int(first_last[1]) - int(first_last[0]) + 1)
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


def table_rows(release_file: ReleaseFile, *, offset: int, limit: int) -> tuple[list[dict[str, object]], int]:
    """Rows ``offset`` to ``offset + limit`` of a Parquet table, reading only the row groups needed."""
    with default_storage.open(release_file.storage_name, "rb") as fh:
        parquet = pq.ParquetFile(fh)
        total = parquet.metadata.num_rows
        rows: list[dict[str, object]] = []
        start = 0
        for index in range(parquet.num_row_groups):
            group_rows = parquet.metadata.row_group(index).num_rows
            end = start + group_rows
            if end > offset and start < offset + limit:
                table = parquet.read_row_group(index)
                low = max(0, offset - start)
                high = min(group_rows, offset + limit - start)
                rows.extend(table.slice(low, high - low).to_pylist())
            start = end
            if start >= offset + limit:
                break
    return rows, total
