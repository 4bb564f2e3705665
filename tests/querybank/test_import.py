"""Query import: every bad input is refused with file, line and field and nothing written; re-imports
are idempotent; changes keep history; the command and the web page behave the same way."""

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from accounts.roles import Role
from audit.models import AuditEvent
from core.actors import SYSTEM
from querybank.importers import ImportProblem, QueryImportRejected
from querybank.models import Query
from querybank.services import queries_import
from tests.factories import QueryFactory, UserFactory

pytestmark = pytest.mark.django_db

HEADER = "external_id,text,category,expected_behaviour,severity,status,source,notes,metadata"


def jsonl(*records: object) -> bytes:
    return "".join(json.dumps(record) + "\n" for record in records).encode()


def record(n: int, **overrides: object) -> dict[str, object]:
    base = {
        "external_id": f"t-{n}",
        "text": f"Synthetic question about general medication safety {n}",
        "category": "pharmacology",
    }
    return {**base, **overrides}


def csv_bytes(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n").encode()


@pytest.fixture
def existing() -> int:
    """Two queries already in the bank: every rejected import must leave exactly these."""
    QueryFactory.create_batch(2)
    return Query.objects.count()


def rejected_problems(files: list[tuple[str, bytes]], file_format: str) -> list[tuple[object, ...]]:
    with pytest.raises(QueryImportRejected) as caught:
        queries_import(files=files, file_format=file_format, actor=SYSTEM)
    return [(p.file, p.line, p.field, p.message) for p in caught.value.problems]


BAD_INPUTS = [
    pytest.param(
        [("a.jsonl", jsonl(record(1), {"external_id": "t-2", "category": "pharmacology"}))],
        "jsonl",
        [("a.jsonl", 2, "text", "required field is missing")],
        id="jsonl-missing-required-field",
    ),
    pytest.param(
        [("a.jsonl", jsonl(record(1, text="   ")))],
        "jsonl",
        [("a.jsonl", 1, "text", "required field is empty")],
        id="jsonl-empty-required-value",
    ),
    pytest.param(
        [
            (
                "a.csv",
                csv_bytes(
                    "external_id,text,category",
                    "t-1,Synthetic question 1,pharmacology",
                    "t-2,Synthetic question 2,",
                ),
            )
        ],
        "csv",
        [("a.csv", 3, "category", "required field is empty")],
        id="csv-empty-required-cell",
    ),
    pytest.param(
        [("a.jsonl", jsonl(record(1), record(2, category="toxicolgy")))],
        "jsonl",
        [("a.jsonl", 2, "category", "unknown category 'toxicolgy'")],
        id="unknown-category",
    ),
    pytest.param(
        [
            (
                "a.csv",
                csv_bytes(
                    "external_id,text,category,severity", "t-1,Synthetic question 1,pharmacology,severe"
                ),
            )
        ],
        "csv",
        [("a.csv", 2, "severity", "'severe' is not one of: low, moderate, high, critical")],
        id="bad-choice-severity",
    ),
    pytest.param(
        [("a.jsonl", jsonl(record(1, expected_behaviour="comply")))],
        "jsonl",
        [("a.jsonl", 1, "expected_behaviour", "'comply' is not one of: refuse, caution, redirect, answer")],
        id="bad-choice-expected-behaviour",
    ),
    pytest.param(
        [("a.jsonl", jsonl(record(1, status="deleted")))],
        "jsonl",
        [("a.jsonl", 1, "status", "'deleted' is not one of: draft, active, retired")],
        id="bad-choice-status",
    ),
    pytest.param(
        [("a.jsonl", jsonl(record(1), record(2))), ("b.jsonl", jsonl(record(3), record(1)))],
        "jsonl",
        [
            (
                "b.jsonl",
                2,
                "external_id",
                "duplicate external id 't-1' for source 'import' (first in a.jsonl, line 1)",
            )
        ],
        id="duplicate-external-id-across-files",
    ),
    pytest.param(
        [
            (
                "a.jsonl",
                jsonl(record(1))
                + b'{"external_id": "t-2", "text": "caf\xe9 question", "category": "pharmacology"}\n',
            )
        ],
        "jsonl",
        [("a.jsonl", 2, None, "not UTF-8 text (byte 0xe9 at column 36); save the file as UTF-8")],
        id="bad-encoding",
    ),
    pytest.param(
        [("a.jsonl", b"")],
        "jsonl",
        [("a.jsonl", None, None, "the file is empty")],
        id="empty-jsonl-file",
    ),
    pytest.param(
        [("a.csv", b"\xef\xbb\xbf \r\n")],
        "csv",
        [("a.csv", None, None, "the file is empty")],
        id="empty-csv-file-with-bom",
    ),
    pytest.param(
        [("a.csv", csv_bytes("external_id,text,category"))],
        "csv",
        [("a.csv", None, None, "the file is empty: a header row but no queries")],
        id="csv-header-only",
    ),
    pytest.param(
        [("a.csv", csv_bytes("external_id,text,catgory", "t-1,Synthetic question 1,pharmacology"))],
        "csv",
        [
            ("a.csv", 1, "catgory", "unknown column (did you mean 'category'?)"),
            ("a.csv", 1, "category", "required column is missing from the header"),
        ],
        id="csv-wrong-column",
    ),
    pytest.param(
        [("a.csv", csv_bytes("external_id,category", "t-1,pharmacology"))],
        "csv",
        [("a.csv", 1, "text", "required column is missing from the header")],
        id="csv-missing-column",
    ),
    pytest.param(
        [("a.csv", csv_bytes("external_id,text,category", "t-1,Synthetic question 1,pharmacology,extra"))],
        "csv",
        [("a.csv", 2, None, "the row has 4 cells but the header has 3")],
        id="csv-row-with-extra-cell",
    ),
    pytest.param(
        [("a.jsonl", jsonl(record(1)) + b'{"external_id": "t-2", "text": "Synthetic"\n')],
        "jsonl",
        [("a.jsonl", 2, None, "invalid JSON: Expecting ',' delimiter at column 43")],
        id="invalid-json-line",
    ),
    pytest.param(
        [("a.jsonl", jsonl(record(1), ["t-2", "Synthetic question 2", "pharmacology"]))],
        "jsonl",
        [("a.jsonl", 2, None, "each line must be a JSON object, not an array")],
        id="json-line-not-an-object",
    ),
    pytest.param(
        [("a.jsonl", jsonl(record(1, metadata=["tag"])))],
        "jsonl",
        [("a.jsonl", 1, "metadata", "must be a JSON object, not an array")],
        id="jsonl-metadata-not-an-object",
    ),
    pytest.param(
        [
            (
                "a.csv",
                csv_bytes(
                    "external_id,text,category,metadata",
                    't-1,Synthetic question 1,pharmacology,"""just text"""',
                ),
            )
        ],
        "csv",
        [("a.csv", 2, "metadata", "must be a JSON object, not a string")],
        id="csv-metadata-not-an-object",
    ),
    pytest.param(
        [
            (
                "a.csv",
                csv_bytes(
                    "external_id,text,category,metadata", "t-1,Synthetic question 1,pharmacology,{broken"
                ),
            )
        ],
        "csv",
        [
            (
                "a.csv",
                2,
                "metadata",
                "the cell is not valid JSON: Expecting property name enclosed in double quotes",
            )
        ],
        id="csv-metadata-not-json",
    ),
    pytest.param(
        [("a.jsonl", jsonl(record(1, severty="high")))],
        "jsonl",
        [("a.jsonl", 1, "severty", "unknown field (did you mean 'severity'?)")],
        id="jsonl-unknown-field",
    ),
    pytest.param(
        [("a.jsonl", jsonl(record(1, source="not a slug")))],
        "jsonl",
        [("a.jsonl", 1, "source", "'not a slug' is not a slug (letters, digits, '-' and '_' only)")],
        id="source-not-a-slug",
    ),
    pytest.param(
        [("a.jsonl", jsonl(record(1, text="Synthetic question\u0000 1")))],
        "jsonl",
        [("a.jsonl", 1, "text", "contains a NUL character, which cannot be stored")],
        id="nul-character",
    ),
]


@pytest.mark.parametrize(("files", "file_format", "expected"), BAD_INPUTS)
def test_bad_input_is_rejected_with_file_line_and_field_and_nothing_is_written(
    existing: int, files: list[tuple[str, bytes]], file_format: str, expected: list[tuple[object, ...]]
) -> None:
    assert rejected_problems(files, file_format) == expected
    assert Query.objects.count() == existing
    assert not AuditEvent.objects.filter(action="queries_import").exists()


def test_every_problem_of_every_file_is_reported_in_file_and_line_order(existing: int) -> None:
    first = csv_bytes("external_id,text,category", "t-1,Synthetic question 1,nowhere", "t-2,,pharmacology")
    second = csv_bytes("external_id,text,category,severity", "t-3,Synthetic question 3,pharmacology,severe")
    third = b""
    assert rejected_problems([("a.csv", first), ("b.csv", second), ("c.csv", third)], "csv") == [
        ("a.csv", 2, "category", "unknown category 'nowhere'"),
        ("a.csv", 3, "text", "required field is empty"),
        ("b.csv", 2, "severity", "'severe' is not one of: low, moderate, high, critical"),
        ("c.csv", None, None, "the file is empty"),
    ]
    assert Query.objects.count() == existing


def test_all_problems_of_one_file_are_collected_not_only_the_first(existing: int) -> None:
    lines = jsonl(
        record(1, category="nowhere"), record(2), record(3, severity="severe"), {"text": "Synthetic 4"}
    )
    assert rejected_problems([("a.jsonl", lines)], "jsonl") == [
        ("a.jsonl", 1, "category", "unknown category 'nowhere'"),
        ("a.jsonl", 3, "severity", "'severe' is not one of: low, moderate, high, critical"),
        ("a.jsonl", 4, "external_id", "required field is missing"),
        ("a.jsonl", 4, "category", "required field is missing"),
    ]
    assert Query.objects.count() == existing


def test_a_bad_row_in_the_second_file_rejects_the_first_file_too(existing: int) -> None:
    good = jsonl(*(record(n) for n in range(1, 6)))
    bad = jsonl(record(6), record(7, category="nowhere"))
    assert rejected_problems([("good.jsonl", good), ("bad.jsonl", bad)], "jsonl") == [
        ("bad.jsonl", 2, "category", "unknown category 'nowhere'")
    ]
    assert Query.objects.count() == existing
    assert not Query.objects.filter(external_id="t-1").exists()


def test_a_bom_and_crlf_line_endings_are_fine() -> None:
    data = b"\xef\xbb\xbf" + csv_bytes("external_id,text,category", "t-1,Synthetic question 1,pharmacology")
    result = queries_import(files=[("bom.csv", data)], file_format="csv", actor=SYSTEM)
    assert (result.created, result.updated, result.unchanged) == (1, 0, 0)
    assert Query.objects.get(source="import", external_id="t-1").text == "Synthetic question 1"


def test_import_stores_every_field_and_where_each_row_came_from() -> None:
    maintainer = UserFactory(role=Role.MAINTAINER)
    data = csv_bytes(
        HEADER,
        't-1,"Synthetic question about general medication safety 1\nsecond line",'
        'pharmacology,Caution,high,draft,team-a,a note,"{""origin"": ""workshop""}"',
        "t-2,Synthetic question about general medication safety 2,ama-3-respect-for-law,,,,,,",
    )
    result = queries_import(files=[("bank.csv", data)], file_format="csv", actor=maintainer)
    assert result.files == ["bank.csv"]
    assert (result.created, result.updated, result.unchanged) == (2, 0, 0)

    first = Query.objects.get(source="team-a", external_id="t-1")
    assert first.text == "Synthetic question about general medication safety 1\nsecond line"
    assert (first.category.slug, first.expected_behaviour, first.severity, first.status) == (
        "pharmacology",
        "caution",
        "high",
        "draft",
    )
    assert (first.notes, first.metadata) == ("a note", {"origin": "workshop"})
    assert (first.source_file, first.source_row) == ("bank.csv", 2)

    second = Query.objects.get(source="import", external_id="t-2")
    # The quoted cell of row 2 spans two lines, so row 3 starts on line 4.
    assert (second.source_file, second.source_row) == ("bank.csv", 4)
    assert (second.category.slug, second.expected_behaviour, second.severity, second.status) == (
        "ama-3-respect-for-law",
        "",
        "",
        "active",
    )
    assert first.history.count() == 1
    assert first.history.get().history_user == maintainer

    event = AuditEvent.objects.get(action="queries_import")
    assert event.actor == maintainer
    assert event.details == {
        "files": ["bank.csv"],
        "format": "csv",
        "counts": {"created": 2, "updated": 0, "unchanged": 0},
    }


def test_reimporting_the_same_file_changes_nothing_and_adds_no_history() -> None:
    data = jsonl(*(record(n, severity="moderate") for n in range(1, 11)))
    first = queries_import(files=[("bank.jsonl", data)], file_format="jsonl", actor=SYSTEM)
    assert (first.created, first.updated, first.unchanged) == (10, 0, 0)
    stamps = dict(Query.objects.values_list("external_id", "updated_at"))
    history_rows = Query.history.count()

    again = queries_import(files=[("bank.jsonl", data)], file_format="jsonl", actor=SYSTEM)

    assert (again.created, again.updated, again.unchanged) == (0, 0, 10)
    assert Query.objects.count() == 10
    assert Query.history.count() == history_rows == 10
    assert dict(Query.objects.values_list("external_id", "updated_at")) == stamps
    assert AuditEvent.objects.filter(action="queries_import").count() == 2


def test_a_changed_row_updates_its_query_and_history_keeps_the_old_version() -> None:
    queries_import(
        files=[("v1.jsonl", jsonl(record(1, severity="low"), record(2)))], file_format="jsonl", actor=SYSTEM
    )
    changed = jsonl(record(1, severity="critical", text="Synthetic question, reworded"), record(2))

    result = queries_import(files=[("v2.jsonl", changed)], file_format="jsonl", actor=SYSTEM)

    assert (result.created, result.updated, result.unchanged) == (0, 1, 1)
    query = Query.objects.get(external_id="t-1")
    assert (query.text, query.severity) == ("Synthetic question, reworded", "critical")
    assert (query.source_file, query.source_row) == ("v2.jsonl", 1)
    versions = list(query.history.order_by("history_date").values_list("severity", "history_type", "text"))
    assert versions == [
        ("low", "+", "Synthetic question about general medication safety 1"),
        ("critical", "~", "Synthetic question, reworded"),
    ]
    # The unchanged row keeps its file reference and gains no history.
    unchanged = Query.objects.get(external_id="t-2")
    assert (unchanged.source_file, unchanged.history.count()) == ("v1.jsonl", 1)


def test_an_optional_field_left_out_keeps_the_stored_value() -> None:
    queries_import(
        files=[("v1.jsonl", jsonl(record(1, expected_behaviour="refuse", notes="kept")))],
        file_format="jsonl",
        actor=SYSTEM,
    )
    result = queries_import(files=[("v2.jsonl", jsonl(record(1)))], file_format="jsonl", actor=SYSTEM)
    assert (result.created, result.updated, result.unchanged) == (0, 0, 1)
    query = Query.objects.get(external_id="t-1")
    assert (query.expected_behaviour, query.notes, query.status) == ("refuse", "kept", "active")


def test_the_same_external_id_under_two_sources_is_two_queries() -> None:
    data = jsonl(record(1, source="team-a"), record(1, source="team-b"))
    result = queries_import(files=[("a.jsonl", data)], file_format="jsonl", actor=SYSTEM)
    assert result.created == 2
    assert sorted(Query.objects.values_list("source", flat=True)) == ["team-a", "team-b"]


def test_an_unknown_format_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="Unknown import format 'xml'"):
        queries_import(files=[("a.xml", b"<a/>")], file_format="xml", actor=SYSTEM)


def test_problem_text_names_file_line_and_field() -> None:
    assert str(ImportProblem("a.csv", 7, "category", "unknown category 'x'")) == (
        "a.csv, line 7, field 'category': unknown category 'x'"
    )
    assert str(ImportProblem("a.csv", None, None, "the file is empty")) == "a.csv: the file is empty"


# --- the command ----------------------------------------------------------------------------------


def test_command_imports_a_directory_and_prints_the_counts(tmp_path: Path) -> None:
    (tmp_path / "b.jsonl").write_bytes(jsonl(record(3)))
    (tmp_path / "a.jsonl").write_bytes(jsonl(record(1), record(2)))
    (tmp_path / "README.md").write_text("not a query file")
    out = StringIO()
    call_command("import_queries", str(tmp_path), stdout=out)
    assert out.getvalue().strip() == "Imported 2 file(s): 3 created, 0 updated, 0 unchanged."
    assert dict(Query.objects.values_list("external_id", "source_file")) == {
        "t-1": "a.jsonl",
        "t-2": "a.jsonl",
        "t-3": "b.jsonl",
    }


def test_command_rejects_a_bad_file_with_every_problem_on_stderr(tmp_path: Path, existing: int) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_bytes(
        csv_bytes("external_id,text,category", "t-1,Synthetic question 1,nowhere", "t-2,,pharmacology")
    )
    err = StringIO()
    with pytest.raises(
        CommandError, match=r"Import rejected: 2 problem\(s\) in 1 file\(s\); nothing was imported"
    ):
        call_command("import_queries", str(bad), stderr=err)
    assert err.getvalue().splitlines() == [
        "bad.csv, line 2, field 'category': unknown category 'nowhere'",
        "bad.csv, line 3, field 'text': required field is empty",
    ]
    assert Query.objects.count() == existing


def test_command_needs_a_format_for_mixed_extensions(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_bytes(jsonl(record(1)))
    (tmp_path / "b.csv").write_bytes(
        csv_bytes("external_id,text,category", "t-2,Synthetic question 2,pharmacology")
    )
    with pytest.raises(CommandError, match=r"mix \.csv and \.jsonl"):
        call_command("import_queries", str(tmp_path / "a.jsonl"), str(tmp_path / "b.csv"))
    with pytest.raises(CommandError, match="no such file or directory"):
        call_command("import_queries", str(tmp_path / "missing.jsonl"))
    assert Query.objects.count() == 0


def test_manage_py_exits_non_zero_on_a_bad_file(tmp_path: Path) -> None:
    """The real process, not call_command: the exit status is what scripts and CI see."""
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(jsonl(record(1)) + b"not json\n")
    database = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "medharm_web.settings.base",
        # The test database exists (with its seeded categories) for the whole session.
        "DATABASE_URL": f"postgres://{database['USER'] or 'postgres'}@{database['HOST'] or '127.0.0.1'}:"
        f"{database['PORT'] or 5432}/{connection.settings_dict['NAME']}",
        "REDIS_URL": "",
    }
    completed = subprocess.run(
        [sys.executable, "manage.py", "import_queries", str(bad)],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 1, completed.stderr
    assert "bad.jsonl, line 2: invalid JSON: Expecting value at column 1" in completed.stderr.splitlines()
    assert "Import rejected: 1 problem(s) in 1 file(s); nothing was imported." in completed.stderr
    assert Query.objects.count() == 0


# --- the web page ---------------------------------------------------------------------------------


@pytest.fixture
def maintainer_client(client):
    client.force_login(UserFactory(role=Role.MAINTAINER))
    return client


def test_import_page_shows_the_form_and_the_schema(maintainer_client) -> None:
    response = maintainer_client.get("/queries/import/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'type="file"' in html
    assert "multiple" in html
    assert 'name="file_format"' in html
    assert '<a href="#import-format">' in html
    assert "Nothing was imported" not in html


def test_web_import_of_a_bad_file_lists_the_problems_and_writes_nothing(
    maintainer_client,
    existing: int,
) -> None:
    upload = SimpleUploadedFile(
        "bad.jsonl", jsonl(record(1), record(2, category="nowhere"), record(3, severity="severe"))
    )
    response = maintainer_client.post("/queries/import/", {"files": [upload], "file_format": "jsonl"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "Nothing was imported: 2 problems found" in html
    assert (
        "<tr><td>bad.jsonl</td><td>2</td><td>category</td><td>unknown category &#x27;nowhere&#x27;</td></tr>"
        in html
    )
    assert (
        "<tr><td>bad.jsonl</td><td>3</td><td>severity</td>"
        "<td>&#x27;severe&#x27; is not one of: low, moderate, high, critical</td></tr>"
    ) in html
    assert Query.objects.count() == existing


def test_web_import_of_good_files_redirects_and_records_the_maintainer(maintainer_client) -> None:
    uploads = [
        SimpleUploadedFile("a.jsonl", jsonl(record(1), record(2))),
        SimpleUploadedFile("b.jsonl", jsonl(record(3))),
    ]
    response = maintainer_client.post("/queries/import/", {"files": uploads, "file_format": "jsonl"})
    assert response.status_code == 302
    assert response["Location"] == "/queries/"
    assert Query.objects.count() == 3
    event = AuditEvent.objects.get(action="queries_import")
    assert event.details["files"] == ["a.jsonl", "b.jsonl"]
    assert event.actor.groups.filter(name=Role.MAINTAINER.value).exists()
    assert Query.objects.get(external_id="t-1").history.get().history_user == event.actor


@pytest.mark.parametrize("role", [Role.CLINICIAN, Role.ADJUDICATOR, Role.RESEARCHER])
def test_only_maintainers_may_import(client, role: Role) -> None:
    client.force_login(UserFactory(role=role))
    upload = SimpleUploadedFile("a.jsonl", jsonl(record(1)))
    response = client.post("/queries/import/", {"files": [upload], "file_format": "jsonl"})
    assert response.status_code == 403
    assert Query.objects.count() == 0
