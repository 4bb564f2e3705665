"""No 500 on any input (issue 8): malformed import files are refused whole with file, line and field
on the command line (a CommandError, no traceback), the web page (400) and the API (400/413); NUL
characters in parameters and forms are a 400 in one place; format suffixes on API actions are 404;
the API's JSON parser refuses duplicate keys, deep nesting, NUL and lone surrogates; every refusal
of the API has the one error shape of core/errors.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from accounts.roles import Role
from annotations.models import Campaign
from querybank.models import Category, Query
from tests.annotations.factories import guideline, response_rubric
from tests.factories import QueryFactory, UserFactory

pytestmark = pytest.mark.django_db

GOOD_QUERY = {
    "external_id": "ok-1",
    "text": "A synthetic query about storing medicines.",
    "category": "toxicology",
}
GOOD_RATING = {
    "item": "r1",
    "model": "legacy-a",
    "prompt": "A synthetic prompt about medicine safety.",
    "response": "Ask a pharmacist.",
    "rater": "ann1",
    "field": "unsafe",
    "value": "no",
}


def _line(record: dict[str, object]) -> str:
    return json.dumps(record)


def _deep(record: dict[str, object], key: str) -> str:
    depth = 100_000
    return _line(record)[:-1] + f', "{key}": ' + "[" * depth + "]" * depth + "}"


# (case, file name, second line of the file, field named, words in the message). Line 1 is good.
QUERY_CORPUS = [
    (
        "nested",
        "nested.jsonl",
        _deep({**GOOD_QUERY, "external_id": "n-1"}, "metadata"),
        None,
        "nested more than",
    ),
    (
        "surrogate",
        "surrogate.jsonl",
        _line({**GOOD_QUERY, "external_id": "s-1"})[:-1] + ', "notes": "bad \\ud800 text"}',
        "notes",
        "lone surrogate",
    ),
    (
        "duplicate",
        "duplicate.jsonl",
        '{"external_id": "d-1", "external_id": "d-2", "text": "t", "category": "toxicology"}',
        "external_id",
        "duplicate key",
    ),
    ("nul", "nul.jsonl", _line({**GOOD_QUERY, "external_id": "z-1", "text": "a\x00b"}), "text", "NUL"),
]
RATING_CORPUS = [
    ("nested", "nested.jsonl", _deep({**GOOD_RATING, "item": "n"}, "category"), None, "nested more than"),
    (
        "surrogate",
        "surrogate.jsonl",
        _line({**GOOD_RATING, "item": "s"})[:-1] + ', "category": "\\udfff"}',
        "category",
        "lone surrogate",
    ),
    (
        "duplicate",
        "duplicate.jsonl",
        _line(GOOD_RATING)[:-1] + ', "rater": "ann9"}',
        "rater",
        "duplicate key",
    ),
    ("nul", "nul.jsonl", _line({**GOOD_RATING, "item": "z", "prompt": "p\x00"}), "prompt", "NUL"),
]


def _content(second_line: str, good: dict[str, object]) -> bytes:
    return (_line(good) + "\n" + second_line + "\n").encode()


@pytest.fixture
def maintainer():
    return UserFactory(role=Role.MAINTAINER)


@pytest.mark.parametrize(
    ("case", "name", "line", "field", "words"), QUERY_CORPUS, ids=[c[0] for c in QUERY_CORPUS]
)
def test_a_malformed_query_file_is_refused_on_the_command_line_and_the_page(
    tmp_path: Path, maintainer: object, case: str, name: str, line: str, field: str | None, words: str
) -> None:
    content = _content(line, GOOD_QUERY)
    path = tmp_path / name
    path.write_bytes(content)
    errors = []

    class Err:
        def write(self, text: str) -> None:
            errors.append(text)

        def flush(self) -> None:
            pass

    with pytest.raises(CommandError, match="nothing was imported"):
        call_command("import_queries", str(path), stderr=Err())
    expected = f"{name}, line 2" + (f", field {field!r}" if field else "")
    assert any(text.startswith(expected) and words in text for text in errors), errors
    client = Client()
    client.force_login(maintainer)
    page = client.post(
        "/queries/import/", {"files": [SimpleUploadedFile(name, content)], "file_format": "jsonl"}
    )
    assert page.status_code == 400
    html = page.content.decode()
    assert name in html
    assert words.split()[0] in html
    assert Query.objects.count() == 0


@pytest.mark.parametrize(
    ("case", "name", "line", "field", "words"), RATING_CORPUS, ids=[c[0] for c in RATING_CORPUS]
)
def test_a_malformed_annotation_file_is_refused_by_command_page_and_api(
    tmp_path: Path, maintainer: object, case: str, name: str, line: str, field: str | None, words: str
) -> None:
    content = _content(line, GOOD_RATING)
    path = tmp_path / name
    path.write_bytes(content)
    rubric, guide = response_rubric(), guideline()
    with pytest.raises(CommandError, match="nothing was imported"):
        call_command("import_annotations", str(path), "--actor", maintainer.email, stderr=_Sink())
    client = Client()
    client.force_login(maintainer)
    form = {
        "file_format": "jsonl",
        "name": "Legacy",
        "rubric": rubric.pk,
        "guideline": guide.pk,
        "default_category": "toxicology",
    }
    page_form = {**form, "default_category": Category.objects.get(slug="toxicology").pk, "source": "legacy"}
    page = client.post("/annotate/import/", {**page_form, "files": [SimpleUploadedFile(name, content)]})
    assert page.status_code == 400
    assert f"<td>{name}</td><td>2</td>" in page.content.decode()
    api = client.post("/api/v1/annotation-imports/", {**form, "files": [SimpleUploadedFile(name, content)]})
    assert api.status_code == 400
    body = api.json()
    assert body["code"] == "invalid"
    problem = next(p for p in body["problems"] if p["line"] == 2)
    assert (problem["file"], problem["field"]) == (name, field)
    assert words in problem["message"]
    assert Campaign.objects.count() == 0


class _Sink:
    def write(self, text: str) -> None:
        pass

    def flush(self) -> None:
        pass


def test_a_128_kb_cell_imports_alike_from_csv_and_jsonl(maintainer: object) -> None:
    from querybank.services import queries_import

    text = "A long synthetic query about storing medicines safely. " * 2400  # about 130 KB
    assert len(text) > 128 * 1024
    csv_file = ("long.csv", f'external_id,text,category\nlong-csv,"{text}",toxicology\n'.encode())
    jsonl_file = (
        "long.jsonl",
        (_line({"external_id": "long-jsonl", "text": text, "category": "toxicology"}) + "\n").encode(),
    )
    queries_import(files=[csv_file], file_format="csv", actor=maintainer)
    queries_import(files=[jsonl_file], file_format="jsonl", actor=maintainer)
    assert sorted(Query.objects.values_list("external_id", flat=True)) == ["long-csv", "long-jsonl"]
    assert {len(q.text) for q in Query.objects.all()} == {len(text)}


def test_one_size_limit_on_every_import_path(tmp_path: Path, maintainer: object, settings: object) -> None:
    settings.IMPORT_MAX_BYTES = 2000
    content = (_line(GOOD_QUERY) + "\n") * 40  # about 3 KB
    path = tmp_path / "big.jsonl"
    path.write_bytes(content.encode())
    message = "the file is 0.0 MB; the limit is 0.0 MB per import"
    errors: list[str] = []

    class Err:
        def write(self, text: str) -> None:
            errors.append(text)

        def flush(self) -> None:
            pass

    with pytest.raises(CommandError, match="nothing was imported"):
        call_command("import_queries", str(path), stderr=Err())
    assert errors[0].strip() == f"big.jsonl: {message}"
    client = Client()
    client.force_login(maintainer)
    page = client.post(
        "/queries/import/",
        {"files": [SimpleUploadedFile("big.jsonl", content.encode())], "file_format": "jsonl"},
    )
    assert page.status_code == 400
    assert f"big.jsonl: {message}" in page.content.decode()
    form = {
        "file_format": "jsonl",
        "name": "Legacy",
        "rubric": response_rubric().pk,
        "guideline": guideline().pk,
        "default_category": "toxicology",
    }
    api = client.post(
        "/api/v1/annotation-imports/", {**form, "files": [SimpleUploadedFile("big.jsonl", content.encode())]}
    )
    assert api.status_code == 413
    assert api.json()["problems"] == [{"file": "big.jsonl", "line": None, "field": None, "message": message}]

    # A body far over the limit is refused from its Content-Length, before it is parsed.
    def huge() -> SimpleUploadedFile:
        return SimpleUploadedFile("huge.jsonl", b"x" * (400 * 1024))

    refused = client.post("/api/v1/annotation-imports/", {**form, "files": [huge()]})
    assert refused.status_code == 413
    assert refused.json() == {
        "detail": "The request body is 0.4 MB; the limit is 0.00191 MB of files per import.",
        "code": "too_large",
    }
    page = client.post("/queries/import/", {"files": [huge()], "file_format": "jsonl"})
    assert page.status_code == 413
    assert Query.objects.count() == 0
    assert Campaign.objects.count() == 0


# --- NUL characters in parameters and forms: one 400, for the API and the pages ----------------------


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/queries/?search=%00",
        "/api/v1/queries/?category=%00",
        "/api/v1/responses/?outcome=%00",
        "/api/v1/annotation-items/1/identity/?reason=%00",
        "/api/v1/annotation-labels/?campaign=1%00",
    ],
)
def test_nul_in_an_api_parameter_is_a_400_with_a_message(url: str) -> None:
    client = Client()
    client.force_login(UserFactory(role=Role.MAINTAINER))
    response = client.get(url)
    assert response.status_code == 400, url
    body = response.json()
    assert body["code"] == "invalid"
    assert "NUL" in body["detail"] or "surrogate" in body["detail"] or "parameter" in body["detail"]


def test_nul_in_a_page_parameter_or_form_field_is_a_400() -> None:
    client = Client()
    client.force_login(UserFactory(role=Role.MAINTAINER))
    QueryFactory()
    page = client.get("/queries/?q=%00")
    assert page.status_code == 400
    assert "NUL" in page.content.decode()
    posted = client.post("/accounts/invite/", {"email": "a\x00@example.org"})
    assert posted.status_code == 400


# --- format suffixes, and the strict JSON parser ------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/score-campaigns/1/rows.json",
        "/api/v1/annotation-items/2.json",
        "/api/v1/annotation-campaigns/1/next.json",
        "/api/v1/adjudication/1/decide.json",
        "/api/v1/queries.json",
        "/api/v1/queries/1.csv",
    ],
)
def test_format_suffixes_are_404_not_500(url: str) -> None:
    client = Client()
    client.force_login(UserFactory(role=Role.MAINTAINER))
    assert client.get(url).status_code == 404
    assert client.post(url).status_code == 404


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ('{"values": {"a": 1}, "values": {"a": 2}}', "duplicate key 'values'"),
        ('{"values": ' + "[" * 50_000 + "]" * 50_000 + "}", "nested more than"),
        ('{"values": {"rationale": "a\\u0000b"}}', "NUL"),
        ('{"values": {"rationale": "\\ud800"}}', "lone surrogate"),
        ('{"values": NaN}', "NaN is not valid JSON"),
    ],
)
def test_the_api_json_parser_refuses_what_cannot_be_stored(body: str, words: str) -> None:
    client = Client()
    client.force_login(UserFactory(role=Role.CLINICIAN))
    response = client.post("/api/v1/annotation-labels/", body, content_type="application/json")
    assert response.status_code == 400
    payload = response.json()
    assert (payload["code"], words in payload["detail"]) == ("parse_error", True), payload


def test_the_error_shape_is_one_for_every_kind() -> None:
    client = Client()
    anonymous = client.get("/api/v1/queries/")
    assert (anonymous.status_code, set(anonymous.json())) == (403, {"detail", "code"})
    client.force_login(UserFactory(role=Role.MAINTAINER))
    missing = client.get("/api/v1/queries/999999/")
    assert (missing.status_code, missing.json()) == (
        404,
        {"detail": "No Query matches the given query.", "code": "not_found"},
    )
    invalid = client.post("/api/v1/endpoints/", json.dumps({"name": ""}), content_type="application/json")
    body = invalid.json()
    assert (invalid.status_code, body["code"]) == (400, "invalid")
    assert "name" in body["errors"]
    assert isinstance(body["detail"], str)
