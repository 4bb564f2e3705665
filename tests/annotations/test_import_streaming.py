"""The annotation import reads its files twice and holds none of them: a stream that cannot seek is
spooled, a file that changes between the readings is refused, a late bad row writes nothing, and the
memory an import takes does not grow with the file."""

import io
import json
import re
import tracemalloc

import pytest

from accounts.roles import Role
from annotations.importers import AnnotationImportRejected, sources_open
from annotations.models import Adjudication, Campaign, CampaignItem, Label
from annotations.services import imports as import_service
from annotations.services.imports import annotations_import
from evaluations.models import CollectionRun, ModelResponse
from querybank.models import Category, Query
from tests.annotations.factories import guideline, response_rubric
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _benchmark(items: int, *, prefix: str = "i") -> bytes:
    """``items`` responses x 2 raters x 2 fields, adjudicated: 4 rows per item."""
    lines = []
    for n in range(items):
        for rater in ("ann1", "ann2"):
            base = {
                "item": f"{prefix}{n}",
                "model": f"model-{n % 3}",
                "prompt_id": f"{prefix}p{n // 3}",
                "prompt": f"Synthetic question {prefix}{n // 3} about medicine safety.",
                "response": f"Synthetic reply {n}.",
                "rater": rater,
            }
            harm = 1 + (n + (rater == "ann2")) % 5
            lines.append(json.dumps({**base, "field": "unsafe", "value": "no", "adjudicated": "no"}))
            lines.append(json.dumps({**base, "field": "harmfulness", "value": harm}))
    return ("\n".join(lines) + "\n").encode()


def _import(files, **kwargs):
    return annotations_import(
        files=files,
        file_format="jsonl",
        actor=UserFactory(role=Role.MAINTAINER),
        name="Streamed study",
        rubric=response_rubric(),
        guideline=guideline(),
        default_category=Category.objects.get(slug="toxicology"),
        **kwargs,
    )


def _nothing_written() -> None:
    assert Campaign.objects.count() == 0
    assert CampaignItem.objects.count() == 0
    assert Label.objects.count() == 0
    assert Adjudication.objects.count() == 0
    assert ModelResponse.objects.count() == 0
    assert CollectionRun.objects.count() == 0
    assert Query.objects.filter(source="annotation-import").count() == 0


class _Pipe(io.RawIOBase):
    """A stream that reads once, as stdin or a socket does."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        return self._data.readinto(buffer)


class _ChangesOnSecondReading(io.BytesIO):
    """A seekable file whose bytes are replaced when it is read line by line the second time."""

    def __init__(self, first: bytes, second: bytes) -> None:
        super().__init__(first)
        self.second = second
        self.readings = 0

    def __iter__(self):  # type: ignore[no-untyped-def]
        self.readings += 1
        if self.readings == 2:
            self.seek(0)
            self.truncate()
            self.write(self.second)
            self.seek(0)
        return super().__iter__()


@pytest.mark.portable
def test_a_stream_that_cannot_seek_is_spooled_and_imports_as_its_bytes_do() -> None:
    raw = _benchmark(30)
    (source,) = sources_open([("pipe.jsonl", _Pipe(raw))])
    assert (source.spooled, source.size, source.stream.read()) == (True, len(raw), raw)
    source.close()

    result = _import([("pipe.jsonl", _Pipe(raw))])
    assert (result.items, result.labels, result.adjudicated, result.rows) == (30, 60, 30, 120)
    assert CampaignItem.objects.filter(campaign=result.campaign).count() == 30
    assert Label.objects.filter(campaign=result.campaign, external_rater="ann2").count() == 30
    # The same bytes given as bytes are the same files: refused as already imported.
    with pytest.raises(AnnotationImportRejected, match="already imported"):
        _import([("pipe.jsonl", raw)])


@pytest.mark.portable
def test_a_file_changed_between_the_two_readings_is_refused_and_nothing_stays(monkeypatch) -> None:
    # Small batches, so items are written before the change is noticed at the end of the file.
    monkeypatch.setattr(import_service, "BATCH", 4)
    first = _benchmark(40)
    second = first.replace(b'"harmfulness", "value": 1}', b'"harmfulness", "value": 2}')
    assert second != first
    assert len(second) == len(first)
    stream = _ChangesOnSecondReading(first, second)
    with pytest.raises(AnnotationImportRejected) as caught:
        _import([("moving.jsonl", stream)])
    assert stream.readings == 2
    assert [(p.file, p.line, p.message) for p in caught.value.problems] == [
        (
            "moving.jsonl",
            None,
            "the file changed while it was being imported; nothing was imported, import it again",
        )
    ]
    _nothing_written()


def test_a_bad_last_row_of_a_large_file_writes_nothing(monkeypatch) -> None:
    monkeypatch.setattr(import_service, "BATCH", 50)
    raw = _benchmark(1000)
    last = raw.rstrip(b"\n").rsplit(b"\n", 1)[1]
    bad = raw[: -len(last) - 1] + last.replace(b'"value": ', b'"value": 9, "x": ') + b"\n"
    with pytest.raises(AnnotationImportRejected) as caught:
        _import([("large.jsonl", bad)])
    assert [(p.line, p.field) for p in caught.value.problems] == [(4000, "x"), (4000, "value")]
    _nothing_written()
    bad = raw[: -len(last) - 1] + re.sub(rb'"value": \d', b'"value": 6', last) + b"\n"
    with pytest.raises(AnnotationImportRejected) as caught:
        _import([("large.jsonl", bad)])
    assert [(p.line, p.field, p.message) for p in caught.value.problems] == [
        (4000, "value", "harmfulness: 6 is not one of: 1, 2, 3, 4, 5")
    ]
    _nothing_written()


def test_a_key_given_twice_is_still_refused() -> None:
    raw = _benchmark(3)
    lines = raw.split(b"\n")
    lines[6] = lines[6].replace(b'"rater": "ann2"', b'"rater": "ann2", "rater": "ann1"')
    assert lines[6].count(b'"rater"') == 2
    with pytest.raises(AnnotationImportRejected) as caught:
        _import([("twice.jsonl", b"\n".join(lines))])
    assert [(p.line, p.field, p.message) for p in caught.value.problems] == [
        (7, "rater", "invalid JSON: duplicate key 'rater'")
    ]
    _nothing_written()


def _peak(raw: bytes, name: str) -> int:
    tracemalloc.start()
    try:
        _import([(name, raw)], source=name)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_the_memory_an_import_takes_does_not_grow_with_the_file(monkeypatch) -> None:
    # Both files several batches long, as a real benchmark is with the default batch.
    monkeypatch.setattr(import_service, "BATCH", 250)
    small, large = _benchmark(500, prefix="s"), _benchmark(2000, prefix="l")
    _peak(_benchmark(20, prefix="w"), "warm")  # first-use caches (rubric fields, querysets)
    small_peak = _peak(small, "small")
    large_peak = _peak(large, "large")
    # Holding the rows (what the import did before it streamed) makes the peak grow with the file:
    # x4 here, by about 4.7 bytes per byte of file. Streaming keeps a few integers per item and one
    # batch of items, so the peak grows by far less: under x2, and under half a byte per byte.
    assert len(large) > 3.9 * len(small)
    assert large_peak < 2 * small_peak, (small_peak, large_peak)
    assert large_peak - small_peak < (len(large) - len(small)) / 2, (small_peak, large_peak)
    assert Label.objects.filter(campaign__name="Streamed study").count() == 2 * (20 + 500 + 2000)


def test_an_upload_is_read_by_lines_ending_in_a_newline_only() -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    # A carriage return between a line's tokens is blank space in JSON, not the end of a line.
    raw = _benchmark(3).replace(b', "model": ', b',\r"model": ')
    assert raw.count(b"\r") == 12
    result = _import([("upload.jsonl", SimpleUploadedFile("upload.jsonl", raw))])
    assert (result.items, result.labels, result.rows) == (3, 6, 12)
