"""Query export: JSONL and CSV in the import schema, streamed, and re-importable without changes."""

import csv
import io
import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command

from accounts.roles import Role
from core.actors import SYSTEM
from querybank.exporters import export_stream
from querybank.importers import FIELDS
from querybank.models import Category, Query
from querybank.services import queries_import
from tests.factories import QueryFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def bank() -> list[Query]:
    """Queries whose values test the format's edges: quotes, commas, line breaks, non-ASCII, empty
    optional fields, nested metadata, two sources and two taxonomies."""
    return [
        QueryFactory(
            external_id="edge-1",
            text='Synthetic question, with "quotes", commas\nand a second line · ünïcode',
            notes="note, with a comma",
            metadata={"tags": ["a", "b"], "nested": {"n": 1}},
            status="draft",
        ),
        QueryFactory(
            external_id="edge-2",
            text="Synthetic question about general medication safety 2",
            category=Category.objects.get(slug="ama-9-access-to-care"),
            expected_behaviour="",
            severity="",
            source="team-b",
        ),
        *QueryFactory.create_batch(3),
    ]


def snapshot() -> dict[tuple[str, str], tuple[object, ...]]:
    return {
        (q.source, q.external_id): (
            q.text,
            q.category.slug,
            q.expected_behaviour,
            q.severity,
            q.status,
            q.notes,
            q.metadata,
        )
        for q in Query.objects.select_related("category")
    }


def export_text(file_format: str) -> str:
    return "".join(export_stream(queries=Query.objects.all(), file_format=file_format))


def test_jsonl_export_has_exactly_the_import_fields(bank: list[Query]) -> None:
    lines = export_text("jsonl").splitlines()
    assert len(lines) == 5
    records = {r["external_id"]: r for r in map(json.loads, lines)}
    assert all(tuple(r) == FIELDS for r in records.values())
    assert records["edge-1"] == {
        "external_id": "edge-1",
        "text": 'Synthetic question, with "quotes", commas\nand a second line · ünïcode',
        "category": "toxicology",
        "expected_behaviour": "refuse",
        "severity": "high",
        "status": "draft",
        "source": "test",
        "notes": "note, with a comma",
        "metadata": {"tags": ["a", "b"], "nested": {"n": 1}},
    }


def test_csv_export_has_a_header_and_metadata_as_json(bank: list[Query]) -> None:
    rows = list(csv.DictReader(io.StringIO(export_text("csv"), newline="")))
    assert len(rows) == 5
    assert tuple(rows[0]) == FIELDS
    edge = next(r for r in rows if r["external_id"] == "edge-1")
    assert edge["text"] == 'Synthetic question, with "quotes", commas\nand a second line · ünïcode'
    assert json.loads(edge["metadata"]) == {"tags": ["a", "b"], "nested": {"n": 1}}
    other = next(r for r in rows if r["external_id"] == "edge-2")
    assert (other["category"], other["expected_behaviour"], other["source"]) == (
        "ama-9-access-to-care",
        "",
        "team-b",
    )


@pytest.mark.parametrize("file_format", ["jsonl", "csv"])
def test_reimporting_an_export_changes_nothing(bank: list[Query], file_format: str) -> None:
    before = snapshot()
    history_rows = Query.history.count()
    exported = export_text(file_format).encode()

    result = queries_import(
        files=[(f"export.{file_format}", exported)], file_format=file_format, actor=SYSTEM
    )

    assert (result.created, result.updated, result.unchanged) == (0, 0, 5)
    assert snapshot() == before
    assert Query.history.count() == history_rows


@pytest.mark.parametrize("file_format", ["jsonl", "csv"])
def test_an_export_imported_into_an_empty_bank_recreates_it(bank: list[Query], file_format: str) -> None:
    before = snapshot()
    exported = export_text(file_format).encode()
    Query.objects.all().delete()

    result = queries_import(
        files=[(f"export.{file_format}", exported)], file_format=file_format, actor=SYSTEM
    )

    assert result.created == 5
    assert snapshot() == before


def test_export_streams_in_chunks(db: None) -> None:
    QueryFactory.create_batch(250)
    chunks = list(export_stream(queries=Query.objects.all(), file_format="csv"))
    # The header, then 200 rows, then the last 50.
    assert [chunk.count("\r\n") for chunk in chunks] == [1, 200, 50]


def test_export_command_writes_stdout_or_a_file(bank: list[Query], tmp_path: Path) -> None:
    out = StringIO()
    call_command("export_queries", "--format", "jsonl", stdout=out)
    assert out.getvalue() == export_text("jsonl")

    target = tmp_path / "bank.csv"
    message = StringIO()
    call_command("export_queries", "--format", "csv", "--output", str(target), stdout=message)
    assert target.read_bytes().decode() == export_text("csv")
    assert message.getvalue().strip() == f"Exported 5 queries to {target}."


def test_web_export_for_a_maintainer(client, bank: list[Query]) -> None:
    client.force_login(UserFactory(role=Role.MAINTAINER))
    response = client.get("/queries/export.jsonl")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/jsonl"
    assert response["Content-Disposition"] == 'attachment; filename="medharm-queries.jsonl"'
    assert b"".join(response.streaming_content).decode() == export_text("jsonl")


def test_web_export_is_refused_to_a_clinician(client, bank: list[Query]) -> None:
    client.force_login(UserFactory(role=Role.CLINICIAN))
    assert client.get("/queries/export.csv").status_code == 403


FORMULAS = ['=HYPERLINK("http://x.test")', "+1+1", "-2+3", "@SUM(A1)", "\tTabbed", "\rReturn", "'quoted"]


@pytest.mark.parametrize("file_format", ["jsonl", "csv"])
def test_csv_cells_never_start_a_formula_and_the_export_still_reimports(db: None, file_format: str) -> None:
    """OWASP CSV injection (issue 8): every CSV text cell that starts with = + - @ tab or CR gets a
    leading apostrophe; JSONL keeps the text as it is; both re-import to exactly the same text."""
    for number, text in enumerate(FORMULAS):
        QueryFactory(external_id=f"f-{number}", text=text, notes=text)
    before = snapshot()
    exported = export_text(file_format)
    if file_format == "csv":
        rows = list(csv.DictReader(io.StringIO(exported, newline="")))
        assert [row["text"] for row in rows] == ["'" + text for text in FORMULAS]
        assert all(not row[name].startswith(("=", "+", "-", "@", "\t", "\r")) for row in rows for name in row)
    else:
        assert [json.loads(line)["text"] for line in exported.splitlines()] == FORMULAS
    Query.objects.all().delete()
    queries_import(
        files=[(f"export.{file_format}", exported.encode())], file_format=file_format, actor=SYSTEM
    )
    assert snapshot() == before
