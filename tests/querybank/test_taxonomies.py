"""Taxonomies and categories as maintainers' data: pages, API, a file beside the queries; never a
category deleted while queries are filed under it; every change audited."""

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.roles import Role
from audit.actions import AuditAction
from audit.models import AuditEvent
from core.actors import SYSTEM
from querybank.importers import QueryImportRejected, read_taxonomy_file
from querybank.models import Category, Query, Taxonomy
from querybank.services import queries_import
from tests.factories import CategoryFactory, QueryFactory, UserFactory

pytestmark = pytest.mark.django_db

TAXONOMY = {
    "slug": "refusal-bench",
    "name": "Refusal benchmark",
    "categories": [
        {"slug": "rb-dosing", "name": "Dosing"},
        {"slug": "rb-triage", "name": "Triage"},
        {"slug": "rb-records", "name": "Records"},
    ],
}


def taxonomy_bytes(data: object = TAXONOMY) -> bytes:
    return json.dumps(data).encode()


@pytest.fixture
def maintainer_client(client):
    client.force_login(UserFactory(role=Role.MAINTAINER))
    return client


def test_the_taxonomy_file_is_read_in_order_and_every_problem_is_named() -> None:
    spec = read_taxonomy_file("t.json", taxonomy_bytes())
    assert [c.slug for c in spec.categories] == ["rb-dosing", "rb-triage", "rb-records"]
    bad = {"slug": "bad slug", "name": "", "categories": [{"slug": "a", "name": "A"}, {"slug": "a"}], "x": 1}
    with pytest.raises(QueryImportRejected) as caught:
        read_taxonomy_file("t.json", taxonomy_bytes(bad))
    assert sorted((p.field, p.message) for p in caught.value.problems) == [
        ("categories[1].name", "required field is empty or missing"),
        ("categories[1].slug", "'a' appears twice"),
        ("name", "required field is empty or missing"),
        ("slug", "a slug holds only letters, digits, - and _"),
        ("x", "unknown field; allowed: slug, name, description, categories"),
    ]


def test_queries_import_with_their_taxonomy_in_one_transaction(tmp_path: Path) -> None:
    queries = tmp_path / "q.jsonl"
    queries.write_text(
        "".join(
            json.dumps({"external_id": f"rb-{n}", "text": f"Synthetic question {n}", "category": slug}) + "\n"
            for n, slug in enumerate(["rb-dosing", "rb-triage", "rb-records"])
        )
    )
    taxonomy = tmp_path / "taxonomy.json"
    taxonomy.write_bytes(taxonomy_bytes())
    call_command("import_queries", str(queries), "--taxonomy", str(taxonomy), stdout=StringIO())
    assert list(Taxonomy.objects.get(slug="refusal-bench").categories.values_list("slug", "position")) == [
        ("rb-dosing", 0),
        ("rb-triage", 1),
        ("rb-records", 2),
    ]
    assert Query.objects.filter(category__taxonomy__slug="refusal-bench").count() == 3

    # A rejected query file leaves no taxonomy behind.
    other = {**TAXONOMY, "slug": "other-bench", "categories": [{"slug": "ob-a", "name": "A"}]}
    bad = [("bad.jsonl", b'{"external_id": "x", "text": "t", "category": "nope"}\n')]
    with pytest.raises(QueryImportRejected):
        queries_import(
            files=bad,
            file_format="jsonl",
            actor=SYSTEM,
            taxonomy=read_taxonomy_file("o.json", taxonomy_bytes(other)),
        )
    assert not Taxonomy.objects.filter(slug="other-bench").exists()
    with pytest.raises(CommandError):
        call_command("import_queries", str(queries), "--taxonomy", str(tmp_path / "missing.json"))


def test_a_category_of_another_taxonomy_is_refused() -> None:
    stolen = {**TAXONOMY, "categories": [{"slug": "toxicology", "name": "Mine now"}]}
    with pytest.raises(QueryImportRejected) as caught:
        queries_import(
            files=[],
            file_format="jsonl",
            actor=SYSTEM,
            taxonomy=read_taxonomy_file("t.json", taxonomy_bytes(stolen)),
        )
    assert "is a category of another taxonomy" in caught.value.problems[0].message
    assert Category.objects.get(slug="toxicology").name != "Mine now"


def test_a_retired_category_takes_no_new_queries(maintainer_client) -> None:
    category = CategoryFactory()
    response = maintainer_client.post(f"/queries/categories/{category.pk}/", {"action": "retire"})
    assert response.status_code == 302
    assert Category.objects.get(pk=category.pk).retired is True
    row = json.dumps({"external_id": "r-1", "text": "Synthetic", "category": category.slug}).encode()
    with pytest.raises(QueryImportRejected) as caught:
        queries_import(files=[("r.jsonl", row)], file_format="jsonl", actor=SYSTEM)
    assert caught.value.problems[0].field == "category"


@pytest.mark.portable
def test_pages_create_rename_reorder_retire_and_delete(maintainer_client) -> None:
    assert maintainer_client.get("/queries/taxonomies/").status_code == 200
    response = maintainer_client.post(
        "/queries/taxonomies/", {"action": "create", "slug": "page-tx", "name": "Page taxonomy"}
    )
    assert response.status_code == 302
    taxonomy = Taxonomy.objects.get(slug="page-tx")
    for slug in ("p-one", "p-two"):
        maintainer_client.post(
            f"/queries/taxonomies/{taxonomy.pk}/",
            {"action": "add-category", "slug": slug, "name": slug.upper()},
        )
    assert list(taxonomy.categories.values_list("slug", "position")) == [("p-one", 0), ("p-two", 1)]
    two = Category.objects.get(slug="p-two")
    maintainer_client.post(
        f"/queries/categories/{two.pk}/", {"action": "save", "name": "Second", "position": 5}
    )
    assert Category.objects.get(pk=two.pk).name == "Second"
    assert Category.objects.get(pk=two.pk).position == 5
    maintainer_client.post(f"/queries/categories/{two.pk}/", {"action": "up"})
    assert Category.objects.get(pk=two.pk).position == 4
    # In use: deleting is refused, the category stays.
    QueryFactory(category=two)
    response = maintainer_client.post(f"/queries/categories/{two.pk}/", {"action": "delete"}, follow=True)
    assert Category.objects.filter(pk=two.pk).exists()
    assert b"retire it instead" in response.content
    one = Category.objects.get(slug="p-one")
    maintainer_client.post(f"/queries/categories/{one.pk}/", {"action": "delete"})
    assert not Category.objects.filter(pk=one.pk).exists()
    # The file import from the page.
    upload = SimpleUploadedFile("t.json", taxonomy_bytes())
    response = maintainer_client.post("/queries/taxonomies/", {"action": "import", "files": [upload]})
    assert response.status_code == 302
    assert Taxonomy.objects.filter(slug="refusal-bench").exists()
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {
        AuditAction.TAXONOMY_CREATE,
        AuditAction.CATEGORY_CREATE,
        AuditAction.CATEGORY_UPDATE,
        AuditAction.CATEGORY_DELETE,
        AuditAction.TAXONOMY_IMPORT,
    } <= actions


def test_the_page_is_for_maintainers(client) -> None:
    client.force_login(UserFactory(role=Role.CLINICIAN))
    assert client.get("/queries/taxonomies/").status_code == 403
    category = CategoryFactory()
    assert client.post(f"/queries/categories/{category.pk}/", {"action": "delete"}).status_code == 403
    assert Category.objects.filter(pk=category.pk).exists()


def test_api_writes_for_maintainers_reads_for_all(client, maintainer_client) -> None:
    created = maintainer_client.post(
        "/api/v1/taxonomies/", {"slug": "api-tx", "name": "API taxonomy"}, content_type="application/json"
    )
    assert created.status_code == 201, created.content
    category = maintainer_client.post(
        "/api/v1/categories/",
        {"taxonomy": "api-tx", "slug": "api-c", "name": "API category"},
        content_type="application/json",
    )
    assert category.status_code == 201, category.content
    pk = category.json()["id"]
    changed = maintainer_client.patch(
        f"/api/v1/categories/{pk}/", {"name": "Renamed", "retired": True}, content_type="application/json"
    )
    assert (changed.status_code, changed.json()["name"], changed.json()["retired"]) == (200, "Renamed", True)
    assert (
        maintainer_client.patch(
            f"/api/v1/categories/{pk}/", {"slug": "other"}, content_type="application/json"
        ).status_code
        == 400
    )
    QueryFactory(category=Category.objects.get(pk=pk))
    assert maintainer_client.delete(f"/api/v1/categories/{pk}/").status_code == 409
    tx = Taxonomy.objects.get(slug="api-tx").pk
    assert maintainer_client.delete(f"/api/v1/taxonomies/{tx}/").status_code == 409
    client.force_login(UserFactory(role=Role.CLINICIAN))
    assert client.get("/api/v1/taxonomies/").status_code == 200
    assert client.post("/api/v1/taxonomies/", {"slug": "x", "name": "X"}).status_code == 403
    assert client.delete(f"/api/v1/categories/{pk}/").status_code == 403
