"""Run and report CSV exports neutralise formula cells (issue 8, OWASP CSV injection); JSONL keeps the
text as it is."""

import csv
import io
import json

import pytest

from evaluations.exporters import responses_export_stream
from evaluations.models import ModelResponse
from scoring.reports.files import table_csv
from tests.annotations.factories import EndpointFactory, RunFactory, response, run_target
from tests.factories import QueryFactory

pytestmark = pytest.mark.django_db


def test_run_export_csv_cells_start_no_formula_and_jsonl_keeps_the_text() -> None:
    run = RunFactory()
    target = run_target(run, EndpointFactory())
    texts = ["=1+1", "@cmd", "-3", "+4", "\tx", "\ry", "plain"]
    for text in texts:
        response(run, QueryFactory(), target, text=text)
    responses = ModelResponse.objects.filter(run=run)
    exported = "".join(responses_export_stream(responses=responses, file_format="csv"))
    rows = list(csv.DictReader(io.StringIO(exported, newline="")))
    assert sorted(row["text"] for row in rows) == sorted(["'" + t for t in texts[:-1]] + ["plain"])
    lines = "".join(responses_export_stream(responses=responses, file_format="jsonl")).splitlines()
    assert sorted(json.loads(line)["text"] for line in lines) == sorted(texts)


def test_report_tables_keep_numbers_and_neutralise_text() -> None:
    payload = {"tables": {"t": {"columns": ["model", "value"], "rows": [["=evil()", -0.25], ["@x", None]]}}}
    assert table_csv(payload, "t") == "model,value\n'=evil(),-0.25\n'@x,\n"
