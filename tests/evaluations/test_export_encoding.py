"""Issue 15: the run's response export, read and encoded a batch at a time (JSON columns as text
decoded by orjson, ``writerows``, the cycle collector paused), writes exactly the bytes of the
row-at-a-time encoder it replaced (kept below as it was) on responses of awkward values, through
the page, the API and the command's text stream."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import orjson
import pytest
from django.db.models import QuerySet
from django.test import Client

from accounts.roles import Role
from core.csv_cells import neutralise
from evaluations import exporters
from evaluations.exporters import COLUMNS, responses_export_chunks, responses_export_stream
from evaluations.models import ModelResponse, ResponseOutcome
from querybank.models import Query
from tests.annotations.factories import EndpointFactory, RunFactory, response, run_target
from tests.awkward_text import AWKWARD as SHARED_AWKWARD
from tests.factories import QueryFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.portable]

AWKWARD = [*SHARED_AWKWARD, ""]
# The old encoder: the JSON columns as Django decodes them, one record at a time (727639c).
_OLD_FIELDS = dict(exporters._FIELDS, **{c: c for c in exporters._JSON_COLUMNS})


def _old_batches(responses: QuerySet[ModelResponse]) -> Iterator[list[list[Any]]]:
    rows = responses.order_by("id").values_list(*_OLD_FIELDS.values()).iterator(chunk_size=2000)
    batch: list[list[Any]] = []
    for row in rows:
        values = list(row)
        values[COLUMNS.index("cost")] = str(values[COLUMNS.index("cost")])
        batch.append(values)
        if len(batch) == 2000:
            yield batch
            batch = []
    if batch:
        yield batch


def _old_stream(responses: QuerySet[ModelResponse], file_format: str) -> str:
    out = []
    if file_format == "jsonl":
        for batch in _old_batches(responses):
            out.append(
                b"".join(
                    orjson.dumps(dict(zip(COLUMNS, values, strict=True))) + b"\n" for values in batch
                ).decode()
            )
        return "".join(out)
    json_positions = [k for k, column in enumerate(COLUMNS) if column in exporters._JSON_COLUMNS]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for batch in _old_batches(responses):
        for values in batch:
            for k in json_positions:
                values[k] = orjson.dumps(values[k]).decode() if values[k] is not None else ""
            writer.writerow([neutralise("" if value is None else value) for value in values])
        out.append(buffer.getvalue())
        buffer.seek(0)
        buffer.truncate()
    out.append(buffer.getvalue())
    return "".join(out)


@pytest.fixture
def run() -> Any:
    run = RunFactory()
    target = run_target(run, EndpointFactory(name='=Model, "one"'))
    for k, text in enumerate(AWKWARD):
        made = response(run, QueryFactory(), target, text=text)
        Query.objects.filter(pk=made.query_id).update(external_id=AWKWARD[(k + 3) % len(AWKWARD)] + f"{k}")
        ModelResponse.objects.filter(pk=made.pk).update(
            finish_reason=AWKWARD[(k + 1) % len(AWKWARD)],
            resolved_model="-" + AWKWARD[k],
            error_reason=AWKWARD[(k + 2) % len(AWKWARD)],
            cost=Decimal("-0.000125") if k % 2 else Decimal("12.5"),
            latency_ms=None if k % 3 == 0 else 1200 + k,
            request={"messages": [{"role": "user", "content": text}], "temperature": 0.7, "n": None},
            raw_reply=None
            if k % 4 == 0
            else {"choices": [{"text": text, "logprobs": [-0.5, 1e-07]}], "z": "=1"},
            errors=[] if k % 2 else [{"kind": "http", "status": 429, "body": text}],
            input_guard=None if k % 2 else {"blocked": False, "categories": ["S1", "=x"], "raw": text},
            output_guard=-3 if k == 5 else "=a string" if k == 6 else None,
        )
    response(run, QueryFactory(), target, outcome=ResponseOutcome.ERROR)
    return run


@pytest.mark.parametrize("file_format", ["jsonl", "csv"])
@pytest.mark.parametrize("batch", [3, 2000])
def test_response_exports_are_the_old_encoders_bytes(
    run: Any, file_format: str, batch: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(exporters, "BATCH", batch)
    responses = ModelResponse.objects.filter(run=run)
    expected = _old_stream(responses, file_format)
    assert "".join(responses_export_stream(responses=responses, file_format=file_format)) == expected
    assert (
        b"".join(responses_export_chunks(responses=responses, file_format=file_format)) == expected.encode()
    )
    client = Client()
    client.force_login(UserFactory(role=Role.MAINTAINER))
    for url in (
        f"/collection/runs/{run.pk}/export.{file_format}",
        f"/api/v1/runs/{run.pk}/export.{file_format}/",
    ):
        got = client.get(url)
        assert got.status_code == 200
        assert b"".join(got.streaming_content) == expected.encode()
    # What the comparison covered: every response, the awkward cells.
    if file_format == "csv":
        table = list(csv.DictReader(io.StringIO(expected, newline="")))
        assert len(table) == 11
        assert table[5]["output_guard"] == "'-3"
        assert table[1]["cost"] == "'-0.000125"
        assert table[0]["text"] == "'" + AWKWARD[0]
        assert table[0]["raw_reply"] == table[1]["input_guard"] == ""
    else:
        lines = [orjson.loads(line) for line in expected.encode().splitlines()]
        assert len(lines) == 11
        assert [line["text"] for line in lines[:10]] == AWKWARD
        assert lines[6]["output_guard"] == "=a string"
        assert lines[1]["raw_reply"]["choices"][0]["logprobs"] == [-0.5, 1e-07]


def test_an_empty_selection_exports_the_header_alone(run: Any) -> None:
    none = ModelResponse.objects.filter(run=run, outcome="nothing")
    assert "".join(responses_export_stream(responses=none, file_format="csv")) == ",".join(COLUMNS) + "\r\n"
    assert _old_stream(none, "csv") == ",".join(COLUMNS) + "\r\n"
    assert "".join(responses_export_stream(responses=none, file_format="jsonl")) == ""


def test_json_text_is_read_as_django_reads_it() -> None:
    assert exporters._json(None) is None
    assert exporters._json('{"a": [1, 2.5, null]}') == {"a": [1, 2.5, None]}
    assert str(exporters._json("NaN")) == "nan"  # orjson refuses it, the standard library reads it
    assert exporters._json("not json") == "not json"  # what Django's JSONField gives back
