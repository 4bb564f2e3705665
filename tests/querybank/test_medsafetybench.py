"""The MedSafetyBench preset: the nine public files import as 450 queries in the AMA taxonomy."""

import csv
from io import StringIO
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db.models import Count

from accounts.roles import Role
from core.actors import SYSTEM
from querybank.importers import QueryImportRejected
from querybank.models import Category, Query
from querybank.services import queries_import
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

HEADER = ",harmful_medical_request,safe_response"


@pytest.fixture(scope="module")
def msb_dir(shared_datasets_dir: str) -> Path:
    return Path(shared_datasets_dir) / "medsafetybench"


@pytest.fixture(scope="module")
def msb_files(msb_dir: Path) -> list[tuple[str, bytes]]:
    files = sorted(msb_dir.glob("test_gpt4_category_*.csv"))
    assert len(files) == 9
    return [(path.name, path.read_bytes()) for path in files]


def synthetic(*rows: str) -> bytes:
    return ("\n".join([HEADER, *rows]) + "\n").encode()


def problems_of(files: list[tuple[str, bytes]]) -> list[tuple[object, ...]]:
    with pytest.raises(QueryImportRejected) as caught:
        queries_import(files=files, file_format="medsafetybench", actor=SYSTEM)
    return [(p.file, p.line, p.field, p.message) for p in caught.value.problems]


def test_the_nine_files_import_as_450_queries_50_per_ama_principle(
    msb_files: list[tuple[str, bytes]], msb_dir: Path
) -> None:
    result = queries_import(files=msb_files, file_format="medsafetybench", actor=SYSTEM)

    assert (result.created, result.updated, result.unchanged) == (450, 0, 0)
    assert Query.objects.filter(source="medsafetybench").count() == 450
    per_category = dict(
        Query.objects.values_list("category__slug").annotate(n=Count("id")).values_list("category__slug", "n")
    )
    ama = list(Category.objects.filter(taxonomy__slug="ama-principles").order_by("position"))
    assert per_category == {category.slug: 50 for category in ama}
    assert ama[0].slug == "ama-1-competent-care"
    assert ama[8].slug == "ama-9-access-to-care"

    # One row traced back to its file: category 7, index 12 (line 14: the header is line 1).
    with open(msb_dir / "test_gpt4_category_7.csv", encoding="utf-8", newline="") as handle:
        original = list(csv.reader(handle))[13]
    assert original[0] == "12"
    query = Query.objects.get(source="medsafetybench", external_id="gpt4-c7-12")
    assert query.category.slug == "ama-7-community-public-health"
    assert (query.source_file, query.source_row) == ("test_gpt4_category_7.csv", 12)
    assert query.text == original[1]
    assert query.metadata == {
        "safe_response": original[2],
        "split": "test",
        "generator": "gpt4",
        "ama_principle": 7,
    }
    assert (query.expected_behaviour, query.severity, query.status) == ("", "", "active")
    # Every row keeps its own file and index.
    assert set(Query.objects.values_list("source_row", flat=True)) == set(range(50))
    assert set(Query.objects.values_list("source_file", flat=True)) == {name for name, _ in msb_files}


def test_reimporting_the_nine_files_changes_nothing_and_keeps_clinician_labels(
    msb_files: list[tuple[str, bytes]],
) -> None:
    queries_import(files=msb_files, file_format="medsafetybench", actor=SYSTEM)
    Query.objects.filter(external_id="gpt4-c1-0").update(expected_behaviour="refuse", severity="high")
    history_rows = Query.history.count()

    result = queries_import(files=msb_files, file_format="medsafetybench", actor=SYSTEM)

    assert (result.created, result.updated, result.unchanged) == (0, 0, 450)
    assert Query.history.count() == history_rows == 450
    labelled = Query.objects.get(external_id="gpt4-c1-0")
    assert (labelled.expected_behaviour, labelled.severity) == ("refuse", "high")


def test_a_file_name_outside_the_pattern_is_rejected_by_name() -> None:
    assert problems_of([("category_3.csv", synthetic('0,"Synthetic question 1","Synthetic reply 1"'))]) == [
        (
            "category_3.csv",
            None,
            None,
            "the file name does not match the MedSafetyBench pattern test_<generator>_category_<N>.csv",
        )
    ]
    assert Query.objects.count() == 0


def test_a_category_number_with_no_ama_principle_is_rejected() -> None:
    assert problems_of(
        [("test_gpt4_category_10.csv", synthetic('0,"Synthetic question 1","Synthetic reply 1"'))]
    ) == [
        ("test_gpt4_category_10.csv", None, None, "no category 10 of taxonomy 'ama-principles' for this file")
    ]


def test_wrong_columns_are_rejected_naming_the_file() -> None:
    data = b"external_id,text,category\nt-1,Synthetic question 1,pharmacology\n"
    assert problems_of([("test_gpt4_category_2.csv", data)]) == [
        (
            "test_gpt4_category_2.csv",
            1,
            None,
            "MedSafetyBench files have the columns (index), harmful_medical_request, safe_response; "
            "this one has 'external_id', 'text', 'category'",
        )
    ]


def test_bad_rows_are_reported_by_line_and_column() -> None:
    data = synthetic(
        '0,"Synthetic question 1","Synthetic reply 1"',
        'x,"Synthetic question 2","Synthetic reply 2"',
        '2,"","Synthetic reply 3"',
        '0,"Synthetic question 4","Synthetic reply 4"',
    )
    assert problems_of([("test_gpt4_category_4.csv", data)]) == [
        ("test_gpt4_category_4.csv", 3, "index", "'x' is not a row index (0, 1, 2, ...)"),
        ("test_gpt4_category_4.csv", 4, "harmful_medical_request", "required field is empty"),
        (
            "test_gpt4_category_4.csv",
            5,
            "external_id",
            "duplicate external id 'gpt4-c4-0' for source 'medsafetybench' "
            "(first in test_gpt4_category_4.csv, line 2)",
        ),
    ]
    assert Query.objects.count() == 0


def test_command_imports_the_dataset_directory(msb_dir: Path) -> None:
    out = StringIO()
    # The directory also holds README.md and LICENSE: only the .csv files are read.
    call_command("import_queries", str(msb_dir), "--format", "medsafetybench", stdout=out)
    assert out.getvalue().strip() == "Imported 9 file(s): 450 created, 0 updated, 0 unchanged."
    assert Query.objects.count() == 450


def test_a_maintainer_imports_the_nine_files_from_the_web_page(client, msb_files) -> None:
    client.force_login(UserFactory(role=Role.MAINTAINER))
    uploads = [SimpleUploadedFile(name, data, content_type="text/csv") for name, data in msb_files]

    response = client.post(
        "/queries/import/", {"files": uploads, "file_format": "medsafetybench"}, follow=True
    )

    assert response.status_code == 200
    assert response.redirect_chain == [("/queries/", 302)]
    assert "Imported 9 file(s): 450 new, 0 updated, 0 unchanged." in response.content.decode()
    assert Query.objects.filter(source="medsafetybench").count() == 450


def test_the_web_page_refuses_a_bad_file_among_good_ones(client, msb_files) -> None:
    client.force_login(UserFactory(role=Role.MAINTAINER))
    uploads = [SimpleUploadedFile(name, data) for name, data in msb_files[:2]]
    uploads.append(
        SimpleUploadedFile("test_gpt4_category_3.csv", b"index,question\n0,Synthetic question 1\n")
    )

    response = client.post("/queries/import/", {"files": uploads, "file_format": "medsafetybench"})

    assert response.status_code == 400
    html = response.content.decode()
    assert "Nothing was imported: 1 problem found" in html
    assert (
        "<tr><td>test_gpt4_category_3.csv</td><td>1</td><td>—</td><td>MedSafetyBench files have the columns "
        "(index), harmful_medical_request, safe_response; "
        "this one has &#x27;index&#x27;, &#x27;question&#x27;</td></tr>"
    ) in html
    assert Query.objects.count() == 0
