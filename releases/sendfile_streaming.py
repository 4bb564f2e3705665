"""A django-sendfile2 backend for development: streams the file from Django, with range requests.

django-sendfile2's own "simple" backend reads the whole file into the response and ignores Range;
this one streams 64 KiB chunks and answers a single ``bytes=`` range with 206 (or 416). Under
production settings the nginx backend answers instead (X-Accel-Redirect): nginx handles ranges.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
CHUNK = 64 * 1024


def _chunks(path: Path, start: int, length: int) -> Iterator[bytes]:
    with path.open("rb") as fh:
        fh.seek(start)
        remaining = length
        while remaining > 0:
            chunk = fh.read(min(CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk


def sendfile(request: HttpRequest, filepath: Path, **kwargs: object) -> HttpResponseBase:
    size = filepath.stat().st_size
    header = request.headers.get("Range", "")
    match = _RANGE.match(header.strip()) if header else None
    if header and match is None:
        # Several ranges, or units other than bytes: answer the whole file (RFC 9110 allows it).
        match = None
    response: HttpResponseBase
    if match and (match.group(1) or match.group(2)):
        first, last = match.groups()
        if first:
            start = int(first)
            end = min(int(last), size - 1) if last else size - 1
        else:  # a suffix: the last N bytes
            start = max(0, size - int(last))
            end = size - 1
        if start >= size or start > end:
            response = HttpResponse(status=416)
            response["Content-Range"] = f"bytes */{size}"
            return response
        response = StreamingHttpResponse(_chunks(filepath, start, end - start + 1), status=206)
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
        response["Content-Length"] = str(end - start + 1)
    else:
        response = FileResponse(filepath.open("rb"))
        response["Content-Length"] = str(size)
    response["Accept-Ranges"] = "bytes"
    return response
