"""The API: OpenAPI schema and docs, query and category endpoints, filters, pages, and API tokens."""

import hashlib
import json
import re

import pytest
from django.test import Client
from drf_spectacular.validation import validate_schema

from accounts.models import ApiToken as Token
from accounts.roles import Role
from audit.models import AuditEvent
from querybank.models import Category
from tests.factories import QueryFactory

pytestmark = pytest.mark.django_db

TOKEN_URL = "/api/v1/auth/token/"


@pytest.fixture
def clinician_client(client: Client, make_user) -> Client:
    client.force_login(make_user(Role.CLINICIAN))
    return client


# --- Schema and docs ------------------------------------------------------------------------------


def test_schema_is_valid_openapi_3_and_lists_every_endpoint(clinician_client: Client) -> None:
    response = clinician_client.get("/api/schema/?format=json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    validate_schema(schema)  # raises jsonschema.ValidationError on any departure from the spec
    assert schema["openapi"].startswith("3.")
    # Other apps add their own endpoints; these are the accounts' and the query bank's.
    assert set(schema["paths"]) >= {
        "/api/v1/auth/token/",
        "/api/v1/categories/",
        "/api/v1/categories/{id}/",
        "/api/v1/queries/",
        "/api/v1/queries/{id}/",
    }
    assert set(schema["paths"]["/api/v1/queries/"]) == {"get"}  # read-only
    list_params = {p["name"] for p in schema["paths"]["/api/v1/queries/"]["get"]["parameters"]}
    assert list_params == {"search", "category", "source", "page", "page_size"}
    assert set(schema["components"]["securitySchemes"]) == {"cookieAuth", "tokenAuth", "researcherToken"}
    # Researcher tokens open the release API only.
    release_security = schema["paths"]["/api/v1/releases/"]["get"]["security"]
    assert release_security == [{"researcherToken": []}, {"cookieAuth": []}]
    assert {"researcherToken": []} not in schema["paths"]["/api/v1/queries/"]["get"]["security"]
    token_post = schema["paths"]["/api/v1/auth/token/"]["post"]
    assert "Authorization: Token <key>" in token_post["description"]
    assert set(token_post["responses"]) == {"201", "400", "403", "404", "409", "413"}  # always a new key
    assert "shown once" in token_post["description"]
    # Every operation documents the error answers, in the one error shape.
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert {"400", "403", "404", "409", "413"} <= set(operation["responses"]), (method, path)
    error = schema["components"]["schemas"]["Error"]
    assert set(error["properties"]) == {"detail", "code", "errors", "problems"}
    assert set(error["required"]) == {"detail", "code"}


def test_docs_page_loads_swagger_ui_from_our_own_static_files(clinician_client: Client) -> None:
    response = clinician_client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower()  # no CDN: the Content-Security-Policy allows 'self' only
    # The split view keeps the initialising script out of the page, as the strict CSP requires.
    assert re.search(r'<script src="/api/docs/\?script="></script>', html)
    script = clinician_client.get("/api/docs/?script=")
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert "/api/schema/" in script.content.decode()


# --- Queries: filters and pages ---------------------------------------------------------------


def test_query_list_filters_by_search_category_and_source(clinician_client: Client) -> None:
    anesthesia = Category.objects.get(slug="anesthesia")
    a = QueryFactory(text="Question about recovery after sedation", source="test")
    b = QueryFactory(text="Question about a child's fever", category=anesthesia, source="test")
    c = QueryFactory(text="Another sedation question", category=anesthesia, source="other-set")

    def ids(params: str) -> set[int]:
        response = clinician_client.get(f"/api/v1/queries/?{params}")
        assert response.status_code == 200
        return {row["id"] for row in response.json()["results"]}

    assert ids("") == {a.pk, b.pk, c.pk}
    assert ids("search=SEDATION") == {a.pk, c.pk}
    assert ids(f"search={b.external_id}") == {b.pk}
    assert ids("category=anesthesia") == {b.pk, c.pk}
    assert ids("source=other-set") == {c.pk}
    assert ids("category=anesthesia&search=sedation&source=other-set") == {c.pk}
    assert ids("category=no-such-category") == set()


def test_query_list_is_paginated(clinician_client: Client) -> None:
    queries = QueryFactory.create_batch(7)
    first = clinician_client.get("/api/v1/queries/?page_size=3").json()
    assert first["count"] == 7
    assert len(first["results"]) == 3
    assert first["previous"] is None
    assert first["next"].endswith("/api/v1/queries/?page=2&page_size=3")
    last = clinician_client.get("/api/v1/queries/?page_size=3&page=3").json()
    assert [row["id"] for row in last["results"]] == [queries[6].pk]
    assert last["next"] is None
    assert clinician_client.get("/api/v1/queries/?page=4&page_size=3").status_code == 404


def test_query_detail_shows_the_traceable_fields(clinician_client: Client) -> None:
    query = QueryFactory(source_file="set.jsonl", source_row=12)
    body = clinician_client.get(f"/api/v1/queries/{query.pk}/").json()
    assert body["external_id"] == query.external_id
    assert body["text"] == query.text
    assert body["category"] == "toxicology"
    assert (body["source"], body["source_file"], body["source_row"]) == ("test", "set.jsonl", 12)
    assert (body["expected_behaviour"], body["severity"]) == ("refuse", "high")


def test_query_endpoints_are_read_only(client: Client, make_user) -> None:
    client.force_login(make_user(Role.MAINTAINER))
    query = QueryFactory()
    assert client.post("/api/v1/queries/", {"text": "x"}).status_code == 405
    assert client.delete(f"/api/v1/queries/{query.pk}/").status_code == 405
    # Categories are written (tests/querybank/test_taxonomies.py): a category without its taxonomy and
    # name is refused as invalid.
    assert client.post("/api/v1/categories/", {"slug": "x"}).status_code == 400


# --- Categories -------------------------------------------------------------------------------


def test_categories_list_both_taxonomies_and_filters_by_taxonomy(clinician_client: Client) -> None:
    everything = clinician_client.get("/api/v1/categories/").json()
    assert everything["count"] == 19  # 10 MedHarm + 9 AMA principles (data migration)
    medharm = clinician_client.get("/api/v1/categories/?taxonomy__slug=medharm").json()
    assert medharm["count"] == 10
    assert {row["taxonomy"] for row in medharm["results"]} == {"medharm"}


def test_query_counts_are_given_to_readers_only(client: Client, make_user) -> None:
    QueryFactory.create_batch(2)  # both in toxicology

    def toxicology_count(role: Role) -> object:
        client.force_login(make_user(role))
        rows = client.get("/api/v1/categories/?taxonomy__slug=medharm").json()["results"]
        return next(row["query_count"] for row in rows if row["slug"] == "toxicology")

    assert toxicology_count(Role.CLINICIAN) == 2
    assert toxicology_count(Role.RESEARCHER) is None


# --- API tokens -------------------------------------------------------------------------------


def test_a_logged_in_user_gets_one_token_and_can_revoke_it(client: Client, make_user) -> None:
    user = make_user(Role.CLINICIAN)
    client.force_login(user)
    first = client.post(TOKEN_URL)
    assert first.status_code == 201
    old_key = first.json()["token"]
    # Only the key's hash is stored: asking again issues a new key, and the old one stops working.
    again = client.post(TOKEN_URL)
    assert again.status_code == 201
    key = again.json()["token"]
    assert key != old_key
    stored = Token.objects.get(user=user)
    assert stored.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key not in json.dumps(list(Token.objects.values_list("key_hash", "prefix")))
    assert (stored.prefix, len(key)) == (key[:8], 40)

    token_client = Client()
    assert token_client.get("/api/v1/queries/", HTTP_AUTHORIZATION=f"Token {key}").status_code == 200
    assert token_client.get("/api/v1/queries/", HTTP_AUTHORIZATION=f"Token {old_key}").status_code == 403

    assert client.delete(TOKEN_URL).status_code == 204
    assert not Token.objects.filter(user=user).exists()
    assert token_client.get("/api/v1/queries/", HTTP_AUTHORIZATION=f"Token {key}").status_code == 403
    actions = list(AuditEvent.objects.filter(target_id=str(user.pk)).values_list("action", flat=True))
    assert sorted(actions) == ["token_issue", "token_issue", "token_revoke"]
    assert key not in json.dumps(list(AuditEvent.objects.values_list("details", flat=True)))


def test_a_token_is_never_exchanged_for_a_password(client: Client, make_user, password: str) -> None:
    # A password-for-token endpoint would bypass the lockout and the second factor.
    user = make_user(Role.CLINICIAN)
    response = client.post(TOKEN_URL, {"username": user.email, "email": user.email, "password": password})
    assert response.status_code == 403
    assert not Token.objects.filter(user=user).exists()


def test_a_token_caller_may_replace_its_token(client: Client, make_user) -> None:
    user = make_user(Role.RESEARCHER)
    token = Token.objects.create(user=user)
    response = client.post(TOKEN_URL, HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 201
    new_key = response.json()["token"]
    assert new_key != token.key
    assert client.get("/api/v1/categories/", HTTP_AUTHORIZATION=f"Token {token.key}").status_code == 403
    assert client.get("/api/v1/categories/", HTTP_AUTHORIZATION=f"Token {new_key}").status_code == 200
